/**
 * Read-only requests on existing sessions, with and without the local read tier: requests per
 * second (engine only, no HTTP) and Redis commands per request from INFO commandstats deltas.
 *
 *   node --import tsx bench/cache-reads.ts          # starts its own redis-server on loopback
 *   N=20000 SESSIONS=200 node --import tsx bench/cache-reads.ts
 */
import { createClient } from 'redis';
import { SessionEngine } from '../src/core/engine.ts';
import type { Store } from '../src/core/store.ts';
import { CachedStore, redisTracking } from '../src/stores/cache/index.ts';
import { RedisStore } from '../src/stores/redis/index.ts';
import { startRedis } from '../test/support/redis-servers.ts';

const N = Number(process.env.N ?? 20000);
const SESSIONS = Number(process.env.SESSIONS ?? 100);
const secret = 'bench-cache-secret-0123456789abcdefghijkl';

/** Total commands Redis has executed, from INFO commandstats. */
async function commandsExecuted(url: string): Promise<number> {
  const client = createClient({ url });
  await client.connect();
  const info = await client.info('commandstats');
  await client.close();
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
    // The INFO and CLIENT calls of this counter itself are not requests' commands.
    if (match[1] !== 'info' && match[1] !== 'client' && match[1] !== 'hello') total += Number(match[2]);
  }
  return total;
}

async function measure(
  name: string,
  store: Store,
  url: string,
): Promise<{ name: string; rps: number; perRequest: number }> {
  const engine = new SessionEngine<Record<string, unknown>>({ store, secrets: [secret] });
  await engine.ready();
  const cookies: string[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const s = engine.session(undefined);
    await s.set('user', `user-${i}`);
    cookies.push((await engine.commit(s)).setCookie?.split(';')[0] ?? '');
  }
  // Warm-up: every session read once (this fills the tier), not counted.
  for (const cookie of cookies) {
    const s = engine.session(cookie);
    await s.get('user');
    await engine.commit(s);
  }
  const before = await commandsExecuted(url);
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    const s = engine.session(cookies[i % SESSIONS]);
    await s.get('user');
    await engine.commit(s);
  }
  const seconds = (performance.now() - started) / 1000;
  const commands = (await commandsExecuted(url)) - before;
  await engine.close();
  return { name, rps: Math.round(N / seconds), perRequest: commands / N };
}

const redis = await startRedis();
try {
  const rows = [
    await measure('Redis store', new RedisStore({ url: redis.url, prefix: 'plain:' }), redis.url),
    await measure(
      'Redis store + local read tier',
      new CachedStore({
        store: new RedisStore({ url: redis.url, prefix: 'tier:' }),
        invalidation: redisTracking({ url: redis.url, prefix: 'tier:' }),
      }),
      redis.url,
    ),
  ];
  console.log(`\nRead-only requests, ${N} over ${SESSIONS} sessions, one at a time (engine only, no HTTP):\n`);
  console.log('| store | requests/s | Redis commands per request |');
  console.log('|---|---:|---:|');
  for (const row of rows) console.log(`| ${row.name} | ${row.rps} | ${row.perRequest.toFixed(3)} |`);
} finally {
  await redis.stop();
}
