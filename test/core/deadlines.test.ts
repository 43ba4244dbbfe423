import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Deadline, Deadlines } from '../../src/core/deadlines.ts';
import { until } from '../support/until.ts';

/** A deadline that runs `expire` (the engine's store calls are their own deadlines). */
const call = (expire: () => void): Deadline => ({ at: 0, index: -1, expire });

describe('Deadlines (the store calls timeout)', () => {
  it('expires a call once its time has passed, never before, and a settled one never', async () => {
    const deadlines = new Deadlines(60);
    const started = performance.now();
    const expired: Array<[string, number]> = [];
    const slow = deadlines.add(call(() => expired.push(['slow', performance.now() - started])));
    const quick = deadlines.add(call(() => expired.push(['quick', performance.now() - started])));
    deadlines.settle(quick);
    deadlines.settle(quick); // twice: no harm
    await until(async () => expired.length > 0, 5000);
    // A call added after the first expired still has its own full time.
    const thirdAdded = performance.now();
    const third = deadlines.add(call(() => expired.push(['third', performance.now() - thirdAdded])));
    await until(async () => expired.length > 1, 5000);
    assert.deepEqual(
      expired.map(([name]) => name),
      ['slow', 'third'],
    );
    for (const [name, ms] of expired) assert.ok(ms >= 60, `${name} expired after ${ms} ms, before its 60 ms`);
    deadlines.settle(slow); // after it expired: nothing happens
    deadlines.settle(third);
  });

  it('lets the process exit once nothing is pending (the timer holds it only while a call is)', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const script = `
      import { Deadlines } from ${JSON.stringify(new URL('../../src/core/deadlines.ts', import.meta.url).pathname)};
      const d = new Deadlines(600_000);
      const call = d.add({ at: 0, index: -1, expire: () => { console.log('expired'); } });
      d.settle(call);
      console.log('settled');
    `;
    const started = performance.now();
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ]);
    assert.equal(stdout.trim(), 'settled');
    // The sweep timer (a minute between sweeps here) did not keep it running.
    assert.ok(performance.now() - started < 30_000);
  });
});
