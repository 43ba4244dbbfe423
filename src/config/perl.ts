/**
 * The configuration blocks of the five Perl session engines Tessera takes over from, read into
 * one shape: a {@link StoreConfig} (a URL, plus the store's own options) and the engine options
 * the block's settings mean. Every setting each engine documents has a counterpart here; a key
 * none of them knows is refused, so a typo is never silently ignored.
 *
 * | engine | block |
 * |---|---|
 * | Dancer::Session::Redis, Dancer::Session::Redis::Simple | `session: Redis` + `redis_session: { server, sock, password, database, expire, ping, debug }` |
 * | Catalyst::Plugin::Session::Store::Redis | `Plugin::Session: { expires, redis_server, redis_db, redis_ssl, redis_ssl_verify_mode, redis_name, redis_username, redis_password, redis_reconnect, redis_conservative_reconnect, redis_debug }` |
 * | Dancer2::Session::DBIC | `engines: { session: { DBIC: { dsn, user, password, schema_class, resultset, id_column, data_column } } }` |
 * | Dancer::Session::ElasticSearch | `session: ElasticSearch` + `session_options: { connection, index, type, signing: { secret, length }, is_lazy }` |
 */
import * as v from 'valibot';
import { check, invalid, type Subject, text } from '../core/check.ts';
import type { SessionOptions } from '../core/options.ts';
import type { StoreConfig } from './types.ts';

/** What a Perl block becomes: the store to open and the engine options its settings mean. */
export interface PerlConfig {
  store: StoreConfig;
  session: Pick<SessionOptions, 'idleTimeoutSeconds' | 'secrets' | 'tagBytes' | 'flush'>;
}

// Values as YAML or a Perl config gives them: numbers may arrive as strings, flags as 0/1.
const count = () => {
  const rule = 'must be a whole number >= 0';
  return v.pipe(
    v.union([v.number(rule), v.pipe(v.string(rule), v.regex(/^\s*\d+\s*$/, rule))], rule),
    v.transform(Number),
    v.integer(rule),
    v.minValue(0, rule),
  );
};
const seconds = () => {
  const rule = 'must be a positive whole number of seconds';
  return v.pipe(count(), v.minValue(1, rule));
};
const perlFlag = () =>
  v.pipe(
    v.union([v.boolean(), v.picklist([0, 1, '0', '1', '', 'true', 'false'])], 'must be 0 or 1 (or true/false)'),
    v.transform((value) => value === true || value === 1 || value === '1' || value === 'true'),
  );
const optional = <S extends v.GenericSchema>(schema: S) => v.optional(v.nullable(schema));

/** `host:port`, `host` or `[v6]:port` as a URL authority; the port defaults to `port`. */
function authority(subject: Subject, key: string, server: string, port: number): string {
  const match = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(server.trim());
  if (!match)
    throw invalid(subject, key, `must be "host:port" (an IPv6 address as "[::1]:6379"), got ${JSON.stringify(server)}`);
  const number = match[2] === undefined ? port : Number(match[2]);
  if (number < 1 || number > 65535) throw invalid(subject, key, `has port ${number}, not 1-65535`);
  return `${match[1]}:${number}`;
}

const userinfo = (user: string | undefined, password: string | undefined) =>
  user === undefined && password === undefined
    ? ''
    : `${encodeURIComponent(user ?? '')}${password === undefined ? '' : `:${encodeURIComponent(password)}`}@`;

const query = (params: Record<string, string | number | undefined>) => {
  const text = new URLSearchParams(
    Object.entries(params).filter((entry): entry is [string, string | number] => entry[1] !== undefined) as [
      string,
      string,
    ][],
  ).toString();
  return text === '' ? '' : `?${text}`;
};

const defined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as T;

const dancerRedisSchema = v.strictObject({
  server: optional(text()),
  sock: optional(text()),
  password: optional(text()),
  database: optional(count()),
  expire: optional(seconds()),
  ping: optional(count()),
  debug: optional(perlFlag()),
});

/** A Dancer `redis_session` block (Dancer::Session::Redis and Redis::Simple). Where both `sock` and `server` are given, `sock` wins, as in Perl's Redis module. */
export function fromDancerRedis(block: unknown, path = 'redis_session'): PerlConfig {
  const subject: Subject = { scope: 'config', path };
  const c = check(dancerRedisSchema, block, subject);
  const params = { ping: c.ping ?? undefined };
  const url = c.sock
    ? `unix://${encodeURI(c.sock)}${query({ db: c.database ?? undefined, password: c.password ?? undefined, ...params })}`
    : `redis://${userinfo(undefined, c.password ?? undefined)}${authority(subject, 'server', c.server ?? '127.0.0.1:6379', 6379)}` +
      `/${c.database ?? 0}${query(params)}`;
  return {
    store: defined({ kind: 'redis' as const, url, debug: c.debug ?? undefined }),
    session: { idleTimeoutSeconds: c.expire ?? 900 },
  };
}

const catalystSchema = v.strictObject({
  expires: optional(seconds()),
  redis_server: optional(text()),
  redis_db: optional(count()),
  redis_ssl: optional(perlFlag()),
  redis_ssl_verify_mode: optional(
    v.union(
      [v.picklist(['SSL_VERIFY_PEER', 'SSL_VERIFY_NONE']), count()],
      'must be SSL_VERIFY_PEER, SSL_VERIFY_NONE or their values 1 and 0',
    ),
  ),
  redis_name: optional(v.pipe(text(), v.regex(/^\S+$/, 'must have no spaces'))),
  redis_username: optional(text()),
  redis_password: optional(text()),
  redis_reconnect: optional(perlFlag()),
  redis_conservative_reconnect: optional(perlFlag()),
  redis_debug: optional(perlFlag()),
});

/** Catalyst's `Plugin::Session` keys (Catalyst::Plugin::Session::Store::Redis). */
export function fromCatalystRedis(block: unknown, path = 'Plugin::Session'): PerlConfig {
  const subject: Subject = { scope: 'config', path };
  const c = check(catalystSchema, block, subject);
  const ssl = c.redis_ssl ?? false;
  // IO::Socket::SSL verify modes: bit 0x01 (SSL_VERIFY_PEER) decides; the mode applies only with redis_ssl.
  const mode = c.redis_ssl_verify_mode;
  const verify = mode === 'SSL_VERIFY_NONE' || (typeof mode === 'number' && (mode & 1) === 0) ? 'none' : undefined;
  // Either flag asks for reconnection; node-redis re-authenticates on every reconnect anyway.
  const reconnect = [c.redis_reconnect, c.redis_conservative_reconnect].filter((flag) => flag != null);
  const params = {
    name: c.redis_name ?? undefined,
    reconnect: reconnect.length === 0 ? undefined : String(reconnect.some(Boolean)),
    tlsVerify: ssl ? verify : undefined,
  };
  const url =
    `${ssl ? 'rediss' : 'redis'}://${userinfo(c.redis_username ?? undefined, c.redis_password ?? undefined)}` +
    `${authority(subject, 'redis_server', c.redis_server ?? '127.0.0.1:6379', 6379)}/${c.redis_db ?? 0}${query(params)}`;
  return {
    store: defined({ kind: 'redis' as const, url, debug: c.redis_debug ?? undefined }),
    session: { idleTimeoutSeconds: c.expires ?? 7200 },
  };
}

/** Dancer2 settings that belong to the session engine, not to the store. */
const ENGINE_SETTINGS = [
  'cookie_name',
  'cookie_domain',
  'cookie_path',
  'cookie_duration',
  'session_duration',
  'is_secure',
  'is_http_only',
];

const dbicSchema = v.strictObject({
  dsn: text(),
  user: v.optional(v.string('must be a string')),
  password: v.optional(v.string('must be a string')),
  schema_class: v.optional(v.string('must be a string')),
  resultset: v.optional(text()),
  id_column: v.optional(text()),
  data_column: v.optional(text()),
});

/** Splits `k1=v1;k2=v2` (or a bare value, which DBI drivers read as the database name). */
function dsnAttributes(subject: Subject, rest: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of rest.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (attributes.has('database')) throw invalid(subject, 'dsn', `has "${part}", which is no attribute`);
      attributes.set('database', part.trim());
      continue;
    }
    const name = part.slice(0, eq).trim().toLowerCase();
    attributes.set(name === 'db' || name === 'dbname' ? 'database' : name, part.slice(eq + 1).trim());
  }
  return attributes;
}

/**
 * A DBI data source as a URL: `DBI:mysql:database=db;host=h;port=p` (also DBD::MariaDB),
 * `DBI:Pg:dbname=db;host=h;port=p;sslmode=require`, `DBI:SQLite:dbname=file.db`; the user and
 * password go into the URL.
 */
export function dsnToUrl(
  dsn: string,
  user = '',
  password = '',
  subject: Subject = { scope: 'config', path: 'DBIC' },
): string {
  const match = /^dbi:([A-Za-z0-9_]+):(.*)$/is.exec(dsn.trim());
  if (!match) throw invalid(subject, 'dsn', `must look like DBI:<driver>:<attributes>, got ${JSON.stringify(dsn)}`);
  const driver = (match[1] as string).toLowerCase();
  const attributes = dsnAttributes(subject, match[2] as string);
  const allowed =
    driver === 'sqlite'
      ? ['database']
      : driver === 'pg'
        ? ['database', 'host', 'port', 'sslmode']
        : ['database', 'host', 'port'];
  if (!['sqlite', 'pg', 'mysql', 'mariadb'].includes(driver)) {
    throw invalid(
      subject,
      'dsn',
      `names the DBI driver "${match[1]}", which is not supported; use SQLite, Pg, mysql or MariaDB`,
    );
  }
  const extra = [...attributes.keys()].filter((name) => !allowed.includes(name));
  if (extra.length > 0) {
    throw invalid(
      subject,
      'dsn',
      `has the attribute(s) ${extra.join(', ')}, not supported for ${match[1]} (supported: ${allowed.join(', ')})`,
    );
  }
  const database = attributes.get('database') ?? '';
  if (driver === 'sqlite') {
    if (!database) throw invalid(subject, 'dsn', 'names no SQLite file (DBI:SQLite:dbname=path/to/file.db)');
    if (user || password) throw invalid(subject, 'user', 'and password do not apply to SQLite (a file has no login)');
    return `sqlite:${database}`;
  }
  const host = attributes.get('host') || '127.0.0.1';
  const port = attributes.get('port');
  if (port !== undefined && !/^\d+$/.test(port))
    throw invalid(subject, 'dsn', `has port "${port}", which is not a number`);
  const hostPart = `${host.includes(':') ? `[${host}]` : host}${port ? `:${port}` : ''}`;
  const login = userinfo(user || undefined, password || undefined);
  const sslmode = attributes.get('sslmode');
  const scheme = driver === 'pg' ? 'postgres' : 'mysql';
  return `${scheme}://${login}${hostPart}/${encodeURIComponent(database)}${query({ sslmode })}`;
}

/**
 * A Dancer2::Session::DBIC block: `dsn`, `user` and `password` become the URL, `resultset` the
 * table, `id_column` and `data_column` the columns. `schema_class` is accepted and ignored (no
 * Perl schema class is needed); `schema`, a live Perl object, cannot come from a file: give your
 * own Kysely instance or pool as the store's `db` instead.
 */
export function fromDbic(block: unknown, path = 'engines.session.DBIC'): PerlConfig {
  const subject: Subject = { scope: 'config', path };
  if (typeof block === 'object' && block !== null) {
    if ('schema' in block) {
      throw invalid(
        subject,
        'schema',
        'is a live DBIx::Class object; pass your own Kysely instance or pool as the db option',
      );
    }
    const engine = Object.keys(block).find((key) => ENGINE_SETTINGS.includes(key));
    if (engine)
      throw invalid(subject, engine, 'is a session engine setting: give it to the engine (session:), not the store');
  }
  const c = check(dbicSchema, block, subject);
  return {
    store: defined({
      kind: 'sql' as const,
      url: dsnToUrl(c.dsn, c.user, c.password, subject),
      table: c.resultset,
      idColumn: c.id_column,
      dataColumn: c.data_column,
    }),
    session: {},
  };
}

const nodeList = () =>
  v.union(
    [text(), v.pipe(v.array(text()), v.minLength(1, 'must list at least one node'))],
    'must be host:port, a URL, or a list of them',
  );

const esConnectionSchema = v.strictObject({
  servers: v.optional(nodeList()),
  nodes: v.optional(nodeList()),
  node: v.optional(text()),
  userinfo: v.optional(v.pipe(text(), v.regex(/^[^:]+:/, 'must be "user:password"'))),
  use_https: optional(perlFlag()),
  auth: v.optional(v.record(v.string(), v.unknown(), 'must be { username, password }, { apiKey } or { bearer }')),
  tls: v.optional(v.record(v.string(), v.unknown(), 'must be tls.connect options')),
  cloud: v.optional(v.strictObject({ id: text() })),
  flavor: v.optional(v.picklist(['elasticsearch', 'opensearch'], "must be 'elasticsearch' or 'opensearch'")),
});

const esSchema = v.strictObject({
  connection: optional(esConnectionSchema),
  index: v.optional(text()),
  type: v.optional(text()),
  signing: v.optional(
    v.strictObject({
      secret: v.optional(v.union([v.string(), v.array(v.string())], 'must be a string or a list of strings')),
      length: optional(count()),
    }),
  ),
  is_lazy: optional(perlFlag()),
});

/**
 * A Dancer::Session::ElasticSearch `session_options` block: `connection` becomes the store's
 * `node` (or, for several nodes, an API key or TLS settings, its `clientOptions`), `index` and
 * `type` stay the store's, `signing.secret` becomes the engine's `secrets` (each at least 32
 * characters), `signing.length` its `tagBytes`, and `is_lazy` its `flush`: off (the default)
 * is `'immediate'`, on is `'manual'`.
 *
 * The engine's `signing.length` counted characters: a random salt of that many and the first
 * that many hex digits of an HMAC-SHA1, so its default of 10 gave a 40-bit tag. Here it is the
 * number of bytes of the HMAC-SHA256 tag in the cookie, 16 (128 bits) to 32 (the whole HMAC,
 * the default when left out); anything under 16 is refused rather than silently raised.
 */
export function fromDancerElasticSearch(block: unknown, path = 'session_options'): PerlConfig {
  const subject: Subject = { scope: 'config', path };
  const c = check(esSchema, block, subject);
  const secret = c.signing?.secret;
  if (secret === undefined) {
    throw invalid(subject, 'signing.secret', 'is required: the engine signs every cookie (at least 32 characters)');
  }
  const secrets = typeof secret === 'string' ? [secret] : secret;
  secrets.forEach((one, i) => {
    if (one.length < 32) {
      const where = typeof secret === 'string' ? ['signing', 'secret'] : ['signing', 'secret', i];
      throw invalid(
        subject,
        where,
        'must be at least 32 characters (the Perl engine took shorter ones); generate one with: openssl rand -base64 32',
      );
    }
  });
  const length = c.signing?.length ?? 32;
  if (length < 16) {
    throw invalid(
      subject,
      'signing.length',
      `${length} would give a ${length * 8}-bit cookie tag; Tessera needs at least 16 bytes (128 bits). ` +
        'signing.length counts bytes of the HMAC-SHA256 tag here (16 to 32); remove it for the full 32',
    );
  }
  if (length > 32)
    throw invalid(subject, 'signing.length', `${length} is more than the 32 bytes of an HMAC-SHA256 tag`);
  return {
    store: defined({
      kind: c.connection?.flavor ?? ('elasticsearch' as const),
      ...esConnection(subject, c.connection ?? {}),
      index: c.index,
      type: c.type,
    }),
    session: { secrets, tagBytes: length, flush: c.is_lazy ? 'manual' : 'immediate' },
  };
}

/** The connection block as one node URL, or client options where one URL cannot say it all. */
function esConnection(subject: Subject, c: v.InferOutput<typeof esConnectionSchema>): Record<string, unknown> {
  const https = c.use_https ?? false;
  const lists = (['servers', 'nodes', 'node'] as const).filter((key) => c[key] !== undefined);
  if (lists.length > 1) throw invalid(subject, 'connection', `give one of ${lists.join(', ')}`);
  if (c.userinfo !== undefined && c.auth !== undefined)
    throw invalid(subject, 'connection', 'give userinfo or auth, not both');
  const given = lists[0] ? c[lists[0]] : undefined;
  const nodes = (given === undefined ? [] : typeof given === 'string' ? [given] : given).map((node) => {
    const text = node.trim();
    // Both Perl clients take `host:port`, `host` (port 9200) or a URL.
    return /^https?:\/\//i.test(text)
      ? text
      : `${https ? 'https' : 'http'}://${text}${/:\d+$/.test(text) ? '' : ':9200'}`;
  });
  const colon = c.userinfo?.indexOf(':') ?? -1;
  const basic =
    c.userinfo === undefined
      ? undefined
      : { username: c.userinfo.slice(0, colon), password: c.userinfo.slice(colon + 1) };
  const clientOptions = defined({ auth: c.auth, tls: c.tls, cloud: c.cloud });
  if (nodes.length === 1 && Object.keys(clientOptions).length === 0) {
    const url = new URL(nodes[0] as string);
    if (basic) {
      url.username = encodeURIComponent(basic.username);
      url.password = encodeURIComponent(basic.password);
    }
    return { url: url.href.replace(/\/$/, '') };
  }
  const options = defined({
    ...clientOptions,
    auth: clientOptions.auth ?? basic,
    nodes: nodes.length > 0 ? nodes : undefined,
  });
  return Object.keys(options).length === 0 ? {} : { clientOptions: options };
}

/**
 * Reads a whole Perl application's settings, finding the engine by its block: Dancer's
 * `session: Redis` (or `Redis::Simple`) with `redis_session`, Catalyst's `Plugin::Session`,
 * Dancer2's `engines.session.DBIC`, Dancer's `session: ElasticSearch` with `session_options`.
 * `null` when the settings hold none of them.
 */
export function fromPerlConfig(settings: Record<string, unknown>): PerlConfig | null {
  const subject: Subject = { scope: 'config', path: '' };
  const only = (allowed: string[]) => {
    const extra = Object.keys(settings).find((key) => !allowed.includes(key));
    if (extra) throw invalid(subject, extra, `is not read here (only ${allowed.join(', ')})`);
  };
  if ('redis_session' in settings) {
    only(['session', 'redis_session']);
    if (settings.session !== undefined && settings.session !== 'Redis' && settings.session !== 'Redis::Simple') {
      throw invalid(subject, 'session', `is ${JSON.stringify(settings.session)}, not 'Redis' or 'Redis::Simple'`);
    }
    return fromDancerRedis(settings.redis_session);
  }
  if ('Plugin::Session' in settings) {
    only(['Plugin::Session']);
    return fromCatalystRedis(settings['Plugin::Session']);
  }
  const engines = settings.engines as { session?: Record<string, unknown> } | undefined;
  if (engines?.session && 'DBIC' in engines.session) {
    only(['session', 'engines']);
    return fromDbic(engines.session.DBIC);
  }
  if ('session_options' in settings) {
    only(['session', 'session_options']);
    if (settings.session !== undefined && settings.session !== 'ElasticSearch') {
      throw invalid(subject, 'session', `is ${JSON.stringify(settings.session)}, not 'ElasticSearch'`);
    }
    return fromDancerElasticSearch(settings.session_options);
  }
  return null;
}
