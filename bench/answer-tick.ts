/**
 * What answering in the same tick as the request was parsed costs, against answering from a
 * later point of the event loop: bare Express and bare Fastify, each answering `same`,
 * `microtask` and `immediate` (bench/servers/answer-tick.ts), measured in turns like
 * `npm run bench` (wrk -t1 -c50 on core 0, the server alone on core 1). Prints the server's CPU
 * µs per request, median of the runs.
 *
 *   node --import tsx bench/answer-tick.ts          # BENCH_RUNS=3 BENCH_DURATION=4 by default
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileServers } from './lib/compile.ts';
import { canPin, stopAll } from './lib/processes.ts';
import { ROOT, type RunningServer, startServer } from './lib/server.ts';
import type { Framework, Variant } from './lib/variants.ts';
import { runWrk, writeScripts } from './lib/wrk.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_DURATION ?? 4);
const TICKS = ['same', 'microtask', 'immediate'] as const;
const FRAMEWORKS: Framework[] = ['express', 'fastify'];
const pin = canPin();

const variant = (framework: Framework, tick: string): Variant => ({
  id: `${framework}-${tick}`,
  label: `${framework}, answered ${tick}`,
  framework,
  family: 'bare',
  server: 'answer-tick.ts',
  env: { BENCH_FRAMEWORK: framework, BENCH_TICK: tick },
  backend: 'none',
  requires: [],
  cookie: null,
});

const dir = await mkdtemp(join(tmpdir(), 'tessera-tick-'));
const compiled = await compileServers(ROOT);
try {
  const { plain } = await writeScripts(dir);
  for (const framework of FRAMEWORKS) {
    const servers = new Map<string, RunningServer>();
    for (const tick of TICKS) {
      servers.set(
        tick,
        await startServer(variant(framework, tick), { core: pin ? 1 : null, env: {}, compiledDir: compiled.dir }),
      );
    }
    const drive = (server: RunningServer, seconds: number) =>
      runWrk({ url: `${server.baseUrl}/`, seconds, connections: 50, script: plain, core: pin ? 0 : null });
    for (const server of servers.values()) await drive(server, 2);
    const perRequest = new Map<string, number[]>(TICKS.map((tick) => [tick, []]));
    for (let run = 0; run < RUNS; run++) {
      // A different server first each round, as bench/run.ts does.
      for (let i = 0; i < TICKS.length; i++) {
        const tick = TICKS[(i + run) % TICKS.length] as string;
        const server = servers.get(tick) as RunningServer;
        const cpu = server.cpuSeconds();
        const result = await drive(server, SECONDS);
        perRequest.get(tick)?.push(((server.cpuSeconds() - cpu) * 1e6) / result.requests);
      }
    }
    for (const server of servers.values()) await server.stop();
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
    const medians = TICKS.map((tick) => `${tick} ${median(perRequest.get(tick) as number[]).toFixed(1)} µs`);
    const runs = TICKS.map((tick) => (perRequest.get(tick) as number[]).map((v) => v.toFixed(0)).join('/'));
    console.log(`${framework}: ${medians.join(', ')} (runs: ${runs.join(', ')})`);
  }
} finally {
  await stopAll();
  await compiled.remove();
  await rm(dir, { recursive: true, force: true });
}
