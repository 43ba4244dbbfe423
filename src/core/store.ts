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
}

/** What a store can do beyond the required methods. */
export interface StoreCapabilities {
  /** `patch` applies a change set atomically and never recreates a missing record. */
  atomicPatch: boolean;
  /** `touch` extends expiry without rewriting data and never recreates a missing record. */
  touch: boolean;
  /** `listByUser` and `destroyByUser` are implemented without scanning the keyspace. */
  userIndex: boolean;
  /** `prune` removes expired records (for stores without native expiry). */
  prune: boolean;
  /** `count` is implemented. */
  scan: boolean;
}

/**
 * A session store. Implement the four required methods; declare what else you implement in
 * `capabilities`. Extending {@link BaseStore} gives working fallbacks for the optional ones.
 *
 * Every method may throw; the engine wraps the error in a `STORE_UNAVAILABLE` `SessionError`
 * and never treats a failure as "no session".
 */
export interface Store {
  /** Short name used in error messages and logs (`redis`, `sql`, `memory`). */
  readonly name: string;
  readonly capabilities: StoreCapabilities;

  /** The record for `key`, or `null` when there is none or it has expired. */
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
   * Applies a change set to an existing, unexpired record. Returns `false` (and writes nothing)
   * when the record no longer exists: a destroyed session is never resurrected; `'moved'` when
   * a `move` left a forward at `key`.
   */
  patch(key: string, change: ChangeSet): Promise<WriteOutcome>;
  /** Moves the expiry of an existing record. Returns `false` when it no longer exists, `'moved'` as for `patch`. */
  touch(key: string, expiresAt: number): Promise<WriteOutcome>;
  /**
   * Moves the record at `from` to the new key `to`, applying `change` on the way (a regenerate).
   * Writes committed to `from` before the move are kept. From the move on, `from` holds a forward
   * until `forwardUntil` (epoch ms): `get` returns `null` for it, and `patch` and `touch` return
   * `'moved'` without writing, so a request that loaded the old record and commits after the move
   * is refused instead of being dropped silently. Returns the record as now stored at `to`, or
   * `null`, writing nothing, when `from` is missing, expired or already moved.
   *
   * Optional: without it the engine reads, writes the new key and destroys the old one, which
   * loses writes that land between the read and the destroy.
   */
  move?(from: string, to: string, change: ChangeSet, forwardUntil: number): Promise<SessionRecord | null>;
  /** The live sessions of a user. */
  listByUser(userId: string): Promise<UserSessionEntry[]>;
  /** Destroys every session of a user; returns how many were destroyed. */
  destroyByUser(userId: string): Promise<number>;
  /** Deletes expired records; returns how many were deleted. */
  prune(): Promise<number>;
  /** Number of live records. */
  count(): Promise<number>;
}

/** The part of {@link Store} a store author must write; the rest can come from {@link BaseStore}. */
export type RequiredStoreMethods = Pick<Store, 'name' | 'get' | 'set' | 'destroy' | 'close'>;

/**
 * A base class with fallbacks for every optional method, so that adding a capability later
 * breaks no store. The fallbacks are correct but not atomic (`patch` is read-modify-write),
 * which is why `capabilities` says so and the conformance suite skips the concurrency tests.
 */
export abstract class BaseStore implements Store {
  abstract readonly name: string;
  readonly capabilities: StoreCapabilities = {
    atomicPatch: false,
    touch: false,
    userIndex: false,
    prune: false,
    scan: false,
  };

  abstract get(key: string): Promise<SessionRecord | null>;
  abstract set(key: string, record: SessionRecord): Promise<void>;
  abstract destroy(key: string): Promise<void>;
  abstract close(): Promise<void>;

  async patch(key: string, change: ChangeSet): Promise<WriteOutcome> {
    const current = await this.get(key);
    if (!current) return false;
    await this.set(key, applyChangeSet(current, change));
    return true;
  }

  async touch(key: string, expiresAt: number): Promise<WriteOutcome> {
    const current = await this.get(key);
    if (!current) return false;
    await this.set(key, { ...current, expiresAt });
    return true;
  }

  async listByUser(_userId: string): Promise<UserSessionEntry[]> {
    throw new Error(`the ${this.name} store has no per-user index`);
  }

  async destroyByUser(_userId: string): Promise<number> {
    throw new Error(`the ${this.name} store has no per-user index`);
  }

  async prune(): Promise<number> {
    return 0;
  }

  async count(): Promise<number> {
    throw new Error(`the ${this.name} store cannot count its records`);
  }
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
  for (const [name, field] of Object.entries(r.fields)) {
    if (RESERVED_KEYS.has(name)) return `it has a field named "${name}", which is never a session key`;
    if (typeof field !== 'string') return `field "${name}" is not a string`;
  }
  return null;
}
