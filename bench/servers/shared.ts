/**
 * What every benchmark server shares: the routes (one per scenario), the secret, and how it is
 * told where to listen and which store to use. The harness (bench/run.ts) sets these variables.
 *
 * Routes, the same on every server:
 * - `GET /rmw`  read the counter of an existing session, increment it, save it
 * - `GET /read` read the counter of an existing session
 * - `GET /new`  a visitor without a cookie whose session is stored (sets `count` to 0)
 * - `GET /anon` a visitor who never touches the session
 */
import type { Server } from 'node:http';
import { measureAllocationsOnRequest } from './allocation.ts';
import { profileOnSignal } from './profiling.ts';

/** One signing secret for every library (each needs at least 32 characters). */
export const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';

/** The scenario routes, in the order the harness runs them. */
export const ROUTES = ['/anon', '/read', '/rmw', '/new'] as const;

/** Session data of the benchmark. */
export interface BenchData {
  count: number;
}

export interface ServerEnv {
  port: number;
  /** `redis://127.0.0.1:<port>` of the harness's own Redis. */
  redisUrl: string;
  /** For the Tessera servers: `redis`, `redis-cached` or `postgres`. */
  store: string;
  /** For the express-session server: `node-redis` or `ioredis`. */
  redisClient: string;
  pgUrl: string;
  pgTable: string;
  /** Prefix of the Redis keys, one per variant, so no server sees another's keys or invalidations. */
  prefix: string;
}

/** Reads the environment (and `--port N` from argv, which wins). */
export function serverEnv(): ServerEnv {
  const argvPort = process.argv.indexOf('--port');
  const port = Number(argvPort >= 0 ? process.argv[argvPort + 1] : process.env.PORT);
  if (!Number.isInteger(port) || port <= 0) throw new Error('[bench] PORT (or --port N) is required');
  return {
    port,
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    store: process.env.BENCH_STORE ?? 'redis',
    redisClient: process.env.BENCH_REDIS_CLIENT ?? 'node-redis',
    pgUrl: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    pgTable: process.env.BENCH_PG_TABLE ?? 'bench_sessions',
    prefix: process.env.BENCH_PREFIX ?? 'bench:',
  };
}

/** Tells the harness the server listens, and closes cleanly on SIGTERM/SIGINT (so `--cpu-prof` writes its profile). */
export function announce(
  server: { close(): unknown } | Server,
  cleanup: () => Promise<unknown> = async () => {},
): void {
  profileOnSignal();
  measureAllocationsOnRequest();
  process.stdout.write('ready\n');
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(0), 2000);
    force.unref();
    Promise.resolve(server.close())
      .then(cleanup)
      .catch((error: unknown) => console.error('[bench] shutdown:', error))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
