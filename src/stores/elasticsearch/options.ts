import * as v from 'valibot';
import {
  check,
  flag,
  interval,
  invalid,
  logger,
  oneOf,
  record,
  type Same,
  type Subject,
  text,
  whole,
} from '../../core/check.ts';
import type { Logger } from '../../core/report.ts';
import {
  clientKind,
  type ElasticsearchClientKind,
  type ElasticsearchClientLike,
  type ResolvedConnection,
} from './client.ts';

export type { ResolvedConnection } from './client.ts';

/**
 * Options of {@link ElasticsearchStore}: your own `client`, or one `node` URL (with
 * `clientOptions` for what a URL cannot say) from which the store creates, and owns, a client
 * of the package `flavor` names; and what is the store's own (index, refresh, pruning...).
 */
export interface ElasticsearchStoreOptions {
  /**
   * Your own client: an `@elastic/elasticsearch` `Client` (7.17, 8.x, 9.x) or an
   * `@opensearch-project/opensearch` `Client` (2.x, 3.x), detected structurally. The store sends
   * plain `application/json` on its own requests, so a 9.x client works against Elasticsearch 8
   * and 7.17 too. The store never closes it. Cannot be combined with `node`, `flavor` or `clientOptions`.
   * @default undefined (the store creates a client from `node` and `clientOptions`)
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
   * URL of the node, e.g. `https://user:password@es.internal:9200` (percent-encode reserved
   * characters in credentials). Given but `undefined` (an unset environment variable) is an
   * error, never a silent fallback to localhost.
   * @default 'http://localhost:9200' (unless `clientOptions` names `nodes` or `cloud`)
   */
  node?: string | undefined;
  /**
   * The one structured connection option, for what one URL cannot carry: options for the
   * store-created client's constructor, passed as they are, in that client's own words: several
   * `nodes`, `auth` with an `apiKey` or a `bearer` token, `cloud: { id }`, TLS (`tls` for the
   * Elasticsearch 8/9 clients, `ssl` for 7.x and OpenSearch), `maxRetries`, `requestTimeout`...
   * @default {}
   */
  clientOptions?: Readonly<Record<string, unknown>>;
  /** The index holding the sessions, one document per session. @default 'session' */
  index?: string;
  /**
   * A mapping type, as configurations written for Elasticsearch 6 and older name one. Accepted
   * so they load, and otherwise ignored:
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
   * timer unref'd); `0` turns it off. Failures go to `logger.error` (or a process warning). One
   * pruner per cluster is enough; a scheduled job calling `prune()` does the same.
   * @default 0 (off)
   */
  pruneIntervalSeconds?: number;
  /** Receives warnings (ignored `type`, setup fallbacks) and errors of background pruning. @default process warnings */
  logger?: Logger;
}

/** Options after validation and defaults. */
export interface ResolvedElasticsearchOptions {
  index: string;
  type: string | undefined;
  createIndex: boolean;
  refresh: 'false' | 'true' | 'wait_for';
  conflictRetries: number;
  pruneIntervalMs: number | undefined;
  logger: Logger | undefined;
  client: { value: ElasticsearchClientLike; kind: ElasticsearchClientKind } | undefined;
  connection: ResolvedConnection | undefined;
}

const SUBJECT: Subject = { scope: 'elasticsearch', label: 'elasticsearchStore', unset: { node: 'ELASTICSEARCH_URL' } };

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

const nodeUrl = () =>
  v.pipe(
    text(),
    v.check((value) => {
      try {
        return ['http:', 'https:'].includes(new URL(value).protocol);
      } catch {
        return false;
      }
    }, 'must be an http:// or https:// URL such as "http://localhost:9200"'),
  );

const indexName = () =>
  v.pipe(
    text(),
    v.check(
      (value) => indexNameProblem(value) === null,
      'must be a valid index name (lowercase, not starting with -, _ or +, without \\ / * ? " < > | , # : or spaces)',
    ),
  );

/** The options a configuration file can hold (all but `client` and `logger`). */
export const elasticsearchFileSchema = v.strictObject({
  flavor: v.optional(oneOf(['elasticsearch', 'opensearch'])),
  node: v.optional(nodeUrl()),
  clientOptions: v.optional(record<Readonly<Record<string, unknown>>>('an object of client constructor options')),
  index: v.optional(indexName()),
  type: v.optional(text()),
  createIndex: v.optional(flag()),
  refresh: v.optional(v.union([flag(), v.literal('wait_for')], "must be false, true or 'wait_for'")),
  conflictRetries: v.optional(whole(0, 1000)),
  pruneIntervalSeconds: v.optional(interval()),
});

/** {@link ElasticsearchStoreOptions} as a schema. */
export const elasticsearchSchema = v.strictObject({
  ...elasticsearchFileSchema.entries,
  client: v.optional(
    v.custom<ElasticsearchClientLike>(
      (value) => clientKind(value) !== null,
      'must be an @elastic/elasticsearch or @opensearch-project/opensearch Client (an object with transport.request)',
    ),
  ),
  logger: v.optional(logger()),
});
const same: Same<v.InferInput<typeof elasticsearchSchema>, ElasticsearchStoreOptions> = true;
void same;

/** Validates options and applies defaults; never mutates the input. */
export function resolveElasticsearchOptions(options: ElasticsearchStoreOptions): ResolvedElasticsearchOptions {
  const o = check(elasticsearchSchema, options, SUBJECT);
  let client: ResolvedElasticsearchOptions['client'];
  let connection: ResolvedConnection | undefined;
  if (o.client !== undefined) {
    const given = (['flavor', 'node', 'clientOptions'] as const).filter((name) => o[name] !== undefined);
    if (given.length > 0) {
      throw invalid(SUBJECT, 'client', `cannot be combined with ${given.join(', ')}: configure your client instead`);
    }
    client = { value: o.client, kind: clientKind(o.client) as ElasticsearchClientKind };
  } else {
    const clientOptions: Record<string, unknown> = { ...o.clientOptions };
    const located = ['node', 'nodes', 'cloud'].filter((name) => name in clientOptions);
    if (o.node !== undefined && located.length > 0) {
      throw invalid(SUBJECT, 'node', `cannot be combined with clientOptions.${located[0]}: give one of them`);
    }
    if (located.length === 0) clientOptions.node = o.node ?? 'http://localhost:9200';
    connection = { flavor: o.flavor ?? 'elasticsearch', clientOptions };
  }
  const refresh = o.refresh ?? false;
  return {
    index: o.index ?? 'session',
    type: o.type,
    createIndex: o.createIndex ?? true,
    refresh: refresh === 'wait_for' ? 'wait_for' : refresh ? 'true' : 'false',
    conflictRetries: o.conflictRetries ?? 20,
    pruneIntervalMs: o.pruneIntervalSeconds ? o.pruneIntervalSeconds * 1000 : undefined,
    logger: o.logger,
    client,
    connection,
  };
}
