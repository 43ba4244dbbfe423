// stores: redis
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RedisClusterHandle, startRedisCluster } from '../support/redis-servers.ts';
import { checkFault, runFault, summary } from './harness.ts';
import { clusterScenario, DURABLE_REDIS } from './scenarios.ts';

let cluster: RedisClusterHandle;

before(async () => {
  cluster = await startRedisCluster({ args: DURABLE_REDIS });
});
after(async () => {
  await cluster?.stop();
});

describe('Redis Cluster (3 masters, AOF fsync always), every master killed and restarted', () => {
  for (const library of ['node-redis', 'ioredis'] as const) {
    it(`${library}: 503 at once while down (no queueing until the timeout), recovers, loses nothing acknowledged`, async () => {
      const { plan, teardown } = await clusterScenario(library, cluster);
      try {
        const result = await runFault(plan);
        console.log(summary(result));
        assert.deepEqual(checkFault(result), []);
        // Failing fast: answers during the outage come well before the 1 s store timeout.
        assert.ok(result.outage.p99Ms < 500, `p99 of answers during the outage: ${Math.round(result.outage.p99Ms)} ms`);
      } finally {
        await teardown();
      }
    });
  }
});
