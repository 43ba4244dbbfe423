// stores: redis sqlite postgres mysql
// The conformance suite through each supported major of each client library that the other test
// files do not already run: node-redis 6 and ioredis 6 (redis.test.ts runs 5 of both), Kysely
// 0.29 (sql.test.ts runs 0.28). Installed as npm aliases (redis6, ioredis6, kysely29), passed in
// as the user's own client, which is how an app on that major meets the store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Redis as Ioredis6 } from 'ioredis6';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from 'kysely29';
import mysql from 'mysql2';
import pg from 'pg';
import { createClient as createClient6 } from 'redis6';
import type { Store } from '../../src/core/store.ts';
import { commandOptionsOf } from '../../src/stores/redis/clients.ts';
import { RedisStore, type RedisStoreOptions } from '../../src/stores/redis/index.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { only, type StoreName } from '../support/stores.ts';

const REDIS_URL = process.env.TESSERA_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.TESSERA_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.TESSERA_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const hooks = { describe, it, beforeEach, afterEach };
const suffix = () => randomBytes(5).toString('hex');

describe('peer majors: Redis clients', only('redis'), () => {
  const nodeRedis6 = createClient6({ url: REDIS_URL });
  const ioredis6 = new Ioredis6(REDIS_URL, { lazyConnect: true });
  ioredis6.on('error', () => {});
  const prefixes: string[] = [];
  before(async () => {
    await nodeRedis6.connect();
    await ioredis6.connect();
  });
  after(async () => {
    // Every key a test wrote, under its own prefix.
    for (const prefix of prefixes) {
      for await (const keys of nodeRedis6.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
        if (keys.length > 0) await nodeRedis6.del(keys);
      }
    }
    nodeRedis6.destroy();
    ioredis6.disconnect();
  });
  const shared = (client: unknown) => ({
    createStore: () => {
      const prefix = `tessera-peer-${suffix()}:`;
      prefixes.push(prefix);
      return new RedisStore({ client: client as RedisStoreOptions['client'], prefix });
    },
  });
  runStoreConformance(hooks, { name: 'redis (node-redis 6, user client)', ...shared(nodeRedis6) });
  runStoreConformance(hooks, { name: 'redis (ioredis 6, user client)', ...shared(ioredis6) });
});

describe('peer majors: Kysely 0.29', () => {
  const own = new WeakMap<Store, { db: Kysely<object>; close(): Promise<void> }>();
  const suite = (name: string, store: StoreName, make: () => { db: Kysely<object>; close(): Promise<void> }) =>
    describe(name, only(store), () =>
      runStoreConformance(hooks, {
        name: `sql (${name}, Kysely 0.29 instance)`,
        createStore() {
          const handle = make();
          const store = new SqlStore({ db: handle.db, table: `tessera_peer_${suffix()}` });
          own.set(store, handle);
          return store;
        },
        async cleanup(store) {
          const handle = own.get(store);
          if (!handle) return;
          await handle.db.schema
            .dropTable((store as SqlStore).table)
            .ifExists()
            .execute();
          await handle.close();
        },
      }),
    );
  suite('SQLite', 'sqlite', () => {
    const database = new Database(':memory:');
    return {
      db: new Kysely<object>({ dialect: new SqliteDialect({ database }) }),
      close: async () => {
        database.close();
      },
    };
  });
  suite('PostgreSQL', 'postgres', () => {
    const db = new Kysely<object>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: PG_URL, max: 4 }) }),
    });
    return { db, close: () => db.destroy() };
  });
  suite('MariaDB', 'mysql', () => {
    const db = new Kysely<object>({
      dialect: new MysqlDialect({ pool: mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 }) }),
    });
    return { db, close: () => db.destroy() };
  });
});

describe('node-redis 6 per-command timeouts', only('redis'), () => {
  it('are turned off for a client whose app chose none (the engine bounds every call), kept when chosen', () => {
    assert.deepEqual(commandOptionsOf(createClient6({ url: REDIS_URL })), { timeout: 0 });
    assert.equal(commandOptionsOf(createClient6({ url: REDIS_URL, commandOptions: { timeout: 250 } })), undefined);
  });
});
