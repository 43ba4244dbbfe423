import type { Context, MiddlewareHandler } from 'hono';
import type { HTTPException as HonoHTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { SessionEngine } from '../core/engine.ts';
import { importOptional, isSessionError, missingDependency } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { sessionCacheHeaders } from './internal/cache-headers.ts';

// Loaded, not imported statically: without hono installed, importing tessera/hono then fails with
// MISSING_DEPENDENCY naming it, instead of Node's raw ERR_MODULE_NOT_FOUND for a subpath of it.
const { HTTPException } = await importOptional<{ HTTPException: typeof HonoHTTPException }>(
  'hono/http-exception',
  'hono',
).catch((error: unknown) => {
  throw isSessionError(error, 'MISSING_DEPENDENCY') ? missingDependency('hono', 'hono', error.cause) : error;
});

declare module 'hono' {
  interface ContextVariableMap {
    /** The visitor's session (Tessera). Loaded from the store on first use. */
    session: Session<SessionData>;
  }
}

/** Hono `Env` with the session variable, for apps typed with their own data: `new Hono<SessionEnv<MyData>>()`. */
export interface SessionEnv<D extends object = SessionData> {
  Variables: { session: Session<D> };
}

/**
 * Hono middleware. `c.get('session')` is lazy: a request that never touches it costs no store
 * call. The session is committed in `finally` after `await next()`, before the response leaves
 * the app, and `Set-Cookie` is appended to `c.res`. Store failures become
 * `HTTPException(503, { cause })`, also when the route itself hit the failing store and Hono's
 * default error handler would have answered 500.
 *
 * ```ts
 * app.use(session({ store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] }));
 * app.get('/', async (c) => c.text(`hello ${await c.get('session').get('user')}`));
 * ```
 */
export function session<D extends object = SessionData>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
): MiddlewareHandler<SessionEnv<D>> {
  const engine = engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions);
  return async function tesseraSession(c, next) {
    const session = engine.session(c.req.header('cookie'));
    c.set('session', session);
    try {
      await next();
    } finally {
      await persist(engine, session, c);
    }
    // Hono's compose already answered the route's error; a store failure must read 503, not 500.
    if (isSessionError(c.error) && c.error.status !== 500 && c.res.status === 500) throw toHttpException(c.error);
  };
}

/** Commits, then appends Set-Cookie to `c.res` (Hono copies immutable response headers for us). */
async function persist<D extends object>(engine: SessionEngine<D>, session: Session<D>, c: Context): Promise<void> {
  let setCookie: string | null;
  try {
    const secure = new URL(c.req.url).protocol === 'https:';
    ({ setCookie } = await engine.commit(session, { secure, status: c.res.status }));
  } catch (error) {
    throw toHttpException(error);
  }
  if (!setCookie) return;
  c.header('Set-Cookie', setCookie, { append: true });
  if (engine.options.cacheHeaders) {
    for (const [name, value] of sessionCacheHeaders((header) => c.res.headers.get(header) ?? undefined)) {
      c.header(name, value);
    }
  }
}

function toHttpException(error: unknown): unknown {
  if (!isSessionError(error)) return error;
  const message = error.status === 503 ? 'Service Unavailable' : 'Internal Server Error';
  return new HTTPException(error.status as ContentfulStatusCode, { message, cause: error });
}
