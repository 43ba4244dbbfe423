import type { StandardSchemaV1 } from '@standard-schema/spec';
import * as v from 'valibot';
import {
  check,
  flag,
  func,
  having,
  invalid,
  logger,
  oneOf,
  positive,
  type Same,
  type Subject,
  text,
  whole,
} from './check.ts';
import { type EncryptionKey, encryptionSchema, type Serializer } from './codec.ts';
import { type IpMode, type Lifetime, lifetimeSchema, resolveLifetime, type SessionLifetime } from './meta.ts';
import { type Logger, stderrLogger } from './report.ts';
import type { Store } from './store.ts';

export type { Logger } from './report.ts';

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
  /** On every `set`/`delete`/`clear` (every change written at once). */
  | 'immediate'
  /** Only when the app calls `session.save()`. */
  | 'manual';

/**
 * Carrying the signed session value in a request header instead of a cookie (APIs, mobile
 * clients). No cookie is read or set; the value is signed as a cookie's would be.
 */
export interface HeaderTransport {
  /**
   * The request header that carries the value: `'authorization'` reads `Authorization: Bearer
   * <value>`; any other name (e.g. `'x-session'`) carries the bare value.
   */
  header: string;
  /**
   * The response header that hands the client a new value (a session created or regenerated),
   * and an empty one when the session ended (destroyed, expired, or the value was refused): the
   * client stores the value it gets and drops it on an empty one. Browsers reading it from
   * another origin need it listed in `Access-Control-Expose-Headers`.
   * @default 'Set-Auth-Token' for `'authorization'`, otherwise the request header's name
   */
  responseHeader?: string;
}

/** What the per-user index records about the device of a session when it is tied to a user. */
export interface DeviceOptions {
  /**
   * Keep the `User-Agent` (the first 256 characters).
   * @default true
   */
  userAgent?: boolean;
  /**
   * Keep the client's IP address (as the adapter reports it: Express's `req.ip` follows its
   * `trust proxy` setting): `'full'`, `'truncate'` (IPv4 to its /24, IPv6 to its /48), `'hash'`
   * (a keyed HMAC-SHA256 under the first secret: equal addresses are recognisable, not readable),
   * or `'off'`.
   * @default 'truncate'
   */
  ip?: IpMode;
}

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
   * Bytes of the HMAC-SHA256 tag kept in the cookie.
   * 16 (128 bits) is the minimum accepted.
   * @default 32
   */
  tagBytes?: number;
  /** Idle timeout: a session unused this long expires @default 900 */
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
  /**
   * The lifetime `session.rememberMe(true)` gives a session (at login, "remember me" ticked);
   * `rememberMe(false)` gives the engine's timeouts with a browser-session cookie.
   * @default { idleTimeoutSeconds: 2592000, absoluteTimeoutSeconds: 2592000, persistent: true } (30 days)
   */
  rememberMe?: SessionLifetime;
  /** What `setUser` records about the device, for `listUserSessions`. @default { userAgent: true, ip: 'truncate' } */
  devices?: DeviceOptions;
  /**
   * The most live sessions one user may have (needs a store with a per-user index); see
   * `onMaxSessions` for what a login beyond it does. Checked at each login against the index,
   * not under a lock: two logins of one user at the same moment may both pass. @default none
   */
  maxSessionsPerUser?: number;
  /**
   * A session tied to a user who already has `maxSessionsPerUser`: `'end-oldest'` stores it and
   * then destroys that user's oldest sessions (by creation) down to the limit; `'refuse'` makes
   * `setUser` throw `TOO_MANY_SESSIONS` (409) and changes nothing.
   * @default 'end-oldest'
   */
  onMaxSessions?: 'end-oldest' | 'refuse';
  /**
   * Where the signed session value travels: `'cookie'`, or a request header (see
   * {@link HeaderTransport}). Every adapter follows it.
   * @default 'cookie'
   */
  transport?: 'cookie' | HeaderTransport;
  /**
   * A Standard Schema (zod, valibot, arktype... any with the `~standard` property) for the
   * session data object as a whole (keys a new session lacks must be optional). It checks a
   * stored record on load (a failure is a `CORRUPT_RECORD`, handled by `onCorruptRecord`), every
   * `set`, `delete` and `clear` (a failure is an `INVALID_DATA` error and changes nothing), and,
   * at commit, data changed in place (the `data` view, objects read with `get`). Its output is
   * the data the app sees. Flash messages are not part of it. Sync or async schemas alike.
   * @default none
   */
  schema?: StandardSchemaV1;
}

/** Where the session value travels, resolved. */
export type ResolvedTransport =
  | { readonly kind: 'cookie'; readonly requestHeader: 'cookie' }
  | {
      readonly kind: 'header';
      /** The request header, lower case. */
      readonly requestHeader: string;
      /** `Authorization: Bearer <value>`. */
      readonly bearer: boolean;
      readonly responseHeader: string;
    };

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
  /** The lifetime of a session that was given none of its own. */
  readonly lifetime: Lifetime;
  /** The lifetime `rememberMe(true)` gives. */
  readonly rememberMe: Lifetime;
  /** `touchAfterMs / idleMs`: a session's own lifetime gets the same ratio of throttle to idle timeout. */
  readonly touchRatio: number;
  readonly devices: Readonly<Required<DeviceOptions>>;
  readonly maxSessionsPerUser: number | null;
  readonly onMaxSessions: 'end-oldest' | 'refuse';
  readonly transport: ResolvedTransport;
  readonly schema: StandardSchemaV1 | null;
}

const SUBJECT: Subject = { scope: 'engine', label: 'SessionEngine' };
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header name is an HTTP token, as a cookie name is. */
const HEADER_NAME = COOKIE_NAME;

/** {@link CookieOptions} as a schema. */
export const cookieSchema = v.strictObject({
  name: v.optional(
    v.pipe(text(), v.regex(COOKIE_NAME, "must be a valid cookie name (letters, digits, !#$%&'*+-.^_`|~)")),
  ),
  path: v.optional(text()),
  domain: v.optional(text()),
  sameSite: v.optional(oneOf(['lax', 'strict', 'none'])),
  httpOnly: v.optional(flag()),
  secure: v.optional(v.union([flag(), v.literal('auto')], "must be true, false or 'auto'")),
  persistent: v.optional(flag()),
  partitioned: v.optional(flag()),
});
const cookieSame: Same<v.InferInput<typeof cookieSchema>, CookieOptions> = true;

/**
 * The engine options a configuration file can hold (all but the store and the function- or
 * object-valued ones), as a schema; {@link sessionSchema} adds those.
 */
export const sessionFileSchema = v.strictObject({
  secrets: v.optional(
    v.union([v.string(), v.array(v.optional(v.string('must be a string')))], 'must be a string or a list of strings'),
  ),
  signed: v.optional(flag()),
  tagBytes: v.optional(whole16to32()),
  idleTimeoutSeconds: v.optional(positive()),
  absoluteTimeoutSeconds: v.optional(v.nullable(positive('a positive number (or null for none)'))),
  touchAfterSeconds: v.optional(positive()),
  flush: v.optional(oneOf(['end', 'immediate', 'manual'])),
  cookie: v.optional(cookieSchema),
  maxSizeBytes: v.optional(positive()),
  storeTimeoutMs: v.optional(positive()),
  onStoreError: v.optional(oneOf(['fail', 'degrade'])),
  onCorruptRecord: v.optional(oneOf(['throw', 'reset'])),
  onLostWrite: v.optional(oneOf(['report', 'throw'])),
  cacheHeaders: v.optional(flag()),
  commitOnServerError: v.optional(flag()),
  debug: v.optional(flag()),
  rememberMe: v.optional(lifetimeSchema),
  devices: v.optional(
    v.strictObject({ userAgent: v.optional(flag()), ip: v.optional(oneOf(['full', 'truncate', 'hash', 'off'])) }),
  ),
  maxSessionsPerUser: v.optional(whole(1)),
  onMaxSessions: v.optional(oneOf(['end-oldest', 'refuse'])),
  transport: v.optional(
    v.union(
      [v.literal('cookie'), v.strictObject({ header: headerName(), responseHeader: v.optional(headerName()) })],
      "must be 'cookie' or { header, responseHeader? }",
    ),
  ),
});

function headerName() {
  return v.pipe(text(), v.regex(HEADER_NAME, "must be a valid header name (letters, digits, !#$%&'*+-.^_`|~)"));
}

function whole16to32() {
  const rule = 'must be a whole number of bytes from 16 (128 bits) to 32';
  return v.pipe(v.number(rule), v.integer(rule), v.minValue(16, rule), v.maxValue(32, rule));
}

/** {@link SessionOptions} as a schema. */
export const sessionSchema = v.strictObject({
  ...sessionFileSchema.entries,
  store: having<Store>(['get', 'set', 'destroy', 'close'], 'a store: see tessera/memory, tessera/redis, tessera/sql'),
  serializer: v.optional(having<Serializer>(['stringify', 'parse'], 'JSON, or an object like it')),
  encryption: v.optional(encryptionSchema),
  logger: v.optional(logger()),
  now: v.optional(func<() => number>()),
  schema: v.optional(
    v.custom<StandardSchemaV1>((value) => {
      const standard = (value as { '~standard'?: { version?: unknown; validate?: unknown } } | null)?.['~standard'];
      return standard?.version === 1 && typeof standard.validate === 'function';
    }, 'must be a Standard Schema (an object whose ~standard property has version 1 and validate)'),
  ),
});
const same: Same<v.InferInput<typeof sessionSchema>, SessionOptions> = true;
void [cookieSame, same];

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
  // Node, Bun and Deno have process warnings; Workers without nodejs_compat have no process.
  const { process } = globalThis as { process?: { emitWarning?: (text: string, options: object) => void } };
  if (process?.emitWarning) process.emitWarning(`[tessera] ${message}`, { code: 'TESSERA_WEAK_SECRET' });
  else console.warn(`[tessera] ${message}`);
}

/** Validates options, applies defaults and precomputes; never mutates the input. */
export function resolveOptions(options: SessionOptions): ResolvedOptions {
  const o = check(sessionSchema, options, { ...SUBJECT, unset: { secrets: 'SESSION_SECRET' } });
  const signed = o.signed ?? true;
  const given = typeof o.secrets === 'string' ? [o.secrets] : [...(o.secrets ?? [])];
  if (signed) {
    if (given.length === 0) {
      throw invalid(
        SUBJECT,
        'secrets',
        'is required to sign cookies (or set signed: false if IDs are signed elsewhere)',
      );
    }
    given.forEach((secret, i) => {
      if (secret === undefined) {
        throw invalid(
          SUBJECT,
          ['secrets', i],
          'is undefined: is the environment variable it comes from (e.g. SESSION_SECRET) set?',
        );
      }
      if (secret.length < 32) {
        throw invalid(SUBJECT, ['secrets', i], `must be at least 32 characters, got ${secret.length}`);
      }
    });
    given.forEach((secret, i) => {
      if (isWeakSecret(secret as string)) warnWeakSecret(i, o.logger);
    });
  }
  const secrets = given.filter((secret): secret is string => typeof secret === 'string');
  const idleMs = (o.idleTimeoutSeconds ?? 900) * 1000;
  const absoluteMs = o.absoluteTimeoutSeconds === null ? null : (o.absoluteTimeoutSeconds ?? 7 * 86400) * 1000;
  const touchAfterMs = (o.touchAfterSeconds ?? idleMs / 2000) * 1000;
  if (touchAfterMs > idleMs) throw invalid(SUBJECT, 'touchAfterSeconds', 'cannot exceed idleTimeoutSeconds');

  const c = o.cookie ?? {};
  const cookie = {
    name: c.name ?? 'tessera.sid',
    path: c.path ?? '/',
    domain: c.domain,
    sameSite: c.sameSite ?? 'lax',
    httpOnly: c.httpOnly ?? true,
    secure: c.secure ?? 'auto',
    persistent: c.persistent ?? true,
    partitioned: c.partitioned ?? false,
  } as const;
  const host = cookie.name.startsWith('__Host-');
  if (host && (cookie.path !== '/' || cookie.domain !== undefined || cookie.secure === false)) {
    throw invalid(SUBJECT, 'cookie', 'a __Host- cookie needs path "/", no domain, and secure not false');
  }
  if (cookie.name.startsWith('__Secure-') && cookie.secure === false) {
    throw invalid(SUBJECT, 'cookie', 'a __Secure- cookie cannot have secure: false');
  }
  // Browsers drop SameSite=None cookies without Secure, and 'auto' leaves Secure off on plain HTTP
  // (a proxy that does not say it terminated TLS): the user would silently never be logged in.
  const prefixed = host || cookie.name.startsWith('__Secure-');
  if (cookie.sameSite === 'none' && cookie.secure !== true && !prefixed) {
    throw invalid(
      SUBJECT,
      'cookie.sameSite',
      `'none' needs cookie.secure: true (got ${JSON.stringify(cookie.secure)}), or a cookie name ` +
        'starting with __Host- or __Secure-: browsers drop SameSite=None cookies that are not Secure',
    );
  }
  const debug = o.debug ?? false;
  const touchRatio = touchAfterMs / idleMs;
  const lifetime: Lifetime = Object.freeze({ idleMs, absoluteMs, touchAfterMs, persistent: cookie.persistent });
  const rememberMe = Object.freeze(
    resolveLifetime(
      { idleMs: 30 * 86400_000, absoluteMs: 30 * 86400_000, touchAfterMs: 0, persistent: true },
      o.rememberMe ?? {},
      touchRatio,
    ),
  );
  return Object.freeze({
    store: o.store,
    secrets,
    signed,
    tagBytes: o.tagBytes ?? 32,
    idleMs,
    absoluteMs,
    touchAfterMs,
    flush: o.flush ?? 'end',
    cookie: Object.freeze(cookie),
    maxSizeBytes: o.maxSizeBytes ?? 65536,
    storeTimeoutMs: o.storeTimeoutMs ?? 1000,
    onStoreError: o.onStoreError ?? 'fail',
    onCorruptRecord: o.onCorruptRecord ?? 'throw',
    onLostWrite: o.onLostWrite ?? 'report',
    cacheHeaders: o.cacheHeaders ?? true,
    commitOnServerError: o.commitOnServerError ?? false,
    serializer: o.serializer ?? JSON,
    encryptionKeys: [...(o.encryption?.keys ?? [])],
    logger: o.logger ?? (debug ? stderrLogger() : undefined),
    debug,
    now: o.now ?? Date.now,
    lifetime,
    rememberMe,
    touchRatio,
    devices: Object.freeze({ userAgent: o.devices?.userAgent ?? true, ip: o.devices?.ip ?? 'truncate' }),
    maxSessionsPerUser: o.maxSessionsPerUser ?? null,
    onMaxSessions: o.onMaxSessions ?? 'end-oldest',
    transport: resolveTransport(o.transport),
    schema: o.schema ?? null,
  });
}

function resolveTransport(given: SessionOptions['transport']): ResolvedTransport {
  if (given === undefined || given === 'cookie') return Object.freeze({ kind: 'cookie', requestHeader: 'cookie' });
  const requestHeader = given.header.toLowerCase();
  if (requestHeader === 'cookie' || requestHeader === 'set-cookie') {
    throw invalid(SUBJECT, ['transport', 'header'], "cannot be the cookie header (use transport: 'cookie')");
  }
  const bearer = requestHeader === 'authorization';
  return Object.freeze({
    kind: 'header',
    requestHeader,
    bearer,
    responseHeader: given.responseHeader ?? (bearer ? 'Set-Auth-Token' : given.header),
  });
}
