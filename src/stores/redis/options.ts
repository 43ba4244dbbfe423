import type { ConnectionOptions as TlsOptions } from 'node:tls';
import * as v from 'valibot';
import {
  check,
  flag,
  invalid,
  logger,
  positive,
  record,
  type Same,
  type Subject,
  text,
  whole,
} from '../../core/check.ts';
import type { Logger } from '../../core/report.ts';
import { clientKind, type RedisClientKind, type RedisClientLike } from './clients.ts';

/**
 * Options of {@link RedisStore}: where Redis is (one `url`, from which the store creates and
 * owns a node-redis client) or your own `client`, and what is the store's own (key prefix,
 * user index, durable commit, logging).
 */
export interface RedisStoreOptions {
  /**
   * Where Redis is: `redis://[user[:password]@]host[:port][/db]`, `rediss://...` for TLS, or
   * `unix:///path/to/redis.sock?db=1` (credentials as `unix://user:pass@localhost/path` or
   * `?username=&password=`). Percent-encode reserved characters in credentials. Query
   * parameters tune the connection the store opens:
   * - `name`: the connection name, set with CLIENT SETNAME on every (re)connection;
   * - `ping`: seconds between PINGs on an idle connection (default 5, `0` off): keeps it from
   *   being closed as idle by the server's `timeout` or a proxy, and notices one that was closed;
   * - `reconnect`: `false` turns off reconnection in the background (the next call after a loss
   *   opens a new connection itself); on by default, after 50 ms then every 100 ms, jittered, with
   *   AUTH, SELECT and CLIENT SETNAME sent again each time;
   * - `tlsVerify`: `none` accepts any server certificate (`rediss://` only; test setups);
   *   `peer` (the default) checks it against the trusted CAs and the host name;
   * - `connectTimeoutMs`: how long one connection attempt may take (default 1000).
   *
   * Given but `undefined` (an unset environment variable, as in `{ url: process.env.REDIS_URL }`)
   * is an error, never a silent fallback.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string | undefined;
  /**
   * Node.js `tls.connect` options (`ca`, `cert`, `key`, `servername`...) for a `rediss://` url:
   * the one structured connection option, since certificates and keys cannot be written in a
   * URL.
   * @default undefined (the system's trusted CAs)
   */
  tls?: TlsOptions;
  /**
   * Your own client instead of a url: a node-redis client (`createClient`), cluster
   * (`createCluster`) or Sentinel client (`createSentinel`), or an ioredis `Redis` (standalone
   * or with `sentinels`) or `Cluster`: Cluster and Sentinel node lists are configured there.
   * Connect a node-redis client before use. The store never closes it.
   * @default undefined (the store creates a node-redis client from `url`)
   */
  client?: RedisClientLike;
  /** Prefix of every key the store writes: sessions at `${prefix}${key}`, user indexes at `${prefix}user:${userId}`. @default 'tessera:' */
  prefix?: string;
  /**
   * How long a user index keeps a session after it was indexed, in seconds. Set it to at least
   * the engine's `absoluteTimeoutSeconds`: then a logged-in session never needs a second index
   * write; one that lives longer costs one extra index write each time it passes this horizon.
   * @default 604800 (7 days, the engine's default absolute timeout)
   */
  userIndexTtlSeconds?: number;
  /** Log every command the store sends (command, script, shortened key; never values) at debug level. @default false */
  debug?: boolean;
  /** Receives debug output and connection warnings. @default stderr when `debug` is on, otherwise none */
  logger?: Logger;
  /**
   * Durable commit, for replicated setups (Sentinel, Cluster with replicas): after each write the
   * store sends `WAIT replicas timeoutMs` on the same connection, and the write fails with
   * `STORE_UNAVAILABLE` unless that many replicas have acknowledged it in time. Without it a
   * write is answered once the master has it, and a failover right after may lose it (Redis
   * replication is asynchronous). A failed commit may still have reached the master: it is
   * reported as failed, never as done when it was not. Costs one round trip to the replicas per
   * write. A WAIT holds its connection, so on one master connection one WAIT is out at a time and
   * the writes answered meanwhile share the next. With fewer live replicas than `replicas` every
   * write fails; after one falls short, writes ask the master's `ROLE` first and are refused
   * without writing until enough replicas are online again (no WAITs queued behind each other).
   * @default undefined (answer once the master has the write)
   */
  durableCommit?: DurableCommit;
}

/** See {@link RedisStoreOptions.durableCommit}. */
export interface DurableCommit {
  /** Replicas that must acknowledge each write (WAIT's `numreplicas`), at least 1. */
  replicas: number;
  /** How long to wait for them, in milliseconds (WAIT's `timeout`), at least 1; WAIT's 0 would wait forever. */
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
  logger: Logger | undefined;
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
  name?: string;
  pingSeconds?: number;
  reconnect?: boolean;
  tlsVerify?: 'peer' | 'none';
  connectTimeoutMs?: number;
}

/** The options a configuration file can hold (all but `client`, `logger` and `tls`). */
export const redisFileSchema = v.strictObject({
  url: v.optional(text()),
  prefix: v.optional(text()),
  userIndexTtlSeconds: v.optional(positive('a positive number of seconds')),
  debug: v.optional(flag()),
  durableCommit: v.optional(
    v.strictObject({ replicas: whole(1), timeoutMs: whole(1) }, 'must be { replicas, timeoutMs }'),
  ),
});

/** {@link RedisStoreOptions} as a schema. */
export const redisSchema = v.strictObject({
  ...redisFileSchema.entries,
  tls: v.optional(record<TlsOptions>('tls.connect options (ca, cert, key...)')),
  client: v.optional(
    v.custom<RedisClientLike>(
      (value) => clientKind(value) !== null,
      'must be a node-redis client, cluster or Sentinel client (redis >= 5), or an ioredis Redis or Cluster',
    ),
  ),
  logger: v.optional(logger()),
});
const same: Same<v.InferInput<typeof redisSchema>, RedisStoreOptions> = true;
void same;

const SUBJECT: Subject = { scope: 'redis', label: 'redisStore', unset: { url: 'REDIS_URL' } };
const QUERY = ['name', 'ping', 'reconnect', 'tlsVerify', 'connectTimeoutMs'];

/** The URL with its password replaced, for messages. */
function redact(text: string): string {
  return text.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@').replace(/([?&]password=)[^&]*/, '$1***');
}

/** Parses a `redis://`, `rediss://` or `unix://` URL. Throws `INVALID_OPTIONS` naming the problem. */
export function parseRedisUrl(text: string): ParsedRedisUrl {
  const shown = JSON.stringify(redact(text));
  const fail = (rule: string) => invalid(SUBJECT, 'url', `${shown}: ${rule}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw fail('is not a valid URL (percent-encode special characters in credentials)');
  }
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw fail(`bad percent-encoding in ${JSON.stringify(part)}`);
    }
  };
  const out: ParsedRedisUrl = { tls: url.protocol === 'rediss:' };
  if (url.username) out.username = decode(url.username);
  if (url.password) out.password = decode(url.password);
  const params = new Map(url.searchParams);
  const take = (name: string) => {
    const value = params.get(name);
    params.delete(name);
    return value;
  };
  let db: string | undefined;
  if (url.protocol === 'unix:') {
    if (url.hostname !== '' && url.hostname !== 'localhost')
      throw fail('a unix URL has no host: unix:///path/to/redis.sock');
    if (url.pathname === '' || url.pathname === '/') throw fail('the socket path is missing');
    out.socketPath = decode(url.pathname);
    const username = take('username');
    const password = take('password');
    if (username !== undefined) out.username = username;
    if (password !== undefined) out.password = password;
    db = take('db');
  } else if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    if (url.hostname === '') throw fail('the host is missing');
    out.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === '' ? 6379 : Number(url.port);
    if (port < 1 || port > 65535) throw fail(`port ${url.port} is not 1-65535`);
    out.port = port;
    const path = url.pathname.replace(/^\//, '');
    const query = take('db');
    if (path !== '' && query !== undefined) throw fail('the database is given twice (path and ?db=)');
    db = path !== '' ? path : query;
  } else {
    throw fail('the scheme must be redis://, rediss:// or unix://');
  }
  if (db !== undefined) {
    if (!/^\d+$/.test(db)) throw fail(`the database ${JSON.stringify(db)} is not a whole number`);
    out.database = Number(db);
  }
  const name = take('name');
  if (name !== undefined) {
    if (name === '' || /\s/.test(name)) throw fail('name must be non-empty, without spaces or newlines');
    out.name = name;
  }
  const ping = take('ping');
  if (ping !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(ping)) throw fail(`ping must be a number of seconds >= 0, got ${JSON.stringify(ping)}`);
    out.pingSeconds = Number(ping);
  }
  const reconnect = take('reconnect');
  if (reconnect !== undefined) {
    if (reconnect !== 'true' && reconnect !== 'false') throw fail('reconnect must be true or false');
    out.reconnect = reconnect === 'true';
  }
  const verify = take('tlsVerify');
  if (verify !== undefined) {
    if (verify !== 'peer' && verify !== 'none') throw fail("tlsVerify must be 'peer' or 'none'");
    if (!out.tls) throw fail('tlsVerify needs a rediss:// url');
    out.tlsVerify = verify;
  }
  const timeout = take('connectTimeoutMs');
  if (timeout !== undefined) {
    if (!/^\d+$/.test(timeout) || Number(timeout) < 1) throw fail('connectTimeoutMs must be a whole number >= 1');
    out.connectTimeoutMs = Number(timeout);
  }
  const extra = [...params.keys()][0];
  if (extra !== undefined) {
    const known = url.protocol === 'unix:' ? ['db', 'username', 'password', ...QUERY] : ['db', ...QUERY];
    throw fail(`the parameter "${extra}" is not known; known: ${known.join(', ')}`);
  }
  return out;
}

/** Validates options and applies defaults. The input is never mutated. */
export function resolveRedisOptions(options: RedisStoreOptions = {}): ResolvedRedisOptions {
  const o = check(redisSchema, options, SUBJECT);
  const common = {
    prefix: o.prefix ?? 'tessera:',
    userIndexTtlMs: (o.userIndexTtlSeconds ?? 604800) * 1000,
    debug: o.debug ?? false,
    logger: o.logger,
    durableCommit: o.durableCommit,
  };
  if (o.client !== undefined) {
    const kind = clientKind(o.client) as RedisClientKind;
    const extra = (['url', 'tls'] as const).find((name) => o[name] !== undefined);
    if (extra) throw invalid(SUBJECT, extra, 'cannot be combined with client: configure your client instead');
    if (kind === 'ioredis-cluster' && common.durableCommit) {
      // ioredis sends a keyless command (WAIT) to a random node, not to the master that took the write.
      throw invalid(
        SUBJECT,
        'durableCommit',
        "needs a client that routes WAIT to the key's master: use node-redis createCluster",
      );
    }
    return { ...common, client: { value: o.client, kind }, connection: undefined };
  }
  return { ...common, client: undefined, connection: connection(o.url ?? 'redis://127.0.0.1:6379', o.tls) };
}

function connection(url: string, tlsOptions: TlsOptions | undefined): ConnectionSettings {
  const parsed = parseRedisUrl(url);
  if (tlsOptions !== undefined && !parsed.tls) throw invalid(SUBJECT, 'tls', 'needs a rediss:// url');
  const tls = parsed.tls
    ? { ...tlsOptions, ...(parsed.tlsVerify === 'none' ? { rejectUnauthorized: false } : {}) }
    : undefined;
  return {
    host: parsed.host ?? '127.0.0.1',
    port: parsed.port ?? 6379,
    socketPath: parsed.socketPath,
    username: parsed.username,
    password: parsed.password,
    database: parsed.database ?? 0,
    tls,
    pingMs: (parsed.pingSeconds ?? 5) * 1000,
    name: parsed.name,
    reconnect: parsed.reconnect ?? true,
    connectTimeoutMs: parsed.connectTimeoutMs ?? 1000,
  };
}
