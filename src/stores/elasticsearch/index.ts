/**
 * `tessera/elasticsearch`: the Elasticsearch / OpenSearch store. One document per session,
 * realtime reads by ID, optimistic concurrency with `if_seq_no`, server-side pruning of expired
 * sessions, a per-user listing, and any official client (Elasticsearch 7.17, 8, 9; OpenSearch).
 */
export type { ElasticsearchClientKind, ElasticsearchClientLike, EsRequestOptions, EsRequestParams } from './client.ts';
export type { ElasticsearchStoreOptions } from './options.ts';
export { ElasticsearchStore, elasticsearchStore, SESSION_INDEX_MAPPINGS } from './store.ts';
