import type {
  H3Event,
  HTTPError as H3HTTPError,
  getRequestIP as h3GetRequestIP,
  toResponse as h3ToResponse,
  Middleware,
} from 'h3';
import * as v from 'valibot';
import { check, func, type Same } from '../core/check.ts';
import { type RequestContext, SessionEngine } from '../core/engine.ts';
import { importOptional, isSessionError, missingDependency } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { ClientInfo, Session, SessionData } from '../core/session.ts';
import { commitHeader, sessionCacheHeaders, varyOn } from './internal/cache-headers.ts';
import { withSessionHeader } from './internal/web.ts';

// Loaded, not imported statically: without h3 installed, importing tessera/h3 fails with
// MISSING_DEPENDENCY naming it, instead of Node's raw ERR_MODULE_NOT_FOUND.
const { HTTPError, toResponse, getRequestIP } = await importOptional<{
  HTTPError: typeof H3HTTPError;
  toResponse: typeof h3ToResponse;
  getRequestIP: typeof h3GetRequestIP;
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

/** Options of the h3 middleware. */
export interface H3SessionOptions {
  /**
   * The client's IP address, which `setUser` records (see the engine's `devices`).
   * @default h3's `getRequestIP(event)` (the socket's peer; `X-Forwarded-For` is not trusted)
   */
  clientIp?: (event: H3Event) => string | undefined;
}

const h3OptionsSchema = v.strictObject({ clientIp: v.optional(func<NonNullable<H3SessionOptions['clientIp']>>()) });
const same: Same<v.InferInput<typeof h3OptionsSchema>, H3SessionOptions> = true;
void same;

/** An event's session and its facts for the engine, read lazily. */
class H3Request implements RequestContext, ClientInfo {
  readonly session: Session<object>;
  status = 0;
  readonly #event: H3Event;
  readonly #clientIp: (event: H3Event) => string | undefined;

  constructor(engine: SessionEngine<object>, event: H3Event, clientIp: (event: H3Event) => string | undefined) {
    this.#event = event;
    this.#clientIp = clientIp;
    this.session = engine.session(event.req.headers.get(engine.requestHeader), this);
  }

  get secure(): boolean {
    return this.#event.url.protocol === 'https:';
  }

  get userAgent(): string | undefined {
    return this.#event.req.headers.get('user-agent') ?? undefined;
  }

  get ip(): string | undefined {
    return this.#clientIp(this.#event);
  }
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
  options: H3SessionOptions = {},
): Middleware {
  const engine = (
    engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions)
  ) as SessionEngine<object>;
  check(h3OptionsSchema, options, { scope: 'h3', label: 'session' });
  const clientIp = options.clientIp ?? ((event: H3Event) => getRequestIP(event));
  const vary = varyOn(engine);
  return async function tesseraSession(event, next) {
    const request = new H3Request(engine, event, clientIp);
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
  request: H3Request,
  status: number,
): Promise<[string, string] | null> {
  try {
    request.status = status;
    return commitHeader(engine, await engine.commit(request.session, request));
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
