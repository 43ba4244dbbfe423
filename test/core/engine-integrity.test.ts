// Issue 10, points 7-12: what the engine does with concurrent regenerates, lost and late writes,
// hostile keys, oversized records and implausible stored times. Store-level behaviour of `move`
// is in the conformance suite (tessera/testing), run on every store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import type { SessionOptions } from '../../src/core/options.ts';
import type { SessionRecord, Store } from '../../src/core/store.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';

type Data = Record<string, unknown>;
const secret = 'integrity-test-secret-0123456789abcdefgh';
const cookiePair = (setCookie: string | null) => setCookie?.split(';')[0] ?? '';
const idOf = (pair: string) => pair.split('=')[1]?.split('.')[0] ?? '';

function setup(options: Partial<SessionOptions> = {}) {
  const clock = { now: 1_700_000_000_000 };
  const now = () => clock.now;
  const memory = new MemoryStore({ now });
  const store = new CountingStore(memory);
  const engine = new SessionEngine<Data>({ store, secrets: [secret], now, ...options });
  return { clock, memory, store, engine };
}

async function start(engine: SessionEngine<Data>, data: Data = { user: 'alice' }): Promise<string> {
  const s = engine.session(undefined);
  for (const [k, v] of Object.entries(data)) await s.set(k, v);
  return cookiePair((await engine.commit(s)).setCookie);
}

/** A store with only the required methods: the engine's fallbacks do the rest (no `move`). */
class PlainStore implements Store {
  readonly name = 'plain';
  readonly records = new Map<string, SessionRecord>();
  async get(key: string) {
    const r = this.records.get(key);
    return r && r.expiresAt > Date.now() ? structuredClone(r) : null;
  }
  async set(key: string, record: SessionRecord) {
    this.records.set(key, structuredClone(record));
  }
  async destroy(key: string) {
    this.records.delete(key);
  }
  async close() {}
}

describe('regenerate moves the record (point 7)', () => {
  it('keeps a write committed between the login request loading and committing', async () => {
    const { engine, store } = setup();
    const cookie = await start(engine, { cart: ['book'] });
    const login = engine.session(cookie);
    await login.load();
    const other = engine.session(cookie);
    await other.set('theme', 'dark');
    assert.equal((await engine.commit(other)).write, 'patch');
    await login.regenerate();
    await login.setUser('alice');
    store.reset();
    const result = await engine.commit(login);
    assert.equal(result.write, 'create');
    assert.equal(store.calls.move, 1, 'one store move, no read-modify-write');
    const next = cookiePair(result.setCookie);
    const data = await engine.session(next).all();
    assert.deepEqual(data, { cart: ['book'], theme: 'dark' });
  });

  it('gives the regenerating request the writes it did not see, so a second save does not undo them', async () => {
    const { engine } = setup({ flush: 'manual' });
    const first = engine.session(undefined);
    await first.set('a', 1);
    await first.save();
    const cookie = cookiePair((await engine.commit(first)).setCookie);
    assert.ok(cookie);
    const login = engine.session(cookie);
    const view = (await login.load()).data;
    const other = engine.session(cookie);
    await other.set('b', 2);
    await other.save();
    await login.regenerate();
    await login.save();
    view.c = 3;
    await login.save();
    const next = cookiePair((await engine.commit(login)).setCookie);
    assert.deepEqual(await engine.session(next).all(), { a: 1, b: 2, c: 3 });
  });

  it('re-seals encrypted fields for the new ID, so they still open there', async () => {
    const keys = [{ id: 'k1', key: randomBytes(32) }];
    const { engine, memory } = setup({ encryption: { keys } });
    const cookie = await start(engine, { secret: 'value' });
    const login = engine.session(cookie);
    await login.regenerate();
    const next = cookiePair((await engine.commit(login)).setCookie);
    const key = engine.keyOf(idOf(next));
    assert.match((await memory.get(key))?.fields.secret ?? '', /^~1\.k1\./, 'still sealed at rest');
    assert.equal(await engine.session(next).get('secret'), 'value');
  });

  it('falls back to read, write and destroy on a store without move', async () => {
    const plain = new PlainStore();
    const engine = new SessionEngine<Data>({ store: plain, secrets: [secret] });
    const cookie = await start(engine, { a: 1 });
    const login = engine.session(cookie);
    await login.regenerate();
    await login.set('b', 2);
    const next = cookiePair((await engine.commit(login)).setCookie);
    assert.deepEqual(await engine.session(next).all(), { a: 1, b: 2 });
    assert.equal(plain.records.has(engine.keyOf(idOf(cookie))), false, 'the old record is gone');
    assert.equal(plain.records.size, 1);
  });

  it('a regenerate whose record was revoked meanwhile is lost, not revived under the new ID', async () => {
    const { engine, memory } = setup();
    const cookie = await start(engine, { user: 'alice' });
    const login = engine.session(cookie);
    await login.load();
    await engine.destroyByKey(engine.keyOf(idOf(cookie)));
    await login.regenerate();
    const result = await engine.commit(login);
    assert.equal(result.lost, true);
    assert.equal(await memory.count(), 0, 'nothing was written under the new ID');
  });
});

describe('a write that finds its record gone (point 8)', () => {
  it("'report' (default) says so in the result and a lost event", async () => {
    const { engine } = setup();
    const cookie = await start(engine);
    const slow = engine.session(cookie);
    await slow.load();
    const logout = engine.session(cookie);
    await logout.destroy();
    await engine.commit(logout);
    const lost: string[] = [];
    engine.on('lost', (_session, key) => {
      lost.push(key);
    });
    await slow.set('cart', ['pen']);
    const result = await engine.commit(slow);
    assert.equal(result.lost, true);
    assert.equal(result.write, 'none');
    assert.deepEqual(lost, [engine.keyOf(idOf(cookie))]);
  });

  it("'throw' fails the commit with SESSION_LOST (409)", async () => {
    const { engine } = setup({ onLostWrite: 'throw' });
    const cookie = await start(engine);
    const slow = engine.session(cookie);
    await slow.load();
    const logout = engine.session(cookie);
    await logout.destroy();
    await engine.commit(logout);
    await slow.set('cart', ['pen']);
    await assert.rejects(engine.commit(slow), (e) => isSessionError(e, 'SESSION_LOST') && e.status === 409);
  });

  it('an untouched session whose record is gone is not a lost write', async () => {
    const { engine, clock } = setup({ idleTimeoutSeconds: 100, touchAfterSeconds: 10 });
    const cookie = await start(engine);
    const reader = engine.session(cookie);
    await reader.get('user');
    await engine.destroyByKey(engine.keyOf(idOf(cookie)));
    clock.now += 20_000;
    const result = await engine.commit(reader);
    assert.equal(result.lost, false);
  });
});

describe('changes after the commit (point 9)', () => {
  it('set, delete, clear, setUser and regenerate after commit throw SESSION_COMMITTED', async () => {
    const { engine } = setup();
    const cookie = await start(engine);
    const s = engine.session(cookie);
    await s.get('user');
    await engine.commit(s);
    for (const [what, call] of [
      ['set', () => s.set('late', 1)],
      ['delete', () => s.delete('user')],
      ['clear', () => s.clear()],
      ['setUser', () => s.setUser('bob')],
      ['regenerate', () => s.regenerate()],
    ] as const) {
      await assert.rejects(call(), (e) => isSessionError(e, 'SESSION_COMMITTED'), what);
    }
    assert.equal(await engine.session(cookie).get('late'), undefined);
  });

  it('a change made through the data view after commit fails the next save instead of vanishing', async () => {
    const { engine } = setup();
    const cookie = await start(engine);
    const s = engine.session(cookie);
    const view = (await s.load()).data;
    await engine.commit(s);
    view.late = 1;
    await assert.rejects(s.save(), (e) => isSessionError(e, 'SESSION_COMMITTED'));
    // Reads and a second commit with nothing new are fine.
    assert.equal(await s.get('user'), 'alice');
  });

  it('a new session committed without changes can still be read, and a second commit is a no-op', async () => {
    const { engine } = setup();
    const s = engine.session(undefined);
    await s.get('x');
    await engine.commit(s);
    assert.deepEqual(await engine.commit(s), { setCookie: null, write: 'none', lost: false });
  });
});

describe('prototype keys (point 10)', () => {
  for (const name of ['__proto__', 'constructor', 'prototype']) {
    it(`refuses ${name} as a key with INVALID_KEY`, async () => {
      const { engine } = setup();
      const s = engine.session(undefined);
      await assert.rejects(s.set(name, { isAdmin: true }), (e) => isSessionError(e, 'INVALID_KEY'));
      await assert.rejects(s.delete(name), (e) => isSessionError(e, 'INVALID_KEY'));
      assert.equal(await s.get('isAdmin'), undefined);
    });
  }

  it('data held in a null-prototype object: no inherited keys are visible', async () => {
    const { engine } = setup();
    const s = engine.session(undefined);
    assert.equal(await s.get('toString'), undefined);
    assert.equal(await s.get('hasOwnProperty'), undefined);
    assert.equal(await s.has('toString'), false);
  });

  it('a reserved key put in through the data view fails the commit, and nothing is written', async () => {
    const { engine, memory } = setup();
    const s = engine.session(undefined);
    const view = (await s.load()).data;
    Object.defineProperty(view, 'constructor', { value: 'x', enumerable: true });
    await assert.rejects(engine.commit(s), (e) => isSessionError(e, 'INVALID_KEY'));
    assert.equal(await memory.count(), 0);
  });

  it('a stored record with a "__proto__" field is reported corrupt, and kept', async () => {
    const { engine, memory } = setup();
    const cookie = await start(engine);
    const key = engine.keyOf(idOf(cookie));
    const stored = (await memory.get(key)) as SessionRecord;
    // JSON.parse makes "__proto__" an own property, as a SQL JSON column or a document would.
    stored.fields = JSON.parse('{"user":"\\"alice\\"","__proto__":"{\\"isAdmin\\":true}"}');
    await memory.set(key, stored);
    const s = engine.session(cookie);
    await assert.rejects(s.get('isAdmin'), (e) => isSessionError(e, 'CORRUPT_RECORD'));
    assert.ok(await memory.get(key), 'the record is kept for inspection');
  });
});

describe('size (point 11)', () => {
  it('counts UTF-8 bytes: 90,003 bytes of "€" do not pass a 65,536-byte limit', async () => {
    const { engine, memory } = setup();
    const s = engine.session(undefined);
    await s.set('text', '€'.repeat(30_000));
    await assert.rejects(engine.commit(s), (e) => isSessionError(e, 'SESSION_TOO_LARGE'));
    assert.equal(await memory.count(), 0);
  });

  it('refuses to decode a stored record over the limit, before parsing it, under the corrupt-record policy', async () => {
    let parses = 0;
    const serializer = {
      stringify: (v: unknown) => JSON.stringify(v),
      parse: (t: string) => {
        parses++;
        return JSON.parse(t);
      },
    };
    const { engine, memory } = setup({ serializer });
    const cookie = await start(engine);
    const key = engine.keyOf(idOf(cookie));
    const stored = (await memory.get(key)) as SessionRecord;
    stored.fields.big = JSON.stringify('x'.repeat(2 * 1024 * 1024));
    await memory.set(key, stored);
    parses = 0;
    await assert.rejects(engine.session(cookie).get('user'), (e) => isSessionError(e, 'CORRUPT_RECORD'));
    assert.equal(parses, 0, 'nothing was parsed');
    assert.ok(await memory.get(key), 'the record is kept');
    // With 'reset', the visitor gets a new session and can write again.
    const reset = new SessionEngine<Data>({
      store: memory,
      secrets: [secret],
      onCorruptRecord: 'reset',
      now: () => 1_700_000_000_000,
    });
    const s = reset.session(cookie);
    assert.equal(await s.get('user'), undefined);
    await s.set('fresh', true);
    const result = await reset.commit(s);
    assert.equal(result.write, 'create');
  });
});

describe('implausible stored times (point 12)', () => {
  async function stored(change: (r: SessionRecord, now: number) => void, options: Partial<SessionOptions> = {}) {
    const ctx = setup({ idleTimeoutSeconds: 900, absoluteTimeoutSeconds: 7 * 86400, ...options });
    const cookie = await start(ctx.engine);
    const key = ctx.engine.keyOf(idOf(cookie));
    const record = (await ctx.memory.get(key)) as SessionRecord;
    change(record, ctx.clock.now);
    await ctx.memory.set(key, record);
    return { ...ctx, cookie, key };
  }

  it('a creation time in the future is corrupt', async () => {
    const { engine, cookie } = await stored((r, now) => {
      r.createdAt = now + 86_400_000;
      r.expiresAt = now + 60_000;
    });
    await assert.rejects(engine.session(cookie).get('user'), (e) => isSessionError(e, 'CORRUPT_RECORD'));
  });

  it('an expiry beyond now + the idle timeout is expired, and the record destroyed', async () => {
    const { engine, memory, cookie, key } = await stored((r, now) => {
      r.expiresAt = now + 365 * 86_400_000;
    });
    const s = engine.session(cookie);
    assert.equal(await s.get('user'), undefined);
    assert.equal(s.isNew, true);
    assert.equal(await memory.get(key), null);
  });

  it('an expiry beyond creation + the absolute timeout is expired', async () => {
    const { engine, cookie } = await stored(
      (r, now) => {
        r.createdAt = now - 7 * 86_400_000 + 1000;
        r.expiresAt = now + 900_000;
      },
      { idleTimeoutSeconds: 3600 },
    );
    assert.equal(await engine.session(cookie).get('user'), undefined);
  });

  it('a record written by these options loads, with a minute of clock skew tolerated', async () => {
    const { engine, cookie } = await stored((r, now) => {
      r.createdAt = now + 30_000;
      r.expiresAt = now + 900_000 + 30_000;
    });
    assert.equal(await engine.session(cookie).get('user'), 'alice');
  });
});
