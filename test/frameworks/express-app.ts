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
  return createServer(app);
};
