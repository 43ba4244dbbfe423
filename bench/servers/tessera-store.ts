/** The store of a Tessera benchmark server, as `BENCH_STORE` says. */
import { SessionEngine } from '../../src/core/engine.ts';
import type { Store } from '../../src/core/store.ts';
import { type BenchData, SECRET, type ServerEnv } from './shared.ts';

async function createStore(env: ServerEnv): Promise<Store> {
  switch (env.store) {
    case 'redis': {
      const { redisStore } = await import('../../src/stores/redis/index.ts');
      return redisStore({ url: env.redisUrl, prefix: env.prefix });
    }
    case 'redis-cached': {
      const { redisStore } = await import('../../src/stores/redis/index.ts');
      const { CachedStore, redisTracking } = await import('../../src/stores/cache/index.ts');
      const store = new CachedStore({
        store: redisStore({ url: env.redisUrl, prefix: env.prefix }),
        invalidation: redisTracking({ url: env.redisUrl, prefix: env.prefix }),
      });
      await store.start();
      return store;
    }
    case 'postgres': {
      const { sqlStore } = await import('../../src/stores/sql/index.ts');
      const store = sqlStore({ url: env.pgUrl, table: env.pgTable });
      await store.ready();
      return store;
    }
    default:
      throw new Error(`[bench] unknown BENCH_STORE "${env.store}" (redis, redis-cached, postgres)`);
  }
}

/** The engine every Tessera server uses: defaults except the store and the secret. */
export async function createEngine(env: ServerEnv): Promise<SessionEngine<BenchData>> {
  return new SessionEngine<BenchData>({ store: await createStore(env), secrets: [SECRET] });
}
