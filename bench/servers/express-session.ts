/**
 * The Express anchor: express-session + connect-redis, configured as their READMEs recommend
 * (`resave: false`, `saveUninitialized: false`). `BENCH_REDIS_CLIENT` picks node-redis or ioredis.
 */
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { ioredisForConnectRedis } from './ioredis-facade.ts';
import { announce, type BenchData, SECRET, serverEnv } from './shared.ts';

const env = serverEnv();
let client: unknown;
let quit: () => Promise<unknown>;
if (env.redisClient === 'ioredis') {
  const redis = new Redis(env.redisUrl);
  client = ioredisForConnectRedis(redis);
  quit = () => redis.quit();
} else {
  const redis = createClient({ url: env.redisUrl });
  await redis.connect();
  client = redis;
  quit = () => redis.close();
}

const app = express();
app.use(
  session({
    store: new RedisStore({ client, prefix: env.prefix }),
    resave: false,
    saveUninitialized: false,
    secret: SECRET,
  }),
);

type Data = Partial<BenchData>;

app.get('/rmw', (req, res) => {
  const data = req.session as unknown as Data;
  data.count = (data.count ?? 0) + 1;
  res.json({ count: data.count });
});
app.get('/read', (req, res) => {
  res.json({ count: (req.session as unknown as Data).count ?? null });
});
app.get('/new', (req, res) => {
  (req.session as unknown as Data).count = 0;
  res.json({ count: 0 });
});
app.get('/anon', (_req, res) => {
  res.json({ ok: true });
});

const server = app.listen(env.port, '127.0.0.1', () => announce(server, quit));
