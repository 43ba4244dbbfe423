/**
 * The servers run as compiled JavaScript, as an application runs Tessera from `dist/` and as the
 * anchors ship: src/ and bench/servers/ are transpiled (no type check; TypeScript's own
 * transpiler, imports rewritten from `.ts` to `.js`) into a folder under node_modules/.cache, so
 * packages still resolve from the repository's node_modules. Running them through tsx instead
 * would add its `keepNames` helper (a `defineProperty` of `name` on every closure created per
 * request) to Tessera's cost and not to the anchors'.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';

const FOLDERS = ['src', 'bench/servers'];

async function sources(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      found.push(join(entry.parentPath, entry.name));
    }
  }
  return found;
}

export interface CompiledTree {
  /** Folder holding `src/` and `bench/servers/` as `.js`. */
  dir: string;
  files: number;
  remove(): Promise<void>;
}

/**
 * Compiles `source`'s src/ and bench/servers/ into a folder under `root`'s node_modules/.cache
 * (`source` is `root` itself, or a baseline revision unpacked elsewhere, which then resolves its
 * packages from `root`'s node_modules as well).
 */
export async function compileServers(root: string, source = root, name = String(process.pid)): Promise<CompiledTree> {
  const dir = join(root, 'node_modules', '.cache', 'tessera-bench', name);
  await rm(dir, { recursive: true, force: true });
  const compilerOptions: ts.CompilerOptions = {
    module: ts.ModuleKind.ESNext,
    target: ts.ScriptTarget.ES2022,
    rewriteRelativeImportExtensions: true,
  };
  let files = 0;
  for (const folder of FOLDERS) {
    for (const file of await sources(join(source, folder))) {
      const { outputText } = ts.transpileModule(await readFile(file, 'utf8'), { compilerOptions, fileName: file });
      const out = join(dir, relative(source, file)).replace(/\.ts$/, '.js');
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, outputText);
      files++;
    }
  }
  // Node reads the folder's files as ES modules only with a package.json saying so.
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  return { dir, files, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Unpacks `revision`'s src/ and bench/servers/ (git archive) into `into`; returns its short hash. */
export async function unpackRevision(root: string, revision: string, into: string): Promise<string> {
  const run = promisify(execFile);
  const { stdout } = await run('git', ['-C', root, 'rev-parse', '--short', `${revision}^{commit}`]);
  const commit = stdout.trim();
  await mkdir(into, { recursive: true });
  const archive = join(into, 'tree.tar');
  await run('git', ['-C', root, 'archive', '--format=tar', '-o', archive, commit, ...FOLDERS]);
  await run('tar', ['-xf', archive, '-C', into]);
  return commit;
}
