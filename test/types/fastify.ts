import { expectTypeOf } from 'expect-type';
import Fastify from 'fastify';
import { SessionEngine } from '../../src/core/engine.ts';
import type { Session, SessionData } from '../../src/core/session.ts';
import { session } from '../../src/frameworks/fastify.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

interface Cart {
  items: string[];
}

export async function fastifyTypes(): Promise<void> {
  const app = Fastify();
  const engine = new SessionEngine({ store: new MemoryStore(), secrets: ['x'.repeat(32)] });
  await app.register(session, { engine });
  await app.register(session, { store: new MemoryStore(), secrets: 'x'.repeat(32), idleTimeoutSeconds: 60 });
  await app.register(session, {
    engine: new SessionEngine<Cart>({ store: new MemoryStore(), secrets: 'x'.repeat(32) }),
  });
  // @ts-expect-error the options need a store (or an engine)
  await app.register(session, { secrets: 'x'.repeat(32) });
  // @ts-expect-error an unknown option
  await app.register(session, { store: new MemoryStore(), secrets: 'x'.repeat(32), idleTimeout: 60 });

  app.get('/', async (request) => {
    expectTypeOf(request.session).toEqualTypeOf<Session<SessionData>>();
    expectTypeOf(request.session.get('user')).resolves.toEqualTypeOf<string | undefined>();
    await request.session.set('count', 1);
    // @ts-expect-error count is a number
    await request.session.set('count', 'one');
    // @ts-expect-error not a key of SessionData
    await request.session.get('nope');
    return { user: await request.session.get('user') };
  });
}
