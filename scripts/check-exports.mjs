#!/usr/bin/env node
// Checks, after `npm run build`, that package.json `exports` and the build agree, both ways:
//  - every export target exists; `types` comes first and pairs with `default` (dist/X.d.ts <-> dist/X.js);
//  - every dist/ target is built from a source file (dist/X.js <- src/X.ts), so nothing stale is published;
//  - every public module (src/stores/*.ts, src/stores/*/index.ts, src/frameworks/*.ts) has an export entry;
//  - `main`, `types` and `typesVersions` (what CommonJS projects on TypeScript's node10 resolution read,
//    since it ignores `exports`) say what `exports` says, subpath by subpath.
//    Internal helpers there must start with an underscore (src/frameworks/_shared.ts) to be exempt.
// Prints one line per problem and exits 1 if there is any.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const problems = [];
const problem = (message) => problems.push(message);
const exists = (rel) => existsSync(path.join(root, rel)) && statSync(path.join(root, rel)).isFile();
const normalize = (rel) => path.posix.normalize(rel.replace(/^\.\//, ''));

/** dist/a/b.js or dist/a/b.d.ts -> src/a/b.ts; undefined when the target is not under dist/. */
function sourceOf(target) {
  const match = /^dist\/(.+?)(\.d\.ts|\.js)$/.exec(target);
  return match ? `src/${match[1]}.ts` : undefined;
}

const exportsField = pkg.exports;
if (exportsField === null || typeof exportsField !== 'object' || Array.isArray(exportsField)) {
  problem('package.json: "exports" must be an object of subpaths');
}
const entries = Object.entries(exportsField ?? {});
const exportedJs = new Set();

for (const [subpath, value] of entries) {
  const where = `exports["${subpath}"]`;
  if (!subpath.startsWith('.')) problem(`${where}: subpath must start with "."`);
  if (typeof value === 'string') {
    if (!exists(value)) problem(`${where}: ${value} does not exist`);
    continue;
  }
  if (value === null || typeof value !== 'object') {
    problem(`${where}: expected a path or a { types, default } object`);
    continue;
  }
  const conditions = Object.keys(value);
  const missingSources = new Set();
  if (!('default' in value)) problem(`${where}: has no "default" condition`);
  if (!('types' in value)) problem(`${where}: has no "types" condition`);
  else if (conditions[0] !== 'types') problem(`${where}: "types" must be the first condition (they match in order)`);

  for (const [condition, target] of Object.entries(value)) {
    if (typeof target !== 'string') {
      problem(`${where}.${condition}: nested conditions are not supported by this check; use a path`);
      continue;
    }
    const rel = normalize(target);
    const source = sourceOf(rel);
    if (!target.startsWith('./')) problem(`${where}.${condition}: ${target} must start with "./"`);
    if (rel.startsWith('dist/') && !source) problem(`${where}.${condition}: ${target} is not a .js or .d.ts file`);
    if (source && !exists(source)) missingSources.add(source);
    else if (!exists(rel)) problem(`${where}.${condition}: ${target} does not exist (did the build emit it?)`);
    if (condition === 'types' && !rel.endsWith('.d.ts')) problem(`${where}.types: ${target} is not a .d.ts file`);
    if (condition === 'default' && rel.endsWith('.js')) exportedJs.add(rel);
  }
  for (const source of missingSources) problem(`${where}: its source ${source} does not exist (nothing builds it)`);
  if (typeof value.types === 'string' && typeof value.default === 'string') {
    const types = normalize(value.types).replace(/\.d\.ts$/, '');
    const js = normalize(value.default).replace(/\.js$/, '');
    if (types !== js) problem(`${where}: types (${value.types}) and default (${value.default}) are different modules`);
  }
}

// For TypeScript's node10 resolution (`"module": "commonjs"` without a moduleResolution), which reads
// `types` for the root and `typesVersions` for subpaths: the same files as `exports`, none missing.
const rootExport = exportsField?.['.'];
if (pkg.main !== rootExport?.default)
  problem(`main (${pkg.main}) must be exports["."].default (${rootExport?.default})`);
if (pkg.types !== rootExport?.types) problem(`types (${pkg.types}) must be exports["."].types (${rootExport?.types})`);
const mapped = pkg.typesVersions?.['*'] ?? {};
for (const [subpath, value] of entries) {
  if (subpath === '.' || typeof value !== 'object' || value === null) continue;
  const got = mapped[subpath.slice(2)];
  if (!Array.isArray(got) || got.length !== 1 || got[0] !== value.types) {
    problem(`typesVersions["*"]["${subpath.slice(2)}"] must be ["${value.types}"], as exports["${subpath}"].types`);
  }
}
for (const name of Object.keys(mapped)) {
  if (!(`./${name}` in (exportsField ?? {}))) problem(`typesVersions["*"]["${name}"]: no such export`);
}

const bins = typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : (pkg.bin ?? {});
for (const [name, target] of Object.entries(bins)) {
  if (!exists(normalize(target))) problem(`bin["${name}"]: ${target} does not exist (did the build emit it?)`);
}

// Reverse direction: public source modules that no export entry reaches.
function list(dir) {
  const abs = path.join(root, dir);
  return existsSync(abs) ? readdirSync(abs, { withFileTypes: true }) : [];
}
const isModule = (name) => name.endsWith('.ts') && !/\.(test|d)\.ts$/.test(name) && !name.startsWith('_');
const publicSources = [
  ...list('src/stores')
    .filter((e) => e.isFile() && isModule(e.name))
    .map((e) => `src/stores/${e.name}`),
  ...list('src/stores')
    .filter((e) => e.isDirectory() && !e.name.startsWith('_') && exists(`src/stores/${e.name}/index.ts`))
    .map((e) => `src/stores/${e.name}/index.ts`),
  ...list('src/frameworks')
    .filter((e) => e.isFile() && isModule(e.name))
    .map((e) => `src/frameworks/${e.name}`),
];
for (const source of publicSources.sort()) {
  const js = source.replace(/^src\//, 'dist/').replace(/\.ts$/, '.js');
  if (!exportedJs.has(js)) {
    const base = source
      .replace(/(\/index)?\.ts$/, '')
      .split('/')
      .pop();
    problem(
      `${source}: no package.json export points at it; add ` +
        `"./${base}": { "types": "./${js.replace(/\.js$/, '.d.ts')}", "default": "./${js}" } ` +
        '(or prefix the file name with "_" if it is internal)',
    );
  }
}

if (problems.length > 0) {
  for (const message of problems) console.error(`check-exports: ${message}`);
  console.error(`check-exports: ${problems.length} problem(s) between package.json exports and the build`);
  process.exit(1);
}
console.log(`check-exports: ${entries.length} export entries match the build; ${publicSources.length} public modules`);
