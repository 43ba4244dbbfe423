// express-session's own stores as fromExpressSessionStore's argument, in a strict user project
// (exactOptionalPropertyTypes): their cookie fields are `number | undefined` and `number | null`,
// which a structural type without `| undefined` refuses (TS2345).
import { RedisStore } from 'connect-redis';
import session from 'express-session';
import { createClient } from 'redis';
import { SessionEngine } from 'tessera';
import { fromExpressSessionStore, toExpressSessionStore } from 'tessera/express-session';
import { memoryStore } from 'tessera/memory';

const secrets = [process.env.SESSION_SECRET];
export const onMemoryStore = new SessionEngine({ store: fromExpressSessionStore(new session.MemoryStore()), secrets });
export const onConnectRedis = new SessionEngine({
  store: fromExpressSessionStore(new RedisStore({ client: createClient() }), { name: 'connect-redis' }),
  secrets,
});
// And the other way round: a Tessera store is an express-session store.
export const underExpressSession = session({
  secret: 'x'.repeat(32),
  store: toExpressSessionStore(memoryStore(), { Store: session.Store }),
});
