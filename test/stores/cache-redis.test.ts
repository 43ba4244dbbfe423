// stores: redis
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { SessionEngine } from '../../src/core/engine.ts';
import { CachedStore, redisPubSub, redisTracking } from '../../src/stores/cache/index.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { type RedisClusterHandle, type RedisServer, startRedis, startRedisCluster } from '../support/redis-servers.ts';
import { until } from '../support/until.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const t = { describe, it, beforeEach, afterEach };
const secret = 'cache-redis-test-secret-0123456789abcdef';

function trackedRedis(url: string) {
  const prefix = `tessera-test:${randomUUID()}:`;
  return new CachedStore({ store: new RedisStore({ url, prefix }), invalidation: redisTracking({ url, prefix }) });
}

/** Deletes every key under a prefix in the shared Redis: the tests leave nothing behind. */
async function dropPrefix(prefix: string): Promise<void> {
  const { createClient } = await import('redis');
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  try {
    for await (const keys of admin.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await admin.unlink(keys);
    }
  } finally {
    await admin.close();
  }
}

runStoreConformance(t, {
  name: 'cache (redis tracking) + redis',
  createStore: () => trackedRedis(REDIS_URL),
  cleanup: (store) => dropPrefix(((store as CachedStore).inner as RedisStore).prefix),
});

runStoreConformance(t, {
  name: 'cache (redis pub/sub) + sqlite',
  createStore: () =>
    new CachedStore({
      store: new SqlStore({ url: 'sqlite::memory:' }),
      invalidation: redisPubSub({ url: REDIS_URL, channel: `tessera-test:${randomUUID()}` }),
    }),
});

describe('cache (redis tracking) + redis cluster', () => {
  let cluster: RedisClusterHandle;
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(async () => {
    await cluster.stop();
  });
  runStoreConformance(t, {
    name: 'cache (redis tracking) + redis cluster',
    createStore: async () => {
      const { createCluster } = await import('redis');
      const rootNodes = cluster.nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` }));
      const client = createCluster({ rootNodes });
      await client.connect();
      const prefix = `tessera-test:${randomUUID()}:`;
      const store = new CachedStore({
        store: new RedisStore({ client, prefix }),
        invalidation: redisTracking({ url: rootNodes[0]?.url, prefix }),
      });
      const close = store.close.bind(store);
      store.close = async () => {
        await close();
        if (client.isOpen) await client.close();
      };
      return store;
    },
  });
});

/** Waits until a read right after a read of `cookie` costs the store nothing: caching is on. */
function cachedSoon(engine: SessionEngine<Record<string, unknown>>, backing: CountingStore, cookie: string) {
  return until(async () => {
    await engine.session(cookie).get('n');
    backing.reset();
    await engine.session(cookie).get('n');
    return backing.calls.get === 0;
  }, 10_000);
}

describe('cache (redis tracking) + redis: one store read for concurrent loads', () => {
  it('answers 30 concurrent requests of one session on a cold cache with one Redis read', async () => {
    const prefix = `tessera-test:${randomUUID()}:`;
    const counted = new CountingStore(new RedisStore({ url: REDIS_URL, prefix }));
    const cache = new CachedStore({ store: counted, invalidation: redisTracking({ url: REDIS_URL, prefix }) });
    const engine = new SessionEngine<Record<string, unknown>>({ store: cache, secrets: [secret] });
    try {
      await cache.start();
      const first = engine.session(undefined);
      await first.set('user', 'alice');
      const cookie = (await engine.commit(first)).setCookie?.split(';')[0];
      counted.reset();
      const users = await Promise.all(Array.from({ length: 30 }, () => engine.session(cookie).get('user')));
      assert.deepEqual(new Set(users), new Set(['alice']));
      assert.equal(counted.calls.get, 1, 'one read for 30 requests');
      assert.equal(cache.stats().joined, 29);
    } finally {
      await engine.close();
      await dropPrefix(prefix);
    }
  });
});

/** A tier over a store-made Redis connection, with its reads counted (HGETALLs the tier let through). */
function quietTier(url: string, prefix: string) {
  const store = new RedisStore({ url, prefix });
  const reads = { count: 0 };
  const get = store.get.bind(store);
  store.get = (key) => {
    reads.count++;
    return get(key);
  };
  const source = redisTracking({ url, prefix, reconnectDelayMs: 20 });
  const cache = new CachedStore({ store, invalidation: source });
  const engine = new SessionEngine<Record<string, unknown>>({ store: cache, secrets: [secret] });
  return { store, reads, source, cache, engine };
}

const cookieOf = (setCookie: string | null | undefined) => setCookie?.split(';')[0] ?? '';

/** Starts a session on `engine` with `field` set, and returns its cookie. */
async function logIn(engine: SessionEngine<Record<string, unknown>>, field: string, value: unknown): Promise<string> {
  const login = engine.session(undefined);
  await login.set(field, value);
  return cookieOf((await engine.commit(login)).setCookie);
}

describe("cache (redis tracking) on the store's own connection: a write keeps its result", () => {
  it('a read-modify-write costs one round trip: no read after the first, and the store has every write', async () => {
    const prefix = `tessera-test:${randomUUID()}:`;
    const a = quietTier(REDIS_URL, prefix);
    try {
      await a.cache.start();
      assert.equal(a.source.quietOwnWrites, true, 'the tracking rides on the store connection');
      const cookie = await logIn(a.engine, 'n', 0);
      for (let i = 1; i <= 20; i++) {
        const s = a.engine.session(cookie);
        assert.equal(await s.get('n'), i - 1);
        await s.set('n', i);
        await a.engine.commit(s);
      }
      assert.equal(a.reads.count, 0, 'twenty read-modify-writes, not one HGETALL');
      const fresh = new RedisStore({ url: REDIS_URL, prefix });
      const key = a.engine.session(cookie);
      await key.get('n');
      const stored = await fresh.get(key.key ?? '');
      assert.equal(stored?.fields.n, '20', 'every write reached Redis');
      await fresh.close();
    } finally {
      await a.engine.close();
      await dropPrefix(prefix);
    }
  });

  it("still hears every other connection's writes and destroys", async () => {
    const prefix = `tessera-test:${randomUUID()}:`;
    const a = quietTier(REDIS_URL, prefix);
    const b = quietTier(REDIS_URL, prefix);
    try {
      await Promise.all([a.cache.start(), b.cache.start()]);
      assert.equal(a.source.quietOwnWrites && b.source.quietOwnWrites, true);
      const cookie = await logIn(a.engine, 'n', 1);
      assert.equal(await b.engine.session(cookie).get('n'), 1);
      assert.equal(await b.engine.session(cookie).get('n'), 1);
      assert.equal(b.reads.count, 1, 'b holds it after one read');
      // a's write is b's invalidation, and b's is a's.
      const s = a.engine.session(cookie);
      await s.set('n', 2);
      await a.engine.commit(s);
      await until(async () => (await b.engine.session(cookie).get('n')) === 2);
      const t2 = b.engine.session(cookie);
      await t2.set('n', 3);
      await b.engine.commit(t2);
      await until(async () => (await a.engine.session(cookie).get('n')) === 3);
      await b.engine.session(cookie).destroy();
      await until(async () => (await a.engine.session(cookie).get('n')) === undefined);
    } finally {
      await Promise.all([a.engine.close(), b.engine.close()]);
      await dropPrefix(prefix);
    }
  });

  it('keeps every concurrent write of one session, and holds no guess while writes overlap', async () => {
    const prefix = `tessera-test:${randomUUID()}:`;
    const a = quietTier(REDIS_URL, prefix);
    try {
      await a.cache.start();
      const cookie = await logIn(a.engine, 'start', true);
      await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const s = a.engine.session(cookie);
          await s.get('start');
          await s.set(`k${i}`, i);
          await a.engine.commit(s);
        }),
      );
      const s = a.engine.session(cookie);
      for (let i = 0; i < 40; i++) assert.equal(await s.get(`k${i}`), i, `k${i} is seen through the tier`);
    } finally {
      await a.engine.close();
      await dropPrefix(prefix);
    }
  });

  it('stops serving from memory when the store connection drops, and keeps writes again once it is back', async () => {
    const prefix = `tessera-test:${randomUUID()}:`;
    const a = quietTier(REDIS_URL, prefix);
    const other = new SessionEngine<Record<string, unknown>>({
      store: new RedisStore({ url: REDIS_URL, prefix }),
      secrets: [secret],
    });
    const { createClient } = await import('redis');
    const admin = createClient({ url: REDIS_URL });
    await admin.connect();
    try {
      await a.cache.start();
      const cookie = await logIn(a.engine, 'n', 1);
      // The store's connection is the one tracking with NOLOOP: kill it (tracking ends with it).
      const clients = String(await admin.sendCommand(['CLIENT', 'LIST']));
      const tracking = clients.split('\n').filter((line) => / flags=\S*t/.test(line) && / redir=\d+/.test(line));
      const ours = tracking.filter((line) => {
        const redir = / redir=(\d+)/.exec(line)?.[1];
        return clients.includes(`id=${redir} `) && new RegExp(`id=${redir} .* name=tessera-tier-`).test(clients);
      });
      assert.ok(ours.length >= 1, 'a tracking connection redirecting to a tier listener');
      const resetsBefore = a.cache.stats().resets;
      for (const line of ours) await admin.sendCommand(['CLIENT', 'KILL', 'ID', String(/^id=(\d+)/.exec(line)?.[1])]);
      await until(async () => a.cache.stats().resets > resetsBefore);
      // Meanwhile another process writes: once back, the tier must not serve what it held before.
      const s = other.session(cookie);
      await s.set('n', 2);
      await other.commit(s);
      await until(async () => {
        try {
          return (await a.engine.session(cookie).get('n')) === 2;
        } catch {
          return false;
        }
      }, 10_000);
      await until(async () => a.source.quietOwnWrites === true, 10_000);
      // Back: a write keeps its result again, and others' writes still arrive.
      const mine = a.engine.session(cookie);
      await mine.set('n', 3);
      await a.engine.commit(mine);
      const readsBefore = a.reads.count;
      assert.equal(await a.engine.session(cookie).get('n'), 3);
      assert.equal(a.reads.count, readsBefore, 'held after the write, no read');
      const theirs = other.session(cookie);
      await theirs.set('n', 4);
      await other.commit(theirs);
      await until(async () => (await a.engine.session(cookie).get('n')) === 4);
    } finally {
      await admin.close();
      await Promise.all([a.engine.close(), other.close()]);
      await dropPrefix(prefix);
    }
  });

  it("with a client of the app's own, tracks on a connection of its own and drops what it wrote", async () => {
    const prefix = `tessera-test:${randomUUID()}:`;
    const { createClient } = await import('redis');
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    const counted = { count: 0 };
    const store = new RedisStore({ client, prefix });
    const get = store.get.bind(store);
    store.get = (key) => {
      counted.count++;
      return get(key);
    };
    const source = redisTracking({ url: REDIS_URL, prefix });
    const cache = new CachedStore({ store, invalidation: source });
    const engine = new SessionEngine<Record<string, unknown>>({ store: cache, secrets: [secret] });
    try {
      await cache.start();
      assert.equal(source.quietOwnWrites, false, "the app's connection is left as it is");
      const tracking = String(await client.sendCommand(['CLIENT', 'INFO']));
      assert.doesNotMatch(tracking, / flags=\S*t/, "no tracking turned on on the app's client");
      const cookie = await logIn(engine, 'n', 1);
      assert.equal(await engine.session(cookie).get('n'), 1);
      assert.equal(counted.count, 1, 'a write is dropped from the tier (its own invalidation would do it anyway)');
    } finally {
      await engine.close();
      await client.close();
      await dropPrefix(prefix);
    }
  });
});

describe('cache coherence across processes', () => {
  it('a session destroyed by one process is refused by another that had it cached', async () => {
    const prefix = `tessera-test:${randomUUID()}:`;
    const store = new RedisStore({ url: REDIS_URL, prefix });
    const engine = new SessionEngine<Record<string, unknown>>({ store, secrets: [secret] });
    const login = engine.session(undefined);
    await login.set('user', 'alice');
    const cookie = (await engine.commit(login)).setCookie?.split(';')[0] ?? '';

    const child: ChildProcess = fork(
      new URL('../support/cache-node.ts', import.meta.url).pathname,
      [REDIS_URL, prefix, secret],
      {
        execArgv: ['--import', 'tsx'],
      },
    );
    let nextId = 0;
    const ask = (): Promise<{ user: string | null; stats: { hits: number } }> =>
      new Promise((resolve) => {
        const id = nextId++;
        const onMessage = (m: { id?: number }) => {
          if (m.id !== id) return;
          child.off('message', onMessage);
          resolve(m as never);
        };
        child.on('message', onMessage);
        child.send({ id, cookie });
      });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(String(m)))));
        child.once('exit', (code) => reject(new Error(`cache node exited with ${code}`)));
      });
      assert.equal((await ask()).user, 'alice');
      const cached = await ask();
      assert.equal(cached.user, 'alice');
      assert.ok(cached.stats.hits >= 1, 'process A serves the session from its cache');

      const logout = engine.session(cookie);
      await logout.destroy();
      const ms = await until(async () => (await ask()).user === null);
      console.log(`revocation seen by the other process after ${ms.toFixed(2)} ms`);
    } finally {
      child.send('close');
      await new Promise((resolve) => child.once('exit', resolve));
      await engine.close();
      await dropPrefix(prefix);
    }
  });
});

describe('cache over a unix socket', () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis({ unixSocket: true });
  });
  after(async () => {
    await server.stop();
  });

  it('serves cached reads with zero Redis calls and sees changes, all over the socket', async () => {
    const url = `unix://${server.socketPath}`;
    const prefix = 'tessera:';
    const backing = new CountingStore(new RedisStore({ url: `unix://${server.socketPath}`, prefix }));
    const cache = new CachedStore({ store: backing, invalidation: redisTracking({ url, prefix }) });
    const engine = new SessionEngine<Record<string, unknown>>({ store: cache, secrets: [secret] });
    const other = new SessionEngine<Record<string, unknown>>({
      store: new RedisStore({ url: `unix://${server.socketPath}`, prefix }),
      secrets: [secret],
    });
    try {
      await cache.start();
      const s = engine.session(undefined);
      await s.set('n', 1);
      const cookie = (await engine.commit(s)).setCookie?.split(';')[0] ?? '';
      // Our own write's invalidation may land during the first read, which then is not cached.
      await cachedSoon(engine, backing, cookie);
      backing.reset();
      for (let i = 0; i < 10; i++) assert.equal(await engine.session(cookie).get('n'), 1);
      assert.equal(backing.calls.get, 0, 'ten reads of a cached session cost no Redis call');
      const elsewhere = other.session(cookie);
      await elsewhere.set('n', 2);
      await other.commit(elsewhere);
      await until(async () => (await engine.session(cookie).get('n')) === 2);
    } finally {
      await engine.close();
      await other.close();
    }
  });

  it('drops everything while the invalidation connection is down, and caches again once back', async () => {
    const url = `unix://${server.socketPath}`;
    const backing = new CountingStore(new RedisStore({ url: `unix://${server.socketPath}`, prefix: 'drop:' }));
    const cache = new CachedStore({
      store: backing,
      invalidation: redisTracking({ url, prefix: 'drop:', reconnectDelayMs: 20 }),
    });
    const engine = new SessionEngine<Record<string, unknown>>({ store: cache, secrets: [secret], storeTimeoutMs: 500 });
    try {
      await cache.start();
      await server.kill();
      await until(async () => cache.stats().resets >= 1);
      await server.start();
      const s = engine.session(undefined);
      await until(async () => {
        try {
          await s.set('n', 1);
          return true;
        } catch {
          return false;
        }
      }, 10_000);
      const cookie = (await engine.commit(s)).setCookie?.split(';')[0] ?? '';
      // Caching is back once a read right after a read costs no Redis call.
      await cachedSoon(engine, backing, cookie);
    } finally {
      await engine.close();
    }
  });
});
