/**
 * The SQL store's cost per request, in-process: N engine requests (load + commit) per scenario,
 * as an adapter would drive them, against SQLite (a temp file), PostgreSQL and MariaDB. Prints
 * the process's CPU µs per request (process.cpuUsage, user + system, GC included) and the SQL
 * statements per request (counted by wrapping the driver, in a separate pass, so the timed
 * passes run unwrapped clients); on PostgreSQL also the CPU µs per request of the server's
 * backends serving the bench's pool (utime + stime from /proc, 10 ms ticks). Not a test.
 *
 *   node --import tsx bench/sql-store.ts [--base DIR] [--n 2000] [--rounds 5] [--concurrency 8]
 *                                        [--stores sqlite,postgres,mysql]
 *
 * --base: another checkout of Tessera (e.g. `git worktree add --detach /tmp/base main`, with a
 * node_modules link), whose engine and SQL store run in turns with this checkout's in the same
 * process, round by round, the order alternating; the table gives the medians of the rounds.
 *
 * Scenarios: "read" loads a session and commits with nothing to write (no touch due: the clock
 * stands still); "rmw" loads it, changes one key and commits (a patch). PostgreSQL at
 * TESSERA_PG_URL (default postgres://postgres@127.0.0.1:5432/test), MariaDB at TESSERA_MYSQL_URL
 * (default mysql://root@127.0.0.1:3306/test); tables get random names and are dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import mysql from 'mysql2';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    n: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
    stores: { type: 'string', default: 'sqlite,postgres,mysql' },
  },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
const CONCURRENCY = Number(args.concurrency);
const PG_URL = process.env.TESSERA_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.TESSERA_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const SECRET = 'bench-secret-0123456789abcdef-0123456789';
const CLOCK = Date.now();

type Dialect = 'sqlite' | 'postgres' | 'mysql';
type ScenarioName = 'read' | 'rmw';
const SCENARIOS: ScenarioName[] = ['read', 'rmw'];

interface Session {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
}
interface Engine {
  session(cookie: string | undefined): Session;
  commit(session: Session): Promise<{ setCookie: string | null }>;
  close(): Promise<void>;
}
interface Store {
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** One checkout's engine and store classes. */
interface Code {
  label: string;
  Engine: new (options: object) => Engine;
  SqlStore: new (options: object) => Store;
}

async function codeOf(label: string, root: string): Promise<Code> {
  const engine = await import(join(root, 'src/core/engine.ts'));
  const sql = await import(join(root, 'src/stores/sql/index.ts'));
  return { label, Engine: engine.SessionEngine, SqlStore: sql.SqlStore };
}

/** A driver client of the dialect, the store's `db`; with `count`, every statement it runs is counted. */
interface Client {
  db: unknown;
  statements(): number;
  /** PostgreSQL: the CPU µs its backends for this client have used so far (null elsewhere). */
  serverCpu(): Promise<number | null>;
  drop(table: string): Promise<void>;
  end(): Promise<void>;
}

function clientOf(dialect: Dialect, sqliteFile: string, count: boolean): Client {
  let statements = 0;
  const counted = (run: (...a: unknown[]) => unknown) =>
    function (this: unknown, ...a: unknown[]) {
      statements++;
      return run.apply(this, a);
    };
  if (dialect === 'sqlite') {
    const db = new Database(sqliteFile);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    if (count) {
      const prepare = db.prepare.bind(db);
      const seen = new WeakSet<object>();
      db.prepare = ((text: string) => {
        const statement = prepare(text) as unknown as Record<string, (...a: unknown[]) => unknown>;
        if (!seen.has(statement)) {
          seen.add(statement);
          for (const method of ['run', 'all', 'get', 'iterate']) {
            statement[method] = counted(statement[method] as (...a: unknown[]) => unknown);
          }
        }
        return statement;
      }) as unknown as typeof db.prepare;
    }
    return {
      db,
      statements: () => statements,
      serverCpu: async () => null,
      drop: async (table) => void db.exec(`drop table if exists "${table}"`),
      end: async () => {
        db.close();
      },
    };
  }
  if (dialect === 'postgres') {
    // Backends are found by application_name; idle ones are kept, so none takes its CPU time away.
    const application_name = `tessera-bench-${randomBytes(4).toString('hex')}`;
    const pool = new pg.Pool({ connectionString: PG_URL, max: 10, idleTimeoutMillis: 0, application_name });
    if (count) {
      pool.on('connect', (client) => {
        client.query = counted(client.query as never) as never;
      });
    }
    return {
      db: pool,
      statements: () => statements,
      async serverCpu() {
        const { rows } = await pool.query<{ pid: number }>(
          'select pid from pg_stat_activity where application_name = $1',
          [application_name],
        );
        let ticks = 0;
        for (const { pid } of rows) {
          // utime and stime, fields 14 and 15 of /proc/PID/stat, in clock ticks (100 per second on Linux).
          const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
          ticks += Number(fields[11]) + Number(fields[12]);
        }
        return ticks * 10_000;
      },
      drop: async (table) => void (await pool.query(`drop table if exists "${table}"`)),
      end: () => pool.end(),
    };
  }
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 10 });
  if (count) {
    pool.on('connection', (connection) => {
      connection.query = counted(connection.query as never) as never;
    });
  }
  return {
    db: pool,
    statements: () => statements,
    serverCpu: async () => null,
    drop: async (table) => void (await pool.promise().query(`drop table if exists \`${table}\``)),
    end: () => pool.promise().end(),
  };
}

/** An engine over a store of `code` on `client`'s table, with `n` sessions in it; returns their cookies. */
async function setUp(code: Code, client: Client, table: string, n: number) {
  const store = new code.SqlStore({ db: client.db, table, pruneIntervalSeconds: 0 });
  await store.ready();
  const engine = new code.Engine({ store, secrets: [SECRET], now: () => CLOCK });
  const cookies: string[] = [];
  for (let i = 0; i < n; i++) {
    const session = engine.session(undefined);
    await session.set('cart', ['book']);
    await session.set('user', { id: i, name: `user-${i}` });
    const { setCookie } = await engine.commit(session);
    cookies.push(setCookie?.split(';')[0] as string);
  }
  return { engine, store, cookies };
}

type Timed = Awaited<ReturnType<typeof setUp>> & { client: Client };

let writes = 0;

async function request(engine: Engine, cookie: string, scenario: ScenarioName): Promise<void> {
  const session = engine.session(cookie);
  const cart = await session.get('cart');
  if (cart === undefined) throw new Error('the session was not found: the bench measures the wrong thing');
  // A value never written before, so that every rmw has a change to write.
  if (scenario === 'rmw') await session.set('cart', ['book', `pen-${writes++}`]);
  const { write } = (await engine.commit(session)) as unknown as { write: string };
  if (write !== (scenario === 'rmw' ? 'patch' : 'none')) throw new Error(`${scenario} request wrote ${write}`);
}

/** Runs `n` requests, `CONCURRENCY` at a time, over the cookies in turn; returns CPU µs per request. */
async function drive(engine: Engine, cookies: string[], scenario: ScenarioName, n: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await request(engine, cookies[i % cookies.length] as string, scenario);
    }
  };
  const before = process.cpuUsage();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

/** CPU µs per request of this process and (PostgreSQL) of the server's backends for it. */
async function measure(timed: Timed, scenario: ScenarioName): Promise<[number, number | null]> {
  const before = await timed.client.serverCpu();
  const cpu = await drive(timed.engine, timed.cookies, scenario, N);
  const after = await timed.client.serverCpu();
  return [cpu, before === null || after === null ? null : (after - before) / N];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

async function main(): Promise<void> {
  const dialects = (args.stores as string).split(',') as Dialect[];
  const codes = [await codeOf('this checkout', resolve(import.meta.dirname, '..'))];
  if (args.base) codes.unshift(await codeOf(`base (${args.base})`, resolve(args.base)));
  const dir = mkdtempSync(join(os.tmpdir(), 'tessera-sql-bench-'));
  const cleanups: (() => Promise<void>)[] = [];
  // cpu[dialect][scenario][code] = µs per request, one per round
  const cpu = new Map<string, number[]>();
  const server = new Map<string, number[]>();
  const statements = new Map<string, number>();
  const id = (d: Dialect, s: ScenarioName, c: Code) => `${d}|${s}|${c.label}`;
  try {
    const setups = new Map<string, Timed>();
    for (const dialect of dialects) {
      for (const [i, code] of codes.entries()) {
        // Statements, counted on a client of their own, before any timing.
        const counting = clientOf(dialect, join(dir, `count-${i}.db`), true);
        const table = `tessera_bench_${randomBytes(4).toString('hex')}`;
        cleanups.push(async () => {
          await counting.drop(table);
          await counting.end();
        });
        const counted = await setUp(code, counting, table, 200);
        for (const scenario of SCENARIOS) {
          await drive(counted.engine, counted.cookies, scenario, 200);
          const from = counting.statements();
          await drive(counted.engine, counted.cookies, scenario, 200);
          statements.set(id(dialect, scenario, code), (counting.statements() - from) / 200);
        }
        await counted.engine.close();
        await counted.store.close();

        const client = clientOf(dialect, join(dir, `time-${i}.db`), false);
        const timedTable = `tessera_bench_${randomBytes(4).toString('hex')}`;
        const timed = await setUp(code, client, timedTable, 1000);
        cleanups.push(async () => {
          await timed.engine.close();
          await timed.store.close();
          await client.drop(timedTable);
          await client.end();
        });
        // Warm-up: the JIT, the pool's connections, each statement's first preparation.
        for (const scenario of SCENARIOS) await drive(timed.engine, timed.cookies, scenario, Math.min(N, 1000));
        setups.set(`${dialect}|${code.label}`, { ...timed, client });
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const dialect of dialects) {
        for (const scenario of SCENARIOS) {
          const order = round % 2 === 0 ? codes : [...codes].reverse();
          for (const code of order) {
            const key = id(dialect, scenario, code);
            const [own, theirs] = await measure(setups.get(`${dialect}|${code.label}`) as Timed, scenario);
            cpu.set(key, [...(cpu.get(key) ?? []), own]);
            if (theirs !== null) server.set(key, [...(server.get(key) ?? []), theirs]);
          }
        }
      }
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `N=${N} requests per run, ${ROUNDS} rounds, ${CONCURRENCY} in flight; CPU µs per request (median of rounds)\n`,
  );
  console.log('| store | scenario | code | CPU µs/request | rounds | server CPU µs/request | statements/request |');
  console.log('|---|---|---|---|---|---|---|');
  for (const dialect of dialects) {
    for (const scenario of SCENARIOS) {
      for (const code of codes) {
        const key = id(dialect, scenario, code);
        const runs = cpu.get(key) ?? [];
        console.log(
          `| ${dialect} | ${scenario} | ${code.label} | ${median(runs).toFixed(0)} | ${runs.map((r) => r.toFixed(0)).join(' ')} | ${server.has(key) ? median(server.get(key) ?? []).toFixed(0) : '-'} | ${statements.get(key)} |`,
        );
      }
    }
  }
}

await main();
