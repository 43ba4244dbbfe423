/**
 * What the diagnostics channels and metrics counters cost an engine request (load, change one
 * key, commit: a patch) on the memory store, in-process: CPU µs per request (process.cpuUsage,
 * user + system, GC included), with nobody subscribed and with a subscriber on every tracing
 * channel. With --base DIR (another checkout, e.g. `git worktree add --detach /tmp/base <rev>`
 * sharing this node_modules), that checkout's engine runs in the same rounds, each round in a
 * fresh child process so that no engine warms up the other's code. Prints the medians.
 * Not a test.
 *
 *   node --import tsx bench/diagnostics.ts [--base DIR] [--n 100000] [--rounds 5]
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import { resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    n: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '5' },
    child: { type: 'string' },
    mode: { type: 'string' },
  },
});
const N = Number(args.n);

if (args.child !== undefined) {
  // One measurement: the engine of the checkout at args.child, N requests after N of warm-up.
  const root = resolve(args.child);
  const { SessionEngine } = await import(`${root}/src/core/engine.ts`);
  const { MemoryStore } = await import(`${root}/src/stores/memory.ts`);
  if (args.mode === 'subscribed') {
    const diagnostics = await import('node:diagnostics_channel');
    const none = () => {};
    for (const name of ['tessera:load', 'tessera:commit', 'tessera:store']) {
      diagnostics.tracingChannel(name).subscribe({
        start: none,
        end: none,
        asyncStart: none,
        asyncEnd: none,
        error: none,
      });
    }
  }
  const engine = new SessionEngine({
    store: new MemoryStore({ maxEntries: 1000 }),
    secrets: ['bench-secret-0123456789abcdefghijklmnop'],
  });
  const first = engine.session(undefined);
  await first.set('n', 0);
  const cookie = String((await engine.commit(first)).setCookie).split(';')[0];
  const request = async (i: number) => {
    const session = engine.session(cookie);
    await session.set('n', i);
    await engine.commit(session);
  };
  for (let i = 0; i < N; i++) await request(i);
  const before = process.cpuUsage();
  for (let i = 0; i < N; i++) await request(i);
  const used = process.cpuUsage(before);
  console.log(JSON.stringify({ us: (used.user + used.system) / N }));
  process.exit(0);
}

const run = promisify(execFile);
const here = resolve(new URL('..', import.meta.url).pathname);
const variants: [string, string, string][] = [
  ['this checkout, nobody subscribed', here, 'none'],
  ['this checkout, every channel subscribed', here, 'subscribed'],
];
if (args.base) variants.unshift([`--base ${args.base}`, resolve(args.base), 'none']);
const results = new Map<string, number[]>(variants.map(([name]) => [name, []]));
const script = new URL(import.meta.url).pathname;
for (let round = 0; round < Number(args.rounds); round++) {
  // The order turns each round, so no variant always runs on the machine's first or last minute.
  const order = variants.map((_, i) => variants[(i + round) % variants.length] as [string, string, string]);
  for (const [name, root, mode] of order) {
    const { stdout } = await run(process.execPath, [
      '--import',
      'tsx',
      script,
      '--child',
      root,
      '--mode',
      mode,
      '--n',
      String(N),
    ]);
    results.get(name)?.push((JSON.parse(stdout) as { us: number }).us);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
console.log(`engine request (load, set, commit: patch) on the memory store, ${N} per round, ${args.rounds} rounds`);
console.log(
  `load average before: ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
console.log('| variant | CPU µs per request (median) | rounds |');
console.log('|---|---|---|');
for (const [name, values] of results) {
  console.log(`| ${name} | ${median(values).toFixed(2)} | ${values.map((v) => v.toFixed(2)).join(', ')} |`);
}
