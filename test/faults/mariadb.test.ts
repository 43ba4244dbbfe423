// stores: mysql
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isSessionError } from '../../src/core/errors.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { type SqlServer, startMariadb } from '../support/sql-servers.ts';
import { until } from '../support/until.ts';
import { checkFault, runFault, summary } from './harness.ts';
import { sqlScenario } from './scenarios.ts';

let db: SqlServer;

before(async () => {
  db = await startMariadb();
});
after(async () => {
  await db?.stop();
});

describe('MariaDB killed (SIGKILL)', () => {
  it('does not kill the process when a patch holds a pooled connection, and recovers', async () => {
    // As for PostgreSQL: the second clock read of an armed patch is between its read and its write.
    let armed = 0;
    const store = new SqlStore({
      url: db.url,
      table: 'fault_checkout',
      now: () => {
        if (armed > 0 && ++armed === 3) db.killSync();
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
      const down = await store.get(key).then(
        () => null,
        (error: unknown) => error,
      );
      assert.ok(isSessionError(down, 'STORE_UNAVAILABLE'), `get while down failed with ${String(down)}`);
      await db.start();
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
      await db.start();
      await store.destroy(key).catch(() => {});
      await store.close();
    }
  });

  it('under load: 503s while down, recovery without a restart, nothing acknowledged lost', async () => {
    const { plan, teardown } = await sqlScenario('mariadb', db);
    try {
      const result = await runFault(plan);
      console.log(summary(result));
      assert.deepEqual(checkFault(result), []);
    } finally {
      await teardown();
    }
  });
});
