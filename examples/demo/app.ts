import express, { type Express } from 'express';
import type { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { session } from '../../src/frameworks/express.ts';

declare module '../../src/core/session.ts' {
  interface SessionData {
    user: string;
    count: number;
  }
}

const page = (body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>Tessera demo</title>
<style>body{font:16px system-ui;max-width:40rem;margin:3rem auto}form{display:inline}button{margin:.2rem}</style>
</head><body><h1>Tessera demo</h1>${body}</body></html>`;

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The demo app: login, a counter, the list of your devices, logout and "log out everywhere". */
export function createDemoApp(engine: SessionEngine): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false }));
  app.use(session(engine));

  app.get('/', async (req, res) => {
    const user = await req.session.get('user');
    if (!user) {
      res.send(
        page(`<p>You are not logged in.</p>
<form method="post" action="/login"><input name="user" placeholder="name" required> <button>Log in</button></form>`),
      );
      return;
    }
    const count = (await req.session.get('count')) ?? 0;
    const devices = await engine.listUserSessions(user);
    res.send(
      page(`<p>Logged in as <b id="user">${escapeHtml(user)}</b>.</p>
<p>Counter: <b id="count">${count}</b></p>
<form method="post" action="/increment"><button id="increment">+1</button></form>
<form method="post" action="/logout"><button id="logout">Log out</button></form>
<form method="post" action="/logout-everywhere"><button id="logout-all">Log out everywhere</button></form>
<p>Your sessions: <b id="devices">${devices.length}</b></p>`),
    );
  });

  app.get('/api/state', async (req, res) => {
    res.json({ user: (await req.session.get('user')) ?? null, count: (await req.session.get('count')) ?? 0 });
  });

  app.post('/login', async (req, res) => {
    const user = String(req.body?.user ?? '').trim();
    if (!user || user.length > 64) {
      res.status(400).send(page('<p>A name of 1 to 64 characters, please.</p>'));
      return;
    }
    await req.session.regenerate();
    await req.session.set('user', user);
    await req.session.setUser(user);
    res.redirect(303, '/');
  });

  app.post('/increment', async (req, res) => {
    const count = (await req.session.get('count')) ?? 0;
    await req.session.set('count', count + 1);
    res.redirect(303, '/');
  });

  app.post('/logout', async (req, res) => {
    await req.session.destroy();
    res.redirect(303, '/');
  });

  app.post('/logout-everywhere', async (req, res) => {
    const user = await req.session.get('user');
    if (user) await engine.destroyUserSessions(user);
    res.redirect(303, '/');
  });

  app.use((error: unknown, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (res.headersSent) return next(error);
    const status = isSessionError(error) ? error.status : 500;
    res.status(status).send(page(`<p>Sessions are unavailable right now (${status}). Try again shortly.</p>`));
  });
  return app;
}
