/**
 * Stable error codes. Tests and adapters match on these, never on message text.
 *
 * | code | meaning | HTTP status an adapter answers |
 * |---|---|---|
 * | `STORE_UNAVAILABLE` | the store failed (connection refused, server error) | 503 |
 * | `STORE_TIMEOUT` | a store call took longer than `storeTimeoutMs` | 503 |
 * | `CORRUPT_RECORD` | a stored record could not be decoded | 500 |
 * | `SESSION_TOO_LARGE` | the session would exceed `maxSizeBytes` | 500 |
 * | `INVALID_OPTIONS` | options or a config file are wrong | 500 |
 * | `MISSING_DEPENDENCY` | an optional peer dependency is not installed | 500 |
 * | `SESSION_DESTROYED` | the session was used after `destroy()` in the same request | 500 |
 * | `INVALID_STATE` | an API was called at the wrong time (e.g. `data` before `load()`) | 500 |
 * | `INVALID_KEY` | a session key that is never allowed (`__proto__`, `constructor`, `prototype`) | 500 |
 * | `SESSION_COMMITTED` | the session was changed after it was committed (the response had started) | 500 |
 * | `SESSION_MOVED` | a concurrent `regenerate()` gave the session a new ID; this request's changes were refused | 409 |
 * | `SESSION_LOST` | the record was destroyed meanwhile, and `onLostWrite` is `'throw'` | 409 |
 * | `NOT_SUPPORTED` | a feature needs a store capability the store lacks (e.g. a per-user index) | 501 |
 * | `STORE_CLOSED` | the store was used after `close()` (a request during shutdown) | 503 |
 * | `CONFLICT` | a compare-and-set write lost to other writers more times than allowed | 503 |
 * | `TOO_MANY_SESSIONS` | `setUser` for a user at `maxSessionsPerUser`, with `onMaxSessions: 'refuse'` | 409 |
 * | `INVALID_DATA` | a value the engine's `schema` refuses was set (a stored one is a `CORRUPT_RECORD`) | 500 |
 */
export type SessionErrorCode =
  | 'STORE_UNAVAILABLE'
  | 'STORE_TIMEOUT'
  | 'CORRUPT_RECORD'
  | 'SESSION_TOO_LARGE'
  | 'INVALID_OPTIONS'
  | 'MISSING_DEPENDENCY'
  | 'SESSION_DESTROYED'
  | 'INVALID_STATE'
  | 'INVALID_KEY'
  | 'SESSION_COMMITTED'
  | 'SESSION_MOVED'
  | 'SESSION_LOST'
  | 'NOT_SUPPORTED'
  | 'STORE_CLOSED'
  | 'CONFLICT'
  | 'TOO_MANY_SESSIONS'
  | 'INVALID_DATA';

const STATUS: Record<SessionErrorCode, number> = {
  STORE_UNAVAILABLE: 503,
  STORE_TIMEOUT: 503,
  CORRUPT_RECORD: 500,
  SESSION_TOO_LARGE: 500,
  INVALID_OPTIONS: 500,
  MISSING_DEPENDENCY: 500,
  SESSION_DESTROYED: 500,
  INVALID_STATE: 500,
  INVALID_KEY: 500,
  SESSION_COMMITTED: 500,
  SESSION_MOVED: 409,
  SESSION_LOST: 409,
  NOT_SUPPORTED: 501,
  STORE_CLOSED: 503,
  CONFLICT: 503,
  TOO_MANY_SESSIONS: 409,
  INVALID_DATA: 500,
};

export interface SessionErrorOptions {
  /** The underlying error, kept as `cause`. */
  cause?: unknown;
  /** The component that raised it (`redis`, `sql`, `express`...); shown as `[tessera] [scope]`. */
  scope?: string;
}

/**
 * The one error class Tessera throws. `code` is stable; `status` is the HTTP status an adapter
 * should answer with; the message starts with `[tessera]` and the scope.
 */
export class SessionError extends Error {
  override readonly name = 'SessionError';
  readonly code: SessionErrorCode;
  readonly status: number;
  readonly scope: string | undefined;

  constructor(code: SessionErrorCode, message: string, options: SessionErrorOptions = {}) {
    const prefix = options.scope ? `[tessera] [${options.scope}] ` : '[tessera] ';
    super(prefix + message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = STATUS[code];
    this.scope = options.scope;
  }
}

export function isSessionError(value: unknown, code?: SessionErrorCode): value is SessionError {
  return value instanceof SessionError && (code === undefined || value.code === code);
}

/** Wraps anything a store threw into a `STORE_UNAVAILABLE` error, keeping Tessera's own errors. */
export function toStoreError(error: unknown, scope: string, action: string): SessionError {
  if (error instanceof SessionError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new SessionError('STORE_UNAVAILABLE', `${action} failed: ${detail}`, { cause: error, scope });
}

/** The error for a missing optional peer dependency, naming the package to install. */
export function missingDependency(pkg: string, scope: string, cause?: unknown): SessionError {
  return new SessionError(
    'MISSING_DEPENDENCY',
    `the optional dependency "${pkg}" is not installed; run: npm install ${pkg}`,
    { cause, scope },
  );
}

/** Loads an optional peer dependency, failing with a message that names the package to install. */
export function importOptional<T>(pkg: string, scope: string): Promise<T> {
  return loadOptional(() => import(pkg) as Promise<T>, pkg, scope);
}

/**
 * {@link importOptional} through a loader that names the package literally (`() => import('hono')`),
 * which bundlers and file tracers follow, for a peer that everyone importing the module has (an
 * adapter's framework). A peer some users of the module lack stays behind `importOptional`: a
 * literal import of a package that is not installed fails their bundler's build.
 */
export async function loadOptional<T>(load: () => Promise<T>, pkg: string, scope: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: string } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw missingDependency(pkg, scope, error);
    throw error;
  }
}

/** An optional peer loaded on first use: `loaded` once `load()` has settled, the same promise to every caller. */
export interface Peer<T> {
  readonly loaded: T | undefined;
  load(): Promise<T>;
}

/**
 * A framework peer an adapter loads when it first needs it, through {@link loadOptional}, instead
 * of awaiting it at the top of its module: a module that awaits at its top cannot be require()d, so
 * CommonJS apps could not load the adapter (see ARCHITECTURE.md).
 */
export function peer<T>(load: () => Promise<T>, pkg: string, scope: string): Peer<T> {
  let loaded: T | undefined;
  let loading: Promise<T> | undefined;
  return {
    get loaded() {
      return loaded;
    },
    load() {
      loading ??= loadOptional(load, pkg, scope).then((module) => {
        loaded = module;
        return module;
      });
      return loading;
    },
  };
}
