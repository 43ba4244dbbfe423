import { SessionEngine } from '../core/engine.ts';
import { isSessionError, SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { sessionCacheHeaders } from './internal/cache-headers.ts';
import { sessionErrorResponse, withCookies } from './internal/web.ts';

const sessions = new WeakMap<object, WeakMap<Request, Session<object>>>();
/** The engine of each session handed out here, for `commitSession(session)`. */
const engines = new WeakMap<Session<object>, SessionEngine<object>>();

/**
 * The session of a Web `Request` (Next.js route handlers and middleware, React Router/Remix
 * loaders and actions, Bun, Deno, Cloudflare Workers). Lazy: no store I/O until it is used.
 * Calling it again for the same request returns the same session.
 */
export function getSession<D extends object = SessionData>(engine: SessionEngine<D>, request: Request): Session<D> {
  let byRequest = sessions.get(engine);
  if (!byRequest) {
    byRequest = new WeakMap();
    sessions.set(engine, byRequest);
  }
  let session = byRequest.get(request) as Session<D> | undefined;
  if (!session) {
    session = engine.session(request.headers.get('cookie'));
    byRequest.set(request, session as Session<object>);
    engines.set(session as Session<object>, engine as SessionEngine<object>);
  }
  return session;
}

/**
 * Writes what the request changed and returns the headers to send: `Set-Cookie` when the
 * cookie changes (with `Cache-Control: private, no-store` and `Vary: Cookie`, see
 * `cacheHeaders`), none otherwise. Pass `request` so that `Secure` follows its URL's protocol,
 * and the `status` the response will have when it is not a success (a 5xx skips the write, see
 * `commitOnServerError`).
 *
 * ```ts
 * return redirect('/', { headers: await commitSession(session, request) });
 * ```
 */
export async function commitSession<D extends object = SessionData>(
  session: Session<D>,
  request?: Request,
  status?: number,
): Promise<Headers> {
  const engine = engines.get(session as Session<object>);
  if (!engine) {
    throw new SessionError('INVALID_STATE', 'commitSession() takes a session from getSession(engine, request)', {
      scope: 'fetch',
    });
  }
  const secure = request ? new URL(request.url).protocol === 'https:' : undefined;
  const { setCookie } = await engine.commit(session, { secure, status });
  const headers = new Headers();
  if (!setCookie) return headers;
  headers.append('Set-Cookie', setCookie);
  if (engine.options.cacheHeaders)
    for (const [name, value] of sessionCacheHeaders(() => undefined)) headers.set(name, value);
  return headers;
}

/** A Web handler that receives the session after the request (and any runtime arguments after it). */
export type SessionFetchHandler<D extends object, A extends unknown[]> = (
  request: Request,
  session: Session<D>,
  ...args: A
) => Response | Promise<Response>;

/**
 * Wraps a `(request) => Response` handler: the session is committed after the handler returns
 * and before the response is handed back, with `Set-Cookie` added (headers of immutable
 * responses such as `Response.redirect()` are copied first). Store failures answer 503.
 * Runtime arguments after the request (Next.js `context`, Bun's `server`) are passed through.
 *
 * ```ts
 * export const POST = session(engine, async (request, session) => {
 *   await session.regenerate();
 *   await session.set('user', 'alice');
 *   return Response.redirect(new URL('/', request.url), 303);
 * });
 * ```
 */
export function session<D extends object = SessionData, A extends unknown[] = []>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
  handler: SessionFetchHandler<D, A>,
): (request: Request, ...args: A) => Promise<Response> {
  const engine = engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions);
  return async function tesseraSession(request, ...args) {
    const current = getSession(engine, request);
    try {
      const response = await handler(request, current, ...args);
      const cookies = (await commitSession(current, request, response.status)).getSetCookie();
      return withCookies(response, cookies, engine.options.cacheHeaders);
    } catch (error) {
      if (!isSessionError(error)) throw error;
      return sessionErrorResponse(error.status);
    }
  };
}
