// stores: elasticsearch
/**
 * The Elasticsearch/OpenSearch protocol double, driven through the official clients unmodified and
 * sent exactly the requests the session store sends (plain JSON through `transport.request`):
 * if a client accepts what the double answers, the store tested against the double talks the
 * real protocol. Everything else must be refused with a 400 naming it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client as EsClient, errors as esErrors } from '@elastic/elasticsearch';
import { Client as OsClient } from '@opensearch-project/opensearch';
import { Client as Es7Client } from 'es7';
import { type EsDouble, startEsDouble } from './es-double.ts';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
type Body = Record<string, any>;
interface Transport {
  transport: { request(params: object, options?: object): Promise<unknown> };
  close(): Promise<void>;
}
interface Answer {
  statusCode: number;
  body: Body;
  headers: Record<string, string | undefined>;
}

const PLAIN_JSON = { accept: 'application/json', 'content-type': 'application/json' };
const ANY_STATUS = [400, 404, 405, 406, 409, 500];

/** One REST call as the store makes it: plain JSON, every status answered rather than thrown. */
async function call(
  client: Transport,
  method: string,
  path: string,
  body?: Body,
  querystring?: Record<string, string | number | boolean>,
  headers: Record<string, string> = PLAIN_JSON,
): Promise<Answer> {
  const params = { method, path, ...(body ? { body } : {}), ...(querystring ? { querystring } : {}) };
  return (await client.transport.request(params, { headers, meta: true, ignore: ANY_STATUS })) as Answer;
}

/** Asserts an ES error of this status and type; returns the error. */
function failed(res: Answer, status: number, type: string): Body {
  assert.equal(res.statusCode, status, JSON.stringify(res.body));
  assert.equal(res.body.status, status);
  assert.equal(res.body.error.type, type);
  assert.equal(res.body.error.root_cause[0].type, type);
  return res.body.error;
}

/** Asserts the double's refusal of a request the store does not send, naming `what`. */
function refused(res: Answer, what: RegExp): void {
  const error = failed(res, 400, 'illegal_argument_exception');
  assert.match(error.reason, /^\[es-double\] unsupported request: /);
  assert.match(error.reason, what);
}

const MAPPINGS = {
  dynamic: 'strict',
  properties: {
    fields: { type: 'object', enabled: false },
    createdAt: { type: 'date', format: 'epoch_millis' },
    expiresAt: { type: 'date', format: 'epoch_millis' },
    userId: { type: 'keyword' },
  },
};
const doc = (userId: string | null, expiresAt: number, fields: Body = { a: '"1"' }) => ({
  fields,
  createdAt: 1_700_000_000_000,
  expiresAt,
  userId,
});
const byUser = (userId: string, now: number) => ({
  bool: { filter: [{ term: { userId } }, { range: { expiresAt: { gt: now } } }] },
});
const ids = (res: Answer): string[] => res.body.hits.hits.map((h: Body) => h._id).sort();

const flavors = [
  { flavor: 'elasticsearch', version: '9.1.0', client: (node: string): Transport => new EsClient({ node }) },
  { flavor: 'opensearch', version: '2.17.0', client: (node: string): Transport => new OsClient({ node }) },
] as const;

for (const { flavor, version, client: makeClient } of flavors) {
  describe(`es-double (${flavor} ${version})`, () => {
    let es: EsDouble;
    let c: Transport;
    const now = 1_800_000_000_000;

    before(async () => {
      es = await startEsDouble({ flavor, version, refreshIntervalMs: -1 });
      c = makeClient(es.url);
    });
    after(async () => {
      await c.close();
      await es.stop();
    });

    test(`${flavor}: GET / identifies the product and version, with the product header on Elasticsearch`, async () => {
      const info = await call(c, 'GET', '/');
      assert.equal(info.body.version.number, version);
      if (flavor === 'opensearch') {
        assert.equal(info.body.version.distribution, 'opensearch');
        assert.equal(info.headers['x-elastic-product'], undefined);
      } else {
        assert.equal(info.body.version.build_flavor, 'default');
        assert.equal(info.body.tagline, 'You Know, for Search');
        assert.equal(info.headers['x-elastic-product'], 'Elasticsearch');
      }
    });

    test(`${flavor}: index setup: HEAD, create, already exists, mapping read and extended`, async () => {
      assert.equal((await call(c, 'HEAD', '/idx-setup')).statusCode, 404);
      const created = await call(c, 'PUT', '/idx-setup', { mappings: MAPPINGS });
      assert.deepEqual(created.body, { acknowledged: true, shards_acknowledged: true, index: 'idx-setup' });
      assert.equal((await call(c, 'HEAD', '/idx-setup')).statusCode, 200);
      assert.deepEqual(es.indices(), ['idx-setup']);
      failed(await call(c, 'PUT', '/idx-setup', { mappings: MAPPINGS }), 400, 'resource_already_exists_exception');
      const mapping = await call(c, 'GET', '/idx-setup/_mapping');
      assert.deepEqual(mapping.body['idx-setup'].mappings, MAPPINGS);

      // An index made without mappings gets the store's fields added; a type change is refused.
      await call(c, 'PUT', '/idx-bare', { settings: { number_of_replicas: 0 } });
      const added = await call(c, 'PUT', '/idx-bare/_mapping', { properties: MAPPINGS.properties });
      assert.equal(added.body.acknowledged, true);
      const bare = await call(c, 'GET', '/idx-bare/_mapping');
      assert.deepEqual(bare.body['idx-bare'].mappings.properties, MAPPINGS.properties);
      const change = await call(c, 'PUT', '/idx-bare/_mapping', { properties: { userId: { type: 'long' } } });
      assert.match(failed(change, 400, 'illegal_argument_exception').reason, /cannot be changed from type \[keyword\]/);
      failed(await call(c, 'GET', '/idx-missing/_mapping'), 404, 'index_not_found_exception');
      for (const name of ['idx-setup', 'idx-bare']) assert.equal((await call(c, 'DELETE', `/${name}`)).statusCode, 200);
      failed(await call(c, 'DELETE', '/idx-setup'), 404, 'index_not_found_exception');
    });

    test(`${flavor}: an index template's mappings apply to the index it matches, once created`, async () => {
      const template = { index_patterns: ['idx-tpl'], priority: 200, template: { mappings: MAPPINGS } };
      assert.equal((await call(c, 'PUT', '/_index_template/tpl', template)).body.acknowledged, true);
      const got = await call(c, 'GET', '/_index_template/tpl');
      assert.deepEqual(got.body.index_templates[0].index_template.index_patterns, ['idx-tpl']);
      // Templates of equal priority may not overlap.
      const overlapping = await call(c, 'PUT', '/_index_template/tpl-2', { ...template, index_patterns: ['idx-*'] });
      assert.match(failed(overlapping, 400, 'illegal_argument_exception').reason, /same priority \[200\]/);

      // A write into the missing index creates it through the template: strict, so a stray field is refused.
      await call(c, 'PUT', '/idx-tpl/_doc/a', doc('u', now));
      assert.deepEqual((await call(c, 'GET', '/idx-tpl/_mapping')).body['idx-tpl'].mappings, MAPPINGS);
      const stray = await call(c, 'PUT', '/idx-tpl/_doc/b', { ...doc('u', now), extra: 1 });
      failed(stray, 400, 'strict_dynamic_mapping_exception');
      const isoDate = await call(c, 'PUT', '/idx-tpl/_doc/b', { ...doc('u', now), expiresAt: '2030-01-01' });
      assert.equal(isoDate.statusCode, 400, 'epoch_millis dates take numbers');

      assert.equal((await call(c, 'DELETE', '/_index_template/tpl')).body.acknowledged, true);
      failed(await call(c, 'GET', '/_index_template/tpl'), 404, 'resource_not_found_exception');
      failed(await call(c, 'DELETE', '/_index_template/tpl'), 404, 'resource_not_found_exception');
      await call(c, 'DELETE', '/idx-tpl');
    });

    test(`${flavor}: without a template, a write maps the index dynamically (strings as text)`, async () => {
      await call(c, 'PUT', '/idx-dynamic/_doc/x', { fields: { a: '1' }, createdAt: 1, expiresAt: 2, userId: 'u' });
      const { properties } = (await call(c, 'GET', '/idx-dynamic/_mapping')).body['idx-dynamic'].mappings;
      assert.equal(properties.userId.type, 'text');
      assert.equal(properties.userId.fields.keyword.type, 'keyword');
      assert.equal(properties.createdAt.type, 'long');
      assert.deepEqual(properties.fields, { properties: { a: { type: 'text', fields: properties.userId.fields } } });
      await call(c, 'DELETE', '/idx-dynamic');
    });

    test(`${flavor}: realtime GET sees a write at once; search and count see it after a refresh`, async () => {
      await call(c, 'PUT', '/idx-nrt', { mappings: MAPPINGS });
      const written = await call(c, 'PUT', '/idx-nrt/_doc/a', doc('u1', now + 60_000));
      assert.equal(written.statusCode, 201);
      assert.equal(written.body.result, 'created');
      assert.deepEqual([written.body._version, written.body._seq_no, written.body._primary_term], [1, 0, 1]);

      es.requests.length = 0;
      const got = await call(c, 'GET', '/idx-nrt/_doc/a');
      assert.equal(got.body.found, true);
      assert.deepEqual(got.body._source, doc('u1', now + 60_000));
      assert.equal(got.body._seq_no, 0);
      assert.deepEqual(es.requests, [{ method: 'GET', path: '/idx-nrt/_doc/a', query: '' }]);
      const missing = await call(c, 'GET', '/idx-nrt/_doc/nope');
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.body.found, false);
      failed(await call(c, 'GET', '/idx-missing/_doc/a'), 404, 'index_not_found_exception');

      const search = (userId: string) =>
        call(
          c,
          'POST',
          '/idx-nrt/_search',
          {
            query: byUser(userId, now),
            _source: ['createdAt', 'expiresAt', 'userId'],
            size: 100,
            track_total_hits: true,
          },
          { ignore_unavailable: true },
        );
      const count = async () =>
        (await call(c, 'POST', '/idx-nrt/_count', { query: byUser('u1', now) }, { ignore_unavailable: true })).body
          .count;
      assert.equal((await search('u1')).body.hits.total.value, 0);
      assert.equal(await count(), 0);
      await call(c, 'PUT', '/idx-nrt/_doc/b', doc('u1', now - 1));
      await call(c, 'PUT', '/idx-nrt/_doc/c', doc('u2', now + 60_000));
      assert.equal(
        (await call(c, 'POST', '/idx-nrt/_refresh', undefined, { ignore_unavailable: true })).statusCode,
        200,
      );
      const found = await search('u1');
      assert.deepEqual(ids(found), ['a'], 'the term on userId and the range on expiresAt both hold');
      assert.deepEqual(found.body.hits.total, { value: 1, relation: 'eq' });
      assert.deepEqual(Object.keys(found.body.hits.hits[0]._source).sort(), ['createdAt', 'expiresAt', 'userId']);
      assert.equal(await count(), 1);

      // A missing index searched with ignore_unavailable=true is empty, as the store relies on.
      const gone = await call(
        c,
        'POST',
        '/idx-missing/_search',
        { query: byUser('u1', now), size: 1, track_total_hits: true },
        { ignore_unavailable: true },
      );
      assert.deepEqual(gone.body.hits.hits, []);
      const window = await call(c, 'POST', '/idx-nrt/_search', {
        query: byUser('u1', now),
        size: 10_001,
        track_total_hits: true,
      });
      assert.match(failed(window, 400, 'illegal_argument_exception').reason, /Result window is too large/);
      await call(c, 'DELETE', '/idx-nrt');
    });

    test(`${flavor}: if_seq_no/if_primary_term: a stale or missing document is a 409`, async () => {
      await call(c, 'PUT', '/idx-cas', { mappings: MAPPINGS });
      const first = await call(c, 'PUT', '/idx-cas/_doc/s', doc('u1', now));
      const cas = (w: Answer) => ({ if_seq_no: w.body._seq_no, if_primary_term: w.body._primary_term });
      const second = await call(c, 'PUT', '/idx-cas/_doc/s', doc('u2', now), cas(first));
      assert.equal(second.statusCode, 200);
      assert.equal(second.body.result, 'updated');
      assert.equal(second.body._version, 2);

      const stale = failed(
        await call(c, 'PUT', '/idx-cas/_doc/s', doc('u3', now), cas(first)),
        409,
        'version_conflict_engine_exception',
      );
      assert.equal(stale.index, 'idx-cas');
      assert.match(stale.reason, /^\[s\]: version conflict, required seqNo \[0\]/);
      assert.equal((await call(c, 'GET', '/idx-cas/_doc/s')).body._source.userId, 'u2');
      const missing = await call(c, 'PUT', '/idx-cas/_doc/nope', doc('x', now), { if_seq_no: 0, if_primary_term: 1 });
      failed(missing, 409, 'version_conflict_engine_exception');

      // The partial update the store's touch sends: conditional, 404 when the document is gone.
      const touched = await call(c, 'POST', '/idx-cas/_update/s', { doc: { expiresAt: now + 1 } }, cas(second));
      assert.equal(touched.body.result, 'updated');
      assert.equal((await call(c, 'GET', '/idx-cas/_doc/s')).body._source.expiresAt, now + 1);
      const staleTouch = await call(c, 'POST', '/idx-cas/_update/s', { doc: { expiresAt: now + 2 } }, cas(second));
      failed(staleTouch, 409, 'version_conflict_engine_exception');
      const noop = await call(c, 'POST', '/idx-cas/_update/s', { doc: { expiresAt: now + 1 } }, cas(touched));
      assert.equal(noop.body.result, 'noop');
      assert.equal(noop.body._seq_no, touched.body._seq_no);
      failed(
        await call(c, 'POST', '/idx-cas/_update/nope', { doc: { expiresAt: 1 } }),
        404,
        'document_missing_exception',
      );
      const partial = await call(c, 'PUT', '/idx-cas/_doc/s', doc('u', now), { if_seq_no: 1 });
      failed(partial, 400, 'action_request_validation_exception');

      const deleted = await call(c, 'DELETE', '/idx-cas/_doc/s');
      assert.equal(deleted.body.result, 'deleted');
      const again = await call(c, 'DELETE', '/idx-cas/_doc/s');
      assert.equal(again.statusCode, 404);
      assert.equal(again.body.result, 'not_found');
      await call(c, 'DELETE', '/idx-cas');
    });

    test(`${flavor}: delete_by_query deletes what the last refresh saw, counting later writes as conflicts`, async () => {
      await call(c, 'PUT', '/idx-dbq', { mappings: MAPPINGS });
      for (const [id, expiresAt] of [
        ['old1', now - 10_000],
        ['old2', now - 1],
        ['live', now + 60_000],
      ] as const) {
        await call(c, 'PUT', `/idx-dbq/_doc/${id}`, doc('u', expiresAt));
      }
      await call(c, 'POST', '/idx-dbq/_refresh');
      await call(c, 'PUT', '/idx-dbq/_doc/unrefreshed', doc('u', now - 5));
      await call(c, 'PUT', '/idx-dbq/_doc/old2', doc('u', now - 2)); // changed since the refresh

      const prune = { query: { range: { expiresAt: { lte: now } } } };
      const query = { conflicts: 'proceed', ignore_unavailable: true };
      const res = await call(c, 'POST', '/idx-dbq/_delete_by_query', prune, query);
      assert.equal(res.statusCode, 200);
      assert.deepEqual([res.body.total, res.body.deleted, res.body.version_conflicts], [2, 1, 1]);
      assert.deepEqual(res.body.failures, []);
      assert.equal((await call(c, 'GET', '/idx-dbq/_doc/old1')).statusCode, 404);
      for (const id of ['old2', 'unrefreshed', 'live'])
        assert.equal((await call(c, 'GET', `/idx-dbq/_doc/${id}`)).body.found, true);

      const refreshed = await call(c, 'POST', '/idx-dbq/_delete_by_query', prune, { ...query, refresh: true });
      assert.equal(refreshed.body.deleted, 0, 'the snapshot still holds the deleted and the changed document');
      const after = await call(c, 'POST', '/idx-dbq/_delete_by_query', prune, query);
      assert.equal(after.body.deleted, 2, 'refresh=true made the later writes visible');
      const missing = await call(c, 'POST', '/idx-missing/_delete_by_query', prune, query);
      assert.equal(missing.body.deleted, 0);
      await call(c, 'DELETE', '/idx-dbq');
    });

    test(`${flavor}: refresh=true and refresh=wait_for make a write searchable before it answers`, async () => {
      await call(c, 'PUT', '/idx-wait', { mappings: MAPPINGS });
      const searchable = async (client: Transport, userId: string) =>
        ids(await call(client, 'POST', '/idx-wait/_search', { query: byUser(userId, now), track_total_hits: true }));
      const forced = await call(c, 'PUT', '/idx-wait/_doc/w1', doc('u1', now + 1), { refresh: 'wait_for' });
      assert.equal(forced.body.forced_refresh, true, 'with periodic refresh off, the double forces one');
      assert.deepEqual(await searchable(c, 'u1'), ['w1']);
      const now2 = await call(c, 'PUT', '/idx-wait/_doc/w2', doc('u2', now + 1), { refresh: true });
      assert.equal(now2.body.forced_refresh, true);
      assert.deepEqual(await searchable(c, 'u2'), ['w2']);

      // With a periodic refresh, wait_for answers at the next one.
      const periodic = await startEsDouble({ flavor, version, refreshIntervalMs: 200 });
      const client = makeClient(periodic.url);
      try {
        await call(client, 'PUT', '/idx-wait', { mappings: MAPPINGS });
        await call(client, 'PUT', '/idx-wait/_doc/p1', doc('u1', now + 1));
        const waited = await call(client, 'PUT', '/idx-wait/_doc/p2', doc('u1', now + 1), { refresh: 'wait_for' });
        assert.equal(waited.body.forced_refresh, undefined);
        assert.deepEqual(await searchable(client, 'u1'), ['p1', 'p2']);
      } finally {
        await client.close();
        await periodic.stop();
      }
      await call(c, 'DELETE', '/idx-wait');
    });

    test(`${flavor}: op_type=create, and pages sorted by _id (OpenSearch) or in a point in time (Elasticsearch)`, async () => {
      await call(c, 'PUT', '/idx-pages', { mappings: MAPPINGS });
      assert.equal((await call(c, 'PUT', '/idx-pages/_doc/a', doc('u', now), { op_type: 'create' })).statusCode, 201);
      failed(
        await call(c, 'PUT', '/idx-pages/_doc/a', doc('u', now), { op_type: 'create' }),
        409,
        'version_conflict_engine_exception',
      );
      for (const id of ['c', 'b', 'd']) await call(c, 'PUT', `/idx-pages/_doc/${id}`, doc('u', now));
      await call(c, 'POST', '/idx-pages/_refresh');
      const pages: string[][] = [];
      const page = (res: Answer) => (res.body.hits.hits as Body[]).map((h) => String(h._id));
      if (flavor === 'opensearch') {
        const body = { query: byUser('u', now - 1), size: 3, track_total_hits: false, sort: [{ _id: 'asc' }] };
        const first = await call(c, 'POST', '/idx-pages/_search', body);
        pages.push(page(first));
        const last = first.body.hits.hits.at(-1).sort;
        pages.push(page(await call(c, 'POST', '/idx-pages/_search', { ...body, search_after: last })));
        assert.deepEqual(pages, [['a', 'b', 'c'], ['d']]);
        refused(await call(c, 'POST', '/idx-pages/_pit', undefined, { keep_alive: '1m' }), /the _pit endpoint/);
      } else {
        const sortById = { query: byUser('u', now - 1), track_total_hits: false, sort: [{ _id: 'asc' }] };
        failed(await call(c, 'POST', '/idx-pages/_search', sortById), 400, 'illegal_argument_exception');
        const pit = (await call(c, 'POST', '/idx-pages/_pit', undefined, { keep_alive: '1m' })).body.id;
        // Written after the point in time opened: not in its pages.
        await call(c, 'PUT', '/idx-pages/_doc/e', doc('u', now), { refresh: 'true' });
        const body = { query: byUser('u', now - 1), size: 3, track_total_hits: false, sort: [{ _shard_doc: 'asc' }] };
        const first = await call(c, 'POST', '/_search', { ...body, pit: { id: pit, keep_alive: '1m' } });
        pages.push(page(first));
        const last = first.body.hits.hits.at(-1).sort;
        const next = { ...body, pit: { id: first.body.pit_id, keep_alive: '1m' }, search_after: last };
        pages.push(page(await call(c, 'POST', '/_search', next)));
        assert.deepEqual(pages.flat().sort(), ['a', 'b', 'c', 'd']);
        assert.equal(pages[0]?.length, 3);
        assert.equal((await call(c, 'DELETE', '/_pit', { id: pit })).body.num_freed, 1);
        failed(
          await call(c, 'POST', '/_search', { ...body, pit: { id: pit } }),
          404,
          'search_context_missing_exception',
        );
      }
      await call(c, 'DELETE', '/idx-pages');
    });

    test(`${flavor}: whatever the store does not send is a 400 naming it`, async () => {
      await call(c, 'PUT', '/idx-no', { mappings: MAPPINGS });
      await call(c, 'PUT', '/idx-no/_doc/a', doc('u', now));
      const search = (body: Body) => call(c, 'POST', '/idx-no/_search', { track_total_hits: true, ...body });
      refused(await call(c, 'GET', '/_cat/indices'), /endpoint \[GET \/_cat\/indices\]/);
      refused(await call(c, 'GET', '/idx-no/_search'), /endpoint \[GET \/idx-no\/_search\]/);
      refused(await call(c, 'POST', '/_bulk', { index: {} }), /endpoint \[POST \/_bulk\]/);
      refused(await call(c, 'GET', '/idx-no/_doc/a', undefined, { realtime: false }), /parameter \[realtime\]/);
      refused(await call(c, 'PUT', '/idx-no/_doc/a', doc('u', now), { op_type: 'index' }), /op_type=index/);
      refused(await search({ query: byUser('u', now), sort: [{ expiresAt: 'asc' }] }), /sort on expiresAt/);
      refused(await search({ query: byUser('u', now), sort: ['expiresAt'] }), /sort \["expiresAt"\]/);
      refused(await search({ pit: { id: 'x' } }), /body key \[pit\]/);
      refused(await search({ query: { match: { userId: 'u' } } }), /query type \[match\]/);
      refused(await search({ query: { bool: { must: [{ term: { userId: 'u' } }] } } }), /bool query/);
      refused(await search({ query: { term: { expiresAt: now } } }), /term query on a \[date\] field/);
      refused(await search({ query: { range: { expiresAt: { gte: 'now-1d' } } } }), /range query bound/);
      refused(await search({ query: byUser('u', now), _source: { includes: ['userId'] } }), /_source/);
      refused(await call(c, 'POST', '/idx-no/_search', { query: byUser('u', now) }), /track_total_hits/);
      const script = { script: { source: 'ctx._source.n++' } };
      refused(await call(c, 'POST', '/idx-no/_update/a', script), /body key \[script\]/);
      const dbq = { query: { range: { expiresAt: { lte: now } } } };
      refused(await call(c, 'POST', '/idx-no/_delete_by_query', dbq), /conflicts=proceed/);
      const settings = { settings: { refresh_interval: '1s' } };
      refused(await call(c, 'PUT', '/idx-other', settings), /index settings/);
      refused(await call(c, 'PUT', '/idx-no/_doc/b', doc('u', now), { refresh: 'false' }), /refresh=false/);
      const compat = 'application/vnd.elasticsearch+json; compatible-with=9';
      const vendor = await call(c, 'GET', '/idx-no/_doc/a', undefined, undefined, { accept: compat });
      refused(vendor, /Accept header \[application\/vnd\.elasticsearch\+json; compatible-with=9\]/);
      assert.deepEqual(es.indices(), ['idx-no'], 'nothing refused left anything behind');
      await call(c, 'DELETE', '/idx-no');
    });
  });
}

describe('es-double: versions and the product check', () => {
  test('the Elasticsearch client refuses an OpenSearch server', async () => {
    const es = await startEsDouble({ flavor: 'opensearch' });
    const c = new EsClient({ node: es.url });
    try {
      // The client checks the header on every successful answer.
      await assert.rejects(call(c, 'GET', '/'), esErrors.ProductNotSupportedError);
    } finally {
      await c.close();
      await es.stop();
    }
  });

  test('Elasticsearch 7.7 passes the 7.x client product check, has no composable templates and sends _type', async () => {
    const es = await startEsDouble({ version: '7.7.1', refreshIntervalMs: -1 });
    const c = new Es7Client({ node: es.url });
    try {
      const template = { index_patterns: ['x'], priority: 200, template: { mappings: MAPPINGS } };
      refused(await call(c, 'PUT', '/_index_template/x', template), /composable index templates/);
      const written = await call(c, 'PUT', '/x/_doc/a', doc('u', 1));
      assert.equal(written.body._type, '_doc');
      assert.equal((await call(c, 'GET', '/x/_doc/a')).body._type, '_doc');
      assert.equal(written.headers['x-elastic-product'], undefined, 'the header came with 7.14');
    } finally {
      await c.close();
      await es.stop();
    }
  });

  test('Elasticsearch 8.8 and later name the document parse error document_parsing_exception', async () => {
    for (const [version, type] of [
      ['8.15.0', 'document_parsing_exception'],
      ['8.7.0', 'mapper_parsing_exception'],
    ] as const) {
      const es = await startEsDouble({ version, refreshIntervalMs: -1 });
      const c = new EsClient({ node: es.url });
      try {
        await call(c, 'PUT', '/x', { mappings: MAPPINGS });
        failed(await call(c, 'PUT', '/x/_doc/a', { ...doc('u', 1), fields: 'not an object' }), 400, type);
      } finally {
        await c.close();
        await es.stop();
      }
    }
  });
});
