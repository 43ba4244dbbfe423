import { createServer } from 'node:http';
import express from 'express';
import { session } from '../../src/frameworks/express.ts';
import { actions, type MakeServer } from './behaviour.ts';

/** The shared test app on Express and Tessera's Express adapter. */
export const makeExpressServer: MakeServer = (engine) => {
  const app = express();
  app.set('env', 'test');
  app.use(session(engine));
  app.get('/public', (_req, res) => {
    res.send('public');
  });
  app.get('/state', async (req, res) => {
    res.json(await actions.state(req.session));
  });
  app.post('/login', async (req, res) => {
    await actions.login(req.session, String(req.query.user));
    res.cookie('theme', 'dark');
    res.redirect(303, '/state');
  });
  app.post('/increment', async (req, res) => {
    res.json(await actions.increment(req.session));
  });
  app.post('/logout', async (req, res) => {
    await actions.logout(req.session);
    res.redirect(303, '/');
  });
  app.post('/cached', async (req, res) => {
    res.set('Cache-Control', 'no-cache').set('Vary', 'Accept-Encoding');
    res.json(await actions.increment(req.session));
  });
  app.post('/fail', async (req, res) => {
    await actions.increment(req.session);
    res.status(500).send('failed');
  });
  app.post('/throw', async (req) => {
    await actions.increment(req.session);
    throw new Error('route failed');
  });
  // Quiet: Express's default handler would print the /throw stack.
  app.use((error: { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(error.status ?? 500).send('failed');
  });
  return createServer(app);
};
