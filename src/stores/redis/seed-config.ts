import { SessionError } from '../../core/errors.ts';
import { type RedisStoreOptions, resolveRedisOptions } from './options.ts';

/** Values as a YAML or Perl config gives them: numbers may arrive as strings, flags as 0/1. */
type Num = number | string;
type Flag = boolean | number | string;

/** Dancer's `redis_session` block (Dancer::Session::Redis and Redis::Simple, seeds 000 and 001). */
export interface DancerRedisSessionConfig {
  server?: string;
  sock?: string;
  password?: string;
  database?: Num;
  /** Session TTL in seconds. @default 900 */
  expire?: Num;
  ping?: Num;
  debug?: Flag;
}

/** Dancer settings with the block inside: `{ session: 'Redis', redis_session: {...} }`. */
export interface DancerSettings {
  session?: string;
  redis_session: DancerRedisSessionConfig;
}

/** Catalyst `Plugin::Session` keys (Catalyst::Plugin::Session::Store::Redis, seed 002). */
export interface CatalystRedisConfig {
  /** Session lifetime in seconds (Catalyst::Plugin::Session). @default 7200 */
  expires?: Num;
  redis_server?: string;
  redis_db?: Num;
  redis_ssl?: Flag;
  /** IO::Socket::SSL mode: `SSL_VERIFY_PEER` (1) or `SSL_VERIFY_NONE` (0), by name or value. */
  redis_ssl_verify_mode?: Num;
  redis_name?: string;
  redis_username?: string;
  redis_password?: string;
  redis_reconnect?: Flag;
  redis_conservative_reconnect?: Flag;
  redis_debug?: Flag;
}

/** What {@link fromSeedConfig} returns: store options, and the engine setting the seed's TTL maps to. */
export interface SeedConfigResult {
  store: RedisStoreOptions;
  engine: { idleTimeoutSeconds: number };
}

const DANCER = ['server', 'sock', 'password', 'database', 'expire', 'ping', 'debug'];
const CATALYST = [
  'expires',
  'redis_server',
  'redis_db',
  'redis_ssl',
  'redis_ssl_verify_mode',
  'redis_name',
  'redis_username',
  'redis_password',
  'redis_reconnect',
  'redis_conservative_reconnect',
  'redis_debug',
];

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', `seed config: ${message}`, { scope: 'redis' });
}

function str(key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw invalid(`${key} must be a non-empty string`);
  return value;
}

function int(key: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw invalid(`${key} must be a whole number >= 0`);
  return n;
}

function flag(key: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === true || value === 1 || value === '1') return true;
  if (value === false || value === 0 || value === '0' || value === '') return false;
  throw invalid(`${key} must be 0 or 1 (or true/false), got ${JSON.stringify(value)}`);
}

/** IO::Socket::SSL verify modes: bit 0x01 (SSL_VERIFY_PEER) decides. */
function verifyMode(value: unknown): 'peer' | 'none' | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === 'SSL_VERIFY_PEER') return 'peer';
  if (value === 'SSL_VERIFY_NONE') return 'none';
  const n = typeof value === 'string' && /^(0x)?[0-9a-f]+$/i.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw invalid(`redis_ssl_verify_mode must be SSL_VERIFY_PEER, SSL_VERIFY_NONE or their values 1 and 0`);
  }
  return n & 1 ? 'peer' : 'none';
}

function checkKeys(config: Record<string, unknown>, known: string[], style: string): void {
  for (const key of Object.keys(config)) {
    if (!known.includes(key)) throw invalid(`unknown key "${key}" in a ${style} config (known: ${known.join(', ')})`);
  }
}

const defined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

/**
 * Converts a Perl seed's Redis session config to Tessera options: a Dancer `redis_session` block
 * (`server, sock, password, database, expire, ping, debug`, or the settings holding it), or the
 * Catalyst keys (`redis_*` and `expires`). Unknown keys are rejected, so a typo is not silently
 * ignored. The seed's TTL becomes the engine's idle timeout; Redis expiry follows it.
 * Where Dancer gives both `sock` and `server`, `sock` wins, as in Perl's Redis module.
 */
export function fromSeedConfig(
  config: DancerRedisSessionConfig | DancerSettings | CatalystRedisConfig,
): SeedConfigResult {
  if (typeof config !== 'object' || config === null) throw invalid('the config must be an object');
  let c = config as Record<string, unknown>;
  if ('redis_session' in c) {
    checkKeys(c, ['session', 'redis_session'], 'Dancer settings');
    if (c.session !== undefined && c.session !== 'Redis' && c.session !== 'Redis::Simple') {
      throw invalid(`session is ${JSON.stringify(c.session)}, not 'Redis' or 'Redis::Simple'`);
    }
    if (typeof c.redis_session !== 'object' || c.redis_session === null)
      throw invalid('redis_session must be a mapping');
    c = c.redis_session as Record<string, unknown>;
  } else if (Object.keys(c).some((key) => key.startsWith('redis_') || key === 'expires')) {
    return fromCatalyst(c);
  }
  checkKeys(c, DANCER, 'Dancer redis_session');
  const sock = str('sock', c.sock);
  const store: RedisStoreOptions = defined({
    socketPath: sock,
    server: sock === undefined ? str('server', c.server) : undefined,
    password: str('password', c.password),
    database: int('database', c.database),
    ping: int('ping', c.ping),
    debug: flag('debug', c.debug),
  });
  return finish(store, int('expire', c.expire) ?? 900, 'expire');
}

function fromCatalyst(c: Record<string, unknown>): SeedConfigResult {
  checkKeys(c, CATALYST, 'Catalyst');
  const ssl = flag('redis_ssl', c.redis_ssl) ?? false;
  const reconnect = flag('redis_reconnect', c.redis_reconnect);
  const conservative = flag('redis_conservative_reconnect', c.redis_conservative_reconnect);
  const store: RedisStoreOptions = defined({
    server: str('redis_server', c.redis_server),
    database: int('redis_db', c.redis_db),
    tls: ssl || undefined,
    // The seed applies the verify mode only with redis_ssl on.
    tlsVerify: ssl ? verifyMode(c.redis_ssl_verify_mode) : undefined,
    name: str('redis_name', c.redis_name),
    username: str('redis_username', c.redis_username),
    password: str('redis_password', c.redis_password),
    // Either seed flag asks for reconnection; node-redis re-authenticates on each reconnect.
    reconnect: reconnect === undefined && conservative === undefined ? undefined : Boolean(reconnect || conservative),
    debug: flag('redis_debug', c.redis_debug),
  });
  return finish(store, int('expires', c.expires) ?? 7200, 'expires');
}

function finish(store: RedisStoreOptions, seconds: number, key: string): SeedConfigResult {
  if (seconds <= 0) throw invalid(`${key} must be a positive number of seconds`);
  resolveRedisOptions(store);
  return { store, engine: { idleTimeoutSeconds: seconds } };
}
