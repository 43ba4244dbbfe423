// A user's `npm install tessera redis@6` (and every other supported major of every peer) succeeds
// as npm runs it by default: no --legacy-peer-deps, so a peer range that excludes the user's
// version fails with ERESOLVE, as `redis@6` once did. Resolution only (--ignore-scripts): the
// native build of better-sqlite3 is not what this checks, and the conformance suites on each client
// major are in test/stores (the main majors) and test/package/peers.test.ts (the aliased ones).
//
// One install holds one major of every peer: npm checks each peer against tessera's range on its
// own, so installing them together finds the same ERESOLVE as one project per package, in a
// third of the time. Install N takes the N-th major of each peer that has one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, tarball } from '../support/packed.ts';

const run = promisify(execFile);

/**
 * Every supported major of every peer, as a version range npm accepts after `name@`. The first
 * test keeps the keys equal to package.json's peerDependencies, so a new peer needs a line here.
 */
const MAJORS: Record<string, string[]> = {
  redis: ['5', '6'],
  ioredis: ['5', '6'],
  kysely: ['0.28', '0.29'],
  // 13 declares Node >= 22 for its build; resolving it is what a Node 22 user's install does first.
  'better-sqlite3': ['12', '13'],
  pg: ['8'],
  mysql2: ['3'],
  express: ['4', '5'],
  'express-session': ['1'],
  fastify: ['4', '5'],
  koa: ['2', '3'],
  hono: ['4'],
  h3: ['1', '2'],
  '@nestjs/common': ['11', '12'],
  '@nestjs/core': ['11', '12'],
  // 3 declares Node >= 22: resolved here, untested.
  '@sveltejs/kit': ['2', '3'],
  // 6 and 7 declare Node >= 22: resolved here, untested.
  astro: ['5', '6', '7'],
  next: ['15', '16'],
  '@elastic/elasticsearch': ['7', '8', '9'],
  '@opensearch-project/opensearch': ['2', '3'],
  commander: ['14'],
  'cli-progress': ['3'],
  yaml: ['2'],
};

// --legacy-peer-deps=false even if a user or CI npmrc turned it on: the default is what is tested.
const FLAGS = ['--prefer-offline', '--ignore-scripts', '--legacy-peer-deps=false', '--no-audit', '--no-fund'];
const INSTALL_TIMEOUT = 8 * 60_000; // npm test's --test-timeout (2 minutes) is too short for a cold npm cache

/** Installs the tarball and the given `name@range`s into a fresh project; npm's outcome. */
async function install(specs: string[]): Promise<{ dir: string; ok: boolean; output: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tessera-peers-'));
  await writeFile(
    path.join(dir, 'package.json'),
    `${JSON.stringify({ name: 'tessera-peer-project', private: true, type: 'module' }, null, 2)}\n`,
  );
  try {
    const { stdout, stderr } = await run('npm', ['install', await tarball(), ...specs, ...FLAGS], {
      cwd: dir,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { dir, ok: true, output: stdout + stderr };
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    return { dir, ok: false, output: stdout + stderr };
  }
}

const sets = Array.from({ length: Math.max(...Object.values(MAJORS).map((m) => m.length)) }, (_, n) =>
  Object.entries(MAJORS).flatMap(([name, majors]) => (majors[n] ? [{ name, major: majors[n] }] : [])),
);

describe('every supported major of every peer installs beside tessera (npm defaults, no --legacy-peer-deps)', {
  concurrency: 2,
  timeout: 20 * 60_000,
}, () => {
  it('names every peer of package.json, and nothing else', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      peerDependencies: Record<string, string>;
    };
    assert.deepEqual(Object.keys(MAJORS).sort(), Object.keys(pkg.peerDependencies).sort());
  });

  for (const set of sets) {
    const specs = set.map(({ name, major }) => `${name}@${major}`);
    it(specs.join(' '), { timeout: INSTALL_TIMEOUT }, async () => {
      const { dir, ok, output } = await install(specs);
      try {
        assert.ok(ok, `npm install failed:\n${output}`);
        assert.doesNotMatch(output, /ERESOLVE|overriding peer dependency/, output);
        for (const { name, major } of set) {
          const { version } = JSON.parse(await readFile(path.join(dir, 'node_modules', name, 'package.json'), 'utf8'));
          assert.ok(version.startsWith(`${major}.`), `${name}: installed ${version}, asked for ${major}`);
        }
        // npm ls exits non-zero on an invalid peer (a version outside tessera's range).
        await run('npm', ['ls', 'tessera', '--all'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 }).catch(
          (error: { stdout?: string }) => assert.fail(`npm ls reports a problem:\n${error.stdout}`),
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('a major outside the ranges (redis 4) is refused with ERESOLVE: the check above can fail', {
    timeout: INSTALL_TIMEOUT,
  }, async () => {
    const { dir, ok, output } = await install(['redis@4']);
    await rm(dir, { recursive: true, force: true });
    assert.equal(ok, false, 'npm installed redis 4 beside tessera');
    assert.match(output, /ERESOLVE/);
  });
});
