// stores: redis
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import fastifyCookie from '@fastify/cookie';
import express, { type RequestHandler } from 'express';
import Fastify, { type FastifyPluginCallback } from 'fastify';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { hashId } from '../../src/core/ids.ts';
import type { Store } from '../../src/core/store.ts';
import {
  type ExpressSessionData,
  type ExpressSessionStoreLike,
  fromExpressSessionStore,
  type StoreBaseClass,
  toExpressSessionStore,
} from '../../src/stores/express-session.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { FailingStore, runBehaviourSuite, secrets } from '../frameworks/behaviour.ts';
import { makeExpressServer } from '../frameworks/express-app.ts';
import { Browser, close, listen } from '../support/browser.ts';

// express-session and @fastify/session are loaded untyped on purpose: their type declarations
// put `session` on every Express/Fastify request, which clashes with Tessera's adapters in this
// TypeScript program (see test/types/compat/tsconfig.json for the typed check).
const require = createRequire(import.meta.url);
interface ExpressSessionModule {
  (options: Record<string, unknown>): RequestHandler;
  Store: StoreBaseClass;
  MemoryStore: new () => ExpressSessionStoreLike;
}
const expressSession = require('express-session') as ExpressSessionModule;
const fastifySession = require('@fastify/session') as FastifyPluginCallback<Record<string, unknown>>;

/** express-session's `req.session` and @fastify/session's `request.session`, as the tests use them. */
interface LegacySession extends Record<string, unknown> {
  regenerate(done: (error?: unknown) => void): void;
  destroy(done: (error?: unknown) => void): void;
}
const legacy = (request: unknown) => (request as { session: LegacySession }).session;
const promised = (run: (done: (error?: unknown) => void) => void) =>
  new Promise<void>((resolve, reject) => run((error) => (error ? reject(error) : resolve())));

const ES_COOKIE = 'connect.sid';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** A Redis store of its own (a fresh key prefix), as the legacy apps below use. */
const redisStore = () =>
  new RedisStore({ url: REDIS_URL, prefix: `tessera-compat:${randomBytes(6).toString('hex')}:` });
/** A session object with data beside `cookie`, as express-session passes it. */
const data = (value: ExpressSessionData & Record<string, unknown>): ExpressSessionData => value;
const sidOf = (cookieValue: string) => decodeURIComponent(cookieValue).replace(/^s:/, '').split('.')[0] ?? '';

describe('toExpressSessionStore', () => {
  let store: MemoryStore;
  beforeEach(() => {
    store = new MemoryStore();
  });
  afterEach(() => store.close());

  const cookieIn = (ms: number) => ({ expires: new Date(Date.now() + ms), originalMaxAge: ms });

  it('stores each top-level key as a field under SHA-256 of the sid, expiring with cookie.expires', async () => {
    const adapter = toExpressSessionStore(store);
    const session = { cookie: cookieIn(60_000), user: 'alice', cart: ['book'] };
    await adapter.set('sid-1', session);
    const record = await store.get(hashId('sid-1'));
    assert.ok(record);
    assert.deepEqual(Object.keys(record.fields).sort(), ['cart', 'cookie', 'user']);
    assert.equal(record.fields.user, '"alice"');
    assert.equal(record.expiresAt, session.cookie.expires.getTime());
    assert.equal(await store.get('sid-1'), null, 'the raw sid is never a key');

    const read = await adapter.get('sid-1');
    assert.deepEqual(read, JSON.parse(JSON.stringify(session)));
  });

  it('answers through node-style callbacks, as express-session and @fastify/session call it', async () => {
    const adapter = toExpressSessionStore(store);
    await promised((done) => adapter.set('sid-2', data({ cookie: cookieIn(60_000), n: 1 }), done));
    const read = await new Promise<ExpressSessionData | null | undefined>((resolve, reject) =>
      adapter.get('sid-2', (error, session) => (error ? reject(error) : resolve(session))),
    );
    assert.equal((read as { n?: number } | null | undefined)?.n, 1);
    const missing = await new Promise((resolve) => adapter.get('nope', (_error, session) => resolve(session)));
    assert.equal(missing, null);
    await promised((done) => adapter.destroy('sid-2', done));
    assert.equal(await adapter.get('sid-2'), null);
  });

  it('touch moves the expiry and the stored cookie, keeps the data, and never recreates', async () => {
    const adapter = toExpressSessionStore(store);
    await adapter.set('sid-3', data({ cookie: cookieIn(60_000), user: 'bob' }));
    const later = cookieIn(600_000);
    await adapter.touch('sid-3', { cookie: later });
    const record = await store.get(hashId('sid-3'));
    assert.equal(record?.expiresAt, later.expires.getTime());
    assert.equal(record?.fields.user, '"bob"');
    assert.equal(JSON.parse(record?.fields.cookie ?? '{}').expires, later.expires.toISOString());
    await adapter.touch('gone', { cookie: later });
    assert.equal(await store.get(hashId('gone')), null);
  });

  it('uses ttlSeconds for browser-session cookies, fills the user index, and counts', async () => {
    const adapter = toExpressSessionStore(store, { ttlSeconds: 120, userId: (s) => s.user as string | undefined });
    const before = Date.now();
    await adapter.set('a', data({ cookie: { expires: null, originalMaxAge: null }, user: 'carol' }));
    await adapter.set('b', data({ cookie: cookieIn(60_000), user: 'carol' }));
    await adapter.set('c', { cookie: cookieIn(60_000) });
    const record = await store.get(hashId('a'));
    assert.ok(record && record.expiresAt >= before + 120_000 && record.expiresAt <= Date.now() + 120_000);
    assert.equal(record.userId, 'carol');
    assert.equal((await store.listByUser('carol')).length, 2);
    assert.equal(await adapter.length(), 3);
  });

  it('extends express-session’s Store by default and the class it is given', async () => {
    assert.ok(toExpressSessionStore(store) instanceof expressSession.Store);
    class Base extends (expressSession.Store as unknown as new () => object) {}
    assert.ok(toExpressSessionStore(store, { Store: Base as unknown as StoreBaseClass }) instanceof Base);
  });

  it('reports store failures and timeouts as SessionErrors (503) to the callback', async () => {
    const failing = new FailingStore();
    failing.failReads = true;
    const adapter = toExpressSessionStore(failing);
    const error = await new Promise((resolve) => adapter.get('x', (e) => resolve(e)));
    assert.ok(isSessionError(error, 'STORE_UNAVAILABLE'));
    assert.equal((error as { status: number }).status, 503);
    await assert.rejects(adapter.get('x'), (e) => isSessionError(e, 'STORE_UNAVAILABLE'));

    const hanging = Object.assign(new MemoryStore(), { get: () => new Promise<never>(() => {}) });
    const slow = toExpressSessionStore(hanging, { timeoutMs: 50 });
    await assert.rejects(slow.get('x'), (e) => isSessionError(e, 'STORE_TIMEOUT'));
    await hanging.close();
    await failing.close();
  });
});

/** The express-session app of the flows below. */
function expressSessionApp(store: unknown) {
  const app = express();
  app.set('env', 'test');
  app.use(
    expressSession({
      secret: secrets[0],
      store,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 60_000 },
    }),
  );
  app.get('/state', (req, res) => {
    const s = legacy(req);
    res.json({ user: s.user ?? null, count: s.count ?? 0 });
  });
  app.post('/login', async (req, res) => {
    await promised((done) => legacy(req).regenerate(done));
    legacy(req).user = String(req.query.user);
    res.redirect(303, '/state');
  });
  app.post('/increment', (req, res) => {
    const s = legacy(req);
    s.count = ((s.count as number | undefined) ?? 0) + 1;
    res.json({ count: s.count });
  });
  app.post('/logout', async (req, res) => {
    await promised((done) => legacy(req).destroy(done));
    res.redirect(303, '/');
  });
  return createServer(app);
}

async function legacyFlow(base: string, cookieName: string, tessera: Store, engine: SessionEngine) {
  const browser = new Browser(base);
  const login = await browser.request('POST', '/login?user=alice');
  assert.equal(login.status, 303);
  assert.ok(browser.jar.get(cookieName), 'the redirect after login carries the cookie');
  assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: 'alice', count: 0 });
  for (let i = 1; i <= 2; i++) await browser.request('POST', '/increment');
  assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: 'alice', count: 2 });

  const stolen = browser.jar.get(cookieName) ?? '';
  const record = await tessera.get(hashId(sidOf(stolen)));
  assert.ok(record, 'the session lives in the Tessera store, keyed by the sid hash');
  assert.equal(record.fields.user, '"alice"');
  assert.equal(record.fields.count, '2');
  assert.equal(record.userId, 'alice');

  // The per-user index works for the legacy app too: log out everywhere.
  const phone = new Browser(base);
  await phone.request('POST', '/login?user=alice');
  assert.equal(await engine.destroyUserSessions('alice'), 2);
  assert.deepEqual(JSON.parse((await phone.get('/state')).text), { user: null, count: 0 });

  await browser.request('POST', '/login?user=alice');
  const current = browser.jar.get(cookieName) ?? '';
  const logout = await browser.request('POST', '/logout');
  assert.equal(logout.status, 303);
  assert.equal(await tessera.get(hashId(sidOf(current))), null);
  const replay = new Browser(base);
  replay.jar.set(cookieName, current);
  assert.deepEqual(JSON.parse((await replay.get('/state')).text), { user: null, count: 0 });
}

describe('express-session on a Tessera store (toExpressSessionStore)', () => {
  const tessera = redisStore();
  const engine = new SessionEngine({ store: tessera, secrets });
  after(() => engine.close());

  it('logs in, counts and logs out over HTTP, on the Redis store', async () => {
    const store = toExpressSessionStore(tessera, {
      Store: expressSession.Store,
      userId: (s) => (typeof s.user === 'string' ? s.user : null),
    });
    const server = expressSessionApp(store);
    const base = await listen(server);
    try {
      await legacyFlow(base, ES_COOKIE, tessera, engine);
    } finally {
      await close(server);
    }
  });

  it('answers 503 when the Tessera store is down', async () => {
    const failing = new FailingStore();
    const server = expressSessionApp(toExpressSessionStore(failing));
    const base = await listen(server);
    try {
      const browser = new Browser(base);
      await browser.request('POST', '/login?user=dora');
      failing.failReads = true;
      assert.equal((await browser.get('/state')).status, 503);
    } finally {
      await close(server);
      await failing.close();
    }
  });
});

describe('@fastify/session on a Tessera store (toExpressSessionStore)', () => {
  it('logs in, counts and logs out over HTTP, on the Redis store', async () => {
    const tessera = redisStore();
    const engine = new SessionEngine({ store: tessera, secrets });
    const app = Fastify();
    await app.register(fastifyCookie);
    await app.register(fastifySession, {
      secret: secrets[0],
      cookieName: 'sessionId',
      cookie: { secure: false, maxAge: 60_000 },
      saveUninitialized: false,
      store: toExpressSessionStore(tessera, { userId: (s) => (typeof s.user === 'string' ? s.user : null) }),
    });
    const session = (request: unknown) =>
      (request as { session: LegacySession & { regenerate(): Promise<void>; destroy(): Promise<void> } }).session;
    app.get('/state', async (request) => ({ user: session(request).user ?? null, count: session(request).count ?? 0 }));
    app.post<{ Querystring: { user: string } }>('/login', async (request, reply) => {
      await session(request).regenerate();
      session(request).user = request.query.user;
      return reply.redirect('/state', 303);
    });
    app.post('/increment', async (request) => {
      const s = session(request);
      s.count = ((s.count as number | undefined) ?? 0) + 1;
      return { count: s.count };
    });
    app.post('/logout', async (request, reply) => {
      await session(request).destroy();
      return reply.redirect('/', 303);
    });
    await app.ready();
    const base = await listen(app.server);
    try {
      await legacyFlow(base, 'sessionId', tessera, engine);
    } finally {
      await close(app.server);
      await engine.close();
    }
  });
});

describe('Tessera on an express-session store (fromExpressSessionStore)', () => {
  runStoreConformance(
    { describe, it, beforeEach, afterEach },
    {
      name: 'express-session MemoryStore',
      createStore: () => fromExpressSessionStore(new expressSession.MemoryStore()),
    },
  );

  runBehaviourSuite('express adapter on express-session’s MemoryStore', makeExpressServer, {
    store: () => fromExpressSessionStore(new expressSession.MemoryStore()),
  });

  it('writes one JSON object with cookie.expires, which the store’s own expiry reads', async () => {
    const inner = new expressSession.MemoryStore();
    const store = fromExpressSessionStore(inner, { name: 'legacy' });
    assert.equal(store.name, 'legacy');
    assert.equal(typeof store.count, 'function', 'count, since the inner store has length');
    assert.equal(store.patch, undefined, 'no partial writes: the engine writes whole records');
    const expiresAt = Date.now() + 60_000;
    await store.set('k', { fields: { user: '"eve"' }, createdAt: Date.now(), expiresAt, userId: 'eve' });
    const raw = await new Promise<Record<string, unknown>>((resolve) =>
      inner.get('k', (_error, value) => resolve(value as Record<string, unknown>)),
    );
    assert.equal(new Date((raw.cookie as { expires: string }).expires).getTime(), expiresAt);
    assert.deepEqual((raw.tessera as { fields: unknown }).fields, { user: '"eve"' });
    assert.equal(await store.count?.(), 1);

    await store.set('old', { fields: {}, createdAt: Date.now(), expiresAt: Date.now() - 1, userId: null });
    assert.equal(await store.get('old'), null, 'expired by its cookie in the inner store');
  });

  it('reports a record it cannot read as CORRUPT_RECORD', async () => {
    const inner = new expressSession.MemoryStore();
    await new Promise<void>((resolve) => inner.set('bad', { cookie: {} }, () => resolve()));
    await assert.rejects(fromExpressSessionStore(inner).get('bad'), (e) => isSessionError(e, 'CORRUPT_RECORD'));
  });

  it('a request through the adapter reaches the inner store with the ID hash as sid', async () => {
    const seen: string[] = [];
    const inner = new expressSession.MemoryStore();
    const spy: ExpressSessionStoreLike = {
      get: (sid, cb) => {
        seen.push(sid);
        inner.get(sid, cb);
      },
      set: (sid, session, cb) => inner.set(sid, session, cb),
      destroy: (sid, cb) => inner.destroy(sid, cb),
    };
    const engine = new SessionEngine({ store: fromExpressSessionStore(spy), secrets });
    const s = engine.session(undefined);
    await s.set('user', 'fay');
    const cookie = (await engine.commit(s)).setCookie?.split(';')[0] ?? '';
    const again = engine.session(cookie);
    assert.equal(await again.get('user'), 'fay');
    assert.deepEqual(seen, [again.key]);
    assert.equal(fromExpressSessionStore(spy).count, undefined, 'no length, so no count');
  });
});
