import { expectTypeOf } from 'expect-type';
import express, { type RequestHandler } from 'express';
import { SessionEngine } from '../../src/core/engine.ts';
import type { Session, SessionData } from '../../src/core/session.ts';
import { commitSession, session } from '../../src/frameworks/express.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

const engine = new SessionEngine({ store: new MemoryStore(), secrets: ['x'.repeat(32)] });
const app = express();
expectTypeOf(session(engine)).toEqualTypeOf<RequestHandler>();
app.use(session({ store: new MemoryStore(), secrets: 'x'.repeat(32) }));
// @ts-expect-error the options need a store
session({ secrets: 'x'.repeat(32) });

app.get('/', async (req, res) => {
  expectTypeOf(req.session).toEqualTypeOf<Session<SessionData>>();
  expectTypeOf(req.session.get('user')).resolves.toEqualTypeOf<string | undefined>();
  expectTypeOf(req.session.get('count')).resolves.toEqualTypeOf<number | undefined>();
  await req.session.set('count', 1);
  // @ts-expect-error count is a number
  await req.session.set('count', 'one');
  // @ts-expect-error not a key of SessionData
  await req.session.get('nope');
  await commitSession(req);
  res.end();
});
