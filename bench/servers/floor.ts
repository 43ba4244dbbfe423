/**
 * The floor: what a session costs written by hand, with no library, against which Tessera's own
 * cost is measured. `BENCH_FRAMEWORK` picks Express or Fastify, `BENCH_STORE` Redis, PostgreSQL, or
 * `memory`: records in a Map in the server, the least any cached read can cost (the floor of the
 * read tier's reads).
 *
 * Per request it does the least a server-side session needs and nothing more: parse the Cookie
 * header, look the session up in one round trip, and on a write send the new value with a fresh
 * expiry in one more (Redis: `HSET` and `PEXPIRE` written together; PostgreSQL: one `UPDATE`).
 * The cookie is an unsigned random ID and the key is the ID itself: no HMAC, no hashing, no
 * expiry checks, no concurrency control, no failure policy. Tessera does all of these, so its
 * distance from this floor is the price of them plus whatever it wastes.
 */
import { randomBytes } from 'node:crypto';
import { parse, serialize } from 'cookie';
import express from 'express';
import Fastify from 'fastify';
import { announce, serverEnv } from './shared.ts';

const env = serverEnv();
const COOKIE = 'floor.sid';
const TTL_MS = 900_000;

interface Backend {
  read(id: string): Promise<number | null>;
  write(id: string, count: number): Promise<void>;
  create(id: string): Promise<void>;
  close(): Promise<void>;
}

async function redisBackend(): Promise<Backend> {
  const { createClient } = await import('redis');
  const client = createClient({ url: env.redisUrl, disableOfflineQueue: true });
  client.on('error', (error: Error) => console.error('[floor] redis:', error.message));
  await client.connect();
  const key = (id: string) => env.prefix + id;
  const put = async (id: string, count: number) => {
    await Promise.all([client.hSet(key(id), 'count', String(count)), client.pExpire(key(id), TTL_MS)]);
  };
  return {
    async read(id) {
      // The whole hash, as a session store reads it.
      const value = (await client.hGetAll(key(id))).count;
      return value === undefined ? null : Number(value);
    },
    write: put,
    create: (id) => put(id, 0),
    close: () => client.close(),
  };
}

async function postgresBackend(): Promise<Backend> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: env.pgUrl, max: 10 });
  pool.on('error', (error: Error) => console.error('[floor] postgres:', error.message));
  const table = env.pgTable;
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, data text NOT NULL, expires_at bigint NOT NULL)`,
  );
  // Named statements: each connection prepares them once.
  const select = { name: 'floor-select', text: `SELECT data FROM ${table} WHERE id = $1` };
  const update = { name: 'floor-update', text: `UPDATE ${table} SET data = $2, expires_at = $3 WHERE id = $1` };
  const insert = { name: 'floor-insert', text: `INSERT INTO ${table} (id, data, expires_at) VALUES ($1, $2, $3)` };
  return {
    async read(id) {
      const { rows } = await pool.query<{ data: string }>({ ...select, values: [id] });
      const row = rows[0];
      return row ? (JSON.parse(row.data) as { count: number }).count : null;
    },
    async write(id, count) {
      await pool.query({ ...update, values: [id, JSON.stringify({ count }), Date.now() + TTL_MS] });
    },
    async create(id) {
      await pool.query({ ...insert, values: [id, JSON.stringify({ count: 0 }), Date.now() + TTL_MS] });
    },
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    },
  };
}

/** Records as JSON in a Map of this process: a cached read with nothing around it. */
function memoryBackend(): Backend {
  const records = new Map<string, string>();
  const put = async (id: string, count: number) => {
    records.set(id, JSON.stringify({ count }));
  };
  return {
    async read(id) {
      const text = records.get(id);
      return text === undefined ? null : (JSON.parse(text) as { count: number }).count;
    },
    write: put,
    create: (id) => put(id, 0),
    async close() {},
  };
}

const backend =
  env.store === 'postgres' ? await postgresBackend() : env.store === 'memory' ? memoryBackend() : await redisBackend();

const idOf = (header: string | undefined) => (header ? parse(header)[COOKIE] : undefined);
const newCookie = (id: string) =>
  serialize(COOKIE, id, { path: '/', httpOnly: true, sameSite: 'lax', expires: new Date(Date.now() + TTL_MS) });

/** The four routes, framework-free: each returns the body and, for `/new`, the cookie to set. */
const routes = {
  async read(cookie: string | undefined) {
    const id = idOf(cookie);
    return { body: { count: id ? await backend.read(id) : null } };
  },
  async rmw(cookie: string | undefined) {
    const id = idOf(cookie);
    const count = ((id ? await backend.read(id) : null) ?? 0) + 1;
    if (id) await backend.write(id, count);
    return { body: { count } };
  },
  async new() {
    const id = randomBytes(32).toString('base64url');
    await backend.create(id);
    return { body: { count: 0 }, setCookie: newCookie(id) };
  },
};

if (process.env.BENCH_FRAMEWORK === 'fastify') {
  const app = Fastify({ logger: false });
  app.get('/read', (request) => routes.read(request.headers.cookie).then((r) => r.body));
  app.get('/rmw', (request) => routes.rmw(request.headers.cookie).then((r) => r.body));
  app.get('/new', async (_request, reply) => {
    const { body, setCookie } = await routes.new();
    reply.header('set-cookie', setCookie);
    return body;
  });
  app.get('/anon', async () => ({ ok: true }));
  await app.listen({ port: env.port, host: '127.0.0.1' });
  announce({ close: () => app.close() }, () => backend.close());
} else {
  const app = express();
  const fail = (res: express.Response) => (error: Error) => res.status(503).json({ error: error.message });
  app.get('/read', (req, res) => {
    routes.read(req.headers.cookie).then((r) => res.json(r.body), fail(res));
  });
  app.get('/rmw', (req, res) => {
    routes.rmw(req.headers.cookie).then((r) => res.json(r.body), fail(res));
  });
  app.get('/new', (_req, res) => {
    routes.new().then(({ body, setCookie }) => {
      res.append('Set-Cookie', setCookie);
      res.json(body);
    }, fail(res));
  });
  app.get('/anon', (_req, res) => {
    res.json({ ok: true });
  });
  const server = app.listen(env.port, '127.0.0.1', () => announce(server, () => backend.close()));
}
