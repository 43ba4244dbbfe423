import { createHash } from 'node:crypto';
import { SessionError } from '../../core/errors.ts';
import type { Logger } from '../../core/options.ts';

/** The SQL dialects the store speaks. MariaDB is `mysql`. */
export type SqlDialect = 'sqlite' | 'postgres' | 'mysql';

/**
 * The part of a Kysely instance the store relies on, typed structurally so that any
 * `Kysely<YourDatabase>` fits without this package importing Kysely's types.
 */
export interface KyselyLike {
  selectFrom(...args: never[]): unknown;
  executeQuery(...args: never[]): unknown;
  connection(): unknown;
  destroy(): Promise<void>;
}

/** The part of a `pg.Pool` the store uses (a `pg.Client` will not do: the store runs queries concurrently). */
export interface PgPoolLike {
  connect(): Promise<{ release(...args: never[]): void }>;
  end(): Promise<void>;
  readonly totalCount: number;
}

/**
 * The part of a mysql2 pool the store uses: `mysql2.createPool()`, or `mysql2/promise`'s
 * `createPool()` (whose callback pool, `.pool`, is used).
 */
export interface MysqlPoolLike {
  getConnection(...args: never[]): unknown;
  end(...args: never[]): unknown;
}

/** The part of a better-sqlite3 `Database` the store uses. */
export interface SqliteDatabaseLike {
  prepare(source: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): unknown;
}

/** Anything `db` accepts: your Kysely instance, or your own driver pool or connection. */
export type SqlDatabase = KyselyLike | PgPoolLike | MysqlPoolLike | SqliteDatabaseLike;

/** Options of {@link SqlStore}. Give exactly one of `url` and `db`. */
export interface SqlStoreOptions {
  /**
   * Where the database is (DBIC's `dsn`): `sqlite:path/to/file.db`, `sqlite::memory:`,
   * `postgres://user:pass@host:5432/db` (or `postgresql://`), `mysql://user:pass@host:3306/db`
   * (or `mariadb://`). The store opens the connection pool lazily and closes it in `close()`.
   * Given but `undefined` (an unset environment variable) is an error naming that cause.
   * @default undefined
   */
  url?: string | undefined;
  /**
   * Database user, overriding the one in `url` (PostgreSQL, MySQL).
   * @default the user in `url`, else the driver's default
   */
  user?: string;
  /**
   * Database password, overriding the one in `url` (PostgreSQL, MySQL).
   * @default the password in `url`, else none
   */
  password?: string;
  /**
   * Your own connection (DBIC's `schema`): a Kysely instance, a `pg.Pool`, a mysql2 pool or a
   * better-sqlite3 `Database`. The store never closes it.
   * @default undefined
   */
  db?: SqlDatabase;
  /**
   * The dialect of `db`, needed only when it cannot be told from `db` itself (a Kysely instance
   * with a third-party dialect).
   * @default detected from `url` or `db`
   */
  dialect?: SqlDialect;
  /** Table name (DBIC's `resultset`), optionally schema-qualified (`auth.sessions`, not on SQLite). @default 'sessions' */
  table?: string;
  /** Primary key column holding the store key, the ID hash (DBIC's `id_column`). @default 'sessions_id' */
  idColumn?: string;
  /** Column holding the session's fields as JSON text (DBIC's `data_column`). @default 'session_data' */
  dataColumn?: string;
  /** Expiry column, epoch milliseconds (BIGINT), indexed. @default 'expires_at' */
  expiresColumn?: string;
  /** Creation time column, epoch milliseconds. @default 'created_at' */
  createdColumn?: string;
  /** Last write time column, epoch milliseconds, set on every write (the seed's timestamp). @default 'updated_at' */
  updatedColumn?: string;
  /** Owner column (nullable, indexed) for per-user listing and revocation. @default 'user_id' */
  userColumn?: string;
  /** Row version column, bumped on every write, for compare-and-set. @default 'version' */
  versionColumn?: string;
  /**
   * Create the table and its indexes when missing. An existing table is checked, never altered.
   * Set to `false` when you run the DDL in `sql/<dialect>.sql` through your own migrations.
   * @default true
   */
  createTable?: boolean;
  /**
   * Prune expired rows in-process every this many seconds (with ±20% jitter); `0` turns it off.
   * On PostgreSQL only one instance prunes at a time (an advisory lock).
   * @default 0
   */
  pruneIntervalSeconds?: number;
  /** Rows deleted per statement when pruning, so no statement locks the table for long. @default 1000 */
  pruneBatchSize?: number;
  /** Connections in the pool the store opens from `url` (PostgreSQL, MySQL). @default 10 */
  poolSize?: number;
  /** How long opening a connection may take (PostgreSQL, MySQL); for SQLite, how long to wait for a lock. @default 5000 */
  connectTimeoutMs?: number;
  /** How many times `patch` replays a change set that lost a race before giving up. @default 100 */
  maxPatchAttempts?: number;
  /**
   * Receives errors of the background prune. Without it they go to `logger.error`, and without
   * a logger to `console.error`: never nowhere.
   * @default undefined
   */
  onError?: (error: SessionError) => void;
  /** Logger for prune results and background errors (pino, console...). @default undefined */
  logger?: Logger;
  /** Clock in epoch ms, for tests. @default Date.now */
  now?: () => number;
}

/** Column names, resolved. */
export interface SqlColumns {
  id: string;
  data: string;
  expires: string;
  created: string;
  updated: string;
  user: string;
  version: string;
}

/** Where to connect when the store opens its own connection. */
export type SqlTarget =
  | { dialect: 'sqlite'; filename: string }
  | { dialect: 'postgres' | 'mysql'; url: string; host: string; port: number | null; database: string | null };

/** Options after validation and defaults. */
export interface ResolvedSqlOptions {
  dialect: SqlDialect;
  target: SqlTarget | null;
  user: string | undefined;
  password: string | undefined;
  db: SqlDatabase | null;
  table: string;
  columns: SqlColumns;
  createTable: boolean;
  pruneIntervalMs: number;
  pruneBatchSize: number;
  poolSize: number;
  connectTimeoutMs: number;
  maxPatchAttempts: number;
  onError: ((error: SessionError) => void) | undefined;
  logger: Logger | undefined;
  now: () => number;
}

const SCOPE = 'sql';

/** The default column names: the seed's for key and data, plain ones for the rest. */
export const DEFAULT_COLUMNS: Readonly<SqlColumns> = Object.freeze({
  id: 'sessions_id',
  data: 'session_data',
  expires: 'expires_at',
  created: 'created_at',
  updated: 'updated_at',
  user: 'user_id',
  version: 'version',
});

const COLUMN_OPTIONS: Record<keyof SqlColumns, keyof SqlStoreOptions> = {
  id: 'idColumn',
  data: 'dataColumn',
  expires: 'expiresColumn',
  created: 'createdColumn',
  updated: 'updatedColumn',
  user: 'userColumn',
  version: 'versionColumn',
};

const KNOWN_OPTIONS = new Set<string>([
  'url',
  'user',
  'password',
  'db',
  'dialect',
  'table',
  ...Object.values(COLUMN_OPTIONS),
  'createTable',
  'pruneIntervalSeconds',
  'pruneBatchSize',
  'poolSize',
  'connectTimeoutMs',
  'maxPatchAttempts',
  'onError',
  'logger',
  'now',
]);

// Both PostgreSQL (63) and MySQL (64) cap identifiers; the tighter limit applies everywhere.
const MAX_IDENTIFIER = 63;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', message, { scope: SCOPE });
}

/** Checks one identifier: letters, digits and underscores only, so config can never inject SQL. */
export function checkIdentifier(option: string, value: unknown): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || value.length > MAX_IDENTIFIER) {
    throw invalid(
      `${option} must be an identifier of letters, digits and underscores (not starting with a digit, ` +
        `at most ${MAX_IDENTIFIER} characters), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Checks a table name, `name` or `schema.name`. */
export function checkTable(value: unknown, dialect: SqlDialect): string {
  if (typeof value !== 'string') throw invalid(`table must be a string, got ${typeof value}`);
  const parts = value.split('.');
  if (parts.length > 2) throw invalid(`table must be "name" or "schema.name", got ${JSON.stringify(value)}`);
  for (const part of parts) checkIdentifier('table', part);
  if (parts.length === 2 && dialect === 'sqlite') {
    throw invalid(`table cannot be schema-qualified on SQLite, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The name of an index on `column`, unique per table and within the identifier limit. */
export function indexName(table: string, column: string): string {
  const bare = table.includes('.') ? table.slice(table.indexOf('.') + 1) : table;
  const name = `${bare}_${column}_idx`;
  if (name.length <= MAX_IDENTIFIER) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_IDENTIFIER - 9)}_${hash}`;
}

/** Shows a URL with its password hidden, for error messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:)[^@/?#]*@/i, '$1***@');
}

/**
 * Parses a database URL: `sqlite:file.db`, `sqlite:///abs/file.db`, `sqlite::memory:`,
 * `postgres://` / `postgresql://`, `mysql://` / `mariadb://`. User and password options are
 * put into the URL, since pg lets the URL win over separate settings.
 */
export function parseSqlUrl(url: string, user?: string, password?: string): SqlTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    let filename = url.slice('sqlite:'.length);
    if (filename.startsWith('//')) filename = filename.slice(2);
    if (filename === '')
      throw invalid(`url "${url}" names no SQLite file (use sqlite:path/to/file.db or sqlite::memory:)`);
    if ((user ?? '') !== '' || (password ?? '') !== '') {
      throw invalid('user and password do not apply to SQLite (a file has no login)');
    }
    return { dialect: 'sqlite', filename };
  }
  const dialect =
    scheme === 'postgres' || scheme === 'postgresql'
      ? 'postgres'
      : scheme === 'mysql' || scheme === 'mariadb'
        ? 'mysql'
        : null;
  if (dialect === null) {
    throw invalid(
      `url must start with sqlite:, postgres://, postgresql://, mysql:// or mariadb://, got "${redactUrl(url)}"`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new SessionError('INVALID_OPTIONS', `url "${redactUrl(url)}" is not a valid URL`, { scope: SCOPE, cause });
  }
  if (parsed.hostname === '') throw invalid(`url "${redactUrl(url)}" names no host`);
  if (user !== undefined) parsed.username = encodeURIComponent(user);
  if (password !== undefined) parsed.password = encodeURIComponent(password);
  const database = decodeURIComponent(parsed.pathname.slice(1)) || null;
  return {
    dialect,
    url: dialect === 'mysql' ? parsed.href.replace(/^mariadb:/i, 'mysql:') : parsed.href,
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? null : Number(parsed.port),
    database,
  };
}

function positiveInteger(option: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalid(`${option} must be a whole number >= ${min}, got ${String(value)}`);
  }
  return value;
}

function optionalString(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${option} must be a string, got ${typeof value}`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

/** What kind of object `db` is. */
export type DbKind = 'kysely' | 'pg-pool' | 'mysql-pool' | 'sqlite-database';

export function dbKind(db: unknown): DbKind {
  if (!isObject(db)) throw invalid(`db must be a Kysely instance, pg.Pool, mysql2 pool or better-sqlite3 Database`);
  if (typeof db.selectFrom === 'function' && typeof db.executeQuery === 'function') return 'kysely';
  if (typeof db.prepare === 'function' && typeof db.pragma === 'function') return 'sqlite-database';
  if (typeof db.getConnection === 'function') return 'mysql-pool';
  if (typeof db.connect === 'function' && typeof db.totalCount === 'number') return 'pg-pool';
  if (typeof db.connect === 'function' && typeof db.query === 'function') {
    throw invalid('db looks like a single pg.Client; pass a pg.Pool (the store runs queries concurrently)');
  }
  if (typeof db.query === 'function' && typeof db.execute === 'function') {
    throw invalid('db looks like a single mysql2 connection; pass a pool (mysql2.createPool)');
  }
  throw invalid('db must be a Kysely instance, pg.Pool, mysql2 pool or better-sqlite3 Database');
}

const ADAPTERS: Record<string, SqlDialect> = {
  SqliteAdapter: 'sqlite',
  PostgresAdapter: 'postgres',
  MysqlAdapter: 'mysql',
};

/** The dialect of a Kysely instance, from its adapter class (or a subclass of a built-in one). */
function kyselyDialect(db: Record<string, unknown>): SqlDialect | null {
  try {
    const executor = (db.getExecutor as () => { adapter: object })();
    for (let proto = Object.getPrototypeOf(executor.adapter); proto !== null; proto = Object.getPrototypeOf(proto)) {
      const name = (proto.constructor as { name?: string } | undefined)?.name;
      if (name && name in ADAPTERS) return ADAPTERS[name] as SqlDialect;
    }
  } catch {
    // Not a Kysely we know how to look into: the caller asks for `dialect`.
  }
  return null;
}

const DB_DIALECT: Record<Exclude<DbKind, 'kysely'>, SqlDialect> = {
  'pg-pool': 'postgres',
  'mysql-pool': 'mysql',
  'sqlite-database': 'sqlite',
};

/** Validates options and applies defaults. The input is not modified. */
export function resolveSqlOptions(options: SqlStoreOptions): ResolvedSqlOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const unknown = Object.keys(options).filter((key) => !KNOWN_OPTIONS.has(key));
  if (unknown.length > 0) {
    throw invalid(
      `unknown option(s) ${unknown.map((k) => `"${k}"`).join(', ')}; known: ${[...KNOWN_OPTIONS].join(', ')}`,
    );
  }
  if ('url' in options && options.url === undefined && options.db === undefined) {
    throw invalid('url is undefined: is the environment variable it comes from (e.g. DATABASE_URL) set?');
  }
  const url = optionalString('url', options.url);
  const user = optionalString('user', options.user);
  const password = optionalString('password', options.password);
  if (options.dialect !== undefined && !['sqlite', 'postgres', 'mysql'].includes(options.dialect)) {
    throw invalid(`dialect must be "sqlite", "postgres" or "mysql", got ${JSON.stringify(options.dialect)}`);
  }
  if ((url === undefined) === (options.db === undefined)) {
    throw invalid(url === undefined ? 'give either url or db' : 'give either url or db, not both');
  }

  let target: SqlTarget | null = null;
  let dialect: SqlDialect;
  const db = options.db ?? null;
  if (url !== undefined) {
    target = parseSqlUrl(url, user, password);
    dialect = target.dialect;
    if (options.dialect !== undefined && options.dialect !== dialect) {
      throw invalid(`dialect "${options.dialect}" contradicts url (${dialect})`);
    }
  } else {
    if (user !== undefined || password !== undefined) {
      throw invalid('user and password go with url; a db you pass in is already logged in');
    }
    const kind = dbKind(db);
    const detected = kind === 'kysely' ? kyselyDialect(db as unknown as Record<string, unknown>) : DB_DIALECT[kind];
    if (detected !== null && options.dialect !== undefined && options.dialect !== detected) {
      throw invalid(`dialect "${options.dialect}" contradicts db (${detected})`);
    }
    const chosen = options.dialect ?? detected;
    if (chosen === null) throw invalid('cannot tell the dialect of this Kysely instance; pass dialect');
    dialect = chosen;
  }

  const table = checkTable(options.table ?? 'sessions', dialect);
  const columns = { ...DEFAULT_COLUMNS };
  for (const [field, option] of Object.entries(COLUMN_OPTIONS) as [keyof SqlColumns, keyof SqlStoreOptions][]) {
    const value = options[option];
    if (value !== undefined) columns[field] = checkIdentifier(option, value);
  }
  const names = Object.values(columns).map((name) => name.toLowerCase());
  const repeated = names.filter((name, i) => names.indexOf(name) !== i);
  if (repeated.length > 0) throw invalid(`column names must differ; "${repeated[0]}" is used twice`);

  if (options.createTable !== undefined && typeof options.createTable !== 'boolean') {
    throw invalid(`createTable must be true or false, got ${String(options.createTable)}`);
  }
  const pruneIntervalSeconds = options.pruneIntervalSeconds ?? 0;
  if (typeof pruneIntervalSeconds !== 'number' || !Number.isFinite(pruneIntervalSeconds) || pruneIntervalSeconds < 0) {
    throw invalid(`pruneIntervalSeconds must be a number >= 0 (0 = off), got ${String(pruneIntervalSeconds)}`);
  }
  for (const name of ['onError', 'now'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw invalid(`${name} must be a function`);
    }
  }
  const { logger } = options;
  if (
    logger !== undefined &&
    (!isObject(logger) || typeof logger.debug !== 'function' || typeof logger.error !== 'function')
  ) {
    throw invalid('logger must have debug, warn and error methods (pino, console...)');
  }

  return {
    dialect,
    target,
    user,
    password,
    db,
    table,
    columns,
    createTable: options.createTable ?? true,
    pruneIntervalMs: pruneIntervalSeconds * 1000,
    pruneBatchSize: positiveInteger('pruneBatchSize', options.pruneBatchSize, 1000),
    poolSize: positiveInteger('poolSize', options.poolSize, 10),
    connectTimeoutMs: positiveInteger('connectTimeoutMs', options.connectTimeoutMs, 5000),
    maxPatchAttempts: positiveInteger('maxPatchAttempts', options.maxPatchAttempts, 100),
    onError: options.onError,
    logger: options.logger,
    now: options.now ?? Date.now,
  };
}
