import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fastifyCookie from '@fastify/cookie';
import Fastify, { type FastifyInstance } from 'fastify';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { session } from '../../src/frameworks/fastify.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
import {
  actions,
  COOKIE,
  FailingStore,
  type MakeServer,
  runBehaviourSuite,
  secrets,
  THEME_COOKIE,
} from './behaviour.ts';

function routes(app: FastifyInstance, setTheme: (reply: import('fastify').FastifyReply) => void): void {
  app.get('/public', async () => 'public');
  app.get('/state', async (request) => actions.state(request.session));
  app.post<{ Querystring: { user: string } }>('/login', async (request, reply) => {
    await actions.login(request.session, request.query.user);
    setTheme(reply);
    return reply.redirect('/state', 303);
  });
  app.post('/increment', async (request) => actions.increment(request.session));
  app.post('/logout', async (request, reply) => {
    await actions.logout(request.session);
    return reply.redirect('/', 303);
  });
  app.post('/cached', async (request, reply) => {
    reply.header('cache-control', 'no-cache').header('vary', 'Accept-Encoding');
    return actions.increment(request.session);
  });
  app.post('/fail', async (request, reply) => {
    await actions.increment(request.session);
    return reply.code(500).send('failed');
  });
  app.post('/throw', async (request) => {
    await actions.increment(request.session);
    throw new Error('route failed');
  });
}

const makeFastifyServer: MakeServer = async (engine) => {
  const app = Fastify();
  await app.register(session, { engine });
  routes(app, (reply) => reply.header('set-cookie', THEME_COOKIE));
  await app.ready();
  return app.server;
};

const makeFastifyWithCookieServer: MakeServer = async (engine) => {
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(session, { engine });
  routes(app, (reply) => reply.setCookie('theme', 'dark', { path: '/' }));
  await app.ready();
  return app.server;
};

runBehaviourSuite('fastify', makeFastifyServer);
runBehaviourSuite('fastify with @fastify/cookie', makeFastifyWithCookieServer);

const sessionCookie = (setCookie: string | string[] | undefined) =>
  ([] as string[]).concat(setCookie ?? []).find((line) => line.startsWith(`${COOKIE}=`));

describe('fastify plugin through inject()', () => {
  it('takes SessionOptions, is lazy, and sets the cookie beside the others', async () => {
    const store = new CountingStore(new MemoryStore());
    const app = Fastify();
    await app.register(session, { store, secrets });
    app.get('/public', async () => 'public');
    app.post('/login', async (request, reply) => {
      await actions.login(request.session, 'frank');
      reply.header('set-cookie', 'a=1').header('set-cookie', ['b=2', 'c=3']);
      return { ok: true };
    });
    app.get('/state', async (request) => actions.state(request.session));

    const pub = await app.inject({ method: 'GET', url: '/public' });
    assert.equal(pub.headers['set-cookie'], undefined);
    assert.equal(store.total, 0);

    const login = await app.inject({ method: 'POST', url: '/login' });
    const lines = ([] as string[]).concat(login.headers['set-cookie'] ?? []);
    assert.deepEqual(lines.slice(0, 3), ['a=1', 'b=2', 'c=3']);
    const cookie = sessionCookie(login.headers['set-cookie'])?.split(';')[0] ?? '';
    assert.ok(cookie);
    const state = await app.inject({ method: 'GET', url: '/state', headers: { cookie } });
    assert.deepEqual(state.json(), { user: 'frank', count: 0 });
    await app.close();
  });

  it('marks the cookie Secure when Fastify sees HTTPS (trustProxy + X-Forwarded-Proto)', async () => {
    const app = Fastify({ trustProxy: true });
    await app.register(session, { store: new MemoryStore(), secrets });
    app.post('/increment', async (request) => actions.increment(request.session));
    const response = await app.inject({ method: 'POST', url: '/increment', headers: { 'x-forwarded-proto': 'https' } });
    assert.match(sessionCookie(response.headers['set-cookie']) ?? '', /; Secure/);
    await app.close();
  });

  it('answers 503 for a failed load in the route and for a failed commit in onSend', async () => {
    const store = new FailingStore();
    const engine = new SessionEngine({ store, secrets });
    const app = Fastify();
    await app.register(session, { engine });
    const errors: unknown[] = [];
    app.setErrorHandler((error, _request, reply) => {
      errors.push(error);
      return reply.send(error);
    });
    app.post('/increment', async (request) => actions.increment(request.session));

    const first = await app.inject({ method: 'POST', url: '/increment' });
    const cookie = sessionCookie(first.headers['set-cookie'])?.split(';')[0] ?? '';
    store.failReads = true;
    const load = await app.inject({ method: 'POST', url: '/increment', headers: { cookie } });
    assert.equal(load.statusCode, 503);
    store.failReads = false;
    store.failWrites = true;
    const commit = await app.inject({ method: 'POST', url: '/increment' });
    assert.equal(commit.statusCode, 503);
    assert.equal(sessionCookie(commit.headers['set-cookie']), undefined);
    assert.ok(errors.every((error) => isSessionError(error, 'STORE_UNAVAILABLE')));
    assert.equal(errors.length, 2);
    await app.close();
  });

  it('is one plugin named tessera, shared by encapsulated children', async () => {
    const app = Fastify();
    await app.register(session, { store: new MemoryStore(), secrets });
    await app.register(async (child) => {
      child.post('/child', async (request) => actions.increment(request.session));
    });
    assert.equal(app.hasPlugin('tessera'), true);
    const response = await app.inject({ method: 'POST', url: '/child' });
    assert.ok(sessionCookie(response.headers['set-cookie']));
    await app.close();
  });
});
