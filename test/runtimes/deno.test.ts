// stores: memory redis
// Tessera on Deno (the `deno` package's binary): the Fetch adapter under Deno.serve, on the memory
// store and on the Redis store (node-redis), driven over HTTP by the runtime suite.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe } from 'node:test';
import { createClient } from 'redis';
import { ROOT } from '../support/packed.ts';
import { only } from '../support/stores.ts';
import { runRuntimeSuite, startProcess } from './suite.ts';

const DENO = path.join(ROOT, 'node_modules/.bin/deno');
// -A: the network (its server, Redis), the environment, and node_modules (read); Deno takes the npm packages from there.
const ARGS = ['run', '-A', path.join(ROOT, 'test/runtimes/serve.ts')];
const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `tessera-deno-${randomBytes(4).toString('hex')}:`;

describe('deno, memory store', only('memory'), () => {
  runRuntimeSuite('deno + memory', () => startProcess(DENO, ARGS, { STORE: 'memory' }), {
    runtime: 'deno',
    syncCrypto: true,
  });
});

describe('deno, redis store', only('redis'), () => {
  after(async () => {
    const redis = await createClient({ url: REDIS_URL }).connect();
    for await (const keys of redis.scanIterator({ MATCH: `${PREFIX}*` })) if (keys.length) await redis.del(keys);
    await redis.close();
  });
  runRuntimeSuite('deno + redis', () => startProcess(DENO, ARGS, { STORE: 'redis', REDIS_URL, REDIS_PREFIX: PREFIX }), {
    runtime: 'deno',
    syncCrypto: true,
  });
});
