import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { getRequestListener } from '@hono/node-server';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import type { Session, SessionData } from '../../src/core/session.ts';
import { commitSession, getSession, session } from '../../src/frameworks/fetch.ts';
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

const json = (body: unknown) => Response.json(body);

async function route(request: Request, session: Session): Promise<Response> {
  const url = new URL(request.url);
  switch (`${request.method} ${url.pathname}`) {
    case 'GET /public':
      return new Response('public');
    case 'GET /state':
      return json(await actions.state(session));
    case 'POST /login': {
      await actions.login(session, url.searchParams.get('user') ?? '');
      return new Response(null, { status: 303, headers: { location: '/state', 'set-cookie': THEME_COOKIE } });
    }
    case 'POST /increment':
      return json(await actions.increment(session));
    case 'POST /logout':
      await actions.logout(session);
      return Response.redirect(new URL('/', url), 303);
    case 'POST /cached':
      return Response.json(await actions.increment(session), {
        headers: { 'cache-control': 'no-cache', vary: 'Accept-Encoding' },
      });
    case 'POST /fail':
      await actions.increment(session);
      return new Response('failed', { status: 500 });
    case 'POST /throw':
      await actions.increment(session);
      throw new Error('route failed');
    default:
      return new Response('not found', { status: 404 });
  }
}

// @hono/node-server's request listener is the node-http-to-fetch bridge (as Bun.serve or Deno.serve would be).
/** What @hono/node-server passes after the request: the node:http request and response. */
type NodeEnv = [{ incoming: Pick<IncomingMessage, 'socket'> }];
const makeFetchServer: MakeServer = (engine) =>
  createServer(
    getRequestListener(
      session<SessionData, NodeEnv>(engine, (request, current) => route(request, current), {
        clientIp: (_request, env) => env.incoming.socket.remoteAddress,
      }),
    ),
  );

runBehaviourSuite('fetch (session)', makeFetchServer);

const sessionCookie = (response: Response | Headers) =>
  ('headers' in response ? response.headers : response).getSetCookie().find((line) => line.startsWith(`${COOKIE}=`));

describe('fetch adapter', () => {
  it('getSession/commitSession in loader style: same session per request, headers for the redirect', async () => {
    const store = new CountingStore(new MemoryStore());
    const engine = new SessionEngine({ store, secrets });
    const action = async (request: Request) => {
      const session = getSession(engine, request);
      assert.equal(getSession(engine, request), session);
      await actions.login(session, 'jo');
      return new Response(null, {
        status: 303,
        headers: await commitSession(session, request),
      });
    };
    const response = await action(new Request('https://app.example/login', { method: 'POST' }));
    const cookie = sessionCookie(response);
    assert.match(cookie ?? '', /; Secure/, 'https request URL -> Secure');

    const loader = async (request: Request) => {
      const session = getSession(engine, request);
      return Response.json(await actions.state(session), { headers: await commitSession(session, request) });
    };
    store.reset();
    const state = await loader(
      new Request('https://app.example/', { headers: { cookie: cookie?.split(';')[0] ?? '' } }),
    );
    assert.deepEqual(await state.json(), { user: 'jo', count: 0 });
    assert.deepEqual(state.headers.getSetCookie(), []);
    assert.equal(store.total, 2, 'one read, and the write that removes the login’s flash message');

    const untouched = await commitSession(getSession(engine, new Request('https://app.example/')));
    assert.deepEqual(untouched.getSetCookie(), []);
  });

  it('adds the cookie to immutable responses and passes runtime arguments through', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const handler = session(engine, async (_request, session, context: { params: { id: string } }) => {
      await session.set('user', context.params.id);
      return Response.redirect('http://localhost/', 303);
    });
    const response = await handler(new Request('http://localhost/x', { method: 'POST' }), { params: { id: 'kim' } });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), 'http://localhost/');
    assert.ok(sessionCookie(response));
  });

  it('does not repeat a cookie the handler already committed', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const handler = session(engine, async (request, session) => {
      await session.set('user', 'lee');
      return new Response('ok', { headers: await commitSession(session, request) });
    });
    const response = await handler(new Request('http://localhost/'));
    assert.equal(response.headers.getSetCookie().length, 1);
  });

  it('answers 503 for store failures and rethrows other errors', async () => {
    const store = new FailingStore();
    store.failWrites = true;
    const engine = new SessionEngine({ store, secrets });
    const write = session(engine, async (_request, session) => json(await actions.increment(session)));
    const response = await write(new Request('http://localhost/'));
    assert.equal(response.status, 503);
    assert.equal(sessionCookie(response), undefined);
    await assert.rejects(
      commitSession(
        await (async () => {
          const s = getSession(engine, new Request('http://localhost/'));
          await s.set('count', 1);
          return s;
        })(),
      ),
      (error) => isSessionError(error, 'STORE_UNAVAILABLE'),
    );
    const broken = session(engine, async () => {
      throw new TypeError('bug');
    });
    await assert.rejects(broken(new Request('http://localhost/')), TypeError);
  });
});
