import * as v from 'valibot';
import { oneOf, type Same, text } from '../core/check.ts';
import { type SessionOptions, sessionFileSchema } from '../core/options.ts';
import { cacheLimitsSchema } from '../stores/cache/index.ts';

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
  /** A store URL, or `{ kind?, url?, ...the store's options }`. */
  store: string | StoreConfig;
  /** Engine options (all but `store` and the function- and object-valued ones). */
  session?: Omit<SessionOptions, 'store' | 'logger' | 'now' | 'serializer' | 'encryption' | 'schema'>;
  /** Put the local read tier in front (`tessera/cache`); invalidation follows the store. */
  cache?: CacheConfig;
}

/** The local read tier's limits (`CachedStoreOptions`), and where invalidations come from. */
export interface CacheConfig {
  /** @default 10000 */
  maxEntries?: number;
  /** Estimated bytes of cached records (keys and values, UTF-16). @default 16777216 (16 MiB) */
  maxBytes?: number;
  /** The longest a cached record is served without going back to the store. @default 60000 */
  maxStalenessMs?: number;
  /**
   * A Redis URL whose pub/sub carries invalidations: needed in front of any store but Redis
   * (whose own server tracks what the cache holds) and memory.
   * @default the store's URL, for a Redis store
   */
  invalidationUrl?: string;
}

/** A store's kind and its options. */
export interface StoreConfig {
  /**
   * `redis`, `sql`, `elasticsearch`, `opensearch` or `memory`; implied by `url` when omitted.
   * (Not `type`: the Elasticsearch store keeps that name for a mapping type.)
   */
  kind?: StoreType;
  /** The store's URL, whose scheme tells its kind: `redis://`, `sqlite:`, `postgres://`, `elasticsearch+https://`, `memory:`... */
  url?: string;
  [option: string]: unknown;
}

export type StoreType = 'redis' | 'sql' | 'elasticsearch' | 'opensearch' | 'memory';

/** The kinds of store, as {@link StoreConfig.kind} names them. */
export const STORE_TYPES = ['redis', 'sql', 'elasticsearch', 'opensearch', 'memory'] as const;

/** {@link CacheConfig} as a schema. */
export const cacheConfigSchema = v.strictObject({ ...cacheLimitsSchema.entries, invalidationUrl: v.optional(text()) });

/** A store block's kind and URL, as a schema (the rest is the store's to check). */
export const storeSchema = v.looseObject({ kind: v.optional(oneOf(STORE_TYPES)), url: v.optional(text()) });

/**
 * {@link TesseraConfig} as a schema, but for the store block's own options: the store checks
 * those (`store.prefix: ...`), so here it is a URL or an object with a known kind.
 */
export const configSchema = v.strictObject({
  store: v.union([text(), storeSchema], 'must be a store URL or an object of store options'),
  session: v.optional(sessionFileSchema),
  cache: v.optional(cacheConfigSchema),
});
const sessionSame: Same<v.InferInput<typeof sessionFileSchema>, NonNullable<TesseraConfig['session']>> = true;
const cacheSame: Same<v.InferInput<typeof cacheConfigSchema>, CacheConfig> = true;
const kindSame: Same<(typeof STORE_TYPES)[number], StoreType> = true;
void [sessionSame, cacheSame, kindSame];
