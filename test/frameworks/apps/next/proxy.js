import { NextResponse } from 'next/server';
import { session } from 'tessera/next';
import { actions, hooks } from './app/lib/hooks.js';

const proxies = new WeakMap();

/**
 * proxy.ts (Next.js 16's middleware, on the Node.js runtime): `session(engine, handler)` counts
 * each request under /proxied into the session, then lets it through to the page or route.
 */
export function proxy(request) {
  const engine = hooks().engine();
  let made = proxies.get(engine);
  if (!made) {
    made = session(engine, async (_request, current) => {
      await actions.increment(current);
      return NextResponse.next();
    });
    proxies.set(engine, made);
  }
  return made(request);
}

export const config = { matcher: '/proxied/:path*' };
