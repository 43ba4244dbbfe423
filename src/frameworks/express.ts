import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { SessionEngine } from '../core/engine.ts';
import { SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { setSessionCacheHeaders } from './internal/cache-headers.ts';
import { holdUntilCommitted } from './internal/hold.ts';

declare global {
  namespace Express {
    interface Request {
      /** The visitor's session (Tessera). Loaded from the store on first use. */
      session: Session<SessionData>;
    }
  }
}

type Commit = (status?: number) => Promise<void>;
const commits = new WeakMap<Request, Commit>();

/**
 * Express middleware. `req.session` is lazy: a request that never touches it costs no store
 * call. Changes are committed before the response headers go out (the adapter holds
 * the response until the write is done), so a redirect right after login carries a
 * session the next request sees (`writeHead`, `write`, `end` and `flushHeaders` are held).
 * Store failures go to `next(err)` with `err.status` 503.
 *
 * ```ts
 * app.use(session({ store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] }));
 * ```
 */
export function session<D extends object = SessionData>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
): RequestHandler {
  const engine = engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions);
  return function tesseraSession(req: Request, res: Response, next: NextFunction): void {
    if (commits.has(req)) {
      next();
      return;
    }
    const current = engine.session(req.headers.cookie);
    req.session = current as unknown as Session<SessionData>;
    let pending: Promise<void> | null = null;
    const commit: Commit = (status = res.statusCode) => {
      pending ??= engine.commit(current, { secure: req.secure, status }).then(({ setCookie }) => {
        if (!setCookie || res.headersSent) return;
        res.append('Set-Cookie', setCookie);
        if (engine.options.cacheHeaders) setSessionCacheHeaders(res);
      });
      return pending;
    };
    commits.set(req, commit);
    holdUntilCommitted(res, commit, next);
    next();
  };
}

/**
 * Commits the session now (for streaming responses that write before ending, or to catch
 * store errors in the route). Later commits of the same request do nothing.
 */
export async function commitSession(req: Request): Promise<void> {
  const commit = commits.get(req);
  if (!commit) {
    throw new SessionError('INVALID_STATE', 'commitSession() needs the session middleware on this route', {
      scope: 'express',
    });
  }
  await commit();
}
