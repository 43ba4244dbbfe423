/**
 * `tessera migrate`'s rate: N sessions (default 100,000) written to a SQLite file, then copied
 * SQLite -> Redis -> PostgreSQL by the CLI binary (from source, through tsx), each hop timed by
 * the command itself (its `seconds` and `perSecond`). Prints a Markdown table with the machine's
 * load average before each hop. Not a test; run it when the machine is otherwise quiet.
 *
 *   node --import tsx bench/migrate.ts [--n 100000]
 *
 * Redis at TESSERA_REDIS_URL (default redis://127.0.0.1:6379, keys under a random prefix, deleted
 * afterwards), PostgreSQL at TESSERA_PG_URL (default postgres://postgres@127.0.0.1:5432/test, a
 * random table, dropped afterwards).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { createClient } from 'redis';
import { generateId, hashId } from '../src/core/ids.ts';
import type { SessionRecord } from '../src/core/store.ts';
import { SqlStore } from '../src/stores/sql/index.ts';

const { values: args } = parseArgs({ options: { n: { type: 'string', default: '100000' } } });
const N = Number(args.n);
const PG_URL = process.env.TESSERA_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.TESSERA_REDIS_URL ?? 'redis://127.0.0.1:6379';
const suffix = randomBytes(4).toString('hex');
const prefix = `tessera-bench-migrate-${suffix}:`;
const table = `tessera_bench_migrate_${suffix}`;
const dir = mkdtempSync(join(os.tmpdir(), 'tessera-bench-migrate-'));
const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

const files = {
  sqlite: join(dir, 'sqlite.json'),
  redis: join(dir, 'redis.json'),
  postgres: join(dir, 'postgres.json'),
};
writeFileSync(files.sqlite, JSON.stringify({ store: `sqlite:${join(dir, 'sessions.db')}` }));
writeFileSync(files.redis, JSON.stringify({ store: { url: REDIS_URL, prefix } }));
writeFileSync(files.postgres, JSON.stringify({ store: { url: PG_URL, table } }));

/** Sessions shaped like an app's: a few fields, a user on one in four. */
function sessions(n: number): [string, SessionRecord][] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => [
    hashId(generateId()),
    {
      fields: {
        cart: JSON.stringify([`sku-${i % 977}`, `sku-${i % 131}`]),
        visits: String(i % 40),
        locale: '"en-GB"',
        csrf: JSON.stringify(randomBytes(16).toString('base64url')),
      },
      createdAt: now - (i % 5000) * 60_000,
      expiresAt: now + 3_600_000 + (i % 3600) * 1000,
      userId: i % 4 === 0 ? `user-${i % 20011}` : null,
    },
  ]);
}

async function hop(from: string, to: string, name: string) {
  const load = os.loadavg()[0]?.toFixed(2);
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'src/cli/index.ts', '--json', 'migrate', '--from', from, '--to', to],
    { cwd: root, maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as { copied: number; seconds: number; perSecond: number };
  if (result.copied !== N) throw new Error(`${name}: copied ${result.copied} of ${N}`);
  return { name, load, ...result };
}

try {
  const seed = new SqlStore({ url: `sqlite:${join(dir, 'sessions.db')}` });
  await seed.setMany(sessions(N));
  await seed.close();
  const rows = [
    await hop(files.sqlite, files.redis, 'SQLite -> Redis'),
    await hop(files.redis, files.postgres, 'Redis -> PostgreSQL'),
  ];
  console.log(`tessera migrate, ${N} sessions, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})\n`);
  console.log('| hop | sessions/s | seconds | load average (1 min) before |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.perSecond} | ${r.seconds} | ${r.load} |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  const redis = createClient({ url: REDIS_URL });
  redis.on('error', () => {});
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) await redis.del(keys);
  }
  await redis.close();
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS ${table}`);
  await client.end();
}
