/**
 * `npm run bench`: Tessera against the anchors (express-session + connect-redis, @fastify/session)
 * and against the bare frameworks, with wrk. Writes bench/results/{results.md,results.json,chart.svg}.
 * Settings: bench/lib/config.ts and docs/bench.md.
 *
 * Every variant's server is started first. Then, per scenario, each server is warmed up and the
 * measured runs go round the servers in turns (a different starting server each round), so a
 * drift in the machine's other load lands on every variant alike.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderChart } from './lib/chart.ts';
import { type CompiledTree, compileServers, unpackRevision } from './lib/compile.ts';
import { type BenchConfig, describeConfig, readConfig } from './lib/config.ts';
import { machineInfo } from './lib/machine.ts';
import { Cell } from './lib/measure.ts';
import { type BenchPostgres, openPostgres } from './lib/postgres.ts';
import { canPin, onInterrupt, stopAll } from './lib/processes.ts';
import { type BenchRedis, startRedis } from './lib/redis.ts';
import type { BenchResults, ScenarioResult, VariantResult } from './lib/results.ts';
import { ROOT, type RunningServer, startServer } from './lib/server.ts';
import { makeSessions, probe } from './lib/sessions.ts';
import { markdown } from './lib/table.ts';
import { baselineOf, ceilingOf, SCENARIOS, type Scenario, TARGETS, VARIANTS, type Variant } from './lib/variants.ts';
import { writeScripts, wrkVersion } from './lib/wrk.ts';

interface Prepared {
  variant: Variant;
  server: RunningServer;
  cookieFile: string;
  result: VariantResult;
}

const log = (message: string) => console.log(message);
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** The selected variants, with the bare framework of each (the ratios need it). */
function selectVariants(config: BenchConfig): Variant[] {
  if (config.variants.length === 0) return [...VARIANTS];
  const unknown = config.variants.filter((id) => !VARIANTS.some((v) => v.id === id));
  if (unknown.length > 0) {
    const known = VARIANTS.map((v) => v.id).join(', ');
    throw new Error(`[bench] unknown BENCH_VARIANTS ${unknown.join(', ')}; known: ${known}`);
  }
  const wanted = new Set(config.variants);
  for (const id of config.variants) wanted.add(ceilingOf(VARIANTS.find((v) => v.id === id) as Variant));
  return VARIANTS.filter((v) => wanted.has(v.id));
}

function selectScenarios(config: BenchConfig): Scenario[] {
  if (config.scenarios.length === 0) return [...SCENARIOS];
  const unknown = config.scenarios.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length > 0) {
    throw new Error(`[bench] unknown BENCH_SCENARIOS ${unknown.join(', ')} (rmw, read, new, anon)`);
  }
  return SCENARIOS.filter((s) => config.scenarios.includes(s.id));
}

/** Why a variant cannot run here, or `null`. */
function skipReason(variant: Variant, postgres: BenchPostgres | string): string | null {
  const missing = variant.requires.find((file) => !existsSync(join(ROOT, file)));
  if (missing) return `${missing} not found`;
  if (variant.backend === 'postgres' && typeof postgres === 'string') return postgres;
  return null;
}

function pick(variant: Variant): Pick<VariantResult, 'id' | 'label' | 'framework' | 'family'> {
  return { id: variant.id, label: variant.label, framework: variant.framework, family: variant.family };
}

function describe(variant: Variant, result: ScenarioResult): string {
  if (result.status !== 'ok') return `  ${variant.id.padEnd(30)} FAILED ${result.reason ?? ''}`;
  const { store } = result;
  const load =
    store.redisCommands !== undefined
      ? `  redis ${store.redisCommands} cmds/req, ${store.redisRoundTrips} round trips/req, ${store.redisCpuMicros} µs/req`
      : store.sqlScans !== undefined
        ? `  sql ${store.sqlScans} scans/req, ${store.sqlWrites} row writes/req`
        : '';
  const errors = result.errors > 0 ? `  ${result.errors} ERRORS` : '';
  const rps = String(Math.round(result.requestsPerSecond)).padStart(7);
  return `  ${variant.id.padEnd(30)} ${rps} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms  cpu ${result.serverCpu} (${result.serverMicros} µs/req${Number.isFinite(result.allocatedKiB) ? `, ${result.allocatedKiB} KiB/req` : ''})${load}${errors}`;
}

/** Starts a variant's server, checks its routes and makes its sessions. */
async function prepare(
  variant: Variant,
  config: BenchConfig,
  redis: BenchRedis,
  postgres: BenchPostgres | string,
  tmp: string,
  core: number | null,
  compiledDir: string | null,
): Promise<Prepared> {
  const env: Record<string, string> = {
    BENCH_REDIS_URL: redis.url,
    BENCH_PG_URL: config.pgUrl,
    BENCH_PREFIX: `bench:${variant.id}:`,
  };
  if (typeof postgres !== 'string') env.BENCH_PG_TABLE = postgres.tableFor(variant.id);
  const server = await startServer(variant, { core, env, profileDir: config.profileDir, compiledDir });
  try {
    await probe(variant, server.baseUrl);
    const cookieFile = join(tmp, `${variant.id}.cookies`);
    const made = await makeSessions(variant, server.baseUrl, config.sessions, cookieFile);
    if (variant.backend === 'postgres' && typeof postgres !== 'string') postgres.touched();
    log(`${variant.id}: ready${made > 0 ? `, ${made} sessions made` : ''}`);
    return { variant, server, cookieFile, result: { ...pick(variant), status: 'ok', scenarios: [] } };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** One scenario on every prepared server: warm-ups, then the measured runs in turns. */
async function runScenario(
  scenario: Scenario,
  prepared: Prepared[],
  config: BenchConfig,
  redis: BenchRedis,
  postgres: BenchPostgres | null,
  scripts: { plain: string; cookies: string },
  core: number | null,
): Promise<void> {
  log(`${scenario.label} (GET ${scenario.path}):`);
  const cells = prepared.map(({ variant, server, cookieFile }) => {
    const withCookies = scenario.existing && variant.cookie !== null;
    return new Cell(variant, scenario, server, {
      redis,
      postgres,
      wrk: {
        url: server.baseUrl + scenario.path,
        connections: config.connections,
        script: withCookies ? scripts.cookies : scripts.plain,
        cookieFile: withCookies ? cookieFile : undefined,
        core,
      },
      warmupSeconds: config.warmupSeconds,
      durationSeconds: config.durationSeconds,
      connections: config.connections,
      target: TARGETS[variant.id]?.[scenario.id] ?? null,
    });
  });
  const attempt = async (cell: Cell, step: () => Promise<void>) => {
    if (cell.failure !== null) return;
    try {
      await step();
    } catch (error) {
      cell.failure = (error as Error).message.split('\n')[0] ?? 'failed';
    }
  };
  for (const cell of cells) await attempt(cell, () => cell.warmUp());
  if (config.profileDir) for (const cell of cells) await attempt(cell, () => cell.server.startProfile());
  for (let turn = 0; turn < config.runs; turn++) {
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[(i + turn) % cells.length] as Cell;
      await attempt(cell, () => cell.measure());
    }
  }
  for (const cell of cells) {
    if (config.profileDir) {
      const file = join(config.profileDir, `${cell.variant.id}-${scenario.id}.cpuprofile`);
      await attempt(cell, () => cell.server.stopProfile(file));
    }
    await attempt(cell, () => cell.finishTable());
    const result = cell.result();
    prepared.find((p) => p.variant === cell.variant)?.result.scenarios.push(result);
    log(describe(cell.variant, result));
  }
}

/** Fills in each result's ratio to its bare framework in the same scenario. */
function addRatios(variants: VariantResult[]): void {
  for (const variant of variants) {
    const bare = variants.find((v) => v.id === variant.framework && v.status === 'ok');
    for (const result of variant.scenarios) {
      const ceiling = bare?.scenarios.find((s) => s.scenario === result.scenario && s.status === 'ok');
      if (ceiling && result.status === 'ok') {
        result.ratio = round(result.requestsPerSecond / ceiling.requestsPerSecond, 3);
        result.cpuRatio = round(ceiling.serverMicros / result.serverMicros, 3);
      }
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
  const loadCore = pinned ? 0 : null;
  const serverCore = pinned ? 1 : null;
  const tmp = await mkdtemp(join(tmpdir(), 'tessera-bench-'));
  const perCell = Math.max(config.warmupSeconds, 1) + config.runs * config.durationSeconds + 1;
  const minutes = Math.round((variants.length * (scenarios.length * perCell + 3)) / 60);
  log(
    `tessera bench: ${variants.length} variants x ${scenarios.length} scenarios, ${describeConfig(config)} (about ${minutes} min)` +
      (pinned ? '; wrk and Redis on core 0, servers on core 1' : '; not pinned (no taskset)'),
  );
  if (loadAtStart > 0.5) {
    log(`warning: load average ${loadAtStart.toFixed(2)}: something else is running, the numbers will be noisy`);
  }
  let redis: BenchRedis | null = null;
  let postgres: BenchPostgres | string = 'PostgreSQL not needed';
  let compiled: CompiledTree | null = null;
  let baseline: CompiledTree | null = null;
  const prepared: Prepared[] = [];
  try {
    if (!config.tsx) {
      compiled = await compileServers(ROOT);
      log(`compiled ${compiled.files} files of src/ and bench/servers/ to ${compiled.dir}`);
    }
    if (config.baseline) {
      if (config.tsx) throw new Error('[bench] BENCH_BASELINE needs compiled servers (leave BENCH_TSX unset)');
      const source = join(tmp, 'baseline');
      const commit = await unpackRevision(ROOT, config.baseline, source);
      baseline = await compileServers(ROOT, source, `${process.pid}-baseline`);
      log(`baseline ${config.baseline} (${commit}): compiled ${baseline.files} files to ${baseline.dir}`);
      // Each Tessera variant right after its baseline twin, so the rounds alternate old and new.
      const twinned = variants.flatMap((v) => (v.family === 'Tessera' ? [baselineOf(v, commit), v] : [v]));
      variants.splice(0, variants.length, ...twinned);
    }
    await wrkVersion(); // fails now, naming the fix, rather than after every server has started
    redis = await startRedis(loadCore);
    log(`redis ${redis.version} on ${redis.url}`);
    if (config.profileDir) await mkdir(config.profileDir, { recursive: true });
    if (variants.some((v) => v.backend === 'postgres')) {
      postgres = await openPostgres(config.pgUrl);
      const opened = postgres;
      if (typeof opened !== 'string') onInterrupt(() => opened.close());
    }
    const scripts = await writeScripts(tmp);
    const results: VariantResult[] = [];
    for (const variant of variants) {
      const reason = skipReason(variant, postgres);
      if (reason) {
        log(`${variant.id}: skipped: ${reason}`);
        results.push({ ...pick(variant), status: 'skipped', reason, scenarios: [] });
        continue;
      }
      try {
        const tree = variant.baseline ? baseline : compiled;
        const ready = await prepare(variant, config, redis, postgres, tmp, serverCore, tree?.dir ?? null);
        prepared.push(ready);
        results.push(ready.result);
      } catch (error) {
        const reason = (error as Error).message;
        log(`${variant.id}: FAILED ${reason}`);
        results.push({ ...pick(variant), status: 'failed', reason: reason.split('\n')[0], scenarios: [] });
        process.exitCode = 1;
      }
    }
    const pg = typeof postgres === 'string' ? null : postgres;
    for (const scenario of scenarios) {
      await runScenario(scenario, prepared, config, redis, pg, scripts, loadCore);
    }
    addRatios(results);
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
        ...(pg ? { postgresql: pg.version } : {}),
        pinning: pinned ? 'taskset: wrk + Redis on core 0, servers on core 1' : 'none',
        servers: config.tsx ? 'TypeScript through tsx' : 'compiled to JavaScript (TypeScript transpileModule)',
      },
      totalSeconds: Math.round((performance.now() - started) / 1000),
      loadAverage: { start: round(loadAtStart), end: round(loadavg()[0] as number) },
      variants: results,
    };
    // Profiled servers run slower: their numbers never replace the committed results.
    await writeResults(output, config.profileDir ?? config.outDir);
    if (config.profileDir) log(`profiles: ${config.profileDir} (summarize: node --import tsx bench/profile.ts <dir>)`);
  } finally {
    await Promise.all(prepared.map(({ server }) => server.stop()));
    await stopAll();
    await redis?.stop();
    if (typeof postgres !== 'string') await postgres.close().catch((e: Error) => console.error(`[bench] ${e.message}`));
    await rm(tmp, { recursive: true, force: true });
    await compiled?.remove();
    await baseline?.remove();
    const total = (performance.now() - started) / 1000;
    log(`total time: ${Math.floor(total / 60)} min ${Math.round(total % 60)} s`);
  }
}

await main();
