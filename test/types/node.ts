import { createServer } from 'node:http';
import { expectTypeOf } from 'expect-type';
import { SessionEngine } from '../../src/core/engine.ts';
import type { Session, SessionData } from '../../src/core/session.ts';
import { commitSession, getSession, session } from '../../src/frameworks/node.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

const engine = new SessionEngine({ store: new MemoryStore(), secrets: ['x'.repeat(32)] });

createServer(
  session(engine, async (req, res, session) => {
    expectTypeOf(session).toEqualTypeOf<Session<SessionData>>();
    expectTypeOf(getSession(engine, req)).toEqualTypeOf<Session<SessionData>>();
    expectTypeOf(session.get('user')).resolves.toEqualTypeOf<string | undefined>();
    // @ts-expect-error count is a number
    await session.set('count', 'one');
    // @ts-expect-error not a key of SessionData
    await session.get('nope');
    res.end();
  }),
);

createServer(async (req, res) => {
  const session = getSession(engine, req);
  await session.set('count', 1);
  // @ts-expect-error the response is needed to set the cookie
  await commitSession(req);
  await commitSession(req, res);
  res.end();
});
