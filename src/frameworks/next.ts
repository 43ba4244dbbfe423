import type { SessionEngine } from '../core/engine.ts';
import { peer, SessionError } from '../core/errors.ts';
import type { Session, SessionData } from '../core/session.ts';

// Route Handlers and proxy.ts / middleware.ts are Fetch handlers: tessera/fetch's wrapper is theirs.
export { type SessionFetchHandler, session } from './fetch.ts';

type NextHeaders = typeof import('next/headers.js');

// A literal import(), so that Next.js's bundler follows it (tessera is bundled into the app's server
// code unless listed in serverExternalPackages), made by the first call; without next installed,
// that call fails with MISSING_DEPENDENCY naming it. next has no exports map: Node's resolution
// needs `headers.js`.
const nextHeaders = peer<NextHeaders>(() => import('next/headers.js'), 'next', 'next');

/** The engine of each session handed out by {@link getSession}, for {@link commitSession}. */
const engines = new WeakMap<Session<object>, SessionEngine<object>>();

/**
 * The session of the request a Server Component or a Server Action runs for, from its cookie
 * (through `cookies()` from `next/headers`). Lazy: no store I/O until it is used. Each call makes
 * a new session object: get it once per request and pass it on.
 *
 * A Server Component can read it; it cannot set cookies (Next.js refuses while rendering), so
 * changes and the sliding expiry's touch belong in a Server Action, a Route Handler or
 * `proxy.ts`, which commit.
 */
export async function getSession<D extends object = SessionData>(engine: SessionEngine<D>): Promise<Session<D>> {
  const jar = await (await nextHeaders.load()).cookies();
  const current = engine.sessionFromValue(jar.get(engine.options.cookie.name)?.value);
  engines.set(current as Session<object>, engine as SessionEngine<object>);
  return current;
}

/**
 * Writes what a Server Action changed and sets the session cookie through `cookies()`, before
 * the action returns or calls `redirect()`. `Secure` follows the request's protocol as Next.js
 * reports it (`x-forwarded-proto`). In a Server Component it throws `INVALID_STATE`: Next.js
 * lets no component set a cookie.
 *
 * ```ts
 * 'use server';
 * export async function login(form: FormData) {
 *   const session = await getSession(engine);
 *   await session.regenerate();
 *   await session.set('user', String(form.get('user')));
 *   await commitSession(session);
 *   redirect('/');
 * }
 * ```
 */
export async function commitSession<D extends object = SessionData>(session: Session<D>): Promise<void> {
  const engine = engines.get(session as Session<object>);
  if (!engine) {
    throw new SessionError('INVALID_STATE', 'commitSession() takes a session from getSession(engine)', {
      scope: 'next',
    });
  }
  const { cookies, headers } = await nextHeaders.load();
  const secure = (await headers()).get('x-forwarded-proto') === 'https';
  const { setCookie } = await engine.commit(session as Session<object>, { secure });
  if (!setCookie) return;
  const jar = await cookies();
  try {
    jar.set(cookieOf(setCookie));
  } catch (error) {
    throw new SessionError(
      'INVALID_STATE',
      'the session changed where Next.js lets no cookie be set (a Server Component): change it in a Server Action, a Route Handler or proxy.ts',
      { cause: error, scope: 'next' },
    );
  }
}

type CookieToSet = Parameters<Awaited<ReturnType<NextHeaders['cookies']>>['set']>[0] & object;

/** The engine's Set-Cookie line (the `cookie` library's layout) as the object `cookies().set()` takes. */
function cookieOf(line: string): CookieToSet {
  const [pair = '', ...attributes] = line.split('; ');
  const at = pair.indexOf('=');
  const cookie: CookieToSet = { name: pair.slice(0, at), value: pair.slice(at + 1) };
  for (const attribute of attributes) {
    const [key = '', value = ''] = attribute.split('=');
    switch (key.toLowerCase()) {
      case 'path':
        cookie.path = value;
        break;
      case 'domain':
        cookie.domain = value;
        break;
      case 'expires':
        cookie.expires = new Date(value);
        break;
      case 'max-age':
        cookie.maxAge = Number(value);
        break;
      case 'httponly':
        cookie.httpOnly = true;
        break;
      case 'secure':
        cookie.secure = true;
        break;
      case 'samesite':
        cookie.sameSite = value.toLowerCase() as 'lax' | 'strict' | 'none';
        break;
      case 'partitioned':
        cookie.partitioned = true;
        break;
    }
  }
  return cookie;
}
