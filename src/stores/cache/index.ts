import * as v from 'valibot';
import { check, flag, func, having, positive, type Same } from '../../core/check.ts';
import {
  applyChangeSet,
  LayeredStore,
  type SessionRecord,
  type Store,
  type StoreMetrics,
  supports,
} from '../../core/store.ts';
import type { InvalidationSource } from './invalidation.ts';
import { LruMap } from './lru.ts';

export type { InvalidationListener, InvalidationSource } from './invalidation.ts';
export { type RedisInvalidationOptions, redisPubSub, redisTracking } from './redis-invalidation.ts';

/** Options of {@link CachedStore}. */
export interface CachedStoreOptions {
  /** The store behind the cache; every write goes through to it. */
  store: Store;
  /**
   * Where invalidations come from: `redisTracking(...)` when the store is Redis (server-assisted
   * client-side caching), `redisPubSub(...)` for any other store. `null` caches with no
   * coherence across processes, bounded only by `maxStalenessMs`: for a single process.
   */
  invalidation: InvalidationSource | null;
  /** @default 10000 */
  maxEntries?: number;
  /** Estimated bytes of cached records (keys and values, UTF-16). @default 16777216 (16 MiB) */
  maxBytes?: number;
  /**
   * The longest a cached record is served without going back to the store, whatever the
   * invalidation source says: the bound on staleness if an invalidation were ever lost.
   * @default 60000 with an invalidation source, 1000 without
   */
  maxStalenessMs?: number;
  /** Close the backing store in `close()`. @default true */
  closeStore?: boolean;
  /** Clock in epoch ms, for tests. @default Date.now */
  now?: () => number;
}

/** The limits of {@link CachedStoreOptions}, as a schema (a configuration file's `cache` block takes them too). */
export const cacheLimitsSchema = v.strictObject({
  maxEntries: v.optional(positive()),
  maxBytes: v.optional(positive()),
  maxStalenessMs: v.optional(positive()),
});

/** {@link CachedStoreOptions} as a schema. */
export const cachedStoreSchema = v.strictObject({
  ...cacheLimitsSchema.entries,
  store: having<Store>(['get', 'set'], 'a store'),
  invalidation: v.nullable(
    having<InvalidationSource>(['start', 'close'], 'redisTracking(...), redisPubSub(...), or null for one process'),
  ),
  closeStore: v.optional(flag()),
  now: v.optional(func<() => number>()),
});
const same: Same<v.InferInput<typeof cachedStoreSchema>, CachedStoreOptions> = true;
void same;

/** Counters for metrics and the CLI. */
export interface CacheStats {
  hits: number;
  misses: number;
  /** Entries dropped to stay within `maxEntries`/`maxBytes`. */
  evictions: number;
  /** Entries dropped because an invalidation said they changed. */
  invalidations: number;
  /** Times the whole cache was dropped (invalidation connection lost). */
  resets: number;
  /** Reads that went to the store because invalidations were not flowing. */
  bypasses: number;
  /** Misses answered by a store read of the same key already in flight (counted in `misses` too). */
  joined: number;
  entries: number;
  bytes: number;
}

interface Entry {
  record: SessionRecord;
  cachedAt: number;
}

/**
 * A read in flight; tainted when its key is invalidated (or written here) before the read returns.
 * Reads of the key that start meanwhile share it while it is untainted.
 */
interface Pending {
  tainted: boolean;
  read: Promise<SessionRecord | null>;
}

/** A write in flight; tainted when its key is invalidated, or written here again, before it returns. */
interface Flight {
  tainted: boolean;
}

/**
 * A bounded in-process read tier in front of any store (the Redis::Simple seed's in-memory
 * hash, made coherent). Reads of a cached session cost no store round trip; writes go through
 * to the store; other processes' writes arrive as invalidations. A write keeps its result in
 * the cache where the source does not echo this process's own writes back (`quietOwnWrites`:
 * `redisTracking` on a store-made Redis connection) or there is no source; elsewhere it drops
 * the local copy, as its own invalidation would.
 */
export class CachedStore extends LayeredStore {
  readonly name: string;
  readonly inner: Store;
  readonly #invalidation: InvalidationSource | null;
  readonly #lru: LruMap<Entry>;
  readonly #maxStalenessMs: number;
  readonly #closeStore: boolean;
  readonly #now: () => number;
  readonly #pending = new Map<string, Set<Pending>>();
  readonly #writes = new Map<string, Set<Flight>>();
  #resetEpoch = 0;
  #started: Promise<void> | null = null;
  #startError: unknown = null;
  readonly #stats = { hits: 0, misses: 0, invalidations: 0, resets: 0, bypasses: 0, joined: 0 };

  constructor(options: CachedStoreOptions) {
    super();
    check(cachedStoreSchema, options, { scope: 'cache', label: 'CachedStore' });
    const maxEntries = options.maxEntries ?? 10000;
    const maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    const maxStalenessMs = options.maxStalenessMs ?? (options.invalidation ? 60000 : 1000);
    this.inner = options.store;
    this.name = `cache+${options.store.name}`;
    this.#invalidation = options.invalidation;
    this.#lru = new LruMap(maxEntries, maxBytes);
    this.#maxStalenessMs = maxStalenessMs;
    this.#closeStore = options.closeStore ?? true;
    this.#now = options.now ?? Date.now;
    const inner = this.inner;
    if (supports(inner, 'patch')) {
      this.atomicPatch = inner.atomicPatch === true;
      const { patch, touch } = inner as Required<Pick<Store, 'patch' | 'touch'>>;
      this.patch = (key, change) =>
        this.#writingOne(
          key,
          () => patch.call(inner, key, change),
          (base, outcome) => (base && outcome === true ? applyChangeSet(base, change) : null),
        );
      this.touch = (key, expiresAt) =>
        this.#writingOne(
          key,
          () => touch.call(inner, key, expiresAt),
          (base, outcome) => (base && outcome === true ? { ...base, expiresAt } : null),
        );
    }
    const { move, listByUser, destroyByUser, prune, count } = inner;
    if (move) this.move = (from, to, ...rest) => this.#writing([from, to], () => move.call(inner, from, to, ...rest));
    if (listByUser && destroyByUser) {
      this.listByUser = (userId) => listByUser.call(inner, userId);
      this.destroyByUser = async (userId) => {
        const sessions = await listByUser.call(inner, userId);
        this.#lru.deleteWhere((entry) => entry.record.userId === userId);
        const destroyed = await destroyByUser.call(inner, userId);
        for (const { key } of sessions) await this.#changed(key);
        return destroyed;
      };
    }
    if (prune) this.prune = (progress) => prune.call(inner, progress);
    if (count) this.count = () => count.call(inner);
    const { entries, setIfNewer } = inner;
    // Enumeration reads the store itself: a migration must see what is stored, not what is cached.
    if (entries) this.entries = (options) => entries.call(inner, options);
    if (setIfNewer) this.setIfNewer = (key, record) => this.#writing([key], () => setIfNewer.call(inner, key, record));
  }

  /** Starts the invalidation source; called by the first read, or call it at boot. */
  start(): Promise<void> {
    this.#started ??= this.#invalidation
      ? this.#invalidation.start({ evict: (key) => this.#evict(key, true), reset: () => this.#reset() }, this.inner)
      : Promise.resolve();
    return this.#started;
  }

  /** Connects the backing store and starts the invalidation source. */
  async ready(): Promise<void> {
    await this.inner.ready?.();
    await this.start();
  }

  /** Hits and misses of this tier, beside the backing store's own counters (for `engine.metrics()`). */
  metrics(): StoreMetrics {
    return { ...this.inner.metrics?.(), cacheHits: this.#stats.hits, cacheMisses: this.#stats.misses };
  }

  stats(): CacheStats {
    return { ...this.#stats, evictions: this.#lru.evictions, entries: this.#lru.size, bytes: this.#lru.bytes };
  }

  /** A cached record, without I/O: the hit path of {@link CachedStore.get}; `undefined` for a miss. */
  peek(key: string): SessionRecord | undefined {
    if (this.#startError || !(this.#invalidation === null || this.#invalidation.live)) return undefined;
    const entry = this.#lru.get(key);
    if (entry === undefined) return undefined;
    const now = this.#now();
    if (entry.cachedAt + this.#maxStalenessMs <= now || entry.record.expiresAt <= now) return undefined;
    this.#stats.hits++;
    return entry.record;
  }

  async get(key: string): Promise<SessionRecord | null> {
    // Reads never wait for the invalidation connection: until it is live they go to the store.
    if (!this.#started) this.start().catch((error: unknown) => (this.#startError = error));
    if (this.#startError) throw this.#startError;
    const caching = this.#invalidation === null || this.#invalidation.live;
    const now = this.#now();
    if (caching) {
      const entry = this.#lru.get(key);
      if (entry && entry.cachedAt + this.#maxStalenessMs > now && entry.record.expiresAt > now) {
        this.#stats.hits++;
        return entry.record;
      }
      if (entry) this.#lru.delete(key);
      this.#stats.misses++;
    } else {
      this.#stats.bypasses++;
    }
    // Single flight: a read of this key already on its way, and not invalidated since it left,
    // answers this one too (N requests of one session on a cold cache cost one store read). A
    // tainted one may have read what was there before a write, so a new read goes out instead.
    if (caching) {
      for (const flight of this.#pending.get(key) ?? NO_FLIGHTS) {
        if (flight.tainted) continue;
        this.#stats.joined++;
        return flight.read;
      }
    }
    return this.#read(key, caching, now);
  }

  async #read(key: string, caching: boolean, now: number): Promise<SessionRecord | null> {
    const epoch = this.#resetEpoch;
    // One copy of what the store returned (which stays the store's), handed to every reader of
    // it, this flight's and the cache's later hits: readers never change a record they get (the
    // Store contract), and a copy per hit cost more than the rest of the hit (so did freezing it).
    const read = this.inner.get(key).then(copyOf);
    let waiting = this.#pending.get(key);
    if (!waiting) this.#pending.set(key, (waiting = new Set()));
    // A read sent while this process writes the key may answer what was there before the write.
    const pending: Pending = { tainted: this.#writes.has(key), read };
    waiting.add(pending);
    try {
      const record = await read;
      const stillCoherent = this.#invalidation === null || this.#invalidation.live;
      if (record && caching && stillCoherent && !pending.tainted && epoch === this.#resetEpoch) {
        this.#lru.set(key, { record, cachedAt: now }, sizeOf(key, record));
      }
      return record;
    } finally {
      waiting.delete(pending);
      if (waiting.size === 0) this.#pending.delete(key);
    }
  }

  set(key: string, record: SessionRecord): Promise<void> {
    return this.#writingOne(
      key,
      () => this.inner.set(key, record),
      () => copyOf(record),
    );
  }

  destroy(key: string): Promise<void> {
    return this.#writing([key], () => this.inner.destroy(key));
  }

  /** A write through to the store: the local copies go before it, and others are told after it. */
  async #writing<T>(keys: string[], write: () => Promise<T>): Promise<T> {
    for (const key of keys) this.#evict(key);
    const result = await write();
    for (const key of keys) await this.#changed(key);
    return result;
  }

  /**
   * A write of one key through to the store. Where this process's own writes are not echoed
   * back, the record the write leaves (`result` of the cached record before it, if any, and the
   * store's answer) is cached, unless something else changed the key meanwhile: an
   * invalidation, another write of it here, or a reset, taint the write in flight.
   */
  async #writingOne<T>(
    key: string,
    write: () => Promise<T>,
    result: (base: SessionRecord | undefined, outcome: T) => SessionRecord | null,
  ): Promise<T> {
    const keeping = this.#keepsOwnWrites;
    const entry = keeping ? this.#lru.get(key) : undefined;
    const epoch = this.#resetEpoch;
    const startedAt = this.#now();
    // Drops the local copy, and taints the reads and the other writes of this key in flight.
    this.#evict(key);
    const flight: Flight = { tainted: false };
    let flights = this.#writes.get(key);
    if (!flights) this.#writes.set(key, (flights = new Set()));
    flights.add(flight);
    let outcome: T;
    try {
      outcome = await write();
    } finally {
      flights.delete(flight);
      if (flights.size === 0) this.#writes.delete(key);
    }
    // Untainted: every read and write of this key that overlapped this one was tainted by it (at
    // its start, or at theirs), so nothing else can have cached the key meanwhile.
    const record =
      keeping && this.#keepsOwnWrites && !flight.tainted && epoch === this.#resetEpoch
        ? result(entry?.record, outcome)
        : null;
    if (record === null) {
      await this.#changed(key);
      return outcome;
    }
    // The staleness bound runs from when the record it was made from was read.
    this.#lru.set(key, { record, cachedAt: entry?.cachedAt ?? startedAt }, sizeOf(key, record));
    return outcome;
  }

  /** Whether this process's own writes go unreported to it, so the cache may keep their results. */
  get #keepsOwnWrites(): boolean {
    return this.#invalidation === null || this.#invalidation.quietOwnWrites === true;
  }

  async close(): Promise<void> {
    this.#lru.clear();
    // Let a start under way finish first, so no connection it opens outlives the close.
    await this.#started?.catch(() => {});
    await this.#invalidation?.close();
    if (this.#closeStore) await this.inner.close();
  }

  /** Drops the local copy once the write is done, and tells the other processes. */
  async #changed(key: string): Promise<void> {
    this.#evict(key);
    if (!this.#invalidation?.announce) return;
    await this.start();
    await this.#invalidation.announce(key);
  }

  #evict(key: string, remote = false): void {
    if (this.#lru.delete(key) && remote) this.#stats.invalidations++;
    for (const pending of this.#pending.get(key) ?? NO_FLIGHTS) pending.tainted = true;
    for (const flight of this.#writes.get(key) ?? NO_FLIGHTS) flight.tainted = true;
  }

  #reset(): void {
    this.#lru.clear();
    for (const flights of this.#pending.values()) for (const pending of flights) pending.tainted = true;
    for (const flights of this.#writes.values()) for (const flight of flights) flight.tainted = true;
    this.#resetEpoch++;
    this.#stats.resets++;
  }
}

const NO_FLIGHTS: ReadonlySet<Pending & Flight> = new Set();

function copyOf(record: SessionRecord | null): SessionRecord | null {
  return record === null ? null : { ...record, fields: { ...record.fields } };
}

function sizeOf(key: string, record: SessionRecord): number {
  let chars = key.length + 64;
  for (const name in record.fields) chars += name.length + (record.fields[name] as string).length;
  return chars * 2;
}

/** Creates a {@link CachedStore}. */
export function cachedStore(options: CachedStoreOptions): CachedStore {
  return new CachedStore(options);
}
