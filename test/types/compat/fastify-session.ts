// Type tests of the @fastify/session compatibility, checked by `tsc -p test/types/compat/tsconfig.json`, a
// program without Tessera's framework adapters. The root tsconfig also sees this file; there,
// `session` on the request is Tessera's (src/ comes first and skipLibCheck hides the clash), so
// these tests assert on the store types only, never on the request's `session`.
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { expectTypeOf } from 'expect-type';
import Fastify from 'fastify';
import { toExpressSessionStore } from '../../../src/stores/express-session.ts';
import { MemoryStore } from '../../../src/stores/memory.ts';

export async function fastifySessionTypes(): Promise<void> {
  const app = Fastify();
  await app.register(fastifyCookie);
  // @fastify/session needs only the callback interface: no Store option.
  const store = toExpressSessionStore(new MemoryStore());
  expectTypeOf(store).toExtend<fastifySession.SessionStore>();
  await app.register(fastifySession, { secret: 'x'.repeat(32), store });
  // @ts-expect-error @fastify/session calls the store with callbacks; a Tessera store has none
  await app.register(fastifySession, { secret: 'x'.repeat(32), store: new MemoryStore() });
}
