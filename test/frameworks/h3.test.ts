import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { H3, HTTPError, redirect, setCookie, toNodeHandler } from 'h3';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { session, useSession } from '../../src/frameworks/h3.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
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
