import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import type { Session } from '../../src/core/session.ts';
import { type Store, supports } from '../../src/core/store.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
import { BROWSER_AGENT, Browser, close, listen } from '../support/browser.ts';
import { alteredTag } from '../support/forge.ts';

declare module '../../src/core/session.ts' {
  interface SessionData {
    user: string;
    count: number;
  }
  interface FlashData {
    notice: string;
  }
}

export const secrets = ['framework-suite-secret-0123456789abcdef'];
export const COOKIE = 'tessera.sid';

/**
 * What every adapter's test app does, whatever the framework. Routes:
 *
 * | route | does |
 * |---|---|
 * | `GET /public` | answers `public` without touching the session |
 * | `GET /state` | `{ user, count }` as JSON |
 * | `POST /login?user=NAME` | {@link actions.login}, sets a `theme=dark` cookie the framework's way, 303 to `/state` (NAME: letters, digits, `-`) |
 * | `POST /increment` | {@link actions.increment}, `{ count }` as JSON |
 * | `POST /logout` | {@link actions.logout}, 303 to `/` |
 * | `POST /cached` | {@link actions.increment} with the app's own `Cache-Control: no-cache` and `Vary: Accept-Encoding` |
 * | `POST /fail` | {@link actions.increment}, then answers 500 (`failed`) without throwing |
 * | `POST /throw` | {@link actions.increment}, then throws an `Error` the framework answers with 500 |
 */
export const actions = {
  async state(session: Session): Promise<{ user: string | null; count: number }> {
    return { user: (await session.get('user')) ?? null, count: (await session.get('count')) ?? 0 };
  },
  /**
   * A login: a new ID, the user, "remember me" unless the name starts with `guest-`, and a
   * flash message for the page the login redirects to.
   */
  async login(session: Session, user: string): Promise<void> {
    await session.regenerate();
    await session.set('user', user);
    await session.setUser(user, { label: 'behaviour suite' });
    await session.rememberMe(!user.startsWith('guest-'));
    await session.flash('notice', `welcome ${user}`);
  },
  async increment(session: Session): Promise<{ count: number }> {
    const count = ((await session.get('count')) ?? 0) + 1;
    await session.set('count', count);
    return { count };
  },
  async logout(session: Session): Promise<void> {
    await session.destroy();
  },
};

/** The extra cookie `/login` sets through the framework, to show the session cookie is appended. */
export const THEME_COOKIE = 'theme=dark; Path=/';

/** Builds the test app around an engine, as a `node:http` server that is not listening yet. */
export type MakeServer = (engine: SessionEngine) => Server | Promise<Server>;

/** A memory store whose calls can be made to fail, like a store that went down. */
export class FailingStore extends MemoryStore {
  failReads = false;
  failWrites = false;

  override async get(key: string) {
    if (this.failReads) throw new Error('connection refused');
    return super.get(key);
  }
  override async set(key: string, record: Parameters<MemoryStore['set']>[1]) {
    if (this.failWrites) throw new Error('connection refused');
    return super.set(key, record);
  }
  override async patch(key: string, change: Parameters<MemoryStore['patch']>[1]) {
    if (this.failWrites) throw new Error('connection refused');
    return super.patch(key, change);
  }
}

/** The response's Vary tokens, lower-cased. */
const varyTokens = (headers: Headers) =>
  (headers.get('vary') ?? '')
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter(Boolean);

export interface BehaviourOptions {
  /** The store under the engine. @default a MemoryStore */
  store?: () => Store;
  /**
   * The adapter reports the client's IP address (its own way, or through an option the test app
   * sets), so `setUser` records it. @default true
   */
  ip?: boolean;
}

/**
 * The behaviour every adapter must have, over real HTTP: lazy loading, no cookie for untouched
 * visitors, commit before the response (a redirect after login carries the cookie), logout,
 * forged cookies costing no store read, and 503 when the store fails.
 */
export function runBehaviourSuite(name: string, makeServer: MakeServer, options: BehaviourOptions = {}): void {
  describe(`${name}: shared behaviour over HTTP`, () => {
    const store = new CountingStore(options.store?.() ?? new MemoryStore());
    const engine = new SessionEngine({ store, secrets });
    let server: Server;
    let base: string;

    before(async () => {
      server = await makeServer(engine);
      base = await listen(server);
    });
    after(async () => {
      await close(server);
      await engine.close();
    });

    const post = (browser: Browser, path: string) => browser.request('POST', path);

    it('gives an untouched visitor no cookie and costs no store call', async () => {
      const browser = new Browser(base);
      store.reset();
      const pub = await browser.get('/public');
      assert.equal(pub.status, 200);
      assert.equal(pub.text, 'public');
      const state = await browser.get('/state');
      assert.deepEqual(JSON.parse(state.text), { user: null, count: 0 });
      assert.deepEqual([...pub.setCookies, ...state.setCookies], []);
      assert.equal(store.total, 0);
    });

    it('carries the session cookie on the redirect after login, beside the app’s own cookie', async () => {
      const browser = new Browser(base);
      const login = await post(browser, '/login?user=alice');
      assert.equal(login.status, 303);
      assert.equal(new URL(login.location ?? '', base).pathname, '/state');
      const session = login.setCookies.find((line) => line.startsWith(`${COOKIE}=`));
      assert.ok(session, 'the redirect sets the session cookie');
      assert.match(session, /HttpOnly/);
      assert.match(session, /SameSite=Lax/i); // attribute values are case-insensitive (Next.js writes lax)
      assert.doesNotMatch(session, /Secure/);
      assert.ok(
        login.setCookies.some((line) => line.startsWith('theme=dark')),
        'the cookie the app set is kept',
      );
      const next = await browser.get(new URL(login.location ?? '', base).pathname);
      assert.deepEqual(JSON.parse(next.text), { user: 'alice', count: 0 });
    });

    it('counts, one store read per request (two without partial writes)', async () => {
      const browser = new Browser(base);
      await post(browser, '/login?user=bob');
      for (let i = 1; i <= 3; i++) {
        store.reset();
        const response = await post(browser, '/increment');
        assert.equal(response.status, 200);
        assert.deepEqual(JSON.parse(response.text), { count: i });
        // Without partial writes the engine reads the record again for its whole-record write.
        assert.equal(store.calls.get, store.patch ? 1 : 2);
      }
      assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: 'bob', count: 3 });
    });

    it('logs out: the cookie is cleared and the old cookie no longer works', async () => {
      const browser = new Browser(base);
      await post(browser, '/login?user=carol');
      const stolen = browser.jar.get(COOKIE);
      assert.ok(stolen);
      const logout = await post(browser, '/logout');
      assert.equal(logout.status, 303);
      assert.match(logout.setCookies.find((line) => line.startsWith(`${COOKIE}=`)) ?? '', /Expires=Thu, 01 Jan 1970/);
      assert.equal(browser.jar.has(COOKIE), false);
      const replay = new Browser(base);
      replay.jar.set(COOKIE, stolen);
      assert.deepEqual(JSON.parse((await replay.get('/state')).text), { user: null, count: 0 });
    });

    it('gives forged cookies a fresh session with zero store reads', async () => {
      const browser = new Browser(base);
      await post(browser, '/login?user=mallory');
      const value = browser.jar.get(COOKIE) ?? '';
      const [id = '', tag = ''] = value.split('.');
      const forgeries = [`${id}.${alteredTag(tag)}`, `${id}.`, id, `${'A'.repeat(43)}.${tag}`, '%%%', 'x'.repeat(4000)];
      for (const forged of forgeries) {
        const attacker = new Browser(base);
        attacker.jar.set(COOKIE, forged);
        store.reset();
        const response = await attacker.get('/state');
        assert.equal(response.status, 200);
        assert.deepEqual(JSON.parse(response.text), { user: null, count: 0 });
        assert.equal(store.total, 0, `no store call for ${forged.slice(0, 16)}`);
      }
    });

    it('marks responses that set the session cookie uncacheable by shared caches', async () => {
      const browser = new Browser(base);
      const pub = await browser.get('/public');
      assert.equal(pub.headers.get('cache-control'), null, 'no session cookie, no cache headers');
      const login = await post(browser, '/login?user=erin');
      assert.equal(login.headers.get('cache-control'), 'private, no-store');
      assert.ok(varyTokens(login.headers).includes('cookie'), `Vary: ${login.headers.get('vary')}`);
      const unchanged = await browser.get('/state');
      assert.deepEqual(unchanged.setCookies, []);
      assert.equal(unchanged.headers.get('cache-control'), null, 'an unchanged cookie adds nothing');
      const logout = await post(browser, '/logout');
      assert.equal(logout.headers.get('cache-control'), 'private, no-store', 'clearing the cookie counts too');

      const newcomer = new Browser(base);
      const own = await post(newcomer, '/cached');
      assert.ok(newcomer.jar.has(COOKIE));
      assert.equal(own.headers.get('cache-control'), 'no-cache', 'the app’s own Cache-Control is kept');
      // The app's token and Cookie, beside any the framework adds (Next.js varies on its RSC headers).
      const vary = varyTokens(own.headers);
      assert.ok(vary.includes('accept-encoding') && vary.includes('cookie'), `Vary: ${own.headers.get('vary')}`);
      assert.equal(vary.indexOf('cookie'), vary.lastIndexOf('cookie'), 'Cookie once');

      const off = new SessionEngine({ store: new MemoryStore(), secrets, cacheHeaders: false });
      const offServer = await makeServer(off);
      const offBase = await listen(offServer);
      try {
        const response = await post(new Browser(offBase), '/increment');
        assert.ok(response.setCookies.some((line) => line.startsWith(`${COOKIE}=`)));
        assert.equal(response.headers.get('cache-control'), null);
        assert.ok(!varyTokens(response.headers).includes('cookie'), `Vary: ${response.headers.get('vary')}`);
      } finally {
        await close(offServer);
        await off.close();
      }
    });

    it('skips the commit of a 5xx response by default, and makes it with commitOnServerError', async () => {
      const browser = new Browser(base);
      await post(browser, '/login?user=frank');
      await post(browser, '/increment');
      for (const path of ['/fail', '/throw']) {
        const failed = await post(browser, path);
        assert.equal(failed.status, 500, path);
        assert.deepEqual(failed.setCookies, [], path);
      }
      assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: 'frank', count: 1 });
      const newcomer = new Browser(base);
      await post(newcomer, '/fail');
      assert.equal(newcomer.jar.has(COOKIE), false, 'a new session is not stored from a 5xx');

      const keeps = new SessionEngine({ store: new MemoryStore(), secrets, commitOnServerError: true });
      const keepsServer = await makeServer(keeps);
      const keepsBase = await listen(keepsServer);
      try {
        const visitor = new Browser(keepsBase);
        await post(visitor, '/login?user=gina');
        const failed = await post(visitor, '/fail');
        assert.equal(failed.status, 500);
        assert.deepEqual(JSON.parse((await visitor.get('/state')).text), { user: 'gina', count: 1 });
      } finally {
        await close(keepsServer);
        await keeps.close();
      }
    });

    it('answers 503 when the store fails to load or to write, and serves what needs no session', async () => {
      const failing = new FailingStore();
      const broken = new SessionEngine({ store: failing, secrets });
      const brokenServer = await makeServer(broken);
      const brokenBase = await listen(brokenServer);
      try {
        const browser = new Browser(brokenBase);
        await post(browser, '/login?user=dave');
        assert.ok(browser.jar.get(COOKIE));

        failing.failReads = true;
        assert.equal((await browser.get('/state')).status, 503);
        assert.equal((await browser.get('/public')).status, 200);

        failing.failReads = false;
        failing.failWrites = true;
        const newcomer = new Browser(brokenBase);
        const write = await post(newcomer, '/increment');
        assert.equal(write.status, 503);
        assert.equal(newcomer.jar.has(COOKIE), false, 'no cookie for a session that was not stored');
        assert.equal((await post(browser, '/increment')).status, 503);
      } finally {
        await close(brokenServer);
        await broken.close();
      }
    });

    it('records the login: remember me, the device, the time, and a flash for the next request only', async () => {
      const browser = new Browser(base);
      const login = await post(browser, '/login?user=hana');
      const cookie = login.setCookies.find((line) => line.startsWith(`${COOKIE}=`)) ?? '';
      const expires = Date.parse(/Expires=([^;]+)/.exec(cookie)?.[1] ?? '');
      assert.ok(Math.abs(expires - (Date.now() + 30 * 86_400_000)) < 60_000, `remembered for 30 days: ${cookie}`);
      const guest = await post(new Browser(base), '/login?user=guest-ivo');
      const guestCookie = guest.setCookies.find((line) => line.startsWith(`${COOKIE}=`)) ?? '';
      assert.ok(guestCookie);
      assert.doesNotMatch(guestCookie, /Expires=/, 'not remembered: a browser-session cookie');

      if (supports(store, 'userIndex')) {
        const [device] = await engine.listUserSessions('hana');
        assert.ok(device, 'the login is in the user index');
        assert.equal(device.userAgent, BROWSER_AGENT);
        assert.equal(device.ip, (options.ip ?? true) ? '127.0.0.0' : null, 'the IP address, truncated by default');
        assert.equal(device.label, 'behaviour suite');
      } else {
        await assert.rejects(engine.listUserSessions('hana'), (error) => isSessionError(error, 'NOT_SUPPORTED'));
      }
      const header = `${COOKIE}=${browser.jar.get(COOKIE)}`;
      assert.equal(await engine.session(header).authenticatedWithin(60), true);

      // The flash survives a request that does not touch the session, and one that does ends it.
      assert.equal((await browser.get('/public')).status, 200);
      assert.equal(await engine.session(header).flashed('notice'), 'welcome hana');
      assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: 'hana', count: 0 });
      assert.equal(await engine.session(header).flashed('notice'), undefined, 'shown to one request only');
    });

    it('answers 500 for data the engine’s schema refuses, and keeps what was stored', async () => {
      // A Standard Schema written out by hand: a count of at most 1.
      const schema = {
        '~standard': {
          version: 1 as const,
          vendor: 'behaviour',
          validate: (value: unknown) => {
            const count = (value as { count?: unknown }).count;
            return count === undefined || (typeof count === 'number' && count <= 1)
              ? { value }
              : { issues: [{ message: 'at most 1', path: ['count'] }] };
          },
        },
      };
      const checked = new SessionEngine({ store: new MemoryStore(), secrets, schema });
      const checkedServer = await makeServer(checked);
      const checkedBase = await listen(checkedServer);
      try {
        const browser = new Browser(checkedBase);
        assert.equal((await post(browser, '/increment')).status, 200);
        const refused = await post(browser, '/increment');
        assert.equal(refused.status, 500);
        assert.deepEqual(refused.setCookies, []);
        assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: null, count: 1 });
      } finally {
        await close(checkedServer);
        await checked.close();
      }
    });

    it('carries the session in a header with a header transport, and sets no session cookie', async () => {
      const tokens = new SessionEngine({ store: new MemoryStore(), secrets, transport: { header: 'authorization' } });
      const tokenServer = await makeServer(tokens);
      const tokenBase = await listen(tokenServer);
      try {
        const client = new Browser(tokenBase);
        const login = await post(client, '/login?user=jules');
        assert.equal(login.status, 303);
        assert.deepEqual(
          login.setCookies.filter((line) => line.startsWith(`${COOKIE}=`)),
          [],
          'no session cookie in that mode',
        );
        const token = login.headers.get('set-auth-token');
        assert.match(token ?? '', /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]+$/, 'the new value is in Set-Auth-Token');
        assert.equal(login.headers.get('cache-control'), 'private, no-store');
        assert.ok(varyTokens(login.headers).includes('authorization'), `Vary: ${login.headers.get('vary')}`);
        assert.deepEqual(
          JSON.parse((await client.get('/state')).text),
          { user: null, count: 0 },
          'no value, no session',
        );
        client.headers.authorization = `Bearer ${token}`;
        assert.deepEqual(JSON.parse((await client.get('/state')).text), { user: 'jules', count: 0 });
        const counted = await post(client, '/increment');
        assert.deepEqual(JSON.parse(counted.text), { count: 1 });
        assert.equal(counted.headers.get('set-auth-token'), null, 'an unchanged value is not sent again');
        const logout = await post(client, '/logout');
        assert.equal(logout.headers.get('set-auth-token'), '', 'an empty value: drop it');
        assert.deepEqual(JSON.parse((await client.get('/state')).text), { user: null, count: 0 });
        const forged = new Browser(tokenBase);
        const [tokenId = '', tokenTag = ''] = (token ?? '').split('.');
        forged.headers.authorization = `Bearer ${tokenId}.${alteredTag(tokenTag)}`;
        store.reset();
        assert.deepEqual(JSON.parse((await forged.get('/state')).text), { user: null, count: 0 });
      } finally {
        await close(tokenServer);
        await tokens.close();
      }
    });
  });
}
