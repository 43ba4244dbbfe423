/**
 * The servers run as compiled JavaScript, as an application runs Tessera from `dist/` and as the
 * anchors ship: src/ and bench/servers/ are transpiled (no type check; TypeScript's own
 * transpiler, imports rewritten from `.ts` to `.js`) into a folder under node_modules/.cache, so
 * packages still resolve from the repository's node_modules. Running them through tsx instead
 * would add its `keepNames` helper (a `defineProperty` of `name` on every closure created per
 * request) to Tessera's cost and not to the anchors'.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
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

export async function compileServers(root: string): Promise<CompiledTree> {
  const dir = join(root, 'node_modules', '.cache', 'tessera-bench', String(process.pid));
  await rm(dir, { recursive: true, force: true });
  const compilerOptions: ts.CompilerOptions = {
    module: ts.ModuleKind.ESNext,
    target: ts.ScriptTarget.ES2022,
    rewriteRelativeImportExtensions: true,
  };
  let files = 0;
  for (const folder of FOLDERS) {
    for (const file of await sources(join(root, folder))) {
      const { outputText } = ts.transpileModule(await readFile(file, 'utf8'), { compilerOptions, fileName: file });
      const out = join(dir, relative(root, file)).replace(/\.ts$/, '.js');
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, outputText);
      files++;
    }
  }
  // Node reads the folder's files as ES modules only with a package.json saying so.
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  return { dir, files, remove: () => rm(dir, { recursive: true, force: true }) };
}
