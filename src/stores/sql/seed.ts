import { SessionError } from '../../core/errors.ts';
import type { SqlStoreOptions } from './options.ts';

/**
 * A `Dancer2::Session::DBIC` engine block, as found under `engines: session: DBIC:` in a
 * Dancer2 config file.
 */
export interface DbicConfig {
  /** DBI data source, e.g. `DBI:mysql:database=testing;host=127.0.0.1;port=3306`. */
  dsn?: string;
  /** Database user. */
  user?: string;
  /** Database password. */
  password?: string;
  /**
   * The DBIx::Class schema class (a Perl package). Accepted and ignored: Tessera speaks SQL
   * through Kysely and needs no schema class.
   */
  schema_class?: string;
  /**
   * The DBIx::Class resultset (defaults to `Session` there). Used as the table name; in DBIC the
   * table is named in the result class (`__PACKAGE__->table(...)`), so put that name here if it differs.
   */
  resultset?: string;
  /** Session ID column (`sessions_id`). */
  id_column?: string;
  /** Session data column (`session_data`). */
  data_column?: string;
}

const SCOPE = 'sql';
const KNOWN = new Set(['dsn', 'user', 'password', 'schema_class', 'resultset', 'id_column', 'data_column']);
/** Dancer2 settings that belong to the session engine, not to the store. */
const ENGINE_SETTINGS = new Set([
  'cookie_name',
  'cookie_domain',
  'cookie_path',
  'cookie_duration',
  'session_duration',
  'is_secure',
  'is_http_only',
]);

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', `DBIC config: ${message}`, { scope: SCOPE });
}

/** Splits `k1=v1;k2=v2` (or a bare value, which DBI drivers read as the database name). */
function dsnAttributes(rest: string, driver: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of rest.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (attributes.has('database')) throw invalid(`cannot read "${part}" in the ${driver} dsn`);
      attributes.set('database', part.trim());
      continue;
    }
    const name = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim();
    attributes.set(name === 'db' || name === 'dbname' ? 'database' : name, value);
  }
  return attributes;
}

function takeAttributes(attributes: Map<string, string>, allowed: string[], driver: string): void {
  const extra = [...attributes.keys()].filter((name) => !allowed.includes(name));
  if (extra.length > 0) {
    throw invalid(
      `the ${driver} dsn attribute(s) ${extra.join(', ')} are not supported (supported: ${allowed.join(', ')}); ` +
        'use url and the store options instead',
    );
  }
}

function hostPart(host: string | undefined, port: string | undefined): string {
  const name = host || '127.0.0.1';
  const bracketed = name.includes(':') ? `[${name}]` : name;
  if (port !== undefined && !/^\d+$/.test(port)) throw invalid(`port must be a number, got "${port}"`);
  return port ? `${bracketed}:${port}` : bracketed;
}

/**
 * Turns a DBI data source into a URL: `DBI:mysql:database=db;host=h;port=p` (also DBD::MariaDB),
 * `DBI:Pg:dbname=db;host=h;port=p;sslmode=require`, `DBI:SQLite:dbname=file.db`.
 */
export function dsnToUrl(dsn: string): string {
  const match = /^dbi:([A-Za-z0-9_]+):(.*)$/is.exec(dsn.trim());
  if (!match) throw invalid(`dsn must look like DBI:<driver>:<attributes>, got "${dsn}"`);
  const driver = match[1] as string;
  const attributes = dsnAttributes(match[2] as string, driver);
  const database = attributes.get('database');
  switch (driver.toLowerCase()) {
    case 'sqlite': {
      takeAttributes(attributes, ['database'], driver);
      if (!database) throw invalid('the SQLite dsn names no file (DBI:SQLite:dbname=path/to/file.db)');
      return `sqlite:${database}`;
    }
    case 'pg': {
      takeAttributes(attributes, ['database', 'host', 'port', 'sslmode'], driver);
      const sslmode = attributes.get('sslmode');
      const query = sslmode ? `?sslmode=${encodeURIComponent(sslmode)}` : '';
      return `postgres://${hostPart(attributes.get('host'), attributes.get('port'))}/${encodeURIComponent(database ?? '')}${query}`;
    }
    case 'mysql':
    case 'mariadb': {
      takeAttributes(attributes, ['database', 'host', 'port'], driver);
      return `mysql://${hostPart(attributes.get('host'), attributes.get('port'))}/${encodeURIComponent(database ?? '')}`;
    }
    default:
      throw invalid(`DBI driver "${driver}" is not supported; use SQLite, Pg, mysql or MariaDB`);
  }
}

/**
 * Maps a `Dancer2::Session::DBIC` config block to {@link SqlStoreOptions}, so a Dancer2 app's
 * settings carry over: `dsn` → `url`, `user`, `password`, `resultset` → `table`,
 * `id_column` → `idColumn`, `data_column` → `dataColumn`. `schema_class` is accepted and ignored
 * (no Perl schema class is needed); `schema`, a live Perl object, cannot come from a config file:
 * pass your Kysely instance or pool as `db` instead. Any other key is rejected.
 *
 * @example
 * sqlStore({ ...fromSeedConfig(config.engines.session.DBIC), pruneIntervalSeconds: 600 })
 */
export function fromSeedConfig(config: DbicConfig): SqlStoreOptions {
  if (typeof config !== 'object' || config === null) throw invalid('expected an object');
  for (const key of Object.keys(config)) {
    if (KNOWN.has(key)) continue;
    if (key === 'schema') {
      throw invalid('"schema" is a live DBIx::Class object; pass your own Kysely instance or pool as the db option');
    }
    const hint = ENGINE_SETTINGS.has(key) ? ' (a session engine setting: give it to the engine, not the store)' : '';
    throw invalid(`unknown key "${key}"${hint}; known: ${[...KNOWN].join(', ')}`);
  }
  for (const key of KNOWN) {
    const value = (config as Record<string, unknown>)[key];
    if (value !== undefined && typeof value !== 'string') throw invalid(`${key} must be a string`);
  }
  if (!config.dsn) throw invalid('dsn is required (e.g. DBI:SQLite:dbname=sessions.db)');
  const url = dsnToUrl(config.dsn);
  const options: SqlStoreOptions = { url };
  // SQLite has no login; DBIC configs for it often carry empty user and password.
  const sqlite = url.startsWith('sqlite:');
  if (config.user && !sqlite) options.user = config.user;
  if (config.password && !sqlite) options.password = config.password;
  if (sqlite && (config.user || config.password)) throw invalid('user and password do not apply to SQLite');
  if (config.resultset !== undefined) options.table = config.resultset;
  if (config.id_column !== undefined) options.idColumn = config.id_column;
  if (config.data_column !== undefined) options.dataColumn = config.data_column;
  return options;
}
