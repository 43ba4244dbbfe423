import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import Koa from 'koa';
import { SessionEngine } from '../../src/core/engine.ts';
import { session } from '../../src/frameworks/koa.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { Browser, close, listen } from '../support/browser.ts';
import { actions, COOKIE, type MakeServer, runBehaviourSuite, secrets } from './behaviour.ts';

const makeKoaServer: MakeServer = (engine) => {
  const app = new Koa();
  app.silent = true;
  app.use(session(engine));
  app.use(async (ctx) => {
    const route = `${ctx.method} ${ctx.path}`;
    if (route === 'GET /public') ctx.body = 'public';
    else if (route === 'GET /state') ctx.body = await actions.state(ctx.session);
    else if (route === 'POST /login') {
      await actions.login(ctx.session, String(ctx.query.user));
      ctx.cookies.set('theme', 'dark', { httpOnly: false });
      ctx.status = 303;
      ctx.redirect('/state');
    } else if (route === 'POST /increment') ctx.body = await actions.increment(ctx.session);
    else if (route === 'POST /logout') {
      await actions.logout(ctx.session);
      ctx.status = 303;
      ctx.redirect('/');
    } else if (route === 'POST /cached') {
      ctx.set('Cache-Control', 'no-cache');
      ctx.set('Vary', 'Accept-Encoding');
      ctx.body = await actions.increment(ctx.session);
    } else if (route === 'POST /fail') {
      await actions.increment(ctx.session);
      ctx.status = 500;
      ctx.body = 'failed';
    } else if (route === 'POST /throw') {
      await actions.increment(ctx.session);
      throw new Error('route failed');
    }
  });
  return createServer(app.callback());
};

runBehaviourSuite('koa', makeKoaServer);

describe('koa adapter', () => {
  it('accepts options, commits when a later middleware throws, and lets Koa answer the error', async () => {
    const app = new Koa();
    app.silent = true;
    app.use(session({ store: new MemoryStore(), secrets }));
    app.use(async (ctx) => {
      await ctx.session.set('user', 'erin');
      ctx.throw(418, 'short and stout');
    });
    const server = createServer(app.callback());
    const base = await listen(server);
    try {
      const browser = new Browser(base);
      const response = await browser.get('/');
      assert.equal(response.status, 418);
      assert.ok(browser.jar.get(COOKIE), 'the session written before the throw keeps its cookie');
    } finally {
      await close(server);
    }
  });

  it('is mounted once even when registered twice', async () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets });
    const app = new Koa();
    app.use(session(engine));
    const middleware = session(engine);
    app.use(middleware);
    app.use(middleware);
    app.use(async (ctx) => {
      ctx.body = await actions.increment(ctx.session);
    });
    const server = createServer(app.callback());
    const base = await listen(server);
    try {
      const response = await new Browser(base).get('/');
      assert.equal(response.setCookies.filter((line) => line.startsWith(`${COOKIE}=`)).length, 1);
    } finally {
      await close(server);
    }
  });
});
