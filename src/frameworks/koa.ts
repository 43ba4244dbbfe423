import type { DefaultContext, DefaultState, Middleware } from 'koa';
import { SessionEngine } from '../core/engine.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { headerText, sessionCacheHeaders } from './internal/cache-headers.ts';

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
  const engine = engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions);
  return async function tesseraSession(ctx, next) {
    if (handled.has(ctx)) return next();
    handled.add(ctx);
    const current = engine.session(ctx.get('cookie') || undefined);
    ctx.session = current as unknown as Session<SessionData>;
    const commit = async (status: number) => (await engine.commit(current, { secure: ctx.secure, status })).setCookie;
    try {
      await next();
    } catch (error) {
      const setCookie = await commit(errorStatus(error));
      // Koa's error response drops the headers set so far and sends `err.headers` instead.
      if (setCookie && error instanceof Error) addErrorHeaders(error, setCookie, engine.options.cacheHeaders);
      throw error;
    }
    const setCookie = await commit(ctx.status);
    if (!setCookie) return;
    ctx.append('Set-Cookie', setCookie);
    if (engine.options.cacheHeaders) {
      for (const [name, value] of sessionCacheHeaders((header) => ctx.response.get(header) || undefined)) {
        ctx.set(name, value);
      }
    }
  };
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
  setCookie: string,
  cacheHeaders: boolean,
): void {
  const headers = (error.headers ??= {});
  const find = (header: string) => Object.keys(headers).find((key) => key.toLowerCase() === header);
  const name = find('set-cookie') ?? 'Set-Cookie';
  const current = headers[name];
  headers[name] = current === undefined ? [setCookie] : [...(Array.isArray(current) ? current : [current]), setCookie];
  if (!cacheHeaders) return;
  for (const [header, value] of sessionCacheHeaders((lower) => headerText(headers[find(lower) ?? lower]))) {
    headers[find(header.toLowerCase()) ?? header] = value;
  }
}
