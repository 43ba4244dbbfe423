/**
 * PostgreSQL for the SQL variant: a table of its own (random name, created by the store on
 * start, dropped at the end), and its row counters from pg_stat_user_tables around the runs.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export interface TableCounters {
  /** Index plus sequential scans: one per statement that looks a row up. */
  scans: number;
  /** Rows inserted, updated or deleted. */
  writes: number;
}

export interface BenchPostgres {
  table: string;
  version: string;
  /** Marks that traffic reached PostgreSQL just now. */
  touched(): void;
  /** The table's counters, once every backend has reported what it did (see below). */
  counters(): Promise<TableCounters>;
  /** Drops the table and closes the connection. */
  close(): Promise<void>;
}

/** Connects to check PostgreSQL is there; `null` (with the reason) when it is not. */
export async function openPostgres(url: string): Promise<BenchPostgres | string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    return `PostgreSQL at ${url.replace(/\/\/[^@]*@/, '//')} is not reachable (${(error as Error).message})`;
  }
  const table = `bench_sessions_${randomBytes(5).toString('hex')}`;
  const version = String((await client.query('SHOW server_version')).rows[0]?.server_version ?? 'unknown');
  let lastTraffic = 0;
  return {
    table,
    version,
    touched() {
      lastTraffic = Date.now();
    },
    async counters() {
      // A backend reports its table statistics when it goes idle, at most once a second; one that
      // could not, reports 10 s later (PGSTAT_IDLE_INTERVAL). So wait 11 s after the last traffic.
      await sleep(Math.max(0, lastTraffic + 11000 - Date.now()));
      const { rows } = await client.query(
        `SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS scans,
                n_tup_ins + n_tup_upd + n_tup_del AS writes
           FROM pg_stat_user_tables WHERE relname = $1`,
        [table],
      );
      const row = rows[0] as { scans: string; writes: string } | undefined;
      return { scans: Number(row?.scans ?? 0), writes: Number(row?.writes ?? 0) };
    },
    async close() {
      try {
        await client.query(`DROP TABLE IF EXISTS "${table}"`);
      } finally {
        await client.end();
      }
    },
  };
}
