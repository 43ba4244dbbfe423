import { expectTypeOf } from 'expect-type';
import { Hono, type MiddlewareHandler } from 'hono';
import { SessionEngine } from '../../src/core/engine.ts';
import type { Session, SessionData } from '../../src/core/session.ts';
import { type SessionEnv, session } from '../../src/frameworks/hono.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

const engine = new SessionEngine({ store: new MemoryStore(), secrets: ['x'.repeat(32)] });

// Through ContextVariableMap: any Hono app.
const app = new Hono();
expectTypeOf(session(engine)).toEqualTypeOf<MiddlewareHandler<SessionEnv<SessionData>>>();
app.use(session(engine));
app.get('/', async (c) => {
  expectTypeOf(c.get('session')).toEqualTypeOf<Session<SessionData>>();
  expectTypeOf(c.var.session.get('user')).resolves.toEqualTypeOf<string | undefined>();
  await c.get('session').set('count', 1);
  // @ts-expect-error count is a number
  await c.get('session').set('count', 'one');
  // @ts-expect-error not a key of SessionData
  await c.get('session').get('nope');
  return c.text('ok');
});

// Through Env variables: an app typed with its own session data.
interface Cart {
  items: string[];
}
const shop = new Hono<SessionEnv<Cart>>();
shop.use(session(new SessionEngine<Cart>({ store: new MemoryStore(), secrets: ['x'.repeat(32)] })));
shop.get('/', async (c) => {
  expectTypeOf(c.get('session').get('items')).resolves.toEqualTypeOf<string[] | undefined>();
  // @ts-expect-error items is a list
  await c.get('session').set('items', 'book');
  return c.json(await c.var.session.get('items'));
});
