/** Bare Express, no sessions: the ceiling of the Express variants. */
import express from 'express';
import { announce, serverEnv } from './shared.ts';

const env = serverEnv();
const app = express();
let count = 0;

app.get('/rmw', (_req, res) => {
  count++;
  res.json({ count });
});
app.get('/read', (_req, res) => {
  res.json({ count });
});
app.get('/new', (_req, res) => {
  res.json({ count: 0 });
});
app.get('/anon', (_req, res) => {
  res.json({ ok: true });
});

const server = app.listen(env.port, '127.0.0.1', () => announce(server));
