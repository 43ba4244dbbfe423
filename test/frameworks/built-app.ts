// Test apps that a framework's own build makes (SvelteKit, Astro, Next.js, Nuxt): the app's source in
// test/frameworks/apps/<name>/ is copied to a temporary directory, beside a link to this
// repository's node_modules, and built there once per test run. The built server then runs in
// the test process, so the suite can give each server its own engine: the app's code takes the
// engine of the request from `testHooks().engine()` (an AsyncLocalStorage the test's server runs
// each request in), and the suite's `actions` from `testHooks().actions`. The app imports
// `tessera/<adapter>` and its build leaves that import as it is; in the app's node_modules,
// `tessera` is a package whose exports lead into this repository's src/ (symlinked, so Node loads
// the very files the test loads through tsx): the engine and the adapter share one copy of core.
import { AsyncLocalStorage } from 'node:async_hooks';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SessionEngine } from '../../src/core/engine.ts';
import { ROOT } from '../support/packed.ts';
import { actions, type MakeServer } from './behaviour.ts';

const run = promisify(execFile);

/** What a test app reads from the test process. */
export interface TestHooks {
  /** The engine of the request being answered. */
  engine(): SessionEngine;
  actions: typeof actions;
}

const scope = new AsyncLocalStorage<SessionEngine>();
const HOOKS = Symbol.for('tessera.test.hooks');
(globalThis as Record<symbol, TestHooks>)[HOOKS] = {
  engine() {
    const engine = scope.getStore();
    if (!engine) throw new Error('no engine: the request did not come through makeBuiltServer()');
    return engine;
  },
  actions,
};

/** A built app: where it is, how long its build took, and how to remove it. */
export interface BuiltApp {
  dir: string;
  buildSeconds: number;
  remove(): Promise<void>;
}

/**
 * Copies test/frameworks/apps/<name> to a temporary directory and runs `command` there (its
 * build), with `env` added to the environment. `modules` links some packages of the app to
 * another copy in this repository's node_modules than the top-level one (`{ h3:
 * 'nitropack/node_modules/h3' }`: the major a user of that framework has at the top).
 */
export async function buildApp(
  name: string,
  command: string[],
  env: Record<string, string> = {},
  modules: Record<string, string> = {},
): Promise<BuiltApp> {
  const dir = await mkdtemp(path.join(tmpdir(), `tessera-${name}-`));
  await cp(path.join(ROOT, 'test/frameworks/apps', name), dir, { recursive: true });
  await linkModules(dir, modules);
  const started = performance.now();
  const [file = '', ...args] = command;
  // Not a test: with node:test's NODE_TEST_CONTEXT inherited, a build's own node processes misbehave.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  try {
    await run(file, args, {
      cwd: dir,
      env: { ...inherited, NODE_ENV: 'production', ...env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 8 * 60_000,
    });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${command.join(' ')} failed in ${dir}:\n${stdout}\n${stderr}`);
  }
  return {
    dir,
    buildSeconds: Math.round((performance.now() - started) / 100) / 10,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The app's node_modules: a link to each of this repository's packages, and `tessera` leading into src/. */
async function linkModules(dir: string, elsewhere: Record<string, string>): Promise<void> {
  const modules = path.join(dir, 'node_modules');
  await mkdir(modules);
  for (const entry of await readdir(path.join(ROOT, 'node_modules'))) {
    const target = path.join(ROOT, 'node_modules', elsewhere[entry] ?? entry);
    await symlink(target, path.join(modules, entry), 'dir');
  }
  const tessera = path.join(modules, 'tessera');
  await mkdir(tessera);
  await symlink(path.join(ROOT, 'src'), path.join(tessera, 'src'), 'dir');
  const exports: Record<string, string> = {};
  for (const adapter of ['sveltekit', 'astro', 'next', 'h3'])
    exports[`./${adapter}`] = `./src/frameworks/${adapter}.ts`;
  await writeFile(
    path.join(tessera, 'package.json'),
    `${JSON.stringify({ name: 'tessera', private: true, type: 'module', exports }, null, 2)}\n`,
  );
}

/** A `node:http` server around a built app's request listener, answering each request with the engine given. */
export function makeBuiltServer(listener: () => (req: IncomingMessage, res: ServerResponse) => unknown): MakeServer {
  return (engine) => createServer((req, res) => scope.run(engine, () => listener()(req, res)));
}
