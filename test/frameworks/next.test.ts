// Next.js 16 (App Router), built with `next build` once (in `before`) and served by Next's own
// production server (`next({ dev: false })`, what `next start` runs) in the test process: Route
// Handlers with `session(engine, handler)` answer the behaviour suite over HTTP, a Server
// Component reads the session that a Server Action (a form posted without JavaScript) changed,
// and proxy.js (Next.js 16's middleware, on the Node.js runtime) changes the session of the
// requests under /proxied before their route or page runs.
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SessionEngine } from '../../src/core/engine.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { Browser, close, listen } from '../support/browser.ts';
import { ROOT } from '../support/packed.ts';
import { COOKIE, runBehaviourSuite, secrets } from './behaviour.ts';
import { type BuiltApp, buildApp, makeBuiltServer } from './built-app.ts';

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;
interface NextServer {
  prepare(): Promise<void>;
  getRequestHandler(): NodeHandler;
  close(): Promise<void>;
}

let app: BuiltApp | undefined;
let next: NextServer | undefined;
let handle: NodeHandler | undefined;

describe('next (next build, production server)', () => {
  before(async () => {
    // --webpack: Turbopack keeps to the project's root, and this app's node_modules link outside it.
    app = await buildApp(
      'next',
      [process.execPath, path.join(ROOT, 'node_modules/next/dist/bin/next'), 'build', '--webpack'],
      { NODE_OPTIONS: '--import tsx', NEXT_TELEMETRY_DISABLED: '1' },
    );
    console.log(`# next build of the Next.js app: ${app.buildSeconds} s`);
    const createNext = createRequire(path.join(app.dir, 'package.json'))('next') as (options: object) => NextServer;
    next = createNext({ dev: false, dir: app.dir, quiet: true });
    await next.prepare();
    handle = next.getRequestHandler();
  });
  after(async () => {
    await next?.close();
    await app?.remove();
  });

  const makeServer = makeBuiltServer(() => (req, res) => void (handle as NodeHandler)(req, res));
  runBehaviourSuite('next route handlers', makeServer);

  it('a Server Component reads the session that a Server Action changed', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const server = (await makeServer(engine)) as Server;
    const base = await listen(server);
    try {
      const browser = new Browser(base);
      const page = await browser.get('/');
      assert.match(page.text, /hello <!-- -->stranger|hello stranger/);
      assert.deepEqual(page.setCookies, [], 'reading in a Server Component sets no cookie');
      // The form of a Server Action, as a browser without JavaScript posts it.
      const field = /name="(\$ACTION_ID_[0-9a-f]+)"/.exec(page.text)?.[1];
      assert.ok(field, 'the page has the action form');
      const form = new FormData();
      form.set(field, '');
      form.set('user', 'ada');
      const response = await fetch(`${base}/`, { method: 'POST', body: form, redirect: 'manual' });
      assert.equal(response.status, 303);
      const cookie = response.headers.getSetCookie().find((line) => line.startsWith(`${COOKIE}=`));
      assert.ok(cookie, 'the action set the session cookie');
      assert.match(cookie, /HttpOnly/);
      browser.jar.set(COOKIE, cookie.split(';')[0]?.slice(COOKIE.length + 1) ?? '');
      assert.match((await browser.get('/')).text, /hello <!-- -->ada|hello ada/);
    } finally {
      await close(server);
      await engine.close();
    }
  });

  it('proxy.ts: session(engine, handler) sets its cookie on NextResponse.next(); a session that has its cookie reaches the route and page behind it changed', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const server = (await makeServer(engine)) as Server;
    const base = await listen(server);
    try {
      const browser = new Browser(base);
      const first = await browser.get('/proxied/state');
      assert.equal(first.status, 200);
      const cookies = first.setCookies.filter((line) => line.startsWith(`${COOKIE}=`));
      assert.equal(cookies.length, 1, 'the proxy started the session and its Set-Cookie came out');
      assert.match(cookies[0] ?? '', /HttpOnly/);
      // The route behind had the request's own Cookie header (none): the new session reaches it
      // from the next request on.
      assert.deepEqual(JSON.parse(first.text), { user: null, count: 0 });
      // With the cookie, the proxy's write is done before NextResponse.next() returns.
      const second = await browser.get('/proxied/state');
      assert.deepEqual(JSON.parse(second.text), { user: null, count: 2 });
      const page = await browser.get('/proxied');
      assert.match(page.text, /count <!-- -->3|count 3/, 'a Server Component behind the proxy reads it too');
      // Outside the matcher the proxy does not run; and it used this test's engine, in this process.
      assert.deepEqual(JSON.parse((await browser.get('/state')).text), { user: null, count: 3 });
      assert.equal(await engine.session(`${COOKIE}=${browser.jar.get(COOKIE)}`).get('count'), 3);
    } finally {
      await close(server);
      await engine.close();
    }
  });
});
