import type { FieldCodec } from './codec.ts';
import { SessionError } from './errors.ts';
import { generateId, hashId, shortKey } from './ids.ts';
import type { ResolvedOptions } from './options.ts';
import { type ChangeSet, RESERVED_KEYS, type SessionRecord, type WriteOutcome } from './store.ts';

/**
 * The shape of session data. Extend it by declaration merging to type every session:
 *
 * ```ts
 * declare module 'tessera' {
 *   interface SessionData { userId: string; cart: string[] }
 * }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by declaration merging
export interface SessionData {}

/** Keys of a data type that are strings. */
export type DataKey<D> = Extract<keyof D, string>;

/** What the engine gives a session; internal. */
export interface SessionContext {
  readonly options: ResolvedOptions;
  readonly codec: FieldCodec;
  readStore(key: string): Promise<SessionRecord | null>;
  writeNew(session: Session<object>, key: string, record: SessionRecord): Promise<void>;
  /** Moves the record at `from` to `to` with `change` applied; the record now at `to`, or `null`. */
  moveRecord(session: Session<object>, from: string, to: string, change: ChangeSet): Promise<SessionRecord | null>;
  writePatch(session: Session<object>, key: string, change: ChangeSet): Promise<WriteOutcome>;
  destroyKey(session: Session<object>, key: string): Promise<void>;
  emit(
    event: 'beforeLoad' | 'load' | 'beforeDestroy' | 'destroy' | 'beforeRegenerate',
    session: Session<object>,
  ): Promise<void>;
  emitRegenerate(session: Session<object>, oldKey: string | null): Promise<void>;
  emitCorrupt(error: SessionError, key: string): Promise<void>;
  emitLost(session: Session<object>, key: string): Promise<void>;
  storeFailed(error: SessionError, action: string): boolean;
}

type State = 'idle' | 'loaded' | 'destroyed';

/** How far another server's clock may run ahead of this one's before a stored time is implausible. */
const CLOCK_SKEW_MS = 60_000;

function assertKey(name: string): void {
  if (typeof name !== 'string' || RESERVED_KEYS.has(name)) {
    throw new SessionError(
      'INVALID_KEY',
      `${JSON.stringify(name)} cannot be a session key (${[...RESERVED_KEYS].join(', ')} are reserved); pick another name`,
    );
  }
}

/** UTF-8 bytes of stored field names and values, as the store holds them. */
function storedSize(fields: Record<string, string>): number {
  let size = 0;
  for (const name in fields) size += Buffer.byteLength(name) + Buffer.byteLength(fields[name] as string);
  return size;
}

/** The stored size of a record of `maxSizeBytes` once sealed: base64url (4/3) plus an envelope per field. */
function encryptedLimit(maxSizeBytes: number): number {
  return Math.ceil((maxSizeBytes * 4) / 3) + 4096;
}

/**
 * One visitor's session for one request. Reads are lazy: nothing touches the store until the
 * first `get`/`set`/`load`, and a request without a valid cookie never touches it at all.
 */
export class Session<D extends object = SessionData> {
  readonly #ctx: SessionContext;
  /** The ID from a verified cookie, before loading. */
  readonly #cookieId: string | null;
  /** The store key of #cookieId. */
  readonly #cookieKey: string | null;
  #state: State = 'idle';
  #loading: Promise<void> | null = null;
  /** The raw ID of the stored record (or the one to store), never logged. */
  #id: string | null = null;
  #key: string | null = null;
  /** Whether the record at #key exists in the store. */
  #stored = false;
  /** Null prototype: a key never reaches Object.prototype. */
  #data: Record<string, unknown> = Object.create(null);
  /** Serialized text of each field as it is in the store. */
  #saved = new Map<string, string>();
  /** Fields changed through the API, or handed out as objects (they may be mutated in place). */
  #candidates = new Set<string>();
  /** The plain-object view was handed out: every field is a candidate. */
  #exposed = false;
  #createdAt = 0;
  #expiresAt = 0;
  #userId: string | null = null;
  #userChanged = false;
  /** Store key of the record a regenerate replaces, moved to the new key when it is written. */
  #replaces: string | null = null;
  #degraded = false;
  /** The browser held a cookie that must now be cleared. */
  #clearCookie = false;
  /** The ID or expiry changed, so the cookie must be sent. */
  #cookieChanged = false;
  /** The engine committed the session: the response has started, changes can no longer be sent. */
  #committed = false;
  /** A write found the record destroyed meanwhile; its changes were dropped. */
  #lostWrite = false;

  /** @internal Made by the engine; use `engine.session(cookieHeader)` or an adapter. */
  constructor(ctx: SessionContext, cookieId: string | null, hadCookie: boolean, cookieKey?: string) {
    this.#ctx = ctx;
    this.#cookieId = cookieId;
    this.#cookieKey = cookieKey ?? (cookieId === null ? null : hashId(cookieId));
    if (hadCookie && cookieId === null) this.#clearCookie = true;
  }

  /** `true` until the session is found in (or written to) the store. */
  get isNew(): boolean {
    return !this.#stored;
  }

  /** The store key (SHA-256 of the ID): safe to show and log, e.g. to mark "this device". */
  get key(): string | null {
    return this.#key;
  }

  /** @internal The raw ID, for the cookie. */
  get id(): string | null {
    return this.#id;
  }

  get createdAt(): number {
    return this.#createdAt;
  }

  get expiresAt(): number {
    return this.#expiresAt;
  }

  get userId(): string | null {
    return this.#userId;
  }

  get isLoaded(): boolean {
    return this.#state !== 'idle';
  }

  get isDestroyed(): boolean {
    return this.#state === 'destroyed';
  }

  /** @internal */
  get cookieState(): { clear: boolean; changed: boolean } {
    return { clear: this.#clearCookie, changed: this.#cookieChanged };
  }

  /**
   * The data as a plain object, for code written in express-session style
   * (`session.data.cart.push(item)`): changes, nested ones included, are found at commit.
   * Call `await session.load()` first.
   */
  get data(): Partial<D> {
    this.#assertUsable('data');
    if (this.#state === 'idle') {
      throw new SessionError('INVALID_STATE', 'session.data needs `await session.load()` first');
    }
    this.#exposed = true;
    return this.#data as Partial<D>;
  }

  /** Reads the session from the store, once. Later calls return at once. */
  load(): Promise<this> {
    if (this.#state !== 'idle') return Promise.resolve(this);
    this.#loading ??= this.#load();
    return this.#loading.then(() => this);
  }

  async get<K extends DataKey<D>>(name: K): Promise<D[K] | undefined> {
    await this.load();
    this.#assertUsable('get');
    const value = this.#data[name];
    if (typeof value === 'object' && value !== null) this.#candidates.add(name);
    return value as D[K] | undefined;
  }

  async has(name: DataKey<D>): Promise<boolean> {
    await this.load();
    return Object.hasOwn(this.#data, name);
  }

  async set<K extends DataKey<D>>(name: K, value: D[K]): Promise<void> {
    await this.load();
    this.#assertWritable('set', name);
    if (value === undefined) delete this.#data[name];
    else this.#data[name] = value;
    this.#candidates.add(name);
    if (this.#ctx.options.flush === 'immediate') await this.save();
  }

  async delete(name: DataKey<D>): Promise<void> {
    await this.load();
    this.#assertWritable('delete', name);
    delete this.#data[name];
    this.#candidates.add(name);
    if (this.#ctx.options.flush === 'immediate') await this.save();
  }

  /** Removes every key (the session itself stays; use `destroy()` to end it). */
  async clear(): Promise<void> {
    await this.load();
    this.#assertWritable('clear');
    for (const name of Object.keys(this.#data)) this.#candidates.add(name);
    this.#data = Object.create(null);
    if (this.#ctx.options.flush === 'immediate') await this.save();
  }

  /** A shallow copy of all data. */
  async all(): Promise<Partial<D>> {
    await this.load();
    this.#exposed = true;
    return { ...this.#data } as Partial<D>;
  }

  /** Ties the session to a user, for `listUserSessions` and `destroyUserSessions`. */
  async setUser(userId: string | null): Promise<void> {
    await this.load();
    this.#assertWritable('setUser');
    if (userId !== null && (typeof userId !== 'string' || userId === '')) {
      throw new SessionError('INVALID_STATE', 'setUser takes a non-empty string or null');
    }
    if (userId === this.#userId) return;
    this.#userId = userId;
    this.#userChanged = true;
    if (this.#ctx.options.flush === 'immediate') await this.save();
  }

  /**
   * Gives the session a new ID, keeping its data. At commit the stored record is moved to the new
   * key with this request's changes applied, so changes that other requests committed meanwhile
   * are kept; a request still holding the old ID that commits later is refused with
   * `SESSION_MOVED`. Call it on login and on every privilege change.
   */
  async regenerate(): Promise<void> {
    await this.load();
    this.#assertWritable('regenerate');
    await this.#ctx.emit('beforeRegenerate', this as Session<object>);
    const oldKey = this.#stored ? this.#key : null;
    if (oldKey) this.#replaces = oldKey;
    this.#newIdentity();
    this.#userChanged = true;
    await this.#ctx.emitRegenerate(this as Session<object>, oldKey);
    if (this.#ctx.options.flush === 'immediate') await this.save();
  }

  /** Ends the session now: the record is deleted and the cookie cleared in the response. */
  async destroy(): Promise<void> {
    if (this.#state === 'destroyed') return;
    await this.#ctx.emit('beforeDestroy', this as Session<object>);
    const keys = [this.#stored ? this.#key : null, this.#replaces].filter((k): k is string => k !== null);
    if (keys.length === 0 && this.#cookieKey) keys.push(this.#cookieKey);
    for (const key of keys) await this.#ctx.destroyKey(this as Session<object>, key);
    const hadCookie = this.#stored || this.#cookieId !== null;
    this.#state = 'destroyed';
    this.#stored = false;
    this.#data = Object.create(null);
    this.#candidates.clear();
    this.#replaces = null;
    if (hadCookie) this.#clearCookie = true;
    await this.#ctx.emit('destroy', this as Session<object>);
  }

  /**
   * Writes pending changes now. With flush `'end'` the adapter calls it for you before the
   * response; with `'manual'` only your call writes.
   */
  async save(): Promise<void> {
    await this.flush();
  }

  /** @internal `save()`, saying what it wrote (`'lost'`: the record was destroyed meanwhile). */
  async flush(): Promise<'none' | 'create' | 'patch' | 'lost'> {
    if (this.#state !== 'loaded' || this.#degraded) return 'none';
    const { codec } = this.#ctx;
    const change = this.#changes();
    if (change.count === 0 && !this.#userChanged && this.#replaces === null) return 'none';
    if (this.#committed) {
      throw new SessionError(
        'SESSION_COMMITTED',
        'the session changed after it was committed (the response had started); the change was not saved',
      );
    }
    this.#checkSize(change.texts);
    if (this.#key === null) this.#newIdentity();
    const key = this.#key as string;
    if (!this.#stored && this.#replaces === null) {
      const fields: Record<string, string> = {};
      for (const [name, text] of this.#fieldsText(change.texts)) fields[name] = codec.seal(key, name, text);
      const record: SessionRecord = {
        fields,
        createdAt: this.#createdAt,
        expiresAt: this.#expiresAt,
        userId: this.#userId,
      };
      await this.#ctx.writeNew(this as Session<object>, key, record);
      this.#stored = true;
      this.#cookieChanged = true;
      this.#afterWrite(change.texts);
      return 'create';
    }
    // A regenerate seals its changes for the record's old key, where they are applied; the
    // engine re-seals the moved record for the new key when encryption is on.
    const from = this.#replaces;
    const patch = this.#changeSet(
      from ?? key,
      change.texts,
      from === null ? this.#nextExpiry(this.#ctx.options.now()) : this.#expiresAt,
    );
    if (from !== null) {
      const moved = await this.#ctx.moveRecord(this as Session<object>, from, key, patch);
      if (!moved) return this.#writeLost(from);
      this.#replaces = null;
      this.#stored = true;
      this.#cookieChanged = true;
      this.#afterWrite(change.texts);
      this.#adopt(key, moved, change.texts);
      return 'create';
    }
    const outcome = await this.#ctx.writePatch(this as Session<object>, key, patch);
    if (outcome === 'moved') {
      throw new SessionError(
        'SESSION_MOVED',
        'a concurrent request gave this session a new ID (regenerate); the changes of this request were not saved',
      );
    }
    // Destroyed (or expired) by someone else meanwhile: logout wins, nothing is resurrected.
    if (!outcome) return this.#writeLost(key);
    if (patch.expiresAt !== this.#expiresAt) this.#cookieChanged = true;
    this.#expiresAt = patch.expiresAt;
    this.#afterWrite(change.texts);
    return 'patch';
  }

  /** The change set of a write: changed fields sealed for `sealKey`, the new expiry and owner. */
  #changeSet(sealKey: string, texts: Map<string, string | null>, expiresAt: number): ChangeSet {
    const { codec } = this.#ctx;
    const set: Record<string, string> = {};
    const unset: string[] = [];
    for (const [name, text] of texts) {
      if (text === null) unset.push(name);
      else set[name] = codec.seal(sealKey, name, text);
    }
    const patch: ChangeSet = { set, unset, expiresAt };
    if (this.#userChanged) patch.userId = this.#userId;
    return patch;
  }

  /** A write found its record gone: the session is over, and the changes are reported lost. */
  async #writeLost(key: string): Promise<'lost'> {
    this.lost();
    this.#lostWrite = true;
    await this.#ctx.emitLost(this as Session<object>, key);
    if (this.#ctx.options.onLostWrite === 'throw') {
      throw new SessionError(
        'SESSION_LOST',
        'the session was destroyed by another request (a logout or a revocation) before these changes were saved',
      );
    }
    return 'lost';
  }

  /**
   * Takes in what other requests committed to a moved record (fields this request did not
   * change), so that a later write from this request does not undo them.
   */
  #adopt(key: string, record: SessionRecord, changed: Map<string, string | null>): void {
    const { codec } = this.#ctx;
    for (const name of [...this.#saved.keys()]) {
      if (!changed.has(name) && !Object.hasOwn(record.fields, name)) {
        this.#saved.delete(name);
        delete this.#data[name];
      }
    }
    for (const [name, stored] of Object.entries(record.fields)) {
      if (changed.has(name)) continue;
      const text = codec.open(key, name, stored);
      if (this.#saved.get(name) === text) continue;
      this.#data[name] = codec.parse(name, text, key);
      this.#saved.set(name, text);
    }
  }

  /** @internal A commit's write found the record gone. */
  get wasLost(): boolean {
    return this.#lostWrite;
  }

  /** @internal The engine committed the session; later changes throw `SESSION_COMMITTED`. */
  committed(): void {
    this.#committed = true;
  }

  /** @internal Whether an unmodified stored session is due for a touch. */
  touchDue(now: number): number | null {
    if (!this.#stored || this.#state !== 'loaded' || this.#degraded) return null;
    const { idleMs, touchAfterMs } = this.#ctx.options;
    const next = this.#nextExpiry(now);
    if (next <= this.#expiresAt) return null;
    const lastTouch = this.#expiresAt - idleMs;
    return now - lastTouch >= touchAfterMs ? next : null;
  }

  /** @internal The cookie was handed to the adapter: a second commit sends nothing again. */
  cookieSent(): void {
    this.#cookieChanged = false;
    this.#clearCookie = false;
  }

  /** @internal Records a successful touch. */
  touched(expiresAt: number): void {
    this.#expiresAt = expiresAt;
    this.#cookieChanged = true;
  }

  /** @internal A touch found the record gone. */
  lost(): void {
    this.#state = 'destroyed';
    this.#stored = false;
    this.#data = Object.create(null);
    this.#clearCookie = true;
  }

  /** @internal */
  get isDegraded(): boolean {
    return this.#degraded;
  }

  async #load(): Promise<void> {
    const ctx = this.#ctx;
    if (this.#cookieId === null) {
      this.#startNew();
      return;
    }
    const key = this.#cookieKey as string;
    await ctx.emit('beforeLoad', this as Session<object>);
    let record: SessionRecord | null;
    try {
      record = await ctx.readStore(key);
      if (record && this.#expired(key, record, ctx.options.now())) {
        await ctx.destroyKey(this as Session<object>, key);
        record = null;
      }
      if (record) this.#decode(key, record);
    } catch (error) {
      const failure = error as SessionError;
      if (failure instanceof SessionError && failure.code === 'CORRUPT_RECORD') {
        await ctx.emitCorrupt(failure, key);
        if (ctx.options.onCorruptRecord === 'throw') throw failure;
        this.#saved.clear();
        this.#clearCookie = true;
        this.#startNew();
        return;
      }
      if (!ctx.storeFailed(failure, 'load')) throw error;
      this.#startNew();
      this.#degraded = true;
      return;
    }
    if (!record) {
      this.#clearCookie = true;
      this.#startNew();
      return;
    }
    this.#id = this.#cookieId;
    this.#key = key;
    this.#stored = true;
    this.#createdAt = record.createdAt;
    this.#expiresAt = record.expiresAt;
    this.#userId = record.userId;
    this.#state = 'loaded';
    await ctx.emit('load', this as Session<object>);
  }

  /**
   * Whether a stored record is past its idle or absolute deadline, or claims an expiry no write
   * of these options could have given it (beyond now + the idle timeout, or beyond creation +
   * the absolute timeout): such a record is expired, so a damaged or forged expiry never keeps a
   * session alive. A creation time in the future, or an expiry before creation, is corrupt.
   */
  #expired(key: string, record: SessionRecord, now: number): boolean {
    const { idleMs, absoluteMs } = this.#ctx.options;
    if (record.createdAt > now + CLOCK_SKEW_MS || record.expiresAt < record.createdAt) {
      const problem =
        record.createdAt > now + CLOCK_SKEW_MS
          ? `its creation time ${new Date(record.createdAt).toISOString()} is in the future`
          : 'it expires before it was created';
      throw new SessionError('CORRUPT_RECORD', `record ${shortKey(key)}: ${problem}; the record is kept`);
    }
    if (record.expiresAt <= now || record.expiresAt > now + idleMs + CLOCK_SKEW_MS) return true;
    if (absoluteMs === null) return false;
    return record.createdAt + absoluteMs <= now || record.expiresAt > record.createdAt + absoluteMs + CLOCK_SKEW_MS;
  }

  #decode(key: string, record: SessionRecord): void {
    const { codec, options } = this.#ctx;
    // Checked before anything is decrypted or parsed: a huge record costs no parse per request.
    const size = storedSize(record.fields);
    const limit = options.encryptionKeys.length > 0 ? encryptedLimit(options.maxSizeBytes) : options.maxSizeBytes;
    if (size > limit) {
      throw new SessionError(
        'CORRUPT_RECORD',
        `record ${shortKey(key)} is ${size} bytes, over maxSizeBytes (${options.maxSizeBytes}); it was not decoded and is kept`,
      );
    }
    const data: Record<string, unknown> = Object.create(null);
    for (const [name, stored] of Object.entries(record.fields)) {
      // Every store's record, whatever it checked: a reserved name is never decoded.
      if (RESERVED_KEYS.has(name)) {
        throw new SessionError('CORRUPT_RECORD', `record ${shortKey(key)} has a field named "${name}"; it is kept`);
      }
      const text = codec.open(key, name, stored);
      data[name] = codec.parse(name, text, key);
      this.#saved.set(name, text);
    }
    this.#data = data;
  }

  #startNew(): void {
    const now = this.#ctx.options.now();
    this.#createdAt = now;
    this.#expiresAt = this.#nextExpiry(now);
    this.#state = 'loaded';
  }

  #newIdentity(): void {
    this.#id = generateId();
    this.#key = hashId(this.#id);
    this.#stored = false;
    this.#cookieChanged = true;
    this.#expiresAt = this.#nextExpiry(this.#ctx.options.now());
  }

  #nextExpiry(now: number): number {
    const { idleMs, absoluteMs } = this.#ctx.options;
    const idle = now + idleMs;
    return absoluteMs === null ? idle : Math.min(idle, this.#createdAt + absoluteMs);
  }

  /** Serialized text of each candidate field that differs from the store (`null` = remove). */
  #changes(): { texts: Map<string, string | null>; count: number } {
    const { codec } = this.#ctx;
    const names = this.#exposed ? new Set([...Object.keys(this.#data), ...this.#saved.keys()]) : this.#candidates;
    if (this.#exposed) for (const name of names) assertKey(name);
    const texts = new Map<string, string | null>();
    for (const name of names) {
      const value = Object.hasOwn(this.#data, name) ? this.#data[name] : undefined;
      const text = value === undefined ? undefined : codec.serialize(value);
      const saved = this.#saved.get(name);
      if (text === undefined) {
        if (saved !== undefined) texts.set(name, null);
      } else if (text !== saved) {
        texts.set(name, text);
      }
    }
    return { texts, count: texts.size };
  }

  /** Every field's text for a full write: the changes over what was loaded. */
  #fieldsText(changes: Map<string, string | null>): Map<string, string> {
    const all = new Map(this.#saved);
    for (const [name, text] of changes) {
      if (text === null) all.delete(name);
      else all.set(name, text);
    }
    return all;
  }

  #checkSize(changes: Map<string, string | null>): void {
    let size = 0;
    for (const [name, text] of this.#fieldsText(changes)) size += Buffer.byteLength(name) + Buffer.byteLength(text);
    if (size > this.#ctx.options.maxSizeBytes) {
      throw new SessionError(
        'SESSION_TOO_LARGE',
        `the session would be ${size} bytes, over maxSizeBytes (${this.#ctx.options.maxSizeBytes}); nothing was written`,
      );
    }
  }

  #afterWrite(changes: Map<string, string | null>): void {
    for (const [name, text] of changes) {
      if (text === null) this.#saved.delete(name);
      else this.#saved.set(name, text);
    }
    this.#candidates.clear();
    this.#userChanged = false;
  }

  #assertUsable(action: string): void {
    if (this.#state === 'destroyed') {
      throw new SessionError('SESSION_DESTROYED', `session.${action}() after the session was destroyed`);
    }
  }

  /** A change is possible: not destroyed, not yet committed, and a key that is allowed. */
  #assertWritable(action: string, name?: string): void {
    this.#assertUsable(action);
    if (this.#committed) {
      throw new SessionError(
        'SESSION_COMMITTED',
        `session.${action}() after the session was committed (the response had started); nothing was changed`,
      );
    }
    if (name !== undefined) assertKey(name);
  }
}
