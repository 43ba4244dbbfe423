import type { RequestContext, SessionEngine } from '../../core/engine.ts';
import { isSessionError } from '../../core/errors.ts';
import type { ClientInfo, Session } from '../../core/session.ts';
import { commitHeader, sessionCacheHeaders } from './cache-headers.ts';

/**
 * The session of a framework event that carries a Web `Request` and its `URL` (Astro's context,
 * SvelteKit's and h3 2's events), with the facts the engine asks of it, read lazily: `Secure`
 * from the URL's protocol, the `User-Agent`, and the client address from `clientIp` (none when
 * it throws: Astro has no address for a prerendered page, nor SvelteKit for an adapter without
 * one).
 */
export class WebEventSession<E extends { url: URL }> implements RequestContext, ClientInfo {
  readonly session: Session<object>;
  status = 0;
  readonly #event: E;
  readonly #request: Request;
  readonly #clientIp: (event: E) => string | undefined;

  constructor(engine: SessionEngine<object>, event: E, request: Request, clientIp: (event: E) => string | undefined) {
    this.#event = event;
    this.#request = request;
    this.#clientIp = clientIp;
    this.session = engine.session(request.headers.get(engine.requestHeader), this);
  }

  get secure(): boolean {
    return this.#event.url.protocol === 'https:';
  }

  get userAgent(): string | undefined {
    return this.#request.headers.get('user-agent') ?? undefined;
  }

  get ip(): string | undefined {
    try {
      return this.#clientIp(this.#event);
    } catch {
      return undefined;
    }
  }
}

/**
 * `response` with the session's header added: a `Set-Cookie` line (appended, unless it carries
 * it already), or a header transport's value (set); with `cacheHeaders`, also the headers that
 * keep shared caches from storing it (`vary`: the request header the session comes in).
 * Responses whose headers are immutable (`Response.redirect()`, a `fetch()` result) are copied
 * first.
 */
export function withSessionHeader(
  response: Response,
  header: readonly [string, string] | null,
  cacheHeaders: boolean,
  vary = 'Cookie',
): Response {
  if (header === null) return response;
  const [name, value] = header;
  const cookie = name.toLowerCase() === 'set-cookie';
  if (cookie && response.headers.getSetCookie().includes(value)) return response;
  const extra = cacheHeaders ? sessionCacheHeaders((h) => response.headers.get(h) ?? undefined, vary) : [];
  const apply = (headers: Headers) => {
    if (cookie) headers.append(name, value);
    else headers.set(name, value);
    for (const [h, text] of extra) headers.set(h, text);
  };
  try {
    apply(response.headers);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    apply(copy.headers);
    return copy;
  }
}

/** {@link withSessionHeader} for Set-Cookie lines. */
export function withCookies(response: Response, cookies: readonly string[], cacheHeaders: boolean): Response {
  let result = response;
  for (const line of cookies) result = withSessionHeader(result, ['Set-Cookie', line], cacheHeaders);
  return result;
}

/** The plain-text answer to a request whose session failed (503 when the store did). */
export function sessionErrorResponse(status: number): Response {
  return new Response(status === 503 ? 'Service Unavailable' : 'Internal Server Error', {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}

/**
 * Commits the session of `request` with the status of the `response` the framework made, and
 * returns that response with the session's header, or the plain answer of a store failure.
 */
export async function commitToResponse(
  engine: SessionEngine<object>,
  request: RequestContext & { session: Session<object> },
  response: Response,
  vary: string,
): Promise<Response> {
  let header: [string, string] | null;
  try {
    request.status = response.status;
    header = commitHeader(engine, await engine.commit(request.session, request));
  } catch (error) {
    if (!isSessionError(error)) throw error;
    return sessionErrorResponse(error.status);
  }
  return withSessionHeader(response, header, engine.options.cacheHeaders, vary);
}
