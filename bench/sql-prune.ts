/**
 * How fast `prune()` deletes expired sessions, per database: fills 100,000 expired and 1,000
 * live sessions (multi-row INSERTs in one transaction), times `prune()`, checks that every live
 * session is left, and prints a Markdown table. Not a test.
 *
 *   node --import tsx bench/sql-prune.ts [--rounds 3] [--batch 1000] [--expired 100000] [--live 1000]
 *
 * Databases: SQLite (a file in a temp dir), PostgreSQL (TESSERA_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/test), MariaDB (TESSERA_MYSQL_URL, default
 * mysql://root@127.0.0.1:3306/test). Tables get random names and are dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from 'kysely';
import mysql from 'mysql2';
import pg from 'pg';
import { generateId, hashId } from '../src/core/ids.ts';
import type { SessionRecord } from '../src/core/store.ts';
import { SqlStore } from '../src/stores/sql/index.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    batch: { type: 'string', default: '1000' },
    expired: { type: 'string', default: '100000' },
    live: { type: 'string', default: '1000' },
  },
});
const ROUNDS = Number(args.rounds);
const BATCH = Number(args.batch);
const EXPIRED = Number(args.expired);
const LIVE = Number(args.live);
const PG_URL = process.env.TESSERA_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.TESSERA_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

interface Target {
  label: string;
  /** Our own Kysely instance: the store uses it, the bench drops tables through it. */
  db: Kysely<object>;
  version(): Promise<string>;
}

interface Row {
  label: string;
  version: string;
  fillSeconds: number;
  pruneSeconds: number[];
  batches: number;
  liveKept: number;
}

function sessions(count: number, lifetimeMs: number): [string, SessionRecord][] {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => [
    hashId(generateId()),
    {
      fields: {
        user: JSON.stringify(`user-${i}`),
        cart: '[{"sku":"A-1","qty":2}]',
        csrf: JSON.stringify(generateId()),
      },
      createdAt: now - 7_200_000,
      expiresAt: now + lifetimeMs,
      userId: i % 10 === 0 ? `user-${i}` : null,
    },
  ]);
}

async function measure(target: Target): Promise<Row> {
  const table = `tessera_bench_${randomBytes(5).toString('hex')}`;
  let batches = 0;
  const logger = {
    debug: (object: object, message?: string) => {
      if (message === 'prune') batches = (object as { batches: number }).batches;
    },
    warn: () => {},
    error: () => {},
  };
  const store = new SqlStore({ db: target.db, table, pruneBatchSize: BATCH, logger });
  const row: Row = {
    label: target.label,
    version: await target.version(),
    fillSeconds: 0,
    pruneSeconds: [],
    batches: 0,
    liveKept: 0,
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const live = sessions(LIVE, 3_600_000);
      const expired = sessions(EXPIRED, -60_000);
      // Live rows spread among the expired ones, as in a real table.
      const all: [string, SessionRecord][] = [];
      const stride = Math.max(1, Math.floor(EXPIRED / Math.max(1, LIVE)));
      for (let i = 0, l = 0; i < EXPIRED; i++) {
        if (i % stride === 0 && l < LIVE) all.push(live[l++]!);
        all.push(expired[i]!);
      }
      const filled = performance.now();
      await store.setMany(all);
      const pruning = performance.now();
      row.fillSeconds = (pruning - filled) / 1000;
      const deleted = await store.prune();
      row.pruneSeconds.push((performance.now() - pruning) / 1000);
      if (deleted !== EXPIRED) throw new Error(`${target.label}: prune deleted ${deleted} rows, expected ${EXPIRED}`);
      row.batches = batches;
      let kept = 0;
      for (const [key] of live) if (await store.get(key)) kept++;
      row.liveKept = kept;
      for (const [key] of live) await store.destroy(key);
    }
  } finally {
    await store.close();
    await sql`drop table if exists ${sql.table(table)}`.execute(target.db);
  }
  return row;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const thousands = (value: number) => Math.round(value).toLocaleString('en-US');

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'tessera-bench-sql-'));
  const sqlite = new Database(join(dir, 'sessions.db'));
  // The settings the store gives a file it opens from a URL.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  const pgPool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  const mysqlPool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
  const targets: Target[] = [
    {
      label: 'SQLite (file, WAL)',
      db: new Kysely({ dialect: new SqliteDialect({ database: sqlite }) }),
      version: async () => `SQLite ${(sqlite.prepare('select sqlite_version() as v').get() as { v: string }).v}`,
    },
    {
      label: 'PostgreSQL',
      db: new Kysely({ dialect: new PostgresDialect({ pool: pgPool }) }),
      version: async () => `PostgreSQL ${(await pgPool.query('show server_version')).rows[0].server_version}`,
    },
    {
      label: 'MariaDB',
      db: new Kysely({ dialect: new MysqlDialect({ pool: mysqlPool }) }),
      version: async () => {
        const [rows] = await mysqlPool.promise().query('select version() as v');
        return `MariaDB ${(rows as { v: string }[])[0]?.v}`;
      },
    },
  ];

  const rows: (Row | { label: string; error: string })[] = [];
  for (const target of targets) {
    process.stderr.write(`${target.label}: filling and pruning, ${ROUNDS} round(s)...\n`);
    try {
      rows.push(await measure(target));
    } catch (error) {
      rows.push({ label: target.label, error: (error as Error).message });
    }
  }
  await Promise.all(targets.map((t) => t.db.destroy()));
  rmSync(dir, { recursive: true, force: true });

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `Prune of ${thousands(EXPIRED)} expired sessions among ${thousands(LIVE)} live ones, ` +
      `batches of ${thousands(BATCH)} rows, median of ${ROUNDS} round(s).`,
  );
  console.log(
    `Machine: ${cpu}, ${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)}; Node ${process.version}.`,
  );
  console.log('');
  console.log('| database | version | fill (multi-row INSERT) | prune | rows/s | batches | live kept |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    if ('error' in row) {
      console.log(`| ${row.label} | unavailable: ${row.error} | | | | | |`);
      continue;
    }
    const seconds = median(row.pruneSeconds);
    console.log(
      `| ${row.label} | ${row.version} | ${row.fillSeconds.toFixed(2)} s | ${seconds.toFixed(2)} s | ` +
        `${thousands(EXPIRED / seconds)} | ${row.batches} | ${thousands(row.liveKept)} / ${thousands(LIVE)} |`,
    );
  }
}

await main();
