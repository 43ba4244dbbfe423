// stores: redis
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { isSessionError } from '../../src/core/errors.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { type RedisServer, startRedis } from '../support/redis-servers.ts';

let redis: RedisServer;

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

describe('redis durableCommit', () => {
  it('is validated like the other options', () => {
    const bad = [
      { replicas: 0, timeoutMs: 100 },
      { replicas: 1.5, timeoutMs: 100 },
      { replicas: 1, timeoutMs: 0 },
      { replicas: 1 },
      { replicas: 1, timeoutMs: 100, extra: true },
      'yes',
    ];
    for (const durableCommit of bad) {
      assert.throws(
        () => new RedisStore({ url: redis.url, durableCommit: durableCommit as never }),
        (error: unknown) => isSessionError(error, 'INVALID_OPTIONS'),
        JSON.stringify(durableCommit),
      );
    }
    const cluster = new Cluster([{ host: '127.0.0.1', port: redis.port }], { lazyConnect: true });
    assert.throws(
      () => new RedisStore({ client: cluster, durableCommit: { replicas: 1, timeoutMs: 100 } }),
      (error: unknown) => isSessionError(error, 'INVALID_OPTIONS') && /node-redis createCluster/.test(error.message),
    );
    const options = { url: redis.url, durableCommit: { replicas: 1, timeoutMs: 100 } };
    const copy = structuredClone(options);
    new RedisStore(options);
    assert.deepEqual(options, copy);
  });

  it('fails a write that no replica acknowledged in time, and needs none without the option', async () => {
    const key = hashId(generateId());
    const now = Date.now();
    const record = { fields: { a: '1' }, createdAt: now, expiresAt: now + 60_000, userId: null };
    const durable = new RedisStore({
      url: redis.url,
      prefix: 'durable-test:',
      durableCommit: { replicas: 1, timeoutMs: 50 },
    });
    const plain = new RedisStore({ url: redis.url, prefix: 'durable-test:' });
    try {
      const started = performance.now();
      const error = await durable.set(key, record).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(isSessionError(error, 'STORE_UNAVAILABLE'), String(error));
      assert.match((error as Error).message, /0 of 1 replicas/);
      assert.ok(performance.now() - started >= 45, 'waited for the replicas');
      await plain.set(key, record);
      assert.equal(
        await durable.patch(key, { set: { b: '2' }, unset: [], expiresAt: now + 60_000 }).catch((e: Error) => e.name),
        'SessionError',
      );
    } finally {
      await plain.destroy(key);
      await durable.close();
      await plain.close();
    }
  });
});
