// The Express and node:http adapters hold a response only when the session's commit will write
// or send something; a request that reads its session (or never touches it) leaves it alone.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { commitSession, session } from '../../src/frameworks/express.ts';
import { session as nodeSession } from '../../src/frameworks/node.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

const SECRET = 'express-hold-test-secret-0123456789abcdef';
let clock = Date.now();
const store = new MemoryStore();
const engine = new SessionEngine<Record<string, unknown>>({
  store,
  secrets: [SECRET],
  idleTimeoutSeconds: 3600,
  touchAfterSeconds: 600,
  now: () => clock,
});
/** Whether the adapter replaced the response's methods (it holds the response). */
const held = (res: express.Response) => Object.hasOwn(res, 'end');
let server: Server;
let base = '';
let nodeServer: Server;
let nodeBase = '';

before(async () => {
  const app = express();
  app.use(session(engine));
  app.get('/read', async (req, res) => {
    const n = await (req.session as unknown as { get(k: string): Promise<unknown> }).get('n');
    res.json({ n: n ?? null, held: held(res) });
  });
  app.post('/set', async (req, res) => {
    await (req.session as unknown as { set(k: string, v: unknown): Promise<void> }).set('n', 1);
    res.json({ held: held(res) });
  });
  app.get('/late', async (req, res) => {
    await req.session.load();
    res.write('started;');
    const s = req.session as unknown as { set(k: string, v: unknown): Promise<void> };
    const code = await s.set('n', 2).then(
      () => 'changed',
      (error: unknown) => (isSessionError(error, 'SESSION_COMMITTED') ? 'SESSION_COMMITTED' : String(error)),
    );
    res.end(code);
  });
  // Mounted on the app and again on a router: the router's mount must keep the app's session.
  const router = express.Router();
  router.use(session(engine));
  router.get('/', async (req, res) => {
    const mark = await (req.session as unknown as { get(k: string): Promise<unknown> }).get('mark');
    await commitSession(req);
    res.json({ mark: mark ?? null });
  });
  app.use(
    '/twice',
    (req, _res, next) => {
      (req.session as unknown as { set(k: string, v: unknown): Promise<void> })
        .set('mark', 'outer')
        .then(() => next(), next);
    },
    router,
  );
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  nodeServer = createServer(
    nodeSession(engine, async (req, res, s) => {
      if (req.method === 'POST') await s.set('n', 1);
      else await s.get('n');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ held: Object.hasOwn(res, 'end') }));
    }),
  );
  await new Promise<void>((resolve) => nodeServer.listen(0, '127.0.0.1', resolve));
  nodeBase = `http://127.0.0.1:${(nodeServer.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((resolve) => nodeServer.close(resolve));
  await new Promise((resolve) => server.close(resolve));
  await engine.close();
});

const cookieOf = (response: Response) => response.headers.getSetCookie()[0]?.split(';')[0] ?? '';

describe('Express: the response is held only when the commit has work', () => {
  it('a read leaves the response alone; a change holds it and the cookie goes out first', async () => {
    const created = await fetch(`${base}/set`, { method: 'POST' });
    assert.deepEqual(await created.json(), { held: true });
    const cookie = cookieOf(created);
    assert.match(cookie, /^tessera\.sid=/);

    const read = await fetch(`${base}/read`, { headers: { cookie } });
    assert.deepEqual(await read.json(), { n: 1, held: false });
    assert.deepEqual(read.headers.getSetCookie(), []);
  });

  it('a touch that comes due is written: the read holds the response then', async () => {
    const created = await fetch(`${base}/set`, { method: 'POST' });
    const cookie = cookieOf(created);
    const key = (await engine.session(cookie).load()).key as string;
    const before = (await store.get(key))?.expiresAt as number;
    clock += 700_000; // past touchAfterSeconds
    const read = await fetch(`${base}/read`, { headers: { cookie } });
    assert.deepEqual(await read.json(), { n: 1, held: true });
    assert.ok(((await store.get(key))?.expiresAt as number) > before, 'the touch moved the expiry');
  });

  it('a cookie whose session is gone is cleared, and a forged one too', async () => {
    const created = await fetch(`${base}/set`, { method: 'POST' });
    const cookie = cookieOf(created);
    const key = (await engine.session(cookie).load()).key as string;
    await store.destroy(key);
    const gone = await fetch(`${base}/read`, { headers: { cookie } });
    assert.deepEqual(await gone.json(), { n: null, held: true });
    assert.match(gone.headers.getSetCookie()[0] ?? '', /^tessera\.sid=;.*Max-Age=0/);

    const forged = await fetch(`${base}/read`, {
      headers: { cookie: `tessera.sid=${'A'.repeat(43)}.${'B'.repeat(43)}` },
    });
    assert.deepEqual(await forged.json(), { n: null, held: true });
    assert.match(forged.headers.getSetCookie()[0] ?? '', /^tessera\.sid=;.*Max-Age=0/);
  });

  it('a change after the response started throws SESSION_COMMITTED and changes nothing', async () => {
    const created = await fetch(`${base}/set`, { method: 'POST' });
    const cookie = cookieOf(created);
    const late = await fetch(`${base}/late`, { headers: { cookie } });
    assert.equal(await late.text(), 'started;SESSION_COMMITTED');
    const read = await fetch(`${base}/read`, { headers: { cookie } });
    assert.equal(((await read.json()) as { n: number }).n, 1);
  });
});

describe('Express: session() mounted twice', () => {
  it("the second mount keeps the first one's session: what a middleware between them set is seen and sent once", async () => {
    const response = await fetch(`${base}/twice`);
    assert.deepEqual(await response.json(), { mark: 'outer' });
    assert.equal(response.headers.getSetCookie().length, 1, 'one session cookie');
    const cookie = cookieOf(response);
    assert.equal(await engine.session(cookie).get('mark'), 'outer', 'the change was stored');
  });
});

describe('node:http: the response is held only when the commit has work', () => {
  it('a read leaves the response alone; a change holds it and sends the cookie', async () => {
    const created = await fetch(nodeBase, { method: 'POST' });
    assert.deepEqual(await created.json(), { held: true });
    const cookie = cookieOf(created);
    assert.match(cookie, /^tessera\.sid=/);
    const read = await fetch(nodeBase, { headers: { cookie } });
    assert.deepEqual(await read.json(), { held: false });
    assert.deepEqual(read.headers.getSetCookie(), []);
  });
});
