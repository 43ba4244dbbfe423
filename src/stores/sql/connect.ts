import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Kysely } from 'kysely';
import { invalid } from '../../core/check.ts';
import { importOptional, isSessionError, SessionError, toStoreError } from '../../core/errors.ts';
import { dbKind, type ResolvedSqlOptions, redactUrl } from './options.ts';
import { keepingStatements, pgRunner, preparingPool, type Runner } from './statements.ts';

type Value = string | number | bigint | boolean | null | Uint8Array | object;
/** One row: column names are configurable, so the schema type is a plain record. */
export type Row = Record<string, Value>;
export type Db = Record<string, Row>;
export type KyselyModule = typeof import('kysely');

/** An open connection: the Kysely instance and whether `close()` must destroy it. */
export interface Connection {
  db: Kysely<Db>;
  k: KyselyModule;
  /** The store opened the pool or file itself and closes it. */
  owned: boolean;
  /**
   * PostgreSQL: the texts to run as named prepared statements, by name; the store fills it
   * when it compiles its statements (empty for a Kysely instance of yours, which runs as it is).
   */
  names: Map<string, string>;
  /** PostgreSQL: runs one statement outside a transaction straight on the pg pool (see {@link pgRunner}); else `db` does. */
  run?: Runner;
}

const SCOPE = 'sql';

/** What the store connects to, for error messages (never with a password). */
export function describeTarget(options: ResolvedSqlOptions): string {
  const { target } = options;
  if (target === null) return `your ${options.dialect} db`;
  if (target.dialect === 'sqlite') return `SQLite ${target.filename}`;
  return `${target.dialect === 'postgres' ? 'PostgreSQL' : 'MySQL'} ${redactUrl(target.url)}`;
}

/**
 * A pg pool's connection: Kysely over the pool with the named statements (transactions, pinned
 * connections, DDL), and single statements straight on the pool.
 */
function postgresConnection(k: KyselyModule, pool: unknown, owned: boolean, names: Map<string, string>): Connection {
  const preparing = preparingPool(pool as never, names);
  return {
    db: new k.Kysely<Db>({ dialect: new k.PostgresDialect({ pool: preparing as never }) }),
    k,
    owned,
    names,
    run: pgRunner(pool as never, names),
  };
}

/** The driver package each dialect's URL needs. */
const DRIVERS = { sqlite: 'better-sqlite3', postgres: 'pg', mysql: 'mysql2' } as const;

/**
 * Loads Kysely and the driver together, so that when both are missing one error names both
 * (`npm install kysely pg`), not one now and the other after the user installed the first.
 */
async function importAll(packages: readonly string[]): Promise<[KyselyModule, unknown]> {
  const loaded = await Promise.allSettled(packages.map((pkg) => importOptional<unknown>(pkg, SCOPE)));
  const missing = packages.filter((_, i) => {
    const result = loaded[i];
    return result?.status === 'rejected' && isSessionError(result.reason, 'MISSING_DEPENDENCY');
  });
  if (missing.length > 1) {
    const names = missing.map((pkg) => `"${pkg}"`).join(' and ');
    throw new SessionError(
      'MISSING_DEPENDENCY',
      `the optional dependencies ${names} are not installed; run: npm install ${missing.join(' ')}`,
      { scope: SCOPE },
    );
  }
  const values = loaded.map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  });
  return [values[0] as KyselyModule, values[1]];
}

/**
 * Opens the Kysely instance the options describe, loading the driver only now so that a missing
 * one fails with a message naming the package to install.
 */
export async function openConnection(
  options: ResolvedSqlOptions,
  onPoolError: (error: SessionError) => void,
): Promise<Connection> {
  const { db, target } = options;
  const driver = target === null ? null : DRIVERS[target.dialect];
  const [k, driverModule] = await importAll(driver === null ? ['kysely'] : ['kysely', driver]);
  const names = new Map<string, string>();
  if (db !== null) {
    const kind = dbKind(db);
    if (kind === 'kysely') return { db: db as unknown as Kysely<Db>, k, owned: false, names };
    // Our Kysely around the user's pool is dropped, never destroyed: destroy() would end their pool.
    if (kind === 'pg-pool') return postgresConnection(k, db, false, names);
    if (kind === 'mysql-pool') {
      // mysql2/promise pools wrap the callback pool Kysely needs.
      const pool = db as { promise?: unknown; pool?: { getConnection?: unknown } };
      const callbackPool = typeof pool.promise !== 'function' && pool.pool?.getConnection ? pool.pool : pool;
      return {
        db: new k.Kysely<Db>({ dialect: new k.MysqlDialect({ pool: callbackPool as never }) }),
        k,
        owned: false,
        names,
      };
    }
    // Only our Kysely prepares through the wrapper; the app's database is left as it is.
    const database = keepingStatements(db as never);
    return {
      db: new k.Kysely<Db>({ dialect: new k.SqliteDialect({ database: database as never }) }),
      k,
      owned: false,
      names,
    };
  }
  if (target === null) throw invalid({ scope: SCOPE, label: 'sqlStore' }, '', 'give either url or db');

  const fail = (error: unknown) => toStoreError(error, SCOPE, `connecting to ${describeTarget(options)}`);
  if (target.dialect === 'sqlite') {
    const Database = (driverModule as { default: typeof import('better-sqlite3') }).default;
    let database: import('better-sqlite3').Database;
    try {
      const onDisk = target.filename !== ':memory:' && target.filename !== '';
      // Without createTable the schema is someone else's: a missing file is not made (empty) here.
      if (onDisk && !options.createTable && !existsSync(target.filename)) {
        throw new SessionError(
          'INVALID_OPTIONS',
          `the SQLite file ${target.filename} does not exist, and createTable is false so it is not created`,
          { scope: SCOPE },
        );
      }
      // `sqlite:var/sessions.db` in a fresh project: the directory is made as the file would be.
      if (onDisk) mkdirSync(dirname(target.filename), { recursive: true });
      database = new Database(target.filename, { timeout: options.connectTimeoutMs });
      // WAL lets other processes read while one writes; a memory database has no journal file.
      // With WAL, synchronous=NORMAL syncs at checkpoints instead of every commit: a power cut may
      // lose the last writes (sessions, not ledgers) but never corrupts the file.
      if (target.filename !== ':memory:') {
        database.pragma('journal_mode = WAL');
        database.pragma('synchronous = NORMAL');
      }
    } catch (error) {
      throw fail(error);
    }
    const keeping = keepingStatements(database);
    return {
      db: new k.Kysely<Db>({ dialect: new k.SqliteDialect({ database: keeping as never }) }),
      k,
      owned: true,
      names,
    };
  }
  if (target.dialect === 'postgres') {
    const pg = driverModule as { default: typeof import('pg') };
    const pool = new pg.default.Pool({
      connectionString: target.url,
      max: options.poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs,
    });
    // A client that loses its server emits 'error': an idle one on the pool, and every one (idle
    // or checked out between two queries) on itself. Unheard, either kills the process. The
    // query that uses a broken client fails with its own error; these only go to the report.
    const lost = (error: Error) => onPoolError(toStoreError(error, SCOPE, 'PostgreSQL connection'));
    pool.on('error', lost);
    pool.on('connect', (client) => client.on('error', lost));
    return postgresConnection(k, pool, true, names);
  }
  const mysql = driverModule as { default: typeof import('mysql2') };
  // User and password are already inside the URL (see parseSqlUrl).
  const pool = mysql.default.createPool({
    uri: target.url,
    connectionLimit: options.poolSize,
    connectTimeout: options.connectTimeoutMs,
  });
  // A pooled connection listens for its first 'error' only (to leave the pool); a second one, or
  // one the pool emits, would kill the process. The query in flight gets the error itself.
  const lost = (error: Error) => onPoolError(toStoreError(error, SCOPE, 'MySQL connection'));
  pool.on('connection', (connection) => connection.on('error', lost));
  (pool as unknown as NodeJS.EventEmitter).on('error', lost);
  return { db: new k.Kysely<Db>({ dialect: new k.MysqlDialect({ pool }) }), k, owned: true, names };
}
