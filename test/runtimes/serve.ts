// Serves test/runtimes/app.ts on Bun (Bun.serve) or Deno (Deno.serve), whichever runs it, with the
// store STORE names (memory, or redis at REDIS_URL under REDIS_PREFIX); prints `listening <port>`.
import { MemoryStore } from '../../src/stores/memory.ts';
import { redisStore } from '../../src/stores/redis/index.ts';
import { makeApp } from './app.ts';

interface BunLike {
  serve(options: { port: number; hostname: string; fetch: (request: Request) => Promise<Response> }): { port: number };
}
interface DenoLike {
  serve(
    options: { port: number; hostname: string; onListen(address: { port: number }): void },
    handler: (request: Request) => Promise<Response>,
  ): unknown;
}
const { Bun, Deno } = globalThis as { Bun?: BunLike; Deno?: DenoLike };

const env = process.env;
const store = env.STORE === 'redis' ? redisStore({ url: env.REDIS_URL, prefix: env.REDIS_PREFIX }) : new MemoryStore();
if (Bun) {
  const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: makeApp(store, 'bun') });
  console.log(`listening ${server.port}`);
} else if (Deno) {
  Deno.serve(
    { port: 0, hostname: '127.0.0.1', onListen: ({ port }) => console.log(`listening ${port}`) },
    makeApp(store, 'deno'),
  );
} else {
  throw new Error('serve.ts runs on Bun or Deno');
}
