import type { EncryptionKey, Serializer } from './codec.ts';
import { SessionError } from './errors.ts';
import type { Store } from './store.ts';

/** Structural logger type: pino, bunyan, winston child loggers and `console` all fit. */
export interface Logger {
  debug(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** Cookie settings. */
export interface CookieOptions {
  /**
   * Cookie name. A name starting with `__Host-` forces `Secure`, `Path=/` and no `Domain`.
   * @default 'tessera.sid'
   */
  name?: string;
  /** @default '/' */
  path?: string;
  /** @default undefined (host-only cookie) */
  domain?: string;
  /** @default 'lax' */
  sameSite?: 'lax' | 'strict' | 'none';
  /** @default true */
  httpOnly?: boolean;
  /**
   * `'auto'` sets `Secure` when the request came over HTTPS (as the adapter reports it).
   * @default 'auto'
   */
  secure?: boolean | 'auto';
  /**
   * `true`: the cookie carries `Expires` = the session's expiry, so it survives a browser restart.
   * `false`: a browser-session cookie.
   * @default true
   */
  persistent?: boolean;
  /** Adds the `Partitioned` attribute (CHIPS). @default false */
  partitioned?: boolean;
}

/** When changes are written to the store. */
export type FlushMode =
  /** Once, before the response is sent (default). */
  | 'end'
  /** On every `set`/`delete`/`clear` (the ElasticSearch seed with `is_lazy` off). */
  | 'immediate'
  /** Only when the app calls `session.save()` (the seed's `is_lazy` on). */
  | 'manual';

/** Options of {@link SessionEngine}. */
export interface SessionOptions {
  /** Where sessions live. */
  store: Store;
  /**
   * Secrets for signing cookies; the first signs, all verify (rotation). Required unless
   * `signed` is `false`. Each must be at least 32 characters; one with little variety (a
   * repeated character or word) is accepted with a warning (the `logger`, else a process
   * warning `TESSERA_WEAK_SECRET`). `undefined` entries are accepted by the type, so that
   * `[process.env.SESSION_SECRET]` compiles, and refused at construction with a message saying
   * the variable is probably unset.
   */
  secrets?: string | readonly (string | undefined)[] | undefined;
  /**
   * Sign cookie values. Turning it off is only for IDs that are signed elsewhere.
   * @default true
   */
  signed?: boolean;
  /**
   * Bytes of the HMAC-SHA256 tag kept in the cookie (the ElasticSearch seed's `signing.length`).
   * 16 (128 bits) is the minimum accepted.
   * @default 32
   */
  tagBytes?: number;
  /** Idle timeout: a session unused this long expires (the seeds' `expire`). @default 900 */
  idleTimeoutSeconds?: number;
  /** Absolute timeout from creation, whatever the activity; `null` for none. @default 604800 (7 days) */
  absoluteTimeoutSeconds?: number | null;
  /**
   * An unmodified session's expiry is extended (a touch) only when at least this long has
   * passed since it was last extended.
   * @default idleTimeoutSeconds / 2
   */
  touchAfterSeconds?: number;
  /** @default 'end' */
  flush?: FlushMode;
  cookie?: CookieOptions;
  /** A commit that would store more than this (serialized keys and values) fails. @default 65536 */
  maxSizeBytes?: number;
  /** Each store call fails with `STORE_TIMEOUT` after this long. @default 1000 */
  storeTimeoutMs?: number;
  /**
   * `'fail'`: store errors reach the app as `SessionError`s (adapters answer 503).
   * `'degrade'`: a failed load gives an empty session that is never written; failed writes are
   * logged. Opt-in only: it logs users out silently while the store is down.
   * @default 'fail'
   */
  onStoreError?: 'fail' | 'degrade';
  /**
   * A stored record that cannot be decoded: `'throw'` a `CORRUPT_RECORD` error, or `'reset'`
   * (start a new session, keep the bad record for inspection). Both emit a `corrupt` event.
   * @default 'throw'
   */
  onCorruptRecord?: 'throw' | 'reset';
  /**
   * A commit whose changes found the record gone (a logout or a revocation won the race):
   * `'report'` answers as usual with `lost: true` in the commit result and a `lost` event (the
   * changes are dropped and the cookie cleared, since the session is over); `'throw'` fails the
   * commit with a `SESSION_LOST` error (409) instead.
   * @default 'report'
   */
  onLostWrite?: 'report' | 'throw';
  /**
   * Responses that set or clear the session cookie also get `Cache-Control: private, no-store`
   * (unless the app set its own `Cache-Control`) and `Vary: Cookie` (added to the app's `Vary`),
   * so that no shared cache (CDN, proxy) stores one visitor's session cookie and serves it to others.
   * @default true
   */
  cacheHeaders?: boolean;
  /**
   * Commit the session when the response is a server error (status 500-599). Off by default, as in
   * Django and tower-sessions: a handler that failed part-way leaves half-made changes, which
   * are dropped instead of being stored (the store writes already made by `save()`, `destroy()`
   * or flush `'immediate'` stay made). Turn it on to keep what the request changed anyway.
   * @default false
   */
  commitOnServerError?: boolean;
  /** @default JSON */
  serializer?: Serializer;
  /** Encryption at rest (AES-256-GCM); the first key encrypts, all decrypt. @default none */
  encryption?: { keys: readonly EncryptionKey[] };
  /** Receives warnings, errors and (with `debug`) every store interaction. @default none */
  logger?: Logger;
  /** Log every store interaction (IDs hashed and shortened) at debug level. @default false */
  debug?: boolean;
  /** Clock in epoch ms, for tests. @default Date.now */
  now?: () => number;
}

/** Options after validation and defaults; frozen. */
export interface ResolvedOptions {
  readonly store: Store;
  readonly secrets: readonly string[];
  readonly signed: boolean;
  readonly tagBytes: number;
  readonly idleMs: number;
  readonly absoluteMs: number | null;
  readonly touchAfterMs: number;
  readonly flush: FlushMode;
  readonly cookie: Readonly<Required<Omit<CookieOptions, 'domain'>> & { domain: string | undefined }>;
  readonly maxSizeBytes: number;
  readonly storeTimeoutMs: number;
  readonly onStoreError: 'fail' | 'degrade';
  readonly onCorruptRecord: 'throw' | 'reset';
  readonly onLostWrite: 'report' | 'throw';
  readonly cacheHeaders: boolean;
  readonly commitOnServerError: boolean;
  readonly serializer: Serializer;
  readonly encryptionKeys: readonly EncryptionKey[];
  readonly logger: Logger | undefined;
  readonly debug: boolean;
  readonly now: () => number;
}

const stderrLogger: Logger = {
  debug: (object, message) => console.error('[tessera]', message ?? '', JSON.stringify(object)),
  warn: (object, message) => console.error('[tessera]', message ?? '', JSON.stringify(object)),
  error: (object, message) => console.error('[tessera]', message ?? '', JSON.stringify(object)),
};

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', message);
}

function positive(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalid(`${name} must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(`${name} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    throw invalid(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/**
 * A secret with little variety: fewer than 8 distinct characters, or under 72 bits by its own
 * character frequencies (Shannon). A random 32-character hex or base64 secret passes; `'a'.repeat(32)`
 * and a word repeated do not. It is a heuristic for obvious mistakes, not a strength meter.
 */
function isWeakSecret(secret: string): boolean {
  const counts = new Map<string, number>();
  for (const char of secret) counts.set(char, (counts.get(char) ?? 0) + 1);
  if (counts.size < 8) return true;
  const length = [...secret].length;
  let bits = 0;
  for (const count of counts.values()) bits -= count * Math.log2(count / length);
  return bits < 72;
}

let weakSecretWarned = false;

function warnWeakSecret(index: number, logger: Logger | undefined): void {
  const message = `options.secrets[${index}] has little variety (few distinct characters); use a random secret, e.g. openssl rand -base64 32`;
  if (logger) {
    logger.warn({ code: 'TESSERA_WEAK_SECRET', secret: index }, `[tessera] ${message}`);
    return;
  }
  if (weakSecretWarned) return;
  weakSecretWarned = true;
  process.emitWarning(`[tessera] ${message}`, { code: 'TESSERA_WEAK_SECRET' });
}

const KNOWN = new Set([
  'store',
  'secrets',
  'signed',
  'tagBytes',
  'idleTimeoutSeconds',
  'absoluteTimeoutSeconds',
  'touchAfterSeconds',
  'flush',
  'cookie',
  'maxSizeBytes',
  'storeTimeoutMs',
  'onStoreError',
  'onCorruptRecord',
  'onLostWrite',
  'cacheHeaders',
  'commitOnServerError',
  'serializer',
  'encryption',
  'logger',
  'debug',
  'now',
]);
const KNOWN_COOKIE = new Set(['name', 'path', 'domain', 'sameSite', 'httpOnly', 'secure', 'persistent', 'partitioned']);
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Validates options, applies defaults and precomputes; never mutates the input. */
export function resolveOptions(options: SessionOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw invalid(`unknown option "${name}"`);
  }
  const store = options.store;
  if (!store || typeof store.get !== 'function' || typeof store.set !== 'function') {
    throw invalid('options.store must be a store (see tessera/memory, tessera/redis, tessera/sql)');
  }

  const signed = options.signed ?? true;
  const given = typeof options.secrets === 'string' ? [options.secrets] : [...(options.secrets ?? [])];
  if (signed) {
    if ('secrets' in options && options.secrets === undefined) {
      throw invalid(
        'options.secrets is undefined: is the environment variable it comes from (e.g. SESSION_SECRET) set?',
      );
    }
    if (given.length === 0) {
      throw invalid('options.secrets is required to sign cookies (or set signed: false if IDs are signed elsewhere)');
    }
    given.forEach((secret, i) => {
      if (secret === undefined) {
        throw invalid(
          `options.secrets[${i}] is undefined: is the environment variable it comes from (e.g. SESSION_SECRET) set?`,
        );
      }
      if (typeof secret !== 'string' || secret.length < 32) {
        throw invalid(`options.secrets[${i}] must be a string of at least 32 characters`);
      }
    });
    given.forEach((secret, i) => {
      if (isWeakSecret(secret as string)) warnWeakSecret(i, options.logger);
    });
  }
  const secrets = given.filter((secret): secret is string => typeof secret === 'string');
  const tagBytes = positive('tagBytes', options.tagBytes, 32);
  if (!Number.isInteger(tagBytes) || tagBytes < 16 || tagBytes > 32) {
    throw invalid(`tagBytes must be a whole number from 16 (128 bits) to 32, got ${tagBytes}`);
  }

  const idleMs = positive('idleTimeoutSeconds', options.idleTimeoutSeconds, 900) * 1000;
  const absoluteMs =
    options.absoluteTimeoutSeconds === null
      ? null
      : positive('absoluteTimeoutSeconds', options.absoluteTimeoutSeconds, 7 * 86400) * 1000;
  const touchAfterMs = positive('touchAfterSeconds', options.touchAfterSeconds, idleMs / 2000) * 1000;
  if (touchAfterMs > idleMs) throw invalid('touchAfterSeconds cannot exceed idleTimeoutSeconds');

  const cookieIn = options.cookie ?? {};
  for (const name of Object.keys(cookieIn)) {
    if (!KNOWN_COOKIE.has(name)) throw invalid(`unknown cookie option "${name}"`);
  }
  const cookie = {
    name: cookieIn.name ?? 'tessera.sid',
    path: cookieIn.path ?? '/',
    domain: cookieIn.domain,
    sameSite: oneOf('cookie.sameSite', cookieIn.sameSite, ['lax', 'strict', 'none'], 'lax'),
    httpOnly: cookieIn.httpOnly ?? true,
    secure: cookieIn.secure ?? 'auto',
    persistent: cookieIn.persistent ?? true,
    partitioned: cookieIn.partitioned ?? false,
  } as const;
  if (!COOKIE_NAME.test(cookie.name)) throw invalid(`cookie.name "${cookie.name}" is not a valid cookie name`);
  if (cookie.secure !== 'auto' && typeof cookie.secure !== 'boolean') {
    throw invalid(`cookie.secure must be true, false or 'auto'`);
  }
  if (
    cookie.name.startsWith('__Host-') &&
    (cookie.path !== '/' || cookie.domain !== undefined || cookie.secure === false)
  ) {
    throw invalid('a __Host- cookie needs path "/", no domain, and secure not false');
  }
  if (cookie.name.startsWith('__Secure-') && cookie.secure === false) {
    throw invalid('a __Secure- cookie cannot have secure: false');
  }
  // Browsers drop SameSite=None cookies without Secure, and 'auto' leaves Secure off on plain HTTP
  // (a proxy that does not say it terminated TLS): the user would silently never be logged in.
  const prefixed = cookie.name.startsWith('__Host-') || cookie.name.startsWith('__Secure-');
  if (cookie.sameSite === 'none' && cookie.secure !== true && !prefixed) {
    throw invalid(
      `cookie.sameSite 'none' needs cookie.secure: true (got ${JSON.stringify(cookie.secure)}), or a cookie name ` +
        'starting with __Host- or __Secure-: browsers drop SameSite=None cookies that are not Secure',
    );
  }

  const serializer = options.serializer ?? JSON;
  if (typeof serializer.stringify !== 'function' || typeof serializer.parse !== 'function') {
    throw invalid('options.serializer needs stringify() and parse()');
  }
  const debug = options.debug ?? false;
  return Object.freeze({
    store,
    secrets,
    signed,
    tagBytes,
    idleMs,
    absoluteMs,
    touchAfterMs,
    flush: oneOf('flush', options.flush, ['end', 'immediate', 'manual'], 'end'),
    cookie: Object.freeze(cookie),
    maxSizeBytes: positive('maxSizeBytes', options.maxSizeBytes, 65536),
    storeTimeoutMs: positive('storeTimeoutMs', options.storeTimeoutMs, 1000),
    onStoreError: oneOf('onStoreError', options.onStoreError, ['fail', 'degrade'], 'fail'),
    onCorruptRecord: oneOf('onCorruptRecord', options.onCorruptRecord, ['throw', 'reset'], 'throw'),
    onLostWrite: oneOf('onLostWrite', options.onLostWrite, ['report', 'throw'], 'report'),
    cacheHeaders: flag('cacheHeaders', options.cacheHeaders, true),
    commitOnServerError: flag('commitOnServerError', options.commitOnServerError, false),
    serializer,
    encryptionKeys: [...(options.encryption?.keys ?? [])],
    logger: options.logger ?? (debug ? stderrLogger : undefined),
    debug,
    now: options.now ?? Date.now,
  });
}
