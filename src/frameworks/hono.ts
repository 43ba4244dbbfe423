import type { Context, MiddlewareHandler } from 'hono';
import type { HTTPException as HonoHTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import * as v from 'valibot';
import { check, func, type Same } from '../core/check.ts';
import { type RequestContext, SessionEngine } from '../core/engine.ts';
import { isSessionError, peer } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { ClientInfo, Session, SessionData } from '../core/session.ts';
import { commitHeader, sessionCacheHeaders, varyOn } from './internal/cache-headers.ts';

// A literal import(), which bundlers follow, made by the first request; without hono installed,
// the middleware fails with MISSING_DEPENDENCY naming it.
const hono = peer<{ HTTPException: typeof HonoHTTPException }>(() => import('hono/http-exception'), 'hono', 'hono');

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

/** Options of the Hono middleware. */
export interface HonoSessionOptions {
  /**
   * The client's IP address, which `setUser` records (see the engine's `devices`). Hono has no
   * portable one: on Node, `(c) => getConnInfo(c).remote.address` with `getConnInfo` from
   * `@hono/node-server/conninfo` (each runtime has its own helper).
   * @default none (no IP address is recorded)
   */
  clientIp?: (c: Context) => string | undefined;
}

const honoOptionsSchema = v.strictObject({ clientIp: v.optional(func<NonNullable<HonoSessionOptions['clientIp']>>()) });
const same: Same<v.InferInput<typeof honoOptionsSchema>, HonoSessionOptions> = true;
void same;

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
  options: HonoSessionOptions = {},
): MiddlewareHandler<SessionEnv<D>> {
  const engine = engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions);
  const { clientIp } = check(honoOptionsSchema, options, { scope: 'hono', label: 'session' });
  return async function tesseraSession(c, next) {
    if (hono.loaded === undefined) await hono.load();
    const request = new HonoRequest(engine as SessionEngine<object>, c, clientIp);
    const session = request.session as Session<D>;
    c.set('session', session);
    try {
      await next();
    } finally {
      await persist(engine as SessionEngine<object>, request, c);
    }
    // Hono's compose already answered the route's error; a store failure must read 503, not 500.
    if (isSessionError(c.error) && c.error.status !== 500 && c.res.status === 500) throw toHttpException(c.error);
  };
}

/** A request's session and its facts for the engine, read lazily. */
class HonoRequest implements RequestContext, ClientInfo {
  readonly session: Session<object>;
  status = 0;
  readonly #c: Context;
  readonly #clientIp: HonoSessionOptions['clientIp'];

  constructor(engine: SessionEngine<object>, c: Context, clientIp: HonoSessionOptions['clientIp']) {
    this.#c = c;
    this.#clientIp = clientIp;
    this.session = engine.session(c.req.header(engine.requestHeader), this);
  }

  get secure(): boolean {
    return new URL(this.#c.req.url).protocol === 'https:';
  }

  get userAgent(): string | undefined {
    return this.#c.req.header('user-agent');
  }

  get ip(): string | undefined {
    return this.#clientIp?.(this.#c);
  }
}

/** Commits, then appends the session's header to `c.res` (Hono copies immutable response headers for us). */
async function persist(engine: SessionEngine<object>, request: HonoRequest, c: Context): Promise<void> {
  let header: [string, string] | null;
  try {
    request.status = c.res.status;
    header = commitHeader(engine, await engine.commit(request.session, request));
  } catch (error) {
    throw toHttpException(error);
  }
  if (!header) return;
  c.header(header[0], header[1], { append: true });
  if (engine.options.cacheHeaders) {
    const vary = varyOn(engine);
    for (const [name, value] of sessionCacheHeaders((h) => c.res.headers.get(h) ?? undefined, vary)) {
      c.header(name, value);
    }
  }
}

function toHttpException(error: unknown): unknown {
  if (!isSessionError(error)) return error;
  const message = error.status === 503 ? 'Service Unavailable' : 'Internal Server Error';
  // Loaded: the middleware's first step.
  const { HTTPException } = hono.loaded as { HTTPException: typeof HonoHTTPException };
  return new HTTPException(error.status as ContentfulStatusCode, { message, cause: error });
}
