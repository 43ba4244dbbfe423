// Type tests of the express-session compatibility, checked by `tsc -p test/types/compat/tsconfig.json`, a
// program without Tessera's framework adapters. The root tsconfig also sees this file; there,
// `session` on the request is Tessera's (src/ comes first and skipLibCheck hides the clash), so
// these tests assert on the store types only, never on the request's `session`.
import type { RedisStore } from 'connect-redis';
import { expectTypeOf } from 'expect-type';
import express from 'express';
import session from 'express-session';
import type { Store as TesseraStore } from '../../../src/core/store.ts';
import {
  type ExpressSessionStoreAdapter,
  fromExpressSessionStore,
  toExpressSessionStore,
} from '../../../src/stores/express-session.ts';
import { MemoryStore } from '../../../src/stores/memory.ts';

const tessera = new MemoryStore();

// Extending express-session's Store class types the result as one.
const store = toExpressSessionStore(tessera, {
  Store: session.Store,
  userId: (s) => (typeof s.user === 'string' ? s.user : null),
});
expectTypeOf(store).toExtend<session.Store>();
expectTypeOf(store).toExtend<ExpressSessionStoreAdapter>();
expectTypeOf(store.store).toEqualTypeOf<TesseraStore>();

const app = express();
app.use(session({ secret: 'x'.repeat(32), resave: false, saveUninitialized: false, store }));

// Without the Store option it is the callback interface only, which express-session does not accept.
// @ts-expect-error express-session needs a Store (pass { Store: session.Store })
session({ secret: 'x'.repeat(32), store: toExpressSessionStore(tessera) });
// @ts-expect-error a Tessera store is not an express-session store
session({ secret: 'x'.repeat(32), store: tessera });
// @ts-expect-error ttlSeconds is a number of seconds
toExpressSessionStore(tessera, { ttlSeconds: '1d' });

// The other way: any express-session store under the Tessera engine.
expectTypeOf(fromExpressSessionStore(new session.MemoryStore())).toEqualTypeOf<TesseraStore>();
declare const redis: RedisStore;
expectTypeOf(fromExpressSessionStore(redis, { name: 'connect-redis' })).toEqualTypeOf<TesseraStore>();
// @ts-expect-error a Tessera store is not an express-session store
fromExpressSessionStore(tessera);
