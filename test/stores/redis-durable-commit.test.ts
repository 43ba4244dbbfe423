// stores: redis
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { isSessionError } from '../../src/core/errors.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { type RedisServer, redisCommand, startRedis } from '../support/redis-servers.ts';
import { until } from '../support/until.ts';

let redis: RedisServer;

before(async () => {
  // A replica that connects syncs at once (not after the default 5 s wait for more replicas).
  redis = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
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
  it('holds one WAIT at a time, so reads never queue behind a row of WAITs, and refuses writes while replicas are short', async () => {
    const timeoutMs = 100;
    const durable = new RedisStore({
      url: redis.url,
      prefix: 'durable-test:',
      durableCommit: { replicas: 1, timeoutMs },
    });
    const plain = new RedisStore({ url: redis.url, prefix: 'durable-test:' });
    const waits = async () => {
      const stats = String(await redisCommand({ port: redis.port }, ['INFO', 'commandstats']));
      return Number(/^cmdstat_wait:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
    };
    const now = Date.now();
    const record = { fields: { a: '1' }, createdAt: now, expiresAt: now + 60_000, userId: null };
    const keys = Array.from({ length: 20 }, () => hashId(generateId()));
    const readKey = hashId(generateId());
    try {
      await plain.set(readKey, record);
      await durable.ready();
      const before = await waits();
      // 20 writes at once on the store's one connection, and a read behind them. One WAIT per
      // write (each running to timeoutMs without a replica) held the read for 20 x 100 ms.
      const writes = Promise.all(
        keys.map((key) =>
          durable.set(key, record).then(
            () => 'ok',
            (e: Error) => e.message,
          ),
        ),
      );
      // Reads one after another while the writes wait for their replica: the slowest is how long
      // a request can queue behind WAITs on the shared connection.
      let settled = false;
      void writes.finally(() => {
        settled = true;
      });
      let slowestMs = 0;
      let reads = 0;
      while (!settled) {
        const started = performance.now();
        assert.deepEqual((await durable.get(readKey))?.fields, { a: '1' });
        slowestMs = Math.max(slowestMs, performance.now() - started);
        reads++;
      }
      const outcomes = await writes;
      assert.ok(reads > 0);
      assert.ok(slowestMs < 3 * timeoutMs, `a read waited ${Math.round(slowestMs)} ms behind WAITs`);
      assert.ok(
        outcomes.every((o) => /replicas acknowledged the write/.test(o)),
        outcomes.join('; '),
      );
      const sent = (await waits()) - before;
      assert.ok(sent >= 1 && sent <= 2, `${sent} WAITs for 20 writes`);

      // Replicas short: the next write asks ROLE first and writes nothing.
      const key = hashId(generateId());
      const started2 = performance.now();
      const refused = await durable.set(key, record).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(isSessionError(refused, 'STORE_UNAVAILABLE'), String(refused));
      assert.match((refused as Error).message, /0 of 1 replicas online \(durableCommit\); nothing was written/);
      assert.ok(performance.now() - started2 < timeoutMs, 'refused without a WAIT');
      assert.equal(await plain.get(key), null);
      assert.equal((await waits()) - before, sent, 'no WAIT for a refused write');

      // A replica comes online: ROLE lists it, the write goes through and is acknowledged.
      const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(redis.port)] });
      try {
        await until(async () => {
          const role = (await redisCommand({ port: redis.port }, ['ROLE'])) as unknown[];
          return Array.isArray(role[2]) && role[2].length === 1;
        }, 10_000);
        // Listed as online, it may still be loading what it was sent before it acknowledges.
        await until(
          () =>
            durable.set(key, record).then(
              () => true,
              () => false,
            ),
          10_000,
        );
        assert.deepEqual((await plain.get(key))?.fields, { a: '1' });
        await durable.destroy(key);
      } finally {
        await replica.stop();
      }
    } finally {
      for (const key of [...keys, readKey]) await plain.destroy(key);
      await durable.close();
      await plain.close();
    }
  });
});
