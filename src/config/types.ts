import type { SessionOptions } from '../core/options.ts';

/**
 * A whole Tessera configuration, as a YAML or JSON file or an object: which store, its options,
 * the engine's options, and an optional local read tier.
 *
 * ```yaml
 * store:
 *   url: redis://redis.internal:6379/1   # or sqlite:data/sessions.db, postgres://..., elasticsearch+https://...
 *   prefix: 'myapp:'
 * session:
 *   secrets: [ "${SESSION_SECRET}" ]
 *   idleTimeoutSeconds: 3600
 * cache:
 *   maxEntries: 50000
 * ```
 *
 * The Perl engines' own configurations are read too (see `./perl.ts`): a Dancer
 * `session: Redis` + `redis_session` block, Catalyst `redis_*` keys under `Plugin::Session`, a
 * Dancer2 `engines.session.DBIC` block, and a Dancer `session: ElasticSearch` + `session_options` block.
 */
export interface TesseraConfig {
  /** A store URL, or `{ url?, type?, ...store options }`. */
  store: string | StoreConfig;
  /** Engine options (everything but `store`, and the function-valued ones). */
  session?: Omit<SessionOptions, 'store' | 'logger' | 'now' | 'serializer'>;
  /** Put the local read tier in front (`tessera/cache`); invalidation follows the store. */
  cache?: { maxEntries?: number; maxBytes?: number; maxStalenessMs?: number; invalidationUrl?: string };
}

/** A store's kind and its options. */
export interface StoreConfig {
  /**
   * `redis`, `sql`, `elasticsearch`, `opensearch` or `memory`; implied by `url` when omitted.
   * (Not `type`: the Elasticsearch store keeps that name for the seed's mapping type.)
   */
  kind?: StoreType;
  url?: string;
  [option: string]: unknown;
}

export type StoreType = 'redis' | 'sql' | 'elasticsearch' | 'opensearch' | 'memory';
