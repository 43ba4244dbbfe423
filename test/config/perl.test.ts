import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  createStore,
  dsnToUrl,
  fromCatalystRedis,
  fromDancerElasticSearch,
  fromDancerRedis,
  fromDbic,
  resolveConfig,
} from '../../src/config/index.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { ROOT } from '../support/packed.ts';

/** Asserts an INVALID_OPTIONS error whose message contains every one of `parts`. */
function rejects(run: () => unknown, ...parts: string[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(isSessionError(error, 'INVALID_OPTIONS'), `expected INVALID_OPTIONS, got ${String(error)}`);
    for (const part of parts)
      assert.ok((error as Error).message.includes(part), `"${part}" in: ${(error as Error).message}`);
    return true;
  });
}

const secret = 'a-long-enough-signing-secret-0123456789';

describe('Dancer redis_session (Dancer::Session::Redis, Redis::Simple)', () => {
  it('maps server, password, database, ping, debug and expire', () => {
    const dancer = { server: 'redi.example.com:6379', password: 'p@ss', database: 1, expire: 3600, debug: 0, ping: 5 };
    assert.deepEqual(fromDancerRedis(dancer), {
      store: { kind: 'redis', url: 'redis://:p%40ss@redi.example.com:6379/1?ping=5', debug: false },
      session: { idleTimeoutSeconds: 3600 },
    });
    assert.deepEqual(fromDancerRedis({ sock: '/var/run/redis.sock', database: '2', password: 'pw' }), {
      store: { kind: 'redis', url: 'unix:///var/run/redis.sock?db=2&password=pw' },
      session: { idleTimeoutSeconds: 900 },
    });
    assert.equal(fromDancerRedis({ server: '[::1]' }).store.url, 'redis://[::1]:6379/0');
  });

  it('refuses unknown keys and bad values, naming the key', () => {
    rejects(
      () => fromDancerRedis({ servr: 'h:1' }),
      'redis_session.servr: is not a known option (did you mean "server"?)',
    );
    rejects(
      () => fromDancerRedis({ database: 'one' }),
      'redis_session.database: must be a whole number >= 0, got "one"',
    );
    rejects(() => fromDancerRedis({ expire: 0 }), 'redis_session.expire');
    rejects(() => fromDancerRedis({ debug: 'yes' }), 'redis_session.debug');
    rejects(() => fromDancerRedis({ server: 'h:port' }), 'redis_session.server');
  });
});

describe('Catalyst Plugin::Session (Catalyst::Plugin::Session::Store::Redis)', () => {
  it('maps every redis_* key and expires', () => {
    const catalyst = {
      expires: 3600,
      redis_server: '127.0.0.1:6379',
      redis_debug: 0,
      redis_reconnect: 1,
      redis_db: 5,
      redis_ssl: 1,
      redis_name: 'name',
      redis_username: 'username',
      redis_password: 'password',
      redis_ssl_verify_mode: 'SSL_VERIFY_NONE',
    };
    assert.deepEqual(fromCatalystRedis(catalyst), {
      store: {
        kind: 'redis',
        url: 'rediss://username:password@127.0.0.1:6379/5?name=name&reconnect=true&tlsVerify=none',
        debug: false,
      },
      session: { idleTimeoutSeconds: 3600 },
    });
    assert.deepEqual(fromCatalystRedis({ redis_conservative_reconnect: '1', redis_ssl_verify_mode: 1 }), {
      store: { kind: 'redis', url: 'redis://127.0.0.1:6379/0?reconnect=true' },
      session: { idleTimeoutSeconds: 7200 },
    });
    assert.equal(fromCatalystRedis({ redis_reconnect: 0 }).store.url, 'redis://127.0.0.1:6379/0?reconnect=false');
  });

  it('gives URLs the Redis store accepts', async () => {
    const { store } = await createStore(
      fromCatalystRedis({ redis_ssl: 1, redis_ssl_verify_mode: 0, redis_name: 'n' }).store,
    );
    await store.close();
  });

  it('refuses unknown keys and bad values', () => {
    rejects(() => fromCatalystRedis({ redis_sever: 'h:1' }), 'did you mean "redis_server"?');
    rejects(() => fromCatalystRedis({ redis_ssl: 'yes' }), 'Plugin::Session.redis_ssl');
    rejects(() => fromCatalystRedis({ redis_ssl: 1, redis_ssl_verify_mode: 'SOMETIMES' }), 'redis_ssl_verify_mode');
  });
});

describe('Dancer2 engines.session.DBIC (Dancer2::Session::DBIC)', () => {
  it('maps the engine example', () => {
    assert.deepEqual(
      fromDbic({
        dsn: 'DBI:mysql:database=testing;host=127.0.0.1;port=3306',
        schema_class: 'Interchange6::Schema',
        user: 'user',
        password: 'pass word',
        resultset: 'MySession',
        id_column: 'my_session_id',
        data_column: 'my_session_data',
      }),
      {
        store: {
          kind: 'sql',
          url: 'mysql://user:pass%20word@127.0.0.1:3306/testing',
          table: 'MySession',
          idColumn: 'my_session_id',
          dataColumn: 'my_session_data',
        },
        session: {},
      },
    );
  });

  it('reads the DSNs of DBD::Pg, DBD::SQLite, DBD::mysql and DBD::MariaDB', () => {
    assert.equal(dsnToUrl('DBI:Pg:dbname=app;host=db.local;port=5433'), 'postgres://db.local:5433/app');
    assert.equal(dsnToUrl('dbi:Pg:dbname=app;host=db;sslmode=require'), 'postgres://db/app?sslmode=require');
    assert.equal(dsnToUrl('DBI:Pg:dbname=app'), 'postgres://127.0.0.1/app');
    assert.equal(dsnToUrl('DBI:SQLite:dbname=/var/app/sessions.db'), 'sqlite:/var/app/sessions.db');
    assert.equal(dsnToUrl('DBI:SQLite:sessions.db'), 'sqlite:sessions.db');
    assert.equal(dsnToUrl('DBI:SQLite:dbname=:memory:'), 'sqlite::memory:');
    assert.equal(dsnToUrl('DBI:mysql:testing'), 'mysql://127.0.0.1/testing');
    assert.equal(dsnToUrl('DBI:MariaDB:database=t;host=::1;port=3306'), 'mysql://[::1]:3306/t');
  });

  it('gives options a store accepts, and accepts schema_class', async () => {
    const { store } = await createStore(fromDbic({ dsn: 'DBI:SQLite:dbname=:memory:', user: '', password: '' }).store);
    assert.ok(store instanceof SqlStore);
    assert.equal(store.table, 'sessions');
    await store.close();
    assert.deepEqual(fromDbic({ dsn: 'DBI:SQLite:dbname=s.db', schema_class: 'My::Schema' }).store, {
      kind: 'sql',
      url: 'sqlite:s.db',
    });
  });

  it('refuses unknown keys and what cannot come from a file, clearly', () => {
    rejects(() => fromDbic({ dsn: 'DBI:SQLite:dbname=s.db', table: 'x' }), 'table: is not a known option');
    rejects(() => fromDbic({ dsn: 'DBI:SQLite:dbname=s.db', cookie_name: 'x' }), 'engine');
    rejects(() => fromDbic({ dsn: 'DBI:SQLite:dbname=s.db', schema: {} }), 'db option');
    rejects(() => fromDbic({}), 'engines.session.DBIC.dsn: is required');
    rejects(() => fromDbic({ dsn: 'mysql://h/db' }), 'DBI:<driver>');
    rejects(() => fromDbic({ dsn: 'DBI:Oracle:sid=x' }), '"Oracle", which is not supported');
    rejects(() => fromDbic({ dsn: 'DBI:mysql:database=t;mysql_socket=/tmp/s' }), 'mysql_socket');
    rejects(() => fromDbic({ dsn: 'DBI:Pg:dbname=t;port=abc' }), 'port');
    rejects(() => fromDbic({ dsn: 'DBI:SQLite:dbname=s.db', user: 'bob' }), 'SQLite');
    rejects(() => fromDbic({ dsn: 'DBI:SQLite:dbname=s.db', id_column: 5 }), 'id_column');
  });
});

describe('Dancer session_options (Dancer::Session::ElasticSearch)', () => {
  it('maps connection, index, type, signing and is_lazy', () => {
    assert.deepEqual(
      fromDancerElasticSearch({
        connection: { nodes: ['http://127.0.0.1:9200'] },
        index: 'sess',
        type: 'my_session',
        signing: { secret, length: 24 },
        is_lazy: 0,
      }),
      {
        store: { kind: 'elasticsearch', url: 'http://127.0.0.1:9200', index: 'sess', type: 'my_session' },
        session: { secrets: [secret], tagBytes: 24, flush: 'immediate' },
      },
    );
  });

  it('maps is_lazy on to manual flushing, Perl-style node lists and userinfo', () => {
    const { store, session } = fromDancerElasticSearch({
      connection: { servers: ['es1:9201', 'es2'], userinfo: 'app:s3cret:x', use_https: 1 },
      signing: { secret: [secret, `${secret}-old`], length: '16' },
      is_lazy: '1',
    });
    assert.deepEqual(store, {
      kind: 'elasticsearch',
      clientOptions: {
        auth: { username: 'app', password: 's3cret:x' },
        nodes: ['https://es1:9201', 'https://es2:9200'],
      },
    });
    assert.deepEqual(session, { secrets: [secret, `${secret}-old`], tagBytes: 16, flush: 'manual' });
    assert.equal(
      fromDancerElasticSearch({ connection: { node: 'es:9200', userinfo: 'u:p w' }, signing: { secret } }).store.url,
      'http://u:p%20w@es:9200',
    );
    assert.equal(fromDancerElasticSearch({ signing: { secret } }).session.tagBytes, 32, 'no length: the full tag');
  });

  it('refuses a signing.length under 128 bits, naming signing.length', () => {
    for (const length of [10, 15, '8']) {
      rejects(() => fromDancerElasticSearch({ signing: { secret, length } }), 'session_options.signing.length');
    }
    for (const length of [33, 16.5, 'ten']) rejects(() => fromDancerElasticSearch({ signing: { secret, length } }));
  });

  it('refuses unknown keys, a missing or short secret, and bad connection settings', () => {
    const bad: unknown[] = [
      { signing: { secret }, expire: 900 },
      { signing: { secret, salt: 'x' } },
      { signing: { secret }, connection: { transport: 'http' } },
      { signing: { secret }, connection: { servers: 'a:1', nodes: 'b:2' } },
      { signing: { secret }, connection: { userinfo: 'nopassword' } },
      { signing: { secret }, is_lazy: 'maybe' },
      { signing: {} },
      { signing: { secret: 'ldjaldjaklsdanm.m' } },
    ];
    for (const config of bad) rejects(() => fromDancerElasticSearch(config));
  });
});

describe('whole Perl settings through resolveConfig', () => {
  it('finds each engine by its block', async () => {
    const dancer = await resolveConfig({ session: 'Redis', redis_session: { server: '127.0.0.1:6379', expire: 60 } });
    assert.equal(dancer.kind, 'redis');
    assert.equal(dancer.session.idleTimeoutSeconds, 60);
    await dancer.store.close();
    const catalyst = await resolveConfig({ 'Plugin::Session': { expires: 120 } });
    assert.equal(catalyst.kind, 'redis');
    assert.equal(catalyst.session.idleTimeoutSeconds, 120);
    await catalyst.store.close();
    await assert.rejects(resolveConfig({ session: 'Memcached', redis_session: {} }), (e) =>
      isSessionError(e, 'INVALID_OPTIONS'),
    );
    await assert.rejects(resolveConfig({ session: 'Redis', session_options: { signing: { secret } } }), (e) =>
      isSessionError(e, 'INVALID_OPTIONS'),
    );
  });
});

/** The settings a reader accepts, as its own error for an unknown key lists them ("known: a, b"). */
function known(read: (block: unknown) => unknown, block: Record<string, unknown>, prefix = ''): string[] {
  try {
    read(block);
  } catch (error) {
    const list = /known: (.+)$/.exec((error as Error).message)?.[1];
    if (list) return list.split(', ').map((name) => `${prefix}${name}`);
  }
  throw new Error(`no list of known settings from ${JSON.stringify(block)}`);
}

/** The rows of a page's seed-setting tables: those headed with "seed" or "setting". */
function seedTableRows(page: string): string {
  const lines = readFileSync(path.join(ROOT, page), 'utf8').split('\n');
  const rows: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i] ?? '';
    if (!/^\|.*\b(seed|setting)\b.*\|$/i.test(head) || !/^\|[\s:|-]+\|$/.test(lines[i + 1] ?? '')) continue;
    for (let j = i + 2; /^\|/.test(lines[j] ?? ''); j++) rows.push(lines[j] ?? '');
  }
  return rows.join('\n');
}

describe('the store pages name every Perl setting tessera/config reads, in their seed tables', () => {
  const unknown = { zz_not_a_setting: 1 };
  const pages: Array<[string, string[]]> = [
    ['docs/stores/redis.md', [...known(fromDancerRedis, unknown), ...known(fromCatalystRedis, unknown)]],
    // `schema` is refused by name (a live Perl object), so it is in no "known" list, but the seed has it.
    ['docs/stores/sql.md', [...known(fromDbic, { dsn: 'DBI:SQLite:x.db', ...unknown }), 'schema']],
    [
      'docs/stores/elasticsearch.md',
      [
        ...known(fromDancerElasticSearch, unknown),
        ...known(fromDancerElasticSearch, { signing: unknown }, 'signing.'),
        ...known(fromDancerElasticSearch, { connection: unknown }),
      ],
    ],
  ];
  for (const [page, settings] of pages) {
    it(`${page}: ${settings.length} settings`, () => {
      const rows = seedTableRows(page);
      assert.ok(rows.length > 0, `${page} has no seed-setting table`);
      // `signing.secret` names `signing` too.
      const missing = settings.filter(
        (name) => ![`\`${name}\``, `\`${name}:`, `\`${name}.`].some((form) => rows.includes(form)),
      );
      assert.deepEqual(missing, [], `${page}'s seed table does not name these settings`);
    });
  }
});
