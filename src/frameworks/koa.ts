import type { Context, DefaultContext, DefaultState, Middleware } from 'koa';
import { type RequestContext, SessionEngine } from '../core/engine.ts';
import type { SessionOptions } from '../core/options.ts';
import type { ClientInfo, Session, SessionData } from '../core/session.ts';
import { commitHeader, headerOf, headerText, sessionCacheHeaders, varyOn } from './internal/cache-headers.ts';

declare module 'koa' {
  interface ExtendableContext {
    /** The visitor's session (Tessera). Loaded from the store on first use. */
    session: Session<SessionData>;
  }
}

/**
 * Koa middleware. `ctx.session` is lazy: a request that never touches it costs no store call.
 * The session is committed after `await next()`, before Koa writes the response, and
 * `Set-Cookie` is appended; when downstream threw, the cookie goes in the error's `headers`,
 * which Koa's error response sends. Store failures are thrown as `SessionError`s with
 * `status` 503 and no `expose`, so Koa answers 503 without leaking the message.
 *
 * ```ts
 * app.use(session({ store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] }));
 * app.use(async (ctx) => { ctx.body = { user: await ctx.session.get('user') }; });
 * ```
 */
export function session<D extends object = SessionData>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
): Middleware<DefaultState, DefaultContext> {
  const engine = (
    engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions)
  ) as SessionEngine<object>;
  const vary = varyOn(engine);
  return async function tesseraSession(ctx, next) {
    if (handled.has(ctx)) return next();
    handled.add(ctx);
    const request = new KoaRequest(engine, ctx);
    ctx.session = request.session as unknown as Session<SessionData>;
    try {
      await next();
    } catch (error) {
      const header = await request.commit(errorStatus(error));
      // Koa's error response drops the headers set so far and sends `err.headers` instead.
      if (header && error instanceof Error) addErrorHeaders(error, header, engine.options.cacheHeaders, vary);
      throw error;
    }
    const header = await request.commit(ctx.status);
    if (!header) return;
    ctx.append(header[0], header[1]);
    if (engine.options.cacheHeaders) {
      for (const [name, value] of sessionCacheHeaders((h) => ctx.response.get(h) || undefined, vary)) {
        ctx.set(name, value);
      }
    }
  };
}

/** A request's session and its facts for the engine, read lazily (`ctx.ip` follows `app.proxy`). */
class KoaRequest implements RequestContext, ClientInfo {
  readonly session: Session<object>;
  status = 0;
  readonly #engine: SessionEngine<object>;
  readonly #ctx: Context;

  constructor(engine: SessionEngine<object>, ctx: Context) {
    this.#engine = engine;
    this.#ctx = ctx;
    this.session = engine.session(headerOf(ctx.headers[engine.requestHeader]), this);
  }

  get secure(): boolean {
    return this.#ctx.secure;
  }

  get userAgent(): string | undefined {
    return this.#ctx.headers['user-agent'];
  }

  get ip(): string | undefined {
    return this.#ctx.ip;
  }

  /** Commits; the response header to send, if any. */
  async commit(status: number): Promise<[string, string] | null> {
    this.status = status;
    return commitHeader(this.#engine, await this.#engine.commit(this.session, this));
  }
}

const handled = new WeakSet<object>();

/** The status Koa's error response will have (as `ctx.onerror` decides it). */
function errorStatus(error: unknown): number {
  const e = error as { status?: unknown; statusCode?: unknown; code?: unknown } | null;
  const status = e?.code === 'ENOENT' ? 404 : (e?.status ?? e?.statusCode);
  return typeof status === 'number' && status >= 100 && status <= 999 ? status : 500;
}

function addErrorHeaders(
  error: Error & { headers?: Record<string, string | string[]> },
  [header, line]: [string, string],
  cacheHeaders: boolean,
  vary: string,
): void {
  const headers = (error.headers ??= {});
  const find = (lower: string) => Object.keys(headers).find((key) => key.toLowerCase() === lower);
  const name = find(header.toLowerCase()) ?? header;
  const current = headers[name];
  headers[name] = current === undefined ? [line] : [...(Array.isArray(current) ? current : [current]), line];
  if (!cacheHeaders) return;
  for (const [header, value] of sessionCacheHeaders((lower) => headerText(headers[find(lower) ?? lower]), vary)) {
    headers[find(header.toLowerCase()) ?? header] = value;
  }
}
