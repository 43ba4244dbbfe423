// stores: sqlite redis postgres
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { createClient } from 'redis';
import { SessionEngine } from '../../src/core/engine.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import type { SessionRecord } from '../../src/core/store.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { needs } from '../support/stores.ts';

const PG_URL = process.env.TESSERA_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.TESSERA_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SESSIONS = Number(process.env.MIGRATE_SESSIONS ?? 20_000);
const secret = 'migrate-test-secret-0123456789abcdefghij';
const key = randomBytes(32).toString('base64url');
const dir = mkdtempSync(join(tmpdir(), 'tessera-migrate-'));
const suffix = randomBytes(4).toString('hex');
const prefix = `tessera-migrate-${suffix}:`;
const table = `tessera_migrate_${suffix}`;

const run = promisify(execFile);
/** The real binary, as `npx tessera` runs it (from source through tsx). */
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, TESSERA_SECRETS: secret },
    maxBuffer: 16 * 1024 * 1024,
  });

const files = {
  sqlite: join(dir, 'sqlite.json'),
  redis: join(dir, 'redis.json'),
  postgres: join(dir, 'postgres.json'),
};

describe(
  'tessera migrate: SQLite -> Redis -> PostgreSQL through the binary',
  needs('sqlite', 'redis', 'postgres'),
  () => {
    const engineOptions = { secrets: [secret], encryption: { keys: [{ id: 'k1', key }] } };
    const cookies: { cookie: string; user: string; n: number; createdAt: number }[] = [];

    before(async () => {
      writeFileSync(files.sqlite, JSON.stringify({ store: `sqlite:${join(dir, 'sessions.db')}` }));
      writeFileSync(files.redis, JSON.stringify({ store: { url: REDIS_URL, prefix } }));
      writeFileSync(files.postgres, JSON.stringify({ store: { url: PG_URL, table } }));
      // 40 sessions made by an app, with their cookies and encrypted fields; the rest written in bulk.
      const engine = new SessionEngine<{ n: number; user: string }>({
        store: new SqlStore({ url: `sqlite:${join(dir, 'sessions.db')}` }),
        ...engineOptions,
      });
      for (let n = 0; n < 40; n++) {
        const session = engine.session(undefined);
        const user = `user-${n % 8}`;
        await session.set('n', n);
        await session.set('user', user);
        await session.setUser(user);
        const cookie = (await engine.commit(session)).setCookie?.split(';')[0] as string;
        cookies.push({ cookie, user, n, createdAt: session.createdAt });
      }
      const now = Date.now();
      const bulk: [string, SessionRecord][] = [];
      for (let i = 0; i < SESSIONS - 40; i++) {
        bulk.push([
          hashId(generateId()),
          {
            fields: { cart: JSON.stringify([`item-${i}`]), visits: String(i % 50) },
            createdAt: now - (i % 1000) * 60_000,
            expiresAt: now + 3_600_000 + i,
            userId: i % 10 === 0 ? `bulk-${i % 97}` : null,
          },
        ]);
      }
      const expired: [string, SessionRecord][] = Array.from({ length: 25 }, () => [
        hashId(generateId()),
        { fields: { old: '1' }, createdAt: now - 7_200_000, expiresAt: now - 1000, userId: null },
      ]);
      await (engine.store as SqlStore).setMany([...bulk, ...expired]);
      await engine.close();
    });

    after(async () => {
      rmSync(dir, { recursive: true, force: true });
      const redis = createClient({ url: REDIS_URL });
      redis.on('error', () => {});
      await redis.connect();
      for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await redis.del(keys);
      }
      await redis.close();
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP TABLE IF EXISTS ${table}`);
      await client.end();
    });

    it('copies every live session twice over, and the cookies issued before still log in', async () => {
      const dry = JSON.parse(
        (await cli('--json', 'migrate', '--from', files.sqlite, '--to', files.redis, '--dry-run')).stdout,
      );
      assert.deepEqual([dry.read, dry.copied, dry.skipped], [SESSIONS, SESSIONS, 0]);
      const redis = new RedisStore({ url: REDIS_URL, prefix });
      assert.equal(await redis.count(), 0, 'a dry run writes nothing');

      const first = await cli('--json', 'migrate', '--from', files.sqlite, '--to', files.redis);
      const copied = JSON.parse(first.stdout);
      assert.deepEqual([copied.read, copied.copied, copied.skipped, copied.destroyed], [SESSIONS, SESSIONS, 0, 0]);
      assert.ok(copied.perSecond > 0);
      // Not a terminal: plain progress lines on stderr, ending with the total.
      assert.match(
        first.stderr,
        new RegExp(`^migrate: ${SESSIONS} of ${SESSIONS} \\(100%\\) sessions, \\d+ sessions/s`, 'm'),
      );
      assert.equal(await redis.count(), SESSIONS);

      // A session changed on the new store (an app already serving from it) is newer than the source's copy.
      const app = new SessionEngine<{ n: number; user: string }>({ store: redis, ...engineOptions });
      const changed = app.session(cookies[0]?.cookie);
      await changed.set('n', 1000);
      await app.commit(changed);

      const again = JSON.parse((await cli('--json', 'migrate', '--from', files.sqlite, '--to', files.redis)).stdout);
      assert.deepEqual([again.copied, again.skipped], [0, SESSIONS], 'a re-run copies only what is missing or newer');
      assert.equal(await app.session(cookies[0]?.cookie).get('n'), 1000, 'and never overwrites newer data');
      await app.close();

      const second = JSON.parse((await cli('--json', 'migrate', '--from', files.redis, '--to', files.postgres)).stdout);
      assert.deepEqual([second.read, second.copied], [SESSIONS, SESSIONS]);
      assert.equal(JSON.parse((await cli('--config', files.postgres, '--json', 'count')).stdout).sessions, SESSIONS);

      const engine = new SessionEngine<{ n: number; user: string }>({
        store: new SqlStore({ url: PG_URL, table }),
        ...engineOptions,
      });
      try {
        for (const { cookie, user, n, createdAt } of cookies) {
          const session = engine.session(cookie);
          assert.equal(await session.get('user'), user, `the cookie of session ${n} logs in on PostgreSQL`);
          assert.equal(await session.get('n'), n === 0 ? 1000 : n);
          assert.equal(session.isNew, false);
          assert.equal(session.createdAt, createdAt, 'the creation time came along: the absolute timeout still counts');
        }
        const listed = await engine.listUserSessions('user-3');
        assert.equal(listed.length, 5, 'the user index came along');
        assert.equal(await engine.destroyUserSessions('user-3'), 5);
      } finally {
        await engine.close();
      }
    });
  },
);
