import assert from 'node:assert/strict';
import { invalid } from '../core/check.ts';
import { SessionEngine } from '../core/engine.ts';
import { isSessionError } from '../core/errors.ts';
import { generateId, hashId } from '../core/ids.ts';
import { type Capability, type SessionRecord, type Store, supports } from '../core/store.ts';

/** What a runner passes to a test: node:test's `TestContext` and Vitest's context have `skip`. */
export interface TestContext {
  skip?(message?: string): void;
}

type Fn = (context?: TestContext) => void | Promise<void>;
type Hook = () => void | Promise<void>;

/**
 * The test functions of your runner. `node:test`, Vitest, Jest and Mocha all provide these
 * (pass `{ describe, it, beforeEach, afterEach }`).
 */
export interface TestApi {
  describe(name: string, fn: () => void): unknown;
  it(name: string, fn: Fn): unknown;
  beforeEach(fn: Hook): unknown;
  afterEach(fn: Hook): unknown;
}

/** Options of {@link runStoreConformance}. */
export interface ConformanceOptions {
  /** Shown in test names, e.g. `redis (cluster, ioredis)`. */
  name: string;
  /**
   * Makes a store for one test. Each store must be isolated from the others (a fresh key
   * prefix, table or index), because tests count and list what they wrote.
   */
  createStore(): Store | Promise<Store>;
  /** Undoes what `createStore` set up, after the store's own `close()`. */
  cleanup?(store: Store): void | Promise<void>;
  /**
   * Makes writes visible to listing and counting (e.g. an Elasticsearch refresh). Called before
   * `listByUser`, `count`, `destroyByUser` and `prune`. Never a sleep.
   */
  settle?(store: Store): void | Promise<void>;
  /**
   * Writes an undecodable record under `key` straight into the backend, bypassing the store,
   * so the suite can check that reading it fails with `CORRUPT_RECORD`.
   */
  writeCorruptRecord?(store: Store, key: string): Promise<void>;
  /** Run the test that waits for a record's native expiry (about 1.5 s). @default true */
  waitForExpiry?: boolean;
}

function record(fields: Record<string, string>, lifetimeMs = 60_000, userId: string | null = null): SessionRecord {
  const now = Date.now();
  return { fields, createdAt: now, expiresAt: now + lifetimeMs, userId };
}

const SUBJECT = { scope: 'testing', label: 'runStoreConformance' };

function newKey(): string {
  return hashId(generateId());
}

/**
 * The store conformance suite. A store is done when it passes all of it; the cases of a
 * capability the store lacks (by its methods, and `atomicPatch`) are reported as skipped.
 */
export function runStoreConformance(t: TestApi, options: ConformanceOptions): void {
  let current: Store | undefined;
  const settle = async () => {
    await options.settle?.(store());
  };
  const store = (): Store => {
    if (!current)
      throw invalid(SUBJECT, 'createStore', 'gave no store: it must return the store to test (or a promise of one)');
    return current;
  };
  /** The store with every optional method (tests call them only after `applies`). */
  const full = () => store() as Store & Required<Omit<Store, 'ready'>>;
  const release = async () => {
    // Nothing to close when createStore itself failed: its error is the one to see.
    const done = current;
    current = undefined;
    if (!done) return;
    await done.close();
    await options.cleanup?.(done);
  };
  /**
   * Whether a test of an optional capability applies; when it does not, the test is reported as
   * skipped (through the runner's context) rather than passed. The store is released here: a
   * runner may not run `afterEach` for a test that skipped itself (node:test 20 does not).
   */
  const applies = async (context: TestContext | undefined, ...needs: (Capability | 'atomicPatch')[]) => {
    const missing = needs.filter((need) =>
      need === 'atomicPatch' ? store().atomicPatch !== true : !supports(store(), need),
    );
    if (missing.length === 0) return true;
    const capability = missing.join(' and ');
    context?.skip?.(`the store does not implement ${capability}`);
    await release();
    return false;
  };

  t.describe(`store conformance: ${options.name}`, () => {
    t.beforeEach(async () => {
      current = undefined;
      current = await options.createStore();
    });
    t.afterEach(release);

    t.it('returns null for a key it never stored', async () => {
      assert.equal(await store().get(newKey()), null);
    });

    t.it('round-trips a record exactly', async () => {
      const key = newKey();
      const written = record({ plain: '"x"', unicode: '"żółw 🐢"', nested: '{"a":[1,2,{"b":null}]}', empty: '""' });
      written.userId = 'user-1';
      await store().set(key, written);
      const read = await store().get(key);
      assert.ok(read, 'the record is found');
      assert.deepEqual(read.fields, written.fields);
      assert.equal(read.createdAt, written.createdAt);
      assert.equal(read.expiresAt, written.expiresAt);
      assert.equal(read.userId, 'user-1');
    });

    t.it('keeps a record with no fields and no user', async () => {
      const key = newKey();
      await store().set(key, record({}));
      const read = await store().get(key);
      assert.ok(read);
      assert.deepEqual(read.fields, {});
      assert.equal(read.userId, null);
    });

    t.it('stores large records (100 fields, one of 60 KiB)', async () => {
      const key = newKey();
      const fields: Record<string, string> = {};
      for (let i = 0; i < 100; i++) fields[`field_${i}`] = JSON.stringify(`value ${i}`);
      fields.big = JSON.stringify('x'.repeat(60 * 1024));
      await store().set(key, record(fields));
      assert.deepEqual((await store().get(key))?.fields, fields);
    });

    t.it('set replaces the whole record', async () => {
      const key = newKey();
      await store().set(key, record({ a: '1', b: '2' }, 60_000, 'u1'));
      await store().set(key, record({ c: '3' }));
      const read = await store().get(key);
      assert.deepEqual(read?.fields, { c: '3' });
      assert.equal(read?.userId, null);
    });

    t.it('destroy removes a record, and destroying a missing one is not an error', async () => {
      const key = newKey();
      await store().set(key, record({ a: '1' }));
      await store().destroy(key);
      assert.equal(await store().get(key), null);
      await store().destroy(key);
      await store().destroy(newKey());
    });

    t.it('answers peek only with what get answers (if peek)', async (context?: TestContext) => {
      if (!(await applies(context, 'peek'))) return;
      const key = newKey();
      assert.equal(full().peek(key), undefined, 'a key never stored is not held');
      await store().set(key, record({ a: '1' }, 60_000, 'u1'));
      const read = await store().get(key);
      const held = full().peek(key);
      // Held or not (a store may hold only what it read), never anything but what get answers.
      if (held !== undefined) assert.deepEqual(held, read);
      if (supports(store(), 'patch')) {
        await full().patch(key, { set: { b: '2' }, unset: [], expiresAt: Date.now() + 60_000 });
        const after = full().peek(key);
        if (after !== undefined) assert.deepEqual(after, await store().get(key));
        assert.notDeepEqual(full().peek(key)?.fields, { a: '1' }, 'the record before the patch is not held');
      }
      await store().destroy(key);
      assert.equal(full().peek(key), undefined, 'a destroyed record is not held');
      await store().set(key, record({ a: '2' }, -1000));
      await store().get(key);
      assert.equal(full().peek(key), undefined, 'an expired record is not held');
    });

    t.it('never returns a record whose expiry has passed', async () => {
      const key = newKey();
      await store().set(key, record({ a: '1' }, -1000));
      assert.equal(await store().get(key), null);
    });

    if (options.waitForExpiry ?? true) {
      t.it('expires a record once its time has passed', async () => {
        const key = newKey();
        await store().get(key); // opens the connection first: the expiry below is not spent connecting
        const short = record({ a: '1' }, 1000);
        await store().set(key, short);
        assert.ok(await store().get(key), 'present before expiry');
        // Waiting for the expiry time itself is the point of this test, not a readiness check.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, short.expiresAt - Date.now()) + 300));
        assert.equal(await store().get(key), null);
      });

      t.it('keeps listing a session whose expiry was moved past its first one (if userIndex)', async (ctx) => {
        if (!(await applies(ctx, 'userIndex', 'patch'))) return;
        const user = `dave-${generateId().slice(0, 8)}`;
        const key = newKey();
        // A first call opens the store's connection, so that the short expiry below is not spent
        // connecting (with 700 ms and no such call, the touch once found the record expired, on
        // PostgreSQL during a loaded CI run).
        await store().get(key);
        const first = record({ a: '1' }, 1000, user);
        await store().set(key, first);
        assert.equal(await full().touch(key, Date.now() + 60_000), true);
        // Waiting past the first expiry is the point of this test, not a readiness check.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, first.expiresAt - Date.now()) + 300));
        await settle();
        assert.deepEqual(
          (await full().listByUser(user)).map((e) => e.key),
          [key],
        );
        assert.equal(await full().destroyByUser(user), 1);
        assert.equal(await store().get(key), null);
      });
    }

    t.it('touch never revives an expired record (if patch)', async (ctx) => {
      if (!(await applies(ctx, 'patch'))) return;
      const key = newKey();
      await store().set(key, record({ a: '1' }, -1000));
      assert.equal(await full().touch(key, Date.now() + 60_000), false);
      assert.equal(await store().get(key), null);
    });

    t.it('touch moves the expiry without changing data, and never recreates (if patch)', async (ctx) => {
      if (!(await applies(ctx, 'patch'))) return;
      const key = newKey();
      const first = record({ a: '1' }, 60_000, 'u');
      await store().set(key, first);
      const later = first.expiresAt + 120_000;
      assert.equal(await full().touch(key, later), true);
      const read = await store().get(key);
      assert.equal(read?.expiresAt, later);
      assert.deepEqual(read?.fields, { a: '1' });
      assert.equal(read?.userId, 'u');
      const missing = newKey();
      assert.equal(await full().touch(missing, later), false);
      assert.equal(await store().get(missing), null);
    });

    t.it('patch writes and removes only the named fields (if patch)', async (ctx) => {
      if (!(await applies(ctx, 'patch'))) return;
      const key = newKey();
      const first = record({ keep: '1', change: '2', drop: '3' });
      await store().set(key, first);
      const expiresAt = first.expiresAt + 5000;
      assert.equal(await full().patch(key, { set: { change: '22', add: '4' }, unset: ['drop'], expiresAt }), true);
      const read = await store().get(key);
      assert.deepEqual(read?.fields, { keep: '1', change: '22', add: '4' });
      assert.equal(read?.expiresAt, expiresAt);
      assert.equal(read?.createdAt, first.createdAt);
    });

    t.it('patch sets and clears the user, and leaves it when not named (if patch)', async (ctx) => {
      if (!(await applies(ctx, 'patch'))) return;
      const key = newKey();
      const first = record({ a: '1' });
      await store().set(key, first);
      await full().patch(key, { set: {}, unset: [], expiresAt: first.expiresAt, userId: 'alice' });
      assert.equal((await store().get(key))?.userId, 'alice');
      await full().patch(key, { set: { b: '2' }, unset: [], expiresAt: first.expiresAt });
      assert.equal((await store().get(key))?.userId, 'alice');
      await full().patch(key, { set: {}, unset: [], expiresAt: first.expiresAt, userId: null });
      assert.equal((await store().get(key))?.userId, null);
    });

    t.it('patch never recreates a missing or expired record (if patch)', async (ctx) => {
      if (!(await applies(ctx, 'patch'))) return;
      const missing = newKey();
      const change = { set: { a: '1' }, unset: [], expiresAt: Date.now() + 60_000 };
      assert.equal(await full().patch(missing, change), false);
      assert.equal(await store().get(missing), null);
      const expired = newKey();
      await store().set(expired, record({ a: '0' }, -1000));
      assert.equal(await full().patch(expired, change), false);
      assert.equal(await store().get(expired), null);
    });

    t.it('a destroyed record stays destroyed when a patch arrives after (if patch)', async (ctx) => {
      if (!(await applies(ctx, 'patch'))) return;
      const key = newKey();
      await store().set(key, record({ a: '1' }));
      await store().destroy(key);
      assert.equal(await full().patch(key, { set: { b: '2' }, unset: [], expiresAt: Date.now() + 60_000 }), false);
      assert.equal(await store().get(key), null);
    });

    t.it('keeps every field of 50 concurrent patches (if atomicPatch)', async (ctx) => {
      if (!(await applies(ctx, 'patch', 'atomicPatch'))) return;
      const key = newKey();
      const first = record({ base: '0' });
      await store().set(key, first);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          full().patch(key, { set: { [`k${i}`]: String(i) }, unset: [], expiresAt: first.expiresAt }),
        ),
      );
      const read = await store().get(key);
      assert.equal(Object.keys(read?.fields ?? {}).length, 51);
      for (let i = 0; i < 50; i++) assert.equal(read?.fields[`k${i}`], String(i));
    });

    t.it('concurrent patches racing a destroy never resurrect it (if atomicPatch)', async (ctx) => {
      if (!(await applies(ctx, 'patch', 'atomicPatch'))) return;
      const key = newKey();
      const first = record({ base: '0' });
      await store().set(key, first);
      const results = await Promise.all([
        store().destroy(key),
        ...Array.from({ length: 20 }, (_, i) =>
          full().patch(key, { set: { [`k${i}`]: '1' }, unset: [], expiresAt: first.expiresAt }),
        ),
      ]);
      assert.equal(await store().get(key), null);
      assert.ok(results.length === 21);
    });

    t.it('move keeps what was committed before it and leaves a forward (if move)', async (ctx) => {
      if (!(await applies(ctx, 'move', 'patch'))) return;
      const move = store().move as NonNullable<Store['move']>;
      const user = `erin-${generateId().slice(0, 8)}`;
      const from = newKey();
      const to = newKey();
      const first = record({ kept: '1', dropped: '2' }, 60_000, user);
      await store().set(from, first);
      // Another request's write, committed before the move.
      assert.equal(await full().patch(from, { set: { other: '"w"' }, unset: [], expiresAt: first.expiresAt }), true);
      const expiresAt = first.expiresAt + 1000;
      const moved = await move.call(
        store(),
        from,
        to,
        { set: { login: '"yes"' }, unset: ['dropped'], expiresAt, userId: user },
        Date.now() + 60_000,
      );
      assert.deepEqual(moved?.fields, { kept: '1', other: '"w"', login: '"yes"' });
      const read = await store().get(to);
      assert.deepEqual(read?.fields, { kept: '1', other: '"w"', login: '"yes"' });
      assert.equal(read?.createdAt, first.createdAt, 'the absolute timeout still counts from the first login');
      assert.equal(read?.expiresAt, expiresAt);
      assert.equal(read?.userId, user);
      assert.equal(await store().get(from), null, 'the old key reads as no session');
      const late = { set: { late: '1' }, unset: [], expiresAt };
      assert.equal(await full().patch(from, late), 'moved', 'a patch after the move is refused, not dropped');
      assert.equal(await full().touch(from, expiresAt), 'moved');
      assert.equal(await store().get(from), null, 'the refused patch wrote nothing');
      assert.equal(await move.call(store(), from, newKey(), late, Date.now() + 60_000), null, 'moved only once');
      assert.equal(await move.call(store(), newKey(), newKey(), late, Date.now() + 60_000), null);
      if (supports(store(), 'userIndex')) {
        await settle();
        assert.deepEqual(
          (await full().listByUser(user)).map((e) => e.key),
          [to],
        );
      }
    });

    t.it('move never moves a destroyed or expired record, and a destroy ends the forward (if move)', async (ctx) => {
      if (!(await applies(ctx, 'move', 'patch'))) return;
      const move = store().move as NonNullable<Store['move']>;
      const change = { set: {}, unset: [], expiresAt: Date.now() + 60_000 };
      const expired = newKey();
      await store().set(expired, record({ a: '1' }, -1000));
      assert.equal(await move.call(store(), expired, newKey(), change, Date.now() + 60_000), null);
      const destroyed = newKey();
      await store().set(destroyed, record({ a: '1' }));
      await store().destroy(destroyed);
      const target = newKey();
      assert.equal(await move.call(store(), destroyed, target, change, Date.now() + 60_000), null);
      assert.equal(await store().get(target), null, 'nothing was written at the new key');
      const from = newKey();
      await store().set(from, record({ a: '1' }));
      assert.ok(await move.call(store(), from, newKey(), change, Date.now() + 60_000));
      await store().destroy(from);
      assert.equal(await full().patch(from, change), false, 'after a destroy the old key is simply gone');
    });

    t.it('every patch racing a move is either moved with it or refused (if move)', async (ctx) => {
      if (!(await applies(ctx, 'move', 'patch'))) return;
      const move = store().move as NonNullable<Store['move']>;
      const from = newKey();
      const to = newKey();
      const first = record({ base: '0' });
      await store().set(from, first);
      const patches = Array.from({ length: 30 }, (_, i) =>
        full().patch(from, { set: { [`k${i}`]: String(i) }, unset: [], expiresAt: first.expiresAt }),
      );
      const moving = move.call(
        store(),
        from,
        to,
        { set: {}, unset: [], expiresAt: first.expiresAt },
        Date.now() + 60_000,
      );
      const outcomes = await Promise.all(patches);
      assert.ok(await moving);
      const read = await store().get(to);
      outcomes.forEach((outcome, i) => {
        assert.ok(outcome === true || outcome === 'moved', `patch ${i} got ${String(outcome)}`);
        if (outcome === true)
          assert.equal(read?.fields[`k${i}`], String(i), `patch ${i} was acknowledged, so it was moved`);
        else assert.equal(read?.fields[`k${i}`], undefined, `patch ${i} was refused, so it wrote nothing`);
      });
    });

    t.it('lists and revokes the sessions of one user (if userIndex)', async (ctx) => {
      if (!(await applies(ctx, 'userIndex'))) return;
      const alice = `alice-${generateId().slice(0, 8)}`;
      const bob = `bob-${generateId().slice(0, 8)}`;
      const aliceKeys = [newKey(), newKey(), newKey()];
      for (const key of aliceKeys) await store().set(key, record({ a: '1' }, 60_000, alice));
      const bobKey = newKey();
      await store().set(bobKey, record({ b: '1' }, 60_000, bob));
      await settle();
      const listed = await full().listByUser(alice);
      assert.deepEqual(listed.map((e) => e.key).sort(), [...aliceKeys].sort());
      for (const entry of listed) {
        assert.equal(entry.userId, alice);
        assert.ok(entry.expiresAt > Date.now());
      }
      assert.equal(await full().destroyByUser(alice), 3);
      await settle();
      for (const key of aliceKeys) assert.equal(await store().get(key), null);
      assert.deepEqual(await full().listByUser(alice), []);
      assert.ok(await store().get(bobKey), "another user's session is untouched");
      assert.equal((await full().listByUser(bob)).length, 1);
    });

    t.it('keeps the user index right through patch, destroy and expiry (if userIndex)', async (ctx) => {
      if (!(await applies(ctx, 'userIndex'))) return;
      const user = `carol-${generateId().slice(0, 8)}`;
      const moved = newKey();
      const destroyed = newKey();
      const expired = newKey();
      const later = newKey();
      await store().set(moved, record({ a: '1' }));
      await full().patch(moved, { set: {}, unset: [], expiresAt: Date.now() + 60_000, userId: user });
      await store().set(destroyed, record({ a: '1' }, 60_000, user));
      await store().destroy(destroyed);
      await store().set(expired, record({ a: '1' }, -1000, user));
      await store().set(later, record({ a: '1' }, 60_000, user));
      await full().patch(later, { set: {}, unset: [], expiresAt: Date.now() + 60_000, userId: null });
      await settle();
      assert.deepEqual(
        (await full().listByUser(user)).map((e) => e.key),
        [moved],
      );
    });

    t.it('counts live records (if count)', async (ctx) => {
      if (!(await applies(ctx, 'count'))) return;
      for (let i = 0; i < 3; i++) await store().set(newKey(), record({ i: String(i) }));
      await store().set(newKey(), record({ gone: '1' }, -1000));
      await settle();
      assert.equal(await full().count(), 3);
    });

    t.it('prune deletes expired records and keeps live ones (if prune)', async (ctx) => {
      if (!(await applies(ctx, 'prune'))) return;
      const live = newKey();
      await store().set(live, record({ a: '1' }));
      for (let i = 0; i < 5; i++) await store().set(newKey(), record({ i: String(i) }, -1000));
      await settle();
      assert.equal(await full().prune(), 5);
      assert.ok(await store().get(live));
      await settle();
      assert.equal(await full().prune(), 0);
    });

    t.it('enumerates every live session with its record, in batches (if enumerate)', async (ctx) => {
      if (!(await applies(ctx, 'enumerate'))) return;
      const user = `fay-${generateId().slice(0, 8)}`;
      const written = new Map<string, SessionRecord>();
      for (let i = 0; i < 23; i++) {
        const key = newKey();
        const r = record({ i: String(i), text: '"żółw"' }, 60_000 + i, i % 3 === 0 ? user : null);
        await store().set(key, r);
        written.set(key, r);
      }
      await store().set(newKey(), record({ gone: '1' }, -1000));
      if (supports(store(), 'move')) {
        // A move leaves a forward at its old key, which is not a session.
        const from = newKey();
        await store().set(from, record({ moved: '1' }));
        const to = newKey();
        const change = { set: {}, unset: [], expiresAt: Date.now() + 60_000 };
        await (store().move as NonNullable<Store['move']>).call(store(), from, to, change, Date.now() + 60_000);
        written.set(to, { ...record({ moved: '1' }), expiresAt: change.expiresAt });
      }
      await settle();
      const seen = new Map<string, SessionRecord>();
      for await (const batch of full().entries({ batchSize: 5 })) {
        assert.ok(batch.length >= 1 && batch.length <= 5, `a batch of ${batch.length} (batchSize 5)`);
        for (const { key, record: r } of batch) seen.set(key, r);
      }
      assert.deepEqual([...seen.keys()].sort(), [...written.keys()].sort(), 'every live session, and nothing else');
      for (const [key, r] of written) {
        const found = seen.get(key);
        assert.deepEqual(found?.fields, r.fields);
        assert.equal(found?.expiresAt, r.expiresAt);
        assert.equal(found?.userId, r.userId);
      }
      const first = [...written.keys()][0] as string;
      assert.equal(seen.get(first)?.createdAt, written.get(first)?.createdAt);
    });

    t.it('enumerates an empty store as no batch (if enumerate)', async (ctx) => {
      if (!(await applies(ctx, 'enumerate'))) return;
      const batches: unknown[] = [];
      for await (const batch of full().entries()) batches.push(batch);
      assert.deepEqual(batches, []);
    });

    t.it('setIfNewer writes a missing or older record, never over a newer one (if setIfNewer)', async (ctx) => {
      if (!(await applies(ctx, 'setIfNewer'))) return;
      const user = `gil-${generateId().slice(0, 8)}`;
      const key = newKey();
      const older = record({ v: '"old"' }, 60_000, user);
      assert.equal(await full().setIfNewer(key, older), true, 'a missing record is written');
      assert.deepEqual((await store().get(key))?.fields, { v: '"old"' });
      assert.equal(await full().setIfNewer(key, older), false, 'the same record again is not');
      const newer = { ...older, fields: { v: '"new"' }, expiresAt: older.expiresAt + 5000 };
      assert.equal(await full().setIfNewer(key, newer), true, 'a record that expires later replaces it');
      assert.equal(await full().setIfNewer(key, older), false, 'an older one never does');
      const read = await store().get(key);
      assert.deepEqual(read?.fields, { v: '"new"' });
      assert.equal(read?.expiresAt, newer.expiresAt);
      assert.equal(read?.createdAt, older.createdAt);
      const expired = newKey();
      await store().set(expired, record({ v: '"dead"' }, -1000));
      assert.equal(await full().setIfNewer(expired, older), true, 'an expired record is replaced');
      assert.deepEqual((await store().get(expired))?.fields, { v: '"old"' });
      if (supports(store(), 'userIndex')) {
        await settle();
        assert.deepEqual((await full().listByUser(user)).map((e) => e.key).sort(), [key, expired].sort());
      }
      if (supports(store(), 'move')) {
        const from = newKey();
        await store().set(from, record({ a: '1' }));
        const change = { set: {}, unset: [], expiresAt: Date.now() + 60_000 };
        await (store().move as NonNullable<Store['move']>).call(store(), from, newKey(), change, Date.now() + 60_000);
        assert.equal(await full().setIfNewer(from, record({ a: '1' }, 120_000)), false, 'a forward is kept');
        assert.equal(await store().get(from), null);
      }
    });

    t.it('concurrent setIfNewer of one key keeps the newest record (if setIfNewer)', async (ctx) => {
      if (!(await applies(ctx, 'setIfNewer'))) return;
      const key = newKey();
      const base = record({ v: '0' });
      const versions = Array.from({ length: 20 }, (_, i) => ({
        ...base,
        fields: { v: String(i) },
        expiresAt: base.expiresAt + i,
      }));
      const results = await Promise.all(versions.map((r) => full().setIfNewer(key, r)));
      assert.ok(results.some(Boolean));
      const read = await store().get(key);
      assert.deepEqual(read?.fields, { v: '19' });
      assert.equal(read?.expiresAt, base.expiresAt + 19);
    });

    if (options.writeCorruptRecord) {
      const writeCorrupt = options.writeCorruptRecord;
      t.it('reports an undecodable record as CORRUPT_RECORD and keeps it', async () => {
        const key = newKey();
        await writeCorrupt(store(), key);
        await assert.rejects(store().get(key), (error) => isSessionError(error, 'CORRUPT_RECORD'));
        // Reading it did not delete it: a second read fails the same way.
        await assert.rejects(store().get(key), (error) => isSessionError(error, 'CORRUPT_RECORD'));
      });
    }

    t.it('close() can be called twice, after use', async () => {
      const extra = await options.createStore();
      assert.equal(await extra.get(newKey()), null);
      await extra.close();
      await extra.close();
      await options.cleanup?.(extra);
    });

    t.describe('through the engine', () => {
      const secrets = ['conformance-secret-0123456789abcdef'];
      const cookieOf = (setCookie: string | null) => (setCookie ? setCookie.split(';')[0] : undefined);

      t.it('keeps every key of 200 concurrent requests on one session (if atomicPatch)', async (ctx) => {
        if (!(await applies(ctx, 'patch', 'atomicPatch'))) return;
        const engine = new SessionEngine<Record<string, unknown>>({ store: store(), secrets, storeTimeoutMs: 10_000 });
        const first = engine.session(undefined);
        await first.set('start', true);
        const cookie = cookieOf((await engine.commit(first)).setCookie);
        assert.ok(cookie);
        await Promise.all(
          Array.from({ length: 200 }, async (_, i) => {
            const s = engine.session(cookie);
            await s.set(`key${i}`, i);
            await engine.commit(s);
          }),
        );
        const check = engine.session(cookie);
        const data = await check.all();
        for (let i = 0; i < 200; i++) assert.equal(data[`key${i}`], i, `key${i} kept`);
      });

      t.it('a login keeps the writes that other requests committed before it (if move)', async (ctx) => {
        if (!(await applies(ctx, 'move', 'patch'))) return;
        const engine = new SessionEngine<Record<string, unknown>>({ store: store(), secrets, storeTimeoutMs: 10_000 });
        const first = engine.session(undefined);
        await first.set('cart', ['book']);
        const cookie = cookieOf((await engine.commit(first)).setCookie);
        const login = engine.session(cookie);
        await login.load();
        // 20 requests change their own keys and are answered before the login commits.
        await Promise.all(
          Array.from({ length: 20 }, async (_, i) => {
            const s = engine.session(cookie);
            await s.set(`w${i}`, i);
            const result = await engine.commit(s);
            assert.equal(result.write, 'patch');
          }),
        );
        await login.regenerate();
        await login.setUser('alice');
        await login.set('user', 'alice');
        const result = await engine.commit(login);
        const next = cookieOf(result.setCookie);
        assert.ok(next && next !== cookie, 'the login sends a new session cookie');
        const data = await engine.session(next).all();
        assert.deepEqual(data.cart, ['book']);
        assert.equal(data.user, 'alice');
        for (let i = 0; i < 20; i++) assert.equal(data[`w${i}`], i, `acknowledged write w${i} kept`);
        const stale = engine.session(cookie);
        assert.equal(stale.isNew, true);
        assert.equal(await stale.get('user'), undefined, 'the old ID gives no access to the new session');
      });

      t.it('requests racing a login are kept or refused, never acknowledged and dropped (if move)', async (ctx) => {
        if (!(await applies(ctx, 'move', 'patch'))) return;
        const engine = new SessionEngine<Record<string, unknown>>({ store: store(), secrets, storeTimeoutMs: 10_000 });
        const first = engine.session(undefined);
        await first.set('start', true);
        const cookie = cookieOf((await engine.commit(first)).setCookie);
        const writers = Array.from({ length: 20 }, () => engine.session(cookie));
        const login = engine.session(cookie);
        await Promise.all([login.load(), ...writers.map((s) => s.load())]);
        await login.regenerate();
        await login.setUser('bob');
        const commits = await Promise.allSettled([
          engine.commit(login),
          ...writers.map(async (s, i) => {
            await s.set(`w${i}`, i);
            return engine.commit(s);
          }),
        ]);
        const [loginCommit, ...writerCommits] = commits;
        assert.equal(loginCommit?.status, 'fulfilled');
        const next = cookieOf(loginCommit?.status === 'fulfilled' ? loginCommit.value.setCookie : null);
        const data = await engine.session(next).all();
        assert.equal(data.start, true);
        writerCommits.forEach((outcome, i) => {
          if (outcome.status === 'fulfilled') {
            assert.equal(outcome.value.lost, false, `writer ${i} was answered without losing its write`);
            assert.equal(data[`w${i}`], i, `writer ${i} was acknowledged, so its write is in the new session`);
          } else {
            assert.ok(isSessionError(outcome.reason, 'SESSION_MOVED'), `writer ${i} failed with ${outcome.reason}`);
            assert.equal(data[`w${i}`], undefined);
          }
        });
        // A request still holding the old ID commits after the login: refused, and its response
        // does not clear the cookie (that would log the browser out of its new session).
        const late = engine.session(cookie);
        await late.load();
        assert.equal(late.isNew, true, 'the old ID reads as no session');
      });

      t.it(
        'a request that loaded before a login and writes after it is refused with SESSION_MOVED (if move)',
        async (ctx) => {
          if (!(await applies(ctx, 'move', 'patch'))) return;
          const engine = new SessionEngine<Record<string, unknown>>({
            store: store(),
            secrets,
            storeTimeoutMs: 10_000,
          });
          const first = engine.session(undefined);
          await first.set('start', true);
          const cookie = cookieOf((await engine.commit(first)).setCookie);
          const slow = engine.session(cookie);
          const idle = engine.session(cookie);
          await Promise.all([slow.load(), idle.load()]);
          const login = engine.session(cookie);
          await login.regenerate();
          const next = cookieOf((await engine.commit(login)).setCookie);
          await slow.set('late', 1);
          await assert.rejects(engine.commit(slow), (error) => isSessionError(error, 'SESSION_MOVED'));
          const idleResult = await engine.commit(idle);
          assert.equal(idleResult.setCookie, null, 'an unchanged request with the old ID sends no cookie');
          assert.equal((await engine.session(next).all()).late, undefined);
        },
      );

      t.it('a session’s own lifetime (remember me) sets its stored expiry and its cookie', async () => {
        const engine = new SessionEngine<Record<string, unknown>>({
          store: store(),
          secrets,
          idleTimeoutSeconds: 600,
          rememberMe: { idleTimeoutSeconds: 86_400, absoluteTimeoutSeconds: 2 * 86_400 },
        });
        const login = engine.session(undefined);
        await login.set('user', 'alice');
        await login.rememberMe(true);
        const remembered = await engine.commit(login);
        const cookie = cookieOf(remembered.setCookie);
        const stored = await store().get(login.key as string);
        assert.ok(stored, 'the session is stored');
        const day = Date.now() + 86_400_000;
        assert.ok(Math.abs(stored.expiresAt - day) < 60_000, `stored expiry ${stored.expiresAt} is a day away`);
        assert.match(remembered.setCookie ?? '', /Expires=/, 'a remembered session gets a persistent cookie');
        // A later request follows the session's own lifetime: its touch moves the expiry a day on.
        const next = engine.session(cookie);
        assert.equal(await next.get('user'), 'alice');
        assert.deepEqual(next.lifetime, {
          idleTimeoutSeconds: 86_400,
          absoluteTimeoutSeconds: 172_800,
          persistent: true,
        });
        await next.rememberMe(false);
        const forgotten = await engine.commit(next);
        assert.doesNotMatch(forgotten.setCookie ?? '', /Expires=/, 'not remembered: a browser-session cookie');
        assert.ok(forgotten.setCookie, 'the cookie is sent again when its persistence changes');
        const after = await store().get(next.key as string);
        assert.ok(after && after.expiresAt <= Date.now() + 600_000 + 1000, 'back to the engine’s idle timeout');
        assert.equal((await engine.session(cookie).all()).user, 'alice');
      });

      if (options.waitForExpiry ?? true) {
        t.it('the store’s own expiry ends a session at its own idle timeout', async () => {
          const engine = new SessionEngine<Record<string, unknown>>({
            store: store(),
            secrets,
            idleTimeoutSeconds: 600,
          });
          // Opens the store's connection first, so the short timeout below is not spent connecting.
          await store().get(newKey());
          const s = engine.session(undefined);
          await s.set('a', 1);
          await s.setLifetime({ idleTimeoutSeconds: 1 });
          const cookie = cookieOf((await engine.commit(s)).setCookie);
          const key = s.key as string;
          const stored = await store().get(key);
          assert.ok(stored, 'present before its idle timeout');
          // Waiting past the session's own timeout is the point of this test, not a readiness check.
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, stored.expiresAt - Date.now()) + 300));
          assert.equal(await store().get(key), null, 'the store expired it by the session’s own timeout');
          assert.equal(await engine.session(cookie).get('a'), undefined);
        });
      }

      t.it('records the login time: authenticatedWithin', async () => {
        const engine = new SessionEngine<Record<string, unknown>>({ store: store(), secrets });
        const anonymous = engine.session(undefined);
        await anonymous.set('a', 1);
        const anonymousCookie = cookieOf((await engine.commit(anonymous)).setCookie);
        assert.equal(await engine.session(anonymousCookie).authenticatedWithin(3600), false, 'no login, no time');
        const login = engine.session(anonymousCookie);
        await login.regenerate();
        await login.setUser(`fiona-${generateId().slice(0, 8)}`);
        const cookie = cookieOf((await engine.commit(login)).setCookie);
        const later = engine.session(cookie);
        assert.equal(await later.authenticatedWithin(300), true, 'the login time came back from the store');
        assert.ok(Math.abs((later.authenticatedAt ?? 0) - Date.now()) < 60_000);
        const logout = engine.session(cookie);
        await logout.setUser(null);
        await engine.commit(logout);
        assert.equal(await engine.session(cookie).authenticatedWithin(300), false, 'untied from its user: no login');
      });

      t.it('a flash message is shown by the next request only, beside concurrent writes', async () => {
        const engine = new SessionEngine<Record<string, unknown>>({ store: store(), secrets });
        const first = engine.session(undefined);
        await first.set('count', 0);
        const cookie = cookieOf((await engine.commit(first)).setCookie);
        const post = engine.session(cookie);
        await post.flash('notice' as never, 'saved' as never);
        assert.equal(await post.flashed('notice' as never), undefined, 'not shown by the request that left it');
        await engine.commit(post);
        const redirected = engine.session(cookie);
        assert.equal(await redirected.flashed('notice' as never), 'saved');
        await redirected.set('count', 1);
        const other = engine.session(cookie);
        await other.set('other', true);
        await engine.commit(redirected);
        await engine.commit(other);
        const third = engine.session(cookie);
        assert.equal(await third.flashed('notice' as never), undefined, 'gone after one request');
        assert.deepEqual(await third.all(), { count: 1, other: true }, 'flash messages are not data');
        await engine.commit(third);
      });

      t.it('lists a user’s devices, marks the current one, and ends the others (if userIndex)', async (ctx) => {
        if (!(await applies(ctx, 'userIndex'))) return;
        const engine = new SessionEngine<Record<string, unknown>>({ store: store(), secrets, devices: { ip: 'full' } });
        const user = `gus-${generateId().slice(0, 8)}`;
        const devices = [
          { userAgent: 'Firefox/140', ip: '192.0.2.10', label: 'laptop' },
          { userAgent: 'AcmeApp/2 iOS', ip: '2001:db8::7', label: 'phone' },
          { userAgent: 'curl/8', ip: '198.51.100.4', label: undefined },
        ];
        const cookies: (string | undefined)[] = [];
        for (const { label, ...client } of devices) {
          const s = engine.session(undefined, client);
          await s.regenerate();
          await s.setUser(user, label === undefined ? {} : { label });
          cookies.push(cookieOf((await engine.commit(s)).setCookie));
        }
        await settle();
        const phone = engine.session(cookies[1]);
        const listed = await phone.listUserSessions();
        assert.equal(listed.length, 3);
        const mine = listed.filter((entry) => entry.current);
        assert.equal(mine.length, 1, 'exactly one is marked current');
        assert.equal(mine[0]?.key, phone.key);
        assert.deepEqual(
          listed.map((entry) => [entry.userAgent, entry.ip, entry.label]).sort(),
          devices.map((d) => [d.userAgent, d.ip, d.label ?? null]).sort(),
        );
        for (const entry of listed) {
          assert.equal(entry.userId, user);
          assert.ok(entry.authenticatedAt !== null && Math.abs(entry.authenticatedAt - Date.now()) < 60_000);
          assert.ok(entry.lastSeenAt >= entry.createdAt && entry.lastSeenAt <= Date.now());
        }
        assert.equal(await phone.destroyOtherSessions(), 2);
        await settle();
        assert.deepEqual(
          (await engine.listUserSessions(user)).map((entry) => entry.key),
          [phone.key],
        );
        assert.equal(await engine.session(cookies[0]).get('user'), undefined, 'the laptop is logged out');
        assert.equal((await engine.session(cookies[1]).listUserSessions()).length, 1, 'the phone is not');
      });

      t.it('maxSessionsPerUser ends the oldest, or refuses the new login (if userIndex)', async (ctx) => {
        if (!(await applies(ctx, 'userIndex'))) return;
        // A clock a few ms ahead per login, so that the three creation times differ.
        let ahead = 0;
        const ending = new SessionEngine<Record<string, unknown>>({
          store: store(),
          secrets,
          maxSessionsPerUser: 2,
          now: () => Date.now() + ahead,
        });
        const user = `hana-${generateId().slice(0, 8)}`;
        const keys: string[] = [];
        for (let i = 0; i < 3; i++) {
          ahead = i * 10;
          const s = ending.session(undefined);
          await s.setUser(user);
          await ending.commit(s);
          keys.push(s.key as string);
          await settle();
        }
        const left = (await ending.listUserSessions(user)).map((entry) => entry.key).sort();
        assert.deepEqual(left, keys.slice(1).sort(), 'the oldest session was ended');
        assert.equal(await store().get(keys[0] as string), null);

        const refusing = new SessionEngine<Record<string, unknown>>({
          store: store(),
          secrets,
          maxSessionsPerUser: 2,
          onMaxSessions: 'refuse',
        });
        const late = refusing.session(undefined);
        await late.set('a', 1);
        await assert.rejects(late.setUser(user), (error) => isSessionError(error, 'TOO_MANY_SESSIONS'));
        assert.equal(late.userId, null, 'the refused login changed nothing');
        await refusing.commit(late);
        await settle();
        assert.equal((await refusing.listUserSessions(user)).length, 2);
      });

      t.it('a session carried in an Authorization header round-trips, regenerates and ends', async () => {
        const engine = new SessionEngine<Record<string, unknown>>({
          store: store(),
          secrets,
          transport: { header: 'authorization' },
        });
        const bearer = (token: string | null | undefined) => `Bearer ${token}`;
        const first = engine.session(undefined);
        await first.set('user', 'alice');
        const created = await engine.commit(first);
        assert.equal(created.setCookie, null, 'no cookie');
        assert.ok(created.token);
        const login = engine.session(bearer(created.token));
        assert.equal(await login.get('user'), 'alice');
        await login.regenerate();
        const moved = await engine.commit(login);
        assert.ok(moved.token && moved.token !== created.token, 'a regenerate hands out a new value');
        assert.equal(await engine.session(bearer(created.token)).get('user'), undefined, 'the old value is dead');
        const logout = engine.session(bearer(moved.token));
        await logout.destroy();
        assert.equal((await engine.commit(logout)).token, '', 'an empty value tells the client to drop it');
        assert.equal(await engine.session(bearer(moved.token)).get('user'), undefined);
      });

      t.it('a stored record that does not fit the engine’s schema is a corrupt record, kept', async () => {
        // A Standard Schema written out by hand (any validation library's would do): `count` must be a number.
        const schema = {
          '~standard': {
            version: 1 as const,
            vendor: 'conformance',
            validate: (value: unknown) => {
              const count = (value as { count?: unknown }).count;
              return count === undefined || typeof count === 'number'
                ? { value }
                : { issues: [{ message: 'must be a number', path: ['count'] }] };
            },
          },
        };
        const lax = new SessionEngine<Record<string, unknown>>({ store: store(), secrets });
        const first = lax.session(undefined);
        await first.set('count', 'many');
        const cookie = cookieOf((await lax.commit(first)).setCookie);
        const strict = new SessionEngine<Record<string, unknown>>({ store: store(), secrets, schema });
        await assert.rejects(strict.session(cookie).get('count'), (error) => isSessionError(error, 'CORRUPT_RECORD'));
        const resetting = new SessionEngine<Record<string, unknown>>({
          store: store(),
          secrets,
          schema,
          onCorruptRecord: 'reset',
        });
        const fresh = resetting.session(cookie);
        assert.equal(await fresh.get('count'), undefined, 'reset: a new session');
        await assert.rejects(fresh.set('count', 'more'), (error) => isSessionError(error, 'INVALID_DATA'));
        assert.equal((await lax.session(cookie).all()).count, 'many', 'the record is kept');
      });

      t.it('a slow request finishing after a logout does not bring the session back', async () => {
        const engine = new SessionEngine<Record<string, unknown>>({ store: store(), secrets });
        const login = engine.session(undefined);
        await login.set('user', 'alice');
        const cookie = cookieOf((await engine.commit(login)).setCookie);
        const slow = engine.session(cookie);
        await slow.load();
        const logout = engine.session(cookie);
        await logout.destroy();
        const logoutResult = await engine.commit(logout);
        assert.match(logoutResult.setCookie ?? '', /Expires=Thu, 01 Jan 1970/);
        await slow.set('cart', ['book']);
        let lostEvents = 0;
        engine.on('lost', () => {
          lostEvents++;
        });
        const slowResult = await engine.commit(slow);
        assert.equal(slowResult.write, 'none');
        assert.equal(slowResult.lost, true, 'the commit result says the changes were lost');
        assert.equal(lostEvents, 1, 'and a lost event was emitted');
        assert.match(
          slowResult.setCookie ?? '',
          /Expires=Thu, 01 Jan 1970/,
          'the cookie of the ended session is cleared',
        );
        await settle();
        const after = engine.session(cookie);
        assert.equal(await after.get('user'), undefined);
        assert.equal(after.isNew, true);
        assert.equal(await store().get(engine.keyOf(cookie?.split('=')[1]?.split('.')[0] ?? '')), null);
      });
    });
  });
}

export { CountingStore, type StoreCallCounts } from './counting-store.ts';
