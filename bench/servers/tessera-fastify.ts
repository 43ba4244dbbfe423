/** Tessera on Fastify; `BENCH_STORE` picks Redis, Redis with the local read tier, or PostgreSQL. */
import Fastify, { type FastifyRequest } from 'fastify';
import type { SessionEngine } from '../../src/core/engine.ts';
import type { Session } from '../../src/core/session.ts';
import { session } from '../../src/frameworks/fastify.ts';
import { announce, type BenchData, serverEnv } from './shared.ts';
import { createEngine } from './tessera-store.ts';

const env = serverEnv();
const engine = await createEngine(env);
const app = Fastify({ logger: false });
await app.register(session, { engine: engine as unknown as SessionEngine<object> });

const of = (request: FastifyRequest) => request.session as unknown as Session<BenchData>;

app.get('/rmw', async (request) => {
  const count = ((await of(request).get('count')) ?? 0) + 1;
  await of(request).set('count', count);
  return { count };
});
app.get('/read', async (request) => ({ count: (await of(request).get('count')) ?? null }));
app.get('/new', async (request) => {
  await of(request).set('count', 0);
  return { count: 0 };
});
app.get('/anon', async () => ({ ok: true }));

await app.listen({ port: env.port, host: '127.0.0.1' });
announce({ close: () => app.close() }, () => engine.close());
