// stores: redis postgres mysql
// The docs as tests: see scripts/docs-test.ts for what is checked and the conventions pages follow.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createClient } from 'redis';
import {
  blocksOf,
  COMPILE_ONLY,
  checkOther,
  drive,
  duplicatedOptionTables,
  type Example,
  examples,
  optionNames,
  pages,
  program,
  ROOT,
  TSCONFIG,
  unrunnable,
} from '../../scripts/docs-test.ts';
import { loadConfig } from '../../src/config/index.ts';
import { freshProject } from '../support/packed.ts';
import { freePort } from '../support/ports.ts';
import { type RedisClusterHandle, startRedisCluster } from '../support/redis-servers.ts';
import { needs } from '../support/stores.ts';

const run = promisify(execFile);
const REDIS_URL = 'redis://127.0.0.1:6379/15'; // flushed after the run: the docs' default prefixes stay out of db 0
// The docs' tables have the default names (sessions): in databases of their own, dropped afterwards,
// they meet no other test's tables.
const DATABASE = `tessera_docs_${randomBytes(4).toString('hex')}`;
const PG_ADMIN = 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_ADMIN = 'mysql://root@127.0.0.1:3306/test';
const SECRET = randomBytes(32).toString('base64url');
const ENV: Record<string, string> = {
  REDIS_URL,
  DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${DATABASE}`,
  MYSQL_URL: `mysql://root@127.0.0.1:3306/${DATABASE}`,
  SESSION_SECRET: SECRET,
  TESSERA_STORE_URL: REDIS_URL,
  TESSERA_SECRETS: SECRET,
};
const ALL = examples();
// A private Redis Cluster, only when an example reads REDIS_CLUSTER_NODES (a few seconds to start).
const wantsCluster = ALL.some((example) => example.blocks.some((block) => block.code.includes('REDIS_CLUSTER_NODES')));
let cluster: RedisClusterHandle | undefined;
let databases = false;

before(async () => {
  if (needs('redis', 'postgres', 'mysql').skip) return; // the suites below are skipped too
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  await admin.end();
  const my = await mysql.createConnection(MYSQL_ADMIN);
  await my.query(`CREATE DATABASE ${DATABASE}`);
  await my.end();
  databases = true;
  if (wantsCluster) {
    cluster = await startRedisCluster();
    ENV.REDIS_CLUSTER_NODES = cluster.nodes.map(({ host, port }) => `redis://${host}:${port}`).join(',');
  }
});

const projects = new Map<string, Promise<string>>();
const made: string[] = [];
function projectFor(example: Example): Promise<string> {
  const key = JSON.stringify([example.dependencies, example.devDependencies]);
  let project = projects.get(key);
  if (!project) {
    project = freshProject({ dependencies: example.dependencies, devDependencies: example.devDependencies });
    project.then((dir) => made.push(dir)).catch(() => {});
    projects.set(key, project);
  }
  return project;
}

after(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true });
  await cluster?.stop();
  if (databases) {
    const admin = new pg.Client({ connectionString: PG_ADMIN });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
    const my = await mysql.createConnection(MYSQL_ADMIN);
    await my.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
    await my.end();
  }
  if (made.length === 0) return; // nothing ran (STORES left the docs out): no Redis to clean
  const redis = await createClient({ url: REDIS_URL }).connect();
  await redis.flushDb();
  await redis.close();
});

/** Starts the program and resolves once it listens on the port (or rejects if it exits first). */
function start(
  dir: string,
  file: string,
  port: number,
): { child: ChildProcess; output: () => string; listening: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    cwd: dir,
    // tsx starts in the project, above the example's directory: it is told where the tsconfig is.
    env: {
      ...process.env,
      ...ENV,
      PORT: String(port),
      TSX_TSCONFIG_PATH: path.join(path.dirname(file), 'tsconfig.json'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (chunk) => (text += chunk));
  child.stderr?.on('data', (chunk) => (text += chunk));
  const listening = new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 30_000;
    const exited = () => reject(new Error(`exited (${child.exitCode ?? child.signalCode}) before listening:\n${text}`));
    child.once('exit', exited);
    const poll = () => {
      fetch(`http://127.0.0.1:${port}/`, { method: 'HEAD' }).then(
        () => {
          child.off('exit', exited);
          resolve();
        },
        () => {
          if (Date.now() > deadline) reject(new Error(`not listening on ${port} after 30 s:\n${text}`));
          else if (child.exitCode === null) setTimeout(poll, 50);
        },
      );
    };
    poll();
  });
  return { child, output: () => text, listening };
}

/** Runs a command to its end: the test fails unless it exits with status 0 within `timeout` ms. */
async function runsToExit(file: string, args: string[], cwd: string, timeout: number): Promise<void> {
  await run(file, args, { cwd, env: { ...process.env, ...ENV }, timeout }).catch(
    (error: { code?: number | string; signal?: string; stdout?: string; stderr?: string }) => {
      // A timeout kills it: no exit code, a signal. That is a failure too, not a pass.
      const how = error.signal
        ? `was stopped by ${error.signal} (the limit is ${timeout / 1000} s)`
        : `exited with ${error.code}`;
      assert.fail(`${how}:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    },
  );
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

describe('docs: every TypeScript block compiles under strict settings, and runnable ones answer as written', {
  ...needs('redis', 'postgres', 'mysql'),
  concurrency: 2,
  timeout: 20 * 60_000, // the whole suite: npm test's --test-timeout is per test and would cut it at 2 minutes
}, () => {
  for (const example of ALL) {
    const label = `${example.name} (${example.page}:${example.line}${example.checks.length ? `, ${example.checks.length} requests` : example.runs ? ', runs' : ''})`;
    it(label, { timeout: 10 * 60_000 }, async (t) => {
      const project = await projectFor(example);
      const dir = await mkdtemp(path.join(project, 'example-'));
      if (example.lang === 'sh') {
        // A shell session: its own directory inside the project, so `npx tessera` finds the install.
        await writeFile(path.join(dir, 'session.sh'), program(example));
        for (const { file, example: ts } of example.beside ?? []) {
          await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
          await writeFile(path.join(dir, file), program(ts));
        }
        await runsToExit('bash', ['-e', path.join(dir, 'session.sh')], dir, 60_000);
        return;
      }
      await writeFile(path.join(dir, 'index.ts'), program(example));
      await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
      const tsc = path.join(project, 'node_modules/.bin/tsc');
      await run(tsc, ['-p', dir], { cwd: project }).catch((error: { stdout?: string }) => {
        assert.fail(
          `${example.page}:${example.line} does not compile:\n${error.stdout ?? error}\n--- the program ---\n${program(example)}`,
        );
      });
      if (example.checks.length > 0) {
        const port = await freePort();
        const server = start(project, path.join(dir, 'index.ts'), port);
        try {
          await server.listening;
          const problem = await drive(port, example.checks);
          assert.equal(problem, null, `${problem}\n--- its output ---\n${server.output()}`);
        } finally {
          await stop(server.child);
        }
      } else if (example.runs) {
        const needed = COMPILE_ONLY[example.name]?.runsWith;
        if (needed && !process.env[needed]) {
          t.diagnostic(`compiled; not run: ${COMPILE_ONLY[example.name]?.reason} (set ${needed} to run it)`);
          return;
        }
        await runsToExit(process.execPath, ['--import', 'tsx', path.join(dir, 'index.ts')], project, 30_000);
      }
    });
  }
});

describe('docs: other blocks, links and options', {
  ...needs('redis', 'postgres', 'mysql'),
  timeout: 10 * 60_000,
}, () => {
  it('every TypeScript example runs, or COMPILE_ONLY says why it cannot here', () => {
    assert.deepEqual(unrunnable(ALL), []);
  });

  it('every yaml, json, sql and sh block is valid; tessera.yml files load with tessera/config', async () => {
    const sqlFiles = (await readdir(path.join(ROOT, 'sql'))).filter((f) => f.endsWith('.sql'));
    const problems: string[] = [];
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-docs-yaml-'));
    try {
      for (const page of pages()) {
        for (const block of blocksOf(page)) {
          if (block.lang === 'yaml' && block.code.startsWith('# tessera.yml')) {
            const file = path.join(dir, `${block.line}.yml`);
            await writeFile(file, block.code);
            try {
              const config = await loadConfig(file, { ...process.env, ...ENV });
              await config.store.close();
            } catch (error) {
              problems.push(`${page}:${block.line}: ${(error as Error).message}`);
            }
          } else {
            const problem = await checkOther(block, sqlFiles);
            if (problem) problems.push(problem);
          }
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    assert.deepEqual(problems, []);
  });

  it('every page under docs/ is linked from the README, and every relative link resolves', async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    const problems: string[] = [];
    for (const page of pages()) {
      if (page !== 'README.md' && !readme.includes(`(${page})`)) problems.push(`${page} is not linked from README.md`);
      const text = await readFile(path.join(ROOT, page), 'utf8');
      for (const [, target = ''] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const resolved = path.join(ROOT, path.dirname(page), target);
        await readFile(resolved).catch(() => problems.push(`${page}: the link ${target} leads nowhere`));
      }
    }
    assert.deepEqual(problems, []);
  });

  it('no Markdown table documents an option the API reference (TSDoc) documents', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-typedoc-'));
    try {
      const out = path.join(dir, 'api.json');
      await run(path.join(ROOT, 'node_modules/.bin/typedoc'), ['--json', out, '--logLevel', 'Error'], { cwd: ROOT });
      const options = optionNames(JSON.parse(await readFile(out, 'utf8')));
      assert.ok(options.size > 50, `TypeDoc documented only ${options.size} options`);
      const problems = pages().flatMap((page) => duplicatedOptionTables(page, options));
      assert.deepEqual(problems, []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
