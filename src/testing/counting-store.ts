import type { ChangeSet, SessionRecord, Store, UserSessionEntry, WriteOutcome } from '../core/store.ts';

/** Calls per store method, as counted by {@link CountingStore}. */
export type StoreCallCounts = Record<
  'get' | 'set' | 'destroy' | 'patch' | 'touch' | 'move' | 'listByUser' | 'destroyByUser' | 'prune' | 'count',
  number
>;

/**
 * Wraps a store and counts its calls, to assert how much I/O a request costs (a forged cookie
 * must cost none).
 */
export class CountingStore implements Store {
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
  };

  /** Present when the wrapped store has it, so the engine sees the same capabilities. */
  readonly move?: Store['move'];

  constructor(inner: Store) {
    this.inner = inner;
    const move = inner.move;
    if (move) {
      this.move = (from, to, change, forwardUntil) => {
        this.calls.move++;
        return move.call(inner, from, to, change, forwardUntil);
      };
    }
  }

  get name(): string {
    return this.inner.name;
  }

  get capabilities() {
    return this.inner.capabilities;
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
  patch(key: string, change: ChangeSet): Promise<WriteOutcome> {
    this.calls.patch++;
    return this.inner.patch(key, change);
  }
  touch(key: string, expiresAt: number): Promise<WriteOutcome> {
    this.calls.touch++;
    return this.inner.touch(key, expiresAt);
  }
  listByUser(userId: string): Promise<UserSessionEntry[]> {
    this.calls.listByUser++;
    return this.inner.listByUser(userId);
  }
  destroyByUser(userId: string): Promise<number> {
    this.calls.destroyByUser++;
    return this.inner.destroyByUser(userId);
  }
  prune(): Promise<number> {
    this.calls.prune++;
    return this.inner.prune();
  }
  count(): Promise<number> {
    this.calls.count++;
    return this.inner.count();
  }
  async ready(): Promise<void> {
    await this.inner.ready?.();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
