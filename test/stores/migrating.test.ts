// stores: redis postgres
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import type { Store } from '../../src/core/store.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { copySessions, MigratingStore, migratingStore } from '../../src/stores/migrating.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { needs } from '../support/stores.ts';

const PG_URL = process.env.TESSERA_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.TESSERA_REDIS_URL ?? 'redis://127.0.0.1:6379';
const secrets = ['migrating-test-secret-0123456789abcdefgh'];
const suffix = randomBytes(4).toString('hex');
const prefixes: string[] = [];
const tables: string[] = [];

after(async () => {
  const redis = createClient({ url: REDIS_URL });
  redis.on('error', () => {});
  await redis.connect();
  for (const prefix of prefixes) {
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await redis.del(keys);
    }
  }
  await redis.close();
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  for (const table of tables) await client.query(`DROP TABLE IF EXISTS ${table}`);
  await client.end();
});

let made = 0;
/** A PostgreSQL store on a table of its own and a Redis store under a prefix of its own. */
function pair(reverse = false): { old: () => Store; next: () => Store } {
  made++;
  const table = `tessera_migrating_${suffix}_${made}`;
  const prefix = `tessera-migrating-${suffix}-${made}:`;
  tables.push(table);
  prefixes.push(prefix);
  return {
    old: () => (reverse ? new RedisStore({ url: REDIS_URL, prefix }) : new SqlStore({ url: PG_URL, table })),
    next: () => (reverse ? new SqlStore({ url: PG_URL, table }) : new RedisStore({ url: REDIS_URL, prefix })),
  };
}

describe('migratingStore (PostgreSQL -> Redis)', needs('redis', 'postgres'), () => {
  // The wrapper as a store in its own right: over two empty stores it is the new store.
  runStoreConformance(
    { describe, it, beforeEach, afterEach },
    {
      name: 'migrating (PostgreSQL -> Redis)',
      createStore: () => {
        const { old, next } = pair();
        return migratingStore({ from: old(), to: next() });
      },
    },
  );

  it('reads through to the old store, copies on first touch, writes only to the new one, destroys in both', async () => {
    const { old, next } = pair();
    const before = new SessionEngine<{ user: string; n: number }>({ store: old(), secrets });
    const s = before.session(undefined);
    await s.set('user', 'ann');
    await s.setUser('ann');
    const cookie = (await before.commit(s)).setCookie?.split(';')[0];
    const key = s.key as string;
    await before.close();

    const [oldStore, newStore] = [old(), next()];
    const engine = new SessionEngine<{ user: string; n: number }>({
      store: migratingStore({ from: oldStore, to: newStore, closeStores: false }),
      secrets,
    });
    assert.equal(await newStore.get(key), null);
    const touched = engine.session(cookie);
    assert.equal(await touched.get('user'), 'ann', 'found in the old store');
    assert.deepEqual((await newStore.get(key))?.fields, (await oldStore.get(key))?.fields, 'and copied on that touch');
    await touched.set('n', 1);
    await engine.commit(touched);
    assert.equal((await oldStore.get(key))?.fields.n, undefined, 'the write went to the new store only');
    assert.equal(await engine.session(cookie).get('n'), 1);
    assert.deepEqual(
      (await engine.listUserSessions('ann')).map((e) => e.key),
      [key],
    );
    const logout = engine.session(cookie);
    await logout.destroy();
    await engine.commit(logout);
    assert.equal(await oldStore.get(key), null);
    assert.equal(await newStore.get(key), null);
    await engine.close();
    await Promise.all([oldStore.close(), newStore.close()]);
  });

  it('a regenerate destroys the old ID in the old store too: the pre-login cookie finds nothing', async () => {
    const { old, next } = pair();
    const before = new SessionEngine<{ cart: string[]; user: string }>({ store: old(), secrets });
    const s = before.session(undefined);
    await s.set('cart', ['book']);
    const cookie = (await before.commit(s)).setCookie?.split(';')[0];
    await before.close();
    const engine = new SessionEngine<{ cart: string[]; user: string }>({
      store: migratingStore({ from: old(), to: next() }),
      secrets,
    });
    const login = engine.session(cookie);
    await login.load();
    await login.regenerate();
    await login.set('user', 'bo');
    const fresh = (await engine.commit(login)).setCookie?.split(';')[0];
    assert.deepEqual(await engine.session(fresh).all(), { cart: ['book'], user: 'bo' });
    const stale = engine.session(cookie);
    assert.equal(await stale.get('cart'), undefined);
    assert.equal(stale.isNew, true);
    await engine.close();
  });

  for (const reverse of [false, true]) {
    it(`under load while the copy runs (${reverse ? 'Redis -> PostgreSQL' : 'PostgreSQL -> Redis'}): no session lost, no acknowledged write lost, no logout undone`, async (t) => {
      const { old, next } = pair(reverse);
      await underLoad(t, old, next);
    });
  }
});

/**
 * Yesterday's app on the old store, then every instance on migratingStore while the copy runs
 * over and over, then the new store alone: every session, every acknowledged write, every logout.
 */
async function underLoad(t: { diagnostic(message: string): void }, old: () => Store, next: () => Store): Promise<void> {
  const SESSIONS = 150;
  const WRITERS = 6;
  type Data = Record<string, unknown>;
  // Yesterday: the app on PostgreSQL.
  const before = new SessionEngine<Data>({ store: old(), secrets });
  const cookies: string[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const s = before.session(undefined);
    await s.set('origin', i);
    if (i % 2 === 0) await s.setUser(`user-${i % 7}`);
    cookies.push((await before.commit(s)).setCookie?.split(';')[0] as string);
  }
  await before.close();

  // Today: every instance on migratingStore, and the CLI's copy (its own connections) running.
  const engine = new SessionEngine<Data>({
    store: migratingStore({ from: old(), to: next() }),
    secrets,
    storeTimeoutMs: 15_000,
  });
  const [copyFrom, copyTo] = [old(), next()];
  const acknowledged = new Map<number, Map<string, unknown>>();
  const loggedOut = new Set<number>();
  const regenerated = new Map<number, string>();
  const refused: number[] = [];
  const load = async (i: number, round: number) => {
    const cookie = cookies[i] as string;
    const acks = acknowledged.get(i) ?? new Map<string, unknown>();
    acknowledged.set(i, acks);
    const writers = Array.from({ length: WRITERS }, async (_, j) => {
      const s = engine.session(cookie);
      const name = `r${round}w${j}`;
      await s.set(name, j);
      try {
        const result = await engine.commit(s);
        // A write to the session the cookie names (after a logout or login it makes a new one).
        if (result.write === 'patch' && !result.lost) acks.set(name, j);
      } catch (error) {
        if (!isSessionError(error, 'SESSION_MOVED')) throw error;
        refused.push(i);
      }
    });
    const others: Promise<void>[] = [];
    if (round !== 1) {
      // Logouts and logins in the middle round only.
    } else if (i % 5 === 1) {
      // A logout racing the writes: whatever they did, the session must stay gone.
      others.push(
        (async () => {
          const s = engine.session(cookie);
          await s.destroy();
          await engine.commit(s);
          loggedOut.add(i);
        })(),
      );
    } else if (i % 5 === 3) {
      // A login: a new ID; writes committed before it move with it, later ones are refused.
      others.push(
        (async () => {
          const s = engine.session(cookie);
          await s.load();
          await s.regenerate();
          await s.set('login', true);
          regenerated.set(i, (await engine.commit(s)).setCookie?.split(';')[0] as string);
        })(),
      );
    }
    await Promise.all([...writers, ...others]);
  };
  const busy = Array.from({ length: SESSIONS }, (_, i) => i).filter((i) => i % 5 !== 4);
  // The copy runs over and over while the load lasts, so that its reads, writes and re-reads
  // interleave with first touches, writes, logouts and logins of the same sessions.
  let loading = true;
  const copies = { runs: 0, read: 0, copied: 0, skipped: 0, destroyed: 0 };
  await Promise.all([
    (async () => {
      while (loading) {
        const pass = await copySessions({ from: copyFrom, to: copyTo, batchSize: 3 });
        copies.runs++;
        copies.read += pass.read;
        copies.copied += pass.copied;
        copies.skipped += pass.skipped;
        copies.destroyed += pass.destroyed;
      }
    })(),
    (async () => {
      // Three rounds in waves, so the copy's batches and the requests interleave.
      for (let round = 0; round < 3; round++) {
        for (let at = 0; at < busy.length; at += 15) {
          await Promise.all(busy.slice(at, at + 15).map((i) => load(i, round)));
        }
      }
      loading = false;
    })(),
  ]);
  assert.ok(copies.read > 0);
  t.diagnostic(`copies during the load: ${JSON.stringify(copies)}`);
  // The operator runs it again after the traffic: it must neither undo logouts nor overwrite writes.
  await copySessions({ from: copyFrom, to: copyTo, batchSize: 50 });
  await Promise.all([copyFrom.close(), copyTo.close(), engine.close()]);

  // Tomorrow: the new store alone.
  const after = new SessionEngine<Data>({ store: next(), secrets });
  const oldStore = old();
  try {
    for (let i = 0; i < SESSIONS; i++) {
      const cookie = cookies[i] as string;
      const acks = acknowledged.get(i) ?? new Map();
      if (loggedOut.has(i)) {
        const s = after.session(cookie);
        assert.equal(await s.get('origin'), undefined, `session ${i} was logged out and stays out`);
        assert.equal(s.isNew, true);
        assert.equal(await oldStore.get(s.key ?? engine.keyOf(cookie.split('=')[1]?.split('.')[0] ?? '')), null);
        continue;
      }
      const target = regenerated.get(i) ?? cookie;
      const data = await after.session(target).all();
      assert.equal(data.origin, i, `session ${i} is in the new store (its cookie works)`);
      for (const [name, value] of acks) assert.equal(data[name], value, `session ${i}: acknowledged ${name} kept`);
      if (regenerated.has(i)) {
        assert.equal(data.login, true);
        const stale = after.session(cookie);
        assert.equal(await stale.get('origin'), undefined, `session ${i}: the pre-login ID is gone`);
      }
    }
    const acked = [...acknowledged.values()].reduce((n, acks) => n + acks.size, 0);
    assert.ok(acked > SESSIONS, `the load acknowledged writes (${acked})`);
    t.diagnostic(`acknowledged writes: ${acked}; refused after a login: ${refused.length}`);
  } finally {
    await after.close();
    await oldStore.close();
  }
}

describe('migratingStore options', () => {
  it('refuses options it does not know, and a from or to that is not a store', () => {
    assert.throws(
      () => new MigratingStore({ from: new MemoryStore(), to: new MemoryStore(), closeStore: true } as never),
      (e) => isSessionError(e, 'INVALID_OPTIONS') && /closeStores/.test((e as Error).message),
    );
    assert.throws(
      () => migratingStore({ from: {} as never, to: new MemoryStore() }),
      (e) => isSessionError(e, 'INVALID_OPTIONS') && /from/.test((e as Error).message),
    );
  });
});
