// stores: redis
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { SessionEngine } from '../../src/core/engine.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import type { Store } from '../../src/core/store.ts';
import { CachedStore, redisPubSub } from '../../src/stores/cache/index.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { until } from '../support/until.ts';

const SECRET = 'cache-test-secret-0123456789abcdefghij';

/** A memory store whose reads can be held (they read at once, and answer when released). */
class HeldStore extends MemoryStore {
  hold = false;
  reads = 0;
  #held: Array<() => void> = [];
  override async get(key: string) {
    this.reads++;
    const read = await super.get(key);
    if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve));
    return read;
  }
  release(): void {
    for (const resolve of this.#held.splice(0)) resolve();
  }
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const t = { describe, it, beforeEach, afterEach };

runStoreConformance(t, {
  name: 'cache (process-local) + memory',
  createStore: () => new CachedStore({ store: new MemoryStore(), invalidation: null }),
});

runStoreConformance(t, {
  name: 'cache (redis pub/sub) + memory',
  createStore: () =>
    new CachedStore({
      store: new MemoryStore(),
      invalidation: redisPubSub({ url: REDIS_URL, channel: `tessera-test:${randomUUID()}` }),
    }),
});

const record = (fields: Record<string, string>, userId: string | null = null) => ({
  fields,
  createdAt: Date.now(),
  expiresAt: Date.now() + 60_000,
  userId,
});

/** Alice logs in through another engine, straight to `store` (another process): the tier under test has not seen it. */
async function loginElsewhere(store: Store): Promise<string | undefined> {
  const elsewhere = new SessionEngine<Record<string, unknown>>({ store, secrets: [SECRET] });
  const first = elsewhere.session(undefined);
  await first.set('user', 'alice');
  return (await elsewhere.commit(first)).setCookie?.split(';')[0];
}

describe('cache tier', () => {
  it('serves repeated reads from memory, and writes go through and are held', async () => {
    const backing = new CountingStore(new MemoryStore());
    const cache = new CachedStore({ store: backing, invalidation: null });
    const key = hashId(generateId());
    await cache.set(key, record({ a: '1' }));
    assert.equal(backing.calls.set, 1, 'a write goes through');
    backing.reset();
    for (let i = 0; i < 5; i++) assert.deepEqual((await cache.get(key))?.fields, { a: '1' });
    assert.equal(backing.calls.get, 0, 'what this process wrote is held: no read');
    assert.equal(await cache.patch?.(key, { set: { b: '2' }, unset: [], expiresAt: Date.now() + 60_000 }), true);
    assert.equal(backing.calls.patch, 1);
    assert.deepEqual((await cache.get(key))?.fields, { a: '1', b: '2' }, 'a write is never hidden by the cache');
    assert.deepEqual((await backing.inner.get(key))?.fields, { a: '1', b: '2' });
    assert.equal(backing.calls.get, 0, 'the patched record is held too');
    await cache.destroy(key);
    assert.equal(await cache.get(key), null);
    assert.equal(backing.calls.get, 1, 'a destroyed session is read from the store');
    const stats = cache.stats();
    assert.equal(stats.hits, 6);
    assert.equal(stats.misses, 1);
    await cache.close();
  });

  it('is bounded by entries and by bytes', async () => {
    const cache = new CachedStore({ store: new MemoryStore(), invalidation: null, maxEntries: 3, maxBytes: 4000 });
    const keys = Array.from({ length: 5 }, () => hashId(generateId()));
    for (const key of keys) {
      await cache.set(key, record({ a: '1' }));
      await cache.get(key);
    }
    assert.equal(cache.stats().entries, 3);
    assert.equal(cache.stats().evictions, 2);
    const big = hashId(generateId());
    await cache.set(big, record({ a: 'x'.repeat(3000) }));
    await cache.get(big);
    assert.ok(cache.stats().bytes <= 4000);
    await cache.close();
  });

  it('drops an entry another process changed (pub/sub), and says how long it took', async () => {
    const shared = new MemoryStore();
    const channel = `tessera-test:${randomUUID()}`;
    const a = new CachedStore({
      store: shared,
      invalidation: redisPubSub({ url: REDIS_URL, channel }),
      closeStore: false,
    });
    const b = new CachedStore({
      store: shared,
      invalidation: redisPubSub({ url: REDIS_URL, channel }),
      closeStore: false,
    });
    await Promise.all([a.start(), b.start()]);
    const key = hashId(generateId());
    await a.set(key, record({ user: '"alice"' }));
    assert.ok(await a.get(key));
    assert.ok(await a.get(key));
    assert.equal(a.stats().hits, 1);
    await b.destroy(key);
    const ms = await until(async () => (await a.get(key)) === null);
    assert.ok(a.stats().invalidations >= 1);
    assert.ok(ms < 5000);
    await Promise.all([a.close(), b.close()]);
    await shared.close();
  });

  it('loads a session it holds at once, with no store call; events, traces or a miss go the usual way', async () => {
    const backing = new CountingStore(new MemoryStore());
    const cache = new CachedStore({ store: backing, invalidation: null });
    const engine = new SessionEngine<Record<string, unknown>>({ store: cache, secrets: [SECRET] });
    // Logged in elsewhere (straight to the store): this tier does not hold it yet.
    const cookie = await loginElsewhere(backing);
    backing.reset();

    // Not held yet: a store read, and the load waits for it.
    const cold = engine.session(cookie);
    const coldRead = cold.get('user');
    assert.equal(cold.isLoaded, false);
    assert.equal(await coldRead, 'alice');
    assert.equal(backing.calls.get, 1);

    // Held now: loaded before get() returns, and the backing store is not asked.
    const warm = engine.session(cookie);
    const warmRead = warm.get('user');
    assert.equal(warm.isLoaded, true);
    assert.equal(await warmRead, 'alice');
    assert.equal(backing.calls.get, 1);
    assert.equal(engine.metrics().loads, 2);

    // A load listener sees every load: then the load is the usual one (still a cache hit).
    const seen: string[] = [];
    engine.on('load', (session) => {
      seen.push(session.key ?? '');
    });
    const listened = engine.session(cookie);
    const listenedRead = listened.get('user');
    assert.equal(listened.isLoaded, false);
    assert.equal(await listenedRead, 'alice');
    assert.equal(seen.length, 1);
    assert.equal(backing.calls.get, 1);
    await engine.close();
  });

  it('answers N concurrent reads of one session on a cold cache with one store read', async () => {
    const backing = new CountingStore(new MemoryStore());
    const cache = new CachedStore({ store: backing, invalidation: null });
    const key = hashId(generateId());
    await backing.set(key, record({ a: '1' }));
    backing.reset();
    const reads = await Promise.all(Array.from({ length: 20 }, () => cache.get(key)));
    assert.equal(backing.calls.get, 1);
    for (const read of reads) assert.deepEqual(read?.fields, { a: '1' });
    // One record for every reader and for the hits after (readers never change what they get,
    // the Store contract), a copy of the store's own: what the store hands out later is apart.
    assert.equal(new Set(reads).size, 1);
    assert.equal(await cache.get(key), reads[0]);
    assert.notEqual(await backing.inner.get(key), reads[0]);
    assert.equal(cache.stats().joined, 19);

    // Through the engine: 20 requests of one session (logged in elsewhere), one store read.
    const engine = new SessionEngine<Record<string, unknown>>({ store: cache, secrets: [SECRET] });
    const cookie = await loginElsewhere(backing);
    backing.reset();
    const users = await Promise.all(Array.from({ length: 20 }, () => engine.session(cookie).get('user')));
    assert.deepEqual(new Set(users), new Set(['alice']));
    assert.equal(backing.calls.get, 1);
    await cache.close();
  });

  it('never lets a read join one that an invalidation or a write overtook', async () => {
    const backing = new HeldStore();
    const cache = new CachedStore({ store: backing, invalidation: null });
    const key = hashId(generateId());
    await backing.set(key, record({ v: '1' }));
    backing.hold = true;
    const early = cache.get(key);
    const joined = cache.get(key);
    assert.equal(backing.reads, 1, 'the second read joined the first');
    // Another write of the key, made while the first read is on its way.
    backing.hold = false;
    await cache.patch?.(key, { set: { v: '2' }, unset: [], expiresAt: Date.now() + 60_000 });
    const later = cache.get(key);
    assert.equal(backing.reads, 2, 'a read after the write goes to the store');
    backing.release();
    assert.equal((await early)?.fields.v, '1');
    assert.equal((await joined)?.fields.v, '1');
    assert.equal((await later)?.fields.v, '2');
    assert.equal((await cache.get(key))?.fields.v, '2', 'the overtaken read was not cached');
    await cache.close();
  });

  it('refuses bad options with INVALID_OPTIONS', () => {
    assert.throws(
      () => new CachedStore({ store: new MemoryStore(), invalidation: null, maxEntries: 0 }),
      (e: { code?: string }) => e.code === 'INVALID_OPTIONS',
    );
    assert.throws(
      () => new CachedStore({ store: new MemoryStore() } as never),
      (e: { code?: string }) => e.code === 'INVALID_OPTIONS',
    );
  });
});
