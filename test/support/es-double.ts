/**
 * A protocol double of Elasticsearch / OpenSearch for the session store's tests: an HTTP server on
 * 127.0.0.1 that answers exactly the requests `ElasticsearchStore` (and its tests' admin calls)
 * send, following the documented REST behaviour the store depends on, closely enough that the
 * official clients work against it unmodified. It models one primary shard per index, realtime
 * GET, near-real-time search (refresh), sequence numbers and primary terms with 409 conflicts,
 * strict, dynamic and disabled mappings, composable index templates, delete-by-query over the
 * last refresh, the product header and ES-shaped errors.
 *
 * It is deliberately narrow: every endpoint, query parameter, body key, query type and media type
 * the store does not send is refused with a 400 naming it (`[es-double] unsupported ...`), so a
 * store change that starts sending something new fails loudly instead of passing against a
 * permissive fake. Widen the double only together with the store change that needs it.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Options for {@link startEsDouble}. */
export interface EsDoubleOptions {
  /** Product to impersonate. Default `'elasticsearch'`. */
  flavor?: 'elasticsearch' | 'opensearch';
  /**
   * Server version (`major.minor.patch`) reported by `GET /` and driving what differs between
   * versions: the product header (Elasticsearch 7.14+), composable index templates (7.8+),
   * `_type` in responses (Elasticsearch 7, OpenSearch 1), the document parse error's type.
   * Default `'9.1.0'` for Elasticsearch, `'2.17.0'` for OpenSearch.
   */
  version?: string;
  /**
   * Periodic refresh interval of every index, in milliseconds; `-1` disables it (only `_refresh`,
   * `refresh=true` and a forced `refresh=wait_for` refresh). Default 1000, as in Elasticsearch.
   */
  refreshIntervalMs?: number;
}

/** One HTTP request as received by the double. */
export interface EsDoubleRequest {
  method: string;
  /** URL path without the query string, e.g. `/sessions/_doc/abc`. */
  path: string;
  /** Raw query string without the leading `?` (empty when none). */
  query: string;
}

/** A running double. */
export interface EsDouble {
  /** Base URL, e.g. `http://127.0.0.1:40123`, to pass as the client's `node`. */
  url: string;
  /** Closes all connections and the server, and stops the refresh timers. */
  stop(): Promise<void>;
  /** Every request received, in order (tests count calls with it; clear it with `length = 0`). */
  requests: EsDoubleRequest[];
  /** Names of the existing indices, sorted. */
  indices(): string[];
}

/** Starts a double on a random loopback port. */
export async function startEsDouble(opts: EsDoubleOptions = {}): Promise<EsDouble> {
  const flavor = opts.flavor ?? 'elasticsearch';
  const profile = new Profile(flavor, opts.version ?? (flavor === 'opensearch' ? '2.17.0' : '9.1.0'));
  const cluster = new Cluster(profile, opts.refreshIntervalMs ?? 1000);
  const requests: EsDoubleRequest[] = [];
  const server = createServer((req, res) => {
    // A client that hangs up mid-request leaves nothing to answer.
    serve(cluster, requests, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    indices: () => [...cluster.indices.keys()].sort(),
    stop: async () => {
      cluster.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

interface Reply {
  status: number;
  body?: unknown;
}

/** An error that becomes an HTTP response with the ES error body `{error: {root_cause, type, reason, ...}, status}`. */
class EsError extends Error {
  readonly body: Obj;
  constructor(
    readonly status: number,
    type: string,
    reason: string,
    extra: Obj = {},
  ) {
    super(reason);
    const cause = { type, reason, ...extra };
    this.body = { error: { root_cause: [cause], ...cause }, status };
  }
}

const fail = (status: number, type: string, reason: string, extra?: Obj): never => {
  throw new EsError(status, type, reason, extra);
};

const badRequest = (reason: string): never => fail(400, 'illegal_argument_exception', reason);

/** What the store does not send: refused, so that a store change sending it fails loudly. */
const unsupported = (what: string): never =>
  badRequest(`[es-double] unsupported request: ${what} (the session store does not send it)`);

const indexNotFound = (name: string): never =>
  fail(404, 'index_not_found_exception', `no such index [${name}]`, {
    'resource.type': 'index_or_alias',
    'resource.id': name,
    index_uuid: '_na_',
    index: name,
  });

// ---------------------------------------------------------------------------------------------
// Product and version
// ---------------------------------------------------------------------------------------------

class Profile {
  readonly major: number;
  readonly minor: number;

  constructor(
    readonly flavor: 'elasticsearch' | 'opensearch',
    readonly version: string,
  ) {
    const m = /^(\d+)\.(\d+)\.\d+$/.exec(version);
    if (!m) throw new Error(`es-double: version must look like 8.15.0, got ${version}`);
    this.major = Number(m[1]);
    this.minor = Number(m[2]);
  }

  get es(): boolean {
    return this.flavor === 'elasticsearch';
  }

  atLeast(major: number, minor: number): boolean {
    return this.major > major || (this.major === major && this.minor >= minor);
  }

  /** Elasticsearch 7.x and OpenSearch 1.x still put `_type: "_doc"` in document responses. */
  get typeField(): Obj {
    return (this.es ? this.major === 7 : this.major === 1) ? { _type: '_doc' } : {};
  }

  /** `X-Elastic-Product: Elasticsearch` since 7.14; the clients from 7.14 on refuse a server without it. */
  get productHeader(): boolean {
    return this.es && this.atLeast(7, 14);
  }

  /** Composable index templates exist since Elasticsearch 7.8 and in every OpenSearch. */
  get composableTemplates(): boolean {
    return !this.es || this.atLeast(7, 8);
  }

  /** Elasticsearch 8.8 renamed the document parse error. */
  get parseErrorType(): string {
    return this.es && this.atLeast(8, 8) ? 'document_parsing_exception' : 'mapper_parsing_exception';
  }

  get jsonType(): string {
    return this.es && this.major >= 8 ? 'application/json' : 'application/json; charset=UTF-8';
  }

  /** `GET /`: what the 7.x client's product check reads (version, build flavor, tagline). */
  info(uuid: string): Obj {
    const version = this.es
      ? { number: this.version, build_flavor: 'default', build_type: 'docker', build_snapshot: false }
      : { distribution: 'opensearch', number: this.version, build_type: 'docker', build_snapshot: false };
    return {
      name: 'es-double-node',
      cluster_name: 'es-double',
      cluster_uuid: uuid,
      version,
      tagline: this.es ? 'You Know, for Search' : 'The OpenSearch Project: https://opensearch.org/',
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Mappings: top-level properties, as the session index has them
// ---------------------------------------------------------------------------------------------

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const uuid = (): string => randomBytes(16).toString('base64url').slice(0, 22);
const glob = (pattern: string, s: string): boolean =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  ).test(s);

const MAPPING_KEYS = new Set(['dynamic', 'properties']);
const FIELD_TYPES = new Set(['object', 'keyword', 'date', 'long', 'float', 'boolean', 'text']);

function checkMappings(m: unknown, where: string): Obj {
  if (m === undefined) return {};
  if (!isObj(m)) return unsupported(`${where} mappings that are not an object`);
  for (const k of Object.keys(m)) if (!MAPPING_KEYS.has(k)) unsupported(`${where} mapping key [${k}]`);
  for (const [name, def] of Object.entries(isObj(m.properties) ? m.properties : {})) {
    if (!isObj(def) || !FIELD_TYPES.has(String(def.type ?? 'object')))
      unsupported(`${where} mapping of [${name}]: ${JSON.stringify(def)}`);
  }
  return structuredClone(m);
}

/** Adds `update`'s properties to `base`, as PUT _mapping and templates do; a type change is refused. */
function mergeMappings(base: Obj, update: Obj): Obj {
  const out: Obj = { ...structuredClone(base), ...structuredClone(update) };
  const props: Obj = { ...(isObj(base.properties) ? base.properties : {}) };
  for (const [name, def] of Object.entries(isObj(update.properties) ? update.properties : {})) {
    const cur = props[name];
    const typeOf = (d: unknown) => String((d as Obj).type ?? 'object');
    if (isObj(cur) && typeOf(cur) !== typeOf(def))
      badRequest(`mapper [${name}] cannot be changed from type [${typeOf(cur)}] to [${typeOf(def)}]`);
    props[name] = structuredClone(def);
  }
  out.properties = props;
  return out;
}

/** What dynamic mapping makes of a new value (strings: text with a keyword sub-field). */
function dynamicMapping(v: unknown): Obj {
  if (isObj(v)) {
    return { properties: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, dynamicMapping(x)])) };
  }
  if (typeof v === 'number') return { type: Number.isInteger(v) ? 'long' : 'float' };
  if (typeof v === 'boolean') return { type: 'boolean' };
  return { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } };
}

/**
 * Checks a document against the mapping (strict root, epoch-millis dates, objects where objects
 * are mapped) and returns the mapping extended by dynamic mapping.
 */
function mapDocument(profile: Profile, mappings: Obj, source: Obj): Obj {
  const props: Obj = { ...(isObj(mappings.properties) ? mappings.properties : {}) };
  for (const [key, value] of Object.entries(source)) {
    if (value === null) continue;
    const def = props[key];
    if (!isObj(def)) {
      if (mappings.dynamic === 'strict') {
        fail(
          400,
          'strict_dynamic_mapping_exception',
          `mapping set to strict, dynamic introduction of [${key}] within [_doc] is not allowed`,
        );
      }
      if (String(mappings.dynamic) !== 'false') props[key] = dynamicMapping(value);
      continue;
    }
    const type = String(def.type ?? 'object');
    if (type === 'object' ? !isObj(value) : isObj(value)) {
      fail(400, profile.parseErrorType, `failed to parse field [${key}] of type [${type}]`);
    }
    if (type === 'date' && !(typeof value === 'number' || /^-?\d+$/.test(String(value)))) {
      fail(400, profile.parseErrorType, `failed to parse field [${key}] of type [date] in document`, {
        caused_by: { type: 'illegal_argument_exception', reason: `failed to parse date field [${String(value)}]` },
      });
    }
  }
  return { ...mappings, properties: props };
}

// ---------------------------------------------------------------------------------------------
// Queries: bool (filter only), term on keyword fields, range on date and numeric fields
// ---------------------------------------------------------------------------------------------

type Matcher = (source: Obj) => boolean;

function compileQuery(mappings: Obj, q: unknown): Matcher {
  if (!isObj(q) || Object.keys(q).length !== 1) return unsupported(`query ${JSON.stringify(q)}`);
  const [kind, body] = Object.entries(q)[0] as [string, unknown];
  if (kind === 'bool') {
    if (!isObj(body) || Object.keys(body).some((k) => k !== 'filter') || !Array.isArray(body.filter))
      return unsupported(`bool query other than {filter: [...]}: ${JSON.stringify(body)}`);
    const filters = body.filter.map((f) => compileQuery(mappings, f));
    return (source) => filters.every((f) => f(source));
  }
  if (kind !== 'term' && kind !== 'range') return unsupported(`query type [${kind}]`);
  if (!isObj(body) || Object.keys(body).length !== 1) return unsupported(`${kind} query ${JSON.stringify(body)}`);
  const [field, spec] = Object.entries(body)[0] as [string, unknown];
  const def = isObj(mappings.properties) ? mappings.properties[field] : undefined;
  // An unmapped field matches nothing, as in Elasticsearch.
  if (!isObj(def)) return () => false;
  const type = String(def.type ?? 'object');
  if (kind === 'term') {
    if (type !== 'keyword' || typeof spec !== 'string')
      return unsupported(`term query on a [${type}] field, or with a non-string value: ${JSON.stringify(body)}`);
    return (source) => source[field] === spec;
  }
  const ops: Record<string, (a: number, b: number) => boolean> = {
    gt: (a, b) => a > b,
    gte: (a, b) => a >= b,
    lt: (a, b) => a < b,
    lte: (a, b) => a <= b,
  };
  if (!['date', 'long', 'float'].includes(type) || !isObj(spec) || Object.keys(spec).length === 0)
    return unsupported(`range query on a [${type}] field: ${JSON.stringify(body)}`);
  const checks = Object.entries(spec).map(([op, bound]) => {
    const cmp = ops[op];
    if (!cmp || typeof bound !== 'number') return unsupported(`range query bound [${op}: ${JSON.stringify(bound)}]`);
    return (v: number) => cmp(v, bound);
  });
  return (source) => {
    const v = Number(source[field]);
    return source[field] !== undefined && source[field] !== null && checks.every((c) => c(v));
  };
}

// ---------------------------------------------------------------------------------------------
// Cluster state and document operations
// ---------------------------------------------------------------------------------------------

interface StoredDoc {
  readonly id: string;
  readonly source: Obj;
  readonly version: number;
  readonly seqNo: number;
}

interface IndexState {
  name: string;
  uuid: string;
  mappings: Obj;
  replicas: number;
  /** The latest state of every document: what realtime GET and writes see. */
  live: Map<string, StoredDoc>;
  /** The documents as of the last refresh: what search, count and delete-by-query see. */
  searchable: Map<string, StoredDoc>;
  /** Versions of deleted documents, so that a re-created document continues the count. */
  tombstones: Map<string, number>;
  lastSeqNo: number;
  dirty: boolean;
  timer?: NodeJS.Timeout;
  waiters: Array<() => void>;
}

interface Cas {
  ifSeqNo?: number;
  ifPrimaryTerm?: number;
  /** `op_type=create`: a document that exists is a conflict. */
  create?: boolean;
}

const PRIMARY_TERM = 1;

class Cluster {
  readonly indices = new Map<string, IndexState>();
  readonly templates = new Map<string, Obj>();
  /** Open points in time: the searchable documents of an index when each was opened. */
  readonly pits = new Map<string, { index: string; docs: StoredDoc[] }>();
  readonly uuid = uuid();

  constructor(
    readonly profile: Profile,
    readonly refreshIntervalMs: number,
  ) {}

  require(name: string): IndexState {
    return this.indices.get(name) ?? indexNotFound(name);
  }

  /** A read's target: a missing index is a 404, or nothing with `ignore_unavailable=true`. */
  readTarget(name: string, ignoreUnavailable: boolean): IndexState | undefined {
    return this.indices.get(name) ?? (ignoreUnavailable ? undefined : indexNotFound(name));
  }

  /** Creates an index; the highest-priority matching template's mappings apply first. */
  create(name: string, mappings: Obj = {}, replicas = 1): IndexState {
    const existing = this.indices.get(name);
    if (existing) {
      fail(400, 'resource_already_exists_exception', `index [${name}/${existing.uuid}] already exists`, {
        index_uuid: existing.uuid,
        index: name,
      });
    }
    let template: Obj | undefined;
    for (const t of this.templates.values()) {
      const matches = (t.index_patterns as string[]).some((p) => glob(p, name));
      if (matches && (!template || Number(t.priority) > Number(template.priority))) template = t;
    }
    const fromTemplate =
      isObj(template?.template) && isObj(template.template.mappings) ? template.template.mappings : {};
    const idx: IndexState = {
      name,
      uuid: uuid(),
      mappings: mergeMappings(fromTemplate, mappings),
      replicas,
      live: new Map(),
      searchable: new Map(),
      tombstones: new Map(),
      lastSeqNo: -1,
      dirty: false,
      waiters: [],
    };
    this.indices.set(name, idx);
    if (this.refreshIntervalMs > 0) idx.timer = setInterval(() => this.refresh(idx), this.refreshIntervalMs).unref();
    return idx;
  }

  deleteIndex(idx: IndexState): void {
    clearInterval(idx.timer);
    for (const w of idx.waiters.splice(0)) w();
    this.indices.delete(idx.name);
  }

  shards(idx: IndexState): Obj {
    return { total: 1 + idx.replicas, successful: 1, failed: 0 };
  }

  refresh(idx: IndexState): void {
    if (idx.dirty) idx.searchable = new Map(idx.live);
    idx.dirty = false;
    for (const w of idx.waiters.splice(0)) w();
  }

  /**
   * `refresh=wait_for`: resolves after the next refresh makes the write visible. With periodic
   * refresh off Elasticsearch would wait for someone to refresh; the double forces one instead
   * (reported as `forced_refresh: true`, as Elasticsearch does when it forces one).
   */
  async waitForRefresh(idx: IndexState): Promise<boolean> {
    if (!idx.dirty) return false;
    if (this.refreshIntervalMs <= 0) {
      this.refresh(idx);
      return true;
    }
    await new Promise<void>((resolve) => idx.waiters.push(resolve));
    return false;
  }

  close(): void {
    for (const idx of this.indices.values()) {
      clearInterval(idx.timer);
      for (const w of idx.waiters.splice(0)) w();
    }
  }

  conflict(idx: IndexState, id: string, detail: string): never {
    return fail(409, 'version_conflict_engine_exception', `[${id}]: version conflict, ${detail}`, {
      index_uuid: idx.uuid,
      shard: '0',
      index: idx.name,
    });
  }

  private checkCas(idx: IndexState, id: string, cur: StoredDoc | undefined, cas: Cas): void {
    if (cas.create && cur) this.conflict(idx, id, `document already exists (current version [${cur.version}])`);
    if (cas.ifSeqNo === undefined) return;
    const required = `required seqNo [${cas.ifSeqNo}], primary term [${cas.ifPrimaryTerm}]`;
    if (!cur) this.conflict(idx, id, `${required} but no document was found`);
    else if (cur.seqNo !== cas.ifSeqNo || cas.ifPrimaryTerm !== PRIMARY_TERM) {
      this.conflict(
        idx,
        id,
        `${required}. current document has seqNo [${cur.seqNo}] and primary term [${PRIMARY_TERM}]`,
      );
    }
  }

  /** Writes a new document state (`null` deletes); every write, a delete of nothing too, takes a sequence number. */
  private commit(idx: IndexState, id: string, source: Obj | null): Obj {
    const prev = idx.live.get(id);
    const version = (prev?.version ?? idx.tombstones.get(id) ?? 0) + 1;
    const seqNo = ++idx.lastSeqNo;
    idx.live.delete(id);
    if (source === null) idx.tombstones.set(id, version);
    else {
      idx.tombstones.delete(id);
      idx.live.set(id, { id, source, version, seqNo });
    }
    idx.dirty = true;
    const result = source === null ? (prev ? 'deleted' : 'not_found') : prev ? 'updated' : 'created';
    return this.writeResult(idx, id, result, version, seqNo);
  }

  private writeResult(idx: IndexState, id: string, result: string, version: number, seqNo: number): Obj {
    return {
      _index: idx.name,
      ...this.profile.typeField,
      _id: id,
      _version: version,
      result,
      _shards: this.shards(idx),
      _seq_no: seqNo,
      _primary_term: PRIMARY_TERM,
    };
  }

  indexDoc(idx: IndexState, id: string, source: Obj, cas: Cas): Reply {
    const mappings = mapDocument(this.profile, idx.mappings, source);
    const cur = idx.live.get(id);
    this.checkCas(idx, id, cur, cas);
    idx.mappings = mappings;
    return { status: cur ? 200 : 201, body: this.commit(idx, id, structuredClone(source)) };
  }

  deleteDoc(idx: IndexState, id: string): Reply {
    const found = idx.live.has(id);
    return { status: found ? 200 : 404, body: this.commit(idx, id, null) };
  }

  /** The update API with a partial `doc`: merged recursively; no change is a `noop` that keeps the sequence number. */
  updateDoc(idx: IndexState, id: string, doc: Obj, cas: Cas): Reply {
    const cur = idx.live.get(id);
    if (!cur) {
      const reason =
        this.profile.es && this.profile.major >= 8 ? `[${id}]: document missing` : `[_doc][${id}]: document missing`;
      fail(404, 'document_missing_exception', reason, { index_uuid: idx.uuid, shard: '0', index: idx.name });
    }
    const current = cur as StoredDoc;
    this.checkCas(idx, id, current, cas);
    const merged = deepMerge(current.source, doc);
    if (JSON.stringify(merged) === JSON.stringify(current.source)) {
      const noop = this.writeResult(idx, id, 'noop', current.version, current.seqNo);
      return { status: 200, body: { ...noop, _shards: { total: 0, successful: 0, failed: 0 } } };
    }
    idx.mappings = mapDocument(this.profile, idx.mappings, merged);
    return { status: 200, body: this.commit(idx, id, merged) };
  }

  getDoc(idx: IndexState, id: string): Reply {
    const doc = idx.live.get(id);
    const head = { _index: idx.name, ...this.profile.typeField, _id: id };
    if (!doc) return { status: 404, body: { ...head, found: false } };
    const meta = { _version: doc.version, _seq_no: doc.seqNo, _primary_term: PRIMARY_TERM, found: true };
    return { status: 200, body: { ...head, ...meta, _source: structuredClone(doc.source) } };
  }

  /** The documents of the last refreshed snapshot that match, in the order they were written. */
  matching(idx: IndexState | undefined, query: unknown): StoredDoc[] {
    if (!idx) return [];
    const matcher = compileQuery(idx.mappings, query);
    return [...idx.searchable.values()].filter((doc) => matcher(doc.source));
  }
}

function deepMerge(target: Obj, patch: Obj): Obj {
  const out: Obj = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    const cur = out[k];
    out[k] = isObj(cur) && isObj(v) ? deepMerge(cur, v) : structuredClone(v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// HTTP: the routes the store uses, each with the query parameters and body keys it sends
// ---------------------------------------------------------------------------------------------

interface Ctx {
  cluster: Cluster;
  segs: Record<string, string>;
  query: Map<string, string>;
  body: Obj | undefined;
}

interface Route {
  method: string;
  pattern: string[];
  params: Set<string>;
  /** Accepted top-level body keys (`*`: any, for a document); `undefined` for a request without a body. */
  bodyKeys?: Set<string>;
  /** Whether the body may be left out (create index). */
  bodyOptional: boolean;
  handler: (ctx: Ctx) => Reply | Promise<Reply>;
}

const WRITE = 'refresh if_seq_no if_primary_term op_type';

const route = (spec: string, params: string, bodyKeys: string | undefined, handler: Route['handler']): Route => {
  const [method = '', path = ''] = spec.split(' ');
  const words = (s: string) => s.split(' ').filter(Boolean);
  return {
    method,
    pattern: path.split('/').filter(Boolean),
    params: new Set(words(params)),
    bodyKeys: bodyKeys === undefined ? undefined : new Set(words(bodyKeys.replace(/^\?/, ''))),
    bodyOptional: bodyKeys?.startsWith('?') ?? true,
    handler,
  };
};

const index = (ctx: Ctx) => ctx.cluster.require(ctx.segs.index ?? '');
const ignoreUnavailable = (ctx: Ctx) => flag(ctx, 'ignore_unavailable');

const ROUTES: Route[] = [
  route('GET /', '', undefined, (ctx) => ({ status: 200, body: ctx.cluster.profile.info(ctx.cluster.uuid) })),
  route('HEAD /{index}', '', undefined, (ctx) => ({
    status: ctx.cluster.indices.has(ctx.segs.index ?? '') ? 200 : 404,
  })),
  route('PUT /{index}', '', '?mappings settings', createIndex),
  route('DELETE /{index}', '', undefined, (ctx) => {
    ctx.cluster.deleteIndex(index(ctx));
    return { status: 200, body: { acknowledged: true } };
  }),
  route('GET /{index}/_mapping', '', undefined, (ctx) => {
    const idx = index(ctx);
    return { status: 200, body: { [idx.name]: { mappings: idx.mappings } } };
  }),
  route('PUT /{index}/_mapping', '', 'properties', (ctx) => {
    const idx = index(ctx);
    idx.mappings = mergeMappings(idx.mappings, checkMappings(ctx.body, 'PUT _mapping'));
    return { status: 200, body: { acknowledged: true } };
  }),
  route('PUT /_index_template/{name}', '', 'index_patterns priority template', putTemplate),
  route('GET /_index_template/{name}', '', undefined, (ctx) => {
    const name = ctx.segs.name ?? '';
    const t = templates(ctx).get(name);
    if (!t) fail(404, 'resource_not_found_exception', `index template matching [${name}] not found`);
    return { status: 200, body: { index_templates: [{ name, index_template: t }] } };
  }),
  route('DELETE /_index_template/{name}', '', undefined, (ctx) => {
    const name = ctx.segs.name ?? '';
    if (!templates(ctx).delete(name)) fail(404, 'resource_not_found_exception', `index_template [${name}] missing`);
    return { status: 200, body: { acknowledged: true } };
  }),
  route('GET /{index}/_doc/{id}', '', undefined, (ctx) => {
    const idx = ctx.cluster.indices.get(ctx.segs.index ?? '') ?? indexNotFound(ctx.segs.index ?? '');
    return ctx.cluster.getDoc(idx, ctx.segs.id ?? '');
  }),
  route('PUT /{index}/_doc/{id}', WRITE, '*', (ctx) => {
    // A write to a missing index creates it, as with the default `action.auto_create_index`.
    const name = ctx.segs.index ?? '';
    const idx = ctx.cluster.indices.get(name) ?? ctx.cluster.create(name);
    return afterWrite(ctx, idx, ctx.cluster.indexDoc(idx, ctx.segs.id ?? '', ctx.body ?? {}, cas(ctx)));
  }),
  route('DELETE /{index}/_doc/{id}', 'refresh', undefined, (ctx) => {
    const idx = index(ctx);
    return afterWrite(ctx, idx, ctx.cluster.deleteDoc(idx, ctx.segs.id ?? ''));
  }),
  route('POST /{index}/_update/{id}', WRITE, 'doc', (ctx) => {
    const doc = ctx.body?.doc;
    if (!isObj(doc)) return unsupported('an update without a partial [doc] object');
    const idx = ctx.cluster.indices.get(ctx.segs.index ?? '') ?? ctx.cluster.create(ctx.segs.index ?? '');
    return afterWrite(ctx, idx, ctx.cluster.updateDoc(idx, ctx.segs.id ?? '', doc, cas(ctx)));
  }),
  route('POST /{index}/_refresh', 'ignore_unavailable', undefined, (ctx) => {
    const idx = ctx.cluster.readTarget(ctx.segs.index ?? '', ignoreUnavailable(ctx));
    if (idx) ctx.cluster.refresh(idx);
    return { status: 200, body: { _shards: idx ? ctx.cluster.shards(idx) : { total: 0, successful: 0, failed: 0 } } };
  }),
  route('POST /{index}/_search', 'ignore_unavailable', 'query _source size track_total_hits sort search_after', search),
  // Points in time (Elasticsearch 7.10 and later; OpenSearch has its own API, which the store does not use).
  route('POST /{index}/_pit', 'keep_alive', undefined, (ctx) => {
    if (!ctx.cluster.profile.es || !ctx.cluster.profile.atLeast(7, 10)) return unsupported('the _pit endpoint');
    if (!ctx.query.get('keep_alive')) badRequest('[keep_alive] is required');
    const idx = index(ctx);
    const id = Buffer.from(uuid()).toString('base64');
    ctx.cluster.pits.set(id, { index: idx.name, docs: [...idx.searchable.values()] });
    return { status: 200, body: { id } };
  }),
  route('POST /_search', '', 'query _source size track_total_hits sort search_after pit', search),
  route('DELETE /_pit', '', 'id', (ctx) => {
    const freed = ctx.cluster.pits.delete(String(ctx.body?.id)) ? 1 : 0;
    return { status: freed ? 200 : 404, body: { succeeded: freed === 1, num_freed: freed } };
  }),
  route('POST /{index}/_count', 'ignore_unavailable', 'query', (ctx) => {
    const idx = ctx.cluster.readTarget(ctx.segs.index ?? '', ignoreUnavailable(ctx));
    const count = ctx.cluster.matching(idx, ctx.body?.query).length;
    return {
      status: 200,
      body: { count, _shards: { total: idx ? 1 : 0, successful: idx ? 1 : 0, skipped: 0, failed: 0 } },
    };
  }),
  route('POST /{index}/_delete_by_query', 'conflicts ignore_unavailable refresh', 'query', deleteByQuery),
];

function createIndex(ctx: Ctx): Reply {
  const body = ctx.body ?? {};
  const settings = body.settings ?? {};
  if (!isObj(settings) || Object.keys(settings).some((k) => k !== 'number_of_replicas'))
    return unsupported(`index settings ${JSON.stringify(settings)}`);
  const name = ctx.segs.index ?? '';
  const replicas = settings.number_of_replicas === undefined ? 1 : Number(settings.number_of_replicas);
  ctx.cluster.create(name, checkMappings(body.mappings, 'create index'), replicas);
  return { status: 200, body: { acknowledged: true, shards_acknowledged: true, index: name } };
}

function templates(ctx: Ctx): Map<string, Obj> {
  // Before 7.8 the endpoint does not exist; Elasticsearch answers 400 "no handler found".
  if (!ctx.cluster.profile.composableTemplates) unsupported('composable index templates before Elasticsearch 7.8');
  return ctx.cluster.templates;
}

function putTemplate(ctx: Ctx): Reply {
  const all = templates(ctx);
  const name = ctx.segs.name ?? '';
  const body = ctx.body ?? {};
  const patterns = body.index_patterns;
  if (!Array.isArray(patterns) || patterns.length === 0 || !patterns.every((p) => typeof p === 'string'))
    return unsupported(`index_patterns ${JSON.stringify(patterns)}`);
  const template = body.template ?? {};
  if (!isObj(template) || Object.keys(template).some((k) => k !== 'mappings'))
    return unsupported(`template ${JSON.stringify(template)} (only mappings)`);
  const priority = Number(body.priority ?? 0);
  // Templates of equal priority may not both match a new index.
  for (const [other, t] of all) {
    const theirs = t.index_patterns as string[];
    if (other === name || Number(t.priority) !== priority) continue;
    if (theirs.some((p) => patterns.some((q: string) => glob(p, q) || glob(q, p)))) {
      badRequest(
        `index template [${name}] has index patterns [${patterns.join(', ')}] matching patterns from existing templates [${other}] with patterns (${other} => [${theirs.join(', ')}]) that have the same priority [${priority}], multiple index templates may not match during index creation, please use a different priority`,
      );
    }
  }
  const mappings = checkMappings(template.mappings, 'index template');
  all.set(name, { index_patterns: patterns, priority, template: { mappings }, composed_of: [] });
  return { status: 200, body: { acknowledged: true } };
}

/**
 * The pages of an enumeration: `sort` on `_id` (refused by Elasticsearch 8 and later, where
 * fielddata on `_id` is off), or `_shard_doc` inside a point in time; `search_after` continues
 * after the last hit's sort values. Returns the matching documents in that order, each with its
 * sort values, or `null` for a search without `sort`.
 */
function sorted(ctx: Ctx, docs: StoredDoc[], pit: boolean): { doc: StoredDoc; sort: unknown[] }[] | null {
  const body = ctx.body ?? {};
  if (body.sort === undefined) {
    if (body.search_after !== undefined) badRequest('Cannot use [search_after] without [sort]');
    return null;
  }
  const [key, ...rest] = Array.isArray(body.sort) ? body.sort : [];
  const field = isObj(key) ? Object.keys(key)[0] : undefined;
  if (rest.length > 0 || !isObj(key) || (key[field ?? ''] !== 'asc' && !isObj(key[field ?? '']))) {
    return unsupported(`sort ${JSON.stringify(body.sort)} (one field, ascending)`);
  }
  let keyed: { doc: StoredDoc; sort: unknown[] }[];
  if (field === '_id') {
    if (ctx.cluster.profile.es && ctx.cluster.profile.major >= 8) {
      badRequest(
        'Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic cluster setting: indices.id_field_data.enabled',
      );
    }
    keyed = docs.map((doc) => ({ doc, sort: [doc.id] })).sort((a, b) => (a.doc.id < b.doc.id ? -1 : 1));
  } else if (field === '_shard_doc') {
    if (!pit) badRequest('[_shard_doc] sort field cannot be used without [point in time]');
    keyed = docs.map((doc, i) => ({ doc, sort: [i] }));
  } else return unsupported(`sort on ${String(field)}`);
  const after = body.search_after;
  if (after === undefined) return keyed;
  if (!Array.isArray(after) || after.length !== 1) badRequest('search_after has 1 value(s) but sort has 1');
  const last = (after as unknown[])[0];
  return keyed.filter(({ sort }) => (sort[0] as string | number) > (last as string | number));
}

function search(ctx: Ctx): Reply {
  const body = ctx.body ?? {};
  const paging = body.sort !== undefined;
  if (body.track_total_hits !== true && !(paging && body.track_total_hits === false)) {
    return unsupported('a search without track_total_hits: true (or false, when paging with sort)');
  }
  const size = Number(body.size ?? 10);
  if (!Number.isInteger(size) || size < 0) badRequest(`[size] parameter cannot be negative, found [${size}]`);
  if (size > 10_000) {
    badRequest(
      `Result window is too large, from + size must be less than or equal to: [10000] but was [${size}]. This limit can be set by changing the [index.max_result_window] index level setting.`,
    );
  }
  const fields = body._source ?? [];
  if (!Array.isArray(fields) || !fields.every((f) => typeof f === 'string'))
    return unsupported(`_source ${JSON.stringify(fields)} (a list of fields only)`);
  let idx: IndexState | undefined;
  let docs: StoredDoc[];
  if (ctx.segs.index === undefined) {
    const pit = isObj(body.pit) ? ctx.cluster.pits.get(String(body.pit.id)) : undefined;
    if (!pit) return fail(404, 'search_context_missing_exception', 'No search context found for the point in time');
    idx = ctx.cluster.indices.get(pit.index);
    docs = pit.docs;
  } else {
    idx = ctx.cluster.readTarget(ctx.segs.index, ignoreUnavailable(ctx));
    docs = idx ? [...idx.searchable.values()] : [];
  }
  const matcher = idx ? compileQuery(idx.mappings, body.query) : () => false;
  const paged = sorted(
    ctx,
    docs.filter((doc) => matcher(doc.source)),
    ctx.segs.index === undefined,
  );
  const matched = paged ? paged.map((entry) => entry.doc) : docs.filter((doc) => matcher(doc.source));
  // Top-level fields, and `object.field` paths one level down (what the store asks for).
  const pick = (source: Obj): Obj => {
    if (fields.length === 0) return structuredClone(source);
    const picked: Obj = {};
    for (const field of fields) {
      const dot = field.indexOf('.');
      if (dot < 0) {
        if (field in source) picked[field] = source[field];
        continue;
      }
      const [outer, inner] = [field.slice(0, dot), field.slice(dot + 1)];
      const nested = source[outer];
      if (typeof nested !== 'object' || nested === null || !(inner in nested)) continue;
      const target = (picked[outer] ??= {}) as Obj;
      target[inner] = structuredClone((nested as Obj)[inner]);
    }
    return picked;
  };
  // A filter-only query scores every hit 0.
  const hits = matched.slice(0, size).map((doc, i) => ({
    _index: idx?.name,
    ...ctx.cluster.profile.typeField,
    _id: doc.id,
    _score: paged ? null : 0,
    _source: pick(doc.source),
    ...(paged ? { sort: paged[i]?.sort } : {}),
  }));
  const shards = { total: idx ? 1 : 0, successful: idx ? 1 : 0, skipped: 0, failed: 0 };
  return {
    status: 200,
    body: {
      took: 0,
      timed_out: false,
      _shards: shards,
      ...(isObj(body.pit) ? { pit_id: body.pit.id } : {}),
      hits: {
        ...(body.track_total_hits === true ? { total: { value: matched.length, relation: 'eq' } } : {}),
        max_score: hits.length > 0 && !paged ? 0 : null,
        hits,
      },
    },
  };
}

/**
 * Deletes what the last refreshed snapshot matches, each document conditionally on the sequence
 * number it had in the snapshot: one changed or deleted since the refresh is a version conflict,
 * counted and skipped (`conflicts=proceed`, which the store always sends).
 */
function deleteByQuery(ctx: Ctx): Reply {
  if (ctx.query.get('conflicts') !== 'proceed') return unsupported('delete_by_query without conflicts=proceed');
  const idx = ctx.cluster.readTarget(ctx.segs.index ?? '', ignoreUnavailable(ctx));
  const matched = ctx.cluster.matching(idx, ctx.body?.query);
  let deleted = 0;
  for (const doc of matched) {
    if (idx?.live.get(doc.id)?.seqNo !== doc.seqNo) continue;
    ctx.cluster.deleteDoc(idx, doc.id);
    deleted++;
  }
  if (idx && flag(ctx, 'refresh')) ctx.cluster.refresh(idx);
  return {
    status: 200,
    body: {
      took: 0,
      timed_out: false,
      total: matched.length,
      deleted,
      batches: matched.length > 0 ? 1 : 0,
      version_conflicts: matched.length - deleted,
      noops: 0,
      retries: { bulk: 0, search: 0 },
      throttled_millis: 0,
      requests_per_second: -1,
      throttled_until_millis: 0,
      failures: [],
    },
  };
}

function flag(ctx: Ctx, name: string): boolean {
  const v = ctx.query.get(name);
  if (v === undefined || v === 'false') return false;
  if (v === 'true' || v === '') return true;
  return badRequest(`Failed to parse value [${v}] as only [true] or [false] are allowed.`);
}

function cas(ctx: Ctx): Cas {
  const seq = ctx.query.get('if_seq_no');
  const term = ctx.query.get('if_primary_term');
  const opType = ctx.query.get('op_type');
  if (opType !== undefined && opType !== 'create') return unsupported(`op_type=${opType}`);
  if (opType === 'create') {
    if (seq !== undefined || term !== undefined) badRequest('create operations do not support compare and set');
    return { create: true };
  }
  if (seq === undefined && term === undefined) return {};
  if (seq === undefined || term === undefined) {
    const msg =
      seq === undefined ? 'ifPrimaryTerm is set, but seqNo is unassigned' : 'ifSeqNo is set, but primary term is [0]';
    fail(400, 'action_request_validation_exception', `Validation Failed: 1: ${msg};`);
  }
  const ifSeqNo = Number(seq);
  const ifPrimaryTerm = Number(term);
  if (!Number.isInteger(ifSeqNo) || !Number.isInteger(ifPrimaryTerm))
    badRequest('if_seq_no and if_primary_term must be integers');
  return { ifSeqNo, ifPrimaryTerm };
}

/** Applies `refresh=true|wait_for` after a write (the store sends no `refresh` for `false`). */
async function afterWrite(ctx: Ctx, idx: IndexState, reply: Reply): Promise<Reply> {
  const mode = ctx.query.get('refresh');
  if (mode === undefined) return reply;
  let forced: boolean;
  if (mode === 'true') {
    ctx.cluster.refresh(idx);
    forced = true;
  } else if (mode === 'wait_for') forced = await ctx.cluster.waitForRefresh(idx);
  else return unsupported(`refresh=${mode}`);
  if (forced) (reply.body as Obj).forced_refresh = true;
  return reply;
}

function matchRoute(pattern: string[], segs: string[]): Record<string, string> | undefined {
  if (pattern.length !== segs.length) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segs[i] as string;
    if (p.startsWith('{')) {
      // Index names never start with `_`, which keeps `/_search` from matching `/{index}`.
      if (p === '{index}' && s.startsWith('_')) return undefined;
      out[p.slice(1, -1)] = s;
    } else if (p !== s) return undefined;
  }
  return out;
}

/** Only plain JSON, which the store always sends; a vendor media type is something new. */
function checkMediaTypes(req: IncomingMessage, hasBody: boolean): void {
  for (const name of ['accept', 'content-type'] as const) {
    const value = req.headers[name];
    if (value === undefined && (name === 'accept' || !hasBody)) continue;
    if (!/^application\/json\s*(;\s*charset=utf-8\s*)?$/i.test(String(value))) {
      unsupported(
        `${name === 'accept' ? 'Accept' : 'Content-Type'} header [${String(value)}] (the store sends application/json)`,
      );
    }
  }
}

function dispatch(cluster: Cluster, req: IncomingMessage, url: URL, raw: Buffer): Reply | Promise<Reply> {
  const method = req.method ?? 'GET';
  const what = `${method} ${url.pathname}`;
  checkMediaTypes(req, raw.length > 0);
  const segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let found: { r: Route; segs: Record<string, string> } | undefined;
  for (const r of ROUTES) {
    const params = r.method === method ? matchRoute(r.pattern, segs) : undefined;
    if (params) found = { r, segs: params };
  }
  if (!found) return unsupported(`endpoint [${what}]`);
  const query = new Map<string, string>();
  for (const [k, v] of url.searchParams) {
    if (!found.r.params.has(k)) unsupported(`parameter [${k}] of [${what}]`);
    query.set(k, v);
  }
  let body: Obj | undefined;
  if (raw.length > 0) {
    if (!found.r.bodyKeys) unsupported(`a body on [${what}]`);
    try {
      body = JSON.parse(raw.toString('utf8')) as Obj;
    } catch (err) {
      fail(400, 'x_content_parse_exception', `Failed to parse request body: ${(err as Error).message}`);
    }
    if (!isObj(body)) return fail(400, 'parse_exception', 'request body must be a JSON object');
    const keys = found.r.bodyKeys;
    // A document's own fields are data; its mapping decides about them.
    if (!keys?.has('*'))
      for (const k of Object.keys(body)) if (!keys?.has(k)) unsupported(`body key [${k}] of [${what}]`);
  } else if (!found.r.bodyOptional) {
    return fail(400, 'parse_exception', 'request body is required');
  }
  return found.r.handler({ cluster, segs: found.segs, query, body });
}

async function serve(
  cluster: Cluster,
  log: EsDoubleRequest[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://es-double');
  const method = req.method ?? 'GET';
  log.push({ method, path: url.pathname, query: url.search.slice(1) });
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  let reply: Reply;
  try {
    reply = await dispatch(cluster, req, url, Buffer.concat(chunks));
  } catch (err) {
    if (err instanceof EsError) reply = { status: err.status, body: err.body };
    else {
      const reason = `[es-double] internal error: ${err instanceof Error ? err.message : String(err)}`;
      reply = { status: 500, body: new EsError(500, 'exception', reason).body };
    }
  }
  const text = reply.body === undefined || method === 'HEAD' ? '' : JSON.stringify(reply.body);
  const headers: Record<string, string> = {
    'content-type': cluster.profile.jsonType,
    'content-length': String(Buffer.byteLength(text)),
  };
  if (cluster.profile.productHeader) headers['x-elastic-product'] = 'Elasticsearch';
  res.writeHead(reply.status, headers);
  res.end(text);
}
