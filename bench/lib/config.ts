/** Benchmark settings, from the environment. */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchConfig {
  /** Seconds of each measured run (`BENCH_DURATION`). */
  durationSeconds: number;
  /** Measured runs per scenario; the median is reported (`BENCH_RUNS`). */
  runs: number;
  /** Seconds of the warm-up run before the measured ones (`BENCH_WARMUP`). */
  warmupSeconds: number;
  /** Concurrent connections of wrk (`BENCH_CONNECTIONS`). */
  connections: number;
  /** Sessions made before measuring, which the existing-session scenarios cycle through (`BENCH_SESSIONS`). */
  sessions: number;
  /** Only these variants (`BENCH_VARIANTS`, comma-separated ids); every variant when empty. */
  variants: string[];
  /** Only these scenarios (`BENCH_SCENARIOS`, comma-separated: rmw, read, new, anon). */
  scenarios: string[];
  /**
   * Write a CPU profile of each server's measured runs, one per scenario, to this folder
   * (`BENCH_PROFILE`; `1` for a folder in the temp dir). Results then go there too.
   */
  profileDir: string | null;
  /** Where results.md, results.json and chart.svg go (`BENCH_OUT`). */
  outDir: string;
  /** Pin the servers and wrk to cores (`BENCH_PIN=0` turns it off). */
  pin: boolean;
  /** Run the servers' TypeScript through tsx instead of compiling them first (`BENCH_TSX=1`). */
  tsx: boolean;
  /** PostgreSQL for the SQL variant (`BENCH_PG_URL`). */
  pgUrl: string;
  /**
   * A git revision whose Tessera runs beside this checkout's in the same pass (`BENCH_BASELINE`,
   * e.g. `main` or a commit): every Tessera variant runs twice, old and new, in turns.
   */
  baseline: string | null;
}

function number(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min)
    throw new Error(`[bench] ${name} must be a number >= ${min}, got "${raw}"`);
  return value;
}

function list(name: string): string[] {
  return (process.env[name] ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

export function readConfig(): BenchConfig {
  const profile = process.env.BENCH_PROFILE;
  return {
    durationSeconds: number('BENCH_DURATION', 3, 1),
    runs: Math.round(number('BENCH_RUNS', 3, 1)),
    warmupSeconds: number('BENCH_WARMUP', 2, 0),
    connections: Math.round(number('BENCH_CONNECTIONS', 50, 1)),
    sessions: Math.round(number('BENCH_SESSIONS', 1000, 1)),
    variants: list('BENCH_VARIANTS'),
    scenarios: list('BENCH_SCENARIOS'),
    profileDir: profile ? (profile === '1' ? join(tmpdir(), 'tessera-bench-profiles') : profile) : null,
    outDir: process.env.BENCH_OUT ?? join(import.meta.dirname, '..', 'results'),
    pin: process.env.BENCH_PIN !== '0',
    tsx: process.env.BENCH_TSX === '1',
    pgUrl: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    baseline: process.env.BENCH_BASELINE || null,
  };
}

/** The settings as environment assignments, for the command line printed in the results. */
export function describeConfig(config: BenchConfig): string {
  const only = [
    config.variants.length > 0 ? ` BENCH_VARIANTS=${config.variants.join(',')}` : '',
    config.scenarios.length > 0 ? ` BENCH_SCENARIOS=${config.scenarios.join(',')}` : '',
    config.baseline ? ` BENCH_BASELINE=${config.baseline}` : '',
  ].join('');
  return `BENCH_DURATION=${config.durationSeconds} BENCH_RUNS=${config.runs} BENCH_WARMUP=${config.warmupSeconds} BENCH_CONNECTIONS=${config.connections} BENCH_SESSIONS=${config.sessions}${only}`;
}
