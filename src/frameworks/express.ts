import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { type CommitResult, SessionEngine } from '../core/engine.ts';
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

const COMMIT = Symbol('tessera.commit');
type WithCommit = Request & { [COMMIT]?: RequestCommit };

/**
 * The request facts of a commit. `req.secure` runs Express's trust-proxy logic, so it is asked
 * only when a cookie is written (a getter on a class: one shape for every request, where a
 * getter in an object literal costs a new accessor per request and slows every reader).
 */
class ExpressContext {
  readonly #req: Request;
  readonly status: number;

  constructor(req: Request, status: number) {
    this.#req = req;
    this.status = status;
  }

  get secure(): boolean {
    return this.#req.secure;
  }
}

/** One request's commit: runs once; settles without a promise when there is nothing to write. */
class RequestCommit {
  #pending: Promise<void> | null = null;
  #done = false;
  readonly #engine: SessionEngine<object>;
  readonly #session: Session<object>;
  readonly #req: Request;
  readonly #res: Response;

  constructor(engine: SessionEngine<object>, session: Session<object>, req: Request, res: Response) {
    this.#engine = engine;
    this.#session = session;
    this.#req = req;
    this.#res = res;
  }

  run(status: number = this.#res.statusCode): void | Promise<void> {
    if (this.#done) return this.#pending ?? undefined;
    this.#done = true;
    const result = this.#engine.settle(this.#session, new ExpressContext(this.#req, status));
    if (!(result instanceof Promise)) return this.#apply(result);
    this.#pending = result.then((settled) => this.#apply(settled));
    return this.#pending;
  }

  #apply({ setCookie }: CommitResult): void {
    const res = this.#res;
    if (!setCookie || res.headersSent) return;
    res.append('Set-Cookie', setCookie);
    if (this.#engine.options.cacheHeaders) setSessionCacheHeaders(res);
  }
}

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
  const engine = (
    engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions)
  ) as SessionEngine<object>;
  return function tesseraSession(req: Request, res: Response, next: NextFunction): void {
    const held = req as WithCommit;
    if (held[COMMIT]) {
      next();
      return;
    }
    const current = engine.session(req.headers.cookie);
    req.session = current as unknown as Session<SessionData>;
    const commit = new RequestCommit(engine, current, req, res);
    held[COMMIT] = commit;
    holdUntilCommitted(res, (status) => commit.run(status), next);
    next();
  };
}

/**
 * Commits the session now (for streaming responses that write before ending, or to catch
 * store errors in the route). Later commits of the same request do nothing.
 */
export async function commitSession(req: Request): Promise<void> {
  const commit = (req as WithCommit)[COMMIT];
  if (!commit) {
    throw new SessionError('INVALID_STATE', 'commitSession() needs the session middleware on this route', {
      scope: 'express',
    });
  }
  await commit.run();
}
