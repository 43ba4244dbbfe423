// The test app of test/runtimes, in Web APIs only: it runs unchanged on Bun, Deno and workerd.
// Routes are those of test/frameworks/behaviour.ts, plus /__store to read the store's call counts
// and to make it fail, since the suite (in Node) cannot reach a store inside another runtime.
import { SessionEngine } from '../../src/core/engine.ts';
import { syncCrypto } from '../../src/core/ids.ts';
import type { Session } from '../../src/core/session.ts';
import type { Store } from '../../src/core/store.ts';
import { session } from '../../src/frameworks/fetch.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';

export const SECRET = 'runtime-suite-secret-0123456789abcdefgh';
export const THEME_COOKIE = 'theme=dark; Path=/';

const READS = new Set(['get', 'listByUser', 'count']);

/** A store whose calls can be made to fail, as a store that went down. */
function switchable(inner: Store): { store: Store; fail: { reads: boolean; writes: boolean } } {
  const fail = { reads: false, writes: false };
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      // Bound to the store itself: its #private fields are not on the proxy.
      if (property === 'close' || property === 'ready') return value.bind(target);
      return (...args: unknown[]) => {
        const failing = READS.has(String(property)) ? fail.reads : fail.writes;
        if (failing) return Promise.reject(new Error('connection refused'));
        return value.apply(target, args);
      };
    },
  });
  return { store, fail };
}

const json = (body: unknown, init?: ResponseInit) => Response.json(body, init);

async function state(s: Session) {
  return { user: (await s.get('user')) ?? null, count: (await s.get('count')) ?? 0 };
}
async function increment(s: Session) {
  const count = ((await s.get('count')) ?? 0) + 1;
  await s.set('count', count);
  return { count };
}

/** The app's fetch handler around a store; `runtime` names where it runs (for /__store). */
export function makeApp(inner: Store, runtime: string): (request: Request) => Promise<Response> {
  const { store: failing, fail } = switchable(inner);
  const counted = new CountingStore(failing);
  const engines = new Map<string, (request: Request) => Promise<Response>>();
  const handlerFor = (variant: string) => {
    let handler = engines.get(variant);
    if (!handler) {
      const engine = new SessionEngine({
        store: counted,
        secrets: [SECRET],
        cacheHeaders: variant !== 'no-cache-headers',
        commitOnServerError: variant === 'commit-on-5xx',
      });
      handler = session(engine, route);
      engines.set(variant, handler);
    }
    return handler;
  };
  return async (request) => {
    const url = new URL(request.url);
    if (url.pathname === '/__store') {
      if (request.method === 'POST') {
        fail.reads = url.searchParams.get('failReads') === '1';
        fail.writes = url.searchParams.get('failWrites') === '1';
        if (url.searchParams.has('reset')) counted.reset();
      }
      return json({ runtime, syncCrypto, total: counted.total, calls: counted.calls });
    }
    // /v/<variant>/... runs on an engine with other options (the suite's "off" and "keeps" engines).
    const variant = /^\/v\/([a-z0-9-]+)(\/.*)$/.exec(url.pathname);
    if (!variant) return handlerFor('default')(request);
    const rewritten = new URL(`${variant[2]}${url.search}`, url);
    return handlerFor(variant[1] ?? 'default')(new Request(rewritten, request));
  };
}

async function route(request: Request, s: Session): Promise<Response> {
  const url = new URL(request.url);
  switch (`${request.method} ${url.pathname}`) {
    case 'GET /public':
      return new Response('public');
    case 'GET /state':
      return json(await state(s));
    case 'POST /login': {
      await s.regenerate();
      await s.set('user', url.searchParams.get('user') ?? '');
      await s.setUser(url.searchParams.get('user') ?? '');
      return new Response(null, { status: 303, headers: { location: '/state', 'set-cookie': THEME_COOKIE } });
    }
    case 'POST /increment':
      return json(await increment(s));
    case 'POST /set': {
      // One key per request: concurrent requests of one session, each its own key.
      const key = url.searchParams.get('key') ?? '';
      await s.set(key as 'user', url.searchParams.get('value') ?? '');
      return json({ ok: true });
    }
    case 'GET /keys': {
      await s.load();
      return json(s.data);
    }
    case 'POST /logout':
      await s.destroy();
      return Response.redirect(new URL('/', url), 303);
    case 'POST /cached':
      return json(await increment(s), { headers: { 'cache-control': 'no-cache', vary: 'Accept-Encoding' } });
    case 'POST /fail':
      await increment(s);
      return new Response('failed', { status: 500 });
    default:
      return new Response('not found', { status: 404 });
  }
}
