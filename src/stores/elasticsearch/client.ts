/**
 * The Elasticsearch and OpenSearch clients the store accepts, typed structurally (no import of
 * either library's types), and the one low-level call the store makes through them.
 */
import { importOptional, SessionError } from '../../core/errors.ts';

/** Connection settings after validation, for a store-created client. */
export interface ResolvedConnection {
  flavor: 'elasticsearch' | 'opensearch';
  /** The client constructor's options, `node` included unless they name `nodes` or `cloud`. */
  clientOptions: Readonly<Record<string, unknown>>;
}

/** The request the store hands to a client's transport: a REST call with a JSON body. */
export interface EsRequestParams {
  method: string;
  path: string;
  querystring?: Record<string, string | number | boolean>;
  body?: Record<string, unknown>;
}

/** Per-request options every supported client's transport understands. */
export interface EsRequestOptions {
  /** Statuses answered as results rather than thrown as errors. */
  ignore?: number[];
  /** Merged over the client's own headers. */
  headers?: Record<string, string>;
  /** `@elastic/elasticsearch` 8+: answer `{ body, statusCode, headers }` instead of the bare body. */
  meta?: boolean;
}

/**
 * Any client the store can talk through: an `@elastic/elasticsearch` `Client` of major 7, 8 or 9,
 * an `@opensearch-project/opensearch` `Client` (2.x, 3.x), or anything with the same
 * `transport.request` (a wrapper for tracing, for instance). Only that one method is called.
 */
export interface ElasticsearchClientLike {
  readonly transport: {
    request(params: EsRequestParams, options?: EsRequestOptions): Promise<unknown>;
  };
}

/**
 * Which client the store talks through, found structurally: `elasticsearch` (the 8.x/9.x
 * client), `elasticsearch-7`, `opensearch`, or `custom` for any other object with a
 * `transport.request`.
 */
export type ElasticsearchClientKind = 'elasticsearch' | 'elasticsearch-7' | 'opensearch' | 'custom';

/** A response, whatever the client: the status and the parsed JSON body. */
export interface EsResponse {
  statusCode: number;
  body: unknown;
}

/** What the store needs from a client. */
export interface Backend {
  readonly kind: ElasticsearchClientKind;
  request(params: EsRequestParams, ignore?: number[]): Promise<EsResponse>;
  /** Closes the client if the store created it; a user's client is left open. */
  close(): Promise<void>;
}

/** Detects the kind of a client, or `null` when it has no `transport.request`. */
export function clientKind(value: unknown): ElasticsearchClientKind | null {
  if (typeof value !== 'object' || value === null) return null;
  const transport = (value as { transport?: unknown }).transport;
  if (typeof transport !== 'object' || transport === null) return null;
  if (typeof (transport as { request?: unknown }).request !== 'function') return null;
  const client = value as Record<string, unknown>;
  // 8.x and 9.x moved the client's events to a `diagnostic` emitter.
  if (typeof client.diagnostic === 'object' && client.diagnostic !== null) return 'elasticsearch';
  if (typeof client.createPit === 'function' || client.name === 'opensearch-js') return 'opensearch';
  if (typeof client.on === 'function' && typeof client.search === 'function') return 'elasticsearch-7';
  return 'custom';
}

/**
 * Plain JSON on every request, overriding the client's defaults. The 9.x client otherwise sends
 * `application/vnd.elasticsearch+json; compatible-with=9`, which Elasticsearch 8 refuses (400)
 * and 7.x answers with 406; the 8.x client's `compatible-with=8` is refused by 7.17. Plain JSON
 * is accepted by every Elasticsearch from 7.x to 9.x and by OpenSearch, and the endpoints the
 * store uses answer the same shapes on all of them, so no compatibility mode is needed.
 */
const JSON_HEADERS = Object.freeze({ accept: 'application/json', 'content-type': 'application/json' });

function asResponse(result: unknown): EsResponse {
  if (typeof result === 'object' && result !== null && typeof (result as EsResponse).statusCode === 'number') {
    const { statusCode, body } = result as EsResponse;
    return { statusCode, body };
  }
  // A transport that answers the bare body (8.x/9.x without `meta`) only does so on success.
  return { statusCode: 200, body: result };
}

function backendOver(client: ElasticsearchClientLike, kind: ElasticsearchClientKind, close: () => Promise<void>) {
  return {
    kind,
    close,
    async request(params: EsRequestParams, ignore: number[] = []): Promise<EsResponse> {
      const result = await client.transport.request(params, { ignore, headers: { ...JSON_HEADERS }, meta: true });
      return asResponse(result);
    },
  } satisfies Backend;
}

/** An adapter over a client the user created and owns. */
export function userBackend(client: ElasticsearchClientLike, kind: ElasticsearchClientKind): Backend {
  return backendOver(client, kind, async () => {});
}

type ClientConstructor = new (options: Record<string, unknown>) => ElasticsearchClientLike & { close(): Promise<void> };

interface ClientModule {
  Client: ClientConstructor;
  /** Exported by `@elastic/elasticsearch` 8 and later, not by 7.x. */
  Diagnostic?: unknown;
}

/** Creates the store's own client from connection settings; the store closes it. */
export async function ownedBackend(connection: ResolvedConnection): Promise<Backend> {
  const pkg = connection.flavor === 'opensearch' ? '@opensearch-project/opensearch' : '@elastic/elasticsearch';
  const mod = await importOptional<ClientModule & { default?: ClientModule }>(pkg, 'elasticsearch');
  const Client = mod.Client ?? mod.default?.Client;
  if (typeof Client !== 'function') {
    throw new SessionError('MISSING_DEPENDENCY', `${pkg} does not export a Client class`, { scope: 'elasticsearch' });
  }
  const modern = connection.flavor === 'elasticsearch' && (mod.Diagnostic ?? mod.default?.Diagnostic) !== undefined;
  const options: Record<string, unknown> = { ...connection.clientOptions };
  const client = new Client(options);
  const kind = connection.flavor === 'opensearch' ? 'opensearch' : modern ? 'elasticsearch' : 'elasticsearch-7';
  return backendOver(client, kind, () => client.close());
}
