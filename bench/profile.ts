/**
 * Prints where a server's time went, from the profiles `BENCH_PROFILE=1 npm run bench` writes:
 * `node --import tsx bench/profile.ts <file.cpuprofile | folder> [frames]`.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatSummary, summarizeProfile } from './lib/profile.ts';

async function profiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const found: string[] = [];
  for (const entry of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.cpuprofile')) found.push(join(entry.parentPath, entry.name));
  }
  return found.sort();
}

const [target, frames] = process.argv.slice(2);
if (!target) {
  console.error('usage: node --import tsx bench/profile.ts <file.cpuprofile | folder> [frames]');
  process.exit(2);
}
for (const file of await profiles(target)) {
  console.log(formatSummary(file, await summarizeProfile(file, Number(frames ?? 25))));
  console.log();
}
