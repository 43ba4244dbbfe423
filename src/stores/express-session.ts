import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import * as v from 'valibot';
import { check, func, positive, type Same } from '../core/check.ts';
import { withTimeout } from '../core/engine.ts';
import { SessionError, toStoreError } from '../core/errors.ts';
import { hashId } from '../core/ids.ts';
import {
  batchSizeOf,
  type EntriesOptions,
  notSupported,
  patchRecord,
  type SessionRecord,
  type Store,
  type StoredSession,
  validateRecord,
} from '../core/store.ts';

// express-session's and @fastify/session's types are not imported here: both declare `session`
// on the request globally, which clashes with Tessera's own adapters. Everything is structural.

/**
 * The cookie part of an express-session (or @fastify/session) session object. Every field also
 * takes `undefined`: express-session's own `Cookie` declares `maxAge?: number | undefined`, and
 * without it a strict project (`exactOptionalPropertyTypes`) could not pass express-session's
 * stores (MemoryStore, connect-redis) to {@link fromExpressSessionStore}.
 */
export interface ExpressSessionCookie {
  expires?: Date | string | null | undefined;
  maxAge?: number | null | undefined;
  originalMaxAge?: number | null | undefined;
}

/** The session object express-session and @fastify/session hand to a store (data beside `cookie`). */
export interface ExpressSessionData {
  cookie?: ExpressSessionCookie;
}

type Callback = (error?: unknown) => void;

/** The callback API of an express-session store, as both sides of this module use it. */
export interface ExpressSessionStoreLike {
  get(sid: string, callback: (error: unknown, session?: unknown) => void): void;
  set(sid: string, session: ExpressSessionData, callback?: Callback): void;
  destroy(sid: string, callback?: Callback): void;
  length?(callback: (error: unknown, length?: number) => void): void;
  /**
   * Every stored session: an object by session ID (express-session's MemoryStore) or an array of
   * sessions each with its `id` (connect-redis).
   */
  all?(callback: (error: unknown, sessions?: unknown) => void): void;
}

/**
 * What {@link toExpressSessionStore} returns: an EventEmitter with express-session's store
 * methods. Each also returns a promise, which rejects only when no callback was given.
 */
export interface ExpressSessionStoreAdapter extends EventEmitter {
  /** The Tessera store underneath. */
  readonly store: Store;
  /** The stored session object, typed as the caller's session type (it is what the caller stored). */
  get<S extends ExpressSessionData = ExpressSessionData>(
    sid: string,
    callback?: (error: unknown, session?: S | null) => void,
  ): Promise<S | null>;
  set(sid: string, session: ExpressSessionData, callback?: Callback): Promise<void>;
  destroy(sid: string, callback?: Callback): Promise<void>;
  touch(sid: string, session: ExpressSessionData, callback?: Callback): Promise<void>;
  length(callback?: (error: unknown, length?: number) => void): Promise<number>;
}

/** A class to extend: express-session's `Store` (or any EventEmitter class). */
export type StoreBaseClass = abstract new () => EventEmitter;

/** Options of {@link toExpressSessionStore}. */
export interface ToExpressSessionStoreOptions<B extends StoreBaseClass = StoreBaseClass> {
  /**
   * The class to extend: pass express-session's `session.Store` so the result is typed as an
   * express-session `Store` (and `instanceof` checks hold).
   * @default express-session's `Store` when it can be loaded, otherwise `EventEmitter` (all
   * that @fastify/session needs)
   */
  Store?: B;
  /** Lifetime of a session whose cookie has no `expires` (a browser-session cookie). @default 86400 */
  ttlSeconds?: number;
  /**
   * The user a session belongs to, which fills the store's per-user index so that
   * `engine.destroyUserSessions()` and `listUserSessions()` work for express-session apps too.
   * @default none
   */
  userId?: (session: ExpressSessionData & Record<string, unknown>) => string | null | undefined;
  /** Each store call fails with `STORE_TIMEOUT` (503) after this long. @default 1000 */
  timeoutMs?: number;
}

/** {@link ToExpressSessionStoreOptions} as a schema. */
const toExpressSessionStoreSchema = v.strictObject({
  Store: v.optional(func<StoreBaseClass>()),
  ttlSeconds: v.optional(positive()),
  userId: v.optional(func<NonNullable<ToExpressSessionStoreOptions['userId']>>()),
  timeoutMs: v.optional(positive()),
});
const same: Same<v.InferInput<typeof toExpressSessionStoreSchema>, ToExpressSessionStoreOptions> = true;
void same;

/**
 * Makes a Tessera store (Redis, SQL, Elasticsearch, memory) usable as an express-session or
 * @fastify/session store, so an app keeps its session middleware and changes only the storage.
 *
 * - The store key is SHA-256 of the session ID (`hashId`), as for Tessera's own sessions.
 * - Each top-level key of the session object is one field (JSON), `cookie` included.
 * - `cookie.expires` gives the record's expiry (native TTL where the store has one); without it,
 *   `ttlSeconds`. `touch` moves the expiry and rewrites only the `cookie` field.
 * - `createdAt` is the time of the last full write: express-session rewrites whole sessions.
 *
 * ```ts
 * import session from 'express-session';
 * app.use(session({ secret, store: toExpressSessionStore(redis, { Store: session.Store }) }));
 * ```
 */
export function toExpressSessionStore<B extends StoreBaseClass = StoreBaseClass>(
  store: Store,
  options: ToExpressSessionStoreOptions<B> = {},
): ExpressSessionStoreAdapter & InstanceType<B> {
  check(toExpressSessionStoreSchema, options, { scope: 'express-session', label: 'toExpressSessionStore' });
  const ttlMs = (options.ttlSeconds ?? 86400) * 1000;
  const timeoutMs = options.timeoutMs ?? 1000;
  const userIdOf = options.userId;
  const Base = (options.Store ?? expressSessionStoreClass()) as unknown as new () => EventEmitter;

  const call = <T>(action: string, run: () => Promise<T>): Promise<T> =>
    withTimeout(
      run(),
      timeoutMs,
      () => new SessionError('STORE_TIMEOUT', `${action} took longer than ${timeoutMs} ms`, { scope: store.name }),
    ).catch((error: unknown) => {
      throw toStoreError(error, store.name, action);
    });
  const expiresAt = (session: ExpressSessionData): number => {
    const expires = session.cookie?.expires;
    const at = expires ? new Date(expires).getTime() : Number.NaN;
    return Number.isFinite(at) ? at : Date.now() + ttlMs;
  };

  class TesseraExpressSessionStore extends Base implements ExpressSessionStoreAdapter {
    readonly store = store;

    get<S extends ExpressSessionData = ExpressSessionData>(
      sid: string,
      callback?: (error: unknown, session?: S | null) => void,
    ) {
      return settle(
        call('get', async () => {
          const record = await store.get(hashId(sid));
          if (!record) return null;
          const session: Record<string, unknown> = {};
          for (const [name, text] of Object.entries(record.fields)) session[name] = parseField(store.name, name, text);
          return session as S;
        }),
        callback,
      );
    }

    set(sid: string, session: ExpressSessionData, callback?: Callback) {
      return settle(
        call('set', async () => {
          const fields: Record<string, string> = {};
          for (const [name, value] of Object.entries(session)) {
            const text = JSON.stringify(value);
            if (text !== undefined) fields[name] = text;
          }
          const userId = userIdOf?.(session as ExpressSessionData & Record<string, unknown>) ?? null;
          const now = Date.now();
          await store.set(hashId(sid), { fields, createdAt: now, expiresAt: expiresAt(session), userId });
        }),
        callback,
      );
    }

    destroy(sid: string, callback?: Callback) {
      return settle(
        call('destroy', () => store.destroy(hashId(sid))),
        callback,
      );
    }

    touch(sid: string, session: ExpressSessionData, callback?: Callback) {
      const cookie = JSON.stringify(session.cookie);
      const set: Record<string, string> = cookie === undefined ? {} : { cookie };
      return settle(
        call('touch', async () => {
          // A patch, not a touch: the stored cookie must match the new expiry, as in express-session's MemoryStore.
          await patchRecord(store, hashId(sid), { set, unset: [], expiresAt: expiresAt(session) });
        }),
        callback,
      );
    }

    length(callback?: (error: unknown, length?: number) => void) {
      return settle(
        call('count', async () => {
          if (!store.count) throw notSupported(store, 'count', 'length');
          return store.count();
        }),
        callback,
      );
    }
  }
  return new TesseraExpressSessionStore() as ExpressSessionStoreAdapter & InstanceType<B>;
}

/** Options of {@link fromExpressSessionStore}. */
export interface FromExpressSessionStoreOptions {
  /** Shown in errors and logs. @default 'express-session' */
  name?: string;
}

/**
 * Makes any express-session store (connect-redis, connect-mongo, connect-pg-simple, the ~100
 * others) a Tessera {@link Store}. Each record is one JSON object `{ cookie, tessera }`: the
 * `cookie.expires`/`maxAge` that those stores read for their own TTL, and the Tessera record.
 * It has no partial writes, so the engine writes whole records (read-modify-write); `count` is
 * there when the store has `length`, and `entries` (enumeration, for `tessera migrate` and
 * `tessera stats`) when it has `all`, which loads every session at once. `close()` leaves the
 * store you passed in open.
 *
 * ```ts
 * const engine = new SessionEngine({ store: fromExpressSessionStore(new MongoStore({ ... })), secrets });
 * ```
 */
export function fromExpressSessionStore(
  esStore: ExpressSessionStoreLike,
  options: FromExpressSessionStoreOptions = {},
): Store {
  return new ExpressSessionBackedStore(esStore, options.name ?? 'express-session');
}

/** The payload a {@link fromExpressSessionStore} store writes. */
interface Envelope extends ExpressSessionData {
  tessera: SessionRecord;
}

class ExpressSessionBackedStore implements Store {
  readonly name: string;
  readonly #inner: ExpressSessionStoreLike;
  /** Present when the wrapped store has `length`. */
  readonly count?: () => Promise<number>;
  /** Present when the wrapped store has `all`. */
  readonly entries?: (options?: EntriesOptions) => AsyncIterable<StoredSession[]>;

  constructor(inner: ExpressSessionStoreLike, name: string) {
    this.#inner = inner;
    this.name = name;
    const { length, all } = inner;
    if (typeof length === 'function') {
      this.count = async () => (await callback<number | undefined>((done) => length.call(inner, done))) ?? 0;
    }
    if (typeof all === 'function') {
      this.entries = (options) => this.#entries(all, options);
    }
  }

  /** What `all` returns, in batches: the envelopes this bridge wrote (other sessions are not Tessera's). */
  async *#entries(all: NonNullable<ExpressSessionStoreLike['all']>, options?: EntriesOptions) {
    const size = batchSizeOf(options, this.name);
    const found = await callback<unknown>((done) => all.call(this.#inner, done));
    const pairs: [string, unknown][] = Array.isArray(found)
      ? found.map((session) => [String((session as { id?: unknown })?.id), session])
      : typeof found === 'object' && found !== null
        ? Object.entries(found)
        : [];
    const now = Date.now();
    let batch: StoredSession[] = [];
    for (const [key, value] of pairs) {
      const record = this.#decode(key, value);
      if (record === null || record.expiresAt <= now) continue;
      batch.push({ key, record });
      if (batch.length === size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  async get(key: string): Promise<SessionRecord | null> {
    const value = await callback<unknown>((done) => this.#inner.get(key, done));
    const record = this.#decode(key, value);
    return record === null || record.expiresAt <= Date.now() ? null : record;
  }

  #decode(key: string, value: unknown): SessionRecord | null {
    if (value === null || value === undefined) return null;
    // express-session's MemoryStore keeps sessions as JSON text.
    const parsed = typeof value === 'string' ? parseField(this.name, key, value) : value;
    try {
      return validateRecord((parsed as Partial<Envelope>).tessera, `record ${key.slice(0, 10)}`);
    } catch (error) {
      throw new SessionError('CORRUPT_RECORD', (error as Error).message, { cause: error, scope: this.name });
    }
  }

  async set(key: string, record: SessionRecord): Promise<void> {
    const maxAge = Math.max(0, record.expiresAt - Date.now());
    const envelope: Envelope = {
      cookie: { expires: new Date(record.expiresAt), maxAge, originalMaxAge: maxAge },
      tessera: record,
    };
    await callback<void>((done) => this.#inner.set(key, envelope, done));
  }

  async destroy(key: string): Promise<void> {
    await callback<void>((done) => this.#inner.destroy(key, done));
  }

  async close(): Promise<void> {}
}

/** Runs a callback-style call as a promise; a throw or a second callback call is handled. */
function callback<T>(run: (done: (error?: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    run((error, value) => (error ? reject(error) : resolve(value as T)));
  });
}

/** Hands a promise's outcome to an optional node-style callback; rejects only without one. */
function settle<T>(promise: Promise<T>, done?: (error: unknown, value?: T) => void): Promise<T> {
  if (!done) return promise;
  promise.then(
    (value) => done(null, value),
    (error: unknown) => done(error),
  );
  return promise.catch(() => undefined as T);
}

function parseField(scope: string, name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SessionError('CORRUPT_RECORD', `field "${name}" is not JSON`, { cause: error, scope });
  }
}

/** express-session's Store class when the package can be loaded from here; EventEmitter otherwise. */
function expressSessionStoreClass(): StoreBaseClass {
  try {
    const loaded = createRequire(import.meta.url)('express-session') as { Store?: StoreBaseClass };
    if (typeof loaded.Store === 'function') return loaded.Store;
  } catch {
    // Not installed: @fastify/session only needs the callback methods.
  }
  return EventEmitter;
}
