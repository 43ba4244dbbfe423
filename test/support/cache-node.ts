// A second process for the cache coherence test: it keeps a cached Redis-backed store and
// answers "is this session still there?" over IPC, like another app server would.
import { SessionEngine } from '../../src/core/engine.ts';
import { CachedStore, redisTracking } from '../../src/stores/cache/index.ts';
import { RedisStore } from '../../src/stores/redis/index.ts';

const [url = '', prefix = '', secret = ''] = process.argv.slice(2);
const store = new CachedStore({ store: new RedisStore({ url, prefix }), invalidation: redisTracking({ url, prefix }) });
const engine = new SessionEngine<Record<string, unknown>>({ store, secrets: [secret] });

process.on('message', async (message: { id: number; cookie: string } | 'close') => {
  if (message === 'close') {
    await engine.close();
    process.disconnect();
    return;
  }
  const session = engine.session(message.cookie);
  const user = await session.get('user');
  process.send?.({ id: message.id, user: user ?? null, stats: store.stats() });
});
await store.start();
process.send?.('ready');
