/**
 * A protocol double of Elasticsearch / OpenSearch for tests: an HTTP server on 127.0.0.1 that follows
 * the documented REST behaviour of the endpoints a session store uses, closely enough that the
 * official clients (`@elastic/elasticsearch`, `@opensearch-project/opensearch`) work against it
 * unmodified. It models one primary shard per index, realtime GET, near-real-time search (refresh),
 * sequence numbers and primary terms, mappings (dynamic, strict, disabled and non-indexed fields),
 * version-specific headers (product check, REST compatibility media types) and ES-shaped errors.
 * Whatever it does not implement fails loudly with an error naming it, never silently.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** Options for {@link startEsDouble}. */
export interface EsDoubleOptions {
  /** Product to impersonate. Default `'elasticsearch'`. */
  flavor?: 'elasticsearch' | 'opensearch';
  /**
   * Server version (`major.minor.patch`) reported by `GET /` and driving version-specific behaviour
   * (product header, accepted `compatible-with` versions, `_type` in 7.x responses, error types).
   * Default `'9.1.0'` for Elasticsearch, `'2.17.0'` for OpenSearch.
   */
  version?: string;
  /**
   * Default periodic refresh interval of every index, in milliseconds; `-1` disables periodic
   * refreshes (only `_refresh`, `refresh=true` and {@link EsDouble.refreshAll} refresh). An index's
   * own `index.refresh_interval` setting takes precedence. Default 1000, as in Elasticsearch.
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
  /** Refreshes every index now, as `POST /_refresh` does. */
  refreshAll(): void;
  /** Names of the existing indices, sorted. */
  indices(): string[];
}

/**
 * Starts a double on a random loopback port.
 *
 * @example
 * const es = await startEsDouble({ version: '8.15.0', refreshIntervalMs: -1 });
 * const client = new Client({ node: es.url });
 * // ...
 * await es.stop();
 */
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
    refreshAll: () => cluster.refreshAll(),
    indices: () => [...cluster.indices.keys()].sort(),
    stop: async () => {
      cluster.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Errors: every error body is built by `errorBody`
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

interface Cause {
  type: string;
  reason: string;
  [key: string]: unknown;
}

interface Reply {
  status: number;
  body?: unknown;
}

/** An error that becomes an HTTP response. */
class EsError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`es-double ${status}`);
  }
}

/** A failure while executing a query on a shard; the search endpoints wrap it per ES. */
class ShardError extends Error {
  constructor(
    readonly failure: Cause,
    readonly causedBy?: Cause,
  ) {
    super(failure.reason);
  }
}

const cause = (type: string, reason: string, extra: Obj = {}): Cause => ({ type, reason, ...extra });

/** The ES error body: `{error: {root_cause, type, reason, ...details, caused_by?}, status}`. */
function errorBody(status: number, top: Cause, opts: { causedBy?: Cause; rootCause?: Cause; details?: Obj } = {}): Obj {
  const error: Obj = { root_cause: [opts.rootCause ?? top], ...top, ...opts.details };
  if (opts.causedBy) error.caused_by = opts.causedBy;
  return { error, status };
}

function fail(status: number, top: Cause, causedBy?: Cause): never {
  throw new EsError(status, errorBody(status, top, causedBy ? { causedBy } : {}));
}

/** A 400 with an error of this type, the most common failure. */
function reject(type: string, reason: string, extra: Obj = {}): never {
  return fail(400, cause(type, reason, extra));
}

const badRequest = (reason: string): never => reject('illegal_argument_exception', reason);

/** Something real Elasticsearch does that this double does not: say so instead of pretending. */
const unsupported = (what: string): never =>
  reject('illegal_argument_exception', `[es-double] ${what} is not supported by the test double`);

const indexNotFound = (name: string): Cause =>
  cause('index_not_found_exception', `no such index [${name}]`, {
    'resource.type': 'index_or_alias',
    'resource.id': name,
    index_uuid: '_na_',
    index: name,
  });

function searchPhaseError(idx: IndexState, err: ShardError, nodeId: string): EsError {
  const top = cause('search_phase_execution_exception', 'all shards failed', { phase: 'query', grouped: true });
  const details = { failed_shards: [{ shard: 0, index: idx.name, node: nodeId, reason: err.failure }] };
  return new EsError(
    400,
    errorBody(400, top, { rootCause: err.failure, causedBy: err.causedBy ?? err.failure, details }),
  );
}

// ---------------------------------------------------------------------------------------------
// Product and version profile
// ---------------------------------------------------------------------------------------------

class Profile {
  readonly major: number;
  readonly minor: number;

  constructor(
    readonly flavor: 'elasticsearch' | 'opensearch',
    readonly version: string,
  ) {
    const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
    if (!m) throw new Error(`es-double: version must look like 8.15.0, got ${version}`);
    this.major = Number(m[1]);
    this.minor = Number(m[2]);
  }

  get es(): boolean {
    return this.flavor === 'elasticsearch';
  }

  atLeast(major: number, minor = 0): boolean {
    return this.major > major || (this.major === major && this.minor >= minor);
  }

  /** ES 7.x and OpenSearch 1.x still put `_type: "_doc"` in document responses. */
  get typeField(): Obj {
    return (this.es ? this.major === 7 : this.major === 1) ? { _type: '_doc' } : {};
  }

  /** ES sends `X-Elastic-Product: Elasticsearch` since 7.14; clients from 7.14 on check it. */
  get productHeader(): boolean {
    return this.es && this.atLeast(7, 14);
  }

  /** Non-indexed keyword/numeric/date/boolean fields are queryable via doc values (ES 8.1, OpenSearch ~2.12). */
  get docValuesSearch(): boolean {
    return this.es ? this.atLeast(8, 1) : this.atLeast(2, 12);
  }

  /** ES 8.8 renamed the document parse error. */
  get parseErrorType(): string {
    return this.es && this.atLeast(8, 8) ? 'document_parsing_exception' : 'mapper_parsing_exception';
  }

  /** Composable index templates exist since ES 7.8 and in every OpenSearch. */
  get composableTemplates(): boolean {
    return !this.es || this.atLeast(7, 8);
  }

  /** ES 8 disallows fielddata on `_id` (sorting by it) by default. */
  get idFielddata(): boolean {
    return !this.es || this.major < 8;
  }

  /** Response content type when the request asked for no compatibility version. */
  get jsonType(): string {
    return this.es && this.major >= 8 ? 'application/json' : 'application/json; charset=UTF-8';
  }

  info(cluster: Cluster): Obj {
    const es = this.es;
    const byMajor = (table: Record<number, string>, dflt: string): string => table[this.major] ?? dflt;
    const lucene = es
      ? byMajor({ 7: '8.11.3', 8: '9.11.1' }, '10.2.2')
      : byMajor({ 1: '8.10.1', 2: '9.11.1' }, '10.1.0');
    const wire = es ? byMajor({ 7: '6.8.0', 8: '7.17.0' }, '8.19.0') : '7.10.0';
    const indexCompat = es ? byMajor({ 7: '6.0.0-beta1', 8: '7.0.0' }, '8.0.0') : '7.0.0';
    const version: Obj = es
      ? { number: this.version, build_flavor: 'default' }
      : { distribution: 'opensearch', number: this.version };
    Object.assign(version, {
      build_type: 'docker',
      build_hash: 'e5d0a1f2b3c4d5e6f708192a3b4c5d6e7f809102',
      build_date: '2025-01-01T00:00:00.000000000Z',
      build_snapshot: false,
      lucene_version: lucene,
      minimum_wire_compatibility_version: wire,
      minimum_index_compatibility_version: indexCompat,
    });
    return {
      name: 'es-double-node',
      cluster_name: 'es-double',
      cluster_uuid: cluster.uuid,
      version,
      tagline: es ? 'You Know, for Search' : 'The OpenSearch Project: https://opensearch.org/',
    };
  }
}

/**
 * REST API compatibility (ES 7.13+): `application/vnd.elasticsearch+json; compatible-with=N` in
 * Accept/Content-Type. ES 8 accepts N in {7, 8}, ES 9 in {8, 9}; anything else is a 400
 * `media_type_header_exception`, so the v9 client cannot talk to ES 8 unless told to send 8.
 * Servers without compatibility support (ES < 7.13, OpenSearch) answer a vendor content type
 * on a request body with 406 (the documented 7.10 behaviour); the Accept header alone is ignored.
 * Returns the response content type.
 */
function negotiate(profile: Profile, headers: IncomingHttpHeaders, hasBody: boolean): string {
  const accept = headers.accept ?? '';
  const contentType = headers['content-type'] ?? '';
  const compatOf = (h: string): number | undefined => {
    const m = /application\/vnd\.(?:elasticsearch|opensearch)\+[\w-]+\s*;\s*compatible-with\s*=\s*(\d+)/i.exec(h);
    return m ? Number(m[1]) : undefined;
  };
  const acceptV = compatOf(accept);
  const bodyV = hasBody ? compatOf(contentType) : undefined;
  if (hasBody) {
    const base = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    const plain = base === 'application/json' || base === 'application/x-ndjson';
    const vendor = profile.es
      ? /^application\/vnd\.elasticsearch\+(json|x-ndjson)$/
      : /^application\/vnd\.opensearch\+(json|x-ndjson)$/;
    const compatServer = profile.es ? profile.atLeast(7, 13) : true;
    if (!plain && !(vendor.test(base) && compatServer)) {
      throw new EsError(406, { error: `Content-Type header [${contentType}] is not supported`, status: 406 });
    }
  }
  if (!profile.es || !profile.atLeast(7, 13)) return profile.jsonType;
  const allowed = profile.major >= 8 ? [profile.major, profile.major - 1] : [7];
  const mediaError = (reason: string): never => {
    const top = cause('media_type_header_exception', 'Invalid media-type value on headers [Accept, Content-Type]');
    return fail(400, top, cause('status_exception', reason));
  };
  const either = allowed.length === 2 ? `either version ${allowed[0]} or ${allowed[1]}` : `version ${allowed[0]}`;
  if (acceptV !== undefined && !allowed.includes(acceptV)) {
    mediaError(`Accept version must be ${either}, but found ${acceptV}. Accept=${accept}`);
  }
  if (bodyV !== undefined && !allowed.includes(bodyV)) {
    mediaError(`Content-Type version must be ${either}, but found ${bodyV}. Content-Type=${contentType}`);
  }
  if (hasBody && (acceptV === undefined) !== (bodyV === undefined)) {
    mediaError(
      'A compatible version is required on both Content-Type and Accept headers if either one has requested a ' +
        `compatible version. Accept=${accept}, Content-Type=${contentType}`,
    );
  }
  if (acceptV !== undefined && bodyV !== undefined && acceptV !== bodyV) {
    mediaError(
      `Content-Type and Accept headers have to have the same version. Accept=${accept}, Content-Type=${contentType}`,
    );
  }
  return acceptV === undefined ? profile.jsonType : `application/vnd.elasticsearch+json;compatible-with=${acceptV}`;
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const uuid = (): string => randomBytes(16).toString('base64url').slice(0, 22);
const arrayify = (v: unknown): unknown[] => (Array.isArray(v) ? v.flat(Number.POSITIVE_INFINITY) : [v]);
const globRegex = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
const glob = (pattern: string, s: string): boolean => globRegex(pattern).test(s);
const join = (prefix: string, key: string): string => (prefix ? `${prefix}.${key}` : key);
const words = (s: string): string[] => s.split(' ');

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

/** The partial-document merge of the update API: objects merge recursively, anything else replaces. */
function deepMerge(target: Obj, patch: Obj): Obj {
  const out: Obj = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    const cur = out[k];
    out[k] = isObj(cur) && isObj(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

/** Values at a dotted path of a source document, through arrays and dotted keys. */
function valuesAt(value: unknown, segs: string[]): unknown[] {
  if (segs.length === 0) return arrayify(value);
  if (Array.isArray(value)) return value.flatMap((v) => valuesAt(v, segs));
  if (!isObj(value)) return [];
  const out: unknown[] = [];
  for (let n = 1; n <= segs.length; n++) {
    const key = segs.slice(0, n).join('.');
    if (key in value) out.push(...valuesAt(value[key], segs.slice(n)));
  }
  return out;
}

/** Approximates the standard analyzer: Unicode word tokens, lowercased. */
function tokens(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}_.']+/u)
    .map((t) => t.replace(/^[.']+|[.']+$/g, ''))
    .filter((t) => t.length > 0);
}

/** Parses ES time values such as `1s`, `500ms`, `-1`. */
function timeValueMs(v: string): number | undefined {
  if (v === '-1') return -1;
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms'] ?? 1;
  return Number(m[1]) * unit;
}

// ---------------------------------------------------------------------------------------------
// Dates: formats are approximated as "ISO 8601 (strict_date_optional_time)" and/or epoch values
// ---------------------------------------------------------------------------------------------

const DEFAULT_DATE_FORMAT = 'strict_date_optional_time||epoch_millis';
const ISO_DATE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

function parseIso(s: string): number | undefined {
  const m = ISO_DATE.exec(s);
  if (!m) return undefined;
  const [, y, mo = '01', d = '01', h = '00', mi = '00', se = '00', frac = '', zone = 'Z'] = m;
  const z =
    zone === 'Z'
      ? 'Z'
      : zone.length === 3
        ? `${zone}:00`
        : zone.includes(':')
          ? zone
          : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const t = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${se}.${`${frac}000`.slice(0, 3)}${z}`);
  return Number.isNaN(t) ? undefined : t;
}

function parseDate(v: unknown, format = DEFAULT_DATE_FORMAT): number | undefined {
  const parts = format.split('||');
  const epoch = (n: number): number | undefined =>
    parts.includes('epoch_millis') ? Math.trunc(n) : parts.includes('epoch_second') ? Math.trunc(n * 1000) : undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? epoch(v) : undefined;
  if (typeof v !== 'string') return undefined;
  if (/^-?\d+(\.\d+)?$/.test(v)) {
    const fromEpoch = epoch(Number(v));
    if (fromEpoch !== undefined) return fromEpoch;
  }
  return parts.some((p) => !p.startsWith('epoch_')) ? parseIso(v) : undefined;
}

/** Date math for range bounds: `now-1h`, `now/d`, `2025-01-01||+1M`. */
function parseDateMath(v: unknown, format?: string): number | undefined {
  if (typeof v !== 'string') return parseDate(v, format);
  let base: number | undefined;
  let rest: string;
  if (v.startsWith('now')) {
    base = Date.now();
    rest = v.slice(3);
  } else {
    const i = v.indexOf('||');
    if (i < 0) return parseDate(v, format);
    base = parseDate(v.slice(0, i), format);
    rest = v.slice(i + 2);
  }
  if (base === undefined) return undefined;
  const d = new Date(base);
  const units: Record<string, (n: number) => void> = {
    y: (n) => d.setUTCFullYear(d.getUTCFullYear() + n),
    M: (n) => d.setUTCMonth(d.getUTCMonth() + n),
    w: (n) => d.setUTCDate(d.getUTCDate() + 7 * n),
    d: (n) => d.setUTCDate(d.getUTCDate() + n),
    h: (n) => d.setUTCHours(d.getUTCHours() + n),
    H: (n) => d.setUTCHours(d.getUTCHours() + n),
    m: (n) => d.setUTCMinutes(d.getUTCMinutes() + n),
    s: (n) => d.setUTCSeconds(d.getUTCSeconds() + n),
  };
  const round: Record<string, () => void> = {
    y: () => d.setUTCMonth(0, 1),
    M: () => d.setUTCDate(1),
    w: () => d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7)),
  };
  const truncate: Record<string, [number, number, number, number]> = {
    y: [0, 0, 0, 0],
    M: [0, 0, 0, 0],
    w: [0, 0, 0, 0],
    d: [0, 0, 0, 0],
  };
  const step = /([+-])(\d+)([yMwdhHms])|\/([yMwdhHms])/y;
  while (step.lastIndex < rest.length) {
    const m = step.exec(rest);
    if (!m) return undefined;
    if (m[4]) {
      // Rounding down: `/d` is the start of the day (UTC), `/M` of the month, and so on.
      round[m[4]]?.();
      const t = truncate[m[4]];
      if (t) d.setUTCHours(...t);
      else if (m[4] === 'h' || m[4] === 'H') d.setUTCMinutes(0, 0, 0);
      else if (m[4] === 'm') d.setUTCSeconds(0, 0);
      else d.setUTCMilliseconds(0);
    } else units[m[3] ?? '']?.((m[1] === '-' ? -1 : 1) * Number(m[2]));
  }
  return d.getTime();
}

// ---------------------------------------------------------------------------------------------
// Mappings
// ---------------------------------------------------------------------------------------------

const NUMERIC = new Set(words('long integer short byte double float half_float scaled_float unsigned_long'));
const INTEGER = new Set(['long', 'integer', 'short', 'byte', 'unsigned_long']);
const KEYWORDISH = new Set(['keyword', 'constant_keyword', 'wildcard', 'version', 'ip']);
const TEXTISH = new Set(['text', 'match_only_text', 'search_as_you_type']);
const DATES = new Set(['date', 'date_nanos']);
const DOC_VALUE_TYPES = new Set([...NUMERIC, ...KEYWORDISH, ...DATES, 'boolean']);
/** Types accepted in mappings whose values are stored but never validated or searched by the double. */
const OPAQUE = new Set(words('binary geo_point geo_shape dense_vector sparse_vector knn_vector alias token_count'));
const KNOWN_TYPES = new Set([
  ...NUMERIC,
  ...KEYWORDISH,
  ...TEXTISH,
  ...DATES,
  ...OPAQUE,
  ...words('boolean object nested flattened'),
]);
const ROOT_MAPPING_KEYS = new Set(
  words(
    'properties dynamic enabled _source _routing _meta _field_names dynamic_templates date_detection numeric_detection dynamic_date_formats runtime subobjects',
  ),
);

interface FieldRef {
  name: string;
  type: string;
  mapping: Obj;
  /** Where the values live in `_source` (a multi-field reads its parent's values). */
  sourcePath: string;
}

const isObjectMapping = (m: Obj): boolean => m.type === undefined || m.type === 'object' || m.type === 'nested';
const propsOf = (m: Obj): Obj => (isObj(m.properties) ? m.properties : {});
const ensureProps = (m: Obj): Obj => {
  if (!isObj(m.properties)) m.properties = {};
  return m.properties as Obj;
};

function validateMappings(m: unknown): Obj {
  if (m === undefined || m === null) return {};
  if (!isObj(m)) return reject('mapper_parsing_exception', 'Failed to parse mapping: mappings must be an object');
  const extra = Object.keys(m).filter((k) => !ROOT_MAPPING_KEYS.has(k));
  if (extra.length > 0) {
    // Typed mappings such as {"_doc": {"properties": ...}} land here, as in ES 8.
    const list = extra.map((k) => `[${k} : ${JSON.stringify(m[k])}]`).join(' ');
    const inner = cause('mapper_parsing_exception', `Root mapping definition has unsupported parameters:  ${list}`);
    fail(400, cause('mapper_parsing_exception', `Failed to parse mapping: ${inner.reason}`), inner);
  }
  const walk = (props: unknown): void => {
    if (props === undefined) return;
    if (!isObj(props)) reject('mapper_parsing_exception', 'properties must be a map type');
    for (const [name, def] of Object.entries(props as Obj)) {
      if (!isObj(def)) reject('mapper_parsing_exception', `Expected map for property [fields] on field [${name}]`);
      const type = def.type;
      if (type !== undefined && !KNOWN_TYPES.has(String(type))) {
        reject('mapper_parsing_exception', `No handler for type [${String(type)}] declared on field [${name}]`);
      }
      if (isObjectMapping(def)) walk(def.properties);
      if (def.fields !== undefined) walk(def.fields);
    }
  };
  walk(m.properties);
  return structuredClone(m);
}

/** Merges `update` into `base` as PUT _mapping and template application do; type changes are refused. */
function mergeMappings(base: Obj, update: Obj, prefix = ''): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(update)) {
    if (k !== 'properties' && k !== 'fields') {
      out[k] = structuredClone(v);
      continue;
    }
    const merged: Obj = { ...(isObj(base[k]) ? base[k] : {}) };
    for (const [name, def] of Object.entries(isObj(v) ? v : {})) {
      const cur = merged[name];
      const path = join(prefix, name);
      if (!isObj(cur) || !isObj(def)) {
        merged[name] = structuredClone(def);
        continue;
      }
      if (isObjectMapping(cur) !== isObjectMapping(def)) {
        badRequest(`can't merge a non object mapping [${path}] with an object mapping`);
      }
      if (!isObjectMapping(cur) && cur.type !== def.type) {
        badRequest(`mapper [${path}] cannot be changed from type [${String(cur.type)}] to [${String(def.type)}]`);
      }
      merged[name] = mergeMappings(cur, def, path);
    }
    out[k] = merged;
  }
  return out;
}

function lookupField(root: Obj, path: string): FieldRef | undefined {
  if (path === '_id' || path === '_index') return { name: path, type: path, mapping: {}, sourcePath: path };
  if (root.enabled === false) return undefined;
  const segs = path.split('.');
  let node = root;
  for (let i = 0; i < segs.length; i++) {
    const child = propsOf(node)[segs[i] ?? ''];
    if (!isObj(child)) return undefined;
    const last = i === segs.length - 1;
    if (isObjectMapping(child)) {
      // Disabled objects are not indexed; nested fields need a nested query the double does not have.
      if (child.enabled === false || child.type === 'nested') return undefined;
      if (last) return { name: path, type: 'object', mapping: child, sourcePath: path };
      node = child;
      continue;
    }
    if (last) return { name: path, type: String(child.type), mapping: child, sourcePath: path };
    const parentPath = segs.slice(0, i + 1).join('.');
    const multi = isObj(child.fields) ? child.fields[segs.slice(i + 1).join('.')] : undefined;
    if (isObj(multi)) return { name: path, type: String(multi.type), mapping: multi, sourcePath: parentPath };
    if (child.type === 'flattened') return { name: path, type: 'keyword', mapping: {}, sourcePath: path };
    return undefined;
  }
  return undefined;
}

/** What a value is to dynamic mapping: `string`, `date`, `long`, `double`, `boolean` or `object`. */
function detectType(root: Obj, v: unknown): string {
  if (isObj(v)) return 'object';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'long' : 'double';
  const s = String(v);
  if (root.date_detection !== false && /^\d{4}-\d{2}-\d{2}/.test(s) && parseIso(s) !== undefined) return 'date';
  if (root.numeric_detection === true && /^-?\d+(\.\d+)?$/.test(s)) return s.includes('.') ? 'double' : 'long';
  return 'string';
}

function dynamicMapping(root: Obj, path: string, name: string, v: unknown): Obj {
  const detected = detectType(root, v);
  for (const entry of Array.isArray(root.dynamic_templates) ? root.dynamic_templates : []) {
    const tpl = isObj(entry) ? Object.values(entry)[0] : undefined;
    if (!isObj(tpl) || !isObj(tpl.mapping)) continue;
    const mmt = tpl.match_mapping_type;
    if (mmt !== undefined && mmt !== '*' && mmt !== detected) continue;
    if (typeof tpl.match === 'string' && !glob(tpl.match, name)) continue;
    if (typeof tpl.unmatch === 'string' && glob(tpl.unmatch, name)) continue;
    if (typeof tpl.path_match === 'string' && !glob(tpl.path_match, path)) continue;
    if (typeof tpl.path_unmatch === 'string' && glob(tpl.path_unmatch, path)) continue;
    const dynType = detected === 'string' ? 'text' : detected === 'double' ? 'float' : detected;
    return JSON.parse(
      JSON.stringify(tpl.mapping).replaceAll('{dynamic_type}', dynType).replaceAll('{name}', name),
    ) as Obj;
  }
  switch (detected) {
    case 'object':
      return { properties: {} };
    case 'string':
      return { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } };
    case 'double':
      return { type: 'float' };
    default:
      return { type: detected };
  }
}

/** Why a leaf value cannot be indexed into a field of this mapping, or undefined if it can. */
function leafProblem(m: Obj, v: unknown): Cause | undefined {
  const type = String(m.type);
  if (isObj(v)) return cause('illegal_state_exception', `Can't get text on a START_OBJECT`);
  if (NUMERIC.has(type)) {
    if (typeof v === 'number') return undefined;
    if (typeof v === 'string' && m.coerce !== false && v.trim() !== '' && !Number.isNaN(Number(v))) return undefined;
    return cause('number_format_exception', `For input string: "${String(v)}"`);
  }
  if (DATES.has(type)) {
    const format = typeof m.format === 'string' ? m.format : DEFAULT_DATE_FORMAT;
    return parseDate(v, format) === undefined
      ? cause('illegal_argument_exception', `failed to parse date field [${String(v)}] with format [${format}]`)
      : undefined;
  }
  if (type === 'boolean') {
    return v === true || v === false || v === 'true' || v === 'false' || v === ''
      ? undefined
      : cause(
          'illegal_argument_exception',
          `Failed to parse value [${String(v)}] as only [true] or [false] are allowed.`,
        );
  }
  return undefined;
}

/**
 * Checks a document against an index's mappings (strict objects, value types) and returns the
 * mappings extended by dynamic mapping, or undefined when they did not change.
 */
function mapDocument(profile: Profile, rootMapping: Obj, id: string, source: Obj): Obj | undefined {
  const root = structuredClone(rootMapping);
  if (root.enabled === false) return undefined;
  let changed = false;
  const dynOf = (m: Obj, inherited: string): string => (m.dynamic === undefined ? inherited : String(m.dynamic));
  const strict = (name: string, within: string): never =>
    reject(
      'strict_dynamic_mapping_exception',
      `mapping set to strict, dynamic introduction of [${name}] within [${within || '_doc'}] is not allowed`,
    );

  const field = (parent: Obj, parentPath: string, key: string, value: unknown, dynamic: string): void => {
    const path = join(parentPath, key);
    let m = propsOf(parent)[key];
    if (!isObj(m)) {
      const first = arrayify(value).find((v) => v !== null && v !== undefined);
      if (first === undefined) return;
      if (dynamic === 'strict') strict(key, parentPath);
      if (dynamic !== 'true') return;
      m = dynamicMapping(root, path, key, first);
      ensureProps(parent)[key] = m;
      changed = true;
    }
    const mapping = m as Obj;
    if (isObjectMapping(mapping)) {
      if (mapping.enabled === false) return;
      for (const item of arrayify(value)) {
        if (item === null || item === undefined) continue;
        if (!isObj(item)) {
          reject(
            profile.parseErrorType,
            `object mapping for [${path}] tried to parse field [${key}] as object, but found a concrete value`,
          );
        }
        object(mapping, path, item, dynOf(mapping, dynamic));
      }
      return;
    }
    if (mapping.type === 'flattened' || OPAQUE.has(String(mapping.type))) return;
    for (const item of arrayify(value)) {
      if (item === null || item === undefined) continue;
      const problem = leafProblem(mapping, item);
      if (problem) {
        const preview = isObj(item) ? JSON.stringify(item) : String(item);
        const reason = `failed to parse field [${path}] of type [${String(mapping.type)}] in document with id '${id}'. Preview of field's value: '${preview}'`;
        fail(400, cause(profile.parseErrorType, reason), problem);
      }
    }
  };

  const object = (node: Obj, prefix: string, obj: Obj, dynamic: string): void => {
    for (const [rawKey, value] of Object.entries(obj)) {
      if (rawKey.trim() === '') reject(profile.parseErrorType, 'field name cannot be an empty string');
      // A dotted key is a path through objects, as in ES.
      const segs = rawKey.split('.');
      let parent = node;
      let parentPath = prefix;
      let dyn = dynamic;
      let skip = false;
      for (const seg of segs.slice(0, -1)) {
        let child = propsOf(parent)[seg];
        if (!isObj(child)) {
          if (dyn === 'strict') strict(seg, parentPath);
          if (dyn !== 'true') {
            skip = true;
            break;
          }
          child = { properties: {} };
          ensureProps(parent)[seg] = child;
          changed = true;
        }
        const c = child as Obj;
        parentPath = join(parentPath, seg);
        if (!isObjectMapping(c)) {
          reject(
            profile.parseErrorType,
            `Could not dynamically add mapping for field [${rawKey}]. Existing mapping for [${parentPath}] must be of type object but found [${String(c.type)}].`,
          );
        }
        if (c.enabled === false) {
          skip = true;
          break;
        }
        dyn = dynOf(c, dyn);
        parent = c;
      }
      if (!skip) field(parent, parentPath, segs[segs.length - 1] ?? rawKey, value, dyn);
    }
  };

  object(root, '', source, dynOf(root, 'true'));
  return changed ? root : undefined;
}

/** The values a field indexes for one document, normalized for comparison. */
function indexedValues(ref: FieldRef, doc: StoredDoc, idx: IndexState): Array<string | number | boolean> {
  if (ref.type === '_id') return [doc.id];
  if (ref.type === '_index') return [idx.name];
  const raw = valuesAt(doc.source, ref.sourcePath.split('.')).filter((v) => v !== null && v !== undefined);
  const out: Array<string | number | boolean> = [];
  for (const v of raw) {
    if (ref.type === 'flattened') {
      const leaves = (x: unknown): unknown[] => (isObj(x) ? Object.values(x).flatMap(leaves) : arrayify(x));
      for (const leaf of leaves(v)) if (leaf !== null && !isObj(leaf)) out.push(String(leaf));
      continue;
    }
    if (isObj(v)) continue;
    const value = toFieldValue(ref, v, 'index');
    if (value === undefined) continue;
    if (TEXTISH.has(ref.type)) out.push(...tokens(String(value)));
    else out.push(value);
  }
  return out;
}

/**
 * Converts a value to the comparable form of the field's type: `index` for source values (keyword
 * `ignore_above` applies), `term` for query terms, `range` for range bounds (date math allowed).
 */
function toFieldValue(
  ref: FieldRef,
  v: unknown,
  mode: 'index' | 'term' | 'range',
  format?: string,
): string | number | boolean | undefined {
  const type = ref.type;
  if (NUMERIC.has(type)) {
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    if (Number.isNaN(n)) return undefined;
    return INTEGER.has(type) ? Math.trunc(n) : n;
  }
  if (DATES.has(type)) {
    const f = format ?? (typeof ref.mapping.format === 'string' ? ref.mapping.format : DEFAULT_DATE_FORMAT);
    return mode === 'range' ? parseDateMath(v, f) : parseDate(v, f);
  }
  if (type === 'boolean') {
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false' || v === '') return false;
    return undefined;
  }
  if (isObj(v) || Array.isArray(v)) return undefined;
  const s = String(v);
  const ignoreAbove = ref.mapping.ignore_above;
  if (mode === 'index' && KEYWORDISH.has(type) && typeof ignoreAbove === 'number' && s.length > ignoreAbove)
    return undefined;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Queries: compiled per index into matchers returning a score, or null for "no match"
// ---------------------------------------------------------------------------------------------

type Matcher = (doc: StoredDoc) => number | null;

const parsingError = (reason: string): never => reject('parsing_exception', reason, { line: 1, col: 1 });

function queryShardError(idx: IndexState, reason: string, inner?: Cause): never {
  throw new ShardError(cause('query_shard_exception', reason, { index_uuid: idx.uuid, index: idx.name }), inner);
}

/** Splits `{field: spec, boost?, _name?}` into its one field and spec, as term-level queries are written. */
function singleField(kind: string, body: unknown): [string, unknown] {
  if (!isObj(body)) return parsingError(`[${kind}] query malformed, no start_object after query name`);
  const fields = Object.keys(body).filter((k) => k !== 'boost' && k !== '_name');
  if (fields.length !== 1) {
    return parsingError(
      fields.length === 0
        ? `[${kind}] query doesn't have a field`
        : `[${kind}] query doesn't support multiple fields, found [${fields[0]}] and [${fields[1]}]`,
    );
  }
  const name = fields[0] as string;
  return [name, body[name]];
}

class QueryCompiler {
  constructor(
    readonly profile: Profile,
    readonly idx: IndexState,
  ) {}

  compile(q: unknown): Matcher {
    if (!isObj(q)) return parsingError('query malformed, must start with start_object');
    const keys = Object.keys(q);
    if (keys.length === 0) return parsingError('query malformed, empty clause found');
    if (keys.length > 1)
      return parsingError(`[${keys[0]}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]`);
    const kind = keys[0] as string;
    const body = q[kind];
    const boost = isObj(body) && typeof body.boost === 'number' ? body.boost : 1;
    switch (kind) {
      case 'match_all':
        return () => boost;
      case 'match_none':
        return () => null;
      case 'term':
        return this.term(body, boost);
      case 'terms':
        return this.terms(body, boost);
      case 'range':
        return this.range(body, boost);
      case 'exists':
        return this.exists(body, boost);
      case 'ids':
        return this.ids(body, boost);
      case 'prefix':
        return this.prefix(body, boost);
      case 'match':
        return this.match(body, boost);
      case 'bool':
        return this.bool(body, boost);
      case 'constant_score': {
        if (!isObj(body) || body.filter === undefined)
          return parsingError("[constant_score] requires a 'filter' element");
        const inner = this.compile(body.filter);
        return (doc) => (inner(doc) === null ? null : boost);
      }
      default:
        return unsupported(`query [${kind}]`);
    }
  }

  /** Resolves a queried field; unmapped fields match nothing, as in ES. */
  private field(name: string): FieldRef | undefined {
    const ref = lookupField(this.idx.mappings, name);
    if (!ref) return undefined;
    if (OPAQUE.has(ref.type)) unsupported(`querying field [${name}] of type [${ref.type}]`);
    if (ref.mapping.index === false) {
      const viaDocValues =
        this.profile.docValuesSearch && DOC_VALUE_TYPES.has(ref.type) && ref.mapping.doc_values !== false;
      if (!viaDocValues) {
        const why = this.profile.docValuesSearch ? 'is not indexed nor has doc values' : 'is not indexed';
        const reason = `Cannot search on field [${name}] since it ${why}.`;
        queryShardError(this.idx, `failed to create query: ${reason}`, cause('illegal_argument_exception', reason));
      }
    }
    return ref;
  }

  private queryValue(ref: FieldRef, v: unknown, mode: 'term' | 'range', format?: string): string | number | boolean {
    const value = toFieldValue(ref, v, mode, format);
    if (value === undefined) {
      const inner = DATES.has(ref.type)
        ? cause(
            'parse_exception',
            `failed to parse date field [${String(v)}] with format [${format ?? String(ref.mapping.format ?? DEFAULT_DATE_FORMAT)}]`,
          )
        : ref.type === 'boolean'
          ? cause('illegal_argument_exception', `Can't parse boolean value [${String(v)}], expected [true] or [false]`)
          : cause('number_format_exception', `For input string: "${String(v)}"`);
      return queryShardError(this.idx, `failed to create query: ${inner.reason}`, inner);
    }
    return value;
  }

  private term(body: unknown, boost: number): Matcher {
    const [name, spec] = singleField('term', body);
    const raw = isObj(spec) ? spec.value : spec;
    const b = isObj(spec) && typeof spec.boost === 'number' ? spec.boost : boost;
    const ci = isObj(spec) && spec.case_insensitive === true;
    if (raw === undefined || isObj(raw) || Array.isArray(raw))
      return parsingError(`[term] query does not support array or object value for [${name}]`);
    const ref = this.field(name);
    if (!ref) return () => null;
    if (ref.type === 'object') return () => null;
    const want = this.queryValue(ref, raw, 'term');
    const eq =
      ci && typeof want === 'string'
        ? (v: unknown) => String(v).toLowerCase() === want.toLowerCase()
        : (v: unknown) => v === want;
    return (doc) => (indexedValues(ref, doc, this.idx).some(eq) ? b : null);
  }

  private terms(body: unknown, boost: number): Matcher {
    const [name, list] = singleField('terms', body);
    if (!Array.isArray(list)) return unsupported('[terms] lookup (a non-array value)');
    const ref = this.field(name);
    if (!ref || ref.type === 'object') return () => null;
    const wanted = new Set(list.map((v) => this.queryValue(ref, v, 'term')));
    return (doc) => (indexedValues(ref, doc, this.idx).some((v) => wanted.has(v)) ? boost : null);
  }

  private range(body: unknown, boost: number): Matcher {
    const [name, spec] = singleField('range', body);
    if (!isObj(spec)) return parsingError(`[range] query malformed, no start_object after query name`);
    const known = new Set(
      words('gt gte lt lte from to include_lower include_upper format time_zone boost relation _name'),
    );
    for (const k of Object.keys(spec)) if (!known.has(k)) parsingError(`[range] query does not support [${k}]`);
    if (spec.time_zone !== undefined) unsupported('[range] time_zone');
    const ref = this.field(name);
    if (!ref || ref.type === 'object') return () => null;
    const format = typeof spec.format === 'string' ? spec.format : undefined;
    const bound = (v: unknown) =>
      v === undefined || v === null ? undefined : this.queryValue(ref, v, 'range', format);
    const lower = bound(spec.gt ?? spec.gte ?? spec.from);
    const upper = bound(spec.lt ?? spec.lte ?? spec.to);
    const lowerInc = spec.gt === undefined && (spec.gte !== undefined || spec.include_lower !== false);
    const upperInc = spec.lt === undefined && (spec.lte !== undefined || spec.include_upper !== false);
    const b = typeof spec.boost === 'number' ? spec.boost : boost;
    const ok = (v: string | number | boolean): boolean => {
      if (lower !== undefined && (lowerInc ? v < lower : v <= lower)) return false;
      if (upper !== undefined && (upperInc ? v > upper : v >= upper)) return false;
      return true;
    };
    return (doc) => (indexedValues(ref, doc, this.idx).some(ok) ? b : null);
  }

  private exists(body: unknown, boost: number): Matcher {
    if (!isObj(body) || typeof body.field !== 'string') return parsingError('[exists] must be provided with a [field]');
    const name = body.field;
    const ref = this.field(name);
    if (!ref) return () => null;
    if (ref.type === 'object') {
      return (doc) =>
        valuesAt(doc.source, name.split('.')).some((v) => isObj(v) && Object.keys(v).length > 0) ? boost : null;
    }
    if (TEXTISH.has(ref.type)) {
      return (doc) =>
        valuesAt(doc.source, ref.sourcePath.split('.')).some((v) => v !== null && !isObj(v)) ? boost : null;
    }
    return (doc) => (indexedValues(ref, doc, this.idx).length > 0 ? boost : null);
  }

  private ids(body: unknown, boost: number): Matcher {
    if (!isObj(body) || !Array.isArray(body.values)) return parsingError('[ids] query malformed, no [values]');
    const ids = new Set(body.values.map(String));
    return (doc) => (ids.has(doc.id) ? boost : null);
  }

  private prefix(body: unknown, boost: number): Matcher {
    const [name, spec] = singleField('prefix', body);
    const raw = isObj(spec) ? spec.value : spec;
    const ci = isObj(spec) && spec.case_insensitive === true;
    const ref = this.field(name);
    if (!ref || ref.type === 'object') return () => null;
    if (!KEYWORDISH.has(ref.type) && !TEXTISH.has(ref.type) && ref.type !== '_id')
      unsupported(`[prefix] on a [${ref.type}] field`);
    const want = ci ? String(raw).toLowerCase() : String(raw);
    return (doc) =>
      indexedValues(ref, doc, this.idx).some((v) => (ci ? String(v).toLowerCase() : String(v)).startsWith(want))
        ? boost
        : null;
  }

  private match(body: unknown, boost: number): Matcher {
    const [name, spec] = singleField('match', body);
    const raw = isObj(spec) ? spec.query : spec;
    const and = isObj(spec) && String(spec.operator ?? 'or').toLowerCase() === 'and';
    const ref = this.field(name);
    if (!ref || ref.type === 'object') return () => null;
    if (!TEXTISH.has(ref.type)) {
      const want = this.queryValue(ref, raw, 'term');
      return (doc) => (indexedValues(ref, doc, this.idx).includes(want) ? boost : null);
    }
    const wanted = tokens(String(raw));
    return (doc) => {
      const have = new Set(indexedValues(ref, doc, this.idx));
      const hits = wanted.filter((t) => have.has(t)).length;
      return hits > 0 && (!and || hits === wanted.length) ? boost * hits : null;
    };
  }

  private bool(body: unknown, boost: number): Matcher {
    if (!isObj(body)) return parsingError('[bool] query malformed, no start_object after query name');
    const clauses = (k: string): Matcher[] =>
      body[k] === undefined ? [] : arrayify(body[k]).map((q) => this.compile(q));
    for (const k of Object.keys(body)) {
      if (!['must', 'filter', 'should', 'must_not', 'minimum_should_match', 'boost', '_name'].includes(k)) {
        parsingError(`[bool] query does not support [${k}]`);
      }
    }
    const must = clauses('must');
    const filter = clauses('filter');
    const should = clauses('should');
    const mustNot = clauses('must_not');
    const msmRaw = body.minimum_should_match;
    const msm =
      msmRaw === undefined
        ? must.length + filter.length === 0 && should.length > 0
          ? 1
          : 0
        : Number.parseInt(String(msmRaw), 10);
    return (doc) => {
      let score = 0;
      for (const m of must) {
        const s = m(doc);
        if (s === null) return null;
        score += s;
      }
      for (const m of filter) if (m(doc) === null) return null;
      for (const m of mustNot) if (m(doc) !== null) return null;
      let matched = 0;
      for (const m of should) {
        const s = m(doc);
        if (s !== null) {
          matched++;
          score += s;
        }
      }
      if (matched < msm) return null;
      return score * boost;
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Source filtering and filter_path
// ---------------------------------------------------------------------------------------------

interface SourceFilter {
  fetch: boolean;
  includes: string[];
  excludes: string[];
}

const list = (v: unknown): string[] =>
  v === undefined || v === null
    ? []
    : (Array.isArray(v) ? v : String(v).split(',')).map((s) => String(s).trim()).filter(Boolean);

function sourceFilter(spec: unknown, includes?: string, excludes?: string): SourceFilter {
  const f: SourceFilter = { fetch: true, includes: [], excludes: [] };
  if (spec === false || spec === 'false') f.fetch = false;
  else if (isObj(spec)) {
    f.includes = list(spec.includes ?? spec.include);
    f.excludes = list(spec.excludes ?? spec.exclude);
  } else if (spec !== undefined && spec !== true && spec !== 'true' && spec !== '') f.includes = list(spec);
  if (includes !== undefined) {
    f.fetch = true;
    f.includes = list(includes);
  }
  if (excludes !== undefined) {
    f.fetch = true;
    f.excludes = list(excludes);
  }
  return f;
}

function filterSource(src: Obj, inc: string[], exc: string[], prefix = ''): Obj {
  if (inc.length === 0 && exc.length === 0) return src;
  const out: Obj = {};
  const mayMatchBelow = (p: string, path: string) => {
    const lit = p.split('*')[0] ?? '';
    return lit.startsWith(`${path}.`) || (p.includes('*') && `${path}.`.startsWith(lit));
  };
  for (const [k, v] of Object.entries(src)) {
    const path = join(prefix, k);
    if (exc.some((p) => glob(p, path))) continue;
    const included = inc.length === 0 || inc.some((p) => glob(p, path));
    if (!included && !inc.some((p) => mayMatchBelow(p, path))) continue;
    const subInc = included ? [] : inc;
    if (isObj(v)) {
      const sub = filterSource(v, subInc, exc, path);
      if (included || Object.keys(sub).length > 0) out[k] = sub;
    } else if (Array.isArray(v)) {
      const items = v.flatMap((item) =>
        isObj(item) ? [filterSource(item, subInc, exc, path)] : included ? [item] : [],
      );
      if (included || items.length > 0) out[k] = items;
    } else if (included) out[k] = v;
  }
  return out;
}

/** The generic `filter_path` response filter (inclusive patterns, `*` and `**` wildcards). */
function filterPath(body: unknown, spec: string): unknown {
  const patterns = spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (patterns.some((p) => p.startsWith('-'))) unsupported('filter_path exclusions');
  const walk = (value: unknown, pats: string[][]): unknown => {
    if (Array.isArray(value)) {
      const items = value.map((v) => walk(v, pats)).filter((v) => v !== undefined);
      return items.length > 0 ? items : undefined;
    }
    if (!isObj(value)) return undefined;
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) {
      const next: string[][] = [];
      let whole = false;
      for (const p of pats) {
        const [head, ...rest] = p;
        if (head === '**') {
          next.push(p);
          if (rest.length > 0 && rest[0] !== undefined && glob(rest[0], k)) {
            if (rest.length === 1) whole = true;
            else next.push(rest.slice(1));
          }
        } else if (head !== undefined && glob(head, k)) {
          if (rest.length === 0) whole = true;
          else next.push(rest);
        }
      }
      if (whole) out[k] = v;
      else if (next.length > 0) {
        const sub = walk(v, next);
        if (sub !== undefined) out[k] = sub;
      }
    }
    return Object.keys(out).length > 0 ? out : undefined;
  };
  return (
    walk(
      body,
      patterns.map((p) => p.split('.')),
    ) ?? {}
  );
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
  createdAt: number;
  settings: Record<string, string>;
  mappings: Obj;
  /** The latest state of every document: what realtime GET and writes see. */
  live: Map<string, StoredDoc>;
  /** The documents as of the last refresh: what search sees. */
  searchable: Map<string, StoredDoc>;
  /** Versions of deleted documents (ES keeps them for `index.gc_deletes`, 60 s; here, forever). */
  tombstones: Map<string, number>;
  lastSeqNo: number;
  dirty: boolean;
  timer?: NodeJS.Timeout;
  waiters: Array<() => void>;
}

interface CasOptions {
  ifSeqNo?: number;
  ifPrimaryTerm?: number;
}

const PRIMARY_TERM = 1;

/** Flattens `{index: {refresh_interval: '1s'}}`, `{'index.refresh_interval': '1s'}`, `{refresh_interval: '1s'}` alike. */
function flattenSettings(s: unknown, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(s)) return out;
  for (const [k, v] of Object.entries(s)) {
    const key = join(prefix, k);
    if (isObj(v)) Object.assign(out, flattenSettings(v, key));
    else out[key.startsWith('index.') ? key : `index.${key}`] = Array.isArray(v) ? v.join(',') : String(v);
  }
  return out;
}

function nestSettings(flat: Record<string, string>): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(flat)) {
    const segs = k.split('.');
    let node = out;
    for (const seg of segs.slice(0, -1)) {
      if (!isObj(node[seg])) node[seg] = {};
      node = node[seg] as Obj;
    }
    node[segs[segs.length - 1] ?? k] = v;
  }
  return out;
}

function validateIndexName(name: string): void {
  const bad = (why: string): never =>
    reject('invalid_index_name_exception', `Invalid index name [${name}], ${why}`, {
      index_uuid: '_na_',
      index: name,
    });
  if (name !== name.toLowerCase()) bad('must be lowercase');
  if (/^[-_+]/.test(name)) bad("must not start with '_', '-', or '+'");
  if (/[\\/*?"<>| ,#:]/.test(name))
    bad('must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?, #, :]');
  if (name === '.' || name === '..') bad("must not be '.' or '..'");
  if (Buffer.byteLength(name) > 255) bad(`index name is too long, (${Buffer.byteLength(name)} > 255)`);
}

class Cluster {
  readonly indices = new Map<string, IndexState>();
  readonly templates = new Map<string, Obj>();
  readonly uuid = uuid();
  readonly nodeId = uuid();

  constructor(
    readonly profile: Profile,
    readonly refreshIntervalMs: number,
  ) {}

  // --- indices -------------------------------------------------------------------------------

  require(name: string): IndexState {
    const idx = this.indices.get(name);
    if (!idx) fail(404, indexNotFound(name));
    return idx as IndexState;
  }

  /** Resolves `a,b`, `sess*`, `_all` for reads; a missing concrete name is a 404 unless ignored. */
  resolve(
    expr: string | undefined,
    opts: { ignoreUnavailable?: boolean; allowNoIndices?: boolean } = {},
  ): IndexState[] {
    const out = new Map<string, IndexState>();
    let wildcardMatched = true;
    for (const part of list(expr ?? '_all')) {
      if (part === '_all' || part.includes('*')) {
        const re = globRegex(part === '_all' ? '*' : part);
        const hits = [...this.indices.values()].filter((i) => re.test(i.name) && !i.name.startsWith('.'));
        if (hits.length === 0) wildcardMatched = false;
        for (const i of hits) out.set(i.name, i);
      } else if (part.startsWith('-')) {
        out.delete(part.slice(1));
      } else {
        const idx = this.indices.get(part);
        if (idx) out.set(part, idx);
        else if (!opts.ignoreUnavailable) fail(404, indexNotFound(part));
      }
    }
    if (opts.allowNoIndices === false && (!wildcardMatched || out.size === 0)) fail(404, indexNotFound(expr ?? '_all'));
    return [...out.values()];
  }

  /** The composable template that applies to a new index: the highest priority match. */
  private templateFor(name: string): Obj | undefined {
    let best: Obj | undefined;
    for (const t of this.templates.values()) {
      if (!list(t.index_patterns).some((p) => glob(p, name))) continue;
      if (!best || Number(t.priority ?? 0) > Number(best.priority ?? 0)) best = t;
    }
    return best;
  }

  create(name: string, body: Obj = {}): IndexState {
    validateIndexName(name);
    const existing = this.indices.get(name);
    if (existing) {
      reject('resource_already_exists_exception', `index [${name}/${existing.uuid}] already exists`, {
        index_uuid: existing.uuid,
        index: name,
      });
    }
    for (const k of Object.keys(body))
      if (!['settings', 'mappings', 'aliases'].includes(k)) parsingError(`unknown key [${k}] for create index`);
    const tpl = this.templateFor(name);
    const tplBody = isObj(tpl?.template) ? tpl.template : {};
    for (const aliases of [tplBody.aliases, body.aliases]) {
      if (isObj(aliases) && Object.keys(aliases).length > 0) unsupported('index aliases');
    }
    const mappings = mergeMappings(validateMappings(tplBody.mappings), validateMappings(body.mappings));
    const settings: Record<string, string> = {
      'index.number_of_shards': '1',
      'index.number_of_replicas': '1',
      ...flattenSettings(tplBody.settings),
      ...flattenSettings(body.settings),
    };
    if (
      settings['index.refresh_interval'] !== undefined &&
      timeValueMs(settings['index.refresh_interval']) === undefined
    ) {
      badRequest(
        `failed to parse setting [index.refresh_interval] with value [${settings['index.refresh_interval']}] as a time value`,
      );
    }
    const idx: IndexState = {
      name,
      uuid: uuid(),
      createdAt: Date.now(),
      settings,
      mappings,
      live: new Map(),
      searchable: new Map(),
      tombstones: new Map(),
      lastSeqNo: -1,
      dirty: false,
      waiters: [],
    };
    this.indices.set(name, idx);
    this.schedule(idx);
    return idx;
  }

  /** Index auto-creation on the first write, as with `action.auto_create_index: true`. */
  autoCreate(name: string): IndexState {
    return this.indices.get(name) ?? this.create(name);
  }

  deleteIndex(idx: IndexState): void {
    clearInterval(idx.timer);
    for (const w of idx.waiters.splice(0)) w();
    this.indices.delete(idx.name);
  }

  shards(idx: IndexState): { total: number; successful: number; failed: number } {
    return { total: 1 + Number(idx.settings['index.number_of_replicas'] ?? 1), successful: 1, failed: 0 };
  }

  // --- refresh -------------------------------------------------------------------------------

  private intervalOf(idx: IndexState): number {
    const s = idx.settings['index.refresh_interval'];
    return (s === undefined ? undefined : timeValueMs(s)) ?? this.refreshIntervalMs;
  }

  schedule(idx: IndexState): void {
    clearInterval(idx.timer);
    idx.timer = undefined;
    const ms = this.intervalOf(idx);
    if (ms > 0) idx.timer = setInterval(() => this.refresh(idx), ms).unref();
  }

  refresh(idx: IndexState): void {
    if (idx.dirty) idx.searchable = new Map(idx.live);
    idx.dirty = false;
    for (const w of idx.waiters.splice(0)) w();
  }

  refreshAll(): void {
    for (const idx of this.indices.values()) this.refresh(idx);
  }

  /**
   * `refresh=wait_for`: resolves after the next refresh makes the write visible. With periodic
   * refresh disabled, ES would block until someone refreshes; the double forces a refresh instead
   * (reported as `forced_refresh: true`, as ES does when it has to force one).
   */
  async waitForRefresh(idx: IndexState): Promise<boolean> {
    if (!idx.dirty) return false;
    if (this.intervalOf(idx) <= 0) {
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

  // --- documents -----------------------------------------------------------------------------

  private conflict(idx: IndexState, id: string, detail: string): never {
    return fail(409, this.conflictCause(idx, id, detail));
  }

  conflictCause(idx: IndexState, id: string, detail: string): Cause {
    return cause('version_conflict_engine_exception', `[${id}]: version conflict, ${detail}`, {
      index_uuid: idx.uuid,
      shard: '0',
      index: idx.name,
    });
  }

  private checkCas(idx: IndexState, id: string, cur: StoredDoc | undefined, cas: CasOptions): void {
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

  private validateId(id: string): void {
    if (id.length === 0)
      reject('action_request_validation_exception', 'Validation Failed: 1: if _id is specified it must not be empty;');
    const bytes = Buffer.byteLength(id);
    if (bytes > 512) {
      reject(
        'action_request_validation_exception',
        `Validation Failed: 1: id [${id}] is too long, must be no longer than 512 bytes but was: ${bytes};`,
      );
    }
  }

  /** Writes a new document state; `null` deletes. Updated documents move to the end, as Lucene appends. */
  private commit(idx: IndexState, id: string, source: Obj | null): { version: number; seqNo: number } {
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
    return { version, seqNo };
  }

  private writeResult(idx: IndexState, id: string, result: string, w: { version: number; seqNo: number }): Obj {
    return {
      _index: idx.name,
      ...this.profile.typeField,
      _id: id,
      _version: w.version,
      result,
      _shards: this.shards(idx),
      _seq_no: w.seqNo,
      _primary_term: PRIMARY_TERM,
    };
  }

  indexDoc(idx: IndexState, id: string, source: Obj, opts: CasOptions & { create?: boolean }): Reply {
    this.validateId(id);
    if (opts.create && opts.ifSeqNo !== undefined) {
      reject(
        'action_request_validation_exception',
        'Validation Failed: 1: create operations do not support compare and set. use index instead;',
      );
    }
    const mappings = mapDocument(this.profile, idx.mappings, id, source);
    if (mappings) idx.mappings = mappings;
    const cur = idx.live.get(id);
    if (opts.create && cur) this.conflict(idx, id, `document already exists (current version [${cur.version}])`);
    this.checkCas(idx, id, cur, opts);
    const w = this.commit(idx, id, structuredClone(source));
    return { status: cur ? 200 : 201, body: this.writeResult(idx, id, cur ? 'updated' : 'created', w) };
  }

  /** Deleting a missing document still takes a sequence number and leaves a tombstone, as in ES. */
  deleteDoc(idx: IndexState, id: string, cas: CasOptions): Reply {
    this.validateId(id);
    const cur = idx.live.get(id);
    this.checkCas(idx, id, cur, cas);
    const w = this.commit(idx, id, null);
    return { status: cur ? 200 : 404, body: this.writeResult(idx, id, cur ? 'deleted' : 'not_found', w) };
  }

  updateDoc(idx: IndexState, id: string, body: Obj, opts: CasOptions & { source?: SourceFilter }): Reply {
    this.validateId(id);
    const known = ['doc', 'upsert', 'doc_as_upsert', 'detect_noop', 'scripted_upsert', 'script', '_source'];
    for (const k of Object.keys(body)) {
      if (!known.includes(k)) reject('x_content_parse_exception', `[1:2] [UpdateRequest] unknown field [${k}]`);
    }
    // Painless scripts are out of scope: the session store does partial updates with `doc` only.
    if (body.script !== undefined) unsupported('scripted update ([script])');
    if (!isObj(body.doc))
      reject('action_request_validation_exception', 'Validation Failed: 1: script or doc is missing;');
    const doc = body.doc as Obj;
    const upsert = body.doc_as_upsert === true ? doc : isObj(body.upsert) ? body.upsert : undefined;
    if (upsert && opts.ifSeqNo !== undefined) {
      reject(
        'action_request_validation_exception',
        "Validation Failed: 1: upsert requests don't support `if_seq_no` and `if_primary_term`;",
      );
    }
    const filter = body._source === undefined ? opts.source : sourceFilter(body._source);
    const withGet = (reply: Reply, source: Obj, w: { seqNo: number }): Reply => {
      if (!filter?.fetch || (body._source === undefined && opts.source === undefined)) return reply;
      const get = {
        _seq_no: w.seqNo,
        _primary_term: PRIMARY_TERM,
        found: true,
        _source: filterSource(source, filter.includes, filter.excludes),
      };
      return { status: reply.status, body: { ...(reply.body as Obj), get } };
    };
    const cur = idx.live.get(id);
    if (!cur) {
      if (!upsert) {
        const reason =
          this.profile.es && this.profile.major >= 8 ? `[${id}]: document missing` : `[_doc][${id}]: document missing`;
        fail(404, cause('document_missing_exception', reason, { index_uuid: idx.uuid, shard: '0', index: idx.name }));
      }
      const created = this.indexDoc(idx, id, upsert as Obj, { create: true });
      return withGet(created, upsert as Obj, { seqNo: (created.body as Obj)._seq_no as number });
    }
    this.checkCas(idx, id, cur, opts);
    const merged = deepMerge(cur.source, doc);
    if (body.detect_noop !== false && deepEqual(merged, cur.source)) {
      const noop = this.writeResult(idx, id, 'noop', cur);
      noop._shards = { total: 0, successful: 0, failed: 0 };
      return withGet({ status: 200, body: noop }, cur.source, cur);
    }
    const mappings = mapDocument(this.profile, idx.mappings, id, merged);
    if (mappings) idx.mappings = mappings;
    const w = this.commit(idx, id, merged);
    return withGet({ status: 200, body: this.writeResult(idx, id, 'updated', w) }, merged, w);
  }

  getDoc(idx: IndexState, id: string, opts: { realtime: boolean; source: SourceFilter }): Reply {
    const doc = (opts.realtime ? idx.live : idx.searchable).get(id);
    const head = { _index: idx.name, ...this.profile.typeField, _id: id };
    if (!doc) return { status: 404, body: { ...head, found: false } };
    const body: Obj = { ...head, _version: doc.version, _seq_no: doc.seqNo, _primary_term: PRIMARY_TERM, found: true };
    if (opts.source.fetch) body._source = filterSource(doc.source, opts.source.includes, opts.source.excludes);
    return { status: 200, body };
  }
}

// ---------------------------------------------------------------------------------------------
// Search, count and delete-by-query (against the refreshed snapshot)
// ---------------------------------------------------------------------------------------------

interface SearchRequest {
  query: unknown;
  size: number;
  from: number;
  sort: unknown;
  source: SourceFilter;
  trackTotalHits: boolean | number;
  searchAfter?: unknown[];
  seqNoPrimaryTerm: boolean;
  version: boolean;
  trackScores: boolean;
  totalAsInt: boolean;
}

interface Hit {
  idx: IndexState;
  doc: StoredDoc;
  score: number;
  ord: number;
  sortValues: unknown[];
}

interface SortKey {
  kind: 'score' | 'doc' | 'field';
  field: string;
  desc: boolean;
  missingFirst: boolean;
  /** Per index: how to read the sort value of a document (undefined = missing). */
  read: (idx: IndexState, doc: StoredDoc) => unknown;
}

/** Matches a query against each index's refreshed snapshot; shard errors become ES search errors. */
function matchSnapshot(
  cluster: Cluster,
  indices: IndexState[],
  query: unknown,
): Array<{ idx: IndexState; doc: StoredDoc; score: number }> {
  const out: Array<{ idx: IndexState; doc: StoredDoc; score: number }> = [];
  for (const idx of indices) {
    try {
      const matcher = new QueryCompiler(cluster.profile, idx).compile(query ?? { match_all: {} });
      for (const doc of idx.searchable.values()) {
        const score = matcher(doc);
        if (score !== null) out.push({ idx, doc, score });
      }
    } catch (err) {
      if (err instanceof ShardError) throw searchPhaseError(idx, err, cluster.nodeId);
      throw err;
    }
  }
  return out;
}

function parseSort(cluster: Cluster, indices: IndexState[], sort: unknown): SortKey[] {
  const specs = sort === undefined ? [] : Array.isArray(sort) ? sort : [sort];
  return specs.map((spec): SortKey => {
    let field: string;
    let opts: Obj = {};
    if (typeof spec === 'string') {
      const [f, order] = spec.split(':');
      field = f ?? spec;
      if (order) opts = { order };
    } else if (isObj(spec) && Object.keys(spec).length === 1) {
      field = Object.keys(spec)[0] as string;
      const v = spec[field];
      opts = isObj(v) ? v : { order: v };
    } else return parsingError('[sort] malformed sort specification');
    for (const k of Object.keys(opts))
      if (!['order', 'missing', 'unmapped_type', 'mode', 'format'].includes(k)) unsupported(`sort option [${k}]`);
    const order = String(opts.order ?? (field === '_score' ? 'desc' : 'asc')).toLowerCase();
    if (order !== 'asc' && order !== 'desc') badRequest(`Unknown SortOrder [${order}]`);
    const desc = order === 'desc';
    const missingFirst = opts.missing === '_first';
    if (opts.missing !== undefined && opts.missing !== '_first' && opts.missing !== '_last')
      unsupported('sort [missing] values other than _first/_last');
    if (field === '_score') return { kind: 'score', field, desc, missingFirst, read: () => undefined };
    if (field === '_doc') return { kind: 'doc', field, desc, missingFirst, read: () => undefined };
    if (field === '_id' && !cluster.profile.idFielddata) {
      badRequest(
        'Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic cluster setting: indices.id_field_data.enabled',
      );
    }
    const refs = new Map<IndexState, FieldRef | undefined>();
    for (const idx of indices) {
      const ref = lookupField(idx.mappings, field);
      const fail400 = (reason: string, type = 'illegal_argument_exception') =>
        new ShardError(
          cause(type, reason, type === 'query_shard_exception' ? { index_uuid: idx.uuid, index: idx.name } : {}),
        );
      if (!ref && opts.unmapped_type === undefined) {
        throw searchPhaseError(
          idx,
          fail400(`No mapping found for [${field}] in order to sort on`, 'query_shard_exception'),
          cluster.nodeId,
        );
      }
      if (ref && (TEXTISH.has(ref.type) || ref.type === 'object') && ref.mapping.fielddata !== true) {
        const reason =
          ref.type === 'object'
            ? `Cannot sort on field [${field}] since it is an object`
            : `Fielddata is disabled on [${field}] in [${idx.name}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [${field}] in order to load field data by uninverting the inverted index. Note that this can use significant memory.`;
        throw searchPhaseError(idx, fail400(reason), cluster.nodeId);
      }
      refs.set(idx, ref);
    }
    const mode = String(opts.mode ?? (desc ? 'max' : 'min'));
    const read = (idx: IndexState, doc: StoredDoc): unknown => {
      const ref = refs.get(idx);
      if (!ref) return undefined;
      const values = indexedValues(ref, doc, idx).map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
      if (values.length === 0) return undefined;
      return values.reduce((a, b) => ((mode === 'max' ? b > a : b < a) ? b : a));
    };
    return { kind: 'field', field, desc, missingFirst, read };
  });
}

function compareValues(a: unknown, b: unknown, key: SortKey): number {
  if (a === undefined || a === null || b === undefined || b === null) {
    if (a === b || (a == null && b == null)) return 0;
    const missingA = a === undefined || a === null;
    return missingA === key.missingFirst ? -1 : 1;
  }
  const c = (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  return key.desc ? -c : c;
}

function runSearch(cluster: Cluster, indices: IndexState[], req: SearchRequest): Obj {
  const started = Date.now();
  const window = req.from + req.size;
  if (window > 10_000) {
    const idx = indices[0];
    const reason = `Result window is too large, from + size must be less than or equal to: [10000] but was [${window}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.`;
    if (idx) throw searchPhaseError(idx, new ShardError(cause('illegal_argument_exception', reason)), cluster.nodeId);
  }
  const keys = parseSort(cluster, indices, req.sort);
  const byScore = keys.length === 0 || keys.some((k) => k.kind === 'score');
  let ord = 0;
  let hits: Hit[] = matchSnapshot(cluster, indices, req.query).map(({ idx, doc, score }) => {
    const o = ord++;
    const sortValues = keys.map((k) => (k.kind === 'score' ? score : k.kind === 'doc' ? o : k.read(idx, doc)));
    return { idx, doc, score, ord: o, sortValues };
  });
  const compare = (a: Hit, b: Hit): number => {
    if (keys.length === 0) return b.score - a.score || a.ord - b.ord;
    for (let i = 0; i < keys.length; i++) {
      const c = compareValues(a.sortValues[i], b.sortValues[i], keys[i] as SortKey);
      if (c !== 0) return c;
    }
    return a.ord - b.ord;
  };
  hits.sort(compare);
  const total = hits.length;
  if (req.searchAfter !== undefined) {
    if (keys.length === 0) badRequest('Sort must contain at least one field.');
    if (req.searchAfter.length !== keys.length) {
      badRequest(`search_after has ${req.searchAfter.length} value(s) but sort has ${keys.length}.`);
    }
    const after = req.searchAfter;
    hits = hits.filter((h) => {
      for (let i = 0; i < keys.length; i++) {
        const c = compareValues(h.sortValues[i], after[i], keys[i] as SortKey);
        if (c !== 0) return c > 0;
      }
      return false;
    });
  }
  const page = hits.slice(req.searchAfter === undefined ? req.from : 0).slice(0, req.size);
  const scored = byScore || req.trackScores;
  const hitsBody: Obj = {};
  if (req.trackTotalHits !== false) {
    const cap = req.trackTotalHits === true ? Number.POSITIVE_INFINITY : req.trackTotalHits;
    hitsBody.total = req.totalAsInt ? total : { value: Math.min(total, cap), relation: total > cap ? 'gte' : 'eq' };
  }
  Object.assign(hitsBody, {
    max_score: scored && req.size > 0 && hits.length > 0 ? Math.max(...hits.map((h) => h.score)) : null,
    hits: page.map((h) => {
      const hit: Obj = { _index: h.idx.name, ...cluster.profile.typeField, _id: h.doc.id };
      if (req.version) hit._version = h.doc.version;
      if (req.seqNoPrimaryTerm) Object.assign(hit, { _seq_no: h.doc.seqNo, _primary_term: PRIMARY_TERM });
      hit._score = scored ? h.score : null;
      if (req.source.fetch) hit._source = filterSource(h.doc.source, req.source.includes, req.source.excludes);
      if (keys.length > 0) hit.sort = h.sortValues.map((v) => v ?? null);
      return hit;
    }),
  });
  return {
    took: Date.now() - started,
    timed_out: false,
    _shards: { total: indices.length, successful: indices.length, skipped: 0, failed: 0 },
    hits: hitsBody,
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP: one routing table, small handlers
// ---------------------------------------------------------------------------------------------

interface Ctx {
  cluster: Cluster;
  method: string;
  path: string;
  segs: Record<string, string>;
  query: Map<string, string>;
  body: Buffer;
}

type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

interface Route {
  methods: string[];
  pattern: string[];
  params: Set<string>;
  handler: Handler;
}

/** Accepted everywhere, as in ES. `filter_path` is applied; the others change nothing here. */
const GLOBAL_PARAMS = 'pretty human error_trace filter_path';
/** Real ES parameters the double does not implement: refused with a clear error rather than ignored. */
const UNIMPLEMENTED_PARAMS = new Set(
  words(
    'version version_type pipeline q df analyzer default_operator lenient scroll search_type stored_fields ' +
      'docvalue_fields explain stats terminate_after suggest_field typed_keys request_cache include_type_name ' +
      'require_data_stream list_executed_pipelines include_source_on_error allow_partial_search_results',
  ),
);
const WRITE = 'refresh routing timeout wait_for_active_shards if_seq_no if_primary_term require_alias';
const SOURCE = '_source _source_includes _source_excludes';
const GET = `realtime refresh routing preference ${SOURCE}`;
const READ = 'ignore_unavailable allow_no_indices expand_wildcards preference routing';
const ADMIN = 'timeout master_timeout cluster_manager_timeout wait_for_active_shards';
const SEARCH =
  `${READ} ${SOURCE} size from sort track_total_hits track_scores seq_no_primary_term rest_total_hits_as_int ` +
  'timeout ccs_minimize_roundtrips batched_reduce_size max_concurrent_shard_requests pre_filter_shard_size ignore_throttled';
const DBQ =
  `${READ} conflicts refresh wait_for_completion max_docs scroll_size slices requests_per_second timeout ` +
  'wait_for_active_shards search_timeout';
const HEALTH = `${ADMIN} wait_for_status level local wait_for_no_relocating_shards wait_for_nodes wait_for_events`;
const BULK = `refresh routing timeout wait_for_active_shards require_alias ${SOURCE}`;

/** A route: space-separated methods, a path with `{index}`/`{id}`/`{name}` segments, accepted query parameters. */
const route = (methods: string, path: string, params: string, handler: Handler): Route => ({
  methods: words(methods),
  pattern: path.split('/').filter(Boolean),
  params: new Set(words(`${GLOBAL_PARAMS} ${params}`).filter(Boolean)),
  handler,
});

const ROUTES: Route[] = [
  route('GET HEAD', '/', '', (ctx) => ({ status: 200, body: ctx.cluster.profile.info(ctx.cluster) })),
  route('GET', '/_cluster/health', HEALTH, clusterHealth),
  route('GET POST', '/_refresh', READ, refreshIndices),
  route('GET POST', '/{index}/_refresh', READ, refreshIndices),
  route('PUT POST', '/_index_template/{name}', `${ADMIN} create cause`, putTemplate),
  route('GET HEAD', '/_index_template/{name}', `${ADMIN} local flat_settings`, getTemplates),
  route('GET', '/_index_template', `${ADMIN} local flat_settings`, getTemplates),
  route('DELETE', '/_index_template/{name}', ADMIN, deleteTemplate),
  route('GET', '/_mapping', `${READ} ${ADMIN} local`, getMapping),
  route('GET', '/{index}/_mapping', `${READ} ${ADMIN} local`, getMapping),
  route('PUT POST', '/{index}/_mapping', `${READ} ${ADMIN} write_index_only`, putMapping),
  route('GET', '/{index}/_settings', `${READ} ${ADMIN} flat_settings include_defaults local`, getSettings),
  route('PUT', '/{index}/_settings', `${READ} ${ADMIN} preserve_existing flat_settings reopen`, putSettings),
  route('HEAD', '/{index}', `${READ} local flat_settings include_defaults`, indexExists),
  route('GET', '/{index}', `${READ} ${ADMIN} local flat_settings include_defaults features`, getIndex),
  route('PUT', '/{index}', ADMIN, createIndex),
  route('DELETE', '/{index}', `${READ} ${ADMIN}`, deleteIndex),
  route('POST', '/{index}/_doc', `${WRITE} op_type`, (ctx) => putDoc(ctx, randomBytes(15).toString('base64url'), true)),
  route('PUT POST', '/{index}/_doc/{id}', `${WRITE} op_type`, (ctx) => putDoc(ctx, ctx.segs.id ?? '', false)),
  route('PUT POST', '/{index}/_create/{id}', WRITE, (ctx) => putDoc(ctx, ctx.segs.id ?? '', true)),
  route('GET HEAD', '/{index}/_doc/{id}', GET, getDoc),
  route('GET HEAD', '/{index}/_source/{id}', GET, getSource),
  route('DELETE', '/{index}/_doc/{id}', WRITE, deleteDoc),
  route('POST', '/{index}/_update/{id}', `${WRITE} ${SOURCE} retry_on_conflict lang`, updateDoc),
  route('GET POST', '/_mget', GET, mget),
  route('GET POST', '/{index}/_mget', GET, mget),
  route('POST PUT', '/_bulk', BULK, bulk),
  route('POST PUT', '/{index}/_bulk', BULK, bulk),
  route('GET POST', '/_search', SEARCH, search),
  route('GET POST', '/{index}/_search', SEARCH, search),
  route('GET POST', '/_count', `${READ} min_score`, count),
  route('GET POST', '/{index}/_count', `${READ} min_score`, count),
  route('POST', '/{index}/_delete_by_query', DBQ, deleteByQuery),
];

function matchRoute(pattern: string[], segs: string[]): Record<string, string> | undefined {
  if (pattern.length !== segs.length) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segs[i] as string;
    if (p.startsWith('{')) {
      // Index names never start with `_`, which keeps `/_search` from matching `/{index}`.
      if (p === '{index}' && s.startsWith('_') && s !== '_all') return undefined;
      out[p.slice(1, -1)] = s;
    } else if (p !== s) return undefined;
  }
  return out;
}

async function dispatch(cluster: Cluster, method: string, url: URL, body: Buffer): Promise<Reply> {
  let segs: string[];
  try {
    segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return badRequest(`invalid escape sequence in path [${url.pathname}]`);
  }
  const candidates = ROUTES.map((r) => ({ r, params: matchRoute(r.pattern, segs) })).filter(
    (c) => c.params !== undefined,
  );
  const found = candidates.find((c) => c.r.methods.includes(method));
  if (!found) {
    const allowed = [...new Set(candidates.flatMap((c) => c.r.methods))];
    if (allowed.length > 0) {
      throw new EsError(405, {
        error: `Incorrect HTTP method for uri [${url.pathname}] and method [${method}], allowed: [${allowed.join(', ')}]`,
        status: 405,
      });
    }
    return unsupported(
      `endpoint [${method} ${url.pathname}] (no handler found for uri [${url.pathname}] and method [${method}])`,
    );
  }
  const query = new Map<string, string>();
  for (const [k, v] of url.searchParams) {
    if (!found.r.params.has(k)) {
      if (UNIMPLEMENTED_PARAMS.has(k)) unsupported(`parameter [${k}] of [${method} ${url.pathname}]`);
      badRequest(`request [${url.pathname}] contains unrecognized parameter: [${k}]`);
    }
    query.set(k, v);
  }
  return found.r.handler({ cluster, method, path: url.pathname, segs: found.params ?? {}, query, body });
}

async function serve(
  cluster: Cluster,
  log: EsDoubleRequest[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://es-double');
  const method = (req.method ?? 'GET').toUpperCase();
  log.push({ method, path: url.pathname, query: url.search.slice(1) });
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  let contentType = cluster.profile.jsonType;
  let reply: Reply;
  try {
    contentType = negotiate(cluster.profile, req.headers, body.length > 0);
    reply = await dispatch(cluster, method, url, body);
  } catch (err) {
    if (err instanceof EsError) reply = { status: err.status, body: err.body };
    else {
      const reason = err instanceof Error ? err.message : String(err);
      reply = { status: 500, body: errorBody(500, cause('exception', `[es-double] internal error: ${reason}`)) };
    }
  }
  const filter = url.searchParams.get('filter_path');
  let payload = reply.body;
  if (filter && payload !== undefined && reply.status < 300) {
    try {
      payload = filterPath(payload, filter);
    } catch (err) {
      if (!(err instanceof EsError)) throw err;
      reply = { status: err.status, body: err.body };
      payload = err.body;
    }
  }
  const text = payload === undefined || method === 'HEAD' ? '' : JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(text)),
  };
  if (cluster.profile.productHeader) headers['x-elastic-product'] = 'Elasticsearch';
  res.writeHead(reply.status, headers);
  res.end(text);
}

// --- request helpers -------------------------------------------------------------------------

function jsonBody(ctx: Ctx, required: boolean): Obj | undefined {
  if (ctx.body.length === 0) {
    if (required) reject('parse_exception', 'request body is required');
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(ctx.body.toString('utf8'));
  } catch (err) {
    return reject('x_content_parse_exception', `Failed to parse request body: ${(err as Error).message}`);
  }
  if (!isObj(parsed)) return reject('parse_exception', 'request body must be a JSON object');
  return parsed;
}

function flag(ctx: Ctx, name: string, dflt: boolean): boolean {
  const v = ctx.query.get(name);
  if (v === undefined) return dflt;
  if (v === 'true' || v === '') return true;
  if (v === 'false') return false;
  return badRequest(`Failed to parse value [${v}] as only [true] or [false] are allowed.`);
}

function int(ctx: Ctx, name: string): number | undefined {
  const v = ctx.query.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) badRequest(`Failed to parse int parameter [${name}] with value [${v}]`);
  return n;
}

function casOf(get: (k: string) => unknown): CasOptions {
  const seq = get('if_seq_no');
  const term = get('if_primary_term');
  if (seq === undefined && term === undefined) return {};
  if (seq === undefined || term === undefined) {
    const msg =
      seq === undefined ? 'ifPrimaryTerm is set, but seqNo is unassigned' : `ifSeqNo is set, but primary term is [0]`;
    reject('action_request_validation_exception', `Validation Failed: 1: ${msg};`);
  }
  const ifSeqNo = Number(seq);
  const ifPrimaryTerm = Number(term);
  if (!Number.isInteger(ifSeqNo) || !Number.isInteger(ifPrimaryTerm))
    badRequest('if_seq_no and if_primary_term must be integers');
  return { ifSeqNo, ifPrimaryTerm };
}

function readOpts(ctx: Ctx): { ignoreUnavailable: boolean; allowNoIndices: boolean } {
  return {
    ignoreUnavailable: flag(ctx, 'ignore_unavailable', false),
    allowNoIndices: flag(ctx, 'allow_no_indices', true),
  };
}

/** Applies `refresh=true|false|wait_for` after a write to the given indices. */
async function afterWrite(ctx: Ctx, indices: IndexState[], reply: Reply): Promise<Reply> {
  const mode = ctx.query.get('refresh');
  if (mode === undefined || mode === 'false') return reply;
  let forced = false;
  if (mode === 'true' || mode === '') {
    for (const idx of indices) ctx.cluster.refresh(idx);
    forced = true;
  } else if (mode === 'wait_for') {
    for (const idx of indices) forced = (await ctx.cluster.waitForRefresh(idx)) || forced;
  } else badRequest(`Unknown value for refresh: [${mode}].`);
  if (forced && isObj(reply.body) && !('items' in reply.body)) reply.body.forced_refresh = true;
  return reply;
}

// --- handlers: cluster and indices -----------------------------------------------------------

function clusterHealth(ctx: Ctx): Reply {
  const indices = [...ctx.cluster.indices.values()];
  const replicas = indices.reduce((n, i) => n + Number(i.settings['index.number_of_replicas'] ?? 1), 0);
  return {
    status: 200,
    body: {
      cluster_name: 'es-double',
      status: replicas > 0 ? 'yellow' : 'green',
      timed_out: false,
      number_of_nodes: 1,
      number_of_data_nodes: 1,
      active_primary_shards: indices.length,
      active_shards: indices.length,
      relocating_shards: 0,
      initializing_shards: 0,
      unassigned_shards: replicas,
      delayed_unassigned_shards: 0,
      number_of_pending_tasks: 0,
      number_of_in_flight_fetch: 0,
      task_max_waiting_in_queue_millis: 0,
      active_shards_percent_as_number:
        indices.length + replicas === 0 ? 100 : (100 * indices.length) / (indices.length + replicas),
    },
  };
}

function refreshIndices(ctx: Ctx): Reply {
  const indices = ctx.cluster.resolve(ctx.segs.index, readOpts(ctx));
  for (const idx of indices) ctx.cluster.refresh(idx);
  const total = indices.reduce((n, i) => n + ctx.cluster.shards(i).total, 0);
  return { status: 200, body: { _shards: { total, successful: indices.length, failed: 0 } } };
}

function createIndex(ctx: Ctx): Reply {
  const name = ctx.segs.index ?? '';
  ctx.cluster.create(name, jsonBody(ctx, false));
  return { status: 200, body: { acknowledged: true, shards_acknowledged: true, index: name } };
}

function indexExists(ctx: Ctx): Reply {
  try {
    return {
      status: ctx.cluster.resolve(ctx.segs.index, { ...readOpts(ctx), allowNoIndices: false }).length > 0 ? 200 : 404,
    };
  } catch (err) {
    if (err instanceof EsError && err.status === 404) return { status: 404 };
    throw err;
  }
}

function settingsBody(cluster: Cluster, idx: IndexState): Obj {
  const created = cluster.profile.es ? `${cluster.profile.major}000099` : `13${cluster.profile.major}0099`;
  return nestSettings({
    ...idx.settings,
    'index.uuid': idx.uuid,
    'index.provided_name': idx.name,
    'index.creation_date': String(idx.createdAt),
    'index.version.created': created,
  });
}

function getIndex(ctx: Ctx): Reply {
  const body: Obj = {};
  for (const idx of ctx.cluster.resolve(ctx.segs.index, readOpts(ctx))) {
    body[idx.name] = { aliases: {}, mappings: idx.mappings, settings: settingsBody(ctx.cluster, idx) };
  }
  return { status: 200, body };
}

function deleteIndex(ctx: Ctx): Reply {
  const expr = ctx.segs.index ?? '';
  if ((expr.includes('*') || expr === '_all') && ctx.cluster.profile.es && ctx.cluster.profile.major >= 8) {
    badRequest('Wildcard expressions or all indices are not allowed');
  }
  for (const idx of ctx.cluster.resolve(expr, readOpts(ctx))) ctx.cluster.deleteIndex(idx);
  return { status: 200, body: { acknowledged: true } };
}

function getMapping(ctx: Ctx): Reply {
  const body: Obj = {};
  for (const idx of ctx.cluster.resolve(ctx.segs.index, readOpts(ctx))) body[idx.name] = { mappings: idx.mappings };
  return { status: 200, body };
}

function putMapping(ctx: Ctx): Reply {
  const update = validateMappings(jsonBody(ctx, true));
  const indices = ctx.cluster.resolve(ctx.segs.index, readOpts(ctx));
  const merged = indices.map((idx) => mergeMappings(idx.mappings, update));
  indices.forEach((idx, i) => {
    idx.mappings = merged[i] as Obj;
  });
  return { status: 200, body: { acknowledged: true } };
}

function getSettings(ctx: Ctx): Reply {
  const body: Obj = {};
  for (const idx of ctx.cluster.resolve(ctx.segs.index, readOpts(ctx)))
    body[idx.name] = { settings: settingsBody(ctx.cluster, idx) };
  return { status: 200, body };
}

function putSettings(ctx: Ctx): Reply {
  const update = flattenSettings(jsonBody(ctx, true));
  for (const k of ['index.number_of_shards', 'index.uuid', 'index.creation_date', 'index.provided_name']) {
    if (k in update) badRequest(`final index setting [${k}], not updateable`);
  }
  const interval = update['index.refresh_interval'];
  if (interval !== undefined && timeValueMs(interval) === undefined) {
    badRequest(`failed to parse setting [index.refresh_interval] with value [${interval}] as a time value`);
  }
  for (const idx of ctx.cluster.resolve(ctx.segs.index, readOpts(ctx))) {
    Object.assign(idx.settings, update);
    ctx.cluster.schedule(idx);
  }
  return { status: 200, body: { acknowledged: true } };
}

// --- handlers: index templates ---------------------------------------------------------------

function requireComposableTemplates(ctx: Ctx): void {
  if (!ctx.cluster.profile.composableTemplates)
    unsupported(`composable index templates before Elasticsearch 7.8 ([${ctx.method} ${ctx.path}])`);
}

function putTemplate(ctx: Ctx): Reply {
  requireComposableTemplates(ctx);
  const name = ctx.segs.name ?? '';
  const body = jsonBody(ctx, true) as Obj;
  for (const k of Object.keys(body)) {
    if (
      ![
        'index_patterns',
        'template',
        'priority',
        'version',
        '_meta',
        'composed_of',
        'data_stream',
        'allow_auto_create',
      ].includes(k)
    ) {
      reject('x_content_parse_exception', `[1:2] [index_template] unknown field [${k}]`);
    }
  }
  const patterns = list(body.index_patterns);
  if (patterns.length === 0) {
    reject('action_request_validation_exception', 'Validation Failed: 1: index patterns are missing;');
  }
  if (list(body.composed_of).length > 0) unsupported('component templates ([composed_of])');
  if (body.data_stream !== undefined) unsupported('data streams');
  if (flag(ctx, 'create', false) && ctx.cluster.templates.has(name))
    badRequest(`index template [${name}] already exists`);
  const template = isObj(body.template) ? body.template : {};
  validateMappings(template.mappings);
  const priority = Number(body.priority ?? 0);
  for (const [other, t] of ctx.cluster.templates) {
    if (other === name || Number(t.priority ?? 0) !== priority) continue;
    const overlap = list(t.index_patterns).some((p) => patterns.some((q) => glob(p, q) || glob(q, p)));
    if (overlap) {
      badRequest(
        `index template [${name}] has index patterns [${patterns.join(', ')}] matching patterns from existing templates [${other}] with patterns (${other} => [${list(t.index_patterns).join(', ')}]) that have the same priority [${priority}], multiple index templates may not match during index creation, please use a different priority`,
      );
    }
  }
  const stored: Obj = { index_patterns: patterns, template: structuredClone(template), composed_of: [] };
  for (const k of ['priority', 'version', '_meta', 'allow_auto_create']) if (body[k] !== undefined) stored[k] = body[k];
  ctx.cluster.templates.set(name, stored);
  return { status: 200, body: { acknowledged: true } };
}

function getTemplates(ctx: Ctx): Reply {
  requireComposableTemplates(ctx);
  const names = list(ctx.segs.name ?? '*');
  const found = [...ctx.cluster.templates].filter(([n]) => names.some((p) => glob(p, n)));
  if (found.length === 0 && ctx.segs.name !== undefined) {
    if (ctx.method === 'HEAD') return { status: 404 };
    fail(404, cause('resource_not_found_exception', `index template matching [${ctx.segs.name}] not found`));
  }
  return { status: 200, body: { index_templates: found.map(([name, t]) => ({ name, index_template: t })) } };
}

function deleteTemplate(ctx: Ctx): Reply {
  requireComposableTemplates(ctx);
  const name = ctx.segs.name ?? '';
  if (!ctx.cluster.templates.delete(name))
    fail(404, cause('resource_not_found_exception', `index_template [${name}] missing`));
  return { status: 200, body: { acknowledged: true } };
}

// --- handlers: documents ---------------------------------------------------------------------

async function putDoc(ctx: Ctx, id: string, create: boolean): Promise<Reply> {
  const source = jsonBody(ctx, true) as Obj;
  const opType = ctx.query.get('op_type');
  if (opType !== undefined && opType !== 'index' && opType !== 'create')
    badRequest(`opType must be 'create' or 'index', found: [${opType}]`);
  if (flag(ctx, 'require_alias', false)) unsupported('require_alias=true (aliases)');
  const idx = ctx.cluster.autoCreate(ctx.segs.index ?? '');
  const reply = ctx.cluster.indexDoc(idx, id, source, {
    create: create || opType === 'create',
    ...casOf((k) => ctx.query.get(k)),
  });
  return afterWrite(ctx, [idx], reply);
}

function sourceParams(ctx: Ctx): SourceFilter {
  return sourceFilter(ctx.query.get('_source'), ctx.query.get('_source_includes'), ctx.query.get('_source_excludes'));
}

function getDoc(ctx: Ctx): Reply {
  const idx = ctx.cluster.indices.get(ctx.segs.index ?? '');
  if (!idx) return ctx.method === 'HEAD' ? { status: 404 } : fail(404, indexNotFound(ctx.segs.index ?? ''));
  if (flag(ctx, 'refresh', false)) ctx.cluster.refresh(idx);
  const reply = ctx.cluster.getDoc(idx, ctx.segs.id ?? '', {
    realtime: flag(ctx, 'realtime', true),
    source: sourceParams(ctx),
  });
  return ctx.method === 'HEAD' ? { status: reply.status } : reply;
}

function getSource(ctx: Ctx): Reply {
  const idx = ctx.cluster.indices.get(ctx.segs.index ?? '');
  if (!idx) return ctx.method === 'HEAD' ? { status: 404 } : fail(404, indexNotFound(ctx.segs.index ?? ''));
  if (flag(ctx, 'refresh', false)) ctx.cluster.refresh(idx);
  const id = ctx.segs.id ?? '';
  const reply = ctx.cluster.getDoc(idx, id, { realtime: flag(ctx, 'realtime', true), source: sourceParams(ctx) });
  if (reply.status === 404) {
    return ctx.method === 'HEAD'
      ? { status: 404 }
      : fail(404, cause('resource_not_found_exception', `Document not found [${idx.name}]/[${id}]`));
  }
  return ctx.method === 'HEAD' ? { status: 200 } : { status: 200, body: (reply.body as Obj)._source };
}

async function deleteDoc(ctx: Ctx): Promise<Reply> {
  const idx = ctx.cluster.require(ctx.segs.index ?? '');
  const reply = ctx.cluster.deleteDoc(
    idx,
    ctx.segs.id ?? '',
    casOf((k) => ctx.query.get(k)),
  );
  return afterWrite(ctx, [idx], reply);
}

async function updateDoc(ctx: Ctx): Promise<Reply> {
  const body = jsonBody(ctx, true) as Obj;
  const idx = ctx.cluster.autoCreate(ctx.segs.index ?? '');
  const sourceRequested = words(SOURCE).some((p) => ctx.query.has(p));
  const opts = { ...casOf((k) => ctx.query.get(k)), ...(sourceRequested ? { source: sourceParams(ctx) } : {}) };
  const reply = ctx.cluster.updateDoc(idx, ctx.segs.id ?? '', body, opts);
  return afterWrite(ctx, [idx], reply);
}

function mget(ctx: Ctx): Reply {
  const body = jsonBody(ctx, true) as Obj;
  const defaultIndex = ctx.segs.index;
  const specs: Obj[] = Array.isArray(body.docs)
    ? body.docs.filter(isObj)
    : Array.isArray(body.ids)
      ? body.ids.map((id) => ({ _id: id }))
      : reject('action_request_validation_exception', 'Validation Failed: 1: no documents to get;');
  const realtime = flag(ctx, 'realtime', true);
  const docs = specs.map((spec) => {
    const name = String(spec._index ?? defaultIndex ?? '');
    const id = String(spec._id ?? '');
    const idx = ctx.cluster.indices.get(name);
    if (!idx) return { _index: name, _id: id, error: { root_cause: [indexNotFound(name)], ...indexNotFound(name) } };
    const source = spec._source === undefined ? sourceParams(ctx) : sourceFilter(spec._source);
    return ctx.cluster.getDoc(idx, id, { realtime, source }).body;
  });
  return { status: 200, body: { docs } };
}

// --- handlers: bulk --------------------------------------------------------------------------

const BULK_META = new Set(
  words(
    '_index _id if_seq_no if_primary_term routing retry_on_conflict require_alias _source dynamic_templates pipeline version version_type',
  ),
);

async function bulk(ctx: Ctx): Promise<Reply> {
  const started = Date.now();
  const text = ctx.body.toString('utf8');
  if (text.length === 0) reject('action_request_validation_exception', 'Validation Failed: 1: no requests added;');
  if (!text.endsWith('\n')) badRequest('The bulk request must be terminated by a newline [\\n]');
  const lines = text.split('\n').slice(0, -1);
  const parse = (line: string, n: number): Obj => {
    try {
      const v: unknown = JSON.parse(line);
      if (isObj(v)) return v;
    } catch {
      /* reported below */
    }
    return badRequest(
      `Malformed action/metadata line [${n + 1}], expected START_OBJECT but found [${line.slice(0, 20)}]`,
    );
  };
  const items: Obj[] = [];
  const touched = new Set<IndexState>();
  let errors = false;
  for (let n = 0; n < lines.length; n++) {
    if ((lines[n] ?? '').trim() === '') continue;
    const action = parse(lines[n] as string, n);
    const op = Object.keys(action)[0] ?? '';
    const meta = action[op];
    if (!['index', 'create', 'update', 'delete'].includes(op) || !isObj(meta)) {
      badRequest(
        `Malformed action/metadata line [${n + 1}], expected field [create], [delete], [index] or [update] but found [${op}]`,
      );
    }
    const m = meta as Obj;
    for (const k of Object.keys(m)) {
      if (!BULK_META.has(k)) badRequest(`Action/metadata line [${n + 1}] contains an unknown parameter [${k}]`);
      if (k === 'pipeline' || k === 'version' || k === 'version_type' || k === 'dynamic_templates')
        unsupported(`bulk metadata [${k}]`);
    }
    const payload = op === 'delete' ? undefined : parse(lines[++n] ?? '', n);
    const name = String(m._index ?? ctx.segs.index ?? '');
    if (name === '') reject('action_request_validation_exception', 'Validation Failed: 1: index is missing;');
    const id =
      m._id === undefined
        ? op === 'index' || op === 'create'
          ? randomBytes(15).toString('base64url')
          : ''
        : String(m._id);
    let item: Obj;
    try {
      if (id === '') reject('action_request_validation_exception', 'Validation Failed: 1: id is missing;');
      const cas = casOf((k) => m[k]);
      const idx = op === 'delete' ? ctx.cluster.require(name) : ctx.cluster.autoCreate(name);
      touched.add(idx);
      const reply =
        op === 'delete'
          ? ctx.cluster.deleteDoc(idx, id, cas)
          : op === 'update'
            ? ctx.cluster.updateDoc(idx, id, payload as Obj, {
                ...cas,
                ...(m._source === undefined ? {} : { source: sourceFilter(m._source) }),
              })
            : ctx.cluster.indexDoc(idx, id, payload as Obj, { ...cas, create: op === 'create' });
      item = { ...(reply.body as Obj), status: reply.status };
    } catch (err) {
      if (!(err instanceof EsError)) throw err;
      const e = (err.body as Obj).error as Obj;
      const { root_cause: _root, ...detail } = e;
      item = { _index: name, _id: id, status: err.status, error: detail };
      errors = true;
    }
    items.push({ [op]: item });
  }
  const reply: Reply = { status: 200, body: { errors, took: Date.now() - started, items } };
  return afterWrite(ctx, [...touched], reply);
}

// --- handlers: search ------------------------------------------------------------------------

const SEARCH_BODY_KEYS = new Set(
  words('query size from sort _source track_total_hits search_after seq_no_primary_term version track_scores timeout'),
);

function searchRequest(ctx: Ctx, body: Obj): SearchRequest {
  for (const k of Object.keys(body)) {
    if (!SEARCH_BODY_KEYS.has(k)) unsupported(`search body key [${k}]`);
  }
  const qTotal = ctx.query.get('track_total_hits');
  const fromQuery =
    qTotal === undefined ? undefined : qTotal === 'true' ? true : qTotal === 'false' ? false : Number(qTotal);
  const tth = fromQuery ?? body.track_total_hits ?? 10_000;
  const qSort = ctx.query.get('sort');
  const hasSourceParam = words(SOURCE).some((p) => ctx.query.has(p));
  const req: SearchRequest = {
    query: body.query,
    size: int(ctx, 'size') ?? (body.size === undefined ? 10 : Number(body.size)),
    from: int(ctx, 'from') ?? (body.from === undefined ? 0 : Number(body.from)),
    sort: qSort === undefined ? body.sort : list(qSort),
    source: hasSourceParam ? sourceParams(ctx) : sourceFilter(body._source),
    trackTotalHits: typeof tth === 'boolean' ? tth : Number(tth),
    searchAfter: Array.isArray(body.search_after) ? body.search_after : undefined,
    seqNoPrimaryTerm: flag(ctx, 'seq_no_primary_term', body.seq_no_primary_term === true),
    version: body.version === true,
    trackScores: flag(ctx, 'track_scores', body.track_scores === true),
    totalAsInt: flag(ctx, 'rest_total_hits_as_int', false),
  };
  if (!Number.isInteger(req.size) || req.size < 0)
    badRequest(`[size] parameter cannot be negative, found [${req.size}]`);
  if (!Number.isInteger(req.from) || req.from < 0)
    badRequest(`[from] parameter cannot be negative, found [${req.from}]`);
  if (typeof req.trackTotalHits === 'number' && Number.isNaN(req.trackTotalHits))
    badRequest('[track_total_hits] must be a boolean or an integer');
  if (req.totalAsInt && req.trackTotalHits !== true && req.trackTotalHits !== false) req.trackTotalHits = true;
  return req;
}

function search(ctx: Ctx): Reply {
  const body = jsonBody(ctx, false) ?? {};
  const req = searchRequest(ctx, body);
  const indices = ctx.cluster.resolve(ctx.segs.index, readOpts(ctx));
  return { status: 200, body: runSearch(ctx.cluster, indices, req) };
}

function count(ctx: Ctx): Reply {
  const body = jsonBody(ctx, false) ?? {};
  for (const k of Object.keys(body)) if (k !== 'query') unsupported(`count body key [${k}]`);
  const indices = ctx.cluster.resolve(ctx.segs.index, readOpts(ctx));
  const n = matchSnapshot(ctx.cluster, indices, body.query).length;
  return {
    status: 200,
    body: { count: n, _shards: { total: indices.length, successful: indices.length, skipped: 0, failed: 0 } },
  };
}

/**
 * Deletes what the last refreshed snapshot matches, in batches of `scroll_size`, each document
 * conditionally on the sequence number it had in the snapshot: a document changed or deleted since
 * the refresh is a version conflict. `conflicts=abort` (default) stops after the batch that had one
 * and answers 409; `conflicts=proceed` counts them and carries on.
 */
async function deleteByQuery(ctx: Ctx): Promise<Reply> {
  const started = Date.now();
  const body = jsonBody(ctx, true) as Obj;
  for (const k of Object.keys(body))
    if (k !== 'query' && k !== 'max_docs') unsupported(`delete_by_query body key [${k}]`);
  if (!flag(ctx, 'wait_for_completion', true)) unsupported('wait_for_completion=false (tasks API)');
  const conflicts = ctx.query.get('conflicts') ?? 'abort';
  if (conflicts !== 'abort' && conflicts !== 'proceed')
    badRequest(`conflicts may only be "proceed" or "abort" but was [${conflicts}]`);
  const refresh = flag(ctx, 'refresh', false);
  const maxDocs = int(ctx, 'max_docs') ?? (body.max_docs === undefined ? undefined : Number(body.max_docs));
  const batchSize = int(ctx, 'scroll_size') ?? 1000;
  const indices = ctx.cluster.resolve(ctx.segs.index, readOpts(ctx));
  const matched = matchSnapshot(ctx.cluster, indices, body.query).slice(0, maxDocs);
  const typed = '_type' in ctx.cluster.profile.typeField ? { type: '_doc' } : {};
  let deleted = 0;
  let versionConflicts = 0;
  let batches = 0;
  const failures: Obj[] = [];
  for (let i = 0; i < matched.length; i += batchSize) {
    batches++;
    for (const { idx, doc } of matched.slice(i, i + batchSize)) {
      const cur = idx.live.get(doc.id);
      if (cur && cur.seqNo === doc.seqNo) {
        ctx.cluster.deleteDoc(idx, doc.id, { ifSeqNo: doc.seqNo, ifPrimaryTerm: PRIMARY_TERM });
        deleted++;
        continue;
      }
      versionConflicts++;
      if (conflicts === 'abort') {
        const detail = cur
          ? `required seqNo [${doc.seqNo}], primary term [${PRIMARY_TERM}]. current document has seqNo [${cur.seqNo}] and primary term [${PRIMARY_TERM}]`
          : `required seqNo [${doc.seqNo}], primary term [${PRIMARY_TERM}] but no document was found`;
        failures.push({
          index: idx.name,
          ...typed,
          id: doc.id,
          cause: ctx.cluster.conflictCause(idx, doc.id, detail),
          status: 409,
        });
      }
    }
    if (failures.length > 0) break;
  }
  if (refresh) for (const idx of indices) ctx.cluster.refresh(idx);
  return {
    status: failures.length > 0 ? 409 : 200,
    body: {
      took: Date.now() - started,
      timed_out: false,
      total: matched.length,
      deleted,
      batches,
      version_conflicts: versionConflicts,
      noops: 0,
      retries: { bulk: 0, search: 0 },
      throttled_millis: 0,
      requests_per_second: -1,
      throttled_until_millis: 0,
      failures,
    },
  };
}
