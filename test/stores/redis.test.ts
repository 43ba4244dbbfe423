// stores: redis
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { createStore, fromCatalystRedis, fromDancerRedis } from '../../src/config/index.ts';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import type { SessionRecord, Store } from '../../src/core/store.ts';
import { parseRedisUrl, RedisStore, type RedisStoreOptions } from '../../src/stores/redis/index.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { startRedis } from '../support/redis-servers.ts';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = createClient({ url: URL });
const nodeRedis = createClient({ url: URL });
const ioredis = new Redis(URL);
before(() => Promise.all([admin.connect(), nodeRedis.connect()]));
after(async () => {
  // Every prefix a test used, conformance or not: nothing is left in the shared Redis.
  for (const used of prefixes) {
    for await (const keys of admin.scanIterator({ MATCH: `${used}*`, COUNT: 1000 })) {
      if (keys.length > 0) await admin.unlink(keys);
    }
  }
  await Promise.all([admin.close(), nodeRedis.close()]);
  ioredis.disconnect();
});

const prefixes = new Set<string>();
const prefix = () => {
  const made = `tessera-test:${randomBytes(6).toString('hex')}:`;
  prefixes.add(made);
  return made;
};
const record = (userId: string | null = null): SessionRecord => {
  const now = Date.now();
  return { fields: { a: '"1"' }, createdAt: now, expiresAt: now + 60_000, userId };
};

/** Hooks that give the suite a fresh prefix per store, a way to damage a record, and cleanup. */
function shared(options: () => RedisStoreOptions) {
  return {
    createStore: () => new RedisStore({ ...options(), prefix: prefix() }),
    async writeCorruptRecord(store: Store, key: string) {
      const redisKey = (store as RedisStore).prefix + key;
      await admin.hSet(redisKey, { createdAt: String(Date.now()), expiresAt: 'soon', 'd:a': '"x"' });
      await admin.pExpire(redisKey, 60_000);
    },
    async cleanup(store: Store) {
      for await (const keys of admin.scanIterator({ MATCH: `${(store as RedisStore).prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await admin.unlink(keys);
      }
    },
  };
}

const hooks = { describe, it, beforeEach, afterEach };
runStoreConformance(hooks, { name: 'redis (store-created node-redis, url)', ...shared(() => ({ url: URL })) });
runStoreConformance(hooks, { name: 'redis (user node-redis client)', ...shared(() => ({ client: nodeRedis })) });
runStoreConformance(hooks, { name: 'redis (user ioredis client)', ...shared(() => ({ client: ioredis })) });

describe('redis store options', () => {
  const rejects = (options: unknown) =>
    assert.throws(
      () => new RedisStore(options as RedisStoreOptions),
      (error) => isSessionError(error, 'INVALID_OPTIONS'),
      JSON.stringify(options),
    );

  it('names the option, the rule and what it got, and suggests the known option for a typo', () => {
    assert.throws(() => new RedisStore({ prefix: 42 } as unknown as RedisStoreOptions), {
      message: '[tessera] [redis] redisStore: prefix must be a non-empty string, got 42',
    });
    assert.throws(
      () => new RedisStore({ prefx: 'a:' } as unknown as RedisStoreOptions),
      (e: Error) => e.message.includes('prefx is not a known option (did you mean "prefix"?); known: url,'),
    );
  });

  it('rejects bad options with INVALID_OPTIONS at construction', () => {
    for (const bad of [
      { sever: '127.0.0.1:6379' },
      { server: 'h:1' },
      { url: 'http://h' },
      { url: 'redis://h:99999' },
      { url: 'redis://h/x' },
      { url: 'unix://' },
      { url: 'redis://h?ping=-1' },
      { url: 'redis://h?tlsVerify=none' },
      { url: 'rediss://h?tlsVerify=sometimes' },
      { url: 'redis://h', tls: { servername: 'x' } },
      { url: 'redis://h?name=has%20space' },
      { url: 'redis://h?reconnect=maybe' },
      { url: 'redis://h?connectTimeoutMs=0' },
      { url: 'redis://h?timeout=3' },
      { tls: 'yes' },
      { prefix: 1 },
      { prefix: '' },
      { userIndexTtlSeconds: 0 },
      { logger: {} },
      { client: {} },
      { client: nodeRedis, url: URL },
    ]) {
      rejects(bad);
    }
  });

  it('does not mutate its input and does not connect at construction', async () => {
    const options = Object.freeze({
      url: 'rediss://127.0.0.1:1?tlsVerify=none',
      tls: Object.freeze({ servername: 'x' }),
    });
    const store = new RedisStore(options);
    assert.deepEqual(options, { url: 'rediss://127.0.0.1:1?tlsVerify=none', tls: { servername: 'x' } });
    await store.close();
  });

  it('parses redis://, rediss:// and unix:// URLs', () => {
    assert.deepEqual(parseRedisUrl('redis://h'), { tls: false, host: 'h', port: 6379 });
    assert.deepEqual(parseRedisUrl('redis://al%40ice:p%3Ass@h:6380/2'), {
      tls: false,
      host: 'h',
      port: 6380,
      username: 'al@ice',
      password: 'p:ss',
      database: 2,
    });
    assert.deepEqual(parseRedisUrl('rediss://:secret@[::1]:6390/0'), {
      tls: true,
      host: '::1',
      port: 6390,
      password: 'secret',
      database: 0,
    });
    assert.deepEqual(parseRedisUrl('unix:///var/run/redis.sock?db=1'), {
      tls: false,
      socketPath: '/var/run/redis.sock',
      database: 1,
    });
    assert.deepEqual(parseRedisUrl('unix://u:pw@localhost/tmp/r.sock?db=3'), {
      tls: false,
      socketPath: '/tmp/r.sock',
      username: 'u',
      password: 'pw',
      database: 3,
    });
    assert.equal(parseRedisUrl('unix:///tmp/r.sock?password=pw').password, 'pw');
    assert.deepEqual(
      parseRedisUrl('rediss://h/1?name=app&ping=0&reconnect=false&tlsVerify=none&connectTimeoutMs=250'),
      {
        tls: true,
        host: 'h',
        port: 6379,
        database: 1,
        name: 'app',
        pingSeconds: 0,
        reconnect: false,
        tlsVerify: 'none',
        connectTimeoutMs: 250,
      },
    );
    assert.throws(
      () => parseRedisUrl('unix:///tmp/r.sock?timeout=3'),
      (e) => isSessionError(e, 'INVALID_OPTIONS'),
    );
  });
});

describe('redis store connections', () => {
  it("uses a unix socket (Dancer's sock)", async () => {
    const server = await startRedis({ unixSocket: true });
    try {
      const socketPath = server.socketPath as string;
      for (const config of [
        { kind: 'redis' as const, url: `unix://${socketPath}` },
        { kind: 'redis' as const, url: `unix://${socketPath}?db=2` },
        fromDancerRedis({ sock: socketPath }).store,
      ]) {
        const { store } = await createStore(config);
        const key = hashId(generateId());
        await store.set(key, record());
        assert.deepEqual((await store.get(key))?.fields, { a: '"1"' });
        await store.close();
      }
    } finally {
      await server.stop();
    }
  });

  it('authenticates, selects the database and names the connection', async () => {
    const server = await startRedis({ password: 'pa:ss' });
    const check = createClient({ url: `redis://:pa%3Ass@127.0.0.1:${server.port}/3` });
    try {
      const store = new RedisStore({ url: `redis://:pa%3Ass@127.0.0.1:${server.port}/3?name=tessera-test` });
      const key = hashId(generateId());
      await store.set(key, record());
      await check.connect();
      assert.equal(await check.exists(`tessera:${key}`), 1, 'written to database 3');
      assert.match(await check.clientList().then((list) => list.map((c) => c.name).join(' ')), /tessera-test/);
      await store.close();
      const wrong = new RedisStore({ url: `redis://:wrong@127.0.0.1:${server.port}` });
      await assert.rejects(wrong.get(key), (e) => isSessionError(e, 'STORE_UNAVAILABLE'));
      await wrong.close();
    } finally {
      await check.close().catch(() => {});
      await server.stop();
    }
  });

  it('connects over TLS, verifying the certificate unless tlsVerify is none (redis_ssl, redis_ssl_verify_mode)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-tls-'));
    const [cert, keyFile] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    const request = 'req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1';
    await promisify(execFile)('openssl', [...request.split(' '), '-keyout', keyFile, '-out', cert]);
    const tlsPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const server = await startRedis({
      args: [
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        cert,
        '--tls-key-file',
        keyFile,
        '--tls-auth-clients',
        'no',
      ],
    });
    try {
      const ca = await readFile(cert);
      const server_ = `127.0.0.1:${tlsPort}`;
      for (const config of [
        { kind: 'redis' as const, url: `rediss://127.0.0.1:${tlsPort}`, tls: { ca } },
        { kind: 'redis' as const, url: `rediss://127.0.0.1:${tlsPort}?tlsVerify=none` },
        fromCatalystRedis({ redis_server: server_, redis_ssl: 1, redis_ssl_verify_mode: 'SSL_VERIFY_NONE' }).store,
      ]) {
        const { store } = await createStore(config);
        const options = config;
        const key = hashId(generateId());
        await store.set(key, record());
        assert.ok(await store.get(key), JSON.stringify(Object.keys(options)));
        await store.close();
      }
      const unverified = new RedisStore({ url: `rediss://${server_}` });
      await assert.rejects(unverified.get(hashId(generateId())), (e) => isSessionError(e, 'STORE_UNAVAILABLE'));
      await unverified.close();
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('never closes a client it did not create', async () => {
    const stores = [
      new RedisStore({ client: nodeRedis, prefix: prefix() }),
      new RedisStore({ client: ioredis, prefix: prefix() }),
    ];
    for (const store of stores) {
      await store.set(hashId(generateId()), record());
      await store.close();
    }
    assert.equal(nodeRedis.isOpen, true);
    assert.equal(await nodeRedis.ping(), 'PONG');
    assert.equal(ioredis.status, 'ready');
    assert.equal(await ioredis.ping(), 'PONG');
  });

  it('logs every command with shortened keys and no values when debug is on', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const store = new RedisStore({
      client: nodeRedis,
      prefix: prefix(),
      debug: true,
      logger: { debug: (object) => lines.push(object as Record<string, unknown>), warn() {}, error() {} },
    });
    const key = hashId(generateId());
    await store.set(key, { ...record(), fields: { secret: '"hunter2"' } });
    await store.get(key);
    await store.close();
    // EVAL appears once when this server's script cache did not have the script yet.
    assert.deepEqual(
      lines.map((l) => l.command).filter((c) => c !== 'EVAL'),
      ['EVALSHA', 'HGETALL'],
    );
    const text = JSON.stringify(lines);
    assert.ok(!text.includes(key), 'the full key is never logged');
    assert.ok(text.includes(key.slice(0, 10)));
    assert.ok(!text.includes('hunter2'), 'values are never logged');
  });

  it('reports a key of the wrong type as CORRUPT_RECORD and keeps it', async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: prefix() });
    const key = hashId(generateId());
    await admin.set(store.prefix + key, 'not a hash', { PX: 60_000 });
    await assert.rejects(store.get(key), (e) => isSessionError(e, 'CORRUPT_RECORD'));
    assert.equal(await admin.get(store.prefix + key), 'not a hash');
    await store.close();
  });

  it('deletes an expired record whose key has no TTL when it finds it, and keeps a live one', async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: prefix() });
    const [stale, live] = [hashId(generateId()), hashId(generateId())];
    try {
      await store.set(stale, record());
      await store.set(live, record());
      await admin.hSet(store.prefix + stale, 'expiresAt', String(Date.now() - 1000));
      await admin.persist(store.prefix + stale);
      await admin.persist(store.prefix + live);
      assert.equal(await store.get(stale), null);
      assert.equal(await admin.exists(store.prefix + stale), 0, 'the expired hash is deleted');
      assert.ok(await store.get(live));
      assert.equal(await admin.exists(store.prefix + live), 1);
    } finally {
      await admin.del([store.prefix + stale, store.prefix + live]);
      await store.close();
    }
  });

  it('names the store and only the shortened key in corrupt-record errors, fields included', async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: prefix() });
    const engine = new SessionEngine<{ cart: string[] }>({
      store,
      secrets: ['redis-corrupt-secret-0123456789abcdefgh'],
    });
    const redisKeys: string[] = [];
    const named = (key: string) => (e: unknown) => {
      assert.ok(isSessionError(e, 'CORRUPT_RECORD'), String(e));
      assert.equal(e.scope, 'redis');
      assert.ok(e.message.includes(key.slice(0, 10)), e.message);
      assert.ok(!e.message.includes(key), `the full key is not shown: ${e.message}`);
      return true;
    };
    try {
      const session = engine.session(undefined);
      await session.set('cart', ['book']);
      const cookie = (await engine.commit(session)).setCookie?.split(';')[0] ?? '';
      const key = session.key as string;
      redisKeys.push(store.prefix + key);
      await admin.hSet(store.prefix + key, 'd:cart', '{not json');
      await assert.rejects(engine.session(cookie).get('cart'), named(key));

      const huge = hashId(generateId());
      redisKeys.push(store.prefix + huge);
      await admin.hSet(store.prefix + huge, { createdAt: '9'.repeat(400), expiresAt: String(Date.now() + 60_000) });
      await admin.pExpire(store.prefix + huge, 60_000);
      await assert.rejects(store.get(huge), named(huge));
    } finally {
      await admin.del(redisKeys);
      await engine.close();
    }
  });

  it('keeps the user index alive as long as the sessions in it', async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: prefix(), userIndexTtlSeconds: 60 });
    const key = hashId(generateId());
    const first = record('dora');
    await store.set(key, first);
    const indexKey = `${store.prefix}user:dora`;
    const indexed = await admin.pExpireTime(indexKey);
    assert.ok(indexed >= first.createdAt + 60_000, 'the index expires no earlier than the horizon');
    // Sliding expiry past the index horizon: the index entry is extended before the session.
    const later = Date.now() + 600_000;
    assert.equal(await store.touch(key, later), true);
    assert.ok((await admin.pExpireTime(indexKey)) >= later, 'the index outlives the touched session');
    assert.equal(await admin.pExpireTime(store.prefix + key), later);
    assert.deepEqual(
      (await store.listByUser('dora')).map((e) => e.expiresAt),
      [later],
    );
    await store.destroyByUser('dora');
    await store.close();
  });

  it("set over a record takes the key out of the previous owner's index; on a new key it writes the record whole", async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: prefix() });
    const key = hashId(generateId());
    const first = record('kim');
    await store.set(key, first);
    assert.equal(await admin.pExpireTime(store.prefix + key), first.expiresAt);
    assert.deepEqual(
      { ...(await admin.hGetAll(store.prefix + key)) },
      {
        createdAt: String(first.createdAt),
        expiresAt: String(first.expiresAt),
        userId: 'kim',
        indexedUntil: String(await admin.zScore(`${store.prefix}user:kim`, key)),
        'd:a': '"1"',
      },
    );
    await store.set(key, { ...record('lea'), fields: { b: '"2"' } });
    // Straight on the index: listByUser would also hide a member its session no longer belongs to.
    assert.equal(await admin.zScore(`${store.prefix}user:kim`, key), null, "out of kim's index");
    assert.deepEqual(await store.listByUser('kim'), []);
    assert.deepEqual(
      (await store.listByUser('lea')).map((entry) => entry.key),
      [key],
    );
    assert.deepEqual((await store.get(key))?.fields, { b: '"2"' }, 'the old fields are gone');
    await store.set(key, record(null));
    assert.deepEqual(await store.listByUser('lea'), []);
    assert.equal((await store.get(key))?.userId, null);
    await store.destroy(key);
    await store.close();
  });

  it("keeps the key's TTL at the record's expiry through patches and touches, moved or not", async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: prefix() });
    const key = hashId(generateId());
    const redisKey = store.prefix + key;
    const first = record('hal');
    await store.set(key, first);
    assert.equal(await admin.pExpireTime(redisKey), first.expiresAt);
    // A change within a touch step keeps the expiry: the field is written, the TTL stays.
    assert.equal(await store.patch(key, { set: { a: '"2"' }, unset: [], expiresAt: first.expiresAt }), true);
    assert.equal(await admin.pExpireTime(redisKey), first.expiresAt);
    assert.equal(await admin.hGet(redisKey, 'd:a'), '"2"');
    // An owner change with the same expiry writes the owner, not the expiry.
    assert.equal(await store.patch(key, { set: {}, unset: [], expiresAt: first.expiresAt, userId: 'ivy' }), true);
    assert.equal((await store.get(key))?.userId, 'ivy');
    assert.equal(await admin.pExpireTime(redisKey), first.expiresAt);
    // A change that moves the expiry moves both; so does a touch, and a move back to an earlier time.
    const later = first.expiresAt + 30_000;
    assert.equal(await store.patch(key, { set: { b: '"3"' }, unset: ['a'], expiresAt: later }), true);
    assert.equal(await admin.pExpireTime(redisKey), later);
    for (const expiresAt of [later + 45_000, later - 10_000]) {
      assert.equal(await store.touch(key, expiresAt), true);
      assert.equal(await admin.pExpireTime(redisKey), expiresAt);
      assert.equal((await store.get(key))?.expiresAt, expiresAt);
    }
    assert.deepEqual((await store.get(key))?.fields, { b: '"3"' });
    await store.destroyByUser('ivy');
    await store.close();
  });

  it("a patch that changes or clears the owner takes the key out of the previous owner's index", async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: prefix() });
    const key = hashId(generateId());
    const first = record('mia');
    await store.set(key, first);
    const index = (user: string) => admin.zScore(`${store.prefix}user:${user}`, key);
    assert.notEqual(await index('mia'), null);
    assert.equal(await store.patch(key, { set: {}, unset: [], expiresAt: first.expiresAt, userId: 'ned' }), true);
    assert.equal(await index('mia'), null, "out of mia's index");
    assert.notEqual(await index('ned'), null, "in ned's index");
    assert.equal(await store.patch(key, { set: {}, unset: [], expiresAt: first.expiresAt, userId: null }), true);
    assert.equal(await index('ned'), null, "out of ned's index once the owner is cleared");
    assert.equal((await store.get(key))?.userId, null);
    await store.destroy(key);
    await store.close();
  });

  it('patches hundreds of fields at once, with an owner change, in chunks the script can unpack', async () => {
    const store = new RedisStore({ client: nodeRedis, prefix: prefix() });
    const key = hashId(generateId());
    const fields: Record<string, string> = {};
    for (let i = 0; i < 450; i++) fields[`old${i}`] = `"${i}"`;
    await store.set(key, { ...record('erin'), fields });
    const set: Record<string, string> = {};
    for (let i = 0; i < 450; i++) set[`new${i}`] = `"${i}"`;
    const unset = Array.from({ length: 449 }, (_, i) => `old${i}`);
    const expiresAt = Date.now() + 120_000;
    assert.equal(await store.patch(key, { set, unset, expiresAt, userId: null }), true);
    const after = await store.get(key);
    assert.deepEqual(after?.fields, { ...set, old449: '"449"' });
    assert.equal(after?.userId, null, 'the owner was cleared');
    assert.equal(after?.expiresAt, expiresAt);
    assert.deepEqual(await store.listByUser('erin'), []);
    await store.destroy(key);
    await store.close();
  });

  it('writes through an emptied script cache (a restart, a failover, SCRIPT FLUSH): EVALSHA fails, EVAL runs', async () => {
    const server = await startRedis(); // a private server: the flush touches no other test
    const store = new RedisStore({ url: server.url, prefix: prefix() });
    const client = createClient({ url: server.url });
    try {
      await client.connect();
      const key = hashId(generateId());
      await store.set(key, record('fay'));
      const patched = { set: { b: '"2"' }, unset: ['a'], expiresAt: Date.now() + 90_000 };
      for (const write of [
        () => store.patch(key, patched),
        () => store.touch(key, patched.expiresAt + 1000),
        () => store.patch(key, { set: { c: '"3"' }, unset: [], expiresAt: patched.expiresAt + 2000, userId: 'gus' }),
      ]) {
        await client.sendCommand(['SCRIPT', 'FLUSH']);
        assert.equal(await write(), true);
      }
      const stored = await store.get(key);
      assert.deepEqual(stored?.fields, { b: '"2"', c: '"3"' });
      assert.equal(stored?.userId, 'gus');
      assert.equal(stored?.expiresAt, patched.expiresAt + 2000);
      assert.deepEqual(
        (await store.listByUser('gus')).map((entry) => entry.key),
        [key],
      );
    } finally {
      await client.close().catch(() => {});
      await store.close();
      await server.stop();
    }
  });
});
