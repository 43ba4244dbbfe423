// stores: redis
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RedisSentinelHandle, startRedisSentinel } from '../support/redis-servers.ts';
import { checkFault, type FaultResult, runFault, summary } from './harness.ts';
import { sentinelScenario } from './scenarios.ts';

let sentinel: RedisSentinelHandle;

before(async () => {
  // Down-after 2 s: at 1 s Sentinel sometimes failed the new master over again (see sentinelScenario).
  sentinel = await startRedisSentinel();
});
after(async () => {
  await sentinel?.stop();
});

/**
 * From Sentinel naming the new master and the old one restarted (with a durable commit: from the
 * restarted one online as a replica) to the first success; an aborted failover retried 20 s
 * later broke it.
 */
const RECOVERY_BOUND_MS = 5000;

/**
 * While Sentinel knows no master the store fails at once, and nothing waits for the store
 * timeout, in flight or not. With node-redis (5 and 6) the store fails what was in flight when
 * the master connection dropped (node-redis would retry it through its rediscovery, a loop that
 * sleeps 1 s), sends nothing to a reconnected connection before ROLE says it is the master, and
 * sends to the master connection directly while node-redis holds commands behind that loop. With
 * ioredis commands in flight when the master died fail on the connection's close. A durable
 * commit keeps one WAIT out at a time and refuses writes while no replica is online, so no
 * request queues behind WAITs that run to their timeout (before: store timeouts, a 5% share
 * allowed for ioredis, node-redis 6 with timeouts in 2 of 10 runs); without it ioredis's p99 is
 * held too.
 */
function fastDuringFailover(library: string, result: FaultResult, durable: boolean): void {
  const { timeouts } = result;
  const failures = Object.values(result.failed).reduce((n, c) => n + c, 0);
  assert.equal(timeouts, 0, `${timeouts} of ${failures} failures were store timeouts, not fast errors`);
  if (library === 'ioredis' && !durable) {
    assert.ok(result.outage.p99Ms < 500, `p99 of answers during the failover: ${Math.round(result.outage.p99Ms)} ms`);
  }
  assert.ok(
    result.recoveryMs !== null && result.recoveryMs <= RECOVERY_BOUND_MS,
    `first success ${result.recoveryMs} ms after recovery (bound ${RECOVERY_BOUND_MS} ms)`,
  );
}

// Each run kills the current master; the next one fails over back to the restarted server.
describe('Redis Sentinel (master, replica, 3 sentinels), master killed, failover', () => {
  for (const library of ['node-redis', 'node-redis 6', 'ioredis'] as const) {
    it(`${library} with durableCommit: every answer bounded, recovers, loses nothing acknowledged`, async () => {
      const { plan, teardown } = await sentinelScenario(library, true, sentinel);
      try {
        const result = await runFault(plan);
        console.log(summary(result));
        assert.deepEqual(checkFault(result), []);
        // node-redis: also when Sentinel flags the new master down for a moment (busy with the
        // restarted replica's sync on a loaded machine) and node-redis holds its commands behind
        // its rediscovery loop; the store sends on the master connection meanwhile. With a
        // durable commit, one WAIT at a time and writes refused while no replica is online keep
        // reads from queueing behind WAITs (node-redis 6 had store timeouts in 2 of 10 runs).
        fastDuringFailover(library, result, true);
      } finally {
        await teardown();
      }
    });

    it(`${library} without durableCommit: fast 503s, recovers; acknowledged writes lost are measured`, async () => {
      const { plan, teardown } = await sentinelScenario(library, false, sentinel);
      try {
        const result = await runFault(plan);
        console.log(summary(result));
        // Asynchronous replication: writes the master acknowledged but had not sent to the
        // replica are gone after the failover. Counted (README), not forbidden.
        assert.deepEqual(checkFault(result, { allowLost: true }), []);
        fastDuringFailover(library, result, false);
      } finally {
        await teardown();
      }
    });
  }

  // What once made a run 12 s slow: Sentinel failed the new master over again just after the
  // recovery. The old master keeps running as a master without replicas until Sentinel makes it a
  // replica (about 10 s), so every durable write is refused meanwhile, and the run says why.
  it('node-redis with durableCommit, a second failover after the recovery: reported, nothing acknowledged lost', async () => {
    const { plan, teardown } = await sentinelScenario('node-redis', true, sentinel, { secondFailover: true });
    try {
      const result = await runFault(plan);
      console.log(summary(result));
      assert.equal(result.anomalies.length, 1, `anomalies: ${JSON.stringify(result.anomalies)}`);
      assert.deepEqual(checkFault({ ...result, anomalies: [] }), []);
      assert.equal(result.timeouts, 0);
    } finally {
      await teardown();
    }
  });
});
