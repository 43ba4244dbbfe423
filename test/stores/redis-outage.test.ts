// stores: redis
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { redisCommand, startRedis } from '../support/redis-servers.ts';

const secrets = ['outage-test-secret-0123456789abcdef'];
const isStoreFailure = (error: unknown) =>
  isSessionError(error, 'STORE_UNAVAILABLE') || isSessionError(error, 'STORE_TIMEOUT');

async function writeSession(engine: SessionEngine<Record<string, unknown>>, value: number): Promise<string> {
  const session = engine.session(undefined);
  await session.set('n', value);
  const cookie = (await engine.commit(session)).setCookie?.split(';')[0];
  assert.ok(cookie, 'a cookie is set');
  return cookie;
}

describe('redis outage', () => {
  for (const [label, extra] of [
    ['reconnecting in the background', ''],
    ['?reconnect=false (reconnects on the next call)', '?reconnect=false'],
  ] as Array<[string, string]>) {
    it(`fails fast while Redis is down and recovers without a restart (${label})`, async () => {
      const server = await startRedis();
      const store = new RedisStore({ url: `${server.url}${extra}` });
      const engine = new SessionEngine<Record<string, unknown>>({ store, secrets, storeTimeoutMs: 500 });
      try {
        await store.ready();
        const cookie = await writeSession(engine, 1);
        assert.equal(await engine.session(cookie).get('n'), 1);

        await server.kill();
        let slowest = 0;
        for (let attempt = 0; attempt < 3; attempt++) {
          const started = performance.now();
          await assert.rejects(engine.session(cookie).load(), isStoreFailure);
          const ms = performance.now() - started;
          slowest = Math.max(slowest, ms);
          assert.ok(ms < 1500, `a load during the outage failed after ${Math.round(ms)} ms, not within 1500 ms`);
        }

        await server.start();
        const restarted = performance.now();
        const deadline = Date.now() + 10_000;
        let fresh: string | undefined;
        while (fresh === undefined) {
          try {
            fresh = await writeSession(engine, 2);
          } catch (error) {
            if (!isStoreFailure(error) || Date.now() > deadline) throw error;
            await new Promise((resolve) => setTimeout(resolve, 25));
          }
        }
        console.log(
          `${label}: loads failed within ${Math.round(slowest)} ms while down; answering ${Math.round(performance.now() - restarted)} ms after the restart`,
        );
        assert.equal(await engine.session(fresh).get('n'), 2);
        // No persistence: the session from before the outage is gone, and reads as a new one.
        const old = await engine.session(cookie).load();
        assert.equal(old.isNew, true);
      } finally {
        await engine.close();
        await server.stop();
      }
    });
  }
});

describe("redis outage, a user's ioredis client", () => {
  it('fails a command in flight when the connection closes (ioredis would resend it after reconnecting)', async () => {
    const server = await startRedis();
    const client = new Redis(server.url, { enableOfflineQueue: false });
    client.on('error', () => {});
    const store = new RedisStore({ client, prefix: 'tessera-test:inflight:' });
    try {
      await store.ready();
      assert.equal(await store.get('a'.repeat(64)), null);
      // The server takes the command and does not answer it (paused), then dies.
      await redisCommand({ port: server.port }, ['CLIENT', 'PAUSE', '10000', 'ALL']);
      const read = store.get('b'.repeat(64)).then(
        () => 'answered',
        (error: Error) => error.message,
      );
      await server.kill();
      const outcome = await Promise.race([read, sleep(2000).then(() => 'still pending 2 s after the server died')]);
      assert.match(outcome, /closed while the command was in flight/);
    } finally {
      await store.close();
      client.disconnect();
      await server.stop();
    }
  });
});
