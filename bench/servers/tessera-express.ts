/** Tessera on Express; `BENCH_STORE` picks Redis, Redis with the local read tier, or PostgreSQL. */
import express from 'express';
import type { Session } from '../../src/core/session.ts';
import { session } from '../../src/frameworks/express.ts';
import { announce, type BenchData, serverEnv } from './shared.ts';
import { createEngine } from './tessera-store.ts';

const env = serverEnv();
const engine = await createEngine(env);
const app = express();
app.use(session(engine));

const of = (req: express.Request) => req.session as unknown as Session<BenchData>;

app.get('/rmw', async (req, res) => {
  const count = ((await of(req).get('count')) ?? 0) + 1;
  await of(req).set('count', count);
  res.json({ count });
});
app.get('/read', async (req, res) => {
  res.json({ count: (await of(req).get('count')) ?? null });
});
app.get('/new', async (req, res) => {
  await of(req).set('count', 0);
  res.json({ count: 0 });
});
app.get('/anon', (_req, res) => {
  res.json({ ok: true });
});

const server = app.listen(env.port, '127.0.0.1', () => announce(server, () => engine.close()));
