// The contract between the cache tier and its sources of invalidations (see redis-invalidation.ts).

/** What an invalidation source tells the cache. */
export interface InvalidationListener {
  /** `key` changed or was deleted somewhere: drop it. */
  evict(key: string): void;
  /** Invalidations may have been missed (connection lost): drop everything. */
  reset(reason: string): void;
}

/**
 * A source of "this key changed" messages from other processes. While it is not `live`, the
 * cache serves nothing from memory, so a lost connection can never leave stale sessions in use.
 */
export interface InvalidationSource {
  readonly name: string;
  /** Whether invalidations are flowing right now. */
  readonly live: boolean;
  /** Starts listening (and reconnecting by itself); resolves once live or failed for the first time. */
  start(listener: InvalidationListener): Promise<void>;
  /** Tells other processes a key changed, for sources the backing store does not feed itself. */
  announce?(key: string): Promise<void>;
  close(): Promise<void>;
}
