import { sessionCacheHeaders } from './cache-headers.ts';

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
