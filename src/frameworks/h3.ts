import type { IncomingMessage, ServerResponse } from 'node:http';
import type { H3Event, HTTPError as H3HTTPError, getRequestIP as h3GetRequestIP, toResponse as h3ToResponse } from 'h3';
import * as v from 'valibot';
import { check, func, type Same } from '../core/check.ts';
import { SessionEngine } from '../core/engine.ts';
import { isSessionError, peer, SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { commitHeader, sessionCacheHeaders, varyOn } from './internal/cache-headers.ts';
import { respondWithError } from './internal/hold.ts';
import { WebEventSession, withSessionHeader } from './internal/web.ts';
import { commitSession, holdWhenNeeded, sessionOf } from './node.ts';

/** What h3 2's events need from h3 (h3 1 has neither HTTPError nor toResponse). */
interface H3 {
  HTTPError: typeof H3HTTPError | undefined;
  toResponse: typeof h3ToResponse;
  getRequestIP: typeof h3GetRequestIP;
}

// A literal import(), which bundlers and Nitro's file tracing follow (a Nuxt build loading h3 by a
// name in a variable failed at start once shipped without the project's node_modules), made by the
// first h3 2 event; without h3 installed, the middleware fails with MISSING_DEPENDENCY naming it.
// This h3 need not be the one whose events arrive.
const h3 = peer<H3>(() => import('h3') as Promise<H3>, 'h3', 'h3');

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
    const message = 'no session on this event: add app.use(session(engine)) before the route';
    const HTTPError = h3.loaded?.HTTPError;
    if (HTTPError) throw new HTTPError({ status: 500, message: `[tessera] [h3] ${message}` });
    throw new SessionError('INVALID_STATE', message, { scope: 'h3' });
  }
  return current;
}

/** Options of the h3 middleware. */
export interface H3SessionOptions {
  /**
   * The client's IP address, which `setUser` records (see the engine's `devices`).
   * @default h3's `getRequestIP(event)` (the socket's peer; `X-Forwarded-For` is not trusted); on
   * h3 1, what that function answers there: `event.context.clientAddress`, else the socket's peer
   */
  clientIp?: (event: H3Event) => string | undefined;
}

const h3OptionsSchema = v.strictObject({ clientIp: v.optional(func<NonNullable<H3SessionOptions['clientIp']>>()) });
const same: Same<v.InferInput<typeof h3OptionsSchema>, H3SessionOptions> = true;
void same;

/**
 * The middleware {@link session} makes: h3 2 calls it with `next`, h3 1 (Nuxt 4, Nitro 2)
 * without, as one of its event handlers (`defineEventHandler(session(engine))`).
 */
export type H3SessionMiddleware = (event: H3Event, next?: () => unknown) => unknown;

/** What h3 1 gives a handler that this middleware uses (its `H3Event`, typed here without h3 1's types). */
interface NodeEvent {
  node: { req: IncomingMessage; res: ServerResponse };
  context: { session?: unknown; clientAddress?: string };
  _handled: boolean;
}

/**
 * h3 middleware: for h3 2 (`app.use(session(engine))`, Nitro 3's middleware) and for h3 1
 * (Nuxt 4 and Nitro 2: `export default defineEventHandler(session(engine))` in
 * `server/middleware/`). `event.context.session` is lazy: a request that never touches it costs
 * no store call.
 *
 * On h3 2, the session is committed after the route (and the middleware after this one)
 * answered, with the response's status known, and `Set-Cookie` is added to that response before
 * h3 sends it. When the route threw, the cookie goes in the error response's headers. Store
 * failures become `HTTPError` 503 with the `SessionError` as `cause`.
 *
 * On h3 1, a middleware cannot wrap the route: once the session says its commit will have work,
 * the event's `node:http` response is held, as `tessera/node` holds one, so the commit happens
 * before the head goes out, whatever writes it (a returned value, `sendRedirect()`, the error
 * handler). A commit that fails answers 503; a store failure in the route reaches h3 as an error
 * whose `status` (503) h3 keeps.
 *
 * ```ts
 * const app = new H3().use(session({ store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] }));
 * app.get('/', async (event) => `hello ${await event.context.session.get('user')}`);
 * ```
 */
export function session<D extends object = SessionData>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
  options: H3SessionOptions = {},
): H3SessionMiddleware {
  const engine = (
    engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions)
  ) as SessionEngine<object>;
  check(h3OptionsSchema, options, { scope: 'h3', label: 'session' });
  const { clientIp } = options;
  const vary = varyOn(engine);
  const onNode = (event: NodeEvent): undefined => {
    const { req, res } = event.node;
    const ip = clientIp
      ? () => clientIp(event as unknown as H3Event)
      : () => event.context.clientAddress ?? req.socket?.remoteAddress;
    event.context.session = sessionOf(engine, req, ip);
    const commit = (status: number) => {
      // h3 1 takes an event as answered once its response's head is out (`event.handled`); a held
      // response's is not yet, and h3 would answer it again (after a sendRedirect(), the empty
      // answer a preemptive router, Nitro's, gives a route that returned nothing). h3's own
      // sendStream() sets this field where no socket will ever send the head.
      event._handled = true;
      return commitSession(req, res, status);
    };
    holdWhenNeeded(req, res, commit, (error) => respondWithError(error, req, res), vary);
    return undefined;
  };
  const ipOf = clientIp ?? ((event: H3Event) => (h3.loaded as H3).getRequestIP(event));
  return async function tesseraSession(event, next) {
    if (typeof next !== 'function') return onNode(event as unknown as NodeEvent);
    const { toResponse } = h3.loaded ?? (await h3.load());
    const request = new WebEventSession(engine, event, event.req, ipOf);
    event.context.session = request.session as unknown as Session<SessionData>;
    let response: Response;
    try {
      // The route's value as the Response h3 will send: its status decides whether a 5xx skips the write.
      response = await toResponse(await next(), event);
    } catch (error) {
      const status = (error as { status?: unknown } | null)?.status;
      const header = await commit(engine, request, typeof status === 'number' ? status : 500);
      // h3 puts the event's error headers on the error response it makes from this error.
      if (header) {
        const headers = event.res.errHeaders;
        if (header[0] === 'Set-Cookie') headers.append(header[0], header[1]);
        else headers.set(header[0], header[1]);
        if (engine.options.cacheHeaders)
          for (const [name, value] of sessionCacheHeaders((h) => headers.get(h) ?? undefined, vary))
            headers.set(name, value);
      }
      throw toHttpError(error);
    }
    const header = await commit(engine, request, response.status);
    return withSessionHeader(response, header, engine.options.cacheHeaders, vary);
  };
}

async function commit(
  engine: SessionEngine<object>,
  request: WebEventSession<H3Event>,
  status: number,
): Promise<[string, string] | null> {
  try {
    request.status = status;
    return commitHeader(engine, await engine.commit(request.session, request));
  } catch (error) {
    throw toHttpError(error);
  }
}

/** For h3 2's events, whose h3 has `HTTPError`. */
function toHttpError(error: unknown): unknown {
  const HTTPError = h3.loaded?.HTTPError;
  if (!isSessionError(error) || error.status === 500 || !HTTPError) return error;
  // Given the SessionError as details, h3 takes its status and keeps it as `cause`; the message
  // (sent in h3's JSON error body) is a generic one, not the store's.
  return new HTTPError(error.status === 503 ? 'Service Unavailable' : 'Session conflict', error);
}
