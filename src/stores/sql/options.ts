import { createHash } from 'node:crypto';
import * as v from 'valibot';
import {
  check,
  flag,
  func,
  interval,
  invalid,
  logger,
  oneOf,
  type Same,
  type Subject,
  text,
  whole,
} from '../../core/check.ts';
import type { SessionError } from '../../core/errors.ts';
import type { Logger } from '../../core/report.ts';

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
   * Where the database is: `sqlite:path/to/file.db`, `sqlite::memory:`,
   * `postgres://user:pass@host:5432/db` (or `postgresql://`), `mysql://user:pass@host:3306/db`
   * (or `mariadb://`); percent-encode reserved characters in the user and password. The store opens the connection pool lazily and closes it in `close()`.
   * Given but `undefined` (an unset environment variable) is an error naming that cause.
   * @default undefined
   */
  url?: string | undefined;
  /**
   * Your own connection: a Kysely instance, a `pg.Pool`, a mysql2 pool or a
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
  /** Table name optionally schema-qualified (`auth.sessions`, not on SQLite). @default 'sessions' */
  table?: string;
  /** Primary key column holding the store key, the ID hash. @default 'sessions_id' */
  idColumn?: string;
  /** Column holding the session's fields as JSON text. @default 'session_data' */
  dataColumn?: string;
  /** Expiry column, epoch milliseconds (BIGINT), indexed. @default 'expires_at' */
  expiresColumn?: string;
  /** Creation time column, epoch milliseconds. @default 'created_at' */
  createdColumn?: string;
  /** Last write time column, epoch milliseconds, set on every write. @default 'updated_at' */
  updatedColumn?: string;
  /** Owner column (nullable, indexed) for per-user listing and revocation. @default 'user_id' */
  userColumn?: string;
  /** Row version column, bumped on every write, for compare-and-set. @default 'version' */
  versionColumn?: string;
  /**
   * Create the table and its indexes when missing. An existing table is checked, never altered.
   * Set to `false` when you run the DDL in `sql/<dialect>.sql` through your own migrations; a
   * SQLite file that does not exist is then an error instead of being created empty.
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
  /**
   * PostgreSQL: run the store's statements as named prepared statements, which the server
   * parses and plans once per connection (about half its CPU per read). Set to `false` behind
   * a pooler that hands one client's statements to different server connections without
   * keeping prepared statements (PgBouncer in transaction mode before 1.21, or without
   * `max_prepared_statements`). Not used with a Kysely instance of yours, which runs as it is.
   * @default true
   */
  preparedStatements?: boolean;
  /** How long opening a connection may take (PostgreSQL, MySQL); for SQLite, how long to wait for a lock. @default 5000 */
  connectTimeoutMs?: number;
  /**
   * How many times a `patch` or `touch` that lost a compare-and-set race re-reads the row and
   * replays its change before failing with `STORE_UNAVAILABLE`; each replay waits a short jittered delay.
   * @default 100
   */
  conflictRetries?: number;
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
  db: SqlDatabase | null;
  table: string;
  columns: SqlColumns;
  createTable: boolean;
  pruneIntervalMs: number;
  pruneBatchSize: number;
  poolSize: number;
  preparedStatements: boolean;
  connectTimeoutMs: number;
  conflictRetries: number;
  onError: ((error: SessionError) => void) | undefined;
  logger: Logger | undefined;
  now: () => number;
}

const SCOPE = 'sql';

/** The default column names (`sessions_id` and `session_data` are DBIC's, so its tables fit). */
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

// Both PostgreSQL (63) and MySQL (64) cap identifiers; the tighter limit applies everywhere.
const MAX_IDENTIFIER = 63;
const PART = `[A-Za-z_][A-Za-z0-9_]{0,${MAX_IDENTIFIER - 1}}`;

const SUBJECT: Subject = { scope: SCOPE, label: 'sqlStore', unset: { url: 'DATABASE_URL' } };
const DB_RULE = 'must be a Kysely instance, pg.Pool, mysql2 pool or better-sqlite3 Database';

/** The problem with a value of an SQL option, phrased for `sqlStore` (or a file's `store` block). */
const fail = (option: string, rule: string) => invalid(SUBJECT, option, rule);

// Letters, digits and underscores only, so that configuration can never inject SQL.
const IDENTIFIER_RULE =
  'must be an identifier of letters, digits and underscores (not starting with a digit, ' +
  `at most ${MAX_IDENTIFIER} characters)`;
const identifier = () => v.pipe(v.string(IDENTIFIER_RULE), v.regex(new RegExp(`^${PART}$`), IDENTIFIER_RULE));
const tableName = () => {
  const rule = `must be "name" or "schema.name", each ${IDENTIFIER_RULE.slice('must be '.length)}`;
  return v.pipe(v.string(rule), v.regex(new RegExp(`^${PART}(\\.${PART})?$`), rule));
};

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
 * `postgres://` / `postgresql://`, `mysql://` / `mariadb://`.
 */
export function parseSqlUrl(url: string): SqlTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    let filename = url.slice('sqlite:'.length);
    if (filename.startsWith('//')) filename = filename.slice(2);
    if (filename === '')
      throw fail('url', `"${url}" names no SQLite file (use sqlite:path/to/file.db or sqlite::memory:)`);
    return { dialect: 'sqlite', filename };
  }
  const dialect =
    scheme === 'postgres' || scheme === 'postgresql'
      ? 'postgres'
      : scheme === 'mysql' || scheme === 'mariadb'
        ? 'mysql'
        : null;
  if (dialect === null) {
    throw fail(
      'url',
      `must start with sqlite:, postgres://, postgresql://, mysql:// or mariadb://, got "${redactUrl(url)}"`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw fail('url', `"${redactUrl(url)}" is not a valid URL (percent-encode special characters in credentials)`);
  }
  if (parsed.hostname === '') throw fail('url', `"${redactUrl(url)}" names no host`);
  const database = decodeURIComponent(parsed.pathname.slice(1)) || null;
  return {
    dialect,
    url: dialect === 'mysql' ? parsed.href.replace(/^mariadb:/i, 'mysql:') : parsed.href,
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? null : Number(parsed.port),
    database,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

/** What kind of object `db` is. */
export type DbKind = 'kysely' | 'pg-pool' | 'mysql-pool' | 'sqlite-database';

export function dbKind(db: unknown): DbKind {
  if (!isObject(db)) throw fail('db', DB_RULE);
  if (typeof db.selectFrom === 'function' && typeof db.executeQuery === 'function') return 'kysely';
  if (typeof db.prepare === 'function' && typeof db.pragma === 'function') return 'sqlite-database';
  if (typeof db.getConnection === 'function') return 'mysql-pool';
  if (typeof db.connect === 'function' && typeof db.totalCount === 'number') return 'pg-pool';
  if (typeof db.connect === 'function' && typeof db.query === 'function') {
    throw fail('db', 'is a single pg.Client, it seems; pass a pg.Pool (the store runs queries concurrently)');
  }
  if (typeof db.query === 'function' && typeof db.execute === 'function') {
    throw fail('db', 'is a single mysql2 connection, it seems; pass a pool (mysql2.createPool)');
  }
  throw fail('db', DB_RULE);
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

/** The options a configuration file can hold (all but `db` and the functions). */
export const sqlFileSchema = v.strictObject({
  url: v.optional(text()),
  dialect: v.optional(oneOf(['sqlite', 'postgres', 'mysql'])),
  table: v.optional(tableName()),
  idColumn: v.optional(identifier()),
  dataColumn: v.optional(identifier()),
  expiresColumn: v.optional(identifier()),
  createdColumn: v.optional(identifier()),
  updatedColumn: v.optional(identifier()),
  userColumn: v.optional(identifier()),
  versionColumn: v.optional(identifier()),
  createTable: v.optional(flag()),
  pruneIntervalSeconds: v.optional(interval()),
  pruneBatchSize: v.optional(whole(1)),
  poolSize: v.optional(whole(1)),
  preparedStatements: v.optional(flag()),
  connectTimeoutMs: v.optional(whole(1)),
  conflictRetries: v.optional(whole(0)),
});

/** {@link SqlStoreOptions} as a schema. */
export const sqlSchema = v.strictObject({
  ...sqlFileSchema.entries,
  db: v.optional(v.custom<SqlDatabase>(isObject, DB_RULE)),
  onError: v.optional(func<(error: SessionError) => void>()),
  logger: v.optional(logger()),
  now: v.optional(func<() => number>()),
});
const same: Same<v.InferInput<typeof sqlSchema>, SqlStoreOptions> = true;
void same;

/** Validates options and applies defaults. The input is not modified. */
export function resolveSqlOptions(options: SqlStoreOptions): ResolvedSqlOptions {
  const o = check(sqlSchema, options, SUBJECT);
  if ((o.url === undefined) === (o.db === undefined)) {
    throw invalid(SUBJECT, '', o.url === undefined ? 'give either url or db' : 'give either url or db, not both');
  }
  let target: SqlTarget | null = null;
  let dialect: SqlDialect;
  const db = o.db ?? null;
  if (o.url !== undefined) {
    target = parseSqlUrl(o.url);
    dialect = target.dialect;
    if (o.dialect !== undefined && o.dialect !== dialect) {
      throw fail('dialect', `"${o.dialect}" contradicts url (${dialect})`);
    }
  } else {
    const kind = dbKind(db);
    const detected = kind === 'kysely' ? kyselyDialect(db as unknown as Record<string, unknown>) : DB_DIALECT[kind];
    if (detected !== null && o.dialect !== undefined && o.dialect !== detected) {
      throw fail('dialect', `"${o.dialect}" contradicts db (${detected})`);
    }
    const chosen = o.dialect ?? detected;
    if (chosen === null) throw fail('dialect', 'is needed: the dialect of this Kysely instance cannot be told');
    dialect = chosen;
  }

  const table = o.table ?? 'sessions';
  if (table.includes('.') && dialect === 'sqlite') {
    throw fail('table', `cannot be schema-qualified on SQLite, got ${JSON.stringify(table)}`);
  }
  const columns = { ...DEFAULT_COLUMNS };
  for (const [field, option] of Object.entries(COLUMN_OPTIONS) as [keyof SqlColumns, keyof typeof o][]) {
    const value = o[option];
    if (typeof value === 'string') columns[field] = value;
  }
  const names = Object.values(columns).map((name) => name.toLowerCase());
  const twice = names.findIndex((name, i) => names.indexOf(name) !== i);
  if (twice >= 0) {
    const options = Object.values(COLUMN_OPTIONS) as (keyof typeof o)[];
    const first = names.indexOf(names[twice] as string);
    // Blame the option that was given: the other one may be a default.
    const option = o[options[twice] as keyof typeof o] === undefined ? options[first] : options[twice];
    throw fail(String(option), `"${names[twice]}" is used twice: column names must differ`);
  }

  return {
    dialect,
    target,
    db,
    table,
    columns,
    createTable: o.createTable ?? true,
    pruneIntervalMs: (o.pruneIntervalSeconds ?? 0) * 1000,
    pruneBatchSize: o.pruneBatchSize ?? 1000,
    poolSize: o.poolSize ?? 10,
    preparedStatements: o.preparedStatements ?? true,
    connectTimeoutMs: o.connectTimeoutMs ?? 5000,
    conflictRetries: o.conflictRetries ?? 100,
    onError: o.onError,
    logger: o.logger,
    now: o.now ?? Date.now,
  };
}
