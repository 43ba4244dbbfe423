import { expectTypeOf } from 'expect-type';
import Koa, { type DefaultContext, type DefaultState, type Middleware } from 'koa';
import { SessionEngine } from '../../src/core/engine.ts';
import type { Session, SessionData } from '../../src/core/session.ts';
import { session } from '../../src/frameworks/koa.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

const engine = new SessionEngine({ store: new MemoryStore(), secrets: ['x'.repeat(32)] });
const app = new Koa();
expectTypeOf(session(engine)).toEqualTypeOf<Middleware<DefaultState, DefaultContext>>();
app.use(session(engine));

app.use(async (ctx) => {
  // Koa's DefaultContext has an `any` index signature: the augmentation must still win.
  expectTypeOf(ctx.session).not.toBeAny();
  expectTypeOf(ctx.session).toEqualTypeOf<Session<SessionData>>();
  expectTypeOf(ctx.session.get('user')).resolves.toEqualTypeOf<string | undefined>();
  await ctx.session.set('count', 1);
  // @ts-expect-error count is a number
  await ctx.session.set('count', 'one');
  // @ts-expect-error not a key of SessionData
  await ctx.session.get('nope');
});

// Apps with their own state and context types see it too.
const typed = new Koa<{ requestId: string }, { locale: string }>();
typed.use(async (ctx) => {
  expectTypeOf(ctx.session.get('count')).resolves.toEqualTypeOf<number | undefined>();
  expectTypeOf(ctx.locale).toEqualTypeOf<string>();
});
