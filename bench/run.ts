/**
 * `npm run bench`: Tessera against the anchors (express-session + connect-redis, @fastify/session)
 * and against the bare frameworks, with wrk. Writes bench/results/{results.md,results.json,chart.svg}.
 * Settings: see bench/lib/config.ts and docs/bench.md.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderChart } from './lib/chart.ts';
import { type BenchConfig, describeConfig, readConfig } from './lib/config.ts';
import { machineInfo } from './lib/machine.ts';
import { type BenchPostgres, openPostgres, type TableCounters } from './lib/postgres.ts';
import { canPin, stopAll } from './lib/processes.ts';
import {
  type BenchRedis,
  commandDelta,
  commandStats,
  type Origins,
  roundTrips,
  sampleOrigins,
  startRedis,
} from './lib/redis.ts';
import type { BenchResults, ScenarioResult, StoreLoad, VariantResult } from './lib/results.ts';
import { median } from './lib/results.ts';
import { ROOT, type RunningServer, startServer } from './lib/server.ts';
import { makeSessions, probe } from './lib/sessions.ts';
import { markdown } from './lib/table.ts';
import { ceilingOf, SCENARIOS, type Scenario, TARGETS, type Variant, VARIANTS } from './lib/variants.ts';
import { runWrk, type WrkResult, writeScripts, wrkVersion } from './lib/wrk.ts';

interface Context {
  config: BenchConfig;
  /** Core of wrk and Redis, and core of the server under test (`null`: not pinned). */
  loadCore: number | null;
  serverCore: number | null;
  redis: BenchRedis;
  postgres: BenchPostgres | string;
  scripts: { plain: string; cookies: string };
  tmp: string;
}

const log = (message: string) => console.log(message);
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** The selected variants, with the bare framework of each (the ratios need it). */
function selectVariants(config: BenchConfig): Variant[] {
  if (config.variants.length === 0) return [...VARIANTS];
  const unknown = config.variants.filter((id) => !VARIANTS.some((v) => v.id === id));
  if (unknown.length > 0) {
    throw new Error(
      `[bench] unknown BENCH_VARIANTS ${unknown.join(', ')}; known: ${VARIANTS.map((v) => v.id).join(', ')}`,
    );
  }
  const wanted = new Set(config.variants);
  for (const id of config.variants) wanted.add(ceilingOf(VARIANTS.find((v) => v.id === id) as Variant));
  return VARIANTS.filter((v) => wanted.has(v.id));
}

function selectScenarios(config: BenchConfig): Scenario[] {
  if (config.scenarios.length === 0) return [...SCENARIOS];
  const unknown = config.scenarios.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length > 0)
    throw new Error(`[bench] unknown BENCH_SCENARIOS ${unknown.join(', ')} (rmw, read, new, anon)`);
  return SCENARIOS.filter((s) => config.scenarios.includes(s.id));
}

/** Why a variant cannot run here, or `null`. */
function skipReason(variant: Variant, ctx: Context): string | null {
  const missing = variant.requires.find((file) => !existsSync(join(ROOT, file)));
  if (missing) return `${missing} not found`;
  if (variant.backend === 'postgres' && typeof ctx.postgres === 'string') return ctx.postgres;
  return null;
}

interface RedisSnapshot {
  calls: Map<string, number>;
  cpuSeconds: number;
}

async function storeSnapshot(variant: Variant, ctx: Context): Promise<RedisSnapshot | TableCounters | null> {
  if (variant.backend === 'redis') return { calls: await commandStats(ctx.redis), cpuSeconds: ctx.redis.cpuSeconds() };
  if (variant.backend === 'postgres' && typeof ctx.postgres !== 'string') return ctx.postgres.counters();
  return null;
}

function storeLoad(
  before: RedisSnapshot | TableCounters | null,
  after: RedisSnapshot | TableCounters | null,
  origins: Origins,
  requests: number,
): StoreLoad {
  if (before && after && 'calls' in before && 'calls' in after) {
    const calls = commandDelta(before.calls, after.calls);
    const total = [...calls.values()].reduce((a, b) => a + b, 0);
    return {
      redisCommands: round(total / requests, 3),
      redisRoundTrips:
        total === 0 ? 0 : origins.size === 0 ? undefined : round(roundTrips(calls, origins) / requests, 3),
      redisCpuMicros: round(((after.cpuSeconds - before.cpuSeconds) * 1e6) / requests, 1),
      redisByCommand: Object.fromEntries([...calls].map(([name, count]) => [name, round(count / requests, 3)])),
    };
  }
  if (before && after && 'scans' in before && 'scans' in after) {
    return {
      sqlScans: round((after.scans - before.scans) / requests, 3),
      sqlWrites: round((after.writes - before.writes) / requests, 3),
    };
  }
  return {};
}

async function runScenario(
  variant: Variant,
  scenario: Scenario,
  server: RunningServer,
  cookieFile: string,
  ctx: Context,
  profileFile: string | null,
): Promise<ScenarioResult> {
  const { config } = ctx;
  const withCookies = scenario.existing && variant.cookie !== null;
  const wrk = {
    url: server.baseUrl + scenario.path,
    connections: config.connections,
    script: withCookies ? ctx.scripts.cookies : ctx.scripts.plain,
    cookieFile: withCookies ? cookieFile : undefined,
    core: ctx.loadCore,
  };
  // Warm-up (at least 1 s): JIT, connection pools, the local read tier; MONITOR samples it.
  const warmup = Math.max(config.warmupSeconds, 1);
  // MONITOR samples the second half of the warm-up, when the server is past its first requests.
  const sampling =
    variant.backend === 'redis'
      ? sleep(warmup * 500).then(() => sampleOrigins(ctx.redis, Math.min(500, warmup * 400)))
      : null;
  await runWrk({ ...wrk, seconds: warmup });
  const origins = (await sampling) ?? new Map();
  await sleep(200); // the warm-up's last requests finish
  const before = await storeSnapshot(variant, ctx);
  if (profileFile) await server.startProfile();
  const cpuBefore = server.cpuSeconds();
  const runs: WrkResult[] = [];
  for (let i = 0; i < config.runs; i++) runs.push(await runWrk({ ...wrk, seconds: config.durationSeconds }));
  const cpuUsed = server.cpuSeconds() - cpuBefore;
  if (profileFile) await server.stopProfile(profileFile);
  await sleep(200);
  const after = await storeSnapshot(variant, ctx);
  const requests = runs.reduce((sum, run) => sum + run.requests, 0);
  const errors = runs.reduce((sum, run) => sum + run.errors, 0);
  // Each connection has a request in flight when wrk stops; the server still serves it (and
  // talks to the store), so it counts in the store's per-request figures.
  const served = requests + config.connections * config.runs;
  return {
    scenario: scenario.id,
    status: 'ok',
    requestsPerSecond: round(median(runs.map((r) => r.requestsPerSecond)), 1),
    p50: round(median(runs.map((r) => r.p50)), 3),
    p99: round(median(runs.map((r) => r.p99)), 3),
    requests,
    errors,
    serverCpu: round(cpuUsed / runs.reduce((sum, run) => sum + run.durationSeconds, 0), 2),
    serverMicros: round((cpuUsed * 1e6) / Math.max(served, 1), 1),
    ratio: null,
    target: TARGETS[variant.id]?.[scenario.id] ?? null,
    store: storeLoad(before, after, origins, Math.max(served, 1)),
    runs,
  };
}

function describe(variant: Variant, result: ScenarioResult): string {
  const { store } = result;
  const load =
    store.redisCommands !== undefined
      ? `  redis ${store.redisCommands} cmds/req, ${store.redisRoundTrips} round trips/req, ${store.redisCpuMicros} µs/req`
      : store.sqlScans !== undefined
        ? `  sql ${store.sqlScans} scans/req, ${store.sqlWrites} row writes/req`
        : '';
  const errors = result.errors > 0 ? `  ${result.errors} ERRORS` : '';
  return `  ${variant.id.padEnd(30)} ${result.scenario.padEnd(5)} ${String(Math.round(result.requestsPerSecond)).padStart(7)} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms  cpu ${result.serverCpu} (${result.serverMicros} µs/req)${load}${errors}`;
}

async function runVariant(variant: Variant, scenarios: Scenario[], ctx: Context): Promise<VariantResult> {
  const { config } = ctx;
  const env: Record<string, string> = { BENCH_REDIS_URL: ctx.redis.url, BENCH_PG_URL: config.pgUrl };
  if (typeof ctx.postgres !== 'string') env.BENCH_PG_TABLE = ctx.postgres.table;
  const serverOptions = { core: ctx.serverCore, env };
  if (config.profileDir) await mkdir(config.profileDir, { recursive: true });
  const cookieFile = join(ctx.tmp, `${variant.id}.cookies`);
  const result: VariantResult = { ...pick(variant), status: 'ok', scenarios: [] };
  await ctx.redis.command('FLUSHALL');

  const profileFile = (scenario: Scenario) =>
    config.profileDir ? join(config.profileDir, `${variant.id}-${scenario.id}.cpuprofile`) : null;
  const server = await startServer(variant, { ...serverOptions, profileDir: config.profileDir });
  try {
    await probe(variant, server.baseUrl);
    const made = await makeSessions(variant, server.baseUrl, config.sessions, cookieFile);
    if (made > 0) log(`  ${variant.id}: ${made} sessions made`);
    for (const scenario of scenarios) {
      try {
        const measured = await runScenario(variant, scenario, server, cookieFile, ctx, profileFile(scenario));
        result.scenarios.push(measured);
        log(describe(variant, measured));
      } catch (error) {
        const reason = (error as Error).message.split('\n')[0] ?? 'failed';
        result.scenarios.push(failedScenario(scenario, reason));
        log(`  ${variant.id} ${scenario.id}: FAILED ${reason}`);
      }
    }
  } finally {
    await server.stop();
  }
  return result;
}

function pick(variant: Variant): Pick<VariantResult, 'id' | 'label' | 'framework' | 'family'> {
  return { id: variant.id, label: variant.label, framework: variant.framework, family: variant.family };
}

function failedScenario(scenario: Scenario, reason: string): ScenarioResult {
  const nothing = {
    requestsPerSecond: Number.NaN,
    p50: Number.NaN,
    p99: Number.NaN,
    requests: 0,
    errors: 0,
    serverCpu: 0,
    serverMicros: 0,
  };
  return {
    scenario: scenario.id,
    status: 'failed',
    reason,
    ...nothing,
    ratio: null,
    target: null,
    store: {},
    runs: [],
  };
}

/** Fills in each result's ratio to its bare framework in the same scenario. */
function addRatios(variants: VariantResult[]): void {
  for (const variant of variants) {
    const bare = variants.find((v) => v.id === variant.framework && v.status === 'ok');
    for (const result of variant.scenarios) {
      const ceiling = bare?.scenarios.find((s) => s.scenario === result.scenario && s.status === 'ok');
      if (ceiling && result.status === 'ok')
        result.ratio = round(result.requestsPerSecond / ceiling.requestsPerSecond, 3);
    }
  }
}

async function writeResults(results: BenchResults, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(dir, 'results.md'), markdown(results));
  try {
    await writeFile(join(dir, 'chart.svg'), await renderChart(results));
  } catch (error) {
    console.error(`[bench] no chart: ${(error as Error).message}`);
    process.exitCode = 1;
  }
  log(`results: ${join(dir, 'results.md')}, results.json, chart.svg`);
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg()[0] as number;
  const config = readConfig();
  const variants = selectVariants(config);
  const scenarios = selectScenarios(config);
  const pinned = config.pin && canPin();
  const tmp = await mkdtemp(join(tmpdir(), 'tessera-bench-'));
  const perScenario = Math.max(config.warmupSeconds, 1) + config.runs * config.durationSeconds + 0.5;
  log(
    `tessera bench: ${variants.length} variants x ${scenarios.length} scenarios, ${describeConfig(config)}` +
      ` (about ${Math.round((variants.length * (scenarios.length * perScenario + 3)) / 60)} min)` +
      (pinned ? '; wrk and Redis on core 0, servers on core 1' : '; not pinned (no taskset)'),
  );
  if (loadAtStart > 0.5)
    log(`warning: load average ${loadAtStart.toFixed(2)}: something else is running, the numbers will be noisy`);
  let redis: BenchRedis | null = null;
  let postgres: BenchPostgres | string = 'PostgreSQL not needed';
  try {
    redis = await startRedis(pinned ? 0 : null);
    log(`redis ${redis.version} on ${redis.url}`);
    if (variants.some((v) => v.backend === 'postgres')) postgres = await openPostgres(config.pgUrl);
    const ctx: Context = {
      config,
      loadCore: pinned ? 0 : null,
      serverCore: pinned ? 1 : null,
      redis,
      postgres,
      scripts: await writeScripts(tmp),
      tmp,
    };
    const results: VariantResult[] = [];
    for (const variant of variants) {
      const reason = skipReason(variant, ctx);
      if (reason) {
        log(`${variant.id}: skipped: ${reason}`);
        results.push({ ...pick(variant), status: 'skipped', reason, scenarios: [] });
        continue;
      }
      log(`${variant.id}: ${variant.label}`);
      try {
        results.push(await runVariant(variant, scenarios, ctx));
      } catch (error) {
        const reason = (error as Error).message;
        log(`${variant.id}: FAILED ${reason}`);
        results.push({ ...pick(variant), status: 'failed', reason: reason.split('\n')[0], scenarios: [] });
        process.exitCode = 1;
      }
    }
    addRatios(results);
    const totalSeconds = (performance.now() - started) / 1000;
    const output: BenchResults = {
      date: new Date().toISOString().slice(0, 10),
      command: `${describeConfig(config)} npm run bench`,
      settings: {
        durationSeconds: config.durationSeconds,
        runs: config.runs,
        warmupSeconds: config.warmupSeconds,
        connections: config.connections,
        sessions: config.sessions,
      },
      machine: machineInfo(),
      tools: {
        wrk: await wrkVersion(),
        'redis-server': redis.version,
        ...(typeof postgres !== 'string' ? { postgresql: postgres.version } : {}),
        pinning: pinned ? 'taskset: wrk + Redis on core 0, server on core 1' : 'none',
      },
      totalSeconds: Math.round(totalSeconds),
      loadAverage: { start: round(loadAtStart), end: round(loadavg()[0] as number) },
      variants: results,
    };
    // Profiled servers run slower: their numbers never replace the committed results.
    await writeResults(output, config.profileDir ?? config.outDir);
    if (config.profileDir) log(`profiles: ${config.profileDir} (summarize: node --import tsx bench/profile.ts <dir>)`);
  } finally {
    await stopAll();
    await redis?.stop();
    if (typeof postgres !== 'string') await postgres.close().catch((e: Error) => console.error(`[bench] ${e.message}`));
    await rm(tmp, { recursive: true, force: true });
    const total = (performance.now() - started) / 1000;
    log(`total time: ${Math.floor(total / 60)} min ${Math.round(total % 60)} s`);
  }
}

await main();
