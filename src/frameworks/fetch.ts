import * as v from 'valibot';
import { check, func, type Same } from '../core/check.ts';
import { SessionEngine } from '../core/engine.ts';
import { isSessionError, SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { ClientInfo, Session, SessionData } from '../core/session.ts';
import { commitHeader, sessionCacheHeaders, varyOn } from './internal/cache-headers.ts';
import { inSlot, slotOf, toSlot } from './internal/slots.ts';
import { sessionErrorResponse, withSessionHeader } from './internal/web.ts';

/** Where a session handed out here keeps its engine, for `commitSession(session)`. */
const ENGINE = Symbol('tessera.engine');

/** A `Request`'s client, for `setUser`'s device record: its `User-Agent`, and an IP address if one is known. */
class RequestClient implements ClientInfo {
  readonly #request: Request;
  readonly ip: string | undefined;

  constructor(request: Request, ip: string | undefined) {
    this.#request = request;
    this.ip = ip;
  }

  get userAgent(): string | undefined {
    return this.#request.headers.get('user-agent') ?? undefined;
  }
}

/**
 * The session of a Web `Request` (Next.js route handlers and middleware, React Router/Remix
 * loaders and actions, Bun, Deno, Cloudflare Workers). Lazy: no store I/O until it is used.
 * Calling it again for the same request returns the same session. A `Request` carries no client
 * address: pass `ip` (e.g. Bun's `server.requestIP(request)?.address`) for `setUser` to record it.
 */
export function getSession<D extends object = SessionData>(
  engine: SessionEngine<D>,
  request: Request,
  ip?: string,
): Session<D> {
  // One slot per engine: two engines on one request each have their session.
  const slot = slotOf(engine);
  const known = inSlot<Session<D>>(request, slot);
  if (known) return known;
  const session = engine.session(request.headers.get(engine.requestHeader), new RequestClient(request, ip));
  toSlot(session, ENGINE, engine as SessionEngine<object>);
  return toSlot(request, slot, session);
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
  const engine = inSlot<SessionEngine<object>>(session, ENGINE);
  if (!engine) {
    throw new SessionError('INVALID_STATE', 'commitSession() takes a session from getSession(engine, request)', {
      scope: 'fetch',
    });
  }
  const header = await commitOf(engine, session as Session<object>, request, status);
  const headers = new Headers();
  if (!header) return headers;
  headers.append(header[0], header[1]);
  if (engine.options.cacheHeaders)
    for (const [name, value] of sessionCacheHeaders(() => undefined, varyOn(engine))) headers.set(name, value);
  return headers;
}

/** Commits; the header to send (see `commitHeader`), if any. */
async function commitOf(
  engine: SessionEngine<object>,
  session: Session<object>,
  request: Request | undefined,
  status: number | undefined,
): Promise<[string, string] | null> {
  const secure = request ? new URL(request.url).protocol === 'https:' : undefined;
  return commitHeader(engine, await engine.commit(session, { secure, status }));
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
  options: FetchSessionOptions<A> = {},
): (request: Request, ...args: A) => Promise<Response> {
  const engine = engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions);
  check(fetchOptionsSchema, options, { scope: 'fetch', label: 'session' });
  const { clientIp } = options;
  return async function tesseraSession(request, ...args) {
    const current = getSession(engine, request, clientIp?.(request, ...args));
    try {
      const response = await handler(request, current, ...args);
      const header = await commitOf(
        engine as SessionEngine<object>,
        current as Session<object>,
        request,
        response.status,
      );
      return withSessionHeader(response, header, engine.options.cacheHeaders, varyOn(engine as SessionEngine<object>));
    } catch (error) {
      if (!isSessionError(error)) throw error;
      return sessionErrorResponse(error.status);
    }
  };
}

/** Options of the Fetch {@link session} wrapper. */
export interface FetchSessionOptions<A extends unknown[] = []> {
  /**
   * The client's IP address, which `setUser` records (see the engine's `devices`): a `Request`
   * carries none. With Bun, `(request, server) => server.requestIP(request)?.address`; behind a
   * proxy you trust, its `X-Forwarded-For`.
   * @default none (no IP address is recorded)
   */
  clientIp?: (request: Request, ...args: A) => string | undefined;
}

const fetchOptionsSchema = v.strictObject({
  clientIp: v.optional(func<NonNullable<FetchSessionOptions['clientIp']>>()),
});
const same: Same<v.InferInput<typeof fetchOptionsSchema>, FetchSessionOptions> = true;
void same;
