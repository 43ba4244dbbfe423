/**
 * The Fastify anchor: @fastify/cookie + @fastify/session with connect-redis (node-redis) as its
 * store, configured as the README recommends (`saveUninitialized: false`; `rolling` left at its
 * default, `true`). `cookie.secure: false` because the benchmark speaks plain HTTP, where a
 * secure cookie makes @fastify/session skip saving.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { RedisStore } from 'connect-redis';
import Fastify from 'fastify';
import { createClient } from 'redis';
import { announce, SECRET, serverEnv } from './shared.ts';

const env = serverEnv();
const redis = createClient({ url: env.redisUrl });
await redis.connect();

const app = Fastify({ logger: false });
await app.register(fastifyCookie);
await app.register(fastifySession, {
  secret: SECRET,
  store: new RedisStore({ client: redis, prefix: env.prefix }) as never,
  saveUninitialized: false,
  cookie: { secure: false },
});

interface Counter {
  get(key: 'count'): number | undefined;
  set(key: 'count', value: number): void;
}

app.get('/rmw', async (request) => {
  const session = request.session as unknown as Counter;
  const count = (session.get('count') ?? 0) + 1;
  session.set('count', count);
  return { count };
});
app.get('/read', async (request) => ({ count: (request.session as unknown as Counter).get('count') ?? null }));
app.get('/new', async (request) => {
  (request.session as unknown as Counter).set('count', 0);
  return { count: 0 };
});
app.get('/anon', async () => ({ ok: true }));

await app.listen({ port: env.port, host: '127.0.0.1' });
announce({ close: () => app.close() }, () => redis.close());
