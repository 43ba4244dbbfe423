// The adapter behaviour suite's cases (test/frameworks/behaviour.ts) for an app that runs in
// another runtime (Bun, Deno, workerd), over HTTP: the store lives there, so the app's /__store
// route reports its call counts and makes it fail (test/runtimes/app.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Browser } from '../support/browser.ts';
import { alteredTag } from '../support/forge.ts';

const COOKIE = 'tessera.sid';

/** A running app: its base URL, and how to stop it. */
export interface RunningApp {
  base: string;
  stop(): Promise<void>;
}

interface StoreReport {
  runtime: string;
  syncCrypto: boolean;
  total: number;
  calls: Record<string, number>;
}

const varyTokens = (headers: Headers) =>
  (headers.get('vary') ?? '')
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter(Boolean);

/**
 * Runs the cases against the app `start` starts. `runtime` and `syncCrypto` are what the app must
 * report (which runtime answered, and whether it hashed and signed with node:crypto or Web Crypto).
 */
export function runRuntimeSuite(
  name: string,
  start: () => Promise<RunningApp>,
  expected: { runtime: string; syncCrypto: boolean },
): void {
  describe(`${name}: the behaviour suite over HTTP`, () => {
    let app: RunningApp;
    const store = async (query = ''): Promise<StoreReport> => {
      const response = await fetch(`${app.base}/__store${query}`, { method: query ? 'POST' : 'GET' });
      return (await response.json()) as StoreReport;
    };
    const reset = () => store('?reset=1');

    before(async () => {
      app = await start();
    });
    after(async () => {
      await app?.stop();
    });

    it(`runs on ${expected.runtime}, hashing with ${expected.syncCrypto ? 'node:crypto' : 'Web Crypto'}`, async () => {
      const report = await store();
      assert.equal(report.runtime, expected.runtime);
      assert.equal(report.syncCrypto, expected.syncCrypto);
    });

    it('gives an untouched visitor no cookie and costs no store call', async () => {
      const browser = new Browser(app.base);
      await reset();
      const pub = await browser.get('/public');
      assert.equal(pub.text, 'public');
      const state = await browser.get('/state');
      assert.deepEqual(JSON.parse(state.text), { user: null, count: 0 });
      assert.deepEqual([...pub.setCookies, ...state.setCookies], []);
      assert.equal((await store()).total, 0);
    });

    it('carries the session cookie on the redirect after login (regenerate), beside the app’s own cookie', async () => {
      const browser = new Browser(app.base);
      const login = await browser.request('POST', '/login?user=alice');
      assert.equal(login.status, 303);
      const line = login.setCookies.find((l) => l.startsWith(`${COOKIE}=`)) ?? '';
      assert.match(line, /HttpOnly/);
      assert.match(line, /SameSite=Lax/);
      assert.doesNotMatch(line, /Secure/);
      assert.ok(login.setCookies.some((l) => l.startsWith('theme=dark')));
      assert.equal(login.headers.get('cache-control'), 'private, no-store');
      assert.ok(varyTokens(login.headers).includes('cookie'));
      assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: 'alice', count: 0 });
      // A second login gives a new ID; the old cookie then finds nothing.
      const first = browser.jar.get(COOKIE);
      await browser.request('POST', '/login?user=alice');
      assert.notEqual(browser.jar.get(COOKIE), first);
      const stale = new Browser(app.base);
      stale.jar.set(COOKIE, first ?? '');
      assert.deepEqual(JSON.parse((await stale.get('/state')).text), { user: null, count: 0 });
    });

    it('counts, one store read per request', async () => {
      const browser = new Browser(app.base);
      await browser.request('POST', '/login?user=bob');
      for (let i = 1; i <= 3; i++) {
        await reset();
        const response = await browser.request('POST', '/increment');
        assert.deepEqual(JSON.parse(response.text), { count: i });
        assert.equal((await store()).calls.get, 1);
      }
    });

    it('keeps the changes of concurrent requests to distinct keys', async () => {
      const browser = new Browser(app.base);
      await browser.request('POST', '/login?user=cora');
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      const responses = await Promise.all(keys.map((key) => browser.request('POST', `/set?key=${key}&value=v`)));
      for (const response of responses) assert.equal(response.status, 200);
      const data = JSON.parse((await browser.get('/keys')).text) as Record<string, unknown>;
      for (const key of keys) assert.equal(data[key], 'v', `${key} was kept`);
      assert.equal(data.user, 'cora');
    });

    it('logs out: the cookie is cleared and the old cookie no longer works', async () => {
      const browser = new Browser(app.base);
      await browser.request('POST', '/login?user=carol');
      const stolen = browser.jar.get(COOKIE) ?? '';
      const logout = await browser.request('POST', '/logout');
      assert.equal(logout.status, 303);
      assert.equal(browser.jar.has(COOKIE), false);
      const replay = new Browser(app.base);
      replay.jar.set(COOKIE, stolen);
      assert.deepEqual(JSON.parse((await replay.get('/state')).text), { user: null, count: 0 });
    });

    it('gives forged cookies a fresh session with zero store reads, and clears them', async () => {
      const browser = new Browser(app.base);
      await browser.request('POST', '/login?user=mallory');
      const [id = '', tag = ''] = (browser.jar.get(COOKIE) ?? '').split('.');
      for (const forged of [`${id}.${alteredTag(tag)}`, `${id}.`, id, `${'A'.repeat(43)}.${tag}`, '%%%']) {
        const attacker = new Browser(app.base);
        attacker.jar.set(COOKIE, forged);
        await reset();
        const response = await attacker.get('/state');
        assert.deepEqual(JSON.parse(response.text), { user: null, count: 0 });
        assert.equal((await store()).total, 0, `no store call for ${forged.slice(0, 16)}`);
      }
      const untouched = new Browser(app.base);
      untouched.jar.set(COOKIE, `${id}.${alteredTag(tag)}`);
      await untouched.get('/public');
      assert.equal(untouched.jar.has(COOKIE), false, 'a forged cookie is cleared on any response');
    });

    it('keeps the app’s own cache headers, and adds none when cacheHeaders is off', async () => {
      const own = await new Browser(app.base).request('POST', '/cached');
      assert.equal(own.headers.get('cache-control'), 'no-cache');
      assert.deepEqual(varyTokens(own.headers), ['accept-encoding', 'cookie']);
      const off = await new Browser(app.base).request('POST', '/v/no-cache-headers/increment');
      assert.ok(off.setCookies.some((l) => l.startsWith(`${COOKIE}=`)));
      assert.equal(off.headers.get('cache-control'), null);
    });

    it('skips the commit of a 5xx response by default, and makes it with commitOnServerError', async () => {
      const browser = new Browser(app.base);
      await browser.request('POST', '/login?user=frank');
      await browser.request('POST', '/increment');
      const failed = await browser.request('POST', '/fail');
      assert.equal(failed.status, 500);
      assert.deepEqual(failed.setCookies, []);
      assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: 'frank', count: 1 });
      const keeps = new Browser(app.base);
      await keeps.request('POST', '/v/commit-on-5xx/login?user=gina');
      assert.equal((await keeps.request('POST', '/v/commit-on-5xx/fail')).status, 500);
      assert.deepEqual(JSON.parse((await keeps.get('/v/commit-on-5xx/state')).text), { user: 'gina', count: 1 });
    });

    it('answers 503 when the store fails to load or to write, and serves what needs no session', async () => {
      const browser = new Browser(app.base);
      await browser.request('POST', '/login?user=dave');
      try {
        await store('?failReads=1');
        assert.equal((await browser.get('/state')).status, 503);
        assert.equal((await browser.get('/public')).status, 200);
        await store('?failWrites=1');
        const newcomer = new Browser(app.base);
        assert.equal((await newcomer.request('POST', '/increment')).status, 503);
        assert.equal(newcomer.jar.has(COOKIE), false);
      } finally {
        await store('?failReads=0&failWrites=0');
      }
      assert.equal((await browser.request('POST', '/increment')).status, 200, 'recovers when the store is back');
    });
  });
}

/** Starts `command` (test/runtimes/serve.ts under Bun or Deno) and waits for its `listening <port>` line. */
export function startProcess(command: string, args: string[], env: Record<string, string>): Promise<RunningApp> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise<RunningApp>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not listen within 30 s:\n${output}`));
    }, 30_000);
    const exited = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${code}) before listening:\n${output}`));
    };
    child.once('exit', exited);
    child.stderr.on('data', (chunk) => (output += chunk));
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const port = /listening (\d+)/.exec(output)?.[1];
      if (!port) return;
      clearTimeout(timer);
      child.off('exit', exited);
      resolve({
        base: `http://127.0.0.1:${port}`,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const done = new Promise((settle) => child.once('exit', settle));
          child.kill('SIGTERM');
          await done;
        },
      });
    });
  });
}
