import type { ServerResponse } from 'node:http';

/** What a response that sets the session cookie gets when the app has no `Cache-Control` of its own. */
export const SESSION_CACHE_CONTROL = 'private, no-store';

/**
 * The headers to set on a response that carries the session's `Set-Cookie`, so that no shared
 * cache stores it: `Cache-Control: private, no-store` unless the app set a `Cache-Control`, and
 * `Vary` with `Cookie` added to what the app listed (`*` already covers it). `get` reads a
 * header of the response as it stands (several values joined with commas, or `undefined`).
 * Each returned pair replaces that header.
 */
export function sessionCacheHeaders(
  get: (name: 'cache-control' | 'vary') => string | undefined,
): Array<['Cache-Control' | 'Vary', string]> {
  const headers: Array<['Cache-Control' | 'Vary', string]> = [];
  if (!get('cache-control')) headers.push(['Cache-Control', SESSION_CACHE_CONTROL]);
  const vary = mergeVary(get('vary'));
  if (vary !== null) headers.push(['Vary', vary]);
  return headers;
}

/** `current` with `Cookie` added, or `null` when it already varies on the cookie (or on everything). */
export function mergeVary(current: string | undefined): string | null {
  const tokens = (current ?? '')
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '');
  if (tokens.some((token) => token === '*' || token.toLowerCase() === 'cookie')) return null;
  return [...tokens, 'Cookie'].join(', ');
}

/** A header value as `node:http` holds it (string, number or string array), joined. */
export function headerText(value: number | string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'object' ? value.join(', ') : String(value);
}

/** {@link sessionCacheHeaders} applied to a `node:http` response (Express, node:http adapters). */
export function setSessionCacheHeaders(res: ServerResponse): void {
  for (const [name, value] of sessionCacheHeaders((header) => headerText(res.getHeader(header)))) {
    res.setHeader(name, value);
  }
}
