import type { FieldCodec } from './codec.ts';
import { SessionError } from './errors.ts';
import { generateId, hashId, shortKey } from './ids.ts';
import type { ResolvedOptions } from './options.ts';
import { type ChangeSet, RESERVED_KEYS, type SessionRecord } from './store.ts';

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

/**
 * What a session asks of its engine; internal. The session only keeps state and works out what
 * to write; the engine does every store call, applies timeouts and the failure policy, and
 * emits the events.
 */
export interface SessionHost {
  readonly options: ResolvedOptions;
  readonly codec: FieldCodec;
  load(session: Session<object>): Promise<void>;
  save(session: Session<object>): Promise<WriteKind | 'lost'>;
  destroy(session: Session<object>): Promise<void>;
  regenerate(session: Session<object>): Promise<void>;
}

/** The store write a commit or a save made. */
export type WriteKind = 'none' | 'create' | 'patch' | 'touch';

/**
 * The store write a session needs, worked out from its state (no I/O): a new record, a patch of
 * the stored one, a move to a new key (a regenerate), a touch of the expiry, or nothing.
 */
export type WritePlan =
  | { kind: 'none' }
  | { kind: 'create'; key: string; record: SessionRecord }
  | { kind: 'patch'; key: string; change: ChangeSet }
  | { kind: 'move'; from: string; to: string; change: ChangeSet }
  | { kind: 'touch'; key: string; expiresAt: number };

/** How a load ended, when it found no usable record. */
export type FreshStart = 'no-cookie' | 'missing' | 'corrupt' | 'degraded';

/**
 * The engine's access to a session's state; internal (not exported from the package). Every
 * function is pure state: none performs I/O.
 */
export interface SessionInternals {
  /** The store key of the verified cookie, or `null` when the request had none. */
  cookieKey(session: Session<object>): string | null;
  /** Throws `CORRUPT_RECORD` for an implausible record; `true` when it is expired. */
  expired(session: Session<object>, key: string, record: SessionRecord): boolean;
  /** Takes a stored record in (decoding may throw `CORRUPT_RECORD`). */
  loaded(session: Session<object>, key: string, record: SessionRecord): void;
  /** Starts an empty session when no record could be used. */
  fresh(session: Session<object>, why: FreshStart): void;
  /** The write this session needs now; `changes: false` plans a touch at most, `touch: false` never one. */
  plan(session: Session<object>, now: number, want: { changes: boolean; touch: boolean }): WritePlan;
  /** The planned write succeeded; `moved` is the record a move left at the new key. */
  written(session: Session<object>, plan: WritePlan, moved?: SessionRecord): void;
  /** A write found the record destroyed (or expired) meanwhile; `reported` marks the changes lost. */
  lost(session: Session<object>, reported: boolean): void;
  /** Keys to delete for a destroy. */
  destroyKeys(session: Session<object>): string[];
  destroyed(session: Session<object>): void;
  /** Gives the session a new identity; returns the key of the stored record it replaces. */
  regenerated(session: Session<object>): string | null;
  /** The response has started: changes from now on throw `SESSION_COMMITTED`. */
  committed(session: Session<object>): void;
  /** The cookie was handed to the adapter: a second commit sends nothing again. */
  cookieSent(session: Session<object>): void;
  cookieState(session: Session<object>): { clear: boolean; changed: boolean };
  wasLost(session: Session<object>): boolean;
  isDegraded(session: Session<object>): boolean;
}

/** Filled in by the `Session` class; the engine's only way into a session's state. */
export let sessionInternals: SessionInternals;

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

/** "No field texts": shared, never written to (every write path replaces it with a fresh map). */
const NO_TEXTS: ReadonlyMap<string, string | null> = new Map();

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
  readonly #host: SessionHost;
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
  /** The field texts of the write planned last (`null` = remove), taken in once it succeeds. */
  #planned: ReadonlyMap<string, string | null> = NO_TEXTS;

  /** @internal Made by the engine; use `engine.session(cookieHeader)` or an adapter. */
  constructor(host: SessionHost, cookieId: string | null, hadCookie: boolean, cookieKey?: string) {
    this.#host = host;
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
    this.#loading ??= this.#host.load(this as Session<object>);
    return this.#loading.then(() => this);
  }

  get<K extends DataKey<D>>(name: K): Promise<D[K] | undefined> {
    // Loaded already (the usual second read of a request): no await, one settled promise.
    if (this.#state === 'idle') return this.load().then(() => this.#read(name));
    try {
      return Promise.resolve(this.#read(name));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #read<K extends DataKey<D>>(name: K): D[K] | undefined {
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
    await this.#changed();
  }

  async delete(name: DataKey<D>): Promise<void> {
    await this.load();
    this.#assertWritable('delete', name);
    delete this.#data[name];
    this.#candidates.add(name);
    await this.#changed();
  }

  /** Removes every key (the session itself stays; use `destroy()` to end it). */
  async clear(): Promise<void> {
    await this.load();
    this.#assertWritable('clear');
    for (const name of Object.keys(this.#data)) this.#candidates.add(name);
    this.#data = Object.create(null);
    await this.#changed();
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
    await this.#changed();
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
    await this.#host.regenerate(this as Session<object>);
    await this.#changed();
  }

  /** Ends the session now: the record is deleted and the cookie cleared in the response. */
  async destroy(): Promise<void> {
    if (this.#state === 'destroyed') return;
    await this.#host.destroy(this as Session<object>);
  }

  /**
   * Writes pending changes now. With flush `'end'` the adapter calls it for you before the
   * response; with `'manual'` only your call writes.
   */
  async save(): Promise<void> {
    await this.#host.save(this as Session<object>);
  }

  async #changed(): Promise<void> {
    if (this.#host.options.flush === 'immediate') await this.save();
  }

  static {
    sessionInternals = {
      cookieKey: (s) => s.#cookieKey,
      expired: (s, key, record) => s.#expired(key, record),
      loaded: (s, key, record) => s.#loaded(key, record),
      fresh: (s, why) => s.#fresh(why),
      plan: (s, now, want) => s.#plan(now, want),
      written: (s, plan, moved) => s.#written(plan, moved),
      lost: (s, reported) => s.#lost(reported),
      destroyKeys: (s) => s.#destroyKeys(),
      destroyed: (s) => s.#destroyed(),
      regenerated: (s) => s.#regenerated(),
      committed: (s) => {
        s.#committed = true;
      },
      cookieSent: (s) => {
        s.#cookieChanged = false;
        s.#clearCookie = false;
      },
      cookieState: (s) => ({ clear: s.#clearCookie, changed: s.#cookieChanged }),
      wasLost: (s) => s.#lostWrite,
      isDegraded: (s) => s.#degraded,
    };
  }

  /**
   * Whether a stored record is past its idle or absolute deadline, or claims an expiry no write
   * of these options could have given it (beyond now + the idle timeout, or beyond creation +
   * the absolute timeout): such a record is expired, so a damaged or forged expiry never keeps a
   * session alive. A creation time in the future, or an expiry before creation, is corrupt.
   */
  #expired(key: string, record: SessionRecord): boolean {
    const { idleMs, absoluteMs, now: clock } = this.#host.options;
    const now = clock();
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

  #loaded(key: string, record: SessionRecord): void {
    this.#decode(key, record);
    this.#id = this.#cookieId;
    this.#key = key;
    this.#stored = true;
    this.#createdAt = record.createdAt;
    this.#expiresAt = record.expiresAt;
    this.#userId = record.userId;
    this.#state = 'loaded';
  }

  #fresh(why: FreshStart): void {
    if (why === 'corrupt') this.#saved.clear();
    if (why === 'corrupt' || why === 'missing') this.#clearCookie = true;
    if (why === 'degraded') this.#degraded = true;
    const now = this.#host.options.now();
    this.#createdAt = now;
    this.#expiresAt = this.#nextExpiry(now);
    this.#state = 'loaded';
  }

  #decode(key: string, record: SessionRecord): void {
    const { codec, options } = this.#host;
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
    const saved = new Map<string, string>();
    for (const [name, stored] of Object.entries(record.fields)) {
      // Every store's record, whatever it checked: a reserved name is never decoded.
      if (RESERVED_KEYS.has(name)) {
        throw new SessionError('CORRUPT_RECORD', `record ${shortKey(key)} has a field named "${name}"; it is kept`);
      }
      const text = codec.open(key, name, stored);
      data[name] = codec.parse(name, text, key);
      saved.set(name, text);
    }
    this.#data = data;
    this.#saved = saved;
  }

  #plan(now: number, want: { changes: boolean; touch: boolean }): WritePlan {
    this.#planned = NO_TEXTS;
    if (this.#state !== 'loaded' || this.#degraded) return NO_WRITE;
    const texts = want.changes ? this.#changes() : NO_TEXTS;
    if (texts.size > 0 || (want.changes && (this.#userChanged || this.#replaces !== null))) {
      return this.#planWrite(texts);
    }
    if (!want.touch) return NO_WRITE;
    const expiresAt = this.#touchDue(now);
    return expiresAt === null ? NO_WRITE : { kind: 'touch', key: this.#key as string, expiresAt };
  }

  #planWrite(texts: ReadonlyMap<string, string | null>): WritePlan {
    if (this.#committed) {
      throw new SessionError(
        'SESSION_COMMITTED',
        'the session changed after it was committed (the response had started); the change was not saved',
      );
    }
    this.#checkSize(texts);
    this.#planned = texts;
    if (this.#key === null) this.#newIdentity();
    const key = this.#key as string;
    const { codec } = this.#host;
    if (!this.#stored && this.#replaces === null) {
      const fields: Record<string, string> = {};
      for (const [name, text] of this.#fieldsText(texts)) fields[name] = codec.seal(key, name, text);
      return {
        kind: 'create',
        key,
        record: { fields, createdAt: this.#createdAt, expiresAt: this.#expiresAt, userId: this.#userId },
      };
    }
    // A regenerate seals its changes for the record's old key, where they are applied; the
    // engine re-seals the moved record for the new key when encryption is on.
    const from = this.#replaces;
    if (from !== null) return { kind: 'move', from, to: key, change: this.#changeSet(from, texts, this.#expiresAt) };
    // The expiry moves in touch steps, as for an unmodified session: a change does not by itself
    // re-send the cookie (Set-Cookie only when the ID or the cookie's expiry changes).
    const expiresAt = this.#touchDue(this.#host.options.now()) ?? this.#expiresAt;
    return { kind: 'patch', key, change: this.#changeSet(key, texts, expiresAt) };
  }

  #written(plan: WritePlan, moved?: SessionRecord): void {
    switch (plan.kind) {
      case 'none':
        return;
      case 'touch':
        this.#expiresAt = plan.expiresAt;
        this.#cookieChanged = true;
        return;
      case 'patch':
        if (plan.change.expiresAt !== this.#expiresAt) this.#cookieChanged = true;
        this.#expiresAt = plan.change.expiresAt;
        break;
      case 'move':
        this.#replaces = null;
        this.#stored = true;
        this.#cookieChanged = true;
        break;
      case 'create':
        this.#stored = true;
        this.#cookieChanged = true;
        break;
    }
    const texts = this.#planned;
    for (const [name, text] of texts) {
      if (text === null) this.#saved.delete(name);
      else this.#saved.set(name, text);
    }
    this.#candidates.clear();
    this.#userChanged = false;
    if (plan.kind === 'move' && moved) this.#adopt(plan.to, moved, texts);
    this.#planned = NO_TEXTS;
  }

  /** The change set of a write: changed fields sealed for `sealKey`, the new expiry and owner. */
  #changeSet(sealKey: string, texts: ReadonlyMap<string, string | null>, expiresAt: number): ChangeSet {
    const { codec } = this.#host;
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

  /**
   * Takes in what other requests committed to a moved record (fields this request did not
   * change), so that a later write from this request does not undo them.
   */
  #adopt(key: string, record: SessionRecord, changed: ReadonlyMap<string, string | null>): void {
    const { codec } = this.#host;
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

  #lost(reported: boolean): void {
    this.#state = 'destroyed';
    this.#stored = false;
    this.#data = Object.create(null);
    this.#clearCookie = true;
    this.#planned = new Map();
    if (reported) this.#lostWrite = true;
  }

  #destroyKeys(): string[] {
    const keys = [this.#stored ? this.#key : null, this.#replaces].filter((k): k is string => k !== null);
    if (keys.length === 0 && this.#cookieKey) keys.push(this.#cookieKey);
    return keys;
  }

  #destroyed(): void {
    const hadCookie = this.#stored || this.#cookieId !== null;
    this.#state = 'destroyed';
    this.#stored = false;
    this.#data = Object.create(null);
    this.#candidates.clear();
    this.#replaces = null;
    if (hadCookie) this.#clearCookie = true;
  }

  #regenerated(): string | null {
    const oldKey = this.#stored ? this.#key : null;
    if (oldKey) this.#replaces = oldKey;
    this.#newIdentity();
    this.#userChanged = true;
    return oldKey;
  }

  /** Whether an unmodified stored session is due for a touch: the new expiry, or `null`. */
  #touchDue(now: number): number | null {
    if (!this.#stored) return null;
    const { idleMs, touchAfterMs } = this.#host.options;
    const next = this.#nextExpiry(now);
    if (next <= this.#expiresAt) return null;
    const lastTouch = this.#expiresAt - idleMs;
    return now - lastTouch >= touchAfterMs ? next : null;
  }

  #newIdentity(): void {
    this.#id = generateId();
    this.#key = hashId(this.#id);
    this.#stored = false;
    this.#cookieChanged = true;
    this.#expiresAt = this.#nextExpiry(this.#host.options.now());
  }

  #nextExpiry(now: number): number {
    const { idleMs, absoluteMs } = this.#host.options;
    const idle = now + idleMs;
    return absoluteMs === null ? idle : Math.min(idle, this.#createdAt + absoluteMs);
  }

  /** Serialized text of each candidate field that differs from the store (`null` = remove). */
  #changes(): ReadonlyMap<string, string | null> {
    if (!this.#exposed && this.#candidates.size === 0) return NO_TEXTS;
    const { codec } = this.#host;
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
    return texts;
  }

  /** Every field's text for a full write: the changes over what was loaded. */
  #fieldsText(changes: ReadonlyMap<string, string | null>): Map<string, string> {
    const all = new Map(this.#saved);
    for (const [name, text] of changes) {
      if (text === null) all.delete(name);
      else all.set(name, text);
    }
    return all;
  }

  #checkSize(changes: ReadonlyMap<string, string | null>): void {
    let size = 0;
    for (const [name, text] of this.#fieldsText(changes)) size += Buffer.byteLength(name) + Buffer.byteLength(text);
    if (size > this.#host.options.maxSizeBytes) {
      throw new SessionError(
        'SESSION_TOO_LARGE',
        `the session would be ${size} bytes, over maxSizeBytes (${this.#host.options.maxSizeBytes}); nothing was written`,
      );
    }
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

const NO_WRITE: WritePlan = { kind: 'none' };
