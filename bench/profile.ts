/**
 * Prints where a server's time went, from the profiles `BENCH_PROFILE=1 npm run bench` writes:
 * `node --import tsx bench/profile.ts <file.cpuprofile | folder> [frames]`, or
 * `... <file.cpuprofile> --callers <function name>` for the call chains above a hot frame.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { callersOf, formatSummary, summarizeProfile } from './lib/profile.ts';

async function profiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const found: string[] = [];
  for (const entry of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.cpuprofile')) found.push(join(entry.parentPath, entry.name));
  }
  return found.sort();
}

// Piped into `head`: stop quietly when the reader goes away.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const [target, frames, name] = process.argv.slice(2);
if (!target) {
  console.error('usage: node --import tsx bench/profile.ts <file.cpuprofile | folder> [frames | --callers <function>]');
  process.exit(2);
}
if (frames === '--callers' && name) {
  for (const frame of await callersOf(target, name))
    console.log(`${frame.percent.toFixed(1).padStart(5)}%  ${frame.name}`);
  process.exit(0);
}
for (const file of await profiles(target)) {
  console.log(formatSummary(file, await summarizeProfile(file, Number(frames ?? 25))));
  console.log();
}
