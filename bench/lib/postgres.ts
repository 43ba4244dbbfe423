/**
 * PostgreSQL for the SQL variants: a table of its own for each variant (random names, created by
 * the server on start, dropped at the end), and its row counters from pg_stat_user_tables around
 * the runs. Tables of their own keep one variant's statements out of another's counters (the
 * runs go round the servers in turns, and a baseline twin would otherwise share a table).
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
  version: string;
  /** The table of the variant with this id (the same name every time it is asked). */
  tableFor(variantId: string): string;
  /** Marks that traffic reached PostgreSQL just now. */
  touched(): void;
  /** A table's counters, once every backend has reported what it did (see below). */
  counters(table: string): Promise<TableCounters>;
  /** Drops the tables and closes the connection. */
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
  const base = `bench_sessions_${randomBytes(5).toString('hex')}`;
  const tables = new Map<string, string>();
  const version = String((await client.query('SHOW server_version')).rows[0]?.server_version ?? 'unknown');
  let lastTraffic = 0;
  let closing: Promise<void> | undefined;
  return {
    version,
    tableFor(variantId) {
      let table = tables.get(variantId);
      if (table === undefined) tables.set(variantId, (table = `${base}_${tables.size}`));
      return table;
    },
    touched() {
      lastTraffic = Date.now();
    },
    async counters(table) {
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
    close() {
      // Once, whether the run ends or is interrupted (see onInterrupt), or both.
      closing ??= (async () => {
        try {
          for (const table of tables.values()) await client.query(`DROP TABLE IF EXISTS "${table}"`);
        } finally {
          await client.end();
        }
      })();
      return closing;
    },
  };
}
