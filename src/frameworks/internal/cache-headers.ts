import type { ServerResponse } from 'node:http';
import type { CommitResult, SessionEngine } from '../../core/engine.ts';

/** What a response that sets the session cookie gets when the app has no `Cache-Control` of its own. */
export const SESSION_CACHE_CONTROL = 'private, no-store';

/**
 * The headers to set on a response that carries the session's `Set-Cookie` (or a header
 * transport's value), so that no shared cache stores it: `Cache-Control: private, no-store`
 * unless the app set a `Cache-Control`, and `Vary` with `vary` (the request header the session
 * comes in) added to what the app listed (`*` already covers it). `get` reads a header of the
 * response as it stands (several values joined with commas, or `undefined`). Each returned pair
 * replaces that header.
 */
export function sessionCacheHeaders(
  get: (name: 'cache-control' | 'vary') => string | undefined,
  vary = 'Cookie',
): Array<['Cache-Control' | 'Vary', string]> {
  const headers: Array<['Cache-Control' | 'Vary', string]> = [];
  if (!get('cache-control')) headers.push(['Cache-Control', SESSION_CACHE_CONTROL]);
  const merged = mergeVary(get('vary'), vary);
  if (merged !== null) headers.push(['Vary', merged]);
  return headers;
}

/** `current` with `token` added, or `null` when it already varies on it (or on everything). */
export function mergeVary(current: string | undefined, token = 'Cookie'): string | null {
  // The usual case, no Vary yet: nothing to split.
  if (current === undefined || current === '') return token;
  const tokens = current
    .split(',')
    .map((each) => each.trim())
    .filter((each) => each !== '');
  const lower = token.toLowerCase();
  if (tokens.some((each) => each === '*' || each.toLowerCase() === lower)) return null;
  return [...tokens, token].join(', ');
}

/** The `Vary` token of an engine's transport: `Cookie`, or the header transport's request header. */
export function varyOn(engine: SessionEngine<object>): string {
  return engine.requestHeader === 'cookie' ? 'Cookie' : engine.requestHeader;
}

/**
 * The response header a commit sends, as `[name, value]`: `Set-Cookie` (appended beside the
 * app's cookies), or the header transport's value (`''` tells the client to drop its value);
 * `null` when nothing changes.
 */
export function commitHeader(engine: SessionEngine<object>, result: CommitResult): [string, string] | null {
  const value = result.setCookie ?? result.token ?? null;
  return value === null ? null : [engine.responseHeader, value];
}

/** A request header's value as one string (`node:http` gives an array for a repeated one). */
export function headerOf(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'object' ? value.join(', ') : value;
}

/** A header value as `node:http` holds it (string, number or string array), joined. */
export function headerText(value: number | string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'object' ? value.join(', ') : String(value);
}

/** {@link sessionCacheHeaders} applied to a `node:http` response (Express, node:http adapters). */
export function setSessionCacheHeaders(res: ServerResponse, vary = 'Cookie'): void {
  for (const [name, value] of sessionCacheHeaders((header) => headerText(res.getHeader(header)), vary)) {
    res.setHeader(name, value);
  }
}
