import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as v from 'valibot';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { keepIp } from '../../src/core/meta.ts';
import type { SessionOptions } from '../../src/core/options.ts';
import { META_FIELD, type Store } from '../../src/core/store.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';

type Data = Record<string, unknown>;
const secret = 'features-test-secret-0123456789abcdefghij';
const MINUTE = 60_000;
const DAY = 86_400_000;

/** An engine on a clock of its own; the memory store keeps real time, so expiry is the engine's to enforce. */
function setup(options: Partial<SessionOptions> = {}) {
  const clock = { now: Date.now() };
  const memory = new MemoryStore();
  const store = new CountingStore(memory);
  const engine = new SessionEngine<Data>({ store, secrets: [secret], now: () => clock.now, ...options });
  return { clock, memory, store, engine };
}

const cookieOf = (setCookie: string | null) => setCookie?.split(';')[0];
const expiresOf = (setCookie: string | null) => {
  const match = /Expires=([^;]+)/.exec(setCookie ?? '');
  return match ? Date.parse(match[1] as string) : null;
};

async function created(
  engine: SessionEngine<Data>,
  fill: (s: ReturnType<SessionEngine<Data>['session']>) => Promise<void>,
) {
  const s = engine.session(undefined);
  await fill(s);
  const result = await engine.commit(s);
  return { session: s, result, cookie: cookieOf(result.setCookie) };
}

describe('a session’s own lifetime', () => {
  it('is enforced on load by the engine, whatever the store still holds', async () => {
    const { clock, engine, memory } = setup({ idleTimeoutSeconds: 3600 });
    const { cookie, session } = await created(engine, async (s) => {
      await s.set('a', 1);
      await s.setLifetime({ idleTimeoutSeconds: 60 });
    });
    assert.ok(Math.abs(session.expiresAt - (clock.now + MINUTE)) < 5, 'the expiry follows the session’s timeout');
    clock.now += 61_000;
    assert.ok(await memory.get(session.key as string), 'the store (on real time) still has it');
    const later = engine.session(cookie);
    assert.equal(await later.get('a'), undefined, 'the engine ended it at its own idle timeout');
    assert.equal(later.isNew, true);
  });

  it('keeps a remembered session past the engine’s idle timeout, and touches it by its own throttle', async () => {
    const { clock, engine, store } = setup({
      idleTimeoutSeconds: 900,
      touchAfterSeconds: 300,
      rememberMe: { idleTimeoutSeconds: 7 * 86400, absoluteTimeoutSeconds: 30 * 86400 },
    });
    const { cookie, session, result } = await created(engine, async (s) => {
      await s.set('user', 'alice');
      await s.rememberMe(true);
    });
    assert.ok(Math.abs((expiresOf(result.setCookie) ?? 0) - (clock.now + 7 * DAY)) < 1000, 'a 7-day cookie');
    assert.deepEqual(session.lifetime, {
      idleTimeoutSeconds: 7 * 86400,
      absoluteTimeoutSeconds: 30 * 86400,
      persistent: true,
    });
    // A day later, far past the engine's 15 minutes: still there. Its own throttle is a third of
    // its idle timeout (the engine's 300 of 900 s): no touch yet.
    clock.now += DAY;
    store.reset();
    const next = engine.session(cookie);
    assert.equal(await next.get('user'), 'alice');
    assert.equal((await engine.commit(next)).write, 'none');
    clock.now += 2 * DAY;
    const touched = engine.session(cookie);
    await touched.load();
    const result2 = await engine.commit(touched);
    assert.equal(result2.write, 'touch');
    assert.ok(Math.abs((expiresOf(result2.setCookie) ?? 0) - (clock.now + 7 * DAY)) < 1000, 'seven days on');
    clock.now += 28 * DAY;
    assert.equal(await engine.session(cookie).get('user'), undefined, 'an idle week ends it');
  });

  it('rememberMe(false) gives a browser-session cookie, and setLifetime checks what it is given', async () => {
    const { engine } = setup();
    const { result, session } = await created(engine, async (s) => {
      await s.set('a', 1);
      await s.rememberMe(false);
    });
    assert.ok(result.setCookie);
    assert.doesNotMatch(result.setCookie, /Expires=/);
    assert.equal(session.lifetime.persistent, false);
    const s = engine.session(undefined);
    await assert.rejects(s.setLifetime({ idleTimeoutSeconds: -5 }), (error) =>
      isSessionError(error, 'INVALID_OPTIONS'),
    );
    await assert.rejects(
      s.setLifetime({ idle: 5 } as never),
      (error) => isSessionError(error, 'INVALID_OPTIONS') && /idleTimeoutSeconds/.test(error.message),
    );
  });

  it('writes nothing more for a session that uses none of the features', async () => {
    const { engine, memory, store } = setup();
    const { cookie, session } = await created(engine, async (s) => {
      await s.set('a', 1);
    });
    assert.deepEqual(Object.keys((await memory.get(session.key as string))?.fields ?? {}), ['a']);
    store.reset();
    const read = engine.session(cookie);
    assert.equal(await read.get('a'), 1);
    assert.deepEqual(await engine.commit(read), { setCookie: null, write: 'none', lost: false });
    assert.equal(store.total, 1, 'one read, nothing else');
  });

  it('reports metadata that cannot be read as a corrupt record, kept, and resets on request', async () => {
    const { engine, memory } = setup();
    const { cookie, session } = await created(engine, async (s) => {
      await s.set('a', 1);
      await s.rememberMe(true);
    });
    const key = session.key as string;
    const record = await memory.get(key);
    assert.ok(record);
    await memory.set(key, { ...record, fields: { ...record.fields, [META_FIELD]: '{"idle":"forever"}' } });
    await assert.rejects(engine.session(cookie).get('a'), (error) => isSessionError(error, 'CORRUPT_RECORD'));
    const resetting = new SessionEngine<Data>({ store: memory, secrets: [secret], onCorruptRecord: 'reset' });
    const fresh = resetting.session(cookie);
    assert.equal(await fresh.get('a'), undefined);
    assert.ok(await memory.get(key), 'the bad record is kept for inspection');
  });
});

describe('internal fields', () => {
  it('are never session keys, nor shown in the data, nor removed by a data-view write', async () => {
    const { engine, memory } = setup();
    const s = engine.session(undefined);
    await assert.rejects(s.set('tessera:meta', 1), (error) => isSessionError(error, 'INVALID_KEY'));
    await s.set('a', 1);
    await s.regenerate();
    await s.flash('notice' as never, 'hi' as never);
    const cookie = cookieOf((await engine.commit(s)).setCookie);
    const next = engine.session(cookie);
    await next.load();
    assert.deepEqual({ ...next.data }, { a: 1 });
    next.data.b = 2;
    await engine.commit(next);
    const fields = (await memory.get(next.key as string))?.fields ?? {};
    assert.deepEqual(Object.keys(fields).sort(), ['a', 'b', META_FIELD].sort(), 'the meta field stays, the flash went');
  });
});

describe('fresh login', () => {
  it('a regenerate records the time, but only a session with a user counts as authenticated', async () => {
    const { clock, engine } = setup();
    const { cookie } = await created(engine, async (s) => {
      await s.regenerate();
      await s.set('a', 1);
    });
    assert.equal(await engine.session(cookie).authenticatedWithin(60), false, 'no user');
    const login = engine.session(cookie);
    await login.setUser('alice');
    const next = cookieOf((await engine.commit(login)).setCookie) ?? cookie;
    clock.now += 5 * MINUTE;
    assert.equal(await engine.session(next).authenticatedWithin(600), true);
    assert.equal(await engine.session(next).authenticatedWithin(60), false, 'five minutes is not within one');
    const again = engine.session(next);
    await again.regenerate();
    const renewed = cookieOf((await engine.commit(again)).setCookie);
    assert.equal(await engine.session(renewed).authenticatedWithin(60), true, 'regenerate after a password check');
    await assert.rejects(engine.session(renewed).authenticatedWithin(-1), (error) =>
      isSessionError(error, 'INVALID_STATE'),
    );
  });
});

describe('flash messages', () => {
  it('survive one request with flush immediate, and undefined takes one back', async () => {
    const { engine } = setup({ flush: 'immediate' });
    const { cookie } = await created(engine, async (s) => {
      await s.flash('a' as never, 1 as never);
      await s.flash('b' as never, 2 as never);
      await s.flash('b' as never, undefined as never);
    });
    const next = engine.session(cookie);
    assert.equal(await next.flashed('a' as never), 1);
    assert.equal(await next.flashed('b' as never), undefined);
    await next.save();
    assert.equal(await next.flashed('a' as never), undefined, 'consumed once written');
    assert.equal(await engine.session(cookie).flashed('a' as never), undefined);
    await assert.rejects(next.flash('' as never, 1 as never), (error) => isSessionError(error, 'INVALID_KEY'));
  });

  it('a flash left by the request that reads one is kept for the next', async () => {
    const { engine } = setup();
    const { cookie } = await created(engine, async (s) => {
      await s.flash('notice' as never, 'one' as never);
    });
    const second = engine.session(cookie);
    assert.equal(await second.flashed('notice' as never), 'one');
    await second.flash('notice' as never, 'two' as never);
    await engine.commit(second);
    assert.equal(await engine.session(cookie).flashed('notice' as never), 'two');
  });
});

describe('devices', () => {
  it('keeps the IP address as devices.ip says', () => {
    assert.equal(keepIp('192.0.2.77', 'truncate', 'k'), '192.0.2.0');
    assert.equal(keepIp('::ffff:192.0.2.77', 'truncate', 'k'), '192.0.2.0');
    assert.equal(keepIp('2001:db8:aaaa:bbbb::1', 'truncate', 'k'), '2001:db8:aaaa::');
    assert.equal(keepIp('::1', 'truncate', 'k'), '0:0:0::');
    assert.equal(keepIp('192.0.2.77', 'full', 'k'), '192.0.2.77');
    assert.equal(keepIp('192.0.2.77', 'off', 'k'), undefined);
    assert.equal(keepIp('not an address', 'full', 'k'), undefined);
    const hashed = keepIp('192.0.2.77', 'hash', 'k');
    assert.match(hashed ?? '', /^[A-Za-z0-9_-]{22}$/);
    assert.equal(keepIp('192.0.2.77', 'hash', 'k'), hashed, 'equal addresses are recognisable');
    assert.notEqual(keepIp('192.0.2.77', 'hash', 'other key'), hashed, 'keyed');
  });

  it('records the device at setUser, cut and kept as the options say; last seen follows the touches', async () => {
    const { clock, engine } = setup({ devices: { ip: 'hash', userAgent: true }, idleTimeoutSeconds: 600 });
    const client = { userAgent: 'x'.repeat(1000), ip: '203.0.113.9' };
    const s = engine.session(undefined, client);
    await s.setUser('ivy', { label: 'desktop' });
    const cookie = cookieOf((await engine.commit(s)).setCookie);
    const start = clock.now;
    clock.now += 400_000; // past the 300 s throttle: the next request touches
    const visit = engine.session(cookie);
    await visit.load();
    assert.equal((await engine.commit(visit)).write, 'touch');
    const [entry] = await engine.listUserSessions('ivy', visit);
    assert.ok(entry);
    assert.equal(entry.userAgent, 'x'.repeat(256));
    assert.equal(entry.ip, keepIp('203.0.113.9', 'hash', `tessera:ip:${secret}`));
    assert.equal(entry.label, 'desktop');
    assert.equal(entry.current, true);
    assert.equal(entry.authenticatedAt, start);
    assert.equal(entry.lastSeenAt, clock.now, 'last seen at the touch');
    const off = setup({ devices: { ip: 'off', userAgent: false } });
    const quiet = off.engine.session(undefined, client);
    await quiet.setUser('ivy');
    await off.engine.commit(quiet);
    const [bare] = await off.engine.listUserSessions('ivy');
    assert.deepEqual([bare?.userAgent, bare?.ip, bare?.current], [null, null, false]);
  });

  it('refuses maxSessionsPerUser on a store without a per-user index', () => {
    const bare: Store = {
      name: 'bare',
      get: async () => null,
      set: async () => {},
      destroy: async () => {},
      close: async () => {},
    };
    assert.throws(
      () => new SessionEngine({ store: bare, secrets: [secret], maxSessionsPerUser: 3 }),
      (error) => isSessionError(error, 'INVALID_OPTIONS') && /per-user index/.test(error.message),
    );
    assert.throws(
      () => new SessionEngine({ store: bare, secrets: [secret], maxSessionsPerUser: 0 }),
      (error) => isSessionError(error, 'INVALID_OPTIONS'),
    );
  });
});

describe('header transport', () => {
  const bearer = (value: string | null | undefined) => (value ? `Bearer ${value}` : undefined);

  it('carries the signed value in Authorization: Bearer, and never a cookie', async () => {
    const { engine, clock } = setup({ transport: { header: 'authorization' }, idleTimeoutSeconds: 600 });
    assert.equal(engine.requestHeader, 'authorization');
    assert.equal(engine.responseHeader, 'Set-Auth-Token');
    const s = engine.session(undefined);
    await s.set('user', 'alice');
    const created = await engine.commit(s);
    assert.equal(created.setCookie, null);
    assert.match(created.token ?? '', /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]+$/);
    const token = created.token;
    assert.equal(await engine.session(bearer(token)).get('user'), 'alice');
    assert.equal(await engine.session(`bearer   ${token}`).get('user'), 'alice', 'the scheme is case-insensitive');
    assert.equal(await engine.session(`Basic ${token}`).get('user'), undefined);
    // A touch moves the expiry but not the value: nothing is sent.
    clock.now += 400_000;
    const touched = engine.session(bearer(token));
    await touched.load();
    assert.deepEqual(await engine.commit(touched), { setCookie: null, token: null, write: 'touch', lost: false });
    // A regenerate sends the new value; a destroy an empty one; so does a forged value.
    const login = engine.session(bearer(token));
    await login.regenerate();
    const moved = await engine.commit(login);
    assert.ok(moved.token && moved.token !== token);
    const logout = engine.session(bearer(moved.token));
    await logout.destroy();
    assert.equal((await engine.commit(logout)).token, '');
    const forged = engine.session(bearer(`${'A'.repeat(43)}.${'B'.repeat(43)}`));
    await forged.load();
    assert.equal((await engine.commit(forged)).token, '');
    assert.equal(engine.session('tessera.sid=whatever').isNew, true, 'a cookie is not read');
  });

  it('hands a value signed with an older secret a new one at its next touch', async () => {
    const store = new MemoryStore();
    const clock = { now: Date.now() };
    const options = { store, transport: { header: 'x-session' }, idleTimeoutSeconds: 600, now: () => clock.now };
    const before = new SessionEngine<Data>({ ...options, secrets: [secret] });
    const s = before.session(undefined);
    await s.set('n', 1);
    const { token } = await before.commit(s);
    const newSecret = 'features-rotated-secret-0123456789abcdefghij';
    const rotated = new SessionEngine<Data>({ ...options, secrets: [newSecret, secret] });
    const read = rotated.session(token);
    await read.load();
    assert.equal((await rotated.commit(read)).token, null, 'no touch due: nothing sent');
    clock.now += 400_000;
    const touched = rotated.session(token);
    await touched.load();
    const renewed = (await rotated.commit(touched)).token;
    assert.ok(renewed && renewed !== token, 'the touch sends the value under the current secret');
    const only = new SessionEngine<Data>({ ...options, secrets: [newSecret] });
    assert.equal(await only.session(renewed).get('n'), 1, 'it survives the old secret’s retirement');
    const again = rotated.session(renewed);
    await again.load();
    clock.now += 400_000;
    assert.equal((await rotated.commit(again)).token, null, 'a current value is not sent again on a touch');
  });

  it('takes a named header with the bare value, answering in the same header by default', async () => {
    const { engine } = setup({ transport: { header: 'X-Session' } });
    assert.equal(engine.requestHeader, 'x-session');
    assert.equal(engine.responseHeader, 'X-Session');
    const s = engine.session(undefined);
    await s.set('n', 1);
    const { token } = await engine.commit(s);
    assert.equal(await engine.session(` ${token} `).get('n'), 1);
    for (const transport of [{ header: 'cookie' }, { header: 'bad header' }, { header: '' }, 'bearer']) {
      assert.throws(
        () => new SessionEngine({ store: new MemoryStore(), secrets: [secret], transport: transport as never }),
        (error) => isSessionError(error, 'INVALID_OPTIONS') && /transport/.test(error.message),
      );
    }
  });
});

describe('a Standard Schema for the data', () => {
  // valibot through its Standard Schema interface only: the engine knows no validation library.
  const schema = v.object({
    user: v.optional(v.string()),
    count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    since: v.optional(v.pipe(v.string(), v.isoTimestamp())),
    tags: v.optional(v.array(v.string())),
  });
  const slowly = v.objectAsync({
    user: v.optionalAsync(
      v.pipeAsync(
        v.string(),
        v.checkAsync(async (name) => name !== 'mallory', 'not mallory'),
      ),
    ),
  });

  it('checks every set, delete and clear, changing nothing on INVALID_DATA', async () => {
    const { engine } = setup({ schema });
    const s = engine.session(undefined);
    await s.set('count', 1);
    await assert.rejects(
      s.set('count', -1),
      (error) => isSessionError(error, 'INVALID_DATA') && /count: /.test(error.message),
    );
    await assert.rejects(s.set('count', 'one'), (error) => isSessionError(error, 'INVALID_DATA'));
    assert.equal(await s.get('count'), 1, 'the refused value was not kept');
    await s.set('user', 'alice');
    await s.delete('count');
    await s.clear();
    assert.deepEqual(await s.all(), {});
    const strict = setup({ schema: v.object({ user: v.string() }) });
    const t = strict.engine.session(undefined);
    await assert.rejects(
      t.set('other', 1),
      (error) => isSessionError(error, 'INVALID_DATA') && /user/.test(error.message),
    );
  });

  it('checks data changed in place at commit, and a stored record on load (the corrupt-record policy)', async () => {
    const { engine, memory } = setup({ schema });
    const { cookie, session } = await created(engine, async (s) => {
      await s.set('tags', ['a']);
    });
    const edit = engine.session(cookie);
    ((await edit.get('tags')) as unknown[]).push(42);
    await assert.rejects(engine.commit(edit), (error) => isSessionError(error, 'INVALID_DATA'));
    assert.deepEqual((await engine.session(cookie).all()).tags, ['a'], 'nothing was written');
    const view = engine.session(cookie);
    await view.load();
    (view.data.tags as unknown[]).push('b');
    assert.equal((await engine.commit(view)).write, 'patch');

    const key = session.key as string;
    const record = await memory.get(key);
    assert.ok(record);
    await memory.set(key, { ...record, fields: { ...record.fields, count: '-5' } });
    await assert.rejects(engine.session(cookie).get('tags'), (error) => isSessionError(error, 'CORRUPT_RECORD'));
    const resetting = new SessionEngine<Data>({ store: memory, secrets: [secret], schema, onCorruptRecord: 'reset' });
    const fresh = resetting.session(cookie);
    assert.equal(await fresh.get('tags'), undefined, 'reset: a new session');
    assert.ok(await memory.get(key), 'the record is kept');
  });

  it('takes async schemas, on set and on load', async () => {
    const { engine, memory } = setup({ schema: slowly });
    const s = engine.session(undefined);
    await assert.rejects(s.set('user', 'mallory'), (error) => isSessionError(error, 'INVALID_DATA'));
    await s.set('user', 'alice');
    const cookie = cookieOf((await engine.commit(s)).setCookie);
    assert.equal(await engine.session(cookie).get('user'), 'alice');
    const record = await memory.get(s.key as string);
    assert.ok(record);
    await memory.set(s.key as string, { ...record, fields: { user: '"mallory"' } });
    await assert.rejects(engine.session(cookie).get('user'), (error) => isSessionError(error, 'CORRUPT_RECORD'));
    // The corrupt-record policy answers an async schema's refusal too: 'reset' reports it and
    // starts a new session, and the refused record is no load.
    const resetting = new SessionEngine<Data>({
      store: memory,
      secrets: [secret],
      schema: slowly,
      onCorruptRecord: 'reset',
    });
    const heard: string[] = [];
    resetting.on('corrupt', () => void heard.push('corrupt'));
    resetting.on('load', () => void heard.push('load'));
    const fresh = resetting.session(cookie);
    assert.equal(await fresh.get('user'), undefined);
    assert.equal(fresh.isNew, true);
    assert.deepEqual(heard, ['corrupt']);
  });

  it('refuses a schema option that is not a Standard Schema', () => {
    assert.throws(
      () => new SessionEngine({ store: new MemoryStore(), secrets: [secret], schema: { parse() {} } as never }),
      (error) => isSessionError(error, 'INVALID_OPTIONS') && /Standard Schema/.test(error.message),
    );
  });
});
