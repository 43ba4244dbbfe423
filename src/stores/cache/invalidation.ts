// The contract between the cache tier and its sources of invalidations (see redis-invalidation.ts).
import type { Store } from '../../core/store.ts';

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
  /**
   * `true` while this process's own writes through the backing store raise no invalidation here
   * (the Redis tracking rides on the store's connection, NOLOOP), and every other change does:
   * the cache then keeps what it wrote instead of dropping it.
   */
  readonly quietOwnWrites?: boolean;
  /**
   * Starts listening (and reconnecting by itself); resolves once live or failed for the first
   * time. `store` is the cache's backing store, which a source may use to hear of changes.
   */
  start(listener: InvalidationListener, store?: Store): Promise<void>;
  /** Tells other processes a key changed, for sources the backing store does not feed itself. */
  announce?(key: string): Promise<void>;
  close(): Promise<void>;
}
