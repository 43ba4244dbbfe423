// stores: redis
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import express from 'express';
import { SessionEngine } from '../../src/core/engine.ts';
import { session } from '../../src/frameworks/express.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { Browser, close, listen } from '../support/browser.ts';
import { startRedis } from '../support/redis-servers.ts';

describe('express on Redis through an outage', () => {
  it('answers 503 fast while Redis is down and recovers without a restart', async () => {
    const redis = await startRedis();
    const engine = new SessionEngine<Record<string, unknown>>({
      store: new RedisStore({ url: redis.url }),
      secrets: ['outage-express-secret-0123456789abcdef'],
      storeTimeoutMs: 500,
    });
    await engine.ready();
    const app = express();
    app.set('env', 'test');
    app.use(session(engine));
    app.post('/count', async (req, res) => {
      const s = req.session as unknown as {
        get(k: string): Promise<unknown>;
        set(k: string, v: unknown): Promise<void>;
      };
      const n = ((await s.get('n')) as number | undefined) ?? 0;
      await s.set('n', n + 1);
      res.json({ n: n + 1 });
    });
    const server = createServer(app);
    const base = await listen(server);
    const browser = new Browser(base);
    try {
      assert.equal(JSON.parse((await browser.post('/count')).text).n, 1);
      assert.equal(JSON.parse((await browser.post('/count')).text).n, 2);

      await redis.kill();
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const response = await browser.post('/count');
        const ms = performance.now() - started;
        assert.equal(response.status, 503);
        assert.ok(ms < 1500, `answered after ${Math.round(ms)} ms, over the bound`);
      }

      await redis.start();
      // The same app, never restarted: poll until Redis answers again (data is gone: no persistence).
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (status !== 200) {
        assert.ok(Date.now() < deadline, 'the app did not recover within 10 s of Redis coming back');
        status = (await browser.post('/count')).status;
      }
      assert.equal(JSON.parse((await browser.post('/count')).text).n, 2);
    } finally {
      await close(server);
      await engine.close();
      await redis.stop();
    }
  });
});
