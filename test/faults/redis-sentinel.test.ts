import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RedisSentinelHandle, startRedisSentinel } from '../support/redis-servers.ts';
import { checkFault, type FaultResult, runFault, summary } from './harness.ts';
import { sentinelScenario } from './scenarios.ts';

let sentinel: RedisSentinelHandle;

before(async () => {
  sentinel = await startRedisSentinel({ downAfterMs: 1000 });
});
after(async () => {
  await sentinel?.stop();
});

/**
 * While Sentinel knows no master the store fails at once. node-redis retries a command that was
 * in flight when the master died through its own rediscovery (a loop that sleeps 1 s), so a few
 * of those end at the store timeout: for it, at most 5% of the failures may be timeouts (every
 * answer stays within the bound checkFault sets); with ioredis the p99 itself is fast. A durable
 * commit waits for the replica on every write (WAIT, up to its timeoutMs) and the client retries
 * on top of that, so there the p99 measures the latency chosen, not whether failures are fast:
 * durable runs are held to the share of timeouts, as node-redis is.
 */
function fastDuringFailover(library: string, result: FaultResult, durable: boolean): void {
  if (library === 'ioredis' && !durable) {
    assert.ok(result.outage.p99Ms < 500, `p99 of answers during the failover: ${Math.round(result.outage.p99Ms)} ms`);
    return;
  }
  const timeouts = result.errors.filter(([message]) => message.includes('took longer')).reduce((n, [, c]) => n + c, 0);
  const failures = result.errors.reduce((n, [, c]) => n + c, 0);
  assert.ok(timeouts <= 0.05 * failures, `${timeouts} of ${failures} failures were timeouts, not fast errors`);
}

// Each run kills the current master; the next one fails over back to the restarted server.
describe('Redis Sentinel (master, replica, 3 sentinels), master killed, failover', () => {
  for (const library of ['node-redis', 'ioredis'] as const) {
    it(`${library} with durableCommit: every answer bounded, recovers, loses nothing acknowledged`, async () => {
      const { plan, teardown } = await sentinelScenario(library, true, sentinel);
      try {
        const result = await runFault(plan);
        console.log(summary(result));
        assert.deepEqual(checkFault(result), []);
        if (library === 'ioredis') fastDuringFailover(library, result, true);
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

  // Open (issue 10, point 4): with a durable commit, node-redis sometimes takes ~13 s to find the
  // new master (its rediscovery loop), and then more than 5% of the failures are 1 s timeouts.
  // About one run in ten; a todo reports the result without failing the suite until it is fixed.
  it('node-redis with durableCommit: failures during the failover are fast errors, not timeouts', {
    todo: 'node-redis Sentinel rediscovery is sometimes slow with durableCommit (issue 10, point 4)',
  }, async () => {
    const { plan, teardown } = await sentinelScenario('node-redis', true, sentinel);
    try {
      const result = await runFault(plan);
      console.log(summary(result));
      fastDuringFailover('node-redis', result, true);
    } finally {
      await teardown();
    }
  });
});
