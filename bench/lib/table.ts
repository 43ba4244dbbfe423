/** results.md: the tables of a run, with the machine and the command. */
import type { BenchResults, ScenarioResult, VariantResult } from './results.ts';
import { SCENARIOS, targetFloor } from './variants.ts';

const fixed = (value: number | undefined, digits: number) =>
  value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);
const thousands = (value: number) => Math.round(value).toLocaleString('en-US');

function ratioCell(result: ScenarioResult): string {
  if (result.ratio === null) return '–';
  const floor = targetFloor(result.target ?? undefined);
  const text = result.ratio.toFixed(2);
  return floor !== null && result.ratio < floor ? `**${text}** (target ${result.target})` : text;
}

function storeCell(result: ScenarioResult): string {
  const { store } = result;
  if (store.redisCommands !== undefined) return fixed(store.redisCommands, 2);
  if (store.sqlScans !== undefined)
    return `SQL: ${fixed(store.sqlScans, 2)} scans, ${fixed(store.sqlWrites, 2)} row writes`;
  return '–';
}

function tripsCell(result: ScenarioResult): string {
  return `${fixed(result.store.redisRoundTrips, 2)} | ${fixed(result.store.redisCpuMicros, 1)}`;
}

function scenarioTable(results: BenchResults, scenario: (typeof SCENARIOS)[number]): string[] {
  const lines = [
    `### ${scenario.label} (\`GET ${scenario.path}\`)`,
    '',
    '| variant | req/s | × bare | target | p50 ms | p99 ms | server CPU | server µs/req | × bare (CPU) | Redis cmds/req | round trips/req | Redis µs/req |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const variant of results.variants) {
    const result = variant.scenarios.find((s) => s.scenario === scenario.id);
    if (variant.status !== 'ok' || !result) {
      if (variant.status !== 'ok') lines.push(`| ${variant.label} | ${variant.status} | | | | | | | | | | |`);
      continue;
    }
    if (result.status !== 'ok') {
      lines.push(`| ${variant.label} | failed: ${result.reason ?? ''} | | | | | | | | | | |`);
      continue;
    }
    const errors = result.errors > 0 ? ` (${result.errors} errors)` : '';
    lines.push(
      `| ${variant.label} | ${thousands(result.requestsPerSecond)}${errors} | ${ratioCell(result)} | ${result.target ?? ''} | ${fixed(result.p50, 2)} | ${fixed(result.p99, 2)} | ${fixed(result.serverCpu, 2)} | ${fixed(result.serverMicros, 0)} | ${fixed(result.cpuRatio ?? undefined, 2)} | ${storeCell(result)} | ${tripsCell(result)} |`,
    );
  }
  return lines;
}

/** A variant × scenario matrix: the bare rows show their own figure, the others a ratio to it. */
function summary(variants: VariantResult[], cpu: boolean | 'micros'): string[] {
  const shown = SCENARIOS.map((s) => s.label);
  const lines = [`| variant | ${shown.join(' | ')} |`, `|---|${shown.map(() => '---:').join('|')}|`];
  for (const variant of variants) {
    if (variant.status !== 'ok') {
      lines.push(`| ${variant.label} | ${SCENARIOS.map(() => variant.status).join(' | ')} |`);
      continue;
    }
    const cells = SCENARIOS.map((scenario) => {
      const result = variant.scenarios.find((s) => s.scenario === scenario.id);
      if (result?.status !== 'ok') return '–';
      if (cpu === 'micros') {
        // A baseline revision older than the allocation counter reports none.
        const kib = Number.isFinite(result.allocatedKiB) ? `, ${fixed(result.allocatedKiB, 1)} KiB` : '';
        return `${fixed(result.serverMicros, 0)} µs${kib}`;
      }
      if (variant.family === 'bare') {
        return cpu ? `${fixed(result.serverMicros, 0)} µs/req` : `${thousands(result.requestsPerSecond)} req/s`;
      }
      return cpu ? fixed(result.cpuRatio ?? undefined, 2) : ratioCell(result);
    });
    lines.push(`| ${variant.label} | ${cells.join(' | ')} |`);
  }
  return lines;
}

export function markdown(results: BenchResults): string {
  const { machine } = results;
  const skipped = results.variants.filter((v) => v.status !== 'ok');
  return [
    '# Benchmark results',
    '',
    `${results.date}, ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}; Tessera ${machine.commit}.`,
    `Command: \`${results.command}\`; total ${Math.round(results.totalSeconds)} s; load average ${results.loadAverage.start} before, ${results.loadAverage.end} after.`,
    '',
    `Libraries: ${Object.entries(machine.libraries)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}. Tools: ${Object.entries(results.tools)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}.`,
    '',
    '## Requests/s as a fraction of the bare framework',
    '',
    'Bare rows give the ceiling in requests/s; the others their median requests/s over it. Bold: below the target.',
    '',
    ...summary(results.variants, false),
    '',
    '![chart](chart.svg)',
    '',
    '## Server CPU per request, as a fraction of the bare framework',
    '',
    "Bare rows: the server's CPU time per request; the others: the bare figure over theirs (the ratio the",
    'server would reach if its core were the only limit; steadier than requests/s when the machine is busy).',
    '',
    ...summary(results.variants, true),
    '',
    '## Server CPU µs and heap KiB allocated per request',
    '',
    "Every row's own figure. The hand-written rows are the floor: a cookie parse and the same round trips",
    '(Redis: HGETALL, and HSET + PEXPIRE on a write; PostgreSQL: SELECT, and UPDATE on a write), nothing',
    "else. Tessera's distance from them is what its checks and guarantees cost, plus whatever it wastes.",
    'The in-process map rows read the record from a Map in the server: the least any cached read costs,',
    "the floor of the read tier's reads (their writes touch no store, so their other columns compare with nothing).",
    '',
    ...summary(results.variants, 'micros'),
    '',
    '## Per scenario',
    '',
    'Medians of the measured runs. "Redis cmds/req" is what INFO commandstats counts (the commands a Lua',
    'script runs included); "round trips/req" counts what clients sent (a script call once). "server CPU":',
    'cores the server process used (1.00 = its core was saturated; lower means wrk, the store or another',
    'process was the limit). "server µs/req" and "Redis µs/req": CPU time of the server process and of',
    'redis-server per request, the figures least disturbed by other load on the machine; "× bare (CPU)":',
    "the bare framework's server µs/req over this variant's, the ratio if the server's core were the only limit.",
    '',
    ...SCENARIOS.flatMap((scenario) => [...scenarioTable(results, scenario), '']),
    ...(skipped.length > 0
      ? ['## Not run', '', ...skipped.map((v) => `- ${v.label}: ${v.status}: ${v.reason ?? ''}`), '']
      : []),
  ].join('\n');
}
