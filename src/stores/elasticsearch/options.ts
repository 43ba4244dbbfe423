import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { SessionError } from '../../core/errors.ts';
import { clientKind, type ElasticsearchClientKind, type ElasticsearchClientLike } from './client.ts';

/** Structural logger: pino, bunyan, winston child loggers and `console` fit. */
export interface ElasticsearchLogger {
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** Credentials for a store-created client: basic, an Elasticsearch API key, or a bearer token. */
export type ElasticsearchAuth =
  | { username: string; password: string }
  /** The encoded key (`id:api_key` in base64), as Kibana shows it. Elasticsearch only. */
  | { apiKey: string }
  /** A token (an Elasticsearch service token, or a JWT for OpenSearch security). */
  | { bearer: string };

/**
 * Options of {@link ElasticsearchStore}. Give either your own `client`, or connection settings
 * (`node`/`nodes` or `cloud`, with `auth` and `tls`) from which the store creates, and owns, a
 * client of the package `flavor` names.
 */
export interface ElasticsearchStoreOptions {
  /**
   * Your own client: an `@elastic/elasticsearch` `Client` (7.17, 8.x, 9.x) or an
   * `@opensearch-project/opensearch` `Client` (2.x, 3.x), detected structurally. The store sends
   * plain `application/json` on its own requests, so a 9.x client works against Elasticsearch 8
   * and 7.17 too. The store never closes it. Cannot be combined with connection settings.
   * @default undefined (the store creates a client from the settings below)
   */
  client?: ElasticsearchClientLike;
  /**
   * Which client package the store loads for its own client: `@elastic/elasticsearch` (any of
   * 7.17, 8.x, 9.x) or `@opensearch-project/opensearch`. The Elasticsearch 8/9 clients refuse
   * to talk to OpenSearch, so choose `'opensearch'` for an OpenSearch cluster.
   * @default 'elasticsearch'
   */
  flavor?: 'elasticsearch' | 'opensearch';
  /**
   * URL of one node, e.g. `https://es.internal:9200`. Given but `undefined` (an unset environment
   * variable) is an error, never a silent fallback to localhost.
   * @default 'http://localhost:9200' (unless `nodes` or `cloud`)
   */
  node?: string | undefined;
  /** URLs of several nodes; requests are spread over them. @default undefined */
  nodes?: readonly string[];
  /** Credentials. `apiKey` is Elasticsearch only. @default undefined (none, or those in the node URL) */
  auth?: ElasticsearchAuth;
  /** Node.js `tls.connect` options (`ca`, `cert`, `key`, `rejectUnauthorized`...). @default undefined */
  tls?: TlsOptions;
  /** Elastic Cloud deployment, instead of `node`/`nodes`. Elasticsearch only. @default undefined */
  cloud?: { id: string };
  /**
   * Further options for the store-created client's constructor, passed as they are (e.g.
   * `maxRetries`, `requestTimeout`, `compression`). Connection settings go in the options above.
   * @default {}
   */
  clientOptions?: Readonly<Record<string, unknown>>;
  /** The index holding the sessions, one document per session (the seed's `index`). @default 'session' */
  index?: string;
  /**
   * The seed's mapping `type`. Accepted so old configurations load, and otherwise ignored:
   * Elasticsearch 7 removed mapping types, and documents live under `_doc`. Giving a value other
   * than `'_doc'` logs a warning once, when the store is created.
   * @default undefined
   */
  type?: string;
  /**
   * Create what the index needs when it is missing: an index template named
   * `tessera-<index>` (so a deleted index comes back with the right mapping) and the index with
   * its mapping. Where the user may not manage templates, only the index is created (with a
   * warning). `false`: the index must exist already (its mapping is `SESSION_INDEX_MAPPINGS`, shown in the README).
   * An existing index's mapping is checked either way.
   * @default true
   */
  createIndex?: boolean;
  /**
   * The `refresh` parameter of every write: `false` leaves visibility to search (listing,
   * counting) to the index's periodic refresh (1 s by default); reads by ID never need it.
   * `'wait_for'` answers once the write is searchable; `true` forces a refresh (costly).
   * @default false
   */
  refresh?: boolean | 'wait_for';
  /**
   * How many times a `patch` or `touch` that lost an `if_seq_no` race (409) re-reads the document
   * and replays its change before failing with `STORE_UNAVAILABLE`. Each replay waits a short,
   * randomly jittered and growing delay first.
   * @default 20
   */
  conflictRetries?: number;
  /**
   * Run `prune()` in this process every so many seconds (each run jittered by up to ±20%, the
   * timer unref'd). Failures go to `logger.error` (or a process warning). One pruner per cluster
   * is enough; a scheduled job calling `prune()` does the same.
   * @default undefined (off)
   */
  pruneIntervalSeconds?: number;
  /** Receives warnings (ignored `type`, setup fallbacks) and errors of background pruning. @default process warnings */
  logger?: ElasticsearchLogger;
}

/** Connection settings after validation, for a store-created client. */
export interface ResolvedConnection {
  flavor: 'elasticsearch' | 'opensearch';
  nodes: readonly string[];
  cloudId: string | undefined;
  auth: ElasticsearchAuth | undefined;
  tls: TlsOptions | undefined;
  clientOptions: Readonly<Record<string, unknown>>;
}

/** Options after validation and defaults. */
export interface ResolvedElasticsearchOptions {
  index: string;
  type: string | undefined;
  createIndex: boolean;
  refresh: 'false' | 'true' | 'wait_for';
  conflictRetries: number;
  pruneIntervalMs: number | undefined;
  logger: ElasticsearchLogger | undefined;
  client: { value: ElasticsearchClientLike; kind: ElasticsearchClientKind } | undefined;
  connection: ResolvedConnection | undefined;
}

const KNOWN = new Set([
  'client',
  'flavor',
  'node',
  'nodes',
  'auth',
  'tls',
  'cloud',
  'clientOptions',
  'index',
  'type',
  'createIndex',
  'refresh',
  'conflictRetries',
  'pruneIntervalSeconds',
  'logger',
]);
const CONNECTION = ['flavor', 'node', 'nodes', 'auth', 'tls', 'cloud', 'clientOptions'] as const;
/** Client constructor options that have a store option of their own. */
const OWN_CLIENT_OPTIONS = ['node', 'nodes', 'auth', 'tls', 'ssl', 'cloud'];

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', message, { scope: 'elasticsearch' });
}

const show = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '')
    throw invalid(`${name} must be a non-empty string, got ${show(value)}`);
  return value;
}

function nodeUrl(name: string, value: unknown): string {
  const text = nonEmpty(name, value);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`${name} must be a URL such as "http://localhost:9200", got ${show(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`${name} must be an http:// or https:// URL, got ${show(text)}`);
  }
  return text;
}

/**
 * Checks an index name against Elasticsearch's rules, so a bad one fails at construction rather
 * than on the first request.
 */
export function indexNameProblem(name: string): string | null {
  if (name === '') return 'is empty';
  if (name !== name.toLowerCase()) return 'must be lowercase';
  if (/^[-_+]/.test(name)) return "must not start with '-', '_' or '+'";
  if (/[\\/*?"<>| ,#:]/.test(name)) return 'must not contain \\ / * ? " < > | , # : or spaces';
  if (name === '.' || name === '..') return "must not be '.' or '..'";
  if (Buffer.byteLength(name) > 255) return 'must be at most 255 bytes';
  return null;
}

function resolveAuth(value: unknown, flavor: 'elasticsearch' | 'opensearch'): ElasticsearchAuth | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw invalid('auth must be { username, password }, { apiKey } or { bearer }');
  const keys = Object.keys(value).sort().join(',');
  if (keys === 'password,username') {
    return { username: nonEmpty('auth.username', value.username), password: nonEmpty('auth.password', value.password) };
  }
  if (keys === 'apiKey') {
    if (flavor === 'opensearch')
      throw invalid('auth.apiKey is an Elasticsearch feature; OpenSearch takes basic auth or a bearer token');
    return { apiKey: nonEmpty('auth.apiKey', value.apiKey) };
  }
  if (keys === 'bearer') return { bearer: nonEmpty('auth.bearer', value.bearer) };
  throw invalid(`auth must be exactly one of { username, password }, { apiKey } or { bearer }, got keys [${keys}]`);
}

function resolveConnection(options: ElasticsearchStoreOptions): ResolvedConnection {
  const flavor = options.flavor ?? 'elasticsearch';
  if (flavor !== 'elasticsearch' && flavor !== 'opensearch') {
    throw invalid(`flavor must be 'elasticsearch' or 'opensearch', got ${show(flavor)}`);
  }
  if (options.node !== undefined && options.nodes !== undefined) throw invalid('give node or nodes, not both');
  let nodes: string[] = [];
  if (options.node !== undefined) nodes = [nodeUrl('node', options.node)];
  if (options.nodes !== undefined) {
    if (!Array.isArray(options.nodes) || options.nodes.length === 0)
      throw invalid('nodes must be a non-empty array of URLs');
    nodes = options.nodes.map((node, i) => nodeUrl(`nodes[${i}]`, node));
  }
  let cloudId: string | undefined;
  if (options.cloud !== undefined) {
    if (flavor === 'opensearch') throw invalid('cloud (an Elastic Cloud ID) is for Elasticsearch; give node or nodes');
    if (!isObject(options.cloud) || Object.keys(options.cloud).join() !== 'id') throw invalid('cloud must be { id }');
    if (nodes.length > 0) throw invalid('give cloud or node/nodes, not both');
    cloudId = nonEmpty('cloud.id', options.cloud.id);
  }
  if (nodes.length === 0 && cloudId === undefined) nodes = ['http://localhost:9200'];
  if (options.tls !== undefined && !isObject(options.tls))
    throw invalid('tls must be an object of tls.connect options');
  const clientOptions = options.clientOptions ?? {};
  if (!isObject(clientOptions)) throw invalid('clientOptions must be an object');
  for (const name of OWN_CLIENT_OPTIONS) {
    if (name in clientOptions) {
      throw invalid(`clientOptions.${name} is not allowed: use the store option ${name === 'ssl' ? 'tls' : name}`);
    }
  }
  return {
    flavor,
    nodes,
    cloudId,
    auth: resolveAuth(options.auth, flavor),
    tls: options.tls,
    clientOptions: { ...clientOptions },
  };
}

/** Validates options and applies defaults; never mutates the input. */
export function resolveElasticsearchOptions(options: ElasticsearchStoreOptions): ResolvedElasticsearchOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw invalid(`unknown option "${name}" (known: ${[...KNOWN].join(', ')})`);
  }
  if ('node' in options && options.node === undefined) {
    throw invalid('node is undefined: is the environment variable it comes from (e.g. ELASTICSEARCH_URL) set?');
  }
  const index = options.index ?? 'session';
  if (typeof index !== 'string') throw invalid(`index must be a string, got ${show(index)}`);
  const problem = indexNameProblem(index);
  if (problem) throw invalid(`index ${show(index)} ${problem}`);
  const type = options.type === undefined ? undefined : nonEmpty('type', options.type);
  const createIndex = options.createIndex ?? true;
  if (typeof createIndex !== 'boolean') throw invalid(`createIndex must be true or false, got ${show(createIndex)}`);
  const refresh = options.refresh ?? false;
  if (refresh !== true && refresh !== false && refresh !== 'wait_for') {
    throw invalid(`refresh must be false, true or 'wait_for', got ${show(refresh)}`);
  }
  const conflictRetries = options.conflictRetries ?? 20;
  if (!Number.isInteger(conflictRetries) || conflictRetries < 0 || conflictRetries > 1000) {
    throw invalid(`conflictRetries must be a whole number from 0 to 1000, got ${show(conflictRetries)}`);
  }
  const prune = options.pruneIntervalSeconds;
  if (prune !== undefined && (typeof prune !== 'number' || !Number.isFinite(prune) || prune <= 0)) {
    throw invalid(`pruneIntervalSeconds must be a positive number, got ${show(prune)}`);
  }
  const logger = options.logger;
  if (logger !== undefined && (typeof logger?.warn !== 'function' || typeof logger?.error !== 'function')) {
    throw invalid('logger must have warn(object, message) and error(object, message) methods');
  }

  let client: ResolvedElasticsearchOptions['client'];
  let connection: ResolvedConnection | undefined;
  if (options.client !== undefined) {
    const given = CONNECTION.filter((name) => options[name] !== undefined);
    if (given.length > 0)
      throw invalid(`client cannot be combined with ${given.join(', ')}: configure your client instead`);
    const kind = clientKind(options.client);
    if (kind === null) {
      throw invalid(
        'client must be an @elastic/elasticsearch or @opensearch-project/opensearch Client (an object with transport.request)',
      );
    }
    client = { value: options.client, kind };
  } else {
    connection = resolveConnection(options);
  }
  return {
    index,
    type,
    createIndex,
    refresh: refresh === 'wait_for' ? 'wait_for' : refresh ? 'true' : 'false',
    conflictRetries,
    pruneIntervalMs: prune === undefined ? undefined : prune * 1000,
    logger,
    client,
    connection,
  };
}
