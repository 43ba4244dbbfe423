/** The servers compared, and the scenarios each is driven through. */

export type Framework = 'express' | 'fastify';
export type Family = 'bare' | 'floor' | 'express-session' | '@fastify/session' | 'Tessera';

export interface Variant {
  /** Stable id, used by `BENCH_VARIANTS` and in results.json. */
  id: string;
  /** Label in the table and the chart. */
  label: string;
  framework: Framework;
  family: Family;
  /** File in bench/servers/. */
  server: string;
  /** Extra environment for the server. */
  env: Record<string, string>;
  /** What the server talks to: decides which store counters are read around the runs. */
  backend: 'none' | 'redis' | 'postgres';
  /** Source files that must exist for the variant to run (parts still being written are skipped). */
  requires: string[];
  /** Name of the session cookie the server sets, to pick it out of Set-Cookie. */
  cookie: string | null;
  /** Runs the baseline revision's code (`BENCH_BASELINE`), not this checkout's. */
  baseline?: boolean;
}

/** The baseline twin of a Tessera variant: same server, the old revision's code. */
export function baselineOf(variant: Variant, commit: string): Variant {
  return { ...variant, id: `${variant.id}@${commit}`, label: `${variant.label} (${commit})`, baseline: true };
}

export const VARIANTS: readonly Variant[] = [
  {
    id: 'express',
    label: 'Express (bare)',
    framework: 'express',
    family: 'bare',
    server: 'express-bare.ts',
    env: {},
    backend: 'none',
    requires: [],
    cookie: null,
  },
  {
    id: 'express-floor-redis',
    label: 'Express, hand-written, Redis',
    framework: 'express',
    family: 'floor',
    server: 'floor.ts',
    env: { BENCH_FRAMEWORK: 'express', BENCH_STORE: 'redis' },
    backend: 'redis',
    requires: [],
    cookie: 'floor.sid',
  },
  {
    id: 'express-floor-postgres',
    label: 'Express, hand-written, PostgreSQL',
    framework: 'express',
    family: 'floor',
    server: 'floor.ts',
    env: { BENCH_FRAMEWORK: 'express', BENCH_STORE: 'postgres' },
    backend: 'postgres',
    requires: [],
    cookie: 'floor.sid',
  },
  {
    id: 'express-floor-memory',
    label: 'Express, hand-written, in-process map',
    framework: 'express',
    family: 'floor',
    server: 'floor.ts',
    env: { BENCH_FRAMEWORK: 'express', BENCH_STORE: 'memory' },
    backend: 'none',
    requires: [],
    cookie: 'floor.sid',
  },
  {
    id: 'express-session-node-redis',
    label: 'express-session, connect-redis, node-redis',
    framework: 'express',
    family: 'express-session',
    server: 'express-session.ts',
    env: { BENCH_REDIS_CLIENT: 'node-redis' },
    backend: 'redis',
    requires: [],
    cookie: 'connect.sid',
  },
  {
    id: 'express-session-ioredis',
    label: 'express-session, connect-redis, ioredis',
    framework: 'express',
    family: 'express-session',
    server: 'express-session.ts',
    env: { BENCH_REDIS_CLIENT: 'ioredis' },
    backend: 'redis',
    requires: [],
    cookie: 'connect.sid',
  },
  {
    id: 'tessera-express-redis',
    label: 'Tessera Express, Redis',
    framework: 'express',
    family: 'Tessera',
    server: 'tessera-express.ts',
    env: { BENCH_STORE: 'redis' },
    backend: 'redis',
    requires: ['src/frameworks/express.ts', 'src/stores/redis/index.ts'],
    cookie: 'tessera.sid',
  },
  {
    id: 'tessera-express-redis-cached',
    label: 'Tessera Express, Redis + read tier',
    framework: 'express',
    family: 'Tessera',
    server: 'tessera-express.ts',
    env: { BENCH_STORE: 'redis-cached' },
    backend: 'redis',
    requires: ['src/frameworks/express.ts', 'src/stores/redis/index.ts', 'src/stores/cache/index.ts'],
    cookie: 'tessera.sid',
  },
  {
    id: 'tessera-express-postgres',
    label: 'Tessera Express, PostgreSQL',
    framework: 'express',
    family: 'Tessera',
    server: 'tessera-express.ts',
    env: { BENCH_STORE: 'postgres' },
    backend: 'postgres',
    requires: ['src/frameworks/express.ts', 'src/stores/sql/index.ts'],
    cookie: 'tessera.sid',
  },
  {
    id: 'fastify',
    label: 'Fastify (bare)',
    framework: 'fastify',
    family: 'bare',
    server: 'fastify-bare.ts',
    env: {},
    backend: 'none',
    requires: [],
    cookie: null,
  },
  {
    id: 'fastify-floor-redis',
    label: 'Fastify, hand-written, Redis',
    framework: 'fastify',
    family: 'floor',
    server: 'floor.ts',
    env: { BENCH_FRAMEWORK: 'fastify', BENCH_STORE: 'redis' },
    backend: 'redis',
    requires: [],
    cookie: 'floor.sid',
  },
  {
    id: 'fastify-floor-postgres',
    label: 'Fastify, hand-written, PostgreSQL',
    framework: 'fastify',
    family: 'floor',
    server: 'floor.ts',
    env: { BENCH_FRAMEWORK: 'fastify', BENCH_STORE: 'postgres' },
    backend: 'postgres',
    requires: [],
    cookie: 'floor.sid',
  },
  {
    id: 'fastify-floor-memory',
    label: 'Fastify, hand-written, in-process map',
    framework: 'fastify',
    family: 'floor',
    server: 'floor.ts',
    env: { BENCH_FRAMEWORK: 'fastify', BENCH_STORE: 'memory' },
    backend: 'none',
    requires: [],
    cookie: 'floor.sid',
  },
  {
    id: 'fastify-session',
    label: '@fastify/session, connect-redis',
    framework: 'fastify',
    family: '@fastify/session',
    server: 'fastify-session.ts',
    env: {},
    backend: 'redis',
    requires: [],
    cookie: 'sessionId',
  },
  {
    id: 'tessera-fastify-redis',
    label: 'Tessera Fastify, Redis',
    framework: 'fastify',
    family: 'Tessera',
    server: 'tessera-fastify.ts',
    env: { BENCH_STORE: 'redis' },
    backend: 'redis',
    requires: ['src/frameworks/fastify.ts', 'src/stores/redis/index.ts'],
    cookie: 'tessera.sid',
  },
  {
    id: 'tessera-fastify-redis-cached',
    label: 'Tessera Fastify, Redis + read tier',
    framework: 'fastify',
    family: 'Tessera',
    server: 'tessera-fastify.ts',
    env: { BENCH_STORE: 'redis-cached' },
    backend: 'redis',
    requires: ['src/frameworks/fastify.ts', 'src/stores/redis/index.ts', 'src/stores/cache/index.ts'],
    cookie: 'tessera.sid',
  },
];

export interface Scenario {
  id: 'rmw' | 'read' | 'new' | 'anon';
  label: string;
  path: string;
  /** Requests carry a cookie of a pre-generated session. */
  existing: boolean;
}

/** In the order they run: the ones that add sessions last, so earlier ones see the same keyspace. */
export const SCENARIOS: readonly Scenario[] = [
  { id: 'read', label: 'read-only', path: '/read', existing: true },
  { id: 'rmw', label: 'read-modify-write', path: '/rmw', existing: true },
  { id: 'anon', label: 'anonymous', path: '/anon', existing: false },
  { id: 'new', label: 'new session', path: '/new', existing: false },
];

/** The bare framework a variant is compared with. */
export function ceilingOf(variant: Variant): string {
  return variant.framework;
}

/**
 * Targets from the issue, as a fraction of the bare framework: goals to report against, never
 * assertions. The anchors' ranges are what was measured for them elsewhere.
 */
export const TARGETS: Record<string, Partial<Record<Scenario['id'], string>>> = {
  'express-session-node-redis': { read: '0.38-0.45 (measured)', rmw: '0.35-0.49 (measured)' },
  'express-session-ioredis': { read: '0.38-0.45 (measured)', rmw: '0.35-0.49 (measured)' },
  'fastify-session': { read: '0.15-0.27 (measured)', rmw: '0.14-0.15 (measured)' },
  // Issue 13's targets, as ratios of the bare framework's req/s.
  'tessera-express-redis': { read: '>= 0.80' },
  'tessera-express-redis-cached': { read: '>= 0.90' },
  'tessera-express-postgres': { read: '>= 0.62', rmw: '>= 0.34' },
  'tessera-fastify-redis': { read: '>= 0.50' },
  'tessera-fastify-redis-cached': { read: '>= 0.80', rmw: '>= 0.30' },
};

/** The lower bound of a Tessera target, to mark a miss; `null` for the anchors' measured ranges. */
export function targetFloor(target: string | undefined): number | null {
  const match = target?.match(/^>= ([\d.]+)/);
  return match ? Number(match[1]) : null;
}
