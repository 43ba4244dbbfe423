import type { H3Event, HTTPError as H3HTTPError, toResponse as h3ToResponse, Middleware } from 'h3';
import { SessionEngine } from '../core/engine.ts';
import { importOptional, isSessionError, missingDependency } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { sessionCacheHeaders } from './internal/cache-headers.ts';
import { withCookies } from './internal/web.ts';

// Loaded, not imported statically: without h3 installed, importing tessera/h3 fails with
// MISSING_DEPENDENCY naming it, instead of Node's raw ERR_MODULE_NOT_FOUND.
const { HTTPError, toResponse } = await importOptional<{
  HTTPError: typeof H3HTTPError;
  toResponse: typeof h3ToResponse;
}>('h3', 'h3').catch((error: unknown) => {
  throw isSessionError(error, 'MISSING_DEPENDENCY') ? missingDependency('h3', 'h3', error.cause) : error;
});

declare module 'h3' {
  interface H3EventContext {
    /** The visitor's session (Tessera). Loaded from the store on first use. */
    session: Session<SessionData>;
  }
}

/**
 * The session of an h3 event, for handlers of an app typed with its own data (otherwise
 * `event.context.session` is typed by `SessionData`). Throws `INVALID_STATE` when the
 * `session()` middleware did not run for this event.
 */
export function useSession<D extends object = SessionData>(event: H3Event): Session<D> {
  const current = (event.context as { session?: Session<D> }).session;
  if (!current) {
    throw new HTTPError({
      status: 500,
      message: '[tessera] [h3] no session on this event: add app.use(session(engine)) before the route',
    });
  }
  return current;
}

/**
 * h3 v2 middleware (also Nuxt's and Nitro's server middleware). `event.context.session` is lazy:
 * a request that never touches it costs no store call. The session is committed after the route
 * (and the middleware after this one) answered, with the response's status known, and
 * `Set-Cookie` is added to that response before h3 sends it. When the route threw, the cookie
 * goes in the error response's headers. Store failures become `HTTPError` 503 with the
 * `SessionError` as `cause`.
 *
 * ```ts
 * const app = new H3().use(session({ store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] }));
 * app.get('/', async (event) => `hello ${await event.context.session.get('user')}`);
 * ```
 */
export function session<D extends object = SessionData>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
): Middleware {
  const engine = engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions);
  return async function tesseraSession(event, next) {
    const current = engine.session(event.req.headers.get('cookie'));
    event.context.session = current as unknown as Session<SessionData>;
    const secure = event.url.protocol === 'https:';
    let response: Response;
    try {
      // The route's value as the Response h3 will send: its status decides whether a 5xx skips the write.
      response = await toResponse(await next(), event);
    } catch (error) {
      const status = (error as { status?: unknown } | null)?.status;
      const setCookie = await commit(engine, current, secure, typeof status === 'number' ? status : 500);
      // h3 puts the event's error headers on the error response it makes from this error.
      if (setCookie) {
        const headers = event.res.errHeaders;
        headers.append('set-cookie', setCookie);
        if (engine.options.cacheHeaders)
          for (const [name, value] of sessionCacheHeaders((header) => headers.get(header) ?? undefined))
            headers.set(name, value);
      }
      throw toHttpError(error);
    }
    const setCookie = await commit(engine, current, secure, response.status);
    return setCookie ? withCookies(response, [setCookie], engine.options.cacheHeaders) : response;
  };
}

async function commit<D extends object>(
  engine: SessionEngine<D>,
  current: Session<D>,
  secure: boolean,
  status: number,
): Promise<string | null> {
  try {
    return (await engine.commit(current, { secure, status })).setCookie;
  } catch (error) {
    throw toHttpError(error);
  }
}

function toHttpError(error: unknown): unknown {
  if (!isSessionError(error) || error.status === 500) return error;
  // Given the SessionError as details, h3 takes its status and keeps it as `cause`; the message
  // (sent in h3's JSON error body) is a generic one, not the store's.
  return new HTTPError(error.status === 503 ? 'Service Unavailable' : 'Session conflict', error);
}
