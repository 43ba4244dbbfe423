/**
 * What Tessera's requests on Redis cost in one process, without HTTP: CPU µs and heap KiB
 * allocated per request, with 50 requests in flight (as `wrk -c50` keeps them) over 1000
 * sessions, each request with a new Cookie string as a request parser makes. Rows, from the
 * least to the most:
 *
 * - node-redis `hGetAll` alone: the hand-written floor's read (`bench/servers/floor.ts`);
 * - `RedisStore.get` alone: the store's read, record checks included;
 * - a read: the session from the cookie, `get`, then `settle`, as the adapters call them;
 * - a read-modify-write: the same with a `set` between, so the commit writes (one script);
 * - a new session: no cookie, a `set`, then `settle`: a new ID, its store key, one script and
 *   a signed Set-Cookie;
 * - the floor's read-modify-write: `hGetAll`, then `hSet` and `pExpire` sent together, as
 *   `bench/servers/floor.ts` writes (blindly: no check that the session still exists).
 *
 * Beside each row, Redis's own CPU per request (INFO cpu), which on the benchmark's
 * two cores is taken from the core that wrk also runs on.
 *
 *   node --import tsx bench/redis-requests.ts        # starts its own redis-server on loopback
 *   N=40000 ROUNDS=3 node --import tsx bench/redis-requests.ts
 *   ONLY=modify node --cpu-prof --import tsx bench/redis-requests.ts   # rows whose name matches
 */
import { createClient } from 'redis';
import { SessionEngine } from '../src/core/engine.ts';
import { RedisStore } from '../src/stores/redis/index.ts';
import { startRedis } from '../test/support/redis-servers.ts';
import { AllocationCounter } from './servers/allocation.ts';

const N = Number(process.env.N ?? 40000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SESSIONS = 1000;
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 50);
const PREFIX = 'requests:';
const secret = 'bench-requests-secret-0123456789abcdefgh';

const redis = await startRedis();
const engine = new SessionEngine<{ count: number }>({
  store: new RedisStore({ url: redis.url, prefix: PREFIX }),
  secrets: [secret],
});
const client = createClient({ url: redis.url });
try {
  await engine.ready();
  await client.connect();
  const context = { status: 200, secure: false, userAgent: undefined, ip: undefined };
  const sessions: Array<{ cookie: string; key: string }> = [];
  for (let i = 0; i < SESSIONS; i++) {
    const session = engine.session(undefined);
    await session.set('count', 0);
    const cookie = (await engine.commit(session)).setCookie?.split(';')[0] ?? '';
    sessions.push({ cookie, key: session.key as string });
  }
  const store = engine.store as RedisStore;

  const kinds: Array<[name: string, request: (i: number, header: string) => Promise<unknown>]> = [
    ['node-redis hGetAll alone (the floor’s read)', (i) => client.hGetAll(PREFIX + sessions[i % SESSIONS]?.key)],
    ['RedisStore.get alone', (i) => store.get(sessions[i % SESSIONS]?.key as string)],
    [
      'read: session, get, settle',
      async (_i, header) => {
        const session = engine.session(header, context);
        await session.get('count');
        await engine.settle(session, context);
      },
    ],
    [
      'read-modify-write: session, get, set, settle',
      async (_i, header) => {
        const session = engine.session(header, context);
        await session.set('count', ((await session.get('count')) ?? 0) + 1);
        await engine.settle(session, context);
      },
    ],
    [
      'new session: session, set, settle',
      async () => {
        const session = engine.session(undefined, context);
        await session.set('count', 0);
        await engine.settle(session, context);
      },
    ],
    [
      'the floor’s read-modify-write: hGetAll, then hSet + pExpire',
      async (i) => {
        const key = PREFIX + sessions[i % SESSIONS]?.key;
        const count = Number((await client.hGetAll(key)).count ?? 0) + 1;
        await Promise.all([client.hSet(key, 'count', String(count)), client.pExpire(key, 900_000)]);
      },
    ],
  ];

  /** Redis's CPU µs so far (INFO cpu: the server process, its network work included). */
  const redisMicros = async () => {
    const info = await client.info('cpu');
    const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
    return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6;
  };

  /** N requests, IN_FLIGHT at a time; CPU µs and KiB allocated per request. */
  const measure = async (request: (i: number, header: string) => Promise<unknown>) => {
    // A new string per request, as a request parser makes: no cached hash, no shared flat copy.
    const headers = Array.from({ length: N }, (_, i) =>
      Buffer.from(`a=1; ${sessions[i % SESSIONS]?.cookie}`).toString('latin1'),
    );
    let next = 0;
    const redisBefore = await redisMicros();
    const allocations = new AllocationCounter();
    allocations.start();
    const cpu = process.cpuUsage();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < N) {
          const i = next++;
          await request(i, headers[i] as string);
        }
      }),
    );
    const used = process.cpuUsage(cpu);
    const kib = allocations.stop() / 1024 / N;
    return { micros: (used.user + used.system) / N, kib, redis: ((await redisMicros()) - redisBefore) / N };
  };

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  console.log(
    `\nRedis requests, ${N} per round over ${SESSIONS} sessions, ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds (no HTTP):\n`,
  );
  console.log('| request | CPU µs per request | KiB allocated per request | Redis CPU µs per request |');
  console.log('|---|---:|---:|---:|');
  const only = new RegExp(process.env.ONLY ?? '');
  for (const [name, request] of kinds) {
    if (!only.test(name)) continue;
    await measure(request); // warm-up: the JIT, and every session read once
    const rounds = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await measure(request));
    const micros = median(rounds.map((round) => round.micros));
    const kib = median(rounds.map((round) => round.kib));
    const redisCpu = median(rounds.map((round) => round.redis));
    console.log(`| ${name} | ${micros.toFixed(2)} | ${kib.toFixed(2)} | ${redisCpu.toFixed(2)} |`);
  }
} finally {
  await client.close().catch(() => {});
  await engine.close();
  await redis.stop();
}
