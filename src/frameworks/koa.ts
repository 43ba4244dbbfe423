import type { DefaultContext, DefaultState, Middleware } from 'koa';
import { SessionEngine } from '../core/engine.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';

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
    const commit = async () => (await engine.commit(current, { secure: ctx.secure })).setCookie;
    try {
      await next();
    } catch (error) {
      const setCookie = await commit();
      // Koa's error response drops the headers set so far and sends `err.headers` instead.
      if (setCookie && error instanceof Error) addErrorHeader(error, setCookie);
      throw error;
    }
    const setCookie = await commit();
    if (setCookie) ctx.append('Set-Cookie', setCookie);
  };
}

const handled = new WeakSet<object>();

function addErrorHeader(error: Error & { headers?: Record<string, string | string[]> }, setCookie: string): void {
  const headers = (error.headers ??= {});
  const name = Object.keys(headers).find((key) => key.toLowerCase() === 'set-cookie') ?? 'Set-Cookie';
  const current = headers[name];
  headers[name] = current === undefined ? [setCookie] : [...(Array.isArray(current) ? current : [current]), setCookie];
}
