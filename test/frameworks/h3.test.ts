import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { H3, HTTPError, redirect, setCookie, toNodeHandler } from 'h3';
import * as h3v1 from 'h3v1';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import type { Session } from '../../src/core/session.ts';
import { session, useSession } from '../../src/frameworks/h3.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
import { Browser, close, listen } from '../support/browser.ts';
import { actions, COOKIE, FailingStore, type MakeServer, runBehaviourSuite, secrets } from './behaviour.ts';

function makeApp(engine: SessionEngine, onError?: (error: HTTPError) => Response | undefined): H3 {
  // silent: h3 would print the /throw stack; onError lets a test see what h3 was given.
  const app = new H3({ silent: true, ...(onError ? { onError } : {}) });
  app.use(session(engine));
  app.get('/public', () => 'public');
  app.get('/state', (event) => actions.state(event.context.session));
  app.post('/login', async (event) => {
    await actions.login(event.context.session, event.url.searchParams.get('user') ?? '');
    setCookie(event, 'theme', 'dark', { path: '/' });
    return redirect('/state', 303);
  });
  app.post('/increment', (event) => actions.increment(event.context.session));
  app.post('/logout', async (event) => {
    await actions.logout(event.context.session);
    return redirect('/', 303);
  });
  app.post('/cached', async (event) => {
    event.res.headers.set('cache-control', 'no-cache');
    event.res.headers.set('vary', 'Accept-Encoding');
    return actions.increment(event.context.session);
  });
  app.post('/fail', async (event) => {
    await actions.increment(event.context.session);
    return new Response('failed', { status: 500 });
  });
  app.post('/throw', async (event) => {
    await actions.increment(event.context.session);
    throw new Error('route failed');
  });
  return app;
}

// h3's own Node adapter (srvx), as `serve(app)` runs it.
const makeH3Server: MakeServer = (engine) => createServer(toNodeHandler(makeApp(engine)));

runBehaviourSuite('h3 v2 (srvx node adapter)', makeH3Server);

const sessionCookie = (response: Response) =>
  response.headers.getSetCookie().find((line) => line.startsWith(`${COOKIE}=`));

describe('h3 middleware through app.request()', () => {
  it('takes SessionOptions, is lazy, and adds the cookie to a Response the route returned as is', async () => {
    const store = new CountingStore(new MemoryStore());
    const app = new H3().use(session({ store, secrets }));
    app.get('/public', () => 'public');
    app.post('/login', async (event) => {
      await actions.login(event.context.session, 'gina');
      return Response.redirect('https://localhost/state', 303);
    });
    app.get('/state', (event) => actions.state(useSession(event)));

    const pub = await app.request('/public');
    assert.equal(await pub.text(), 'public');
    assert.deepEqual(pub.headers.getSetCookie(), []);
    assert.equal(store.total, 0);
    const login = await app.request('https://localhost/login', { method: 'POST' });
    assert.equal(login.status, 303);
    const line = sessionCookie(login) ?? '';
    assert.match(line, /; Secure/, 'https URL -> Secure');
    const state = await app.request('/state', { headers: { cookie: line.split(';')[0] ?? '' } });
    assert.deepEqual(await state.json(), { user: 'gina', count: 0 });
  });

  it('keeps the cookie of a session changed before an HTTPError in the 4xx response', async () => {
    const app = new H3({ silent: true }).use(session({ store: new MemoryStore(), secrets }));
    app.post('/strict', async (event) => {
      await actions.increment(event.context.session);
      throw new HTTPError({ status: 422, message: 'invalid' });
    });
    const response = await app.request('/strict', { method: 'POST' });
    assert.equal(response.status, 422);
    assert.ok(sessionCookie(response), 'a 4xx still commits');
    assert.equal(response.headers.get('cache-control'), 'private, no-store');
  });

  it('turns store failures into HTTPError 503 with the SessionError as cause', async () => {
    const store = new FailingStore();
    const seen: HTTPError[] = [];
    const app = makeApp(new SessionEngine({ store, secrets }), (error) => {
      seen.push(error);
      return undefined;
    });
    const first = await app.request('/increment', { method: 'POST' });
    const cookie = sessionCookie(first)?.split(';')[0] ?? '';
    store.failReads = true;
    assert.equal((await app.request('/state', { headers: { cookie } })).status, 503);
    store.failReads = false;
    store.failWrites = true;
    const commit = await app.request('/increment', { method: 'POST' });
    assert.equal(commit.status, 503);
    assert.equal(sessionCookie(commit), undefined);
    assert.ok(seen.length >= 2);
    for (const error of seen) {
      assert.equal(error.status, 503);
      assert.ok(isSessionError(error.cause, 'STORE_UNAVAILABLE'));
    }
  });

  it('useSession says what is missing when the middleware did not run', async () => {
    const app = new H3({ silent: true });
    app.get('/', (event) => actions.state(useSession(event)));
    const response = await app.request('/');
    assert.equal(response.status, 500);
  });
});

// h3 1 (Nuxt 4 and Nitro 2 run it): the middleware is one of the app's event handlers, called
// without `next`. Here the h3 that tessera/h3 loads is 2 (this repository's), as in a Nuxt app
// that has h3 2 installed beside it: nothing of it may be used for h3 1's events.
function makeV1App(engine: SessionEngine): h3v1.App {
  // onError answers, so h3 does not print the /throw stack (as `silent` does for h3 2).
  const app = h3v1.createApp({ onError: (error, event) => h3v1.sendError(event, error) });
  // As a Nuxt server middleware: `export default defineEventHandler(session(engine))`. (Its types are
  // this repository's h3's, 2; in a Nuxt app they are h3 1's, and docs/frameworks/nuxt.md compiles.)
  app.use(h3v1.defineEventHandler(session(engine) as unknown as h3v1.EventHandler));
  // Nitro's router is preemptive: a route that returns nothing (after sendRedirect) gets an empty answer.
  const router = h3v1.createRouter({ preemptive: true });
  const own = (event: h3v1.H3Event) => event.context.session as Session;
  router.get(
    '/public',
    h3v1.defineEventHandler(() => 'public'),
  );
  router.get(
    '/state',
    h3v1.defineEventHandler((event) => actions.state(own(event))),
  );
  router.post(
    '/login',
    h3v1.defineEventHandler(async (event) => {
      await actions.login(own(event), String(h3v1.getQuery(event).user ?? ''));
      h3v1.setCookie(event, 'theme', 'dark', { path: '/' });
      return h3v1.sendRedirect(event, '/state', 303);
    }),
  );
  router.post(
    '/increment',
    h3v1.defineEventHandler((event) => actions.increment(own(event))),
  );
  router.post(
    '/logout',
    h3v1.defineEventHandler(async (event) => {
      await actions.logout(own(event));
      return h3v1.sendRedirect(event, '/', 303);
    }),
  );
  router.post(
    '/cached',
    h3v1.defineEventHandler((event) => {
      h3v1.setResponseHeaders(event, { 'cache-control': 'no-cache', vary: 'Accept-Encoding' });
      return actions.increment(own(event));
    }),
  );
  router.post(
    '/fail',
    h3v1.defineEventHandler(async (event) => {
      await actions.increment(own(event));
      h3v1.setResponseStatus(event, 500);
      return 'failed';
    }),
  );
  router.post(
    '/throw',
    h3v1.defineEventHandler(async (event) => {
      await actions.increment(own(event));
      throw new Error('route failed');
    }),
  );
  app.use(router);
  return app;
}

runBehaviourSuite('h3 v1 (toNodeListener)', (engine) => createServer(h3v1.toNodeListener(makeV1App(engine))));

describe('h3 1 middleware', () => {
  /** A server whose responses note how they ended: an error means one was answered twice. */
  function watched(engine: SessionEngine): { server: Server; ended: Array<Error | null> } {
    const ended: Array<Error | null> = [];
    const listener = h3v1.toNodeListener(makeV1App(engine));
    const server = createServer((req, res: ServerResponse) => {
      res.on('close', () => ended.push(res.errored));
      void listener(req, res);
    });
    return { server, ended };
  }

  it('answers a redirect after a login once: h3 takes the held response as answered', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const { server, ended } = watched(engine);
    const base = await listen(server);
    try {
      const browser = new Browser(base);
      const login = await browser.request('POST', '/login?user=kim');
      assert.equal(login.status, 303);
      assert.ok(login.setCookies.some((line) => line.startsWith(`${COOKIE}=`)));
      assert.match(login.text, /url=\/state/, 'the body sendRedirect() wrote, not a 204 after it');
      assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: 'kim', count: 0 });
    } finally {
      await close(server);
      await engine.close();
    }
    assert.deepEqual(ended, [null, null], 'no response ended in an error (ERR_HTTP_HEADERS_SENT)');
  });

  it('takes clientIp for the device record, with h3 1’s event', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const app = h3v1.createApp();
    const seen: unknown[] = [];
    const clientIp = (event: unknown) => {
      seen.push(event);
      return '203.0.113.9';
    };
    app.use(h3v1.defineEventHandler(session(engine, { clientIp }) as unknown as h3v1.EventHandler));
    app.use(
      '/login',
      h3v1.defineEventHandler(async (event) => {
        await (event.context.session as Session).setUser('lee');
        return 'ok';
      }),
    );
    const server = createServer(h3v1.toNodeListener(app));
    const base = await listen(server);
    try {
      assert.equal((await new Browser(base).request('POST', '/login')).status, 200);
      const [device] = await engine.listUserSessions('lee');
      assert.equal(device?.ip, '203.0.113.0');
      assert.ok(seen.length > 0 && seen.every((event) => h3v1.isEvent(event)), 'given the h3 1 event');
    } finally {
      await close(server);
      await engine.close();
    }
  });

  it('useSession fails the request with 500 when the middleware did not run', async () => {
    const app = h3v1.createApp({ onError: (error, event) => h3v1.sendError(event, error) });
    app.use(
      '/',
      h3v1.defineEventHandler((event) => actions.state(useSession(event as never))),
    );
    const server = createServer(h3v1.toNodeListener(app));
    const base = await listen(server);
    try {
      assert.equal((await new Browser(base).get('/')).status, 500);
    } finally {
      await close(server);
    }
  });
});
