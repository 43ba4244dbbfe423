// stores: memory redis
// Tessera on Bun (the `bun` package's binary): the Fetch adapter under Bun.serve, on the memory
// store and on the Redis store (node-redis), driven over HTTP by the runtime suite.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe } from 'node:test';
import { createClient } from 'redis';
import { ROOT } from '../support/packed.ts';
import { only } from '../support/stores.ts';
import { runRuntimeSuite, startProcess } from './suite.ts';

const BUN = path.join(ROOT, 'node_modules/.bin/bun');
const SERVE = path.join(ROOT, 'test/runtimes/serve.ts');
const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `tessera-bun-${randomBytes(4).toString('hex')}:`;

describe('bun, memory store', only('memory'), () => {
  runRuntimeSuite('bun + memory', () => startProcess(BUN, [SERVE], { STORE: 'memory' }), {
    runtime: 'bun',
    syncCrypto: true,
  });
});

describe('bun, redis store', only('redis'), () => {
  after(async () => {
    const redis = await createClient({ url: REDIS_URL }).connect();
    for await (const keys of redis.scanIterator({ MATCH: `${PREFIX}*` })) if (keys.length) await redis.del(keys);
    await redis.close();
  });
  runRuntimeSuite(
    'bun + redis',
    () => startProcess(BUN, [SERVE], { STORE: 'redis', REDIS_URL, REDIS_PREFIX: PREFIX }),
    { runtime: 'bun', syncCrypto: true },
  );
});
