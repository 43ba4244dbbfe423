// stores: redis
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { createCluster, type RedisClusterType } from 'redis';
import type { Store } from '../../src/core/store.ts';
import { RedisStore, type RedisStoreOptions } from '../../src/stores/redis/index.ts';
import { runStoreConformance } from '../../src/testing/index.ts';
import { type RedisClusterHandle, startRedisCluster } from '../support/redis-servers.ts';

let cluster: RedisClusterHandle;
let nodeRedis: RedisClusterType;
let ioredis: Cluster;

before(async () => {
  const started = Date.now();
  cluster = await startRedisCluster();
  nodeRedis = createCluster({ rootNodes: cluster.nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })) });
  nodeRedis.on('error', () => {}); // as the docs say: an unheard 'error' from node-redis ends the process
  await nodeRedis.connect();
  ioredis = new Cluster(cluster.nodes);
  ioredis.on('error', () => {});
  console.log(`3-master cluster ready in ${Date.now() - started} ms`);
});
after(async () => {
  await nodeRedis?.close();
  ioredis?.disconnect();
  await cluster?.stop();
});

function shared(options: () => RedisStoreOptions) {
  return {
    createStore: () => new RedisStore({ ...options(), prefix: `tessera-test:${randomBytes(6).toString('hex')}:` }),
    async writeCorruptRecord(store: Store, key: string) {
      const redisKey = (store as RedisStore).prefix + key;
      await nodeRedis.hSet(redisKey, { createdAt: String(Date.now()), expiresAt: 'soon' });
      await nodeRedis.pExpire(redisKey, 60_000);
    },
    async cleanup(store: Store) {
      // Keys spread over every master; each is deleted on the node that owns it.
      for (const master of nodeRedis.masters) {
        const node = await nodeRedis.nodeClient(master);
        for await (const keys of node.scanIterator({ MATCH: `${(store as RedisStore).prefix}*`, COUNT: 1000 })) {
          for (const key of keys) await node.unlink(key);
        }
      }
    },
  };
}

const hooks = { describe, it, beforeEach, afterEach };
runStoreConformance(hooks, {
  name: 'redis cluster (node-redis createCluster)',
  ...shared(() => ({ client: nodeRedis })),
});
runStoreConformance(hooks, { name: 'redis cluster (ioredis Cluster)', ...shared(() => ({ client: ioredis })) });
