import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { SessionError } from '../../core/errors.ts';
import { clientKind, type RedisClientKind, type RedisClientLike } from './clients.ts';

/** Structural logger: pino, bunyan, winston child loggers and `console` fit. */
export interface RedisLogger {
  debug(object: object, message?: string): void;
  warn?(object: object, message?: string): void;
}

/**
 * Options of {@link RedisStore}. Give either connection settings (`url`, or `server`/`socketPath`
 * with the others), from which the store creates and owns a node-redis client, or your own
 * `client`. Every setting of the Perl seeds has a place here; the README maps them.
 */
export interface RedisStoreOptions {
  /**
   * Where Redis is, as a URL: `redis://[user[:password]@]host[:port][/db]`, `rediss://...` for
   * TLS, or `unix:///path/to/redis.sock?db=1` (credentials as `unix://user:pass@localhost/path`
   * or `?username=&password=`). Percent-encode reserved characters in credentials.
   * Cannot be combined with `server` or `socketPath`. Given but `undefined` (an unset
   * environment variable, as in `{ url: process.env.REDIS_URL }`) is an error, never a silent
   * fallback to 127.0.0.1:6379.
   * @default undefined (use `server`)
   */
  url?: string | undefined;
  /** `host:port` of the server (the seeds' `server`, `redis_server`); `[::1]:6379` for IPv6. @default '127.0.0.1:6379' */
  server?: string;
  /** Unix socket path of the server (the seed's `sock`). @default undefined */
  socketPath?: string;
  /** ACL user name (`redis_username`). @default undefined (the `default` user) */
  username?: string;
  /** Password for AUTH (`password`, `redis_password`). @default undefined */
  password?: string;
  /** Database number, SELECTed on every (re)connection (`database`, `redis_db`). @default 0 */
  database?: number;
  /**
   * Seconds between PINGs on an idle connection (the seed's `ping`; node-redis `pingInterval`):
   * keeps it from being closed as idle by the server's `timeout` or a proxy, and notices one that
   * was closed, which starts a reconnect. A peer that vanished without closing is noticed by TCP
   * keepalive; calls meanwhile fail by the engine's `storeTimeoutMs`. `0` turns it off.
   * @default 5
   */
  ping?: number;
  /** TLS (`redis_ssl`): `true`, or Node.js `tls.connect` options (`ca`, `cert`, `key`, `servername`...). @default false */
  tls?: boolean | TlsOptions;
  /**
   * Verification of the server certificate (`redis_ssl_verify_mode`): `'peer'` checks it against
   * the trusted CAs and the host name; `'none'` accepts any certificate (test setups only).
   * @default 'peer'
   */
  tlsVerify?: 'peer' | 'none';
  /** Connection name, set with CLIENT SETNAME on every (re)connection (`redis_name`). @default undefined */
  name?: string;
  /**
   * Reconnect automatically (after 50 ms, then every 100 ms, with jitter) after the
   * connection is lost. node-redis sends AUTH, SELECT and CLIENT SETNAME again on every new
   * connection. `false`: no background reconnection; the next store call after a loss opens a
   * new connection itself.
   * @default true
   */
  reconnect?: boolean;
  /**
   * Alias of `reconnect` for configs from the Catalyst seed (`redis_conservative_reconnect`,
   * "reconnect with authentication"): node-redis always re-authenticates after a reconnect, so
   * the two settings mean the same here. Giving both with different values is an error.
   * @default undefined
   */
  conservativeReconnect?: boolean;
  /** How long one connection attempt may take. @default 1000 */
  connectTimeoutMs?: number;
  /** Prefix of every key the store writes: sessions at `${prefix}${key}`, user indexes at `${prefix}user:${userId}`. @default 'tessera:' */
  prefix?: string;
  /**
   * How long a user index keeps a session after it was indexed, in seconds. Set it to at least
   * the engine's `absoluteTimeoutSeconds`: then a logged-in session never needs a second index
   * write; one that lives longer costs one extra index write each time it passes this horizon.
   * @default 604800 (7 days, the engine's default absolute timeout)
   */
  userIndexTtlSeconds?: number;
  /** Log every command the store sends (command, script, shortened key; never values) at debug level (`debug`, `redis_debug`). @default false */
  debug?: boolean;
  /** Receives debug output and connection warnings. @default stderr when `debug` is on, otherwise none */
  logger?: RedisLogger;
  /**
   * Your own client instead of connection settings: a node-redis client (`createClient`),
   * cluster (`createCluster`) or Sentinel client (`createSentinel`), or an ioredis `Redis`
   * (standalone or with `sentinels`) or `Cluster`. Connect a node-redis client before use.
   * The store never closes it.
   * @default undefined (the store creates a node-redis client from the settings above)
   */
  client?: RedisClientLike;
  /**
   * Durable commit, for replicated setups (Sentinel, Cluster with replicas): after each write the
   * store sends `WAIT replicas timeoutMs` on the same connection, and the write fails with
   * `STORE_UNAVAILABLE` unless that many replicas have acknowledged it in time. Without it a
   * write is answered once the master has it, and a failover right after may lose it (Redis
   * replication is asynchronous). A failed commit may still have reached the master: it is
   * reported as failed, never as done when it was not. Costs one round trip to the replicas per
   * write; with fewer live replicas than `replicas`, every write fails.
   * @default undefined (answer once the master has the write)
   */
  durableCommit?: DurableCommit;
}

/** See {@link RedisStoreOptions.durableCommit}. */
export interface DurableCommit {
  /** Replicas that must acknowledge each write (WAIT's `numreplicas`), at least 1. */
  replicas: number;
  /** How long to wait for them, in milliseconds (WAIT's `timeout`), at least 1. */
  timeoutMs: number;
}

/** Connection settings after validation, for a store-created client. */
export interface ConnectionSettings {
  host: string;
  port: number;
  socketPath: string | undefined;
  username: string | undefined;
  password: string | undefined;
  database: number;
  tls: TlsOptions | undefined;
  pingMs: number;
  name: string | undefined;
  reconnect: boolean;
  connectTimeoutMs: number;
}

/** Options after validation and defaults. */
export interface ResolvedRedisOptions {
  prefix: string;
  userIndexTtlMs: number;
  debug: boolean;
  logger: RedisLogger | undefined;
  client: { value: RedisClientLike; kind: RedisClientKind } | undefined;
  connection: ConnectionSettings | undefined;
  durableCommit: DurableCommit | undefined;
}

/** What a URL says about the connection. */
export interface ParsedRedisUrl {
  host?: string;
  port?: number;
  socketPath?: string;
  username?: string;
  password?: string;
  database?: number;
  tls: boolean;
}

/** Options that configure a connection, so they cannot go with a `client`. */
const CONNECTION = [
  'url',
  'server',
  'socketPath',
  'username',
  'password',
  'database',
  'ping',
  'tls',
  'tlsVerify',
  'name',
  'reconnect',
  'conservativeReconnect',
  'connectTimeoutMs',
] as const;

const KNOWN = new Set<string>([
  ...CONNECTION,
  'prefix',
  'userIndexTtlSeconds',
  'debug',
  'logger',
  'client',
  'durableCommit',
]);

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', message, { scope: 'redis' });
}

const show = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '')
    throw invalid(`${name} must be a non-empty string, got ${show(value)}`);
  return value;
}

function optionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw invalid(`${name} must be true or false, got ${show(value)}`);
  return value;
}

function number(name: string, value: unknown, fallback: number, check: (n: number) => boolean, rule: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) {
    throw invalid(`${name} must be ${rule}, got ${show(value)}`);
  }
  return value;
}

function database(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  return number(name, value, 0, (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0');
}

function port(where: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > 65535) throw invalid(`${where}: port ${show(text)} is not 1-65535`);
  return value;
}

/** Parses `host:port`, `host`, `[v6]:port` or `[v6]`. */
export function parseServer(server: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(server);
  if (v6) return { host: v6[1] as string, port: v6[2] === undefined ? 6379 : port(`server ${show(server)}`, v6[2]) };
  const colon = server.lastIndexOf(':');
  if (colon < 0) return { host: server, port: 6379 };
  const host = server.slice(0, colon);
  if (host === '' || host.includes(':')) {
    throw invalid(`server ${show(server)} must be "host:port" (write an IPv6 address as "[::1]:6379")`);
  }
  return { host, port: port(`server ${show(server)}`, server.slice(colon + 1)) };
}

function decode(where: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(`${where}: bad percent-encoding in ${show(text)}`);
  }
}

/** Parses a `redis://`, `rediss://` or `unix://` URL. Throws `INVALID_OPTIONS` naming the problem. */
export function parseRedisUrl(text: string): ParsedRedisUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`url ${show(redact(text))} is not a valid URL (percent-encode special characters in credentials)`);
  }
  const where = `url ${show(redact(text))}`;
  const out: ParsedRedisUrl = { tls: url.protocol === 'rediss:' };
  if (url.username) out.username = decode(where, url.username);
  if (url.password) out.password = decode(where, url.password);
  const params = new Map(url.searchParams);
  const take = (name: string) => {
    const value = params.get(name);
    params.delete(name);
    return value;
  };
  let db: string | undefined;
  if (url.protocol === 'unix:') {
    if (url.hostname !== '' && url.hostname !== 'localhost') {
      throw invalid(`${where}: a unix URL has no host; write unix:///path/to/redis.sock`);
    }
    if (url.pathname === '' || url.pathname === '/') throw invalid(`${where}: the socket path is missing`);
    out.socketPath = decode(where, url.pathname);
    const username = take('username');
    const password = take('password');
    if (username !== undefined) out.username = username;
    if (password !== undefined) out.password = password;
    db = take('db') ?? undefined;
  } else if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    if (url.hostname === '') throw invalid(`${where}: the host is missing`);
    out.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    out.port = url.port === '' ? 6379 : port(where, url.port);
    const path = url.pathname.replace(/^\//, '');
    const query = take('db');
    if (path !== '' && query !== undefined) throw invalid(`${where}: the database is given twice (path and ?db=)`);
    db = path !== '' ? path : query;
  } else {
    throw invalid(`${where}: the scheme must be redis://, rediss:// or unix://`);
  }
  if (params.size > 0) throw invalid(`${where}: unknown parameter "${[...params.keys()][0]}"`);
  if (db !== undefined) {
    if (!/^\d+$/.test(db)) throw invalid(`${where}: the database ${show(db)} is not a whole number`);
    out.database = Number(db);
  }
  return out;
}

/** The URL with its password replaced, for error messages. */
function redact(text: string): string {
  return text.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Validates options and applies defaults. The input is never mutated. */
export function resolveRedisOptions(options: RedisStoreOptions = {}): ResolvedRedisOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw invalid(`unknown option "${name}"`);
  }
  if ('url' in options && options.url === undefined) {
    throw invalid(
      'url is undefined: is the environment variable it comes from (e.g. REDIS_URL) set? Leave url out to use server',
    );
  }
  const o = options as Record<string, unknown>;
  const prefix = o.prefix ?? 'tessera:';
  if (typeof prefix !== 'string') throw invalid(`prefix must be a string, got ${show(prefix)}`);
  const userIndexTtlMs =
    number('userIndexTtlSeconds', o.userIndexTtlSeconds, 604800, (n) => n > 0, 'a positive number of seconds') * 1000;
  const debug = optionalBoolean('debug', o.debug) ?? false;
  const logger = o.logger as RedisLogger | undefined;
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger.debug !== 'function')) {
    throw invalid('logger must have a debug(object, message) method (pino, console...)');
  }
  const common = { prefix, userIndexTtlMs, debug, logger, durableCommit: resolveDurableCommit(o.durableCommit) };

  if (o.client !== undefined) {
    const kind = clientKind(o.client);
    if (kind === null) {
      throw invalid(
        'client must be a node-redis client, cluster or Sentinel client (redis >= 5), or an ioredis Redis or Cluster',
      );
    }
    const extra = CONNECTION.find((name) => o[name] !== undefined);
    if (extra) throw invalid(`${extra} cannot be combined with client: configure your client instead`);
    if (kind === 'ioredis-cluster' && common.durableCommit) {
      // ioredis sends a keyless command (WAIT) to a random node, not to the master that took the write.
      throw invalid("durableCommit needs a client that routes WAIT to the key's master: use node-redis createCluster");
    }
    return { ...common, client: { value: o.client as RedisClientLike, kind }, connection: undefined };
  }
  return { ...common, client: undefined, connection: resolveConnection(o) };
}

function resolveDurableCommit(value: unknown): DurableCommit | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) {
    throw invalid(`durableCommit must be { replicas, timeoutMs }, got ${show(value)}`);
  }
  const { replicas, timeoutMs, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw invalid(`durableCommit: unknown option "${extra}"`);
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  if (replicas === undefined || timeoutMs === undefined) {
    throw invalid('durableCommit needs both replicas and timeoutMs');
  }
  return {
    replicas: number('durableCommit.replicas', replicas, 1, whole, 'a whole number >= 1'),
    // WAIT with timeout 0 waits forever: refused, a commit must end.
    timeoutMs: number('durableCommit.timeoutMs', timeoutMs, 1, whole, 'a whole number of milliseconds >= 1'),
  };
}

function resolveConnection(o: Record<string, unknown>): ConnectionSettings {
  const url = optionalString('url', o.url);
  const server = optionalString('server', o.server);
  const socketPath = optionalString('socketPath', o.socketPath);
  const given = [url && 'url', server && 'server', socketPath && 'socketPath'].filter(Boolean);
  if (given.length > 1) throw invalid(`${given.join(' and ')} cannot be combined: give one address`);

  const parsed: ParsedRedisUrl = url
    ? parseRedisUrl(url)
    : socketPath
      ? { socketPath, tls: false }
      : { ...parseServer(server ?? '127.0.0.1:6379'), tls: false };
  const twice = (name: string, fromUrl: unknown, value: unknown) => {
    if (fromUrl !== undefined && value !== undefined) throw invalid(`${name} is given twice (in url and as ${name})`);
  };
  const username = optionalString('username', o.username);
  const password = optionalString('password', o.password);
  const db = database('database', o.database);
  twice('username', parsed.username, username);
  twice('password', parsed.password, password);
  twice('database', parsed.database, db);

  const tlsOption = o.tls;
  if (
    tlsOption !== undefined &&
    typeof tlsOption !== 'boolean' &&
    (typeof tlsOption !== 'object' || tlsOption === null)
  ) {
    throw invalid(`tls must be true, false or tls.connect options, got ${show(tlsOption)}`);
  }
  if (parsed.tls && tlsOption === false) throw invalid('tls is false but the url is rediss://');
  const tlsOn = parsed.tls || (tlsOption !== undefined && tlsOption !== false);
  if (tlsOn && parsed.socketPath !== undefined) throw invalid('tls cannot be used over a unix socket');
  const tlsVerify = o.tlsVerify;
  if (tlsVerify !== undefined && tlsVerify !== 'peer' && tlsVerify !== 'none') {
    throw invalid(`tlsVerify must be 'peer' or 'none', got ${show(tlsVerify)}`);
  }
  if (tlsVerify !== undefined && !tlsOn) throw invalid('tlsVerify needs tls (or a rediss:// url)');
  const tls = tlsOn
    ? {
        ...(typeof tlsOption === 'object' ? (tlsOption as TlsOptions) : {}),
        ...(tlsVerify === 'none' ? { rejectUnauthorized: false } : {}),
      }
    : undefined;

  const name = optionalString('name', o.name);
  if (name !== undefined && /\s/.test(name)) throw invalid(`name ${show(name)} cannot contain spaces or newlines`);
  const reconnect = optionalBoolean('reconnect', o.reconnect);
  const conservative = optionalBoolean('conservativeReconnect', o.conservativeReconnect);
  if (reconnect !== undefined && conservative !== undefined && reconnect !== conservative) {
    throw invalid('reconnect and conservativeReconnect (its alias) disagree: give one of them');
  }
  return {
    host: parsed.host ?? '127.0.0.1',
    port: parsed.port ?? 6379,
    socketPath: parsed.socketPath,
    username: username ?? parsed.username,
    password: password ?? parsed.password,
    database: db ?? parsed.database ?? 0,
    tls,
    pingMs: number('ping', o.ping, 5, (n) => n >= 0, 'a number of seconds >= 0') * 1000,
    name,
    reconnect: reconnect ?? conservative ?? true,
    connectTimeoutMs: number('connectTimeoutMs', o.connectTimeoutMs, 1000, (n) => n > 0, 'a positive number'),
  };
}
