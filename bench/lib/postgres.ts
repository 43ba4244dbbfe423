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
  return {
    table,
    version,
    async counters() {
      // Backends report table statistics at most once a second, when they go idle.
      await sleep(1100);
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
