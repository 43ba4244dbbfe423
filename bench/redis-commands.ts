/**
 * Redis commands per request, by scenario, counted by the server. Drives the engine directly, as
 * an adapter would: engine.session(cookie), get/set, engine.commit.
 *
 * Two counts: commands the store's connection sent (round trips), from MONITOR lines of that
 * connection; and commands Redis executed, from INFO commandstats deltas, which also counts the
 * commands a Lua script runs inside Redis (an EVALSHA of the patch script is one round trip but
 * several HSET/HDEL/PEXPIREAT calls in commandstats).
 *
 *   node --import tsx bench/redis-commands.ts            # starts its own redis-server
 *   REDIS_URL=redis://127.0.0.1:6379 N=500 node --import tsx bench/redis-commands.ts
 *
 * With REDIS_URL, other clients of that server are counted too: use an idle server.
 */
import { createClient } from 'redis';
import { SessionEngine } from '../src/core/engine.ts';
import { RedisStore } from '../src/stores/redis/index.ts';
import { type RedisServer, startRedis } from '../test/support/redis-servers.ts';

type Engine = SessionEngine<Record<string, unknown>>;
interface Scenario {
  name: string;
  expected: number;
  /** Untimed preparation: returns one input (a cookie) per request. */
  prepare(engine: Engine, n: number): Promise<Array<string | undefined>>;
  request(engine: Engine, cookie: string | undefined): Promise<void>;
}

const N = Number(process.env.N ?? 1000);
const IDLE_SECONDS = 900;
let clock = Date.now();

const cookieOf = (setCookie: string | null) => setCookie?.split(';')[0];

async function newSessions(engine: Engine, n: number, user?: string): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < n; i++) {
    const session = engine.session(undefined);
    await session.set('cart', ['book']);
    if (user) await session.setUser(`${user}-${i}`);
    cookies.push(cookieOf((await engine.commit(session)).setCookie) as string);
  }
  return cookies;
}

const none = async (_engine: Engine, n: number) => Array.from({ length: n }, () => undefined);

const scenarios: Scenario[] = [
  {
    name: 'new visitor, session never touched',
    expected: 0,
    prepare: none,
    async request(engine) {
      await engine.commit(engine.session(undefined));
    },
  },
  {
    name: 'new visitor, session set (stored)',
    expected: 1,
    prepare: none,
    async request(engine) {
      const session = engine.session(undefined);
      await session.set('cart', ['book']);
      await engine.commit(session);
    },
  },
  {
    name: 'read of an existing session, no touch due',
    expected: 1,
    prepare: (engine, n) => newSessions(engine, n),
    async request(engine, cookie) {
      const session = engine.session(cookie);
      await session.get('cart');
      await engine.commit(session);
    },
  },
  {
    name: 'read of an existing session, touch due',
    expected: 2,
    async prepare(engine, n) {
      const cookies = await newSessions(engine, n);
      // More than touchAfterSeconds (idle / 2) later, still inside the idle window.
      clock += IDLE_SECONDS * 600;
      return cookies;
    },
    async request(engine, cookie) {
      const session = engine.session(cookie);
      await session.get('cart');
      await engine.commit(session);
    },
  },
  {
    name: 'modify an existing session',
    expected: 2,
    prepare: (engine, n) => newSessions(engine, n),
    async request(engine, cookie) {
      const session = engine.session(cookie);
      await session.set('cart', ['book', 'pen']);
      await engine.commit(session);
    },
  },
  {
    name: 'login: setUser on an existing session (user index)',
    expected: 3,
    prepare: (engine, n) => newSessions(engine, n),
    async request(engine, cookie) {
      const session = engine.session(cookie);
      await session.setUser(`user-${cookie?.slice(-8)}`);
      await engine.commit(session);
    },
  },
  {
    name: 'logout: destroy a logged-in session (user index)',
    expected: 2,
    prepare: (engine, n) => newSessions(engine, n, 'logout'),
    async request(engine, cookie) {
      const session = engine.session(cookie);
      await session.destroy();
      await engine.commit(session);
    },
  },
];

/** Calls per command since the server started, without INFO and ECHO (the bench's own). */
async function commandStats(admin: Client): Promise<Map<string, number>> {
  const stats = new Map<string, number>();
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match && match[1] !== 'info' && match[1] !== 'echo') stats.set(match[1] as string, Number(match[2]));
  }
  return stats;
}

type Client = ReturnType<typeof createClient>;

/** Counts the commands one connection sends, as MONITOR reports them. */
class Monitor {
  #sent = new Map<string, number>();
  #waiting = new Map<string, () => void>();
  constructor(readonly address: string) {}

  line(reply: string): void {
    const match = /^\S+ \[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]*)")?/.exec(reply);
    if (!match) return;
    const [, source, command, arg] = match as unknown as [string, string, string, string | undefined];
    if (command.toLowerCase() === 'echo' && arg && this.#waiting.has(arg)) {
      this.#waiting.get(arg)?.();
      this.#waiting.delete(arg);
    } else if (source === this.address) {
      const name = command.toUpperCase();
      this.#sent.set(name, (this.#sent.get(name) ?? 0) + 1);
    }
  }

  /** Resolves once MONITOR has shown every command executed before now. */
  async drain(admin: Client): Promise<Map<string, number>> {
    const marker = `tessera-bench-${Math.random()}`;
    const seen = new Promise<void>((resolve) => this.#waiting.set(marker, resolve));
    await admin.echo(marker);
    await seen;
    const sent = this.#sent;
    this.#sent = new Map();
    return sent;
  }
}

const breakdown = (counts: Map<string, number>) => {
  let total = 0;
  const parts: string[] = [];
  for (const [command, calls] of counts) {
    if (calls === 0) continue;
    total += calls;
    parts.push(`${command.toUpperCase()} ${+(calls / N).toFixed(2)}`);
  }
  return { perRequest: +(total / N).toFixed(2), parts: parts.join(', ') || '-' };
};

async function main(): Promise<void> {
  let server: RedisServer | undefined;
  const url = process.env.REDIS_URL ?? (server = await startRedis()).url;
  const admin = createClient({ url });
  const monitorClient = createClient({ url });
  await Promise.all([admin.connect(), monitorClient.connect()]);
  const name = `tessera-bench-${process.pid}`;
  const store = new RedisStore({ url: `${url}?ping=0&name=${name}`, prefix: `tessera-bench:${process.pid}:` });
  await store.ready();
  const address = (await admin.clientList()).find((c) => c.name === name)?.addr;
  if (!address) throw new Error(`no connection named ${name} in CLIENT LIST`);
  const monitor = new Monitor(address);
  await monitorClient.monitor((reply) => monitor.line(String(reply)));
  const engine: Engine = new SessionEngine({
    store,
    secrets: ['bench-secret-0123456789abcdef-0123456789'],
    idleTimeoutSeconds: IDLE_SECONDS,
    now: () => clock,
  });
  const rows: string[] = [];
  let mismatches = 0;
  try {
    // Warm-up: every script is loaded (EVALSHA's NOSCRIPT -> EVAL happens here, not below).
    for (const scenario of scenarios) {
      for (const cookie of await scenario.prepare(engine, 3)) await scenario.request(engine, cookie);
      clock = Date.now();
    }
    for (const scenario of scenarios) {
      const inputs = await scenario.prepare(engine, N);
      await monitor.drain(admin);
      const before = await commandStats(admin);
      for (const cookie of inputs) await scenario.request(engine, cookie);
      const sent = breakdown(await monitor.drain(admin));
      const after = await commandStats(admin);
      clock = Date.now();
      const executed = breakdown(new Map([...after].map(([c, calls]) => [c, calls - (before.get(c) ?? 0)])));
      if (sent.perRequest !== scenario.expected) mismatches++;
      const mark = sent.perRequest === scenario.expected ? 'yes' : `**no** (expected ${scenario.expected})`;
      rows.push(
        `| ${scenario.name} | **${sent.perRequest}** | ${sent.parts} | ${executed.perRequest} (${executed.parts}) | ${mark} |`,
      );
    }
  } finally {
    await engine.close();
    await Promise.all([admin.close(), monitorClient.close()]);
    await server?.stop();
  }
  console.log(`Redis commands per request: N = ${N} requests per scenario, Node ${process.versions.node}\n`);
  console.log('| scenario | commands sent | sent | executed in Redis (INFO commandstats) | as expected |');
  console.log('|---|---|---|---|---|');
  for (const row of rows) console.log(row);
  if (mismatches > 0) process.exitCode = 1;
}

await main();
