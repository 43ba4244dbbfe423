/** Bare Fastify, no sessions: the ceiling of the Fastify variants. */
import Fastify from 'fastify';
import { announce, serverEnv } from './shared.ts';

const env = serverEnv();
const app = Fastify({ logger: false });
let count = 0;

app.get('/rmw', async () => ({ count: ++count }));
app.get('/read', async () => ({ count }));
app.get('/new', async () => ({ count: 0 }));
app.get('/anon', async () => ({ ok: true }));

await app.listen({ port: env.port, host: '127.0.0.1' });
announce({ close: () => app.close() });
