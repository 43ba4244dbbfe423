// stores: sqlite postgres mysql
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from 'kysely';
import mysql from 'mysql2';
import pg from 'pg';
import { isSessionError, type SessionError } from '../../src/core/errors.ts';
import { generateId, hashId, shortKey } from '../../src/core/ids.ts';
import type { Logger } from '../../src/core/options.ts';
import type { SessionRecord } from '../../src/core/store.ts';
import { type SqlDialect, SqlStore, type SqlStoreOptions, schemaSql } from '../../src/stores/sql/index.ts';
import { lockKey } from '../../src/stores/sql/store.ts';
import { only } from '../support/stores.ts';

const PG_URL = process.env.TESSERA_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.TESSERA_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const DIALECTS: SqlDialect[] = ['sqlite', 'postgres', 'mysql'];
const newKey = () => hashId(generateId());
const randomName = (prefix = 'tessera_test') => `${prefix}_${randomBytes(5).toString('hex')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function record(fields: Record<string, string> = { a: '1' }, lifetimeMs = 60_000, userId: string | null = null) {
  const now = Date.now();
  return { fields, createdAt: now, expiresAt: now + lifetimeMs, userId } satisfies SessionRecord;
}

function captureLogger() {
  const entries: { level: string; object: Record<string, unknown>; message: string | undefined }[] = [];
  const at = (level: string) => (object: object, message?: string) =>
    void entries.push({ level, object: object as Record<string, unknown>, message });
  const logger: Logger = { debug: at('debug'), warn: at('warn'), error: at('error') };
  return { entries, logger };
}

/** Direct access to one database, around the store. `?` placeholders everywhere. */
interface Admin {
  dialect: SqlDialect;
  url: string;
  query(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  q(name: string): string;
  columns(table: string): Promise<string[]>;
  close(): Promise<void>;
}

async function openAdmin(dialect: SqlDialect, dir: string): Promise<Admin> {
  if (dialect === 'sqlite') {
    const file = join(dir, 'admin.db');
    const db = new Database(file);
    return {
      dialect,
      url: `sqlite:${file}`,
      async query(text, params = []) {
        const statement = db.prepare(text);
        if (statement.reader) return statement.all(params) as Record<string, unknown>[];
        statement.run(params);
        return [];
      },
      q: (name) => `"${name}"`,
      async columns(table) {
        return (db.prepare('select name from pragma_table_info(?)').all(table) as { name: string }[]).map(
          (r) => r.name,
        );
      },
      async close() {
        db.close();
      },
    };
  }
  if (dialect === 'postgres') {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 3, connectionTimeoutMillis: 5000 });
    await pool.query('select 1').catch((error: Error) => {
      throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${error.message}); run scripts/ensure-services.sh`);
    });
    return {
      dialect,
      url: PG_URL,
      async query(text, params = []) {
        let n = 0;
        return (
          await pool.query(
            text.replace(/\?/g, () => `$${++n}`),
            params,
          )
        ).rows;
      },
      q: (name) => `"${name}"`,
      async columns(table) {
        const { rows } = await pool.query(
          'select column_name from information_schema.columns where table_name = $1 order by ordinal_position',
          [table],
        );
        return rows.map((r) => r.column_name as string);
      },
      close: () => pool.end(),
    };
  }
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 3, connectTimeout: 5000 }).promise();
  await pool.query('select 1').catch((error: Error) => {
    throw new Error(`MariaDB is not reachable at ${MYSQL_URL} (${error.message}); run scripts/ensure-services.sh`);
  });
  return {
    dialect,
    url: MYSQL_URL,
    query: async (text, params = []) => {
      const [rows] = await pool.query(text, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    q: (name) => `\`${name}\``,
    async columns(table) {
      const [rows] = await pool.query(
        'select column_name as name from information_schema.columns where table_schema = database() and table_name = ? order by ordinal_position',
        [table],
      );
      return (rows as { name: string }[]).map((r) => r.name);
    },
    close: () => pool.end(),
  };
}

/**
 * A driver client of `dialect` (on SQLite, a connection to `sqliteFile`) for the store's `db`, counting the statements it runs (pg and
 * mysql2 queries, better-sqlite3 statement runs) and keeping what pg's `query` was given.
 */
function countingDb(dialect: SqlDialect, sqliteFile = ':memory:') {
  let count = 0;
  const pgQueries: unknown[] = [];
  const counted = <F extends (...a: never[]) => unknown>(run: F, seen?: unknown[]) =>
    function (this: unknown, ...a: Parameters<F>) {
      count++;
      seen?.push(a[0]);
      return run.apply(this, a);
    } as unknown as F;
  if (dialect === 'sqlite') {
    const database = new Database(sqliteFile);
    const prepare = database.prepare.bind(database);
    const wrapped = new WeakSet<object>();
    database.prepare = ((text: string) => {
      const statement = prepare(text) as unknown as Record<'run' | 'all' | 'get', (...a: never[]) => unknown>;
      if (!wrapped.has(statement)) {
        wrapped.add(statement);
        for (const method of ['run', 'all', 'get'] as const) statement[method] = counted(statement[method]);
      }
      return statement;
    }) as unknown as typeof database.prepare;
    return { db: database, count: () => count, pgQueries, close: async () => void database.close() };
  }
  if (dialect === 'postgres') {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 3 });
    pool.on('connect', (client) => {
      client.query = counted(client.query.bind(client) as never, pgQueries) as never;
    });
    return { db: pool, count: () => count, pgQueries, close: () => pool.end() };
  }
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 3 });
  pool.on('connection', (connection) => {
    connection.query = counted(connection.query.bind(connection) as never) as never;
  });
  return { db: pool, count: () => count, pgQueries, close: () => pool.promise().end() };
}

const DATA_TYPE: Record<SqlDialect, string> = { sqlite: 'TEXT', postgres: 'TEXT', mysql: 'MEDIUMTEXT' };
const KEY_TYPE: Record<SqlDialect, string> = { sqlite: 'TEXT', postgres: 'TEXT', mysql: 'VARCHAR(128)' };

for (const dialect of DIALECTS) {
  describe(`sql store on ${dialect}`, only(dialect), () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-sql-store-'));
    const tables: string[] = [];
    let admin: Admin;
    /** A store on a fresh table that is dropped after the suite. */
    const storeFor = (options: Partial<SqlStoreOptions> = {}) => {
      const table = options.table ?? randomName();
      tables.push(table);
      return new SqlStore({ url: admin.url, ...options, table } as SqlStoreOptions);
    };
    const insertRow = (table: string, row: unknown[]) =>
      admin.query(
        `INSERT INTO ${admin.q(table)} (sessions_id, session_data, expires_at, created_at, updated_at, user_id, version) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        row,
      );

    let unreachable: unknown;
    before(async () => {
      try {
        admin = await openAdmin(dialect, dir);
      } catch (error) {
        unreachable = error;
      }
    });
    // A database that is down fails every test here (never a skip): npm test starts them.
    beforeEach(() => {
      if (unreachable) throw unreachable;
    });
    after(async () => {
      rmSync(dir, { recursive: true, force: true });
      if (unreachable) return;
      for (const table of tables) await admin.query(`DROP TABLE IF EXISTS ${admin.q(table)}`);
      await admin.close();
    });

    it('creates the table with the seed defaults and its indexes', async () => {
      const store = storeFor();
      await store.ready();
      assert.deepEqual(await admin.columns(store.table), [
        'sessions_id',
        'session_data',
        'expires_at',
        'created_at',
        'updated_at',
        'user_id',
        'version',
      ]);
      await store.close();
    });

    it('uses the column and table names it is given', async () => {
      const table = randomName('tessera_custom');
      const store = storeFor({
        table,
        idColumn: 'sid',
        dataColumn: 'payload',
        expiresColumn: 'exp',
        createdColumn: 'born',
        updatedColumn: 'touched',
        userColumn: 'owner',
        versionColumn: 'rev',
      });
      const key = newKey();
      await store.set(key, record({ a: '1' }, 60_000, 'ann'));
      assert.equal(await store.patch(key, { set: { b: '2' }, unset: [], expiresAt: Date.now() + 60_000 }), true);
      assert.deepEqual((await store.get(key))?.fields, { a: '1', b: '2' });
      assert.deepEqual(await admin.columns(table), ['sid', 'payload', 'exp', 'born', 'touched', 'owner', 'rev']);
      const [row] = await admin.query(`SELECT rev, touched FROM ${admin.q(table)}`);
      assert.equal(Number(row?.rev), 2);
      assert.ok(Math.abs(Number(row?.touched) - Date.now()) < 60_000, 'updated column set on write');
      await store.close();
    });

    it('reports a table of the wrong shape, naming the missing columns, and leaves it alone', async () => {
      const table = randomName('tessera_wrong');
      tables.push(table);
      await admin.query(
        `CREATE TABLE ${admin.q(table)} (sessions_id ${KEY_TYPE[dialect]} NOT NULL PRIMARY KEY, session_data ${DATA_TYPE[dialect]} NOT NULL, expires_at BIGINT NOT NULL)`,
      );
      const store = new SqlStore({ url: admin.url, table });
      await assert.rejects(store.ready(), (error: SessionError) => {
        assert.ok(isSessionError(error, 'INVALID_OPTIONS'));
        assert.match(error.message, new RegExp(`table "${table}"`));
        for (const column of ['created_at', 'updated_at', 'user_id', 'version']) {
          assert.ok(error.message.includes(`"${column}"`), `names ${column}: ${error.message}`);
        }
        assert.ok(!error.message.includes('"expires_at",'), 'does not name a present column as missing');
        return true;
      });
      // Every call fails the same way, and the table was not altered.
      await assert.rejects(store.get(newKey()), (error) => isSessionError(error, 'INVALID_OPTIONS'));
      assert.deepEqual(await admin.columns(table), ['sessions_id', 'session_data', 'expires_at']);
      await store.close();
    });

    it('says so when the table is missing and createTable is false', async () => {
      const table = randomName('tessera_absent');
      const store = new SqlStore({ url: admin.url, table, createTable: false });
      await assert.rejects(store.ready(), (error: SessionError) => {
        assert.ok(isSessionError(error, 'INVALID_OPTIONS'));
        assert.ok(error.message.includes(`"${table}" does not exist`), error.message);
        assert.ok(error.message.includes(`sql/${dialect}.sql`), error.message);
        return true;
      });
      assert.deepEqual(await admin.columns(table), []);
      await store.close();
    });

    it('ships sql/<dialect>.sql equal to what the store creates', () => {
      const file = readFileSync(new URL(`../../sql/${dialect}.sql`, import.meta.url), 'utf8');
      assert.equal(
        file,
        schemaSql(dialect),
        `sql/${dialect}.sql is out of date; regenerate it with: node --import tsx -e ` +
          `"import('./src/stores/sql/index.ts').then((m) => process.stdout.write(m.schemaSql('${dialect}')))" > sql/${dialect}.sql`,
      );
    });

    it('accepts a table made by running sql/<dialect>.sql (createTable: false)', async () => {
      const file = readFileSync(new URL(`../../sql/${dialect}.sql`, import.meta.url), 'utf8');
      const table = randomName('tessera_ddl');
      tables.push(table);
      const ddl = file.replaceAll(/(["`])sessions(["`]|_expires_at_idx|_user_id_idx)/g, `$1${table}$2`);
      for (const statement of ddl.split(/;\n/).filter((s) => s.replace(/--.*\n?/g, '').trim() !== '')) {
        await admin.query(statement);
      }
      const store = new SqlStore({ url: admin.url, table, createTable: false });
      const key = newKey();
      await store.set(key, record({ x: '"y"' }, 60_000, 'u'));
      assert.deepEqual((await store.get(key))?.fields, { x: '"y"' });
      assert.equal((await store.listByUser('u')).length, 1);
      await store.close();
    });

    it('prunes in batches, and every live row survives', async () => {
      const { entries, logger } = captureLogger();
      const store = storeFor({ pruneBatchSize: 400, logger });
      const live = Array.from({ length: 50 }, () => newKey());
      await store.setMany([
        ...Array.from({ length: 1_000 }, () => [newKey(), record({ gone: '1' }, -1_000)] as const),
        ...live.map((key) => [key, record({ live: '1' })] as const),
      ]);
      assert.equal(await store.prune(), 1_000);
      const done = entries.find((e) => e.message === 'prune');
      assert.equal(done?.object.batches, 3, '1000 rows in batches of 400');
      assert.equal(await store.count(), 50);
      for (const key of live) assert.ok(await store.get(key), 'live row kept');
      const [row] = await admin.query(`SELECT COUNT(*) AS n FROM ${admin.q(store.table)}`);
      assert.equal(Number(row?.n), 50);
      assert.equal(await store.prune(), 0);
      await store.close();
    });

    it('reports undecodable rows as CORRUPT_RECORD naming table, key and problem, and keeps them', async () => {
      const store = storeFor();
      await store.ready();
      const now = Date.now();
      const cases: [data: string, problem: string][] = [
        ['not json', 'not valid JSON'],
        ['[1,2]', 'not a JSON object'],
        ['"text"', 'not a JSON object'],
        ['null', 'not a JSON object'],
        ['{"a":1}', 'field "a" is not a string'],
        // JSON.parse makes "__proto__" an own member; decoded into a plain object it would become
        // the session data's prototype.
        ['{"user":"\\"bob\\"","__proto__":"{\\"isAdmin\\":true}"}', 'field named "__proto__"'],
      ];
      for (const [data, problem] of cases) {
        const key = newKey();
        await insertRow(store.table, [key, data, now + 60_000, now, now, null, 1]);
        await assert.rejects(store.get(key), (error: SessionError) => {
          assert.ok(isSessionError(error, 'CORRUPT_RECORD'), String(error));
          for (const part of [store.table, shortKey(key), problem, 'session_data']) {
            assert.ok(error.message.includes(part), `"${part}" in ${error.message}`);
          }
          return true;
        });
        await assert.rejects(store.patch(key, { set: {}, unset: [], expiresAt: now + 60_000 }), (error) =>
          isSessionError(error, 'CORRUPT_RECORD'),
        );
        const rows = await admin.query(`SELECT session_data FROM ${admin.q(store.table)} WHERE sessions_id = ?`, [key]);
        assert.equal(rows[0]?.session_data, data, 'the row is kept as it was');
      }
      if (dialect === 'sqlite') {
        // Only SQLite's dynamic typing lets a non-number into an INTEGER column.
        const key = newKey();
        await insertRow(store.table, [key, '{}', now + 60_000, 'yesterday', now, null, 1]);
        await assert.rejects(store.get(key), (error: SessionError) => {
          assert.ok(isSessionError(error, 'CORRUPT_RECORD'));
          assert.ok(error.message.includes('created_at is not a number'), error.message);
          return true;
        });
      }
      await store.close();
    });

    it('never closes a Kysely instance or pool you pass in', async () => {
      const table = randomName();
      tables.push(table);
      let owned: { db: Kysely<object>; driver: { check(): Promise<void>; close(): Promise<void> } };
      if (dialect === 'sqlite') {
        const database = new Database(join(dir, 'own.db'));
        owned = {
          db: new Kysely<object>({ dialect: new SqliteDialect({ database }) }),
          driver: {
            check: async () => void database.prepare('select 1').get(),
            close: async () => void database.close(),
          },
        };
        // The user's database is a different file from the admin one: drop there.
        tables.pop();
      } else if (dialect === 'postgres') {
        const pool = new pg.Pool({ connectionString: PG_URL, max: 3 });
        owned = {
          db: new Kysely<object>({ dialect: new PostgresDialect({ pool }) }),
          driver: { check: async () => void (await pool.query('select 1')), close: () => pool.end() },
        };
      } else {
        const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 3 });
        owned = {
          db: new Kysely<object>({ dialect: new MysqlDialect({ pool }) }),
          driver: {
            check: async () => void (await pool.promise().query('select 1')),
            close: () => pool.promise().end(),
          },
        };
      }
      const store = new SqlStore({ db: owned.db, table });
      await store.set(newKey(), record());
      await store.close();
      await store.close();
      await sql`select 1`.execute(owned.db);
      await owned.driver.check();
      if (dialect === 'sqlite') await sql`drop table ${sql.table(table)}`.execute(owned.db);
      await owned.db.destroy();
    });

    it('never closes a driver pool or database you pass in', async () => {
      const table = randomName();
      tables.push(table);
      let db: SqlStoreOptions['db'];
      let check: () => Promise<void>;
      let close: () => Promise<void>;
      if (dialect === 'sqlite') {
        const database = new Database(':memory:');
        db = database;
        check = async () => assert.equal(database.open, true);
        close = async () => void database.close();
        tables.pop();
      } else if (dialect === 'postgres') {
        const pool = new pg.Pool({ connectionString: PG_URL, max: 3 });
        db = pool;
        check = async () => {
          assert.equal(pool.ended, false);
          await pool.query('select 1');
        };
        close = () => pool.end();
      } else {
        const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 3 }).promise();
        db = pool;
        check = async () => void (await pool.query('select 1'));
        close = () => pool.end();
      }
      const store = new SqlStore({ db, table });
      const key = newKey();
      await store.set(key, record());
      assert.ok(await store.get(key));
      await store.close();
      await check();
      await close();
    });

    it('set from two stores at once never fails on a duplicate key', async () => {
      const table = randomName();
      const [a, b] = [storeFor({ table }), storeFor({ table })];
      await Promise.all([a.ready(), b.ready()]);
      const key = newKey();
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).set(key, record({ n: String(i) }, 60_000, `u${i}`))),
      );
      const rows = await admin.query(`SELECT COUNT(*) AS n FROM ${admin.q(table)}`);
      assert.equal(Number(rows[0]?.n), 1);
      await Promise.all([a.close(), b.close()]);
    });

    it('patches from two stores (two processes) on one session keep every field', async () => {
      const table = randomName();
      const stores = [storeFor({ table }), storeFor({ table })];
      await Promise.all(stores.map((s) => s.ready()));
      const key = newKey();
      const first = record({ base: '0' });
      await stores[0]!.set(key, first);
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          stores[i % 2]!.patch(key, { set: { [`k${i}`]: String(i) }, unset: [], expiresAt: first.expiresAt }),
        ),
      );
      assert.ok(results.every(Boolean));
      const read = await stores[1]!.get(key);
      assert.equal(Object.keys(read?.fields ?? {}).length, 61);
      await Promise.all(stores.map((s) => s.close()));
    });

    it('applies concurrent patches and touches of one session in the order they were made', async () => {
      const store = storeFor();
      const key = newKey();
      const t = Date.now() + 60_000;
      await store.set(key, record({ a: '0' }));
      const results = await Promise.all([
        store.patch(key, { set: { a: '1' }, unset: [], expiresAt: t + 1 }),
        store.patch(key, { set: { a: '2', b: '1' }, unset: [], expiresAt: t + 2 }),
        store.patch(key, { set: {}, unset: ['a'], expiresAt: t + 3, userId: 'owner' }),
        store.touch(key, t + 4),
        store.patch(key, { set: { c: '1' }, unset: [], expiresAt: t + 5 }),
        store.touch(key, t + 6),
      ]);
      assert.deepEqual(results, [true, true, true, true, true, true]);
      const read = await store.get(key);
      assert.deepEqual(read?.fields, { b: '1', c: '1' });
      assert.equal(read?.expiresAt, t + 6);
      assert.equal(read?.userId, 'owner');
      await store.destroy(key);
      assert.deepEqual(
        await Promise.all([store.patch(key, { set: { d: '1' }, unset: [], expiresAt: t }), store.touch(key, t)]),
        [false, false],
      );
      assert.equal(await store.get(key), null);
      await store.close();
    });

    it('reads in one statement, and patches after a get in one more, on the version that get read', async () => {
      // On SQLite the file of the other store (storeFor's, admin's).
      const counting = countingDb(dialect, admin.url.slice('sqlite:'.length));
      const table = randomName();
      tables.push(table);
      const store = new SqlStore({ db: counting.db, table });
      const other = storeFor({ table }); // another process
      const key = newKey();
      const first = record({ a: '1' });
      const change = (set: Record<string, string>) => ({ set, unset: [], expiresAt: first.expiresAt });
      await store.set(key, first);
      const statements = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
        const from = counting.count();
        const result = await work();
        return [result, counting.count() - from];
      };

      assert.deepEqual((await statements(() => store.get(key)))[1], 1);
      assert.deepEqual(await statements(() => store.patch(key, change({ b: '1' }))), [true, 1]);
      // Its own write left the version: the next patch needs no read either.
      assert.deepEqual(await statements(() => store.patch(key, change({ c: '1' }))), [true, 1]);
      // Another process writes between this store's get and patch: the compare-and-set misses,
      // and the patch reads the row and replays on it.
      await store.get(key);
      assert.equal(await other.patch(key, change({ d: '1' })), true);
      assert.deepEqual(await statements(() => store.patch(key, change({ e: '1' }))), [true, 3]);
      assert.deepEqual((await other.get(key))?.fields, { a: '1', b: '1', c: '1', d: '1', e: '1' });

      // Destroyed by another process after the get: logout wins.
      await store.get(key);
      await other.destroy(key);
      assert.equal(await store.patch(key, change({ f: '1' })), false);
      assert.equal(await other.get(key), null);

      // Made again by another process, at version 1 again, after the get: the row that get read
      // is not written over the new one (the compare-and-set also checks the creation time).
      await store.set(key, record({ x: '1' }));
      await store.get(key);
      await other.destroy(key);
      await other.set(key, { ...record({ y: '1' }), createdAt: first.createdAt - 1 });
      assert.equal(await store.patch(key, change({ z: '1' })), true);
      assert.deepEqual((await other.get(key))?.fields, { y: '1', z: '1' });

      await Promise.all([store.close(), other.close()]);
      await counting.close();
    });

    it('touch bumps the version and the updated column', async () => {
      const store = storeFor();
      const key = newKey();
      await store.set(key, record());
      const later = Date.now() + 600_000;
      assert.equal(await store.touch(key, later), true);
      const [row] = await admin.query(`SELECT version, expires_at FROM ${admin.q(store.table)} WHERE sessions_id = ?`, [
        key,
      ]);
      assert.equal(Number(row?.version), 2);
      assert.equal(Number(row?.expires_at), later);
      await store.close();
    });

    it('fails every call after close() with STORE_CLOSED', async () => {
      const store = storeFor();
      await store.ready();
      await store.close();
      await assert.rejects(store.get(newKey()), (error) => isSessionError(error, 'STORE_CLOSED'));
    });
  });
}

describe('sql store: PostgreSQL specifics', only('postgres'), () => {
  let admin: Admin;
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sql-pg-'));
  const cleanup: string[] = [];
  let unreachable: unknown;
  before(async () => {
    try {
      admin = await openAdmin('postgres', dir);
    } catch (error) {
      unreachable = error;
    }
  });
  beforeEach(() => {
    if (unreachable) throw unreachable;
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    if (unreachable) return;
    for (const statement of cleanup) await admin.query(statement);
    await admin.close();
  });

  /** Whether some connection holds the prune lock of `table` (classid = high half, objid = low half). */
  const lockHeld = async (table: string) => {
    const key = BigInt(lockKey('prune', table));
    const rows = await admin.query(
      "SELECT COUNT(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = ?::oid AND objid = ?::oid AND objsubid = 1",
      [String(BigInt.asUintN(32, key >> 32n)), String(BigInt.asUintN(32, key))],
    );
    return rows[0]?.n === 1;
  };

  it('runs its statements as named prepared statements, unless preparedStatements is false', async () => {
    const names = async (options: Partial<SqlStoreOptions>) => {
      const counting = countingDb('postgres');
      const table = randomName();
      cleanup.push(`DROP TABLE IF EXISTS "${table}"`);
      const store = new SqlStore({ db: counting.db, table, ...options } as SqlStoreOptions);
      const key = newKey();
      await store.set(key, record({ a: '1' }));
      assert.deepEqual((await store.get(key))?.fields, { a: '1' });
      await store.close();
      await counting.close();
      return counting.pgQueries.map((query) => (typeof query === 'object' ? (query as { name?: string }).name : null));
    };
    const named = await names({});
    // The upsert and the read: named; the table check before them runs as it is.
    assert.match(String(named.at(-2)), /^tessera_/);
    assert.match(String(named.at(-1)), /^tessera_/);
    assert.notEqual(named.at(-2), named.at(-1));
    // Another table's statements get other names, so two stores can share a pool.
    assert.notEqual((await names({})).at(-1), named.at(-1));
    assert.deepEqual(
      (await names({ preparedStatements: false })).filter((name) => name !== null),
      [],
    );
  });

  it('prunes on one instance at a time: the other skips without error', async () => {
    const table = randomName();
    cleanup.push(`DROP TABLE IF EXISTS "${table}"`);
    const a = captureLogger();
    const b = captureLogger();
    const storeA = new SqlStore({ url: PG_URL, table, pruneBatchSize: 50, logger: a.logger });
    const storeB = new SqlStore({ url: PG_URL, table, pruneBatchSize: 50, logger: b.logger });
    const expired = Array.from({ length: 10_000 }, () => [newKey(), record({ x: '1' }, -1_000)] as const);
    await storeA.setMany(expired);
    await storeB.ready();

    // Deterministic: while the lock is held elsewhere, prune returns 0 and deletes nothing.
    const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
    const holder = await pool.connect();
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [lockKey('prune', table)]);
    assert.equal(await storeB.prune(), 0);
    assert.ok(b.entries.some((e) => e.message?.startsWith('prune skipped')));
    await holder.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey('prune', table)]);
    holder.release();
    await pool.end();

    // Two stores at once: A starts, B asks while A holds the lock.
    b.entries.length = 0;
    const pruningA = storeA.prune();
    while (!(await lockHeld(table))) await sleep(2);
    const skipped = await storeB.prune();
    const deleted = await pruningA;
    assert.equal(skipped, 0);
    assert.ok(
      b.entries.some((e) => e.message?.startsWith('prune skipped')),
      'B saw the lock',
    );
    assert.equal(deleted, 10_000);
    assert.equal(await lockHeld(table), false, 'the lock is released');
    assert.equal(
      b.entries.filter((e) => e.level === 'error').length + a.entries.filter((e) => e.level === 'error').length,
      0,
    );
    await Promise.all([storeA.close(), storeB.close()]);
  });

  it('works in a schema of its own (schema.table)', async () => {
    const schema = randomName('tessera_schema');
    await admin.query(`CREATE SCHEMA "${schema}"`);
    cleanup.push(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    const store = new SqlStore({ url: PG_URL, table: `${schema}.sessions` });
    const key = newKey();
    await store.set(key, record());
    await store.set(key, record({ b: '2' }));
    assert.deepEqual((await store.get(key))?.fields, { b: '2' });
    const rows = await admin.query('SELECT indexname FROM pg_indexes WHERE schemaname = ? ORDER BY indexname', [
      schema,
    ]);
    assert.deepEqual(
      rows.map((r) => r.indexname),
      ['sessions_expires_at_idx', 'sessions_pkey', 'sessions_user_id_idx'],
    );
    await store.close();
  });

  it('reads and writes a table of your own with a JSONB data column', async () => {
    const table = randomName('tessera_jsonb');
    cleanup.push(`DROP TABLE IF EXISTS "${table}"`);
    await admin.query(
      `CREATE TABLE "${table}" (sessions_id TEXT PRIMARY KEY, session_data JSONB NOT NULL, expires_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, user_id TEXT, version INTEGER NOT NULL DEFAULT 1)`,
    );
    const store = new SqlStore({ url: PG_URL, table, createTable: false });
    const key = newKey();
    await store.set(key, record({ a: '"x"', n: '{"deep":[1]}' }));
    assert.equal(await store.patch(key, { set: { b: '2' }, unset: ['a'], expiresAt: Date.now() + 60_000 }), true);
    assert.deepEqual((await store.get(key))?.fields, { n: '{"deep":[1]}', b: '2' });
    const [row] = await admin.query(`SELECT jsonb_typeof(session_data) AS t FROM "${table}"`);
    assert.equal(row?.t, 'object');
    await store.close();
  });

  it('logs in with the user and password in the URL', async () => {
    const table = randomName();
    cleanup.push(`DROP TABLE IF EXISTS "${table}"`);
    const url = new URL(PG_URL);
    url.username ||= 'postgres';
    url.password = 'ignored-by-trust-auth';
    const store = new SqlStore({ url: url.href, table });
    await store.ready();
    await store.close();
    url.username = 'no_such_role_tessera';
    const wrong = new SqlStore({ url: url.href, table });
    await assert.rejects(wrong.ready(), (error: SessionError) => {
      assert.ok(isSessionError(error, 'STORE_UNAVAILABLE'));
      assert.match(error.message, /no_such_role_tessera/);
      return true;
    });
    await wrong.close();
  });

  it('reports an unreachable server as STORE_UNAVAILABLE, quickly, without the password', async () => {
    const store = new SqlStore({ url: 'postgres://u:hunter2@127.0.0.1:1/db', connectTimeoutMs: 1000 });
    await assert.rejects(store.ready(), (error: SessionError) => {
      assert.ok(isSessionError(error, 'STORE_UNAVAILABLE'));
      assert.ok(!error.message.includes('hunter2'), error.message);
      assert.ok(error.message.includes('127.0.0.1:1'), error.message);
      return true;
    });
    await store.close();
  });
});

describe('sql store: MySQL specifics', only('mysql'), () => {
  it('logs in with the user and password in the URL, and fails with a wrong password', async () => {
    const url = new URL(MYSQL_URL);
    url.username ||= 'root';
    const table = randomName();
    const store = new SqlStore({ url: url.href, table });
    await store.ready();
    await store.close();
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 }).promise();
    await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
    await pool.end();
    url.password = 'wrong-password';
    const wrong = new SqlStore({ url: url.href, table });
    await assert.rejects(wrong.ready(), (error) => isSessionError(error, 'STORE_UNAVAILABLE'));
    await wrong.close();
  });
});

describe('sql store: SQLite specifics and the background prune', only('sqlite'), () => {
  // The prune timer is unref'd (it must not keep an app alive): keep the loop alive while waiting for it.
  let keepAlive: NodeJS.Timeout;
  before(() => {
    keepAlive = setInterval(() => {}, 1_000);
  });
  after(() => clearInterval(keepAlive));

  it('opens sqlite::memory: from a URL', async () => {
    const store = new SqlStore({ url: 'sqlite::memory:' });
    const key = newKey();
    await store.set(key, record());
    assert.ok(await store.get(key));
    await store.close();
  });

  it('prunes in the background and reports to the logger', async () => {
    const database = new Database(':memory:');
    let resolve: (object: Record<string, unknown>) => void;
    const pruned = new Promise<Record<string, unknown>>((r) => (resolve = r));
    const logger: Logger = {
      debug: (object, message) => {
        const o = object as Record<string, unknown>;
        if (message === 'prune' && (o.deleted as number) > 0) resolve(o);
      },
      warn: () => {},
      error: () => {},
    };
    const store = new SqlStore({ db: database, pruneIntervalSeconds: 0.05, logger });
    await store.setMany(Array.from({ length: 30 }, () => [newKey(), record({}, -1_000)] as const));
    await store.set(newKey(), record());
    const result = await pruned;
    assert.equal(result.deleted, 30);
    assert.equal(await store.count(), 1);
    await store.close();
    database.close();
  });

  it('sends background prune errors to onError, never nowhere', async () => {
    const database = new Database(':memory:');
    const errors: SessionError[] = [];
    let resolve: () => void;
    const failed = new Promise<void>((r) => (resolve = r));
    const store = new SqlStore({
      db: database,
      pruneIntervalSeconds: 0.05,
      onError: (error) => {
        errors.push(error);
        resolve();
      },
    });
    await store.ready();
    database.exec('DROP TABLE sessions');
    await failed;
    assert.ok(isSessionError(errors[0], 'STORE_UNAVAILABLE'));
    assert.match(errors[0]?.message ?? '', /prune/);
    await store.close();
    database.close();
  });

  it('sends background prune errors to the logger when there is no onError', async () => {
    const database = new Database(':memory:');
    let resolve: (message: string) => void;
    const logged = new Promise<string>((r) => (resolve = r));
    const logger: Logger = { debug: () => {}, warn: () => {}, error: (_object, message) => resolve(message ?? '') };
    const store = new SqlStore({ db: database, pruneIntervalSeconds: 0.05, logger });
    await store.ready();
    database.exec('DROP TABLE sessions');
    assert.match(await logged, /no such table/);
    await store.close();
    database.close();
  });
});
