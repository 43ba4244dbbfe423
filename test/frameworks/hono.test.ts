import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { getRequestListener } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { HTTPException } from 'hono/http-exception';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { session } from '../../src/frameworks/hono.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
import { actions, COOKIE, FailingStore, type MakeServer, runBehaviourSuite, secrets } from './behaviour.ts';

function makeApp(engine: SessionEngine): Hono {
  const app = new Hono();
  app.use(session(engine, { clientIp: (c) => getConnInfo(c).remote.address }));
  app.get('/public', (c) => c.text('public'));
  app.get('/state', async (c) => c.json(await actions.state(c.get('session'))));
  app.post('/login', async (c) => {
    await actions.login(c.get('session'), c.req.query('user') ?? '');
    setCookie(c, 'theme', 'dark', { path: '/' });
    return c.redirect('/state', 303);
  });
  app.post('/increment', async (c) => c.json(await actions.increment(c.get('session'))));
  app.post('/logout', async (c) => {
    await actions.logout(c.get('session'));
    return c.redirect('/', 303);
  });
  app.post('/cached', async (c) => {
    c.header('Cache-Control', 'no-cache');
    c.header('Vary', 'Accept-Encoding');
    return c.json(await actions.increment(c.get('session')));
  });
  app.post('/fail', async (c) => {
    await actions.increment(c.get('session'));
    return c.text('failed', 500);
  });
  app.post('/throw', async (c) => {
    await actions.increment(c.get('session'));
    throw new Error('route failed');
  });
  // Quiet: Hono's default handler would print the /throw stack.
  app.onError((error, c) => (error instanceof HTTPException ? error.getResponse() : c.text('failed', 500)));
  return app;
}

const makeHonoServer: MakeServer = (engine) => createServer(getRequestListener(makeApp(engine).fetch));

runBehaviourSuite('hono (@hono/node-server)', makeHonoServer);

const sessionCookie = (response: Response) =>
  response.headers.getSetCookie().find((line) => line.startsWith(`${COOKIE}=`));

describe('hono middleware through app.request()', () => {
  it('takes SessionOptions, is lazy, and appends the cookie to the response', async () => {
    const store = new CountingStore(new MemoryStore());
    const app = new Hono();
    app.use(session({ store, secrets }));
    app.get('/public', (c) => c.text('public'));
    app.post('/login', async (c) => {
      await actions.login(c.get('session'), 'gina');
      setCookie(c, 'theme', 'dark');
      return c.redirect('/state', 303);
    });
    app.get('/state', async (c) => c.json(await actions.state(c.get('session'))));

    const pub = await app.request('/public');
    assert.deepEqual(pub.headers.getSetCookie(), []);
    assert.equal(store.total, 0);
    const login = await app.request('/login', { method: 'POST' });
    assert.equal(login.status, 303);
    assert.equal(login.headers.getSetCookie().length, 2);
    const cookie = sessionCookie(login)?.split(';')[0] ?? '';
    const state = await app.request('/state', { headers: { cookie } });
    assert.deepEqual(await state.json(), { user: 'gina', count: 0 });
  });

  it('adds the cookie to a response the route returned as is (immutable headers)', async () => {
    const app = new Hono();
    app.use(session({ store: new MemoryStore(), secrets }));
    app.post('/login', async (c) => {
      await actions.login(c.get('session'), 'hank');
      return Response.redirect('http://localhost/state', 303);
    });
    const response = await app.request('https://localhost/login', { method: 'POST' });
    assert.equal(response.status, 303);
    assert.match(sessionCookie(response) ?? '', /; Secure/, 'https URL -> Secure');
  });

  it('turns store failures into HTTPException(503) with the SessionError as cause', async () => {
    const store = new FailingStore();
    const engine = new SessionEngine({ store, secrets });
    const app = new Hono();
    const errors: unknown[] = [];
    app.use(session(engine));
    app.post('/increment', async (c) => c.json(await actions.increment(c.get('session'))));
    app.onError((error, c) => {
      errors.push(error);
      return error instanceof HTTPException ? error.getResponse() : c.text('oops', 500);
    });

    const first = await app.request('/increment', { method: 'POST' });
    const cookie = sessionCookie(first)?.split(';')[0] ?? '';
    store.failReads = true;
    assert.equal((await app.request('/increment', { method: 'POST', headers: { cookie } })).status, 503);
    store.failReads = false;
    store.failWrites = true;
    const commit = await app.request('/increment', { method: 'POST' });
    assert.equal(commit.status, 503);
    assert.equal(sessionCookie(commit), undefined);
    const last = errors.at(-1);
    assert.ok(last instanceof HTTPException && isSessionError(last.cause, 'STORE_UNAVAILABLE'));
  });

  it('leaves a status chosen by the app’s own error handler alone', async () => {
    const store = new FailingStore();
    const engine = new SessionEngine({ store, secrets });
    const app = new Hono();
    app.use(session(engine));
    app.get('/state', async (c) => c.json(await actions.state(c.get('session'))));
    app.onError((error, c) => c.text('maintenance', isSessionError(error) ? 502 : 500));
    const seed = new SessionEngine({ store, secrets });
    const s = seed.session(undefined);
    await s.set('user', 'ivy');
    const cookie = (await seed.commit(s)).setCookie?.split(';')[0] ?? '';
    store.failReads = true;
    const response = await app.request('/state', { headers: { cookie } });
    assert.equal(response.status, 502);
    assert.equal(await response.text(), 'maintenance');
  });
});
