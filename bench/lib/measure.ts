/**
 * One cell of the table: a variant's server driven through one scenario. The warm-up, then
 * measured runs that the harness interleaves with the other variants' (so slow drifts in what
 * else the machine is doing hit every variant alike), then the figures.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchPostgres, TableCounters } from './postgres.ts';
import { type BenchRedis, commandDelta, commandStats, type Origins, roundTrips, sampleOrigins } from './redis.ts';
import { median, type ScenarioResult, type StoreLoad } from './results.ts';
import type { RunningServer } from './server.ts';
import type { Scenario, Variant } from './variants.ts';
import { runWrk, type WrkResult, type WrkRun } from './wrk.ts';

export interface CellSetup {
  redis: BenchRedis;
  postgres: BenchPostgres | null;
  wrk: Omit<WrkRun, 'seconds'>;
  warmupSeconds: number;
  durationSeconds: number;
  connections: number;
  target: string | null;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

export class Cell {
  readonly runs: WrkResult[] = [];
  failure: string | null = null;
  #origins: Origins = new Map();
  #calls = new Map<string, number>();
  #redisCpu = 0;
  #serverCpu = 0;
  #allocated = 0;
  #table: { before: TableCounters; after: TableCounters | null; extraRequests: number } | null = null;

  constructor(
    readonly variant: Variant,
    readonly scenario: Scenario,
    readonly server: RunningServer,
    readonly setup: CellSetup,
  ) {}

  /**
   * Warm-up (at least 1 s): JIT, connection pools, the local read tier. MONITOR samples its second
   * half. PostgreSQL's counters are read before it (they lag), so its requests count there too.
   */
  async warmUp(): Promise<void> {
    const seconds = Math.max(this.setup.warmupSeconds, 1);
    const pg = this.variant.backend === 'postgres' ? this.setup.postgres : null;
    if (pg) this.#table = { before: await pg.counters(pg.tableFor(this.variant.id)), after: null, extraRequests: 0 };
    const sampling =
      this.variant.backend === 'redis'
        ? sleep(seconds * 500).then(() => sampleOrigins(this.setup.redis, Math.min(500, seconds * 400)))
        : null;
    const warmup = await runWrk({ ...this.setup.wrk, seconds });
    this.#origins = (await sampling) ?? new Map();
    await sleep(200); // the warm-up's last requests finish
    if (pg && this.#table) {
      pg.touched();
      this.#table.extraRequests = warmup.requests + this.setup.connections;
    }
  }

  /** One measured run, with the store's counters around it. */
  async measure(): Promise<void> {
    const redis = this.variant.backend === 'redis';
    const calls = redis ? await commandStats(this.setup.redis) : null;
    const redisCpu = this.setup.redis.cpuSeconds();
    const cpu = this.server.cpuSeconds();
    this.server.startAllocations();
    this.runs.push(await runWrk({ ...this.setup.wrk, seconds: this.setup.durationSeconds }));
    // The requests in flight when wrk stops still run; wait for them before reading counters.
    await sleep(150);
    this.#serverCpu += this.server.cpuSeconds() - cpu;
    this.#allocated += await this.server.stopAllocations();
    if (this.variant.backend === 'postgres') this.setup.postgres?.touched();
    if (calls) {
      this.#redisCpu += this.setup.redis.cpuSeconds() - redisCpu;
      for (const [name, count] of commandDelta(calls, await commandStats(this.setup.redis))) {
        this.#calls.set(name, (this.#calls.get(name) ?? 0) + count);
      }
    }
  }

  /** Reads the SQL table's counters once the runs are over (they only move during this variant's runs). */
  async finishTable(): Promise<void> {
    const pg = this.setup.postgres;
    if (this.#table && pg) this.#table.after = await pg.counters(pg.tableFor(this.variant.id));
  }

  result(): ScenarioResult {
    const base = {
      scenario: this.scenario.id,
      target: this.setup.target,
      ratio: null,
      cpuRatio: null,
      runs: this.runs,
    };
    if (this.failure !== null || this.runs.length === 0) {
      return {
        ...base,
        status: 'failed',
        reason: this.failure ?? 'no run',
        requestsPerSecond: Number.NaN,
        p50: Number.NaN,
        p99: Number.NaN,
        requests: 0,
        errors: 0,
        serverCpu: 0,
        serverMicros: 0,
        allocatedKiB: Number.NaN,
        store: {},
      };
    }
    const requests = this.runs.reduce((sum, run) => sum + run.requests, 0);
    // Each connection has a request in flight when wrk stops; the server still serves it.
    const served = Math.max(requests + this.setup.connections * this.runs.length, 1);
    const wall = this.runs.reduce((sum, run) => sum + run.durationSeconds, 0);
    return {
      ...base,
      status: 'ok',
      requestsPerSecond: round(median(this.runs.map((r) => r.requestsPerSecond)), 1),
      p50: round(median(this.runs.map((r) => r.p50)), 3),
      p99: round(median(this.runs.map((r) => r.p99)), 3),
      requests,
      errors: this.runs.reduce((sum, run) => sum + run.errors, 0),
      serverCpu: round(this.#serverCpu / wall, 2),
      serverMicros: round((this.#serverCpu * 1e6) / served, 1),
      allocatedKiB: round(this.#allocated / 1024 / served, 1),
      store: this.#storeLoad(served),
    };
  }

  #storeLoad(served: number): StoreLoad {
    if (this.variant.backend === 'redis') {
      const total = [...this.#calls.values()].reduce((a, b) => a + b, 0);
      return {
        redisCommands: round(total / served, 3),
        redisRoundTrips: round(roundTrips(this.#calls, this.#origins) / served, 3),
        redisCpuMicros: round((this.#redisCpu * 1e6) / served, 1),
        redisByCommand: Object.fromEntries([...this.#calls].map(([name, count]) => [name, round(count / served, 3)])),
      };
    }
    const table = this.#table;
    if (table?.after) {
      const requests = served + table.extraRequests;
      return {
        sqlScans: round((table.after.scans - table.before.scans) / requests, 3),
        sqlWrites: round((table.after.writes - table.before.writes) / requests, 3),
      };
    }
    return {};
  }
}
