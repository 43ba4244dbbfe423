/**
 * Read-only requests on existing sessions, with and without the local read tier, engine only (no
 * HTTP): requests per second, Tessera's CPU and bytes allocated per request, and Redis commands
 * per request from INFO commandstats deltas. Each request is what an adapter does: the session
 * from a Cookie header (a new string each time, as from a request parser), `get`, then `settle`.
 * The last row makes the session from the cookie and settles it without reading: the part every
 * request that touches `req.session` pays.
 *
 *   node --import tsx bench/cache-reads.ts          # starts its own redis-server on loopback
 *   N=50000 SESSIONS=1000 node --import tsx bench/cache-reads.ts
 */
import { createClient } from 'redis';
import { SessionEngine } from '../src/core/engine.ts';
import type { Store } from '../src/core/store.ts';
import { CachedStore, redisTracking } from '../src/stores/cache/index.ts';
import { RedisStore } from '../src/stores/redis/index.ts';
import { startRedis } from '../test/support/redis-servers.ts';
import { AllocationCounter } from './servers/allocation.ts';

const N = Number(process.env.N ?? 50000);
const SESSIONS = Number(process.env.SESSIONS ?? 1000);
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

interface Row {
  name: string;
  rps: number;
  cpuMicros: number;
  kib: number;
  commands: number;
}

async function measure(name: string, store: Store, url: string, read = true): Promise<Row> {
  const engine = new SessionEngine<Record<string, unknown>>({ store, secrets: [secret] });
  await engine.ready();
  const request = { status: 200, secure: false, userAgent: undefined, ip: undefined };
  const cookies: string[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const s = engine.session(undefined);
    await s.set('user', `user-${i}`);
    cookies.push((await engine.commit(s)).setCookie?.split(';')[0] ?? '');
  }
  const run = async (header: string) => {
    const s = engine.session(header, request);
    if (read) await s.get('user');
    const settled = engine.settle(s, request);
    if (settled instanceof Promise) await settled;
  };
  // Warm-up: every session read a few times (this fills the tier and the JIT), not counted.
  for (let i = 0; i < 5 * SESSIONS; i++) await run(cookies[i % SESSIONS] as string);
  // A new string per request, as a request parser makes: no cached hash, no shared flat copy.
  const headers = Array.from({ length: N }, (_, i) => Buffer.from(`a=1; ${cookies[i % SESSIONS]}`).toString('latin1'));
  const before = await commandsExecuted(url);
  const allocations = new AllocationCounter();
  allocations.start();
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (const header of headers) await run(header);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const allocated = allocations.stop();
  const commands = (await commandsExecuted(url)) - before;
  await engine.close();
  return {
    name,
    rps: Math.round(N / seconds),
    cpuMicros: (used.user + used.system) / N,
    kib: allocated / 1024 / N,
    commands: commands / N,
  };
}

const tiered = (prefix: string) =>
  new CachedStore({
    store: new RedisStore({ url: redis.url, prefix }),
    invalidation: redisTracking({ url: redis.url, prefix }),
  });

const redis = await startRedis();
try {
  const rows = [
    await measure('Redis store', new RedisStore({ url: redis.url, prefix: 'plain:' }), redis.url),
    await measure('Redis store + local read tier', tiered('tier:'), redis.url),
    await measure('session from the cookie, not read (tier)', tiered('touch:'), redis.url, false),
  ];
  console.log(`\nRead-only requests, ${N} over ${SESSIONS} sessions, one at a time (engine only, no HTTP):\n`);
  console.log('| request | requests/s | CPU µs per request | KiB allocated per request | Redis commands per request |');
  console.log('|---|---:|---:|---:|---:|');
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${row.rps} | ${row.cpuMicros.toFixed(2)} | ${row.kib.toFixed(2)} | ${row.commands.toFixed(3)} |`,
    );
  }
} finally {
  await redis.stop();
}
