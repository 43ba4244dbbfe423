// stores: redis sqlite
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { engineFromEnv, loadConfig, resolveConfig, storeTypeOf } from '../../src/config/index.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { CachedStore } from '../../src/stores/cache/index.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { needs } from '../support/stores.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const secret = 'config-test-secret-0123456789abcdefghij';
const dir = mkdtempSync(join(tmpdir(), 'tessera-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('configuration', needs('redis', 'sqlite'), () => {
  it('knows the store kind of every URL scheme, and names a bad one', () => {
    assert.equal(storeTypeOf('redis://h:6379/1'), 'redis');
    assert.equal(storeTypeOf('unix:///run/redis.sock'), 'redis');
    assert.equal(storeTypeOf('sqlite:data/s.db'), 'sql');
    assert.equal(storeTypeOf('postgres://u@h/db'), 'sql');
    assert.equal(storeTypeOf('mariadb://root@h/test'), 'sql');
    assert.equal(storeTypeOf('elasticsearch+https://es:9200'), 'elasticsearch');
    assert.equal(storeTypeOf('opensearch+http://os:9200'), 'opensearch');
    assert.throws(
      () => storeTypeOf('mongodb://x:secret@h/db'),
      (e) => {
        assert.ok(isSessionError(e, 'INVALID_OPTIONS'));
        assert.doesNotMatch((e as Error).message, /secret/, 'credentials are not echoed');
        return true;
      },
    );
  });

  it('reads a YAML file with variables from the environment, and switches stores with no code change', async () => {
    const file = join(dir, 'tessera.yml');
    writeFileSync(
      file,
      `store:\n  url: sqlite:${join(dir, 's.db')}\n  table: cfg_sessions\nsession:\n  secrets: ["\${SECRET}"]\n  idleTimeoutSeconds: 60\n`,
    );
    const resolved = await loadConfig(file, { SECRET: secret });
    assert.ok(resolved.store instanceof SqlStore);
    assert.equal(resolved.session.idleTimeoutSeconds, 60);
    assert.deepEqual(resolved.session.secrets, [secret]);
    await resolved.store.close();

    const engine = await engineFromEnv({ TESSERA_STORE_URL: REDIS_URL, TESSERA_SECRETS: secret });
    assert.ok(engine.store instanceof RedisStore);
    await engine.close();
  });

  it('puts the read tier in front when asked', async () => {
    const resolved = await resolveConfig({
      store: { url: REDIS_URL, prefix: `cfg:${randomUUID()}:` },
      cache: { maxEntries: 10 },
    });
    assert.ok(resolved.store instanceof CachedStore);
    await resolved.store.close();
  });

  it('reads the seeds’ own configurations', async () => {
    const dancer = await resolveConfig({
      session: 'Redis',
      redis_session: { server: '127.0.0.1:6379', database: 1, expire: 3600 },
    });
    assert.equal(dancer.kind, 'redis');
    assert.equal(dancer.session.idleTimeoutSeconds, 3600);
    await dancer.store.close();
    const dbic = await resolveConfig({
      engines: { session: { DBIC: { dsn: `DBI:SQLite:dbname=${join(dir, 'dbic.db')}`, resultset: 'Session' } } },
    });
    assert.equal(dbic.kind, 'sql');
    await dbic.store.close();
    const es = await resolveConfig({
      session: 'ElasticSearch',
      session_options: {
        connection: { nodes: ['http://127.0.0.1:9200'] },
        index: 'sess',
        signing: { secret, length: 16 },
        is_lazy: 1,
      },
    });
    assert.equal(es.kind, 'elasticsearch');
    assert.equal(es.session.flush, 'manual');
    assert.equal(es.session.tagBytes, 16);
    await es.store.close();
  });

  it('refuses bad configurations with a clear INVALID_OPTIONS', async () => {
    const bad: unknown[] = [
      null,
      { stores: 'redis://x' },
      { store: 'redis://127.0.0.1', extra: 1 },
      { store: { kind: 'mongo' } },
      { store: 'redis://127.0.0.1', cache: { size: 1 } },
      { store: 'sqlite::memory:', cache: {} },
    ];
    for (const config of bad) {
      await assert.rejects(resolveConfig(config), (e) => isSessionError(e, 'INVALID_OPTIONS'), JSON.stringify(config));
    }
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ "store": ');
    await assert.rejects(loadConfig(broken), (e) => isSessionError(e, 'INVALID_OPTIONS'));
    await assert.rejects(loadConfig(join(dir, 'missing.json')), (e) => isSessionError(e, 'INVALID_OPTIONS'));
    const unset = join(dir, 'unset.json');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's own ${VAR} syntax
    writeFileSync(unset, '{ "store": "${NOT_SET_ANYWHERE}" }');
    await assert.rejects(loadConfig(unset, {}), /NOT_SET_ANYWHERE/);
  });

  it('expands variables in YAML values only, never in comments (the README example as printed)', async () => {
    const file = new URL('../fixtures/tessera.yml', import.meta.url).pathname;
    const resolved = await loadConfig(file, { STORE_URL: REDIS_URL, SESSION_SECRET: secret });
    assert.equal(resolved.kind, 'redis');
    assert.deepEqual(resolved.session.secrets, [secret]);
    await resolved.store.close();
    await assert.rejects(loadConfig(file, { STORE_URL: REDIS_URL }), (e) => isSessionError(e, 'INVALID_OPTIONS'));
    // A value from the environment stays one value: it cannot add YAML structure.
    const injected = await loadConfig(file, { STORE_URL: REDIS_URL, SESSION_SECRET: `${secret}"]\n  signed: false #` });
    assert.deepEqual(injected.session.secrets, [`${secret}"]\n  signed: false #`]);
    assert.equal(injected.session.signed, undefined);
    await injected.store.close();
  });

  it('engineFromEnv without secrets names TESSERA_SECRETS', async () => {
    await assert.rejects(
      engineFromEnv({ TESSERA_STORE_URL: 'memory:' }),
      (e) => isSessionError(e, 'INVALID_OPTIONS') && (e as Error).message.includes('TESSERA_SECRETS'),
    );
  });
});
