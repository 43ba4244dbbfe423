// stores: elasticsearch
/**
 * The Elasticsearch / OpenSearch store: the conformance suite through every official client,
 * then focused tests. With ELASTICSEARCH_URL / OPENSEARCH_URL set, that flavor runs against the
 * real cluster (e.g. `ELASTICSEARCH_URL=http://elastic:pw@localhost:9200`); otherwise against
 * the protocol double in test/support/es-double.ts, one per server version.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Client as EsClient } from '@elastic/elasticsearch';
import { Client as OsClient } from '@opensearch-project/opensearch';
import { Client as Es7Client } from 'es7';
import { Client as Es8Client } from 'es8';
import { Client as Os2Client } from 'os2';
import { isSessionError } from '../../src/core/errors.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import type { SessionRecord, Store } from '../../src/core/store.ts';
import {
  type ElasticsearchClientLike,
  ElasticsearchStore,
  type ElasticsearchStoreOptions,
  type EsRequestOptions,
  type EsRequestParams,
} from '../../src/stores/elasticsearch/index.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { type EsDouble, startEsDouble } from '../support/es-double.ts';

type Flavor = 'elasticsearch' | 'opensearch';
type Closable = ElasticsearchClientLike & { close(): Promise<void> };
// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
type Body = Record<string, any>;

const REAL: Record<Flavor, string | undefined> = {
  elasticsearch: process.env.ELASTICSEARCH_URL,
  opensearch: process.env.OPENSEARCH_URL,
};

/** Every supported client fits the structural type (checked by tsc). */
const CLIENTS = {
  '@elastic/elasticsearch 9': (node: string): Closable => new EsClient({ node }),
  '@elastic/elasticsearch 8': (node: string): Closable => new Es8Client({ node }),
  '@elastic/elasticsearch 7': (node: string): Closable => new Es7Client({ node }),
  '@opensearch-project/opensearch 3': (node: string): Closable => new OsClient({ node }),
  '@opensearch-project/opensearch 2': (node: string): Closable => new Os2Client({ node }),
};
type ClientName = keyof typeof CLIENTS;

/** A server (a double of this version, or the real cluster) and the client the store talks through. */
interface Target {
  flavor: Flavor;
  version: string;
  /** A user-passed client of this library, or `undefined` for a store-created client. */
  client: ClientName | undefined;
}

const DOUBLE_TARGETS: Target[] = [
  { flavor: 'elasticsearch', version: '9.1.0', client: '@elastic/elasticsearch 9' },
  { flavor: 'elasticsearch', version: '9.1.0', client: undefined },
  { flavor: 'elasticsearch', version: '8.15.0', client: '@elastic/elasticsearch 8' },
  { flavor: 'elasticsearch', version: '8.15.0', client: undefined },
  { flavor: 'elasticsearch', version: '7.17.0', client: '@elastic/elasticsearch 7' },
  { flavor: 'elasticsearch', version: '7.17.0', client: undefined },
  { flavor: 'opensearch', version: '3.1.0', client: '@opensearch-project/opensearch 3' },
  { flavor: 'opensearch', version: '2.17.0', client: '@opensearch-project/opensearch 2' },
  { flavor: 'opensearch', version: '2.17.0', client: undefined },
  { flavor: 'opensearch', version: '1.3.20', client: '@opensearch-project/opensearch 3' },
];
const REAL_TARGETS = (flavor: Flavor): Target[] =>
  flavor === 'elasticsearch'
    ? [
        { flavor, version: 'real', client: '@elastic/elasticsearch 9' },
        { flavor, version: 'real', client: undefined },
      ]
    : [
        { flavor, version: 'real', client: '@opensearch-project/opensearch 3' },
        { flavor, version: 'real', client: '@opensearch-project/opensearch 2' },
        { flavor, version: 'real', client: undefined },
      ];
const TARGETS = (['elasticsearch', 'opensearch'] as const).flatMap((flavor) =>
  REAL[flavor] ? REAL_TARGETS(flavor) : DOUBLE_TARGETS.filter((t) => t.flavor === flavor),
);

const adminClientOf = (flavor: Flavor): ClientName =>
  flavor === 'opensearch' ? '@opensearch-project/opensearch 3' : '@elastic/elasticsearch 9';

const PLAIN_JSON = { accept: 'application/json', 'content-type': 'application/json' };

/** One REST call through any client, answering `{ statusCode, body }` (never throwing on `ignore`d statuses). */
async function raw(
  client: ElasticsearchClientLike,
  method: string,
  path: string,
  body?: Record<string, unknown>,
  ignore: number[] = [],
): Promise<{ statusCode: number; body: Body }> {
  const params: EsRequestParams = body ? { method, path, body } : { method, path };
  const res = (await client.transport.request(params, { headers: PLAIN_JSON, meta: true, ignore })) as {
    statusCode: number;
    body: Body;
  };
  return res;
}

const freshIndex = () => `tessera-test-${randomBytes(6).toString('hex')}`;
const newKey = () => hashId(generateId());
const record = (fields: Record<string, string> = { a: '"1"' }, userId: string | null = null): SessionRecord => {
  const now = Date.now();
  return { fields, createdAt: now, expiresAt: now + 60_000, userId };
};
const invalidOptions = (error: unknown) => isSessionError(error, 'INVALID_OPTIONS');

/** A server for one describe block: the real cluster, or a double started before and stopped after. */
function server(flavor: Flavor, version: string) {
  const state = { url: '', double: undefined as EsDouble | undefined, admin: undefined as Closable | undefined };
  before(async () => {
    const real = REAL[flavor];
    if (real) state.url = real;
    else {
      // No periodic refresh: only `settle` (or the store itself) makes writes searchable.
      state.double = await startEsDouble({ flavor, version, refreshIntervalMs: -1 });
      state.url = state.double.url;
    }
    state.admin = CLIENTS[adminClientOf(flavor)](state.url);
  });
  after(async () => {
    await state.admin?.close();
    await state.double?.stop();
  });
  return {
    get url() {
      return state.url;
    },
    get double() {
      return state.double;
    },
    get admin(): Closable {
      if (!state.admin) throw new Error('server not started');
      return state.admin;
    },
    async refresh(index: string) {
      await raw(this.admin, 'POST', `/${index}/_refresh`);
    },
    async drop(store: ElasticsearchStore) {
      await raw(this.admin, 'DELETE', `/${store.index}`, undefined, [404]);
      await raw(this.admin, 'DELETE', `/_index_template/${store.templateName}`, undefined, [400, 404]);
    },
  };
}

// -----------------------------------------------------------------------------------------------
// The conformance suite, once per target
// -----------------------------------------------------------------------------------------------

const hooks = { describe, it, beforeEach, afterEach };
for (const target of TARGETS) {
  const where =
    target.version === 'real'
      ? `${target.flavor} (${REAL[target.flavor]})`
      : `${target.flavor} ${target.version} (double)`;
  const through = target.client ? `user ${target.client} client` : `store-created ${target.flavor} client`;
  describe(`elasticsearch store: ${where}, ${through}`, () => {
    const srv = server(target.flavor, target.version);
    let userClient: Closable | undefined;
    before(() => {
      if (target.client) userClient = CLIENTS[target.client](srv.url);
    });
    after(async () => {
      await userClient?.close();
    });
    const options = (): ElasticsearchStoreOptions =>
      userClient ? { client: userClient } : { flavor: target.flavor, node: srv.url };

    runStoreConformance(hooks, {
      name: `${where}, ${through}`,
      createStore: () => new ElasticsearchStore({ ...options(), index: freshIndex() }),
      settle: (store) => srv.refresh((store as ElasticsearchStore).index),
      async writeCorruptRecord(store, key) {
        // Let the store create its index first: a write into a missing index would map it dynamically.
        await store.get(key);
        const now = Date.now();
        const doc = { fields: { a: 42 }, createdAt: now, expiresAt: now + 60_000, userId: null };
        await raw(srv.admin, 'PUT', `/${(store as ElasticsearchStore).index}/_doc/${key}`, doc);
      },
      cleanup: (store) => srv.drop(store as ElasticsearchStore),
    });
  });
}

// -----------------------------------------------------------------------------------------------
// Focused tests
// -----------------------------------------------------------------------------------------------

/** The client's own event for each response, to count 409s as the client saw them. */
function onResponse(client: Closable, listener: (statusCode: number | undefined) => void): void {
  type Listener = (error: unknown, result: { statusCode?: number } | null) => void;
  const c = client as unknown as {
    diagnostic?: { on(e: string, l: Listener): void };
    on?(e: string, l: Listener): void;
  };
  const emitter = c.diagnostic ?? c;
  emitter.on?.('response', (_error, result) => listener(result?.statusCode));
}

/**
 * A client that holds the answers to the first `parties` document reads until all of them have
 * been read: every writer then holds the same `_seq_no`, so all but one conditional write must
 * conflict. Structural typing at work: the store accepts it like any client.
 */
function readBarrier(inner: ElasticsearchClientLike, parties: number): ElasticsearchClientLike {
  const waiting: Array<() => void> = [];
  return {
    transport: {
      async request(params: EsRequestParams, options?: EsRequestOptions) {
        const result = await inner.transport.request(params, options);
        if (params.method === 'GET' && params.path.includes('/_doc/') && waiting.length < parties) {
          await new Promise<void>((resolve) => {
            waiting.push(resolve);
            if (waiting.length === parties) for (const release of waiting) release();
          });
        }
        return result;
      },
    },
  };
}

const CONCURRENCY_TARGETS: Array<{ flavor: Flavor; version: string; client: ClientName }> = [
  { flavor: 'elasticsearch', version: '9.1.0', client: '@elastic/elasticsearch 9' },
  { flavor: 'opensearch', version: '3.1.0', client: '@opensearch-project/opensearch 3' },
];

for (const target of CONCURRENCY_TARGETS) {
  describe(`elasticsearch store: optimistic concurrency through ${target.client}`, () => {
    const srv = server(target.flavor, target.version);
    let client: Closable;
    let conflicts = 0;
    before(() => {
      client = CLIENTS[target.client](srv.url);
      onResponse(client, (status) => {
        if (status === 409) conflicts++;
      });
    });
    after(() => client.close());

    it('two writers of one session with distinct keys both keep their change, through a 409 and a replay', async () => {
      const index = freshIndex();
      // Two writers (two app processes, say) whose document reads pass one barrier.
      const barrier = readBarrier(client, 2);
      const writerA = new ElasticsearchStore({ client: barrier, index });
      const writerB = new ElasticsearchStore({ client: barrier, index });
      const key = newKey();
      const first = record({ base: '"0"' });
      await writerA.set(key, first);
      await writerB.count(); // writer B's index setup, before the race
      conflicts = 0;
      srv.double?.requests.splice(0);
      const [a, b] = await Promise.all([
        writerA.patch(key, { set: { a: '"from A"' }, unset: [], expiresAt: first.expiresAt }),
        writerB.patch(key, { set: { b: '"from B"' }, unset: [], expiresAt: first.expiresAt }),
      ]);
      assert.deepEqual([a, b], [true, true]);
      assert.equal(conflicts, 1, 'exactly one conditional write was refused with 409');
      const docPath = `/${index}/_doc/${key}`;
      const log = srv.double?.requests.filter((r) => r.path === docPath) ?? [];
      const read = await writerB.get(key);
      assert.deepEqual(read?.fields, { base: '"0"', a: '"from A"', b: '"from B"' });
      if (srv.double) {
        const conditional = log.filter((r) => r.method === 'PUT' && /if_seq_no=\d+/.test(r.query));
        assert.equal(conditional.length, 3, 'two conditional writes and one replay');
        assert.equal(log.filter((r) => r.method === 'GET').length, 3, 'two reads and one re-read');
      }
      for (const store of [writerA, writerB]) await store.close();
      await raw(srv.admin, 'DELETE', `/${index}`);
      await raw(srv.admin, 'DELETE', `/_index_template/tessera-${index}`, undefined, [404]);
    });

    it('gives up with CONFLICT (a 503) when the conflicts outlast conflictRetries', async () => {
      const index = freshIndex();
      const barrier = readBarrier(client, 2);
      const writerA = new ElasticsearchStore({ client: barrier, index, conflictRetries: 0 });
      const writerB = new ElasticsearchStore({ client: barrier, index, conflictRetries: 0 });
      const key = newKey();
      const first = record({ base: '"0"' });
      await writerA.set(key, first);
      await writerB.count();
      const results = await Promise.allSettled([
        writerA.patch(key, { set: { a: '"1"' }, unset: [], expiresAt: first.expiresAt }),
        writerB.touch(key, first.expiresAt + 1000),
      ]);
      const failed = results.filter((r) => r.status === 'rejected');
      assert.equal(failed.length, 1);
      const reason = (failed[0] as PromiseRejectedResult).reason;
      assert.ok(isSessionError(reason, 'CONFLICT'));
      assert.equal(reason.status, 503);
      await writerA.close();
      await writerB.close();
      await raw(srv.admin, 'DELETE', `/${index}`);
      await raw(srv.admin, 'DELETE', `/_index_template/tessera-${index}`, undefined, [404]);
    });
  });
}

describe('elasticsearch store: index setup, records and revocation', () => {
  const srv = server('elasticsearch', '9.1.0');
  let client: Closable;
  const stores: ElasticsearchStore[] = [];
  const open = (options: ElasticsearchStoreOptions = {}) => {
    const store = new ElasticsearchStore({ client, index: freshIndex(), ...options });
    stores.push(store);
    return store;
  };
  before(() => {
    client = CLIENTS['@elastic/elasticsearch 9'](srv.url);
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) {
      await store.close();
      await srv.drop(store);
    }
  });
  after(() => client.close());

  it('creates the index template and the index, with fields stored but not indexed', async () => {
    const store = open();
    assert.equal(await store.count(), 0);
    const template = await raw(srv.admin, 'GET', `/_index_template/${store.templateName}`);
    const entry = template.body.index_templates[0].index_template;
    assert.deepEqual(entry.index_patterns, [store.index]);
    for (const mappings of [
      entry.template.mappings,
      (await raw(srv.admin, 'GET', `/${store.index}/_mapping`)).body[store.index].mappings,
    ]) {
      assert.equal(mappings.dynamic, 'strict');
      assert.deepEqual(mappings.properties.fields, { type: 'object', enabled: false });
      assert.equal(mappings.properties.userId.type, 'keyword');
      assert.equal(mappings.properties.expiresAt.type, 'date');
      assert.equal(mappings.properties.createdAt.type, 'date');
    }
    // `_id` is the store key, never an auto ID; the document is the record.
    const key = newKey();
    await store.set(key, record({ 'a.b': '"dotted"', x: '{"deep":{"er":1}}' }, 'u1'));
    const doc = await raw(srv.admin, 'GET', `/${store.index}/_doc/${key}`);
    assert.equal(doc.body._id, key);
    assert.deepEqual(Object.keys(doc.body._source).sort(), ['createdAt', 'expiresAt', 'fields', 'userId']);
    // Session keys never reach the mapping.
    const after = (await raw(srv.admin, 'GET', `/${store.index}/_mapping`)).body[store.index].mappings;
    assert.deepEqual(Object.keys(after.properties).sort(), ['createdAt', 'expiresAt', 'fields', 'userId']);
  });

  it('falls back to creating the index alone where templates are forbidden, and says so', async () => {
    const warnings: string[] = [];
    const forbidding: ElasticsearchClientLike = {
      transport: {
        async request(params, options) {
          if (params.path.startsWith('/_index_template/')) {
            const error = {
              type: 'security_exception',
              reason: 'action [indices:admin/index_template/put] is unauthorized',
            };
            return { statusCode: 403, body: { error, status: 403 } };
          }
          return client.transport.request(params, options);
        },
      },
    };
    const store = open({
      client: forbidding,
      logger: { debug() {}, warn: (_o, m) => warnings.push(m ?? ''), error: () => {} },
    });
    await store.set(newKey(), record());
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /could not create index template/);
    const mapping = (await raw(srv.admin, 'GET', `/${store.index}/_mapping`)).body[store.index].mappings;
    assert.deepEqual(mapping.properties.fields, { type: 'object', enabled: false });
    assert.equal(
      (await raw(srv.admin, 'GET', `/_index_template/${store.templateName}`, undefined, [404])).statusCode,
      404,
    );
  });

  it('on Elasticsearch 7.7 (no composable templates) creates the index alone, with a warning', async () => {
    const old = await startEsDouble({ version: '7.7.1', refreshIntervalMs: -1 });
    const legacy = CLIENTS['@elastic/elasticsearch 7'](old.url);
    const warnings: string[] = [];
    const store = new ElasticsearchStore({
      client: legacy,
      index: freshIndex(),
      logger: { debug() {}, warn: (_o, m) => warnings.push(m ?? ''), error: () => {} },
    });
    try {
      const key = newKey();
      await store.set(key, record({ a: '"1"' }, 'u'));
      assert.deepEqual((await store.get(key))?.fields, { a: '"1"' });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /could not create index template/);
      const mapping = (await raw(legacy, 'GET', `/${store.index}/_mapping`)).body[store.index].mappings;
      assert.deepEqual(mapping.properties.fields, { type: 'object', enabled: false });
    } finally {
      await store.close();
      await legacy.close();
      await old.stop();
    }
  });

  it('adds its fields to an existing empty index, and refuses one mapped by a stray write', async () => {
    const empty = freshIndex();
    await raw(srv.admin, 'PUT', `/${empty}`, { settings: { number_of_replicas: 0 } });
    const store = open({ index: empty });
    await store.set(newKey(), record({ a: '"1"' }, 'u'));
    const mapping = (await raw(srv.admin, 'GET', `/${empty}/_mapping`)).body[empty].mappings;
    assert.equal(mapping.properties.userId.type, 'keyword');

    const dynamic = freshIndex();
    await raw(srv.admin, 'PUT', `/${dynamic}/_doc/x`, { fields: { a: '1' }, createdAt: 1, expiresAt: 2, userId: 'u' });
    const wrong = open({ index: dynamic });
    await assert.rejects(
      wrong.get(newKey()),
      (error) => invalidOptions(error) && /userId is mapped as/.test(String(error)),
    );
  });

  it('with createIndex: false, a missing index is a clear error and nothing is created', async () => {
    const store = open({ createIndex: false });
    await assert.rejects(store.get(newKey()), (error) => invalidOptions(error) && String(error).includes(store.index));
    assert.equal((await raw(srv.admin, 'HEAD', `/${store.index}`, undefined, [404])).statusCode, 404);
  });

  it('reports a damaged document as CORRUPT_RECORD naming the index and the problem, and keeps it', async () => {
    const store = open();
    const key = newKey();
    await store.set(key, record());
    await raw(srv.admin, 'PUT', `/${store.index}/_doc/${key}`, { fields: {}, expiresAt: Date.now() + 60_000 });
    await assert.rejects(store.get(key), (error) => {
      assert.ok(isSessionError(error, 'CORRUPT_RECORD'));
      assert.match(error.message, new RegExp(`index "${store.index}".*createdAt is not a number`));
      return true;
    });
    await assert.rejects(store.patch(key, { set: {}, unset: [], expiresAt: Date.now() + 1000 }), (error) =>
      isSessionError(error, 'CORRUPT_RECORD'),
    );
    assert.equal((await raw(srv.admin, 'GET', `/${store.index}/_doc/${key}`)).body.found, true);
  });

  it('destroyByUser revokes sessions written a moment ago, before any refresh', async () => {
    const store = open();
    const keys = [newKey(), newKey()];
    for (const key of keys) await store.set(key, record({ a: '"1"' }, 'mallory'));
    const other = newKey();
    await store.set(other, record({ a: '"1"' }, 'alice'));
    assert.equal(await store.destroyByUser('mallory'), 2);
    for (const key of keys) assert.equal(await store.get(key), null);
    assert.ok(await store.get(other));
  });

  it("refresh: 'wait_for' makes each write searchable before it returns", async () => {
    const store = open({ refresh: 'wait_for' });
    const key = newKey();
    await store.set(key, record({ a: '"1"' }, 'bob'));
    assert.deepEqual(
      (await store.listByUser('bob')).map((e) => e.key),
      [key],
    );
    assert.equal(await store.count(), 1);
  });

  it('prunes in the background on pruneIntervalSeconds, and reports failures to logger.error', async () => {
    let pruned!: () => void;
    const prunedOnce = new Promise<void>((resolve) => {
      pruned = resolve;
    });
    const watching: ElasticsearchClientLike = {
      transport: {
        async request(params, options) {
          const result = await client.transport.request(params, options);
          if (params.path.endsWith('/_delete_by_query')) pruned();
          return result;
        },
      },
    };
    const index = freshIndex();
    const seeding = open({ index });
    const expired = newKey();
    await seeding.set(expired, { ...record(), expiresAt: Date.now() - 1000 });
    await srv.refresh(index);
    const store = open({ client: watching, index, pruneIntervalSeconds: 0.02 });
    await prunedOnce;
    assert.equal((await raw(srv.admin, 'GET', `/${index}/_doc/${expired}`, undefined, [404])).statusCode, 404);
    await store.close();

    let failed!: (entry: { object: Record<string, unknown>; message: string }) => void;
    const failure = new Promise<{ object: Record<string, unknown>; message: string }>((resolve) => {
      failed = resolve;
    });
    const broken: ElasticsearchClientLike = {
      transport: {
        async request(params, options) {
          if (params.path.endsWith('/_delete_by_query')) throw new Error('cluster is read-only');
          return client.transport.request(params, options);
        },
      },
    };
    const logger = {
      debug: () => {},
      warn: () => {},
      error: (object: object, message?: string) =>
        failed({ object: object as Record<string, unknown>, message: message ?? '' }),
    };
    const failing = open({ client: broken, index, pruneIntervalSeconds: 0.02, logger });
    const entry = await failure;
    assert.match(entry.message, /prune failed: .*cluster is read-only/);
    assert.equal(entry.object.index, index);
    assert.equal(entry.object.code, 'STORE_UNAVAILABLE');
    assert.equal(entry.object.err, undefined, 'the log gets the code, never the error object (it may hold the client)');
    await failing.close();
  });

  it('names the fix when an Elasticsearch client meets an OpenSearch server', async () => {
    const os = await startEsDouble({ flavor: 'opensearch', refreshIntervalMs: -1 });
    const store = new ElasticsearchStore({ node: os.url, index: freshIndex() });
    try {
      await assert.rejects(
        store.get(newKey()),
        (error) => isSessionError(error, 'STORE_UNAVAILABLE') && /flavor: 'opensearch'/.test(String(error)),
      );
    } finally {
      await store.close();
      await os.stop();
    }
  });

  it('is unusable after close(), and close() leaves a user client open', async () => {
    const store = open();
    await store.count();
    await store.close();
    await assert.rejects(store.get(newKey()), (error) => isSessionError(error, 'STORE_CLOSED'));
    assert.equal((await raw(client, 'GET', '/')).statusCode, 200);
  });
});

describe('elasticsearch store options', () => {
  const rejects = (options: unknown) =>
    assert.throws(
      () => new ElasticsearchStore(options as ElasticsearchStoreOptions),
      invalidOptions,
      JSON.stringify(options),
    );

  it('refuses bad options with INVALID_OPTIONS at construction', () => {
    const client = new EsClient({ node: 'http://127.0.0.1:1' });
    for (const bad of [
      { indx: 'x' },
      { index: 'Sessions' },
      { index: '_session' },
      { index: 'a/b' },
      { index: '' },
      { type: '' },
      { flavor: 'solr' },
      { node: 'localhost:9200' },
      { node: 'ftp://h' },
      { nodes: ['http://b:9200'] },
      { node: 'http://a:9200', clientOptions: { nodes: ['http://b:9200'] } },
      { node: 'http://a:9200', clientOptions: { cloud: { id: 'x' } } },
      { clientOptions: 'x' },
      { auth: { username: 'u', password: 'p' } },
      { refresh: 'sometimes' },
      { createIndex: 'yes' },
      { conflictRetries: -1 },
      { conflictRetries: 1.5 },
      { pruneIntervalSeconds: -5 },
      { logger: { warn() {} } },
      { client: {} },
      { client: { transport: {} } },
      { client, node: 'http://127.0.0.1:9200' },
      { client, flavor: 'elasticsearch' },
    ]) {
      rejects(bad);
    }
  });

  it('does not mutate its input and does not connect at construction', async () => {
    const options = Object.freeze({
      clientOptions: Object.freeze({
        nodes: Object.freeze(['http://127.0.0.1:1']),
        auth: Object.freeze({ username: 'u', password: 'p' }),
        tls: Object.freeze({ rejectUnauthorized: true }),
        maxRetries: 0,
      }),
      index: 'sessions',
    });
    const store = new ElasticsearchStore(options as ElasticsearchStoreOptions);
    assert.equal(store.clientKind, 'elasticsearch');
    assert.deepEqual(options, {
      clientOptions: {
        nodes: ['http://127.0.0.1:1'],
        auth: { username: 'u', password: 'p' },
        tls: { rejectUnauthorized: true },
        maxRetries: 0,
      },
      index: 'sessions',
    });
    await store.close();
  });

  it('warns through process warnings when there is no logger, once', async (t) => {
    // Captured, not printed: the warning is the behaviour under test, not noise in the run.
    const emitted = t.mock.method(process, 'emitWarning', () => {});
    const store = new ElasticsearchStore({ node: 'http://127.0.0.1:1', type: 'session' });
    await store.close();
    const quiet = new ElasticsearchStore({ node: 'http://127.0.0.1:1', type: '_doc' });
    await quiet.close();
    assert.equal(emitted.mock.callCount(), 1);
    const [message, options] = emitted.mock.calls[0]?.arguments ?? [];
    assert.match(String(message), /the "type" setting \("session"\) is ignored/);
    assert.deepEqual(options, { type: 'TesseraWarning', code: 'TESSERA_ES_TYPE_IGNORED' });
  });

  it('detects every official client structurally', async () => {
    const expected: Record<ClientName, string> = {
      '@elastic/elasticsearch 9': 'elasticsearch',
      '@elastic/elasticsearch 8': 'elasticsearch',
      '@elastic/elasticsearch 7': 'elasticsearch-7',
      '@opensearch-project/opensearch 3': 'opensearch',
      '@opensearch-project/opensearch 2': 'opensearch',
    };
    for (const [name, make] of Object.entries(CLIENTS)) {
      const client = make('http://127.0.0.1:1');
      assert.equal(new ElasticsearchStore({ client }).clientKind, expected[name as ClientName], name);
      await client.close();
    }
    assert.equal(new ElasticsearchStore({ client: { transport: { request: async () => ({}) } } }).clientKind, 'custom');
  });
});

/** Compile-time check that the store's own options type takes every client (no `any`). */
export const acceptsEveryClient: Array<(node: string) => Store> = Object.values(CLIENTS).map(
  (make) => (node: string) => new ElasticsearchStore({ client: make(node) }),
);
