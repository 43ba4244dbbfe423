import { LayeredStore, type SessionRecord, type Store, type StoreMetrics } from '../core/store.ts';

/** The optional store methods, each present on a {@link CountingStore} when the wrapped store has it. */
const OPTIONAL = [
  'patch',
  'touch',
  'move',
  'listByUser',
  'destroyByUser',
  'prune',
  'count',
  'entries',
  'setIfNewer',
] as const;

/** Calls per store method, as counted by {@link CountingStore}. */
export type StoreCallCounts = Record<'get' | 'set' | 'destroy' | (typeof OPTIONAL)[number], number>;

/**
 * Wraps a store and counts its calls, to assert how much I/O a request costs (a forged cookie
 * must cost none). It has exactly the capabilities of the store it wraps.
 */
export class CountingStore extends LayeredStore {
  readonly inner: Store;
  readonly calls: StoreCallCounts = {
    get: 0,
    set: 0,
    destroy: 0,
    patch: 0,
    touch: 0,
    move: 0,
    listByUser: 0,
    destroyByUser: 0,
    prune: 0,
    count: 0,
    entries: 0,
    setIfNewer: 0,
  };

  constructor(inner: Store) {
    super();
    this.inner = inner;
    if (inner.atomicPatch !== undefined) this.atomicPatch = inner.atomicPatch;
    const self = this as unknown as Record<string, unknown>;
    for (const name of OPTIONAL) {
      if (typeof inner[name] !== 'function') continue;
      // Looked up per call, so a test may still replace a method of the wrapped store.
      self[name] = (...args: unknown[]) => {
        this.calls[name]++;
        return (inner[name] as (...args: unknown[]) => Promise<unknown>).apply(inner, args);
      };
    }
  }

  get name(): string {
    return this.inner.name;
  }

  /** Total calls of every method. */
  get total(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  reset(): void {
    for (const name of Object.keys(this.calls) as (keyof StoreCallCounts)[]) this.calls[name] = 0;
  }

  get(key: string): Promise<SessionRecord | null> {
    this.calls.get++;
    return this.inner.get(key);
  }
  set(key: string, record: SessionRecord): Promise<void> {
    this.calls.set++;
    return this.inner.set(key, record);
  }
  destroy(key: string): Promise<void> {
    this.calls.destroy++;
    return this.inner.destroy(key);
  }
  metrics(): StoreMetrics {
    return this.inner.metrics?.() ?? {};
  }
  async ready(): Promise<void> {
    await this.inner.ready?.();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
