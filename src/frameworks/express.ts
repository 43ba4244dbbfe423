import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { type CommitResult, type RequestContext, SessionEngine } from '../core/engine.ts';
import { SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import { type ClientInfo, Session, type SessionData, sessionInternals } from '../core/session.ts';
import { commitHeader, headerOf, setSessionCacheHeaders, varyOn } from './internal/cache-headers.ts';
import { holdUntilCommitted } from './internal/hold.ts';

declare global {
  namespace Express {
    interface Request {
      /** The visitor's session (Tessera). Loaded from the store on first use. */
      session: Session<SessionData>;
    }
  }
}

/**
 * One request's commit: runs once; settles without a promise when there is nothing to write.
 * It is also the request's facts for the engine (what a commit and `setUser` read), asked
 * lazily: `req.secure` and `req.ip` run Express's trust-proxy logic, so they are read only when
 * a cookie is written or a device recorded (getters on a class: one shape for every request,
 * where a getter in an object literal costs a new accessor per request and slows every reader).
 */
class RequestCommit implements RequestContext, ClientInfo {
  #pending: Promise<void> | null = null;
  #done = false;
  #held = false;
  status = 0;
  readonly #engine: SessionEngine<object>;
  readonly session: Session<object>;
  readonly #req: Request;
  readonly #res: Response;
  readonly #next: NextFunction;
  readonly #vary: string;

  constructor(engine: SessionEngine<object>, req: Request, res: Response, next: NextFunction, vary: string) {
    this.#engine = engine;
    this.#req = req;
    this.#res = res;
    this.#next = next;
    this.#vary = vary;
    this.session = engine.session(headerOf(req.headers[engine.requestHeader]), this);
  }

  /**
   * The response is held (and committed before its head goes out) only once the session says
   * its commit will write or send something: a request that reads its session, or never touches
   * it, leaves the response alone. Replacing four methods of every response cost Express more
   * than the rest of the session.
   */
  commitNeeded(): boolean {
    if (this.#held) return true;
    if (this.#done || this.#res.headersSent) return false;
    this.#held = true;
    holdUntilCommitted(this.#res, (status) => this.run(status), this.#next, this.#vary);
    return true;
  }

  get secure(): boolean {
    return this.#req.secure;
  }

  get userAgent(): string | undefined {
    return this.#req.headers['user-agent'];
  }

  get ip(): string | undefined {
    return this.#req.ip;
  }

  run(status: number = this.#res.statusCode): void | Promise<void> {
    if (this.#done) return this.#pending ?? undefined;
    this.#done = true;
    this.status = status;
    const result = this.#engine.settle(this.session, this);
    if (!(result instanceof Promise)) return this.#apply(result);
    this.#pending = result.then((settled) => this.#apply(settled));
    return this.#pending;
  }

  #apply(result: CommitResult): void {
    const res = this.#res;
    const header = commitHeader(this.#engine, result);
    if (!header || res.headersSent) return;
    res.append(header[0], header[1]);
    if (this.#engine.options.cacheHeaders) setSessionCacheHeaders(res, varyOn(this.#engine));
  }
}

/**
 * Express middleware. `req.session` is lazy: a request that never touches it costs no store
 * call. Changes are committed before the response headers go out (the adapter holds
 * the response until the write is done), so a redirect right after login carries a
 * session the next request sees (`writeHead`, `write`, `end` and `flushHeaders` are held).
 * Store failures go to `next(err)` with `err.status` 503. With a header `transport` the session
 * comes from that request header and a new value goes out in its response header, never a
 * cookie. `setUser` records the device from `User-Agent` and `req.ip` (set `trust proxy` behind
 * a proxy).
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
  const vary = varyOn(engine);
  return function tesseraSession(req: Request, res: Response, next: NextFunction): void {
    // Mounted twice (on a router and its app, say): the first mount's session stays.
    if (commitOf(req)) {
      next();
      return;
    }
    req.session = new RequestCommit(engine, req, res, next, vary).session as unknown as Session<SessionData>;
    next();
  };
}

/**
 * Commits the session now (for streaming responses that write before ending, or to catch
 * store errors in the route). Later commits of the same request do nothing.
 */
export async function commitSession(req: Request): Promise<void> {
  const commit = commitOf(req);
  if (!commit) {
    throw new SessionError('INVALID_STATE', 'commitSession() needs the session middleware on this route', {
      scope: 'express',
    });
  }
  await commit.run();
}

/**
 * The request's commit, found through its session (a property of its own on every request
 * would cost each one a shape change).
 */
function commitOf(req: Request): RequestCommit | undefined {
  const current: unknown = req.session;
  if (!(current instanceof Session)) return undefined;
  const client = sessionInternals.client(current);
  return client instanceof RequestCommit ? client : undefined;
}
