// stores: sqlite postgres mysql
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Store } from '../../src/core/store.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { only } from '../support/stores.ts';

const PG_URL = process.env.TESSERA_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.TESSERA_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const test = { describe, it, beforeEach, afterEach };
const randomTable = () => `tessera_test_${randomBytes(5).toString('hex')}`;
const tableOf = (store: Store) => (store as SqlStore).table;

/** A row that is not JSON, written around the store. */
function corruptRow(key: string): unknown[] {
  const now = Date.now();
  return [key, 'not json {', now + 60_000, now, now, null, 1];
}
const COLUMNS = 'sessions_id, session_data, expires_at, created_at, updated_at, user_id, version';

describe('sql store: SQLite file', only('sqlite'), () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sql-'));
  const file = join(dir, 'sessions.db');
  let admin: Database.Database;
  before(() => {
    admin = new Database(file);
  });
  after(() => {
    admin.close();
    rmSync(dir, { recursive: true, force: true });
  });
  runStoreConformance(test, {
    name: 'sql (SQLite file)',
    createStore: () => new SqlStore({ url: `sqlite:${file}`, table: randomTable() }),
    cleanup: (store) => void admin.exec(`DROP TABLE IF EXISTS "${tableOf(store)}"`),
    async writeCorruptRecord(store, key) {
      await (store as SqlStore).ready();
      admin.prepare(`INSERT INTO "${tableOf(store)}" (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`).run(corruptRow(key));
    },
  });
});

describe('sql store: SQLite :memory: (your own better-sqlite3 Database)', only('sqlite'), () => {
  const databases = new WeakMap<Store, Database.Database>();
  runStoreConformance(test, {
    name: 'sql (SQLite :memory:)',
    createStore() {
      const database = new Database(':memory:');
      const store = new SqlStore({ db: database, table: randomTable() });
      databases.set(store, database);
      return store;
    },
    // The store never closes a database it was given: the test does.
    cleanup: (store) => void databases.get(store)?.close(),
    async writeCorruptRecord(store, key) {
      await (store as SqlStore).ready();
      databases
        .get(store)
        ?.prepare(`INSERT INTO "${tableOf(store)}" (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`)
        .run(corruptRow(key));
    },
  });
});

describe('sql store: PostgreSQL', only('postgres'), () => {
  let admin: pg.Pool;
  let unreachable: Error | undefined;
  before(async () => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 2, connectionTimeoutMillis: 5000 });
    // Unreachable is a failure of every test, never a skip (npm test starts the services).
    await admin.query('select 1').catch((error: Error) => {
      unreachable = new Error(
        `PostgreSQL is not reachable at ${PG_URL} (${error.message}); start it with scripts/ensure-services.sh postgres`,
      );
    });
  });
  after(() => admin.end());
  runStoreConformance(test, {
    name: 'sql (PostgreSQL)',
    createStore() {
      if (unreachable) throw unreachable;
      return new SqlStore({ url: PG_URL, table: randomTable() });
    },
    cleanup: async (store) => void (await admin.query(`DROP TABLE IF EXISTS "${tableOf(store)}"`)),
    async writeCorruptRecord(store, key) {
      await (store as SqlStore).ready();
      await admin.query(
        `INSERT INTO "${tableOf(store)}" (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        corruptRow(key),
      );
    },
  });
});

describe('sql store: MariaDB', only('mysql'), () => {
  let admin: mysql.Pool;
  let unreachable: Error | undefined;
  before(async () => {
    admin = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2, connectTimeout: 5000 });
    // Unreachable is a failure of every test, never a skip (npm test starts the services).
    await admin.query('select 1').catch((error: Error) => {
      unreachable = new Error(
        `MariaDB is not reachable at ${MYSQL_URL} (${error.message}); start it with scripts/ensure-services.sh mariadb`,
      );
    });
  });
  after(() => admin.end());
  runStoreConformance(test, {
    name: 'sql (MariaDB)',
    createStore() {
      if (unreachable) throw unreachable;
      return new SqlStore({ url: MYSQL_URL, table: randomTable() });
    },
    cleanup: async (store) => void (await admin.query(`DROP TABLE IF EXISTS \`${tableOf(store)}\``)),
    async writeCorruptRecord(store, key) {
      await (store as SqlStore).ready();
      await admin.query(`INSERT INTO \`${tableOf(store)}\` (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`, corruptRow(key));
    },
  });
});
