import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { FieldCodec } from '../../src/core/codec.ts';
import { SessionEngine, type SessionEvents } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { syncCrypto } from '../../src/core/ids.ts';
import type { SessionOptions } from '../../src/core/options.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';

type Data = Record<string, unknown>;
const secret = 'engine-test-secret-0123456789abcdefghij';

function setup(options: Partial<SessionOptions> = {}) {
  const clock = { now: 1_700_000_000_000 };
  const now = () => clock.now;
  const memory = new MemoryStore({ now });
  const store = new CountingStore(memory);
  const engine = new SessionEngine<Data>({ store, secrets: [secret], now, ...options });
  /** Another engine on the same store and clock, as another process would be. */
  const sibling = (more: Partial<SessionOptions>) =>
    new SessionEngine<Data>({ store: memory, secrets: [secret], now, ...more });
  return { clock, memory, store, engine, sibling };
}

/** The store key of an ID, computed here (engine.keyOf is synchronous: Node's path only; see engine-web-crypto.test.ts). */
const keyOf = (id: string) => createHash('sha256').update(id).digest('base64url');
/** Encryption at rest needs node:crypto: skipped where the file runs on the Web Crypto path. */
const needsNodeCrypto = { skip: !syncCrypto && 'encryption at rest needs node:crypto' };

const cookiePair = (setCookie: string | null) => setCookie?.split(';')[0] ?? '';
const idOf = (pair: string) => pair.split('=')[1]?.split('.')[0] ?? '';

async function login(engine: SessionEngine<Data>, data: Data = { user: 'alice' }) {
  const s = engine.session(undefined);
  for (const [k, v] of Object.entries(data)) await s.set(k, v);
  return cookiePair((await engine.commit(s)).setCookie);
}

describe('options', () => {
  const store = new MemoryStore();
  const bad: Array<[string, Partial<SessionOptions>]> = [
    ['no secret', { secrets: [] }],
    ['short secret', { secrets: ['short'] }],
    ['tag under 128 bits', { tagBytes: 10 }],
    ['unknown option', { expire: 5 } as Partial<SessionOptions>],
    ['negative idle timeout', { idleTimeoutSeconds: -1 }],
    ['bad flush mode', { flush: 'lazy' as 'end' }],
    ['__Host- cookie with a domain', { cookie: { name: '__Host-sid', domain: 'example.com' } }],
    ['SameSite=None without Secure', { cookie: { sameSite: 'none', secure: false } }],
    ['cookie name with a space', { cookie: { name: 'my sid' } }],
    ['touch interval over idle timeout', { idleTimeoutSeconds: 60, touchAfterSeconds: 120 }],
    ['32-byte key of the wrong size', { encryption: { keys: [{ id: 'k1', key: Buffer.alloc(16) }] } }],
  ];
  for (const [what, options] of bad) {
    it(`refuses ${what} with INVALID_OPTIONS`, () => {
      assert.throws(
        () => new SessionEngine({ store, secrets: [secret], ...options }),
        (e) => isSessionError(e, 'INVALID_OPTIONS'),
      );
    });
  }

  it('names the encryption key that is wrong, and what is wrong with it, never echoing a key', needsNodeCrypto, () => {
    const refused: Array<[unknown, string]> = [
      [
        [{ id: 'k1', key: Buffer.alloc(16) }],
        'SessionEngine: encryption.keys[0].key must be 32 bytes: a Buffer, or a base64 or base64url string of 32 bytes, got a Buffer of 16 bytes',
      ],
      [
        [
          { id: 'k1', key: Buffer.alloc(32) },
          { id: 'k 2', key: 'c2hvcnQtYnV0LXNlY3JldA==' },
        ],
        'SessionEngine: encryption.keys[1].id must be 1-32 of [A-Za-z0-9_-], got "k 2"',
      ],
      [
        [{ id: 'k1', key: 'c2hvcnQtYnV0LXNlY3JldA==' }],
        'SessionEngine: encryption.keys[0].key must be 32 bytes: a Buffer, or a base64 or base64url string of 32 bytes, got a string of 24 characters',
      ],
      [
        [
          { id: 'k1', key: Buffer.alloc(32) },
          { id: 'k1', key: Buffer.alloc(32, 1) },
        ],
        'SessionEngine: encryption.keys must give each key an id of its own, got an array of 2',
      ],
    ];
    for (const [keys, message] of refused) {
      assert.throws(
        () =>
          new SessionEngine({ store, secrets: [secret], encryption: { keys } as SessionOptions['encryption'] & {} }),
        { code: 'INVALID_OPTIONS', message: `[tessera] [engine] ${message}` },
      );
    }
    assert.throws(() => new FieldCodec(JSON, [{ id: 'k1', key: Buffer.alloc(8) }], 'mine'), {
      code: 'INVALID_OPTIONS',
      message: /^\[tessera\] \[mine\] FieldCodec: keys\[0\]\.key must be 32 bytes/,
    });
  });

  it('refuses a store without its core methods, or with half a capability group, naming what is wrong', () => {
    const core = { name: 'half', get: store.get, set: store.set, destroy: store.destroy, close: store.close };
    const refused: Array<[object, RegExp]> = [
      [{ name: 'bare', get: store.get, set: store.set }, /destroy, close methods/],
      [{ ...core, name: '' }, /store\.name must be a non-empty string/],
      [{ ...core, patch: store.patch }, /has patch but not touch/],
      [{ ...core, destroyByUser: store.destroyByUser }, /has destroyByUser but not listByUser/],
    ];
    for (const [candidate, message] of refused) {
      assert.throws(
        () => new SessionEngine({ store: candidate as SessionOptions['store'], secrets: [secret] }),
        (e) => isSessionError(e, 'INVALID_OPTIONS') && message.test((e as Error).message),
      );
    }
    assert.ok(new SessionEngine({ store: core, secrets: [secret] }), 'the four core methods and a name are a store');
  });

  it('does not mutate the options it is given', () => {
    const options = Object.freeze({
      store,
      secrets: Object.freeze([secret]),
      cookie: Object.freeze({ name: 'sid' }),
    }) as SessionOptions;
    const engine = new SessionEngine(options);
    assert.equal(engine.options.cookie.name, 'sid');
    assert.deepEqual(Object.keys(options.cookie ?? {}), ['name']);
  });

  it('starts without a secret only when signing is explicitly off', () => {
    assert.throws(
      () => new SessionEngine({ store }),
      (e) => isSessionError(e, 'INVALID_OPTIONS'),
    );
    assert.equal(new SessionEngine({ store, signed: false }).options.signed, false);
  });
});

describe('cookies and identity', () => {
  it('issues a 32-byte ID with a full HMAC-SHA256 tag, and stores only its SHA-256', async () => {
    const { engine, memory } = setup();
    const pair = await login(engine);
    const [id, tag] = pair.split('=')[1]?.split('.') ?? [];
    assert.equal(Buffer.from(id ?? '', 'base64url').length, 32);
    assert.equal(Buffer.from(tag ?? '', 'base64url').length, 32);
    const key = createHash('sha256')
      .update(id ?? '')
      .digest('base64url');
    assert.ok(await memory.get(key), 'stored under the hash');
    assert.equal(await memory.get(id ?? ''), null, 'never under the raw ID');
  });

  it('gives every session its own ID, also past the 128 IDs one draw of random bytes makes', async () => {
    const { engine, memory } = setup();
    const ids = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const id = idOf(await login(engine, { n: i }));
      assert.match(id, /^[A-Za-z0-9_-]{43}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 300, 'no ID twice');
    assert.equal(await memory.count?.(), 300, 'each under its own key');
  });

  it('verifies cookies signed with any configured secret (rotation)', async () => {
    const { engine, sibling } = setup();
    const pair = await login(engine);
    const rotated = sibling({ secrets: ['new-secret-0123456789abcdefghijklmnop', secret] });
    assert.equal(await rotated.session(pair).get('user'), 'alice');
    const dropped = sibling({ secrets: ['new-secret-0123456789abcdefghijklmnop'] });
    assert.equal(await dropped.session(pair).get('user'), undefined);
  });

  it('re-sends a cookie signed with an older secret signed with the current one', async () => {
    const { engine, sibling, clock } = setup({ idleTimeoutSeconds: 900 });
    const pair = await login(engine);
    const next = 'next-secret-0123456789abcdefghijklmnop';
    const rotated = sibling({ secrets: [next, secret], idleTimeoutSeconds: 900 });
    clock.now += 500_000; // past the touch interval: the expiry moves and the cookie is sent
    const s = rotated.session(pair);
    await s.set('seen', true);
    const fresh = cookiePair((await rotated.commit(s)).setCookie);
    assert.equal(idOf(fresh), idOf(pair), 'the same session');
    assert.notEqual(fresh, pair, 'a new tag');
    const onlyNext = sibling({ secrets: [next] });
    assert.equal(await onlyNext.session(fresh).get('user'), 'alice', 'signed with the current secret');
  });

  it('writes Set-Cookie exactly as the cookie library would, whatever the attributes', async () => {
    const { serialize } = await import('cookie');
    const variants: Array<Partial<SessionOptions>['cookie']> = [
      {},
      { domain: 'example.com', path: '/app', sameSite: 'strict' },
      { name: '__Host-sid', partitioned: true, sameSite: 'none' },
      { persistent: false, httpOnly: false },
    ];
    for (const cookie of variants) {
      const { engine } = setup({ cookie });
      const s = engine.session(undefined);
      await s.set('a', 1);
      const { setCookie } = await engine.commit(s, { secure: true });
      const o = engine.options.cookie;
      const value = cookiePair(setCookie).slice(o.name.length + 1);
      const expected = serialize(o.name, value, {
        path: o.path,
        domain: o.domain,
        httpOnly: o.httpOnly,
        sameSite: o.sameSite,
        secure: true,
        partitioned: o.partitioned || undefined,
        expires: o.persistent ? new Date(s.expiresAt) : undefined,
      });
      assert.equal(setCookie, expected, JSON.stringify(cookie));
      await s.destroy();
      const cleared = (await engine.commit(s, { secure: true })).setCookie;
      assert.equal(
        cleared,
        serialize(o.name, '', {
          path: o.path,
          domain: o.domain,
          httpOnly: o.httpOnly,
          sameSite: o.sameSite,
          secure: true,
          partitioned: o.partitioned || undefined,
          expires: new Date(0),
          maxAge: 0,
        }),
      );
    }
  });

  it('still refuses a near-copy of a cookie it has already verified', async () => {
    const { engine, store } = setup();
    const pair = await login(engine);
    assert.equal(await engine.session(pair).get('user'), 'alice');
    assert.equal(await engine.session(pair).get('user'), 'alice', 'a returning cookie is accepted again');
    // Every other last character: a different tag, or another spelling of the same bytes.
    for (const last of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.replace(pair.at(-1) ?? '', '')) {
      store.reset();
      const forged = engine.session(pair.slice(0, -1) + last);
      assert.equal(await forged.get('user'), undefined, `tag ending in ${last}`);
      assert.equal(store.calls.get, 0, 'no store read for the near-copy');
    }
  });

  it('sets secure cookie defaults and Secure only over HTTPS', async () => {
    const { engine } = setup();
    const s = engine.session(undefined);
    await s.set('a', 1);
    const plain = (await engine.commit(s)).setCookie ?? '';
    assert.match(plain, /HttpOnly/);
    assert.match(plain, /SameSite=Lax/);
    assert.match(plain, /Path=\//);
    assert.doesNotMatch(plain, /Secure|Domain/);
    const s2 = engine.session(undefined);
    await s2.set('a', 1);
    assert.match((await engine.commit(s2, { secure: true })).setCookie ?? '', /Secure/);
  });

  it('asks whether the request is secure only when it sends a cookie', async () => {
    const { engine } = setup();
    const pair = await login(engine);
    let asked = 0;
    const request = {
      get secure() {
        asked++;
        return true;
      },
    };
    const read = engine.session(pair);
    await read.get('user');
    assert.equal((await engine.commit(read, request)).setCookie, null);
    assert.equal(asked, 0, 'a commit without a cookie never asks');
    const fresh = engine.session(undefined);
    await fresh.set('a', 1);
    assert.match((await engine.commit(fresh, request)).setCookie ?? '', /Secure/);
    assert.equal(asked, 1);
  });

  it('always marks a __Host- cookie Secure', async () => {
    const { engine } = setup({ cookie: { name: '__Host-sid' } });
    const s = engine.session(undefined);
    await s.set('a', 1);
    assert.match((await engine.commit(s)).setCookie ?? '', /^__Host-sid=.*Secure/);
  });

  it('accepts a 128-bit tag when configured (the ElasticSearch seed signing.length)', async () => {
    const { engine } = setup({ tagBytes: 16 });
    const pair = await login(engine);
    assert.equal(Buffer.from(pair.split('=')[1]?.split('.')[1] ?? '', 'base64url').length, 16);
    assert.equal(await engine.session(pair).get('user'), 'alice');
  });
});

describe('lazy load and commit', () => {
  it('costs nothing for a visitor who never touches the session', async () => {
    const { engine, store } = setup();
    const s = engine.session(undefined);
    const result = await engine.commit(s);
    assert.deepEqual(result, { setCookie: null, write: 'none', lost: false });
    assert.equal(store.total, 0);
  });

  it('stores nothing and sets no cookie for a new session that is only read', async () => {
    const { engine, store } = setup();
    const s = engine.session(undefined);
    assert.equal(await s.get('user'), undefined);
    assert.equal((await engine.commit(s)).setCookie, null);
    assert.equal(store.total, 0);
  });

  it('reads the store once per request, on first access', async () => {
    const { engine, store } = setup();
    const pair = await login(engine);
    store.reset();
    const s = engine.session(pair);
    assert.equal(store.calls.get, 0);
    await s.get('user');
    await s.get('user');
    await s.has('user');
    assert.equal(store.calls.get, 1);
    const result = await engine.commit(s);
    assert.equal(result.write, 'none');
    assert.equal(result.setCookie, null);
    assert.equal(store.total, 1);
  });

  it('writes only the changed keys of a modified session', async () => {
    const { engine, store, memory } = setup();
    const pair = await login(engine, { user: 'alice', cart: ['a'], big: 'x'.repeat(1000) });
    store.reset();
    const s = engine.session(pair);
    await s.set('user', 'alice');
    await s.set('theme', 'dark');
    const original = memory.patch.bind(memory);
    let sent: unknown;
    memory.patch = (key, change) => {
      sent = change;
      return original(key, change);
    };
    assert.equal((await engine.commit(s)).write, 'patch');
    assert.deepEqual((sent as { set: object }).set, { theme: '"dark"' });
    assert.deepEqual((sent as { unset: string[] }).unset, []);
    assert.equal(store.calls.set, 0);
  });

  it('finds nested changes made through the plain-object view', async () => {
    const { engine } = setup();
    const pair = await login(engine, { cart: ['a'] });
    const s = engine.session(pair);
    await s.load();
    (s.data.cart as string[]).push('b');
    assert.equal((await engine.commit(s)).write, 'patch');
    assert.deepEqual(await engine.session(pair).get('cart'), ['a', 'b']);
  });

  it('finds nested changes to an object returned by get()', async () => {
    const { engine } = setup();
    const pair = await login(engine, { prefs: { theme: 'light' } });
    const s = engine.session(pair);
    const prefs = (await s.get('prefs')) as { theme: string };
    prefs.theme = 'dark';
    await engine.commit(s);
    assert.deepEqual(await engine.session(pair).get('prefs'), { theme: 'dark' });
  });

  it('deletes keys and clears', async () => {
    const { engine } = setup();
    const pair = await login(engine, { a: 1, b: 2, c: 3 });
    const s = engine.session(pair);
    await s.delete('a');
    await engine.commit(s);
    assert.deepEqual(await engine.session(pair).all(), { b: 2, c: 3 });
    const s2 = engine.session(pair);
    await s2.clear();
    await engine.commit(s2);
    assert.deepEqual(await engine.session(pair).all(), {});
  });
});

describe('time', () => {
  it('touches an unmodified session only once the throttle interval has passed', async () => {
    const { engine, store, clock } = setup({ idleTimeoutSeconds: 900 });
    const pair = await login(engine);
    clock.now += 60_000;
    store.reset();
    const early = engine.session(pair);
    await early.get('user');
    assert.deepEqual(await engine.commit(early), { setCookie: null, write: 'none', lost: false });
    clock.now += 400_000;
    const due = engine.session(pair);
    await due.get('user');
    const result = await engine.commit(due);
    assert.equal(result.write, 'touch');
    assert.match(result.setCookie ?? '', /Expires=/, 'the cookie expiry moves with the session');
    assert.ok(
      result.setCookie?.includes(`; Expires=${new Date(clock.now + 900_000).toUTCString()}`),
      `the new expiry, to the second: ${result.setCookie}`,
    );
    assert.equal(store.calls.touch, 1);
    assert.equal(store.calls.set + store.calls.patch, 0, 'a touch never rewrites data');
  });

  it('moves the expiry of a modified session in touch steps too, so a change alone sends no cookie', async () => {
    const { engine, memory, clock } = setup({ idleTimeoutSeconds: 900 });
    const pair = await login(engine);
    const key = keyOf(idOf(pair));
    const stored = (await memory.get(key))?.expiresAt;
    clock.now += 60_000;
    const early = engine.session(pair);
    await early.set('n', 1);
    const first = await engine.commit(early);
    assert.equal(first.write, 'patch');
    assert.equal(first.setCookie, null, 'the expiry did not move');
    assert.equal((await memory.get(key))?.expiresAt, stored);
    clock.now += 400_000;
    const due = engine.session(pair);
    await due.set('n', 2);
    const second = await engine.commit(due);
    assert.equal(second.write, 'patch');
    assert.equal((await memory.get(key))?.expiresAt, clock.now + 900_000, 'extended with the change');
    assert.match(second.setCookie ?? '', /Expires=/);
  });

  it('expires a session idle longer than the idle timeout', async () => {
    const { engine, clock } = setup({ idleTimeoutSeconds: 60 });
    const pair = await login(engine);
    clock.now += 61_000;
    const s = engine.session(pair);
    assert.equal(await s.get('user'), undefined);
    assert.equal(s.isNew, true);
    assert.match((await engine.commit(s)).setCookie ?? '', /Expires=Thu, 01 Jan 1970/);
  });

  it('ends a session at the absolute timeout however active it is', async () => {
    const { engine, clock } = setup({ idleTimeoutSeconds: 60, touchAfterSeconds: 1, absoluteTimeoutSeconds: 150 });
    const pair = await login(engine);
    for (let i = 0; i < 4; i++) {
      clock.now += 30_000;
      const s = engine.session(pair);
      assert.equal(await s.get('user'), 'alice', `still alive at ${(i + 1) * 30}s`);
      await engine.commit(s);
    }
    clock.now += 31_000;
    assert.equal(await engine.session(pair).get('user'), undefined);
  });
});

describe('flush modes', () => {
  it("'immediate' writes on every set", async () => {
    const { engine, store } = setup({ flush: 'immediate' });
    const pair = await login(engine);
    store.reset();
    const s = engine.session(pair);
    await s.set('a', 1);
    await s.set('b', 2);
    assert.equal(store.calls.patch, 2);
    assert.equal((await engine.commit(s)).write, 'none');
    assert.deepEqual(await engine.session(pair).all(), { user: 'alice', a: 1, b: 2 });
  });

  it("'manual' writes only on save()", async () => {
    const { engine, store } = setup({ flush: 'manual' });
    const s = engine.session(undefined);
    await s.set('user', 'alice');
    assert.equal((await engine.commit(s)).write, 'none');
    assert.equal(store.total, 0);
    const s2 = engine.session(undefined);
    await s2.set('user', 'bob');
    await s2.save();
    const pair = cookiePair((await engine.commit(s2)).setCookie);
    assert.equal(await engine.session(pair).get('user'), 'bob');
  });
});

describe('regenerate and destroy', () => {
  it('regenerate keeps the data under a new ID and destroys the old record', async () => {
    const { engine, memory } = setup();
    const pair = await login(engine, { cart: ['a'] });
    const s = engine.session(pair);
    const oldKey = keyOf(idOf(pair));
    await s.regenerate();
    const fresh = cookiePair((await engine.commit(s)).setCookie);
    assert.notEqual(fresh, pair);
    assert.deepEqual(await engine.session(fresh).get('cart'), ['a']);
    assert.equal(await memory.get(oldKey), null);
    assert.equal(await engine.session(pair).get('cart'), undefined);
  });

  it('destroy removes the record and clears the cookie', async () => {
    const { engine, memory } = setup();
    const pair = await login(engine);
    const s = engine.session(pair);
    await s.destroy();
    assert.match((await engine.commit(s)).setCookie ?? '', /Max-Age=0/);
    assert.equal(await memory.get(keyOf(idOf(pair))), null);
    await assert.rejects(s.set('a', 1), (e) => isSessionError(e, 'SESSION_DESTROYED'));
  });

  it('lists and revokes a user’s sessions', async () => {
    const { engine } = setup();
    const pairs = [];
    for (let i = 0; i < 3; i++) {
      const s = engine.session(undefined);
      await s.setUser('u1');
      pairs.push(cookiePair((await engine.commit(s)).setCookie));
    }
    assert.equal((await engine.listUserSessions('u1')).length, 3);
    assert.equal(await engine.destroyUserSessions('u1'), 3);
    for (const pair of pairs) assert.equal((await engine.session(pair).load()).isNew, true);
  });
});

describe('encryption at rest', needsNodeCrypto, () => {
  const k1 = { id: 'k1', key: Buffer.alloc(32, 1) };
  const k2 = { id: 'k2', key: Buffer.alloc(32, 2).toString('base64') };

  it('stores sealed values and reads them back', async () => {
    const { engine, memory } = setup({ encryption: { keys: [k1] } });
    const pair = await login(engine, { card: 'secret-value' });
    const record = await memory.get(keyOf(idOf(pair)));
    assert.ok(record?.fields.card?.startsWith('~1.k1.'));
    assert.doesNotMatch(JSON.stringify(record), /secret-value/);
    assert.equal(await engine.session(pair).get('card'), 'secret-value');
  });

  it('rotates keys without logging anyone out, and reads values stored before encryption', async () => {
    const plain = setup();
    const plainPair = await login(plain.engine, { a: 'plain' });
    const first = plain.sibling({ encryption: { keys: [k1] } });
    assert.equal(await first.session(plainPair).get('a'), 'plain');
    const sealedPair = await login(first, { b: 'sealed' });
    const rotated = plain.sibling({ encryption: { keys: [k2, k1] } });
    assert.equal(await rotated.session(sealedPair).get('b'), 'sealed');
    const removed = plain.sibling({ encryption: { keys: [k2] } });
    await assert.rejects(removed.session(sealedPair).get('b'), (e) => isSessionError(e, 'CORRUPT_RECORD'));
  });

  it('refuses a sealed value moved to another session', async () => {
    const { engine, memory } = setup({ encryption: { keys: [k1] } });
    const a = await login(engine, { v: 'a' });
    const b = await login(engine, { v: 'b' });
    const recordA = await memory.get(keyOf(idOf(a)));
    const keyB = keyOf(idOf(b));
    const recordB = await memory.get(keyB);
    assert.ok(recordA && recordB);
    await memory.set(keyB, { ...recordB, fields: { v: recordA.fields.v as string } });
    await assert.rejects(engine.session(b).get('v'), (e) => isSessionError(e, 'CORRUPT_RECORD'));
  });
});

describe('failures', () => {
  it("reports a corrupt record; 'throw' by default, 'reset' on request, and keeps it", async () => {
    const { engine, memory, sibling } = setup();
    const pair = await login(engine);
    const key = keyOf(idOf(pair));
    const record = await memory.get(key);
    assert.ok(record);
    await memory.set(key, { ...record, fields: { user: '{not json' } });
    const seen: string[] = [];
    engine.on('corrupt', (error, k) => {
      seen.push(`${error.code}:${k === key}`);
    });
    await assert.rejects(engine.session(pair).get('user'), (e) => isSessionError(e, 'CORRUPT_RECORD'));
    const resetting = sibling({ onCorruptRecord: 'reset' });
    resetting.on('corrupt', (error, k) => {
      seen.push(`${error.code}:${k === key}`);
    });
    const s = resetting.session(pair);
    assert.equal(await s.get('user'), undefined);
    assert.equal(s.isNew, true);
    assert.deepEqual(seen, ['CORRUPT_RECORD:true', 'CORRUPT_RECORD:true']);
    assert.ok(await memory.get(key), 'the bad record is kept for inspection');
  });

  it('fails a commit over maxSizeBytes and writes nothing', async () => {
    const { engine } = setup({ maxSizeBytes: 1000 });
    const pair = await login(engine, { small: 'x' });
    const s = engine.session(pair);
    await s.set('huge', 'y'.repeat(2000));
    await assert.rejects(engine.commit(s), (e) => isSessionError(e, 'SESSION_TOO_LARGE'));
    assert.deepEqual(await engine.session(pair).all(), { small: 'x' });
  });

  it('times a hung store out with STORE_TIMEOUT', async () => {
    const { engine, memory } = setup({ storeTimeoutMs: 50 });
    const pair = await login(engine);
    memory.get = () => new Promise(() => {});
    const started = performance.now();
    await assert.rejects(engine.session(pair).get('user'), (e) => isSessionError(e, 'STORE_TIMEOUT'));
    assert.ok(performance.now() - started < 1000);
  });

  it("'degrade' gives an empty session that is never written while the store fails", async () => {
    const { engine, memory, store } = setup({ onStoreError: 'degrade' });
    const pair = await login(engine);
    memory.get = async () => {
      throw new Error('down');
    };
    store.reset();
    const s = engine.session(pair);
    assert.equal(await s.get('user'), undefined);
    await s.set('x', 1);
    assert.deepEqual(await engine.commit(s), { setCookie: null, write: 'none', lost: false });
    assert.equal(store.calls.set + store.calls.patch, 0);
  });

  it('deletes an expired record it was given, and a failing delete follows the store-error policy', async () => {
    for (const onStoreError of ['fail', 'degrade'] as const) {
      const { engine, memory, store, clock } = setup({ onStoreError });
      const pair = await login(engine);
      clock.now += 10_000;
      // A store that hands out a record the engine finds expired (its own clock lags).
      const read = memory.get.bind(memory);
      memory.get = async (key) => {
        const record = await read(key);
        return record && { ...record, expiresAt: clock.now - 1 };
      };
      // Deletes nothing, so that the next request is handed the record again.
      memory.destroy = async () => {};
      store.reset();
      assert.equal(await engine.session(pair).get('user'), undefined, onStoreError);
      assert.equal(store.calls.destroy, 1, `${onStoreError}: the expired record is deleted`);
      memory.destroy = async () => {
        throw new Error('down');
      };
      const s = engine.session(pair);
      if (onStoreError === 'fail') {
        await assert.rejects(s.get('user'), (e) => isSessionError(e, 'STORE_UNAVAILABLE'));
      } else {
        assert.equal(await s.get('user'), undefined);
        await s.set('x', 1);
        assert.deepEqual(await engine.commit(s), { setCookie: null, write: 'none', lost: false });
      }
    }
  });
});

describe('events and logging', () => {
  it('emits lifecycle events in order, and a before hook can veto', async () => {
    const { engine } = setup();
    const seen: string[] = [];
    const names: (keyof SessionEvents)[] = [
      'beforeLoad',
      'load',
      'beforeCreate',
      'create',
      'beforeCommit',
      'commit',
      'beforeDestroy',
      'destroy',
      'regenerate',
    ];
    for (const name of names) engine.on(name, () => void seen.push(name));
    const pair = await login(engine);
    const s = engine.session(pair);
    await s.regenerate();
    await engine.commit(s);
    const s2 = engine.session(cookiePair((await engine.commit(s)).setCookie) || pair);
    await s2.destroy();
    assert.deepEqual(seen.slice(0, 4), ['beforeCommit', 'beforeCreate', 'create', 'commit']);
    assert.ok(
      seen.includes('beforeLoad') && seen.indexOf('beforeLoad') < seen.indexOf('load'),
      'beforeLoad comes first',
    );
    assert.ok(seen.includes('load') && seen.includes('regenerate') && seen.includes('destroy'));
    const off = engine.on('beforeDestroy', () => {
      throw new Error('not allowed');
    });
    const s3 = engine.session(await login(engine));
    await assert.rejects(s3.destroy(), /not allowed/);
    off();
  });

  it('logs store calls with shortened hashes, never the raw ID', async () => {
    const lines: string[] = [];
    const logger = {
      debug: (o: object, m?: string) => void lines.push(`${m} ${JSON.stringify(o)}`),
      warn: () => {},
      error: () => {},
    };
    const { engine } = setup({ debug: true, logger });
    const pair = await login(engine);
    await engine.session(pair).get('user');
    const id = idOf(pair);
    assert.ok(lines.length >= 2);
    for (const line of lines) assert.ok(!line.includes(id), 'no raw ID in logs');
    assert.ok(lines.some((l) => l.includes(keyOf(id).slice(0, 10))));
  });
});
