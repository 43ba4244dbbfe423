import { expectTypeOf } from 'expect-type';
import { SessionEngine } from '../../src/core/engine.ts';
import type { Session, SessionData } from '../../src/core/session.ts';
import { commitSession, getSession, session } from '../../src/frameworks/fetch.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

const engine = new SessionEngine({ store: new MemoryStore(), secrets: ['x'.repeat(32)] });

export async function loader(request: Request): Promise<Response> {
  const session = getSession(engine, request);
  expectTypeOf(session).toEqualTypeOf<Session<SessionData>>();
  expectTypeOf(session.get('user')).resolves.toEqualTypeOf<string | undefined>();
  // @ts-expect-error count is a number
  await session.set('count', 'one');
  // @ts-expect-error not a key of SessionData
  await session.get('nope');
  const headers = await commitSession(session, request);
  expectTypeOf(headers).toEqualTypeOf<Headers>();
  return Response.json({ user: await session.get('user') }, { headers });
}

// Route handler style: runtime arguments after the request keep their types.
export const GET = session(engine, async (_request, session, context: { params: Promise<{ id: string }> }) => {
  expectTypeOf(session.get('count')).resolves.toEqualTypeOf<number | undefined>();
  return Response.json({ id: (await context.params).id });
});
expectTypeOf(GET).parameters.toEqualTypeOf<[Request, { params: Promise<{ id: string }> }]>();
expectTypeOf(GET).returns.resolves.toEqualTypeOf<Response>();

// @ts-expect-error a handler must return a Response
session(engine, async () => 'text');
