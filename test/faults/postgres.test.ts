// stores: postgres
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isSessionError } from '../../src/core/errors.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { type SqlServer, startPostgres } from '../support/sql-servers.ts';
import { until } from '../support/until.ts';
import { checkFault, runFault, summary } from './harness.ts';
import { sqlScenario } from './scenarios.ts';

let pg: SqlServer;

before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.stop();
});

describe('PostgreSQL stopped with pg_ctl stop -m immediate', () => {
  it('does not kill the process when a patch holds a checked-out connection, and recovers', async () => {
    // The store's clock is read once before a patch's read and once between its read and its
    // write: the second read of an armed clock stops the server right there, while the patch
    // holds its connection (checked out of the pool, between two queries).
    let armed = 0;
    const store = new SqlStore({
      url: pg.url,
      table: 'fault_checkout',
      now: () => {
        if (armed > 0 && ++armed === 3) pg.killSync();
        return Date.now();
      },
    });
    const key = hashId(generateId());
    try {
      const now = Date.now();
      await store.set(key, { fields: { a: '"1"' }, createdAt: now, expiresAt: now + 60_000, userId: null });
      armed = 1;
      const failure = await store.patch(key, { set: { b: '"2"' }, unset: [], expiresAt: now + 60_000 }).then(
        () => null,
        (error: unknown) => error,
      );
      armed = 0;
      assert.ok(isSessionError(failure, 'STORE_UNAVAILABLE'), `patch failed with ${String(failure)}`);
      // Still alive: the broken connection's 'error' has been emitted by now. Every call fails fast.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const down = await store.get(key).then(
        () => null,
        (error: unknown) => error,
      );
      assert.ok(isSessionError(down, 'STORE_UNAVAILABLE'), `get while down failed with ${String(down)}`);

      await pg.start();
      await until(
        () =>
          store.get(key).then(
            (record) => record !== null,
            () => false,
          ),
        10_000,
      );
      assert.deepEqual((await store.get(key))?.fields, { a: '"1"' });
    } finally {
      armed = 0;
      await pg.start();
      await store.destroy(key).catch(() => {});
      await store.close();
    }
  });

  it('under load: 503s while down, nothing acknowledged lost, one line of stderr per distinct error', async () => {
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return write(chunk, ...rest);
    }) as typeof process.stderr.write;
    const { plan, teardown } = await sqlScenario('postgres', pg);
    let result: Awaited<ReturnType<typeof runFault>>;
    try {
      result = await runFault(plan);
    } finally {
      process.stderr.write = write;
      await teardown();
    }
    console.log(summary(result));
    assert.deepEqual(checkFault(result), []);
    assert.ok(lines.length <= 5, `stderr got ${lines.length} lines:\n${lines.slice(0, 20).join('\n')}`);
    for (const line of lines) {
      assert.ok(!line.includes(pg.password), `a line shows the password: ${line}`);
      assert.ok(!/secretKey|processID/.test(line), `a line dumps a pg client: ${line}`);
    }
  });
});
