/**
 * `tessera/redis`: the Redis store. One hash per session, Redis expiry on every write, atomic
 * single-key Lua scripts, a per-user index, and any node-redis or ioredis client (standalone,
 * Cluster, Sentinel).
 */
export type {
  IORedisClusterLike,
  IORedisLike,
  NodeRedisClientLike,
  NodeRedisClusterLike,
  NodeRedisSentinelLike,
  RedisClientKind,
  RedisClientLike,
} from './clients.ts';
export {
  type DurableCommit,
  type ParsedRedisUrl,
  parseRedisUrl,
  type RedisStoreOptions,
} from './options.ts';
export { RedisStore, redisStore } from './store.ts';
