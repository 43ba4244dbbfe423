// Every code block of README.md and docs/**/*.md, checked as a user would meet it. Run by
// test/docs/docs.test.ts (so by `npm test`); `node --import tsx --test test/docs/docs.test.ts` alone,
// and `DOCS_PAGES=docs/frameworks/h3.md,README.md node --import tsx --test test/docs/docs.test.ts` for
// some pages only (README.md's examples run only when it is named).
//
// Conventions for writing docs (this header is their reference):
//
// - A `ts` block is compiled on its own, unless an HTML comment right before it names an example:
//     <!-- example: NAME -->
//   Blocks naming the same example (on one page) form one program, in page order: the first block
//   is the module, each later one is wrapped in its own `{ ... }` block (so alternatives may
//   redeclare `store`), and its `import` lines are hoisted to the top.
// - Every program is type-checked with `strict`, `exactOptionalPropertyTypes` and
//   `noUncheckedIndexedAccess` in a fresh project that installed the packed tarball plus the packages
//   its page tells the reader to install: every `npm install ...` line of the page's `sh` blocks
//   (`-D` ones as dev dependencies), and the README's `npm install -D ...` tools (TypeScript, tsx,
//   @types/node), which every reader installs. `tessera` itself is the tarball.
// - The lines after the name in the comment make it runnable; each is one of
//     runs                                      started, must exit with status 0 within 30 s
//     GET /path -> 200 "text in the body"       an HTTP request (after the server listens on PORT)
//     POST /login user=alice&x=1 -> 303         a form body; `{...}` sends JSON instead
//   Requests go in order through one cookie jar. The program gets PORT, SESSION_SECRET, REDIS_URL
//   (a database of the shared Redis that is flushed afterwards), DATABASE_URL (PostgreSQL) and
//   MYSQL_URL (a database of their own on the shared servers, dropped afterwards), and
//   TESSERA_STORE_URL (= REDIS_URL) with TESSERA_SECRETS (= SESSION_SECRET) for tessera/config's
//   environment path in its environment, and is stopped with SIGTERM after the last request.
// - Every TypeScript example runs (`runs` or requests), or COMPILE_ONLY below says why it cannot
//   here; a block that is a fragment of a runnable example names that example. An `sh` block
//   after `<!-- example: NAME runs -->` (the comment on one line) is a shell session: it runs with
//   `bash -e` in a fresh directory of the project, with the environment above, within 60 s. When a
//   ts example of the same name is on the page, its program is there as index.ts, and one named
//   `NAME:src/hooks.server.ts` is at that path; that counts as running them (for programs another
//   runtime runs, Bun or Deno, and for apps of several files that a framework builds).
// - `yaml` blocks must parse; one whose first line is `# tessera.yml...` must also load with
//   tessera/config's loadConfig. `json` blocks must parse. `sql` blocks must equal a file of sql/.
//   `sh` blocks must pass `bash -n`. Other blocks (`text`, none) are output and left alone.
// - A Markdown table that describes options (headed "option", or with a "default" column) whose
//   first column names options the API reference (TypeDoc, from the TSDoc in src/) documents fails
//   the check: each option is described once, in the code. Tables mapping other libraries' or the
//   Perl seeds' settings to options are fine.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

export interface Check {
  method: string;
  path: string;
  body?: { type: 'form' | 'json'; text: string };
  status: number;
  text?: string;
}

export interface Block {
  page: string;
  line: number;
  lang: string;
  code: string;
  example?: string;
  checks: Check[];
  runs: boolean;
}

export interface Example {
  name: string;
  /** `ts` (a program) or `sh` (a shell session to run). */
  lang: 'ts' | 'sh';
  page: string;
  line: number;
  blocks: Block[];
  checks: Check[];
  runs: boolean;
  dependencies: string[];
  devDependencies: string[];
  /**
   * An sh example: the ts examples it runs, written into its directory: the one of the same name
   * as index.ts, and each one named `NAME:path` at that path (an app of several files).
   */
  beside?: Array<{ file: string; example: Example }>;
}

/**
 * README.md and every Markdown page under docs/ (the generated API reference excepted); with
 * `DOCS_PAGES=docs/a.md,README.md` in the environment, only those (to check the pages one changed).
 */
export function pages(): string[] {
  const only = process.env.DOCS_PAGES?.split(',')
    .map((page) => page.trim())
    .filter(Boolean);
  if (only && only.length > 0) return only.sort();
  const found = ['README.md'];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory() && rel !== 'docs/api') walk(rel);
      else if (entry.isFile() && entry.name.endsWith('.md')) found.push(rel);
    }
  };
  walk('docs');
  return found.sort();
}

const CHECK = /^(GET|POST|PUT|PATCH|DELETE)\s+(\S+)(?:\s+(.+?))?\s+->\s+(\d{3})(?:\s+"(.*)")?$/;

function parseChecks(lines: string[], where: string): { checks: Check[]; runs: boolean } {
  const checks: Check[] = [];
  let runs = false;
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '') continue;
    if (line === 'runs') {
      runs = true;
      continue;
    }
    const m = CHECK.exec(line);
    if (!m) throw new Error(`${where}: cannot read the check "${line}" (see scripts/docs-test.ts)`);
    const [, method = 'GET', target = '/', body, status = '200', text] = m;
    checks.push({
      method,
      path: target,
      status: Number(status),
      ...(body ? { body: { type: body.startsWith('{') ? 'json' : 'form', text: body } } : {}),
      ...(text !== undefined ? { text } : {}),
    });
  }
  return { checks, runs };
}

/** The fenced blocks of one page, each with the example comment right before it, if any. */
export function blocksOf(page: string): Block[] {
  const lines = readFileSync(path.join(ROOT, page), 'utf8').split('\n');
  const blocks: Block[] = [];
  let comment: { name: string; rest: string[] } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const open = /^<!--\s*example:\s*(\S+)\s*(runs\s*)?(-->)?\s*$/.exec(line);
    if (open) {
      const rest: string[] = open[2] ? ['runs'] : [];
      if (!open[3]) {
        while (i + 1 < lines.length && !(lines[i + 1] ?? '').includes('-->')) rest.push(lines[++i] ?? '');
        i++;
      }
      comment = { name: open[1] ?? '', rest };
      continue;
    }
    const fence = /^(\s*)```(\w*)\s*$/.exec(line);
    if (!fence) {
      if (line.trim() !== '') comment = null;
      continue;
    }
    const indent = fence[1] ?? '';
    const start = i + 1;
    const body: string[] = [];
    while (++i < lines.length && !new RegExp(`^${indent}\`\`\`\\s*$`).test(lines[i] ?? '')) {
      body.push((lines[i] ?? '').slice(indent.length));
    }
    const where = `${page}:${start}`;
    const parsed = comment ? parseChecks(comment.rest, where) : { checks: [], runs: false };
    blocks.push({
      page,
      line: start,
      lang: fence[2] ?? '',
      code: `${body.join('\n')}\n`,
      ...(comment ? { example: comment.name } : {}),
      ...parsed,
    });
    comment = null;
  }
  return blocks;
}

/** The packages a page's `npm install` lines name (tessera itself excepted). */
export function installsOf(blocks: Block[]): { dependencies: string[]; devDependencies: string[] } {
  const dependencies: string[] = [];
  const devDependencies: string[] = [];
  for (const block of blocks) {
    if (block.lang !== 'sh') continue;
    for (const raw of block.code.split('\n')) {
      const line = raw.replace(/#.*$/, '').trim();
      const m = /^npm (?:install|i|add)\s+(.*)$/.exec(line);
      if (!m) continue;
      const words = (m[1] ?? '').split(/\s+/).filter(Boolean);
      const dev = words.some((word) => word === '-D' || word === '--save-dev');
      for (const word of words) {
        if (word.startsWith('-') || word === 'tessera') continue;
        (dev ? devDependencies : dependencies).push(word);
      }
    }
  }
  return { dependencies, devDependencies };
}

/** Every program the docs contain, with the packages its page installs. */
export function examples(): Example[] {
  const readmeTools = installsOf(blocksOf('README.md')).devDependencies;
  const out: Example[] = [];
  for (const page of pages()) {
    const blocks = blocksOf(page);
    const installs = installsOf(blocks);
    const named = new Map<string, Example>();
    for (const block of blocks) {
      if (block.lang === 'sh' && block.example) {
        out.push({
          name: block.example,
          lang: 'sh',
          page,
          line: block.line,
          blocks: [block],
          checks: [],
          runs: block.runs,
          dependencies: [...new Set(installs.dependencies)].sort(),
          devDependencies: [...new Set([...readmeTools, ...installs.devDependencies])].sort(),
        });
        continue;
      }
      if (block.lang !== 'ts') continue;
      const base = {
        lang: 'ts' as const,
        page,
        line: block.line,
        dependencies: [...new Set(installs.dependencies)].sort(),
        devDependencies: [...new Set([...readmeTools, ...installs.devDependencies])].sort(),
      };
      if (!block.example) {
        out.push({ ...base, name: `${page}:${block.line}`, blocks: [block], checks: [], runs: false });
        continue;
      }
      const existing = named.get(block.example);
      if (existing) {
        existing.blocks.push(block);
        existing.checks.push(...block.checks);
        existing.runs ||= block.runs;
        continue;
      }
      const example = { ...base, name: block.example, blocks: [block], checks: [...block.checks], runs: block.runs };
      named.set(block.example, example);
      out.push(example);
    }
    for (const example of out) {
      if (example.page !== page || example.lang !== 'sh' || !example.runs) continue;
      const files = [...named.values()].flatMap((ts) => {
        if (ts.name === example.name) return [{ file: 'index.ts', example: ts }];
        return ts.name.startsWith(`${example.name}:`)
          ? [{ file: ts.name.slice(example.name.length + 1), example: ts }]
          : [];
      });
      if (files.length > 0) example.beside = files;
    }
  }
  return out;
}

const IMPORT = /^import\s[\s\S]*?from\s+'[^']+';[^\n]*$|^import\s+'[^']+';[^\n]*$/gm;

/** One program from an example's blocks: later blocks scoped, their imports hoisted. */
export function program(example: Example): string {
  const [first, ...rest] = example.blocks;
  if (!first) return '';
  const imports: string[] = [];
  const bodies: string[] = [];
  for (const block of rest) {
    const found = block.code.match(IMPORT) ?? [];
    imports.push(...found);
    bodies.push(`{ // ${block.page}:${block.line}\n${block.code.replace(IMPORT, '')}}\n`);
  }
  const own = new Set(first.code.match(IMPORT) ?? []);
  const hoisted = [...new Set(imports)].filter((line) => !own.has(line));
  return `${hoisted.join('\n')}${hoisted.length ? '\n' : ''}${first.code}${bodies.join('')}`;
}

/**
 * The TypeScript examples that are compiled but not run, and why. `runsWith` names the
 * environment variable with which the example runs after all (a service this machine lacks).
 */
export const COMPILE_ONLY: Record<string, { reason: string; runsWith?: string }> = {
  'redis-clients': {
    reason:
      'it connects to a Sentinel group (a master, a replica and three sentinels: five servers to start ' +
      'and wait for, for one example) and to the reader’s hosts (10.0.0.x) as written; the node-redis ' +
      'Cluster runs as `redis-cluster`, on a private cluster the docs test starts',
  },
  es: {
    reason: 'there is no Elasticsearch server here (its tests use a protocol double)',
    runsWith: 'ELASTICSEARCH_URL',
  },
  'es-more': {
    reason:
      'OpenSearch with a password, a client of your own and a Dancer block all name hosts of the ' +
      'reader’s (search.internal, es1:9200); the `es` example is the runnable one',
  },
};

/** Examples that neither run nor say why (COMPILE_ONLY), and reasons that no longer apply. */
export function unrunnable(all: Example[]): string[] {
  const problems: string[] = [];
  const names = new Set(all.map((example) => example.name));
  const runBeside = new Set(all.flatMap((example) => (example.beside ?? []).map((beside) => beside.example)));
  for (const example of all) {
    const runnable = example.runs || example.checks.length > 0 || runBeside.has(example);
    const reason = COMPILE_ONLY[example.name];
    if (example.lang === 'sh' && !example.runs)
      problems.push(`${example.page}:${example.line}: the sh example "${example.name}" lacks \`runs\``);
    if (!runnable && !reason)
      problems.push(
        `${example.page}:${example.line}: "${example.name}" is only compiled: make it runnable, name the example it belongs to, or give the reason in COMPILE_ONLY`,
      );
    if (runnable && reason && !reason.runsWith)
      problems.push(`${example.page}:${example.line}: "${example.name}" runs, yet COMPILE_ONLY gives a reason`);
  }
  // With DOCS_PAGES the other pages' examples are not in `all`.
  if (process.env.DOCS_PAGES) return problems;
  for (const name of Object.keys(COMPILE_ONLY))
    if (!names.has(name)) problems.push(`COMPILE_ONLY names "${name}", which no page has`);
  return problems;
}

/** The compiler options every docs program is checked with: a strict user project. */
export const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023', 'DOM'],
    // NestJS's decorators are TypeScript's legacy ones (docs/frameworks/nestjs.md says so); no other page has any.
    experimentalDecorators: true,
    types: ['node'],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    noEmit: true,
  },
  include: ['index.ts'],
};

/** Checks a non-TypeScript block; returns a problem, or null. */
export async function checkOther(block: Block, sqlFiles: string[]): Promise<string | null> {
  const where = `${block.page}:${block.line}`;
  if (block.lang === 'json') {
    try {
      JSON.parse(block.code);
    } catch (error) {
      return `${where}: the JSON does not parse: ${(error as Error).message}`;
    }
  }
  if (block.lang === 'sql') {
    // The statements, without the files' `--` comment lines.
    const statements = (text: string) =>
      text
        .split('\n')
        .filter((line) => !line.startsWith('--'))
        .join('\n')
        .trim();
    const text = statements(block.code);
    if (!sqlFiles.some((file) => statements(readFileSync(path.join(ROOT, 'sql', file), 'utf8')) === text)) {
      return `${where}: this SQL is not the content of any file in sql/ (${sqlFiles.join(', ')})`;
    }
  }
  if (block.lang === 'sh') {
    try {
      await run('bash', ['-n', '-c', block.code]);
    } catch (error) {
      return `${where}: bash -n: ${(error as { stderr?: string }).stderr ?? String(error)}`;
    }
  }
  return null;
}

/** A minimal cookie jar: what Set-Cookie stored, minus what it cleared. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();
  store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      const expired = attributes.some((a) => {
        const [key = '', v = ''] = a.trim().split('=');
        if (key.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (key.toLowerCase() === 'expires') return Date.parse(v) <= Date.now();
        return false;
      });
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/** Sends the checks in order; returns the first problem, or null. */
export async function drive(port: number, checks: Check[]): Promise<string | null> {
  const jar = new CookieJar();
  for (const check of checks) {
    const headers: Record<string, string> = {};
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    if (check.body)
      headers['content-type'] = check.body.type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';
    const response = await fetch(`http://127.0.0.1:${port}${check.path}`, {
      method: check.method,
      headers,
      redirect: 'manual',
      ...(check.body ? { body: check.body.text } : {}),
    });
    jar.store(response);
    const text = await response.text();
    const label = `${check.method} ${check.path}`;
    if (response.status !== check.status)
      return `${label}: status ${response.status}, expected ${check.status}; body: ${text.slice(0, 300)}`;
    if (check.text !== undefined && !text.includes(check.text))
      return `${label}: the body ${JSON.stringify(text.slice(0, 300))} lacks "${check.text}"`;
  }
  return null;
}

/**
 * Option names of the public API as TypeDoc sees them (members of every exported `...Options`
 * interface or type), from its JSON output.
 */
export function optionNames(json: unknown): Map<string, string> {
  const names = new Map<string, string>();
  const visit = (node: unknown, owner: string | null) => {
    if (node === null || typeof node !== 'object') return;
    const r = node as { name?: string; kind?: number; children?: unknown[]; type?: { declaration?: unknown } };
    const isOptions = typeof r.name === 'string' && /Options$/.test(r.name) && (r.kind === 256 || r.kind === 2097152);
    if (owner && r.kind === 1024 && typeof r.name === 'string') names.set(r.name, owner);
    const next = isOptions ? (r.name as string) : owner && r.kind === 1024 ? null : owner;
    for (const child of r.children ?? []) visit(child, next);
    if (r.type?.declaration) visit(r.type.declaration, next);
  };
  visit(json, null);
  return names;
}

/** Markdown tables that describe options TypeDoc documents (a `default` column, or headed "option"). */
export function duplicatedOptionTables(page: string, options: Map<string, string>): string[] {
  const problems: string[] = [];
  const lines = readFileSync(path.join(ROOT, page), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^\|/.test(lines[i] ?? '') || !/^\|[\s:|-]+\|$/.test(lines[i + 1] ?? '') || /^\|/.test(lines[i - 1] ?? ''))
      continue;
    const headers = (lines[i] ?? '').split('|').map((cell) => cell.trim().toLowerCase());
    const firsts: string[] = [];
    for (let j = i + 2; j < lines.length && /^\|/.test(lines[j] ?? ''); j++) {
      firsts.push((lines[j] ?? '').split('|')[1]?.trim() ?? '');
    }
    const named = firsts
      .map((cell) => /^`([\w.]+)`$/.exec(cell)?.[1])
      .filter((n): n is string => n !== undefined && options.has(n.split('.')[0] ?? n));
    // An options table: "option" heads it, or it gives defaults. Mapping tables (seed settings,
    // express-session's options) say where a setting went and are not descriptions.
    if (named.length > 0 && (headers[1] === 'option' || headers.includes('default'))) {
      problems.push(
        `${page}:${i + 1}: a table of options the API reference documents (${named.slice(0, 5).join(', ')}...): link to it instead`,
      );
    }
  }
  return problems;
}
