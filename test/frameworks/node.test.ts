import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import type { Session } from '../../src/core/session.ts';
import { commitSession, getSession, session } from '../../src/frameworks/node.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { Browser, close, listen } from '../support/browser.ts';
import { actions, COOKIE, type MakeServer, runBehaviourSuite, secrets, THEME_COOKIE } from './behaviour.ts';

const sendJson = (res: ServerResponse, body: unknown) => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

async function route(req: IncomingMessage, res: ServerResponse, session: Session): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  switch (`${req.method} ${url.pathname}`) {
    case 'GET /public':
      res.end('public');
      return;
    case 'GET /state':
      sendJson(res, await actions.state(session));
      return;
    case 'POST /login':
      await actions.login(session, url.searchParams.get('user') ?? '');
      // Headers given to writeHead win over setHeader, except that the session cookie is kept.
      res.writeHead(303, { Location: '/state', 'Set-Cookie': THEME_COOKIE }).end();
      return;
    case 'POST /increment':
      sendJson(res, await actions.increment(session));
      return;
    case 'POST /logout':
      await actions.logout(session);
      res.statusCode = 303;
      res.setHeader('location', '/');
      res.end();
      return;
    case 'POST /cached': {
      const body = JSON.stringify(await actions.increment(session));
      // Vary given to writeHead replaces the header, except for the Cookie the commit added.
      res.setHeader('cache-control', 'no-cache');
      res.writeHead(200, { 'content-type': 'application/json', vary: 'Accept-Encoding' }).end(body);
      return;
    }
    case 'POST /fail':
      await actions.increment(session);
      res.writeHead(500).end('failed');
      return;
    case 'POST /throw':
      await actions.increment(session);
      throw new Error('route failed');
    default:
      res.writeHead(404).end();
  }
}

const makeNodeServer: MakeServer = (engine) => createServer(session(engine, route));

runBehaviourSuite('node:http (session)', makeNodeServer);

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  return { server, base: await listen(server) };
}

describe('node:http adapter', () => {
  it('getSession + commitSession without the wrapper; a late commit is refused', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    let late: unknown;
    const { server, base } = await serve(async (req, res) => {
      const session = getSession(engine, req);
      assert.equal(getSession(engine, req), session);
      if (req.url === '/late') {
        await session.set('count', 1);
        res.end('sent');
        late = await commitSession(req, res).catch((error: unknown) => error);
        return;
      }
      const body = JSON.stringify(await actions.increment(session));
      await commitSession(req, res);
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    try {
      const browser = new Browser(base);
      const first = await browser.get('/');
      assert.equal(first.setCookies.filter((line) => line.startsWith(`${COOKIE}=`)).length, 1);
      assert.equal((await browser.get('/')).text, '{"count":2}');
      await browser.get('/late');
      assert.ok(isSessionError(late, 'INVALID_STATE'));
    } finally {
      await close(server);
    }
  });

  it('keeps every header of writeHead, flat arrays included, and holds streamed writes', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const { server, base } = await serve(
      session(engine, async (_req, res, session) => {
        await session.set('user', 'max');
        res.writeHead(200, ['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2']);
        res.write('one ');
        res.write('two ');
        res.end('three');
      }),
    );
    try {
      const response = await new Browser(base).get('/');
      assert.equal(response.text, 'one two three');
      assert.deepEqual(response.setCookies.slice(1), ['a=1', 'b=2']);
      assert.ok(response.setCookies[0]?.startsWith(`${COOKIE}=`));
    } finally {
      await close(server);
    }
  });

  it('answers 500 for a handler that throws, and a custom onError decides otherwise', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const failing = () => {
      throw new Error('bug');
    };
    const plain = await serve(session(engine, failing));
    const custom = await serve(
      session(engine, failing, {
        onError: (_error, _req, res) => {
          res.writeHead(418).end('teapot');
        },
      }),
    );
    try {
      assert.equal((await new Browser(plain.base).get('/')).status, 500);
      const response = await new Browser(custom.base).get('/');
      assert.equal(response.status, 418);
      assert.equal(response.text, 'teapot');
    } finally {
      await close(plain.server);
      await close(custom.server);
    }
  });
});
