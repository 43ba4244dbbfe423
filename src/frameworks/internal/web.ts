import { sessionCacheHeaders } from './cache-headers.ts';

/**
 * `response` with the session's Set-Cookie lines appended (those it does not carry already) and,
 * with `cacheHeaders`, the headers that keep shared caches from storing it. Responses whose
 * headers are immutable (`Response.redirect()`, a `fetch()` result) are copied first.
 */
export function withCookies(response: Response, cookies: readonly string[], cacheHeaders: boolean): Response {
  const fresh = cookies.filter((line) => !response.headers.getSetCookie().includes(line));
  if (fresh.length === 0) return response;
  const extra = cacheHeaders ? sessionCacheHeaders((name) => response.headers.get(name) ?? undefined) : [];
  const apply = (headers: Headers) => {
    for (const line of fresh) headers.append('Set-Cookie', line);
    for (const [name, value] of extra) headers.set(name, value);
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

/** The plain-text answer to a request whose session failed (503 when the store did). */
export function sessionErrorResponse(status: number): Response {
  return new Response(status === 503 ? 'Service Unavailable' : 'Internal Server Error', {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}
