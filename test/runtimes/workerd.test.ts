// stores: memory
// Tessera on Cloudflare's workerd (through miniflare, without nodejs_compat): test/runtimes/app.ts
// bundled as a module Worker on the memory store (one isolate, one store), driven over HTTP by the
// runtime suite. There is no process, Buffer or node:crypto: the engine hashes and signs with Web
// Crypto. A Redis server is not reachable from a Worker (no TCP client of the supported ones).
import path from 'node:path';
import { describe } from 'node:test';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { ROOT } from '../support/packed.ts';
import { only } from '../support/stores.ts';
import { type RunningApp, runRuntimeSuite } from './suite.ts';

/** The Worker's code as one ES module, as wrangler would bundle it (browser-like conditions, no Node built-ins). */
async function bundle(): Promise<string> {
  const result = await build({
    entryPoints: [path.join(ROOT, 'test/runtimes/worker.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['workerd', 'worker', 'browser'],
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]?.text ?? '';
}

async function startWorker(): Promise<RunningApp> {
  const mf = new Miniflare({
    modules: true,
    script: await bundle(),
    compatibilityDate: '2025-07-01', // miniflare 3's workerd; no compatibilityFlags: no nodejs_compat
    host: '127.0.0.1',
    port: 0,
  });
  const url = await mf.ready;
  return { base: url.origin, stop: () => mf.dispose() };
}

describe('workerd (miniflare), memory store', only('memory'), () => {
  runRuntimeSuite('workerd + memory', startWorker, { runtime: 'workerd', syncCrypto: false });
});
