// stores: elasticsearch
/**
 * The Elasticsearch/OpenSearch protocol double, driven through both official clients unmodified:
 * if a client accepts what the double answers, a store tested against the double talks the real
 * protocol. Every scenario runs once per client, against the double in the matching flavor.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client as EsClient, errors as esErrors } from '@elastic/elasticsearch';
import { Client as OsClient, errors as osErrors } from '@opensearch-project/opensearch';
import { type EsDouble, startEsDouble } from './es-double.ts';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
type Body = Record<string, any>;
type Refresh = boolean | 'wait_for';
type ErrorClass = abstract new (...args: never[]) => Error;

interface WriteParams {
  refresh?: Refresh;
  op_type?: 'create';
  if_seq_no?: number;
  if_primary_term?: number;
}

/** The calls a session store makes, each done through one client's public API. */
interface Api {
  name: string;
  ResponseError: ErrorClass;
  info(): Promise<Body>;
  indexExists(index: string): Promise<boolean>;
  createIndex(index: string, mappings?: Body): Promise<Body>;
  index(index: string, id: string, doc: Body, params?: WriteParams): Promise<Body>;
  get(index: string, id: string): Promise<Body>;
  search(index: string, query: Body): Promise<Body>;
  refresh(index: string): Promise<Body>;
  update(index: string, id: string, doc: Body): Promise<Body>;
  delete(index: string, id: string): Promise<Body>;
  deleteByQuery(index: string, query: Body, params?: { conflicts?: 'proceed'; refresh?: boolean }): Promise<Body>;
  close(): Promise<void>;
}

function elasticApi(url: string): Api {
  const c = new EsClient({ node: url });
  return {
    name: '@elastic/elasticsearch',
    ResponseError: esErrors.ResponseError,
    info: () => c.info(),
    indexExists: (index) => c.indices.exists({ index }),
    createIndex: (index, mappings) => c.indices.create({ index, mappings }),
    index: (index, id, document, p = {}) => c.index({ index, id, document, ...p }),
    get: (index, id) => c.get({ index, id }),
    search: (index, query) => c.search({ index, query }),
    refresh: (index) => c.indices.refresh({ index }),
    update: (index, id, doc) => c.update({ index, id, doc }),
    delete: (index, id) => c.delete({ index, id }),
    deleteByQuery: (index, query, p = {}) => c.deleteByQuery({ index, query, ...p }),
    close: () => c.close(),
  };
}

function openSearchApi(url: string): Api {
  const c = new OsClient({ node: url });
  const body = async (p: Promise<{ body: unknown }>): Promise<Body> => (await p).body as Body;
  return {
    name: '@opensearch-project/opensearch',
    ResponseError: osErrors.ResponseError,
    info: () => body(c.info()),
    indexExists: async (index) => (await c.indices.exists({ index })).body === true,
    createIndex: (index, mappings) => body(c.indices.create({ index, body: { mappings } })),
    index: (index, id, doc, p = {}) => body(c.index({ index, id, body: doc, ...p })),
    get: (index, id) => body(c.get({ index, id })),
    search: (index, query) => body(c.search({ index, body: { query } })),
    refresh: (index) => body(c.indices.refresh({ index })),
    update: (index, id, doc) => body(c.update({ index, id, body: { doc } })),
    delete: (index, id) => body(c.delete({ index, id })),
    deleteByQuery: (index, query, p = {}) => body(c.deleteByQuery({ index, body: { query }, ...p })),
    close: () => c.close(),
  };
}

/** Asserts the call failed with the client's `ResponseError` and this HTTP status; returns the response body. */
async function rejected(ResponseError: ErrorClass, call: Promise<unknown>, status: number): Promise<Body> {
  let caught: unknown;
  await assert.rejects(call, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof ResponseError, `expected ${ResponseError.name}, got ${String(caught)}`);
  const e = caught as { statusCode?: number; body?: Body };
  assert.equal(e.statusCode, status);
  return e.body as Body;
}

/** As {@link rejected}, and the body is an ES error of this type. */
async function rejectsWith(ResponseError: ErrorClass, call: Promise<unknown>, status: number, type: string) {
  const body = await rejected(ResponseError, call, status);
  assert.equal(body.error?.type, type);
  return body;
}

const hitIds = (res: Body): string[] => res.hits.hits.map((h: Body) => h._id).sort();

const SESSION_MAPPINGS = {
  dynamic: 'strict',
  properties: {
    user: { type: 'keyword' },
    expires: { type: 'date', format: 'epoch_millis' },
    data: { type: 'object', enabled: false },
  },
};

const flavors = [
  { flavor: 'elasticsearch', version: '9.1.0', api: elasticApi },
  { flavor: 'opensearch', version: '2.17.0', api: openSearchApi },
] as const;

for (const { flavor, version, api: makeApi } of flavors) {
  describe(`es-double (${flavor} ${version})`, () => {
    let es: EsDouble;
    let api: Api;

    before(async () => {
      es = await startEsDouble({ flavor, version, refreshIntervalMs: -1 });
      api = makeApi(es.url);
    });

    after(async () => {
      await api.close();
      await es.stop();
    });

    test(`${flavor}: info identifies the product and version`, async () => {
      const info = await api.info();
      assert.equal(info.version.number, version);
      if (flavor === 'opensearch') {
        assert.equal(info.version.distribution, 'opensearch');
        assert.equal(info.version.build_flavor, undefined);
      } else {
        assert.equal(info.version.build_flavor, 'default');
        assert.equal(info.tagline, 'You Know, for Search');
      }
    });

    test(`${flavor}: index create and exists`, async () => {
      assert.equal(await api.indexExists('idx-create'), false);
      const created = await api.createIndex('idx-create', SESSION_MAPPINGS);
      assert.deepEqual(created, { acknowledged: true, shards_acknowledged: true, index: 'idx-create' });
      assert.equal(await api.indexExists('idx-create'), true);
      assert.ok(es.indices().includes('idx-create'));
      await rejectsWith(api.ResponseError, api.createIndex('idx-create'), 400, 'resource_already_exists_exception');
    });

    test(`${flavor}: realtime GET sees a write that search does not see until a refresh`, async () => {
      await api.createIndex('idx-nrt', SESSION_MAPPINGS);
      const doc = { user: 'u1', expires: 1_900_000_000_000, data: { cart: [1, 2] } };
      const written = await api.index('idx-nrt', 'a', doc);
      assert.equal(written.result, 'created');
      assert.equal(written._version, 1);
      assert.equal(written._seq_no, 0);
      assert.equal(written._primary_term, 1);

      es.requests.length = 0;
      const got = await api.get('idx-nrt', 'a');
      assert.equal(got.found, true);
      assert.deepEqual(got._source, doc);
      assert.equal(got._seq_no, 0);
      assert.deepEqual(es.requests, [{ method: 'GET', path: '/idx-nrt/_doc/a', query: '' }]);

      const before = await api.search('idx-nrt', { term: { user: 'u1' } });
      assert.equal(before.hits.total.value, 0);
      await api.refresh('idx-nrt');
      const afterRefresh = await api.search('idx-nrt', { term: { user: 'u1' } });
      assert.deepEqual(hitIds(afterRefresh), ['a']);
      // `data` is mapped `enabled: false`: stored, returned, never searchable.
      const disabled = await api.search('idx-nrt', { exists: { field: 'data' } });
      assert.equal(disabled.hits.total.value, 0);
    });

    test(`${flavor}: if_seq_no/if_primary_term mismatch is a 409 version conflict`, async () => {
      const first = await api.index('idx-cas', 's', { user: 'u1' });
      const second = await api.index('idx-cas', 's', { user: 'u2' }, { if_seq_no: first._seq_no, if_primary_term: 1 });
      assert.equal(second.result, 'updated');
      assert.equal(second._version, 2);
      assert.ok(second._seq_no > first._seq_no);

      const stale = api.index('idx-cas', 's', { user: 'u3' }, { if_seq_no: first._seq_no, if_primary_term: 1 });
      const body = await rejectsWith(api.ResponseError, stale, 409, 'version_conflict_engine_exception');
      assert.equal(body.status, 409);
      assert.equal(body.error.root_cause[0].type, 'version_conflict_engine_exception');
      assert.equal(body.error.index, 'idx-cas');
      assert.match(body.error.reason, /^\[s\]: version conflict, required seqNo \[0\]/);
      assert.equal((await api.get('idx-cas', 's'))._source.user, 'u2');

      const missing = api.index('idx-cas', 'nope', { user: 'x' }, { if_seq_no: 0, if_primary_term: 1 });
      await rejectsWith(api.ResponseError, missing, 409, 'version_conflict_engine_exception');
    });

    test(`${flavor}: op_type=create on an existing id is a 409`, async () => {
      const created = await api.index('idx-create-op', 'c', { user: 'u1' }, { op_type: 'create' });
      assert.equal(created.result, 'created');
      const again = api.index('idx-create-op', 'c', { user: 'u2' }, { op_type: 'create' });
      const body = await rejectsWith(api.ResponseError, again, 409, 'version_conflict_engine_exception');
      assert.match(body.error.reason, /document already exists/);
      assert.equal((await api.get('idx-create-op', 'c'))._source.user, 'u1');
    });

    test(`${flavor}: update merges the partial doc recursively and detects noops`, async () => {
      await api.index('idx-update', 'u', { a: 1, nested: { x: 1, y: 2 }, list: [1, 2] });
      const updated = await api.update('idx-update', 'u', { nested: { y: 3, z: 4 }, list: [3], b: 'new' });
      assert.equal(updated.result, 'updated');
      assert.equal(updated._version, 2);
      const got = await api.get('idx-update', 'u');
      assert.deepEqual(got._source, { a: 1, nested: { x: 1, y: 3, z: 4 }, list: [3], b: 'new' });

      const noop = await api.update('idx-update', 'u', { nested: { y: 3 } });
      assert.equal(noop.result, 'noop');
      assert.equal(noop._version, 2);
      assert.equal(noop._seq_no, updated._seq_no);

      const missing = api.update('idx-update', 'nope', { a: 1 });
      await rejectsWith(api.ResponseError, missing, 404, 'document_missing_exception');
    });

    test(`${flavor}: delete, then the document is gone`, async () => {
      await api.index('idx-delete', 'd', { user: 'u1' });
      const deleted = await api.delete('idx-delete', 'd');
      assert.equal(deleted.result, 'deleted');
      assert.equal(deleted._version, 2);

      const notFound = await rejected(api.ResponseError, api.delete('idx-delete', 'd'), 404);
      assert.equal(notFound.result, 'not_found');
      const gone = await rejected(api.ResponseError, api.get('idx-delete', 'd'), 404);
      assert.deepEqual(gone, { _index: 'idx-delete', _id: 'd', found: false });
    });

    test(`${flavor}: delete_by_query on an epoch-millis range deletes what the last refresh saw`, async () => {
      await api.createIndex('idx-dbq', SESSION_MAPPINGS);
      const now = 1_800_000_000_000;
      await api.index('idx-dbq', 'old1', { user: 'u', expires: now - 10_000 });
      await api.index('idx-dbq', 'old2', { user: 'u', expires: now - 1 });
      await api.index('idx-dbq', 'live', { user: 'u', expires: now + 60_000 });
      await api.refresh('idx-dbq');
      await api.index('idx-dbq', 'unrefreshed', { user: 'u', expires: now - 5 });

      const res = await api.deleteByQuery('idx-dbq', { range: { expires: { lt: now } } });
      assert.equal(res.deleted, 2);
      assert.equal(res.total, 2);
      assert.equal(res.version_conflicts, 0);
      assert.deepEqual(res.failures, []);
      for (const id of ['old1', 'old2']) {
        assert.equal((await rejected(api.ResponseError, api.get('idx-dbq', id), 404)).found, false);
      }
      assert.equal((await api.get('idx-dbq', 'live')).found, true);
      assert.equal((await api.get('idx-dbq', 'unrefreshed')).found, true, 'not in the snapshot, not deleted');

      // A document changed after the refresh is a version conflict: abort (409) or proceed.
      await api.refresh('idx-dbq');
      await api.index('idx-dbq', 'unrefreshed', { user: 'u', expires: now - 4 });
      // The 409 body is the usual delete-by-query report (no `error` key), listing the failures.
      const expired = { range: { expires: { lt: now } } };
      const conflict = await rejected(api.ResponseError, api.deleteByQuery('idx-dbq', expired), 409);
      assert.equal(conflict.version_conflicts, 1);
      assert.equal(conflict.deleted, 0);
      assert.equal(conflict.failures[0].cause.type, 'version_conflict_engine_exception');

      const proceeded = await api.deleteByQuery(
        'idx-dbq',
        { range: { expires: { lt: now } } },
        { conflicts: 'proceed', refresh: true },
      );
      assert.equal(proceeded.version_conflicts, 1);
      assert.equal(proceeded.deleted, 0);
      assert.deepEqual(hitIds(await api.search('idx-dbq', { match_all: {} })), ['live', 'unrefreshed']);
    });

    test(`${flavor}: refresh=wait_for answers once the write is searchable`, async () => {
      // With periodic refresh off, the double forces the refresh (ES reports that as forced_refresh).
      const forced = await api.index('idx-wait', 'w1', { user: 'u1' }, { refresh: 'wait_for' });
      assert.equal(forced.forced_refresh, true);
      assert.deepEqual(hitIds(await api.search('idx-wait', { term: { user: 'u1' } })), ['w1']);

      // With a periodic refresh, the response waits for the next one.
      const periodic = await startEsDouble({ flavor, version, refreshIntervalMs: 300 });
      const client = makeApi(periodic.url);
      try {
        await client.index('idx-wait', 'w0', { user: 'u0' }, { refresh: true });
        const plain = await client.index('idx-wait', 'w2', { user: 'u2' });
        assert.equal(plain.forced_refresh, undefined);
        assert.equal((await client.search('idx-wait', { term: { user: 'u2' } })).hits.total.value, 0);
        const started = Date.now();
        const waited = await client.index('idx-wait', 'w3', { user: 'u3' }, { refresh: 'wait_for' });
        assert.equal(waited.forced_refresh, undefined);
        assert.ok(Date.now() - started <= 2_000);
        const visible = await client.search('idx-wait', { terms: { user: ['u2', 'u3'] } });
        assert.deepEqual(hitIds(visible), ['w2', 'w3']);
      } finally {
        await client.close();
        await periodic.stop();
      }
    });
  });
}

describe('es-double: client requirements (@elastic/elasticsearch)', () => {
  const doubles: EsDouble[] = [];
  const clients: EsClient[] = [];
  const start = async (opts: Parameters<typeof startEsDouble>[0]) => {
    const es = await startEsDouble({ refreshIntervalMs: -1, ...opts });
    doubles.push(es);
    return es;
  };
  const client = (node: string, headers?: Record<string, string>) => {
    const c = new EsClient({ node, headers });
    clients.push(c);
    return c;
  };

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(doubles.map((d) => d.stop()));
  });

  test('every response carries x-elastic-product and the compatible-with content type', async () => {
    const es = await start({ version: '9.1.0' });
    const res = await client(es.url).info({}, { meta: true });
    assert.equal(res.headers['x-elastic-product'], 'Elasticsearch');
    assert.equal(res.headers['content-type'], 'application/vnd.elasticsearch+json;compatible-with=9');
  });

  test('the v9 client sends compatible-with=9, which an 8.x server refuses unless told to send 8', async () => {
    const es = await start({ version: '8.15.0' });
    const body = await rejectsWith(
      esErrors.ResponseError,
      client(es.url).index({ index: 'x', id: '1', document: { a: 1 } }),
      400,
      'media_type_header_exception',
    );
    assert.match(body.error.caused_by.reason, /Accept version must be either version 8 or 7, but found 9/);

    const compat8 = 'application/vnd.elasticsearch+json; compatible-with=8';
    const c8 = client(es.url, { accept: compat8, 'content-type': compat8 });
    const written = await c8.index({ index: 'x', id: '1', document: { a: 1 } });
    assert.equal(written.result, 'created');
  });

  test('the Elasticsearch client refuses an OpenSearch server (product check)', async () => {
    const es = await start({ flavor: 'opensearch', version: '2.17.0' });
    await assert.rejects(client(es.url).info(), esErrors.ProductNotSupportedError);
  });

  test('unsupported endpoints and parameters fail loudly', async () => {
    const es = await start({});
    const c = client(es.url);
    const E = esErrors.ResponseError;
    const cat = await rejectsWith(E, c.cat.indices(), 400, 'illegal_argument_exception');
    assert.match(cat.error.reason, /\[es-double\].*\/_cat\/indices/);
    const scripted = c.update({ index: 'x', id: '1', script: { source: 'ctx._source.n++' }, upsert: { n: 0 } });
    const script = await rejectsWith(E, scripted, 400, 'illegal_argument_exception');
    assert.match(script.error.reason, /scripted update/);
    const q = await rejectsWith(E, c.search({ index: 'x', q: 'a:b' }), 400, 'illegal_argument_exception');
    assert.match(q.error.reason, /parameter \[q\]/);
  });
});
