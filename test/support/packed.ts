// The package as npm publishes it, installed into throwaway projects the way a user installs it:
// the tarball of `npm pack`, plus only the packages named. Used by the subpath test and the docs test.
//
// The tarball is made once per run (TESSERA_TARBALL, set by scripts/test.sh, or one `npm pack` per
// process). Installing the other packages is the slow part (better-sqlite3 compiles from source
// where its prebuilt binary cannot be downloaded), so each distinct set is installed once into
// node_modules/.cache/tessera-projects/ and copied from there; the tarball is installed into each
// copy afresh.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CACHE = path.join(ROOT, 'node_modules/.cache/tessera-projects');
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

let packing: Promise<string> | undefined;

/** The path of the packed tarball, made from the current build (dist/ must exist). */
export function tarball(): Promise<string> {
  const given = process.env.TESSERA_TARBALL;
  if (given) return Promise.resolve(given);
  packing ??= (async () => {
    await stat(path.join(ROOT, 'dist/index.js')).catch(() => {
      throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    });
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-pack-'));
    const { stdout } = await run('npm', ['pack', '--pack-destination', dir, '--json', '--loglevel=error'], {
      cwd: ROOT,
    });
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    return path.join(dir, filename);
  })();
  return packing;
}

/** What a project installs besides the tarball. */
export interface ProjectPackages {
  dependencies?: readonly string[];
  devDependencies?: readonly string[];
}

async function npm(cwd: string, args: string[]): Promise<void> {
  try {
    await run('npm', [...args, ...NPM_FLAGS], { cwd, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${stderr || stdout || String(error)}`);
  }
}

/** Installs the set once into the cache and returns its directory. */
async function cached(packages: ProjectPackages): Promise<string> {
  const deps = [...new Set(packages.dependencies ?? [])].sort();
  const dev = [...new Set(packages.devDependencies ?? [])].sort();
  const lock = await readFile(path.join(ROOT, 'package-lock.json'));
  const key = createHash('sha256')
    .update(JSON.stringify({ deps, dev, node: process.version }))
    .update(lock)
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(CACHE, key);
  const done = await stat(path.join(dir, '.complete')).then(
    () => true,
    () => false,
  );
  if (done) return dir;
  await mkdir(CACHE, { recursive: true });
  const work = await mkdtemp(path.join(CACHE, `${key}-`));
  await writeFile(
    path.join(work, 'package.json'),
    `${JSON.stringify({ name: 'tessera-user-project', private: true, type: 'module' }, null, 2)}\n`,
  );
  if (deps.length > 0) await npm(work, ['install', ...deps]);
  if (dev.length > 0) await npm(work, ['install', '--save-dev', ...dev]);
  await writeFile(path.join(work, '.complete'), `${JSON.stringify({ deps, dev })}\n`);
  // Another process may have finished the same set meanwhile: keep whichever landed first.
  await rename(work, dir).catch(() => rm(work, { recursive: true, force: true }));
  return dir;
}

/**
 * A fresh project directory (under the system temp dir) with `"type": "module"`, the packages
 * given, and tessera installed from the tarball. The caller removes it when done.
 */
export async function freshProject(packages: ProjectPackages = {}): Promise<string> {
  const [source, pack] = await Promise.all([cached(packages), tarball()]);
  const dir = await mkdtemp(path.join(tmpdir(), 'tessera-project-'));
  await cp(source, dir, { recursive: true, verbatimSymlinks: true });
  await rm(path.join(dir, '.complete'));
  await npm(dir, ['install', pack]);
  return dir;
}
