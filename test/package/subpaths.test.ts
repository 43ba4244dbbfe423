// Every subpath of package.json "exports", imported and used from a fresh project that installed
// only the packed tarball (no optional peer), and the same require()d from CommonJS: each either
// works, because it needs none at run time, or fails with MISSING_DEPENDENCY naming every package it
// lacks and the install command, not with Node's raw ERR_MODULE_NOT_FOUND (tessera/nestjs excepted,
// see its imports), nor, required, with ERR_REQUIRE_ASYNC_MODULE: no module awaits at its top. The `tessera` command
// says the same about commander.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { freshProject, ROOT } from '../support/packed.ts';

const run = promisify(execFile);
const KEY = 'a'.repeat(43);

/** What a probe does with the subpath, and which packages it must name (none: it must work). */
interface Probe {
  code: string;
  missing: string[];
  /**
   * It fails with Node's own ERR_MODULE_NOT_FOUND naming the first missing package, for a module
   * that imports its framework statically (tessera/nestjs: see the comment at its imports).
   */
  nodeError?: true;
}

const PROBES: Record<string, Probe[]> = {
  '.': [
    {
      code: `const { SessionEngine } = await import('tessera'); const { memoryStore } = await import('tessera/memory');
        const engine = new SessionEngine({ store: memoryStore(), secrets: ['K7pq9Lm2xVb8Nw4Rt6Yz1Hc3Jd5Fg0QsE'] });
        await engine.close();`,
      missing: [],
    },
  ],
  './store': [
    {
      code: `const { applyChangeSet, validateRecord } = await import('tessera/store');
        const r = applyChangeSet({ fields: { a: '1' }, createdAt: 1, expiresAt: 2, userId: null }, { set: { b: '2' }, unset: ['a'], expiresAt: 3 });
        validateRecord(r, 'probe');`,
      missing: [],
    },
  ],
  './memory': [
    { code: `const { memoryStore } = await import('tessera/memory'); await memoryStore().close();`, missing: [] },
  ],
  './redis': [
    {
      code: `const { redisStore } = await import('tessera/redis'); await redisStore({ url: 'redis://127.0.0.1:1' }).get('${KEY}');`,
      missing: ['redis'],
    },
  ],
  './sql': [
    {
      code: `const { sqlStore } = await import('tessera/sql'); await sqlStore({ url: 'sqlite::memory:' }).get('${KEY}');`,
      missing: ['kysely', 'better-sqlite3'],
    },
    {
      code: `const { sqlStore } = await import('tessera/sql'); await sqlStore({ url: 'postgres://u@127.0.0.1:1/db' }).get('${KEY}');`,
      missing: ['kysely', 'pg'],
    },
    {
      code: `const { sqlStore } = await import('tessera/sql'); await sqlStore({ url: 'mysql://u@127.0.0.1:1/db' }).get('${KEY}');`,
      missing: ['kysely', 'mysql2'],
    },
  ],
  './elasticsearch': [
    {
      code: `const { elasticsearchStore } = await import('tessera/elasticsearch');
        await elasticsearchStore({ node: 'http://127.0.0.1:1' }).get('${KEY}');`,
      missing: ['@elastic/elasticsearch'],
    },
    {
      code: `const { elasticsearchStore } = await import('tessera/elasticsearch');
        await elasticsearchStore({ flavor: 'opensearch', node: 'http://127.0.0.1:1' }).get('${KEY}');`,
      missing: ['@opensearch-project/opensearch'],
    },
  ],
  './cache': [
    {
      code: `const { cachedStore } = await import('tessera/cache'); const { memoryStore } = await import('tessera/memory');
        await cachedStore({ store: memoryStore(), invalidation: null }).close();`,
      missing: [],
    },
    {
      code: `const { cachedStore, redisTracking } = await import('tessera/cache'); const { memoryStore } = await import('tessera/memory');
        const store = cachedStore({ store: memoryStore(), invalidation: redisTracking({ url: 'redis://127.0.0.1:1' }) });
        try { await (store.ready ?? store.connect).call(store); } finally { await store.close(); }`,
      missing: ['redis'],
    },
  ],
  './migrating': [
    {
      code: `const { migratingStore, copySessions } = await import('tessera/migrating'); const { memoryStore } = await import('tessera/memory');
        const from = memoryStore(); const to = memoryStore();
        await copySessions({ from, to }); await migratingStore({ from, to }).close();`,
      missing: [],
    },
  ],
  './express': [{ code: adapter('express'), missing: [] }],
  './fastify': [
    {
      code: `const m = await import('tessera/fastify');
        if (typeof (m.session ?? m.tessera) !== 'function' || typeof m.default !== 'function') throw new Error('no plugin');`,
      missing: [],
    },
  ],
  './koa': [{ code: adapter('koa'), missing: [] }],
  './hono': [{ code: middleware('hono'), missing: ['hono'] }],
  './astro': [
    {
      code: `const { session } = await import('tessera/astro'); const { memoryStore } = await import('tessera/memory');
        if (typeof session({ store: memoryStore(), secrets: ['K7pq9Lm2xVb8Nw4Rt6Yz1Hc3Jd5Fg0QsE'] }) !== 'function') throw new Error('no middleware');`,
      missing: [],
    },
  ],
  './h3': [{ code: middleware('h3'), missing: ['h3'] }],
  './nestjs': [{ code: `await import('tessera/nestjs');`, missing: ['@nestjs/common'], nodeError: true }],
  './sveltekit': [
    {
      code: `const { session } = await import('tessera/sveltekit'); const { memoryStore } = await import('tessera/memory');
        if (typeof session({ store: memoryStore(), secrets: ['K7pq9Lm2xVb8Nw4Rt6Yz1Hc3Jd5Fg0QsE'] }) !== 'function') throw new Error('no hook');`,
      missing: [],
    },
  ],
  './fetch': [{ code: adapter('fetch'), missing: [] }],
  './next': [
    {
      code: `const { getSession } = await import('tessera/next'); const { SessionEngine } = await import('tessera');
        const { memoryStore } = await import('tessera/memory');
        await getSession(new SessionEngine({ store: memoryStore(), secrets: ['K7pq9Lm2xVb8Nw4Rt6Yz1Hc3Jd5Fg0QsE'] }));`,
      missing: ['next'],
    },
  ],
  './node': [{ code: adapter('node'), missing: [] }],
  './express-session': [
    {
      code: `const m = await import('tessera/express-session'); const { memoryStore } = await import('tessera/memory');
        if (typeof m.toExpressSessionStore(memoryStore()).get !== 'function') throw new Error('no store');`,
      missing: [],
    },
  ],
  './config': [
    {
      code: `const { resolveConfig } = await import('tessera/config'); const c = await resolveConfig({ store: 'memory:' });
        await c.store.close();`,
      missing: [],
    },
    {
      code: `const fs = await import('node:fs'); fs.writeFileSync('tessera.yml', 'store:\\n  url: "memory:"\\n');
        const { loadConfig } = await import('tessera/config'); await loadConfig('tessera.yml');`,
      missing: ['yaml'],
    },
  ],
  './testing': [
    {
      code: `const { runStoreConformance } = await import('tessera/testing');
        if (typeof runStoreConformance !== 'function') throw new Error('no suite');`,
      missing: [],
    },
  ],
  './package.json': [{ code: `await import('tessera/package.json', { with: { type: 'json' } });`, missing: [] }],
};

/** Imports a framework adapter and builds its middleware or wrapper from an engine's options. */
function adapter(name: string): string {
  return `const m = await import('tessera/${name}'); const { memoryStore } = await import('tessera/memory');
    const entry = m.session ?? m.sessionMiddleware ?? m.withSession ?? m.tessera;
    if (typeof entry !== 'function') throw new Error('no entry point in tessera/${name}: ' + Object.keys(m));
    entry({ store: memoryStore(), secrets: ['K7pq9Lm2xVb8Nw4Rt6Yz1Hc3Jd5Fg0QsE'] }, async () => new Response());`;
}

/** Imports an adapter whose framework it loads on the first request, and runs its middleware once. */
function middleware(name: string): string {
  return `const { session } = await import('tessera/${name}'); const { memoryStore } = await import('tessera/memory');
    await session({ store: memoryStore(), secrets: ['K7pq9Lm2xVb8Nw4Rt6Yz1Hc3Jd5Fg0QsE'] })({}, async () => undefined);`;
}

/**
 * Runs a probe in the project, as an ES module, or as CommonJS with each `await import(x)` made
 * `require(x)` (which fails for a module that awaits at its top); its outcome as the JSON it prints.
 */
async function probe(
  dir: string,
  code: string,
  as: 'esm' | 'cjs',
): Promise<{ ok: true } | { ok: false; code?: string; message: string }> {
  const body = as === 'esm' ? code : code.replaceAll('await import(', 'require(');
  const script = `try { ${body}; console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ ok: false, code: e.code, message: String(e.message) })); }`;
  const args = as === 'esm' ? ['--input-type=module', '-e', script] : ['-e', `(async () => { ${script} })();`];
  const { stdout } = await run(process.execPath, args, { cwd: dir, timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
}

/** Node's require(esm): unflagged from 20.19 and 22.12. */
const requiresEsm = (process.features as { require_module?: boolean }).require_module === true;

describe('every subpath without its optional peers (a fresh project with only the tarball)', () => {
  let dir = '';
  before(async () => {
    dir = await freshProject();
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('has a probe for every subpath of package.json "exports"', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: object };
    assert.deepEqual(Object.keys(PROBES).sort(), Object.keys(pkg.exports).sort());
  });

  for (const [subpath, probes] of Object.entries(PROBES)) {
    for (const [as, how] of [
      ['esm', 'import'],
      ['cjs', 'require()'],
    ] as const) {
      for (const { code, missing, nodeError } of probes) {
        const error = nodeError ? 'ERR_MODULE_NOT_FOUND' : 'MISSING_DEPENDENCY';
        const what = missing.length > 0 ? `${error} naming ${missing.join(' and ')}` : 'works';
        const skip = as === 'cjs' && !requiresEsm && 'this Node has no require(esm) (Node 20.19+, 22.12+)';
        it(`${subpath} by ${how}: ${what}`, { skip }, async () => {
          const outcome = await probe(dir, code, as);
          if (missing.length === 0) {
            assert.deepEqual(outcome, { ok: true });
            return;
          }
          assert.equal(outcome.ok, false, 'the probe succeeded without its peers');
          assert.ok(!outcome.ok);
          assert.equal(outcome.code, error, outcome.message);
          const named = nodeError ? `Cannot find package '${missing[0]}'` : `npm install ${missing.join(' ')}$`;
          assert.match(outcome.message, new RegExp(named), outcome.message);
        });
      }
    }
  }

  it('the tessera command names commander, exit code 1', async () => {
    const bin = path.join(dir, 'node_modules/.bin/tessera');
    const failed = await run(bin, ['--url', 'memory:', 'count'], { cwd: dir }).then(
      () => null,
      (error: { code?: number; stderr?: string }) => error,
    );
    assert.ok(failed, 'tessera ran without commander');
    assert.equal(failed.code, 1);
    assert.match(failed.stderr ?? '', /MISSING_DEPENDENCY/);
    assert.match(failed.stderr ?? '', /npm install commander/);
  });
});

describe('the tessera command with commander but without cli-progress', () => {
  let dir = '';
  before(async () => {
    dir = await freshProject({ dependencies: ['commander'] });
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs the commands that show no progress, and names cli-progress for migrate and prune (exit 1)', async () => {
    const bin = path.join(dir, 'node_modules/.bin/tessera');
    const counted = await run(bin, ['--url', 'memory:', '--json', 'count'], { cwd: dir });
    assert.equal(JSON.parse(counted.stdout).sessions, 0);
    for (const args of [
      ['migrate', '--from', 'memory:', '--to', 'memory:'],
      ['--url', 'memory:', 'prune'],
    ]) {
      const failed = await run(bin, args, { cwd: dir }).then(
        () => null,
        (error: { code?: number; stderr?: string }) => error,
      );
      assert.ok(failed, `tessera ${args.join(' ')} ran without cli-progress`);
      assert.equal(failed.code, 1);
      assert.match(failed.stderr ?? '', /MISSING_DEPENDENCY/);
      assert.match(failed.stderr ?? '', /npm install cli-progress/);
    }
  });
});
