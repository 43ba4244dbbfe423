import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { createDemoApp } from '../../examples/demo/app.ts';
import { SessionEngine } from '../../src/core/engine.ts';
import { session } from '../../src/frameworks/express.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
import { Browser, close, listen } from '../support/browser.ts';
import { alteredTag } from '../support/forge.ts';

const secrets = ['express-test-secret-0123456789abcdefghij'];

describe('express demo over real HTTP', () => {
  const store = new CountingStore(new MemoryStore());
  const engine = new SessionEngine({ store, secrets });
  let server: Server;
  let base: string;

  before(async () => {
    server = createServer(createDemoApp(engine));
    base = await listen(server);
  });
  after(async () => {
    await close(server);
    await engine.close();
  });

  it('logs in, counts, logs out, and the old cookie no longer works', async () => {
    const browser = new Browser(base);
    const first = await browser.get('/');
    assert.equal(first.status, 200);
    assert.deepEqual(first.setCookies, [], 'an untouched visitor gets no cookie');

    const login = await browser.post('/login', { user: 'alice' });
    assert.equal(login.status, 303);
    assert.equal(login.setCookies.length, 1, 'the redirect after login carries the session cookie');
    assert.match(login.setCookies[0] ?? '', /HttpOnly/);
    assert.match(login.setCookies[0] ?? '', /SameSite=Lax/);
    const home = await browser.get('/');
    assert.match(home.text, /<b id="user">alice<\/b>/);

    await browser.post('/increment');
    await browser.post('/increment');
    const state = JSON.parse((await browser.get('/api/state')).text);
    assert.deepEqual(state, { user: 'alice', count: 2 });

    const stolen = browser.cookieHeader;
    const logout = await browser.post('/logout');
    assert.equal(logout.status, 303);
    assert.match(logout.setCookies[0] ?? '', /Expires=Thu, 01 Jan 1970/);
    assert.equal(browser.jar.size, 0);

    const replay = new Browser(base);
    for (const part of stolen.split('; ')) {
      const at = part.indexOf('=');
      replay.jar.set(part.slice(0, at), part.slice(at + 1));
    }
    const afterLogout = JSON.parse((await replay.get('/api/state')).text);
    assert.deepEqual(afterLogout, { user: null, count: 0 });
  });

  it('gives a forged or malformed cookie a fresh session with zero store reads', async () => {
    const browser = new Browser(base);
    await browser.post('/login', { user: 'mallory' });
    const [name, value = ''] = browser.cookieHeader.split('=');
    const [id = '', tag = ''] = value.split('.');
    const forgeries = [
      `${id}.${alteredTag(tag)}`,
      `${id}.`,
      id,
      `${'A'.repeat(43)}.${tag}`,
      'x'.repeat(8000),
      '%%%.%%%',
      `${id}.${tag}.extra`,
    ];
    for (const forged of forgeries) {
      store.reset();
      const response = await fetch(`${base}/api/state`, { headers: { cookie: `${name}=${forged}` } });
      assert.deepEqual(await response.json(), { user: null, count: 0 });
      assert.equal(store.calls.get, 0, `no store read for ${forged.slice(0, 20)}`);
      assert.equal(store.total, 0);
    }
  });

  it('logs a user out everywhere', async () => {
    const laptop = new Browser(base);
    const phone = new Browser(base);
    await laptop.post('/login', { user: 'bob' });
    await phone.post('/login', { user: 'bob' });
    assert.match((await phone.get('/')).text, /<b id="devices">2<\/b>/);
    const everywhere = await laptop.post('/logout-everywhere');
    assert.equal(everywhere.location, '/?ended=2', 'the count of ended sessions is shown after the redirect');
    assert.match((await laptop.get('/?ended=2')).text, /Logged out everywhere: 2 sessions ended\./);
    assert.equal(JSON.parse((await phone.get('/api/state')).text).user, null);
  });

  it('logs out the other devices, and revokes only a device of the same user', async () => {
    const laptop = new Browser(base);
    const phone = new Browser(base);
    const tablet = new Browser(base);
    const eve = new Browser(base);
    for (const b of [laptop, phone, tablet]) await b.post('/login', { user: 'cy', label: 'a device' });
    await eve.post('/login', { user: 'eve' });
    const key = (await engine.listUserSessions('cy'))[0]?.key as string;
    const refused = await eve.post('/devices/revoke', { key });
    assert.equal(refused.status, 404, "another user's session is not a device of mine");
    assert.equal((await engine.listUserSessions('cy')).length, 3);
    await laptop.post('/logout-others');
    assert.match((await laptop.get('/')).text, /Logged out of 2 other sessions\./);
    for (const b of [phone, tablet]) assert.equal(JSON.parse((await b.get('/api/state')).text).user, null);
    assert.equal(JSON.parse((await laptop.get('/api/state')).text).user, 'cy');
  });

  it('keeps both keys of the panel’s two concurrent requests', async () => {
    const browser = new Browser(base);
    await browser.post('/login', { user: 'dee' });
    const cookie = browser.cookieHeader;
    const send = (side: string) =>
      fetch(`${base}/api/race/${side}`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json' },
        body: JSON.stringify({ value: `${side} 1` }),
      });
    await Promise.all([send('left'), send('right')]);
    assert.deepEqual(JSON.parse((await browser.get('/api/race')).text), { left: 'left 1', right: 'right 1' });
  });
});

describe('express adapter', () => {
  it('keeps every key of 200 concurrent requests on one session', async () => {
    const engine = new SessionEngine<Record<string, unknown>>({ store: new MemoryStore(), secrets });
    const app = express();
    app.use(session(engine));
    app.post('/set/:name', async (req, res) => {
      await (req.session as unknown as { set(k: string, v: unknown): Promise<void> }).set(req.params.name, true);
      res.sendStatus(204);
    });
    app.get('/keys', async (req, res) => {
      res.json(Object.keys(await req.session.all()));
    });
    const server = createServer(app);
    const base = await listen(server);
    try {
      const browser = new Browser(base);
      await browser.post('/set/first');
      const cookie = browser.cookieHeader;
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => fetch(`${base}/set/k${i}`, { method: 'POST', headers: { cookie } })),
      );
      const keys: string[] = await (await fetch(`${base}/keys`, { headers: { cookie } })).json();
      for (let i = 0; i < 200; i++) assert.ok(keys.includes(`k${i}`), `k${i} kept`);
    } finally {
      await close(server);
    }
  });

  it('keeps a session destroyed while a slow request is in flight destroyed', async () => {
    const engine = new SessionEngine<Record<string, unknown>>({ store: new MemoryStore(), secrets });
    const app = express();
    app.use(session(engine));
    let releaseSlow!: () => void;
    const slowMayFinish = new Promise<void>((resolve) => (releaseSlow = resolve));
    let slowLoaded!: () => void;
    const slowHasLoaded = new Promise<void>((resolve) => (slowLoaded = resolve));
    const s = (req: express.Request) => req.session as unknown as { set(k: string, v: unknown): Promise<void> };
    app.post('/login', async (req, res) => {
      await s(req).set('user', 'alice');
      res.sendStatus(204);
    });
    app.post('/slow', async (req, res) => {
      await req.session.load();
      slowLoaded();
      await slowMayFinish;
      await s(req).set('cart', ['book']);
      res.sendStatus(204);
    });
    app.post('/logout', async (req, res) => {
      await req.session.destroy();
      res.sendStatus(204);
    });
    app.get('/state', async (req, res) => {
      res.json(await req.session.all());
    });
    const server = createServer(app);
    const base = await listen(server);
    try {
      const browser = new Browser(base);
      await browser.post('/login');
      const cookie = browser.cookieHeader;
      const slow = fetch(`${base}/slow`, { method: 'POST', headers: { cookie } });
      await slowHasLoaded;
      await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } });
      releaseSlow();
      const slowResponse = await slow;
      assert.equal(slowResponse.status, 204);
      assert.match(slowResponse.headers.get('set-cookie') ?? '', /Expires=Thu, 01 Jan 1970/);
      assert.deepEqual(await (await fetch(`${base}/state`, { headers: { cookie } })).json(), {});
    } finally {
      await close(server);
    }
  });

  it('answers 503 when the store fails, without hanging', async () => {
    const failing = new MemoryStore();
    failing.get = async () => {
      throw new Error('connection refused');
    };
    const engine = new SessionEngine({ store: failing, secrets });
    const ok = new SessionEngine({ store: new MemoryStore(), secrets });
    const s = ok.session(undefined);
    await s.set('user', 'x');
    const cookie = (await ok.commit(s)).setCookie?.split(';')[0] ?? '';
    const app = express();
    app.set('env', 'test');
    app.use(session(engine));
    app.get('/', async (req, res) => {
      res.json({ user: await req.session.get('user') });
    });
    const server = createServer(app);
    const base = await listen(server);
    try {
      const response = await fetch(base, { headers: { cookie } });
      assert.equal(response.status, 503);
    } finally {
      await close(server);
    }
  });
});
