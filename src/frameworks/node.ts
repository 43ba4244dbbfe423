import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { SessionEngine } from '../core/engine.ts';
import { SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { ClientInfo, Session, SessionData } from '../core/session.ts';
import { commitHeader, headerOf, setSessionCacheHeaders, varyOn } from './internal/cache-headers.ts';
import { holdUntilCommitted, respondWithError } from './internal/hold.ts';
import { inSlot, slotOf, toSlot } from './internal/slots.ts';

/** A request's engine and session, and its client for `setUser`'s device record (read lazily). */
class HandedOut implements ClientInfo {
  readonly engine: SessionEngine<object>;
  readonly session: Session<object>;
  readonly #req: IncomingMessage;
  readonly #ip: (() => string | undefined) | undefined;
  /** The session said its commit will have work (see `ClientInfo.commitNeeded`). */
  #needed = false;
  /** Holds the response (`session()`, NestJS); `false` once it can no longer be held. */
  #hold: (() => boolean) | null = null;

  constructor(engine: SessionEngine<object>, req: IncomingMessage, ip?: () => string | undefined) {
    this.engine = engine;
    this.#req = req;
    this.#ip = ip;
    this.session = engine.session(headerOf(req.headers[engine.requestHeader]), this);
  }

  commitNeeded(): boolean {
    this.#needed = true;
    return this.#hold === null ? true : this.#hold();
  }

  /**
   * Holds the response with `hold` once the commit will have work, now if it already has: a
   * request that only reads its session leaves the response alone (replacing four methods of
   * every response was most of what a session cost).
   */
  holdWhenNeeded(hold: () => boolean): void {
    this.#hold = hold;
    if (this.#needed) hold();
  }

  get userAgent(): string | undefined {
    return this.#req.headers['user-agent'];
  }

  /**
   * The adapter's answer, or the socket's peer: behind a proxy, that is the proxy (`node:http`
   * has no trust-proxy setting).
   */
  get ip(): string | undefined {
    return this.#ip ? this.#ip() : this.#req.socket.remoteAddress;
  }
}

/** Where a request keeps the session and engine handed out last, for `commitSession(req, res)`. */
const HANDED_OUT = Symbol('tessera.handedOut');

/**
 * The session of a `node:http` request, from its Cookie header. Lazy: no store I/O until the
 * session is used. Calling it again for the same request returns the same session.
 */
export function getSession<D extends object = SessionData>(engine: SessionEngine<D>, req: IncomingMessage): Session<D> {
  return sessionOf(engine, req);
}

/**
 * {@link getSession}, with the client's IP address from `ip` instead of the socket (for adapters
 * whose framework knows it better, h3 1).
 * @internal
 */
export function sessionOf<D extends object>(
  engine: SessionEngine<D>,
  req: IncomingMessage,
  ip?: () => string | undefined,
): Session<D> {
  // One slot per engine: two engines on one request each have their session.
  const slot = slotOf(engine);
  const known = inSlot<Session<D>>(req, slot);
  if (known) return known;
  const made = toSlot(req, HANDED_OUT, new HandedOut(engine as SessionEngine<object>, req, ip));
  return toSlot(req, slot, made.session as Session<D>);
}

/**
 * Writes what the request changed and sets the session cookie on `res` (with the cache headers,
 * see `cacheHeaders`). Call it before `res.writeHead()`/`write()`/`end()`; it throws
 * `INVALID_STATE` once the head is sent. `status` is the status the response will have (a 5xx
 * skips the write, see `commitOnServerError`).
 * `Secure` follows the socket (`cookie.secure: true` behind a TLS-terminating proxy).
 */
export async function commitSession(
  req: IncomingMessage,
  res: ServerResponse,
  status: number = res.statusCode,
): Promise<void> {
  const found = inSlot<HandedOut>(req, HANDED_OUT);
  if (!found) {
    throw new SessionError('INVALID_STATE', 'commitSession() needs getSession(engine, req) or session() first', {
      scope: 'node',
    });
  }
  const { engine, session } = found;
  if (res.headersSent) {
    throw new SessionError('INVALID_STATE', 'commitSession() after the response head was sent', { scope: 'node' });
  }
  const secure = (req.socket as Partial<TLSSocket>).encrypted === true;
  const header = commitHeader(engine, await engine.commit(session, { secure, status }));
  if (!header || hasHeader(res, header)) return;
  res.appendHeader(header[0], header[1]);
  if (engine.options.cacheHeaders) setSessionCacheHeaders(res, varyOn(engine));
}

/** A request handler that receives the session as its third argument. */
export type SessionRequestHandler<D extends object = SessionData> = (
  req: IncomingMessage,
  res: ServerResponse,
  session: Session<D>,
) => unknown;

/** Options of {@link session}. */
export interface SessionHandlerOptions {
  /**
   * Answers a failed commit or a handler that threw or rejected. The session commit is over
   * (or failed) when it runs, so writing the response is safe.
   * @default a plain-text response with the error's `status` (503 for store failures) or 500
   */
  onError?: (error: unknown, req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * Wraps a `node:http` handler: the session is committed before the response head goes out
 * (the first `writeHead`/`write`/`end` waits for it), so a redirect right after login carries
 * the cookie. Store failures become a 503.
 *
 * ```ts
 * createServer(session(engine, async (req, res, session) => {
 *   await session.set('count', ((await session.get('count')) ?? 0) + 1);
 *   res.end('ok');
 * }));
 * ```
 */
export function session<D extends object = SessionData>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
  handler: SessionRequestHandler<D>,
  options: SessionHandlerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const engine = engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions);
  const onError = options.onError ?? respondWithError;
  const vary = varyOn(engine as SessionEngine<object>);
  return function tesseraSession(req, res) {
    const current = getSession(engine, req);
    const fail = (error: unknown) => onError(error, req, res);
    holdWhenNeeded(req, res, (status) => commitSession(req, res, status), fail, vary);
    try {
      Promise.resolve(handler(req, res, current)).catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}

/**
 * For adapters over `node:http` (`session()`, NestJS): holds `res` until `commit` settles, from
 * the moment the request's session (from `getSession`) says its commit will have work.
 * @internal
 */
export function holdWhenNeeded(
  req: IncomingMessage,
  res: ServerResponse,
  commit: (status: number) => void | Promise<void>,
  onError: (error: unknown) => void,
  vary: string,
): void {
  const handedOut = inSlot<HandedOut>(req, HANDED_OUT) as HandedOut;
  let held = false;
  handedOut.holdWhenNeeded(() => {
    if (held) return true;
    if (res.headersSent) return false;
    held = true;
    holdUntilCommitted(res, commit, onError, vary);
    return true;
  });
}

function hasHeader(res: ServerResponse, [name, line]: [string, string]): boolean {
  const current = res.getHeader(name);
  return Array.isArray(current) ? current.includes(line) : current === line;
}
