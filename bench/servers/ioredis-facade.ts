import type { Redis } from 'ioredis';

/**
 * connect-redis 8+ speaks only node-redis (`set(key, value, { expiration })`, `del([keys])`);
 * version 7 accepted ioredis directly. This maps the four calls an express-session store makes
 * onto an ioredis client, one Redis command each, as connect-redis 7 sent them.
 */
export function ioredisForConnectRedis(client: Redis) {
  return {
    get: (key: string) => client.get(key),
    set: (key: string, value: string, options?: { expiration?: { type: 'EX'; value: number } }) =>
      options?.expiration ? client.set(key, value, 'EX', options.expiration.value) : client.set(key, value),
    expire: (key: string, seconds: number) => client.expire(key, seconds),
    del: (keys: string[]) => client.del(...keys),
    mGet: (keys: string[]) => client.mget(...keys),
  };
}
