// stores: sqlite postgres mysql
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from 'kysely';
import mysql from 'mysql2';
import pg from 'pg';
import { isSessionError } from '../../src/core/errors.ts';
import { SqlStore, type SqlStoreOptions } from '../../src/stores/sql/index.ts';
import { indexName, parseSqlUrl, resolveSqlOptions } from '../../src/stores/sql/options.ts';

const invalidOptions = (error: unknown) => isSessionError(error, 'INVALID_OPTIONS');
/** Asserts an INVALID_OPTIONS error whose message contains every one of `parts`. */
function rejects(run: () => unknown, ...parts: string[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(invalidOptions(error), `expected INVALID_OPTIONS, got ${String(error)}`);
    for (const part of parts)
      assert.ok((error as Error).message.includes(part), `"${part}" in: ${(error as Error).message}`);
    return true;
  });
}

describe('sql url parsing', () => {
  it('reads SQLite files and memory', () => {
    assert.deepEqual(parseSqlUrl('sqlite:path/to/file.db'), { dialect: 'sqlite', filename: 'path/to/file.db' });
    assert.deepEqual(parseSqlUrl('sqlite:/var/lib/app/s.db'), { dialect: 'sqlite', filename: '/var/lib/app/s.db' });
    assert.deepEqual(parseSqlUrl('sqlite:///var/lib/app/s.db'), { dialect: 'sqlite', filename: '/var/lib/app/s.db' });
    assert.deepEqual(parseSqlUrl('sqlite::memory:'), { dialect: 'sqlite', filename: ':memory:' });
    assert.deepEqual(parseSqlUrl('SQLite:x.db'), { dialect: 'sqlite', filename: 'x.db' });
    rejects(() => parseSqlUrl('sqlite:'), 'names no SQLite file');
  });

  it('reads PostgreSQL URLs under both schemes', () => {
    for (const scheme of ['postgres', 'postgresql']) {
      const target = parseSqlUrl(`${scheme}://app:secret@db.internal:6543/sessions?sslmode=require`);
      assert.ok(target.dialect === 'postgres');
      assert.equal(target.host, 'db.internal');
      assert.equal(target.port, 6543);
      assert.equal(target.database, 'sessions');
      assert.equal(target.url, `${scheme}://app:secret@db.internal:6543/sessions?sslmode=require`);
    }
    const bare = parseSqlUrl('postgres://localhost/test');
    assert.ok(bare.dialect === 'postgres');
    assert.equal(bare.port, null);
  });

  it('reads MySQL and MariaDB URLs, as mysql://', () => {
    const target = parseSqlUrl('mariadb://root@127.0.0.1:3306/test');
    assert.ok(target.dialect === 'mysql');
    assert.equal(target.url, 'mysql://root@127.0.0.1:3306/test');
    assert.equal(target.database, 'test');
    const v6 = parseSqlUrl('mysql://[::1]:3307/app');
    assert.ok(v6.dialect === 'mysql');
    assert.equal(v6.host, '::1');
    assert.equal(v6.port, 3307);
  });

  it('keeps an encoded user and password in the URL', () => {
    const target = parseSqlUrl('postgres://new%20user:p%40ss%3A%2Fw%23%3F@h/db');
    assert.ok(target.dialect === 'postgres');
    const url = new URL(target.url);
    assert.equal(decodeURIComponent(url.username), 'new user');
    assert.equal(decodeURIComponent(url.password), 'p@ss:/w#?');
    assert.equal(url.pathname, '/db');
  });

  it('rejects other schemes and never shows the password', () => {
    rejects(() => parseSqlUrl('http://example.com/db'), 'url must start with');
    rejects(() => parseSqlUrl('redis://localhost'), 'url must start with');
    rejects(() => parseSqlUrl('mssql://u:hunter2@h/db'), '***');
    assert.throws(
      () => parseSqlUrl('mssql://u:hunter2@h/db'),
      (error: Error) => !error.message.includes('hunter2'),
    );
    rejects(() => parseSqlUrl('postgres:///db'), 'names no host');
  });
});

describe('sql options', () => {
  it('applies the documented defaults', () => {
    const o = resolveSqlOptions({ url: 'sqlite::memory:' });
    assert.equal(o.table, 'sessions');
    assert.deepEqual(o.columns, {
      id: 'sessions_id',
      data: 'session_data',
      expires: 'expires_at',
      created: 'created_at',
      updated: 'updated_at',
      user: 'user_id',
      version: 'version',
    });
    assert.equal(o.createTable, true);
    assert.equal(o.pruneIntervalMs, 0);
    assert.equal(o.pruneBatchSize, 1000);
    assert.equal(o.poolSize, 10);
    assert.equal(o.connectTimeoutMs, 5000);
    assert.equal(o.conflictRetries, 100);
  });

  it('rejects identifiers that could carry SQL, naming the option', () => {
    for (const table of ['sessions; DROP TABLE users', 'a"b', 'a`b', '1abc', 'a b', '', 'a.b.c', 'x'.repeat(64)]) {
      rejects(() => new SqlStore({ url: 'sqlite::memory:', table }), 'table');
    }
    rejects(() => new SqlStore({ url: 'sqlite::memory:', idColumn: 'id) --' }), 'idColumn');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', dataColumn: "data'" }), 'dataColumn');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', userColumn: 'user id' }), 'userColumn');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', versionColumn: 7 as unknown as string }), 'versionColumn');
  });

  it('accepts schema-qualified tables except on SQLite', () => {
    assert.equal(new SqlStore({ url: 'postgres://h/db', table: 'auth.sessions' }).table, 'auth.sessions');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', table: 'main.sessions' }), 'SQLite');
  });

  it('rejects two columns with one name', () => {
    rejects(() => new SqlStore({ url: 'sqlite::memory:', userColumn: 'Version' }), 'used twice');
  });

  it('wants exactly one of url and db, and no unknown option', () => {
    rejects(() => new SqlStore({}), 'url or db');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', db: new Database(':memory:') }), 'not both');
    rejects(
      () => new SqlStore({ url: 'sqlite::memory:', tabel: 'x' } as SqlStoreOptions),
      'sqlStore: tabel is not a known option (did you mean "table"?); known: url, dialect, table',
    );
    rejects(() => new SqlStore({ url: 'sqlite::memory:', user: 'u' } as SqlStoreOptions), 'user is not a known option');
  });

  it('checks numbers and callbacks', () => {
    rejects(() => new SqlStore({ url: 'sqlite::memory:', pruneBatchSize: 0 }), 'pruneBatchSize');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', poolSize: 2.5 }), 'poolSize');
    rejects(
      () => new SqlStore({ url: 'sqlite::memory:', conflictRetries: -1 }),
      'conflictRetries must be a whole number >= 0, got -1',
    );
    rejects(() => new SqlStore({ url: 'sqlite::memory:', connectTimeoutMs: Number.NaN }), 'connectTimeoutMs');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', pruneIntervalSeconds: -5 }), 'pruneIntervalSeconds');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', createTable: 'yes' as unknown as boolean }), 'createTable');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', onError: 'log' as unknown as () => void }), 'onError');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', dialect: 'oracle' as 'mysql' }), 'dialect');
    rejects(() => new SqlStore({ url: 'sqlite::memory:', dialect: 'mysql' }), 'contradicts');
  });

  it('never modifies the options it is given', () => {
    const options = Object.freeze({
      url: 'postgres://u@h/db',
      table: 'auth.sessions',
      idColumn: 'sid',
      pruneIntervalSeconds: 0,
    });
    const before = JSON.stringify(options);
    const store = new SqlStore(options);
    assert.equal(JSON.stringify(options), before);
    assert.equal(store.dialect, 'postgres');
  });

  it('tells the dialect of your own connection without connecting', () => {
    const sqlite = new Database(':memory:');
    const pgPool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none' });
    const mysqlPool = mysql.createPool({ uri: 'mysql://nobody@127.0.0.1:1/none' });
    try {
      assert.equal(new SqlStore({ db: sqlite }).dialect, 'sqlite');
      assert.equal(new SqlStore({ db: pgPool }).dialect, 'postgres');
      assert.equal(new SqlStore({ db: mysqlPool }).dialect, 'mysql');
      assert.equal(new SqlStore({ db: mysqlPool.promise() }).dialect, 'mysql');
      const kyselies = {
        sqlite: new Kysely<object>({ dialect: new SqliteDialect({ database: sqlite }) }),
        postgres: new Kysely<object>({ dialect: new PostgresDialect({ pool: pgPool }) }),
        mysql: new Kysely<object>({ dialect: new MysqlDialect({ pool: mysqlPool }) }),
      };
      for (const [dialect, db] of Object.entries(kyselies)) assert.equal(new SqlStore({ db }).dialect, dialect);
      rejects(() => new SqlStore({ db: kyselies.postgres, dialect: 'mysql' }), 'contradicts');
      rejects(() => new SqlStore({ db: new pg.Client() as unknown as pg.Pool }), 'pg.Pool');
      rejects(() => new SqlStore({ db: {} as pg.Pool }), 'db must be');
    } finally {
      sqlite.close();
      void pgPool.end();
      mysqlPool.end();
    }
  });

  it('derives index names within the identifier limit', () => {
    assert.equal(indexName('sessions', 'expires_at'), 'sessions_expires_at_idx');
    assert.equal(indexName('auth.sessions', 'user_id'), 'sessions_user_id_idx');
    const long = indexName('t'.repeat(60), 'expires_at');
    assert.ok(long.length <= 63);
    assert.notEqual(long, indexName('t'.repeat(60), 'user_id'));
  });
});
