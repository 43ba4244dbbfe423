/** The shape of results.json, shared by the table and the chart. */
import type { MachineInfo } from './machine.ts';
import type { WrkResult } from './wrk.ts';

export interface StoreLoad {
  /** Every call INFO commandstats counted per request, including the commands scripts ran. */
  redisCommands?: number;
  /** Commands clients sent per request (script calls count once). */
  redisRoundTrips?: number;
  /** Microseconds of redis-server CPU per request. */
  redisCpuMicros?: number;
  /** Per-request calls by command name, as commandstats counts them. */
  redisByCommand?: Record<string, number>;
  /** PostgreSQL: index or sequential scans per request (statements that looked a row up). */
  sqlScans?: number;
  /** PostgreSQL: rows inserted, updated or deleted per request. */
  sqlWrites?: number;
}

export interface ScenarioResult {
  scenario: string;
  status: 'ok' | 'failed';
  reason?: string;
  /** Medians of the measured runs. */
  requestsPerSecond: number;
  p50: number;
  p99: number;
  /** Requests of all measured runs, and errors among them. */
  requests: number;
  errors: number;
  /**
   * Cores the server process used during the measured runs (1 = one core busy all the time).
   * Well below 1 means something else (wrk, Redis, PostgreSQL, another process) was the limit.
   */
  serverCpu: number;
  /** Server CPU time per request served, in microseconds: less sensitive to other load than req/s. */
  serverMicros: number;
  /** KiB the server allocated on its JavaScript heap per request (from its GC profile). */
  allocatedKiB: number;
  /** Median requests/s over the bare framework's median in the same scenario. */
  ratio: number | null;
  /**
   * The bare framework's server CPU per request over this variant's: the ratio the server alone
   * would reach if it were the only limit. Steadier than `ratio` on a busy machine.
   */
  cpuRatio: number | null;
  target: string | null;
  store: StoreLoad;
  runs: WrkResult[];
}

export interface VariantResult {
  id: string;
  label: string;
  framework: string;
  family: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  scenarios: ScenarioResult[];
}

export interface BenchResults {
  date: string;
  command: string;
  settings: Record<string, number>;
  machine: MachineInfo;
  tools: Record<string, string>;
  totalSeconds: number;
  /** One-minute load average before and after the run: well above 0 means other work competed. */
  loadAverage: { start: number; end: number };
  variants: VariantResult[];
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
