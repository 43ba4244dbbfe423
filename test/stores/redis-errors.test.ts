// stores: redis
// What a Redis store says when its connection cannot serve a call: a SessionError with the code
// the engine acts on (STORE_UNAVAILABLE answers 503 at once; STORE_CLOSED is a call during
// shutdown), naming the state and what to do, whether the client is the store's own or yours.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { generateId, hashId } from '../../src/core/ids.ts';
import { ownedBackend } from '../../src/stores/redis/connection.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { resolveRedisOptions } from '../../src/stores/redis/options.ts';
import { freePort } from '../support/ports.ts';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const key = () => hashId(generateId());
const stores: RedisStore[] = [];
after(() => Promise.all(stores.map((store) => store.close())));

function storeOf(options: ConstructorParameters<typeof RedisStore>[0]): RedisStore {
  const store = new RedisStore({ ...options, prefix: `tessera-test:errors:${generateId()}:` });
  stores.push(store);
  return store;
}

describe('a Redis store whose connection cannot serve a call', () => {
  it('your node-redis client, not connected yet: STORE_UNAVAILABLE saying to connect it', async () => {
    const client = createClient({ url: URL });
    await assert.rejects(storeOf({ client }).get(key()), {
      name: 'SessionError',
      code: 'STORE_UNAVAILABLE',
      message: '[tessera] [redis] the node-redis client is not connected: call its connect() before using the store',
    });
  });

  it('your ioredis client, closed: STORE_UNAVAILABLE naming its status, without waiting', async () => {
    const client = new Redis(URL);
    await once(client, 'ready');
    const store = storeOf({ client });
    assert.equal(await store.get(key()), null);
    client.disconnect();
    await once(client, 'end');
    await assert.rejects(store.get(key()), {
      name: 'SessionError',
      code: 'STORE_UNAVAILABLE',
      message: /^\[tessera\] \[redis\] the ioredis client is not connected \(status end\); calls fail at once/,
    });
  });

  it('its own connection, refused and reconnecting: STORE_UNAVAILABLE naming the server and the reason', async () => {
    const port = await freePort();
    const store = storeOf({ url: `redis://127.0.0.1:${port}` });
    // The first call waits for the first attempt and gets the driver's own error, wrapped.
    await assert.rejects(store.get(key()), { code: 'STORE_UNAVAILABLE', message: /ECONNREFUSED/ });
    await assert.rejects(store.get(key()), {
      name: 'SessionError',
      code: 'STORE_UNAVAILABLE',
      message: new RegExp(
        `^\\[tessera\\] \\[redis\\] not connected to redis://127\\.0\\.0\\.1:${port}/0 \\(.*ECONNREFUSED.*\\); reconnecting$`,
      ),
    });
  });

  it('its own connection, closed while a call waited for it: STORE_CLOSED', async () => {
    const { connection } = resolveRedisOptions({ url: URL });
    assert.ok(connection);
    const backend = await ownedBackend(connection, () => {});
    await backend.close();
    await assert.rejects(backend.ready(), { name: 'SessionError', code: 'STORE_CLOSED' });
  });
});
