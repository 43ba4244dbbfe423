import type { StandardSchemaV1 } from '@standard-schema/spec';
import * as v from 'valibot';
import { check, type Same } from './check.ts';
import type { FieldCodec } from './codec.ts';
import { SessionError } from './errors.ts';
import { generateId, hashId, shortKey, syncCrypto, utf8Length } from './ids.ts';
import {
  type Lifetime,
  lifetimeSchema,
  type Meta,
  metaLifetime,
  metaText,
  parseMeta,
  resolveLifetime,
  type SessionLifetime,
} from './meta.ts';
import type { ResolvedOptions } from './options.ts';
import {
  type ChangeSet,
  FLASH_PREFIX,
  INTERNAL_PREFIX,
  META_FIELD,
  RESERVED_KEYS,
  type SessionRecord,
} from './store.ts';

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
 * The shape of flash messages (values shown by the one request that follows, e.g. after a
 * redirect). Extend it by declaration merging, as {@link SessionData}:
 *
 * ```ts
 * declare module 'tessera' {
 *   interface FlashData { notice: string }
 * }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by declaration merging
export interface FlashData {}

/** Names of flash messages. */
export type FlashKey = Extract<keyof FlashData, string>;

/**
 * What an adapter tells the engine about a request's client. Read only when a session is tied
 * to a user (`setUser`), to record its device; adapters pass an object whose properties are
 * worked out on access.
 */
export interface ClientInfo {
  /** The `User-Agent` header. */
  readonly userAgent?: string | undefined;
  /** The client's IP address, as the framework determined it (proxy settings applied). */
  readonly ip?: string | undefined;
  /**
   * For adapters that hold the response only when the commit will do something (a store write
   * or a header): the session calls it, once, as soon as it knows (a change, data handed out to
   * be changed in place, a touch or a cookie to clear found at load). `false` says the commit can
   * no longer happen (the response has started): a change then throws `SESSION_COMMITTED`.
   * Without it, the adapter commits every request.
   */
  commitNeeded?(): boolean;
}

/** Options of `session.setUser`. */
export interface SetUserOptions {
  /**
   * A label for this session's device, shown by `listUserSessions` (e.g. the app's name and
   * platform, `'Acme for iOS'`); at most 200 characters.
   * @default none
   */
  label?: string;
}

const setUserSchema = v.strictObject({
  label: v.optional(v.pipe(v.string('must be a string'), v.maxLength(200, 'must be at most 200 characters'))),
});
const setUserSame: Same<v.InferInput<typeof setUserSchema>, SetUserOptions> = true;
void setUserSame;

/** A session of a user as `listUserSessions` shows it ("your devices"). Times are epoch ms. */
export interface UserSession {
  /** The store key (SHA-256 of the ID): pass it to `engine.destroyByKey` to end that session. */
  key: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
  /**
   * When the session was last written or touched (touches are throttled by `touchAfterSeconds`,
   * so this is as precise as that). Derived from the expiry (minus the idle timeout): no write of
   * its own. In the last idle window before the absolute timeout, where touches no longer move
   * the expiry, it reads as that window's start.
   */
  lastSeenAt: number;
  /** The last `setUser` or `regenerate` (a login), or `null`. */
  authenticatedAt: number | null;
  /** The `User-Agent` when the session was tied to its user (see the engine's `devices`), or `null`. */
  userAgent: string | null;
  /** The IP address then, as `devices.ip` keeps it (truncated, hashed), or `null`. */
  ip: string | null;
  /** The label given to `setUser`, or `null`. */
  label: string | null;
  /** This is the session of the request that asked. */
  current: boolean;
}

/**
 * What a session asks of its engine; internal. The session only keeps state and works out what
 * to write; the engine does every store call, applies timeouts and the failure policy, and
 * emits the events.
 */
export interface SessionHost {
  readonly options: ResolvedOptions;
  readonly codec: FieldCodec;
  /** Loads the session; `undefined` when that was done at once (a record the store held in memory). */
  load(session: Session<object>): Promise<unknown> | undefined;
  save(session: Session<object>): Promise<WriteKind | 'lost'>;
  destroy(session: Session<object>): Promise<void>;
  regenerate(session: Session<object>): Promise<void>;
  /** Web Crypto path: a new ID for the session and its store key, made ahead by the engine. */
  newIdentity(session: Session<object>): { id: string; key: string };
  /** The device facts `setUser` records, as the engine's `devices` option keeps them. */
  device(client: ClientInfo | undefined): Pick<Meta, 'userAgent' | 'ip'>;
  /** Before a session is tied to a user: throws `TOO_MANY_SESSIONS` when the user is at the limit. */
  admit(session: Session<object>, userId: string): Promise<void>;
  listUserSessions(userId: string, current: Session<object> | null): Promise<UserSession[]>;
  /** Destroys the user's sessions but `keep`; returns how many. */
  destroyOthers(userId: string, keep: readonly string[]): Promise<number>;
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
  /** Web Crypto path: the cookie value the engine held back verified to this ID and key, or (`null`) did not: the cookie is cleared. */
  verified(session: Session<object>, identity: { id: string; key: string } | null): void;
  /** The store key of the verified cookie, or `null` when the request had none. */
  cookieKey(session: Session<object>): string | null;
  /** Throws `CORRUPT_RECORD` for an implausible record; `true` when it is expired. */
  expired(session: Session<object>, key: string, record: SessionRecord): boolean;
  /** Takes a stored record in (decoding, or the engine's schema, may throw `CORRUPT_RECORD`); a promise while an async schema checks it. */
  loaded(session: Session<object>, key: string, record: SessionRecord): void | Promise<void>;
  /** Data may have been changed in place since the schema last checked it. */
  unchecked(session: Session<object>): boolean;
  /** Checks data changed in place against the schema: `INVALID_DATA` when it does not fit. */
  checkChanged(session: Session<object>): void | Promise<void>;
  /** Starts an empty session when no record could be used. */
  fresh(session: Session<object>, why: FreshStart): void;
  /** Tells the adapter the commit will have work (see `ClientInfo.commitNeeded`). */
  commitNeeded(session: Session<object>): void;
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
  /** The lifetime the session's expiry and cookie follow. */
  lifetime(session: Session<object>): Lifetime;
  /** Keys the session's record lives at, or will (the new one and the one a regenerate replaces). */
  ownKeys(session: Session<object>): string[];
  /** What the adapter gave the engine for this request (adapters find their request state through it). */
  client(session: Session<object>): ClientInfo | undefined;
}

/** Filled in by the `Session` class; the engine's only way into a session's state. */
export let sessionInternals: SessionInternals;

type State = 'idle' | 'loaded' | 'destroyed';

/** How far another server's clock may run ahead of this one's before a stored time is implausible. */
const CLOCK_SKEW_MS = 60_000;

function assertKey(name: string): void {
  if (typeof name !== 'string' || RESERVED_KEYS.has(name) || isInternal(name)) {
    throw new SessionError(
      'INVALID_KEY',
      `${JSON.stringify(name)} cannot be a session key (${[...RESERVED_KEYS].join(', ')} and names starting with "${INTERNAL_PREFIX}" are reserved); pick another name`,
    );
  }
}

/** A flash message's name: a non-empty string. */
function assertFlashName(name: string): void {
  if (typeof name !== 'string' || name === '') {
    throw new SessionError(
      'INVALID_KEY',
      `${JSON.stringify(name)} cannot name a flash message; use a non-empty string`,
    );
  }
}

/** A Standard Schema's verdict on data: its output as session data, or `fail(problem)` thrown. */
function verdict(
  result: StandardSchemaV1.Result<unknown>,
  fail: (problem: string) => SessionError,
): Record<string, unknown> {
  if (result.issues) {
    const [first] = result.issues;
    const path = (first?.path ?? []).map((part) => String(typeof part === 'object' ? part.key : part)).join('.');
    const more = result.issues.length > 1 ? ` (and ${result.issues.length - 1} more)` : '';
    throw fail(`${path === '' ? '' : `${path}: `}${first?.message ?? 'refused'}${more}`);
  }
  const value = result.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail('the schema’s output is not an object');
  }
  return Object.assign(new DataObject(), value);
}

/** Runs `schema` on `data`: its output, at once for a sync schema, or a promise of it. */
function validate(
  schema: StandardSchemaV1,
  data: Record<string, unknown>,
  fail: (problem: string) => SessionError,
): Record<string, unknown> | Promise<Record<string, unknown>> {
  const result = schema['~standard'].validate(data);
  return result instanceof Promise ? result.then((settled) => verdict(settled, fail)) : verdict(result, fail);
}

const invalidData = (problem: string) =>
  new SessionError('INVALID_DATA', `the session data does not fit the schema: ${problem}; nothing was changed`);

/** What a session keeps for the features beyond its data (see `Session.#x`). */
interface Extras {
  /** The engine's metadata of this session (own lifetime, authentication, device), or none. */
  meta: Meta | null;
  /** `meta` differs from what is stored. */
  metaChanged: boolean;
  /** The session's own lifetime, or `null` for the engine's. */
  lifetime: Lifetime | null;
  /** The lifetime changed since the last write: the expiry is worked out again and the cookie sent. */
  lifetimeChanged: boolean;
  /** Flash messages the record brought (from the request before), consumed by this request's write. */
  flashIn: Map<string, unknown> | null;
  /** Flash messages this request leaves for the next one (`undefined`: take one back). */
  flashOut: Map<string, unknown> | null;
  /** With a schema: data was handed out as objects (and may change in place) since it last checked it. */
  unchecked: boolean;
}

/** A name is an internal field's (metadata, flash messages): never data. */
const isInternal = (name: string) => name.startsWith(INTERNAL_PREFIX);

/**
 * "No field texts": shared and empty, never written to. The planned texts of no write, and a
 * session's stored texts until it loads or writes a record (writes go through `#ownSaved`).
 */
const NO_TEXTS: ReadonlyMap<string, never> = new Map<string, never>();

/**
 * Makes a session's data object: nothing inherited (`get('toString')` is `undefined`), as with
 * `Object.create(null)`, but a fast object with a shape, made by a constructor whose prototype
 * is an empty frozen object without a prototype. `Object.create(null)` gives a dictionary of
 * over 100 bytes, a hash table for every read and write of a field.
 */
const DataObject = function DataObject() {} as unknown as new () => Record<string, unknown>;
DataObject.prototype = Object.freeze(Object.create(null));

/**
 * The data of a session that has none yet: shared and frozen (a write that missed `#ownData`
 * throws instead of reaching another session).
 */
const NO_DATA: Record<string, unknown> = Object.freeze(new DataObject());

/** UTF-8 bytes of stored field names and values, as the store holds them. */
function storedSize(fields: Record<string, string>): number {
  let size = 0;
  for (const name in fields) size += utf8Length(name) + utf8Length(fields[name] as string);
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
  #cookieId: string | null;
  /** The store key of #cookieId. */
  #cookieKey: string | null;
  #state: State = 'idle';
  #loading: Promise<unknown> | null = null;
  /** The raw ID of the stored record (or the one to store), never logged. */
  #id: string | null = null;
  #key: string | null = null;
  /** Whether the record at #key exists in the store. */
  #stored = false;
  /** Nothing inherited (a `DataObject`): a key never reaches Object.prototype. Shared and frozen until written (`#ownData`). */
  #data: Record<string, unknown> = NO_DATA;
  /**
   * Serialized text of each field as it is in the store. Shared and empty until a record is
   * loaded or written (a map per request cost every session that never loads one): writes go
   * through `#ownSaved()`.
   */
  #saved: ReadonlyMap<string, string> = NO_TEXTS;
  /** Fields changed through the API, or handed out as objects (they may be mutated in place). */
  #candidates: Set<string> | null = null;
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
  /** What the adapter knows of the client (read at `setUser` only). */
  readonly #client: ClientInfo | undefined;
  /** The features' state, made on first use: a session that uses none carries one empty slot. */
  #x: Extras | null = null;
  /** The adapter was told a commit is needed (see `ClientInfo.commitNeeded`). */
  #commitNoticed = false;

  /** @internal Made by the engine; use `engine.session(cookieHeader)` or an adapter. */
  constructor(host: SessionHost, cookieId: string | null, hadCookie: boolean, cookieKey?: string, client?: ClientInfo) {
    this.#host = host;
    this.#cookieId = cookieId;
    this.#cookieKey = cookieKey ?? (cookieId === null ? null : hashId(cookieId));
    this.#client = client;
    if (hadCookie && cookieId === null) {
      this.#clearCookie = true;
      this.#commitNeeded(false);
    }
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

  /** When the session was last authenticated (`setUser` or `regenerate`), or `null`. Read after loading. */
  get authenticatedAt(): number | null {
    return this.#x?.meta?.authAt ?? null;
  }

  /** The lifetime this session follows: its own (`setLifetime`, `rememberMe`) or the engine's. */
  get lifetime(): Required<SessionLifetime> {
    const { idleMs, absoluteMs, persistent } = this.#life();
    return {
      idleTimeoutSeconds: idleMs / 1000,
      absoluteTimeoutSeconds: absoluteMs === null ? null : absoluteMs / 1000,
      persistent,
    };
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
    this.#handedOut();
    return this.#ownData() as Partial<D>;
  }

  /** Reads the session from the store, once. Later calls return at once. */
  load(): Promise<this> {
    if (this.#state !== 'idle') return Promise.resolve(this);
    const loading = this.#startLoad();
    return loading === undefined ? Promise.resolve(this) : loading.then(() => this);
  }

  /** The load under way, started if need be; `undefined` when it was done at once (held in memory). */
  #startLoad(): Promise<unknown> | undefined {
    if (this.#loading === null) {
      const loading = this.#host.load(this as Session<object>);
      if (loading === undefined) return undefined;
      this.#loading = loading;
    }
    return this.#loading;
  }

  get<K extends DataKey<D>>(name: K): Promise<D[K] | undefined> {
    // Loaded already (the usual second read of a request): no await, one settled promise.
    if (this.#state === 'idle') {
      // A record the store held in memory loads at once: then no promise but the answer's.
      const loading = this.#startLoad();
      if (loading !== undefined) return loading.then(() => this.#read(name));
    }
    try {
      return Promise.resolve(this.#read(name));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #read<K extends DataKey<D>>(name: K): D[K] | undefined {
    this.#assertUsable('get');
    const value = this.#data[name];
    if (typeof value === 'object' && value !== null) {
      this.#candidate(name);
      this.#handedOut();
    }
    return value as D[K] | undefined;
  }

  async has(name: DataKey<D>): Promise<boolean> {
    await this.load();
    return Object.hasOwn(this.#data, name);
  }

  set<K extends DataKey<D>>(name: K, value: D[K]): Promise<void> {
    return this.#change('set', name, value);
  }

  delete(name: DataKey<D>): Promise<void> {
    return this.#change('delete', name, undefined);
  }

  /**
   * {@link set} and {@link delete} (`value` undefined). Loaded, no schema, nothing flushed at once
   * (the usual change): no await, one settled promise; errors still arrive as rejections.
   */
  #change(action: 'set' | 'delete', name: string, value: unknown): Promise<void> {
    if (!this.#changesNow()) return this.#changeInTurns(action, name, value);
    try {
      this.#assertWritable(action, name);
      this.#put(name, value);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@link #change} with its waits: the load, the schema, an immediate flush. */
  async #changeInTurns(action: 'set' | 'delete', name: string, value: unknown): Promise<void> {
    await this.load();
    this.#assertWritable(action, name);
    const schema = this.#host.options.schema;
    let stored = value;
    if (schema) {
      const next = { ...this.#data, [name]: value };
      if (value === undefined) delete next[name];
      const output = await validate(schema, next, invalidData);
      // What the schema gives back for a set is what is kept (a transform's output, typed as it
      // says); a delete removes the key whatever the schema would default it to.
      if (action === 'set') stored = output[name];
      this.#assertWritable(action, name);
    }
    this.#put(name, stored);
    await this.#changed();
  }

  /** Keeps `value` under `name` (`undefined` removes it) and marks the name for the commit. */
  #put(name: string, value: unknown): void {
    if (value === undefined) delete this.#ownData()[name];
    else this.#ownData()[name] = value;
    this.#candidate(name);
  }

  /**
   * Whether a change can be made at once: no schema to wait for, no immediate flush, and the
   * session loaded, or loaded at once now (a new session, a record held in memory). Otherwise
   * the load is under way for the change to wait on.
   */
  #changesNow(): boolean {
    const { options } = this.#host;
    if (options.schema !== null || options.flush === 'immediate') return false;
    return this.#state !== 'idle' || this.#startLoad() === undefined;
  }

  /** Removes every key (the session itself stays; use `destroy()` to end it). */
  async clear(): Promise<void> {
    await this.load();
    this.#assertWritable('clear');
    const schema = this.#host.options.schema;
    if (schema) {
      await validate(schema, Object.create(null), invalidData);
      this.#assertWritable('clear');
    }
    for (const name of Object.keys(this.#data)) this.#candidate(name);
    this.#data = NO_DATA;
    await this.#changed();
  }

  /** A shallow copy of all data. */
  async all(): Promise<Partial<D>> {
    await this.load();
    this.#exposed = true;
    this.#handedOut();
    return { ...this.#data } as Partial<D>;
  }

  /**
   * Ties the session to a user, for `listUserSessions` and `destroyUserSessions`, and records
   * the login: the time (see `authenticatedWithin`) and the device (user agent and IP address as
   * the engine's `devices` option keeps them, and `options.label`). `null` unties it and forgets
   * both. With `maxSessionsPerUser` and `onMaxSessions: 'refuse'`, a user at the limit makes it
   * throw `TOO_MANY_SESSIONS`, changing nothing.
   */
  async setUser(userId: string | null, options: SetUserOptions = {}): Promise<void> {
    await this.load();
    this.#assertWritable('setUser');
    if (userId !== null && (typeof userId !== 'string' || userId === '')) {
      throw new SessionError('INVALID_STATE', 'setUser takes a non-empty string or null');
    }
    const { label } = check(setUserSchema, options, { scope: 'session', label: 'setUser' });
    if (userId === this.#userId && label === undefined) return;
    if (userId === null) {
      this.#updateMeta({ authAt: undefined, userAgent: undefined, ip: undefined, label: undefined });
    } else {
      if (userId !== this.#userId) {
        await this.#host.admit(this as Session<object>, userId);
        // Checked again: the session may have been committed while admit waited for the store.
        this.#assertWritable('setUser');
        const now = this.#host.options.now();
        this.#updateMeta({ authAt: now, label: undefined, ...this.#host.device(this.#client) });
      }
      if (label !== undefined) this.#updateMeta({ label });
    }
    if (userId !== this.#userId) {
      this.#userId = userId;
      this.#userChanged = true;
    }
    await this.#changed();
  }

  /**
   * Whether the session's user authenticated (`setUser` or `regenerate`) at most `seconds` ago:
   * for routes that change a password or an email ("sudo mode"). After the user confirms their
   * password again, call `regenerate()`, which records the time anew.
   */
  async authenticatedWithin(seconds: number): Promise<boolean> {
    if (typeof seconds !== 'number' || !(seconds >= 0)) {
      throw new SessionError('INVALID_STATE', `authenticatedWithin takes a number of seconds >= 0, got ${seconds}`);
    }
    await this.load();
    const at = this.#x?.meta?.authAt;
    if (this.#userId === null || at === undefined) return false;
    return this.#host.options.now() - at <= seconds * 1000;
  }

  /**
   * Gives this session its own lifetime: idle and absolute timeouts, and whether its cookie
   * survives a browser restart. Kept with the record, so every later request (and the store's
   * own expiry) follows it. Options not given keep the engine's.
   */
  async setLifetime(lifetime: SessionLifetime): Promise<void> {
    const given = check(lifetimeSchema, lifetime, { scope: 'session', label: 'setLifetime' });
    const { options } = this.#host;
    await this.#setLifetime(resolveLifetime(options.lifetime, given, options.touchRatio), {
      idle: given.idleTimeoutSeconds,
      absolute: given.absoluteTimeoutSeconds,
      persistent: given.persistent,
    });
  }

  /**
   * "Remember me" at login: `true` gives the session the engine's `rememberMe` lifetime (30 days
   * and a persistent cookie by default); `false` the engine's timeouts with a cookie that ends
   * with the browser.
   */
  async rememberMe(remember = true): Promise<void> {
    const { options } = this.#host;
    if (!remember) {
      await this.#setLifetime({ ...options.lifetime, persistent: false }, { persistent: false });
      return;
    }
    const life = options.rememberMe;
    await this.#setLifetime(life, {
      idle: life.idleMs / 1000,
      absolute: life.absoluteMs === null ? null : life.absoluteMs / 1000,
      persistent: life.persistent,
    });
  }

  async #setLifetime(life: Lifetime, stored: Pick<Meta, 'idle' | 'absolute' | 'persistent'>): Promise<void> {
    await this.load();
    this.#assertWritable('setLifetime');
    const before = this.#life();
    this.#updateMeta({ idle: undefined, absolute: undefined, persistent: undefined, ...stored });
    const x = this.#extras();
    x.lifetime = life;
    const same =
      before.idleMs === life.idleMs && before.absoluteMs === life.absoluteMs && before.persistent === life.persistent;
    if (!same) {
      x.lifetimeChanged = true;
      // A session not stored yet (or moving to a new key) is written with the new expiry.
      if (!this.#stored || this.#replaces !== null) this.#expiresAt = this.#nextExpiry(this.#host.options.now());
    }
    await this.#changed();
  }

  /**
   * Leaves a message for the next request of this session only (a redirect after a form post):
   * it reads it with `flashed(name)`, and its commit removes it. Stored as a field of its own, so
   * it obeys the same concurrency rules as any changed key. `undefined` takes it back.
   */
  async flash<K extends FlashKey>(name: K, value: FlashData[K]): Promise<void> {
    await this.load();
    this.#assertWritable('flash');
    assertFlashName(name);
    // `undefined` stays as a marker: a message already written (flush 'immediate') is removed.
    const x = this.#extras();
    x.flashOut ??= new Map();
    x.flashOut.set(name, value);
    await this.#changed();
  }

  /** The message the previous request left with `flash(name, value)`, or `undefined`. */
  async flashed<K extends FlashKey>(name: K): Promise<FlashData[K] | undefined> {
    await this.load();
    this.#assertUsable('flashed');
    return this.#x?.flashIn?.get(name) as FlashData[K] | undefined;
  }

  /**
   * The sessions of this session's user ("your devices"), this one marked `current`; none
   * without a user. Needs a store with a per-user index.
   */
  async listUserSessions(): Promise<UserSession[]> {
    await this.load();
    if (this.#userId === null) return [];
    return this.#host.listUserSessions(this.#userId, this as Session<object>);
  }

  /**
   * Ends every other session of this session's user ("log out my other devices"); returns how
   * many. Needs a store with a per-user index. A login racing it on another device may survive.
   */
  async destroyOtherSessions(): Promise<number> {
    await this.load();
    this.#assertUsable('destroyOtherSessions');
    if (this.#userId === null) return 0;
    return this.#host.destroyOthers(this.#userId, this.#ownKeys());
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
    this.#updateMeta({ authAt: this.#host.options.now() });
    await this.#changed();
  }

  /** Ends the session now: the record is deleted and the cookie cleared in the response. */
  async destroy(): Promise<void> {
    if (this.#state === 'destroyed') return;
    this.#commitNeeded(false); // the cookie is cleared at the commit
    await this.#host.destroy(this as Session<object>);
  }

  /**
   * Writes pending changes now. With flush `'end'` the adapter calls it for you before the
   * response; with `'manual'` only your call writes.
   */
  async save(): Promise<void> {
    this.#commitNeeded(false); // a new session's cookie goes out at the commit
    await this.#host.save(this as Session<object>);
  }

  async #changed(): Promise<void> {
    if (this.#host.options.flush === 'immediate') await this.save();
  }

  static {
    sessionInternals = {
      cookieKey: (s) => s.#cookieKey,
      client: (s) => s.#client,
      verified: (s, identity) => {
        if (identity === null) s.#clearCookie = true;
        else ({ id: s.#cookieId, key: s.#cookieKey } = identity);
      },
      expired: (s, key, record) => s.#expired(key, record),
      loaded: (s, key, record) => s.#loaded(key, record),
      unchecked: (s) => s.#x?.unchecked === true,
      checkChanged: (s) => s.#checkChanged(),
      fresh: (s, why) => s.#fresh(why),
      commitNeeded: (s) => s.#commitNeeded(false),
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
      lifetime: (s) => s.#life(),
      ownKeys: (s) => s.#ownKeys(),
    };
  }

  /**
   * Whether a stored record is past its idle or absolute deadline, or claims an expiry no write
   * of these options could have given it (beyond now + the idle timeout, or beyond creation +
   * the absolute timeout): such a record is expired, so a damaged or forged expiry never keeps a
   * session alive. A creation time in the future, or an expiry before creation, is corrupt.
   */
  #expired(key: string, record: SessionRecord): boolean {
    const stored = record.fields[META_FIELD];
    if (stored !== undefined) this.#takeMeta(key, stored);
    const { idleMs, absoluteMs } = this.#life();
    const now = this.#host.options.now();
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

  #loaded(key: string, record: SessionRecord): void | Promise<void> {
    this.#decode(key, record);
    const schema = this.#host.options.schema;
    if (schema) {
      const corrupt = (problem: string) =>
        new SessionError(
          'CORRUPT_RECORD',
          `record ${shortKey(key)}: its data does not fit the schema: ${problem}; the record is kept`,
        );
      const checked = validate(schema, this.#data, corrupt);
      if (checked instanceof Promise) {
        return checked.then((data) => {
          this.#data = data;
          this.#taken(key, record);
        });
      }
      this.#data = checked;
    }
    this.#taken(key, record);
  }

  /** Data changed in place (the `data` view, objects from `get`), checked before it is written. */
  #checkChanged(): void | Promise<void> {
    const schema = this.#host.options.schema;
    if (!schema || this.#state !== 'loaded') {
      if (this.#x) this.#x.unchecked = false;
      return;
    }
    const fail = (problem: string) =>
      new SessionError('INVALID_DATA', `the session data does not fit the schema: ${problem}; nothing was written`);
    // Still unchecked when it fails: a second commit or save checks again.
    const checked = validate(schema, this.#data, fail);
    if (checked instanceof Promise) {
      return checked.then(() => {
        if (this.#x) this.#x.unchecked = false;
      });
    }
    if (this.#x) this.#x.unchecked = false;
  }

  /** A decoded (and checked) record becomes this session's. */
  #taken(key: string, record: SessionRecord): void {
    this.#id = this.#cookieId;
    this.#key = key;
    this.#stored = true;
    this.#createdAt = record.createdAt;
    this.#expiresAt = record.expiresAt;
    this.#userId = record.userId;
    this.#state = 'loaded';
    // A touch due, or flash messages to take away: the commit will write.
    if (this.#touchDue(this.#host.options.now()) !== null || (this.#x?.flashIn?.size ?? 0) > 0) {
      this.#commitNeeded(false);
    }
  }

  #fresh(why: FreshStart): void {
    if (why === 'corrupt') this.#data = NO_DATA;
    this.#x = null;
    if (why === 'corrupt') this.#saved = NO_TEXTS;
    if (why === 'corrupt' || why === 'missing') {
      this.#clearCookie = true;
      this.#commitNeeded(false);
    }
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
    const data = new DataObject();
    const saved = new Map<string, string>();
    const { fields } = record;
    for (const name in fields) {
      if (!Object.hasOwn(fields, name)) continue;
      const stored = fields[name] as string;
      // Every store's record, whatever it checked: a reserved name is never decoded.
      if (RESERVED_KEYS.has(name)) {
        throw new SessionError('CORRUPT_RECORD', `record ${shortKey(key)} has a field named "${name}"; it is kept`);
      }
      if (isInternal(name)) {
        saved.set(name, this.#internalLoaded(key, name, stored));
        continue;
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
    const lifetimeChanged = this.#x?.lifetimeChanged === true;
    if (texts.size > 0 || (want.changes && (this.#userChanged || this.#replaces !== null || lifetimeChanged))) {
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
    const now = this.#host.options.now();
    const expiresAt =
      this.#x?.lifetimeChanged === true ? this.#nextExpiry(now) : (this.#touchDue(now) ?? this.#expiresAt);
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
        if (plan.change.expiresAt !== this.#expiresAt || this.#x?.lifetimeChanged === true) this.#cookieChanged = true;
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
    if (texts.size > 0) {
      const saved = this.#ownSaved();
      for (const [name, text] of texts) {
        if (text === null) saved.delete(name);
        else saved.set(name, text);
      }
    }
    this.#candidates = null;
    this.#userChanged = false;
    const x = this.#x;
    if (x !== null) {
      x.lifetimeChanged = false;
      x.metaChanged = false;
      // Consumed: the messages the write removed are gone for the rest of this request too.
      if (x.flashIn !== null)
        for (const name of x.flashIn.keys()) if (!this.#saved.has(FLASH_PREFIX + name)) x.flashIn.delete(name);
    }
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
    const saved = this.#ownSaved();
    for (const name of [...saved.keys()]) {
      if (!changed.has(name) && !Object.hasOwn(record.fields, name)) {
        saved.delete(name);
        if (!isInternal(name)) delete this.#ownData()[name];
      }
    }
    for (const [name, stored] of Object.entries(record.fields)) {
      if (changed.has(name)) continue;
      const text = codec.open(key, name, stored);
      if (saved.get(name) === text) continue;
      saved.set(name, text);
      // Metadata another request wrote is taken in; its flash messages are for the next request.
      if (name === META_FIELD && this.#x?.metaChanged !== true) this.#applyMeta(key, text);
      else if (!isInternal(name)) this.#ownData()[name] = codec.parse(name, text, key);
    }
  }

  /** Marks a data field as possibly changed (checked against the store at commit). */
  #candidate(name: string): void {
    (this.#candidates ??= new Set()).add(name);
  }

  /** `#data`, made this session's own object first if it is still the shared empty one. */
  #ownData(): Record<string, unknown> {
    if (this.#data === NO_DATA) this.#data = new DataObject();
    return this.#data;
  }

  /** `#saved`, made this session's own map first if it is still the shared empty one. */
  #ownSaved(): Map<string, string> {
    if (this.#saved === NO_TEXTS) this.#saved = new Map();
    return this.#saved as Map<string, string>;
  }

  #lost(reported: boolean): void {
    this.#state = 'destroyed';
    this.#stored = false;
    this.#data = NO_DATA;
    this.#clearCookie = true;
    this.#planned = NO_TEXTS;
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
    this.#data = NO_DATA;
    this.#candidates = null;
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
    const { idleMs, touchAfterMs } = this.#life();
    const next = this.#nextExpiry(now);
    if (next <= this.#expiresAt) return null;
    const lastTouch = this.#expiresAt - idleMs;
    return now - lastTouch >= touchAfterMs ? next : null;
  }

  /** The keys this session's record is at or goes to (the current key, and the one a regenerate replaces). */
  #ownKeys(): string[] {
    return [this.#key, this.#replaces, this.#cookieKey].filter((k): k is string => k !== null);
  }

  #life(): Lifetime {
    return this.#x?.lifetime ?? this.#host.options.lifetime;
  }

  /** The metadata field of a stored record, before the expiry check (it may hold the session's own timeouts). */
  #takeMeta(key: string, stored: string): void {
    this.#applyMeta(key, this.#host.codec.open(key, META_FIELD, stored));
  }

  #applyMeta(key: string, text: string): void {
    const { options } = this.#host;
    const meta = parseMeta(text, `record ${shortKey(key)}`);
    const x = this.#extras();
    x.meta = meta;
    x.lifetime = metaLifetime(meta, options.lifetime, options.touchRatio);
  }

  /** An internal field of a loaded record: taken in, and its text returned for #saved. */
  #internalLoaded(key: string, name: string, stored: string): string {
    const { codec } = this.#host;
    const text = codec.open(key, name, stored);
    if (name === META_FIELD) {
      // Already taken in by the expiry check, which every load runs first.
      if ((this.#x?.meta ?? null) === null) this.#applyMeta(key, text);
    } else if (name.startsWith(FLASH_PREFIX)) {
      const x = this.#extras();
      x.flashIn ??= new Map();
      x.flashIn.set(name.slice(FLASH_PREFIX.length), codec.parse(name, text, key));
    }
    return text;
  }

  /** Data handed out as objects may change in place: with a schema, it is checked again at commit. */
  #handedOut(): void {
    if (this.#host.options.schema !== null) this.#extras().unchecked = true;
    // What is handed out may be changed in place, which only the commit finds.
    this.#commitNeeded(false);
  }

  /**
   * Tells the adapter, once, that the commit will have something to do. For a change
   * (`change`), an adapter that can no longer commit (the response started) makes it throw.
   */
  #commitNeeded(change: boolean): void {
    if (this.#commitNoticed) return;
    const client = this.#client;
    if (client?.commitNeeded === undefined) {
      this.#commitNoticed = true;
      return;
    }
    if (client.commitNeeded()) {
      this.#commitNoticed = true;
      return;
    }
    if (change) {
      throw new SessionError(
        'SESSION_COMMITTED',
        'a change to the session after the response had started (nothing was changed); change it before sending',
      );
    }
  }

  /** The features' state, made now if this is the first use. */
  #extras(): Extras {
    this.#x ??= {
      meta: null,
      metaChanged: false,
      lifetime: null,
      lifetimeChanged: false,
      flashIn: null,
      flashOut: null,
      unchecked: false,
    };
    return this.#x;
  }

  /** Changes the metadata (a new object: the stored one is compared as text); `undefined` removes a name. */
  #updateMeta(changes: Meta): void {
    const x = this.#extras();
    const next: Meta = { ...(x.meta ?? {}) };
    for (const [name, value] of Object.entries(changes)) {
      if (value === undefined) delete next[name as keyof Meta];
      else (next as Record<string, unknown>)[name] = value;
    }
    x.meta = next;
    x.metaChanged = true;
  }

  /** The internal fields' changes (metadata, flash messages) added to the data's. */
  #internalChanges(x: Extras, texts: ReadonlyMap<string, string | null>): ReadonlyMap<string, string | null> {
    const all = new Map(texts);
    const { codec } = this.#host;
    if (x.metaChanged) {
      const text = metaText(x.meta);
      const saved = this.#saved.get(META_FIELD);
      if (text === null) {
        if (saved !== undefined) all.set(META_FIELD, null);
      } else if (text !== saved) {
        all.set(META_FIELD, text);
      }
    }
    if (x.flashIn !== null) {
      for (const name of x.flashIn.keys()) {
        const field = FLASH_PREFIX + name;
        const next = x.flashOut?.get(name);
        if (this.#saved.has(field) && next === undefined) all.set(field, null);
      }
    }
    if (x.flashOut !== null) {
      for (const [name, value] of x.flashOut) {
        const field = FLASH_PREFIX + name;
        const saved = this.#saved.get(field);
        if (value === undefined) {
          if (saved !== undefined && !x.flashIn?.has(name)) all.set(field, null);
          continue;
        }
        const text = codec.serialize(value);
        if (text !== saved) all.set(field, text);
      }
    }
    return all.size === 0 ? NO_TEXTS : all;
  }

  #newIdentity(): void {
    if (syncCrypto) {
      this.#id = generateId();
      this.#key = hashId(this.#id);
    } else ({ id: this.#id, key: this.#key } = this.#host.newIdentity(this as Session<object>));
    this.#stored = false;
    this.#cookieChanged = true;
    this.#expiresAt = this.#nextExpiry(this.#host.options.now());
  }

  #nextExpiry(now: number): number {
    const { idleMs, absoluteMs } = this.#life();
    const idle = now + idleMs;
    return absoluteMs === null ? idle : Math.min(idle, this.#createdAt + absoluteMs);
  }

  /** Every field this write changes: the data's, then the internal fields' (metadata, flash messages). */
  #changes(): ReadonlyMap<string, string | null> {
    const texts = this.#dataChanges();
    const x = this.#x;
    const internal = x !== null && (x.metaChanged || x.flashIn !== null || x.flashOut !== null);
    return internal ? this.#internalChanges(x, texts) : texts;
  }

  /** Serialized text of each candidate data field that differs from the store (`null` = remove). */
  #dataChanges(): ReadonlyMap<string, string | null> {
    const candidates = this.#candidates;
    if (!this.#exposed && candidates === null) return NO_TEXTS;
    const { codec } = this.#host;
    const names = this.#exposed
      ? new Set([...Object.keys(this.#data), ...[...this.#saved.keys()].filter((name) => !isInternal(name))])
      : (candidates as Set<string>);
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
    // What the record would hold: the changed fields, and the stored ones they leave alone.
    let size = 0;
    for (const [name, text] of changes) if (text !== null) size += utf8Length(name) + utf8Length(text);
    for (const [name, text] of this.#saved) if (!changes.has(name)) size += utf8Length(name) + utf8Length(text);
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
    this.#commitNeeded(true);
  }
}

const NO_WRITE: WritePlan = { kind: 'none' };
