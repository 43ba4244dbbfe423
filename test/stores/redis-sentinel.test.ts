// stores: redis
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createSentinel, type RedisSentinelType } from 'redis';
import { generateId, hashId } from '../../src/core/ids.ts';
import type { Store } from '../../src/core/store.ts';
import { RedisStore, type RedisStoreOptions } from '../../src/stores/redis/index.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { type RedisSentinelHandle, redisCommand, startRedisSentinel } from '../support/redis-servers.ts';
import { until } from '../support/until.ts';

let sentinel: RedisSentinelHandle;
let nodeRedis: RedisSentinelType;
let ioredis: Redis;

before(async () => {
  const started = Date.now();
  sentinel = await startRedisSentinel();
  // Error listeners, as the docs tell users: a failover resets connections, and an unheard 'error'
  // from node-redis's Sentinel client (its sentinel observer's, for one) ends the process.
  nodeRedis = createSentinel({ name: sentinel.masterName, sentinelRootNodes: sentinel.sentinels });
  nodeRedis.on('error', () => {});
  await nodeRedis.connect();
  ioredis = new Redis({ sentinels: sentinel.sentinels, name: sentinel.masterName });
  ioredis.on('error', () => {});
  console.log(`sentinel setup ready in ${Date.now() - started} ms`);
});
after(async () => {
  await nodeRedis?.close();
  ioredis?.disconnect();
  await sentinel?.stop();
});

function shared(options: () => RedisStoreOptions) {
  return {
    createStore: () => new RedisStore({ ...options(), prefix: `tessera-test:${randomBytes(6).toString('hex')}:` }),
    async writeCorruptRecord(store: Store, key: string) {
      const redisKey = (store as RedisStore).prefix + key;
      const master = { port: sentinel.master.port };
      await redisCommand(master, ['HSET', redisKey, 'createdAt', String(Date.now()), 'expiresAt', 'soon']);
      await redisCommand(master, ['PEXPIRE', redisKey, '60000']);
    },
  };
}

const hooks = { describe, it, beforeEach, afterEach };
runStoreConformance(hooks, {
  name: 'redis sentinel (node-redis createSentinel)',
  ...shared(() => ({ client: nodeRedis })),
});
runStoreConformance(hooks, { name: 'redis sentinel (ioredis sentinels)', ...shared(() => ({ client: ioredis })) });

describe('redis sentinel failover', () => {
  it('keeps working through both clients after the replica is promoted', async () => {
    const stores = [nodeRedis, ioredis].map((client) => new RedisStore({ client, prefix: 'tessera-test:failover:' }));
    const key = hashId(generateId());
    const now = Date.now();
    await stores[0]?.set(key, { fields: { a: '1' }, createdAt: now, expiresAt: now + 60_000, userId: 'erin' });
    const started = Date.now();
    await redisCommand(sentinel.sentinels[0] as { port: number }, ['SENTINEL', 'FAILOVER', sentinel.masterName]);
    // A server changing role drops its client connections: a poll it resets just asks again.
    const roleOf = async (port: number) => ((await redisCommand({ port }, ['ROLE']).catch(() => [])) as string[])[0];
    const deadline = Date.now() + 30_000;
    while ((await roleOf(sentinel.replica.port)) !== 'master' || (await roleOf(sentinel.master.port)) !== 'slave') {
      assert.ok(Date.now() < deadline, 'sentinel swaps the roles');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const swapped = Date.now() - started;
    // The promoted replica has the data but not the scripts: EVALSHA answers NOSCRIPT, EVAL follows.
    for (const store of stores) {
      while (!(await store.patch(key, { set: { b: '2' }, unset: [], expiresAt: now + 60_000 }).catch(() => false))) {
        assert.ok(Date.now() < deadline, 'the store answers again after the failover');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual((await store.get(key))?.fields, { a: '1', b: '2' });
      assert.deepEqual(
        (await store.listByUser('erin')).map((e) => e.key),
        [key],
      );
    }
    console.log(`failover: roles swapped after ${swapped} ms, both stores answering after ${Date.now() - started} ms`);
    for (const store of stores) await store.close();
  });
});

describe("node-redis Sentinel: commands held behind the client's rediscovery", () => {
  /** Resolves with what `promise` gave, or with `pending` when it has not settled within `ms`. */
  const within = <T>(promise: Promise<T>, ms: number) =>
    Promise.race([promise, sleep(ms).then(() => 'pending' as const)]);

  it('the store answers on the master connection while node-redis waits for Sentinel', async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: 'tessera-test:held:' });
    const key = hashId(generateId());
    const now = Date.now();
    // The first call asks ROLE on the master connection and fails fast if it is slow to answer.
    const record = { fields: { a: '1' }, createdAt: now, expiresAt: now + 60_000, userId: null };
    await until(() =>
      store.set(key, record).then(
        () => true,
        () => false,
      ),
    );
    const at = nodeRedis.getSentinelNode() as { host: string; port: number };
    let resume: (() => void) | undefined;
    let held: Promise<unknown> | undefined;
    try {
      // A Sentinel event, or the loss of the client's sentinel connection (here: killed), starts
      // node-redis's rediscovery, which holds every command until it ends; with the other
      // sentinels frozen it does not end. A PING answered means the client has not noticed yet.
      resume = sentinel.freezeSentinels(at.port);
      await redisCommand(at, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      for (let attempt = 0; attempt < 20 && held === undefined; attempt++) {
        const ping = nodeRedis.sendCommand(false, ['PING']);
        if ((await within(ping, 300)) === 'pending') held = ping;
      }
      assert.ok(held, 'node-redis held a command behind its rediscovery');
      const read = await within(store.get(key), 2000);
      assert.notEqual(read, 'pending', 'store.get waited behind the rediscovery');
      assert.deepEqual(read === 'pending' ? null : read?.fields, { a: '1' });
      const wrote = await within(store.patch(key, { set: { b: '2' }, unset: [], expiresAt: now + 60_000 }), 2000);
      assert.equal(wrote, true);
      assert.equal(await within(held, 0), 'pending', 'node-redis still holds its own command');
    } finally {
      resume?.();
    }
    assert.equal(await held, 'PONG');
    assert.deepEqual((await store.get(key))?.fields, { a: '1', b: '2' });
    await store.destroy(key);
    await store.close();
  });
});
