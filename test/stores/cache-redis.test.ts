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
