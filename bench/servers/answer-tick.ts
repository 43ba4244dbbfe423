/**
 * A bare server that answers `GET /` with a small JSON body at the point of the event loop
 * `BENCH_TICK` names: `same` (in the handler, as bare Express and a read-tier hit do),
 * `microtask` (after a resolved promise, as an `await` of a settled value does) or `immediate`
 * (from `setImmediate`, a later phase, as an answer after a store round trip does).
 * `BENCH_FRAMEWORK` picks Express or Fastify. Driven by bench/answer-tick.ts.
 */
import express from 'express';
import Fastify from 'fastify';
import { announce, serverEnv } from './shared.ts';

const env = serverEnv();
const tick = process.env.BENCH_TICK ?? 'same';
const later = (answer: () => void): void => {
  if (tick === 'immediate') setImmediate(answer);
  else if (tick === 'microtask') queueMicrotask(answer);
  else answer();
};

if (process.env.BENCH_FRAMEWORK === 'fastify') {
  const app = Fastify({ logger: false });
  app.get('/', (_request, reply) => later(() => reply.send({ ok: true })));
  await app.listen({ port: env.port, host: '127.0.0.1' });
  announce({ close: () => app.close() });
} else {
  const app = express();
  app.get('/', (_req, res) => later(() => res.json({ ok: true })));
  const server = app.listen(env.port, '127.0.0.1', () => announce(server));
}
