// stores: redis
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkFault, runFault, summary } from './harness.ts';
import { redisScenario } from './scenarios.ts';

describe('Redis with appendfsync always, killed (SIGKILL) and restarted', () => {
  it('answers 503 fast while down, recovers within a reconnect delay, loses nothing acknowledged', async () => {
    const { plan, teardown } = await redisScenario();
    try {
      const result = await runFault(plan);
      console.log(summary(result));
      assert.deepEqual(checkFault(result), []);
      // The reconnect delay is at most 150 ms (100 ms and jitter): the first success follows soon
      // (with the old 2 s cap it came 0.5 to 2 s after the restart).
      assert.ok(
        result.recoveryMs !== null && result.recoveryMs < 750,
        `first success ${result.recoveryMs} ms after restart`,
      );
    } finally {
      await teardown();
    }
  });
});
