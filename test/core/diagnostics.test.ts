// stores: memory sqlite
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { commitChannel, loadChannel, storeChannel, traced } from '../../src/core/diagnostics.ts';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError, SessionError } from '../../src/core/errors.ts';
import { CachedStore } from '../../src/stores/cache/index.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';

const secrets = ['diagnostics-test-secret-0123456789abcdef'];
const cookieOf = (header: string | null) => header?.split(';')[0];

type Event = { channel: string; phase: string; context: Record<string, unknown> };

/** Subscribes to the three channels; returns what they published and how to stop. */
function listen(): { events: Event[]; stop: () => void } {
  const events: Event[] = [];
  const stops: (() => void)[] = [];
  for (const [name, channel] of [
    ['tessera:load', diagnostics.tracingChannel('tessera:load')],
    ['tessera:commit', diagnostics.tracingChannel('tessera:commit')],
    ['tessera:store', diagnostics.tracingChannel('tessera:store')],
  ] as const) {
    const handlers = Object.fromEntries(
      (['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const).map((phase) => [
        phase,
        (context: unknown) => events.push({ channel: name, phase, context: context as Record<string, unknown> }),
      ]),
    ) as unknown as diagnostics.TracingChannelSubscribers<object>;
    channel.subscribe(handlers);
    stops.push(() => channel.unsubscribe(handlers));
  }
  return {
    events,
    stop: () => {
      for (const stop of stops) stop();
    },
  };
}

describe('diagnostics channels', () => {
  it('publish nothing, and cost a flag read, while nobody subscribes', () => {
    assert.equal(traced(storeChannel), false);
    assert.equal(traced(loadChannel), false);
    assert.equal(traced(commitChannel), false);
    const { stop } = listen();
    assert.equal(traced(storeChannel), true);
    stop();
    assert.equal(traced(storeChannel), false);
  });

  it('trace every store call, load and commit, with shortened keys and never the ID', async () => {
    const engine = new SessionEngine<{ n: number }>({ store: new MemoryStore(), secrets });
    const { events, stop } = listen();
    try {
      const first = engine.session(undefined);
      await first.set('n', 1);
      const cookie = cookieOf((await engine.commit(first)).setCookie);
      const second = engine.session(cookie);
      await second.set('n', 2);
      await engine.commit(second);
      const id = cookie?.split('=')[1]?.split('.')[0] as string;
      const key = engine.keyOf(id);
      const ends = events.filter((e) => e.phase === 'asyncEnd');
      assert.deepEqual(
        ends.map((e) => `${e.channel} ${e.context.action ?? e.context.plan ?? ''}`),
        [
          'tessera:store set',
          'tessera:commit create',
          'tessera:store get',
          'tessera:load ',
          'tessera:store patch',
          'tessera:commit patch',
        ],
      );
      for (const e of events) {
        assert.equal(e.context.store, 'memory');
        assert.equal(e.context.key, key.slice(0, 10), 'the key, shortened');
        assert.ok(!JSON.stringify(e.context).includes(id), 'never the session ID');
      }
      const commit = ends.find((e) => e.channel === 'tessera:commit' && e.context.plan === 'patch');
      assert.equal(commit?.context.result, 'patch', 'Node sets the result on the context');
      // Each trace: start, end (sync part), asyncStart, asyncEnd on one context object.
      const set = events.filter((e) => e.channel === 'tessera:store' && e.context.action === 'set');
      assert.deepEqual(
        set.map((e) => e.phase),
        ['start', 'end', 'asyncStart', 'asyncEnd'],
      );
      assert.ok(set.every((e) => e.context === set[0]?.context));
    } finally {
      stop();
      await engine.close();
    }
  });

  it('publish a failed store call on error, with the SessionError', async () => {
    const store = new MemoryStore();
    store.get = async () => {
      throw new Error('connection refused');
    };
    const engine = new SessionEngine<{ n: number }>({ store, secrets });
    const made = new SessionEngine<{ n: number }>({ store: new MemoryStore(), secrets });
    const s = made.session(undefined);
    await s.set('n', 1);
    const cookie = cookieOf((await made.commit(s)).setCookie);
    const { events, stop } = listen();
    try {
      await assert.rejects(engine.session(cookie).get('n'), (e) => isSessionError(e, 'STORE_UNAVAILABLE'));
      const errors = events.filter((e) => e.phase === 'error');
      assert.deepEqual(
        errors.map((e) => e.channel),
        ['tessera:store', 'tessera:load'],
      );
      assert.ok(errors[1]?.context.error instanceof SessionError);
    } finally {
      stop();
    }
  });
});

describe('engine.metrics()', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-metrics-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('counts loads, commits by write, lost writes and store errors by code', async () => {
    const store = new MemoryStore();
    const engine = new SessionEngine<{ n: number }>({ store, secrets });
    assert.deepEqual(engine.metrics(), {
      loads: 0,
      commits: { none: 0, create: 0, patch: 0, touch: 0 },
      lostWrites: 0,
      storeErrors: {},
      cache: null,
      conflictsReplayed: null,
    });
    const first = engine.session(undefined);
    await first.set('n', 1);
    const cookie = cookieOf((await engine.commit(first)).setCookie);
    const read = engine.session(cookie);
    await read.get('n');
    await engine.commit(read);
    const slow = engine.session(cookie);
    await slow.load();
    const logout = engine.session(cookie);
    await logout.destroy();
    await engine.commit(logout);
    await slow.set('n', 3);
    assert.equal((await engine.commit(slow)).lost, true);
    const get = store.get;
    store.get = async () => {
      throw new Error('down');
    };
    await assert.rejects(engine.session(cookie).get('n'));
    store.get = get;
    const m = engine.metrics();
    assert.equal(m.loads, 3, 'read, slow, and the failed one (a destroy needs no load, a new session none)');
    assert.deepEqual(m.commits, { none: 3, create: 1, patch: 0, touch: 0 });
    assert.equal(m.lostWrites, 1);
    assert.deepEqual(m.storeErrors, { STORE_UNAVAILABLE: 1 });
    await engine.close();
  });

  it('adds the read tier’s hits and misses and the SQL store’s replayed conflicts', async () => {
    const url = `sqlite:${join(dir, 'metrics.db')}`;
    const [a, b] = [new SqlStore({ url }), new SqlStore({ url })];
    const cached = new SessionEngine<Record<string, number>>({
      store: new CachedStore({ store: a, invalidation: null }),
      secrets,
    });
    const other = new SessionEngine<Record<string, number>>({ store: b, secrets });
    // Another process logs in; this one reads (a miss, then a hit); the other writes; this
    // one's patch replays on top of it.
    const s = other.session(undefined);
    await s.set('n', 1);
    const cookie = cookieOf((await other.commit(s)).setCookie);
    await cached.session(cookie).get('n');
    const mine = cached.session(cookie);
    await mine.load();
    const theirs = other.session(cookie);
    await theirs.set('b', 2);
    await other.commit(theirs);
    await mine.set('a', 1);
    await cached.commit(mine);
    const m = cached.metrics();
    assert.deepEqual(m.cache, { hits: 1, misses: 1 });
    assert.equal(m.conflictsReplayed, 1);
    assert.deepEqual(await other.session(cookie).all(), { n: 1, a: 1, b: 2 });
    await Promise.all([cached.close(), other.close()]);
  });
});
