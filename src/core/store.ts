import { invalid } from './check.ts';
import { SessionError } from './errors.ts';

/**
 * The store contract. Small on purpose: four required methods, everything else an optional
 * capability that the engine and the conformance suite (`tessera/testing`) detect.
 *
 * Keys are always the SHA-256 hash of the session ID (base64url, 43 characters): a store never
 * sees a raw session ID. Values are already encoded by the engine: each top-level session key
 * maps to one string (JSON, or an encrypted envelope), so a store never parses session data and
 * can keep fields separately (a Redis hash) or together (a SQL JSON column).
 */

/** Metadata kept beside the data, never inside it. Times are epoch milliseconds. */
export interface RecordMeta {
  /** When the session was first stored. Drives the absolute timeout. */
  createdAt: number;
  /**
   * When the record stops being valid: the idle deadline, capped at the absolute deadline.
   * Stores must never return a record whose `expiresAt` has passed, and should use it as the
   * native TTL where they have one.
   */
  expiresAt: number;
  /** The user this session belongs to, for per-user listing and revocation; `null` for none. */
  userId: string | null;
}

/** A stored session: encoded fields plus metadata. */
export interface SessionRecord extends RecordMeta {
  /** Top-level session keys mapped to their encoded values. */
  fields: Record<string, string>;
}

/**
 * The changes one request made, applied atomically by `patch`. Fields not named are left as
 * they are in the store, which is what keeps concurrent requests that change different keys
 * from overwriting each other.
 */
export interface ChangeSet {
  /** Fields to write (new or changed), with their encoded values. */
  set: Record<string, string>;
  /** Fields to remove. */
  unset: string[];
  /** New expiry (epoch ms). */
  expiresAt: number;
  /** New owner; `undefined` leaves it unchanged, `null` clears it. */
  userId?: string | null;
}

/**
 * What a `patch` or `touch` found: `true` applied, `false` no record (destroyed or expired),
 * `'moved'` the record was moved to a new key by a regenerate moments ago (see `Store.move`).
 */
export type WriteOutcome = boolean | 'moved';

/** One entry of a per-user listing ("my devices"). */
export interface UserSessionEntry extends RecordMeta {
  /** The store key (ID hash) of that session. */
  key: string;
  /**
   * The record's {@link META_FIELD} as stored, when it has one: the device the session was
   * tied to its user from, its own lifetime. Stores return it from the same query as the rest
   * (no read per session); without it a listing shows no device details.
   */
  meta?: string | undefined;
}

/**
 * Field names starting with this belong to the engine (its metadata, flash messages): never a
 * session key. Stores keep them as any other field.
 */
export const INTERNAL_PREFIX = 'tessera:';

/**
 * The field in which the engine keeps what it knows about a session beside the app's data (the
 * session's own lifetime, its last authentication, its device). `listByUser` returns it.
 */
export const META_FIELD = 'tessera:meta';

/** Flash messages are fields named with this prefix and the message's name. */
export const FLASH_PREFIX = 'tessera:flash:';

/**
 * What every store implements. With these four (and a name) a store works: the engine writes
 * a whole record where a store cannot apply a change set, and an app gets a `NOT_SUPPORTED`
 * `SessionError` from features that need a capability the store lacks.
 *
 * Every method may throw; the engine wraps the error in a `STORE_UNAVAILABLE` `SessionError`
 * and never treats a failure as "no session".
 */
export interface StoreCore {
  /** Short name used in error messages and logs (`redis`, `sql`, `memory`). */
  readonly name: string;
  /**
   * The record for `key`, or `null` when there is none, it has expired, or it was moved. Callers
   * read the record and never change it, so a store may hand out one object more than once (the
   * read tier returns the record it caches, not a copy per read).
   */
  get(key: string): Promise<SessionRecord | null>;
  /** Writes the whole record, replacing any previous one. Used for new and regenerated sessions. */
  set(key: string, record: SessionRecord): Promise<void>;
  /** Removes the record (and its per-user index entry). Removing a missing record is not an error. */
  destroy(key: string): Promise<void>;
  /** Releases connections and timers the store created itself (never a client the user passed in). */
  close(): Promise<void>;
  /**
   * Gets ready to answer: loads the client library and opens connections. The engine calls it
   * once before the first store call, outside the per-call timeout, so a slow cold start is not
   * mistaken for an outage; apps may call `engine.ready()` at boot to fail early on bad settings.
   */
  ready?(): Promise<void>;
  /**
   * The record for `key` when this process holds it in memory and can answer without I/O (the
   * read tier's hit, the memory store), or `undefined` when only `get` can answer. An
   * optimisation: the engine asks it first, and a load it answers costs no store call, timer or
   * promise. It must agree with `get`: never a record `get` would not return now.
   */
  peek?(key: string): SessionRecord | undefined;
  /**
   * Counters the store keeps about itself, for `engine.metrics()`: a read tier's hits and misses,
   * compare-and-set writes replayed after losing a race. Cheap and synchronous.
   */
  metrics?(): StoreMetrics;
}

/** What {@link StoreCore.metrics} returns; a store gives the counters it keeps. */
export interface StoreMetrics {
  /** Reads a read tier answered from memory. */
  cacheHits?: number;
  /** Reads a read tier passed on to the store. */
  cacheMisses?: number;
  /** Compare-and-set writes that lost a race and were replayed on the current record. */
  conflictsReplayed?: number;
}

/**
 * Writes of part of a record. Without them the engine reads the record and writes it whole,
 * which keeps a destroyed session destroyed but lets two requests that change different keys
 * of one session overwrite each other.
 */
export interface PartialWrites {
  /**
   * Applies a change set to an existing, unexpired record. Returns `false` (and writes nothing)
   * when the record no longer exists: a destroyed session is never resurrected; `'moved'` when
   * a `move` left a forward at `key`.
   */
  patch(key: string, change: ChangeSet): Promise<WriteOutcome>;
  /** Moves the expiry of an existing record without rewriting its data; outcomes as for `patch`. */
  touch(key: string, expiresAt: number): Promise<WriteOutcome>;
  /**
   * `true` when `patch` is atomic: concurrent patches of different fields of one record all
   * survive (the only capability that cannot be seen from the methods). The conformance suite
   * holds a store that says so to it.
   */
  readonly atomicPatch: boolean;
}

/** A regenerate's move of a record to a new key, keeping what other requests wrote. */
export interface Moves {
  /**
   * Moves the record at `from` to the new key `to`, applying `change` on the way (a regenerate).
   * Writes committed to `from` before the move are kept. From the move on, `from` holds a forward
   * until `forwardUntil` (epoch ms): `get` returns `null` for it, and `patch` and `touch` return
   * `'moved'` without writing, so a request that loaded the old record and commits after the move
   * is refused instead of being dropped silently. Returns the record as now stored at `to`, or
   * `null`, writing nothing, when `from` is missing, expired or already moved.
   *
   * Without it the engine reads, writes the new key and destroys the old one, which loses writes
   * that land between the read and the destroy.
   */
  move(from: string, to: string, change: ChangeSet, forwardUntil: number): Promise<SessionRecord | null>;
}

/** A per-user index, for "your devices" and "log out everywhere". Both methods or neither. */
export interface UserIndex {
  /** The live sessions of a user. */
  listByUser(userId: string): Promise<UserSessionEntry[]>;
  /** Destroys every session of a user; returns how many were destroyed. */
  destroyByUser(userId: string): Promise<number>;
}

/** Removal of expired records, for stores without native expiry. */
export interface Pruning {
  /**
   * Deletes expired records; returns how many were deleted. A store that deletes in batches
   * calls `progress`, when given, with the running total after each one.
   */
  prune(progress?: (deleted: number) => void): Promise<number>;
}

/** Counting of live records. */
export interface Counting {
  /** Number of live records. */
  count(): Promise<number>;
}

/** One stored session, as {@link Enumeration.entries} yields it. */
export interface StoredSession {
  /** The store key (ID hash). */
  key: string;
  /** The record, with its expiry, creation time and owner. */
  record: SessionRecord;
}

/** Options of {@link Enumeration.entries}. */
export interface EntriesOptions {
  /** The most sessions in one batch. @default 500 */
  batchSize?: number;
}

/** Enumeration of every stored session: for migrations, statistics and listing all sessions. */
export interface Enumeration {
  /**
   * Every live session, in batches of at most `batchSize`, read page by page (never the whole
   * store at once), in no particular order. Forwards left by `move` and expired records are left
   * out. A session that lives through the whole iteration is yielded; one written or destroyed
   * meanwhile may or may not be. A key may come twice when the store's own cursor repeats it
   * (Redis SCAN does while the keyspace is resized): consumers that count, dedupe by key.
   */
  entries(options?: EntriesOptions): AsyncIterable<StoredSession[]>;
}

/** A write that never replaces newer data: what a migration and a live store switch copy with. */
export interface ConditionalWrites {
  /**
   * Writes the whole record (as `set` does, user index included) unless the store holds, at
   * `key`, a record that expires at the same time or later (it is as new, or newer: every write
   * of a session moves its expiry forward) or a forward left by `move`. Atomic: a write that
   * lands meanwhile is never overwritten by an older record. Returns whether it wrote.
   */
  setIfNewer(key: string, record: SessionRecord): Promise<boolean>;
}

/**
 * A session store: the core methods, and any of the capability groups it implements. The
 * engine and the conformance suite (`tessera/testing`) see a capability by its methods.
 */
export interface Store
  extends StoreCore,
    Partial<PartialWrites>,
    Partial<Moves>,
    Partial<UserIndex>,
    Partial<Pruning>,
    Partial<Counting>,
    Partial<Enumeration>,
    Partial<ConditionalWrites> {}

/**
 * A store over another store (the read tier, a migration, the test counter). The optional
 * methods are declared here; a subclass sets each one in its constructor only when the store
 * beneath has it, so the engine sees the same capabilities through the layer.
 */
export abstract class LayeredStore implements Store {
  abstract readonly name: string;
  atomicPatch?: boolean;
  patch?: PartialWrites['patch'];
  touch?: PartialWrites['touch'];
  move?: Moves['move'];
  listByUser?: UserIndex['listByUser'];
  destroyByUser?: UserIndex['destroyByUser'];
  prune?: Pruning['prune'];
  count?: Counting['count'];
  entries?: Enumeration['entries'];
  setIfNewer?: ConditionalWrites['setIfNewer'];
  abstract get(key: string): Promise<SessionRecord | null>;
  abstract set(key: string, record: SessionRecord): Promise<void>;
  abstract destroy(key: string): Promise<void>;
  abstract close(): Promise<void>;
}

/** The capability groups, by the name `NOT_SUPPORTED` errors and the conformance suite use. */
export type Capability = 'patch' | 'move' | 'userIndex' | 'prune' | 'count' | 'enumerate' | 'setIfNewer' | 'peek';

/** Whether `store` implements a capability group (a store claiming half a group is refused by the engine). */
export function supports(store: Store, capability: Capability): boolean {
  switch (capability) {
    case 'patch':
      return typeof store.patch === 'function' && typeof store.touch === 'function';
    case 'move':
      return typeof store.move === 'function';
    case 'userIndex':
      return typeof store.listByUser === 'function' && typeof store.destroyByUser === 'function';
    case 'prune':
      return typeof store.prune === 'function';
    case 'count':
      return typeof store.count === 'function';
    case 'enumerate':
      return typeof store.entries === 'function';
    case 'setIfNewer':
      return typeof store.setIfNewer === 'function';
    case 'peek':
      return typeof store.peek === 'function';
  }
}

/**
 * Checks what the options schema cannot see in a store (which checks its core methods): that it
 * has a name, and that no capability group is half implemented. Throws `INVALID_OPTIONS`.
 */
export function checkStore(store: Store): void {
  // The engine's `store` option: what its schema checked, continued.
  const STORE = { scope: 'engine', label: 'SessionEngine' };
  if (typeof store.name !== 'string' || store.name === '') {
    throw invalid(STORE, ['store', 'name'], 'must be a non-empty string (it names the store in errors)');
  }
  for (const [a, b] of [
    ['patch', 'touch'],
    ['listByUser', 'destroyByUser'],
  ] as const) {
    if ((typeof store[a] === 'function') !== (typeof store[b] === 'function')) {
      const [has, lacks] = typeof store[a] === 'function' ? [a, b] : [b, a];
      throw invalid(
        STORE,
        'store',
        `${JSON.stringify(store.name)} has ${has} but not ${lacks}; implement both or neither`,
      );
    }
  }
}

/** The `NOT_SUPPORTED` error for a capability the store lacks. */
export function notSupported(store: Store, capability: Capability, action: string): SessionError {
  const what: Record<Capability, string> = {
    patch: 'partial writes',
    move: 'moves',
    userIndex: 'a per-user index',
    prune: 'pruning (it expires records itself)',
    count: 'counting',
    enumerate: 'enumeration of its sessions',
    setIfNewer: 'conditional writes (setIfNewer)',
    peek: 'records held in memory (peek)',
  };
  return new SessionError('NOT_SUPPORTED', `${action} needs ${what[capability]}, which the ${store.name} store lacks`, {
    scope: store.name,
  });
}

/**
 * Applies a change set through the store's `patch`, or, for a store without partial writes, as
 * a read and a whole-record write: a destroyed record stays destroyed, but concurrent writers of
 * one session may overwrite each other's keys. The engine's (and the bridges') only fallback.
 */
export async function patchRecord(store: Store, key: string, change: ChangeSet): Promise<WriteOutcome> {
  if (store.patch) return store.patch(key, change);
  const current = await store.get(key);
  if (!current) return false;
  await store.set(key, applyChangeSet(current, change));
  return true;
}

/** Moves a record's expiry through the store's `touch`, or as {@link patchRecord} does without it. */
export async function touchRecord(store: Store, key: string, expiresAt: number): Promise<WriteOutcome> {
  if (store.touch) return store.touch(key, expiresAt);
  return patchRecord(store, key, { set: {}, unset: [], expiresAt });
}

/**
 * Writes a record unless the store holds one as new or newer, through the store's `setIfNewer`,
 * or, for a store without it, as a read and a whole-record write: a write landing between the
 * two may be overwritten, so without `setIfNewer` copy only while nothing else writes.
 */
export async function setIfNewerRecord(store: Store, key: string, record: SessionRecord): Promise<boolean> {
  if (store.setIfNewer) return store.setIfNewer(key, record);
  const current = await store.get(key);
  if (current && current.expiresAt >= record.expiresAt) return false;
  await store.set(key, record);
  return true;
}

/** The batch size of {@link Enumeration.entries} when none is given. */
export const DEFAULT_BATCH_SIZE = 500;

/** A batch size given to `entries()`, checked: a whole number from 1. */
export function batchSizeOf(options: EntriesOptions | undefined, scope: string): number {
  const size = options?.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(size) || size < 1) {
    throw new SessionError('INVALID_OPTIONS', `entries: batchSize must be a whole number from 1, got ${size}`, {
      scope,
    });
  }
  return size;
}

/** Returns a new record with the change set applied (the input is not mutated). */
export function applyChangeSet(record: SessionRecord, change: ChangeSet): SessionRecord {
  const fields = { ...record.fields, ...change.set };
  for (const name of change.unset) delete fields[name];
  return {
    fields,
    createdAt: record.createdAt,
    expiresAt: change.expiresAt,
    userId: change.userId === undefined ? record.userId : change.userId,
  };
}

/**
 * Names that are never session keys: assigned to a plain object they change its prototype
 * (`__proto__`) or shadow what every object has, so `set` refuses them and a stored record
 * holding one is corrupt.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Checks a value read back from a store, so a damaged record fails loudly: a `CORRUPT_RECORD`
 * `SessionError` that names where it was found and the problem.
 */
export function validateRecord(value: unknown, where: string, scope?: string): SessionRecord {
  const problem = recordProblem(value);
  if (problem) throw new SessionError('CORRUPT_RECORD', `${where}: ${problem}`, { scope });
  return value as SessionRecord;
}

function recordProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'the record is not an object';
  const r = value as Partial<SessionRecord>;
  if (!Number.isFinite(r.createdAt)) return 'createdAt is not a number';
  if (!Number.isFinite(r.expiresAt)) return 'expiresAt is not a number';
  if (r.userId !== null && typeof r.userId !== 'string') return 'userId is neither a string nor null';
  if (typeof r.fields !== 'object' || r.fields === null) return 'fields is not an object';
  const fields = r.fields as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (RESERVED_KEYS.has(name)) return `it has a field named "${name}", which is never a session key`;
    if (typeof fields[name] !== 'string') return `field "${name}" is not a string`;
  }
  return null;
}
