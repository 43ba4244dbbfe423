import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { SessionError, toStoreError } from '../../core/errors.ts';
import { shortKey } from '../../core/ids.ts';
import {
  applyChangeSet,
  batchSizeOf,
  type ChangeSet,
  type EntriesOptions,
  META_FIELD,
  RESERVED_KEYS,
  type SessionRecord,
  type Store,
  type StoredSession,
  type StoreMetrics,
  type UserSessionEntry,
  type WriteOutcome,
} from '../../core/store.ts';
import { backgroundErrors, CONFLICTED, every, type Interval, KeyedQueue, retryConflicts } from '../_kit.ts';
import { type Connection, type Db, describeTarget, openConnection, type Row } from './connect.ts';
import { createTableStatements, quote } from './ddl.ts';
import { type ResolvedSqlOptions, resolveSqlOptions, type SqlDialect, type SqlStoreOptions } from './options.ts';
import { type Runner, Statement } from './statements.ts';

const SCOPE = 'sql';
/** Rows per multi-row INSERT in `setMany`: 7 parameters each stays far below every dialect's limit. */
const INSERT_CHUNK = 500;

/**
 * The version of a forward left by `move`. Versions start at 1 and only grow, so a negative one
 * marks the row as "moved": no schema change, and every compare-and-set already misses it.
 * An upsert onto a forward counts up from here to 0, a live version again.
 */
const MOVED_VERSION = -1;

/**
 * How many keys' last read versions are kept for the next patch. A request's patch follows its
 * own get closely; a key pushed out only costs that patch a read.
 */
const REMEMBERED_READS = 256;

interface Loaded {
  record: SessionRecord;
  version: number;
}

/**
 * The statements of the request path, compiled once per connection; the comment of each gives
 * the order of its values.
 */
interface Statements {
  /** id, now */
  load: Statement;
  /** data, expires, user, now, id, version, created, now */
  update: Statement;
  /** expires, now, id, now */
  touch: Statement;
  /** forwardUntil, now, id, version */
  seal: Statement;
  /** id, data, expires, created, now, user */
  upsert: Statement;
  /** id */
  destroy: Statement;
  /** data, expires, created, user, now, id, expires, now (setIfNewer: replaces an older row) */
  replaceOlder: Statement;
  /** id, data, expires, created, now, user (setIfNewer: a new row; PostgreSQL and SQLite skip a taken id) */
  insert: Statement;
}

/** An open connection with its compiled statements, and what runs a single statement. */
interface Open extends Connection {
  s: Statements;
  run: Runner;
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  // pg returns BIGINT as a string, to keep its precision.
  if (typeof value === 'string' && value.trim() !== '') return Number(value);
  return Number.NaN;
}

/** A signed 64-bit advisory lock key for PostgreSQL, as a decimal string. */
export function lockKey(purpose: string, table: string): string {
  return createHash('sha256').update(`tessera:sql:${purpose}:${table}`).digest().readBigInt64BE(0).toString();
}

/**
 * A session store on one SQL table, over Kysely: SQLite (better-sqlite3), PostgreSQL (pg) and
 * MySQL/MariaDB (mysql2). Expiry is checked by every query and expired rows are pruned in
 * batches; concurrent change sets are applied with a version column and compare-and-set.
 *
 * The connection is opened, and the table created or checked, on first use; call
 * {@link SqlStore.ready} at startup to find a wrong URL or table shape before the first request.
 */
export class SqlStore implements Store {
  readonly name = 'sql';
  readonly atomicPatch = true;
  /** The dialect in use. */
  readonly dialect: SqlDialect;
  /** The table, as configured. */
  readonly table: string;
  readonly #o: ResolvedSqlOptions;
  #connection: Promise<Open> | undefined;
  /** The connection once open: the request path takes it without awaiting {@link #connection}. */
  #opened: Open | null = null;
  #closed = false;
  #pruner: Interval | undefined;
  /** Writes of one key from this process go one after another, patches batched. */
  readonly #queue = new KeyedQueue();
  readonly #report: (error: SessionError) => void;
  /** SQLite prunes by rowid, unless the table was made WITHOUT ROWID. */
  #rowid = false;
  /**
   * Per key, the row as this process last read or wrote it: a patch after a get then needs no
   * read of its own, its compare-and-set runs on this version. Oldest first, bounded.
   */
  readonly #read = new Map<string, Loaded>();

  constructor(options: SqlStoreOptions) {
    this.#o = resolveSqlOptions(options);
    this.dialect = this.#o.dialect;
    this.table = this.#o.table;
    this.#report = backgroundErrors({ scope: SCOPE, logger: this.#o.logger, onError: this.#o.onError });
    if (this.#o.pruneIntervalMs > 0) {
      this.#pruner = every(
        this.#o.pruneIntervalMs,
        () => this.prune(),
        (error) => this.#report(toStoreError(error, SCOPE, 'prune')),
      );
    }
  }

  /**
   * Connects and creates (or checks) the table. Every method does this on first use; calling it
   * at startup makes a wrong URL or a table of the wrong shape fail there. A failure is retried
   * on the next call.
   */
  async ready(): Promise<void> {
    await this.#connectionOf();
  }

  get(key: string): Promise<SessionRecord | null> {
    const open = this.#opened;
    // Before the connection is open (or after close): the same read, once it is.
    if (open === null || this.#closed) return this.#connectionOf().then(() => this.get(key));
    return this.#load(open.run, open.s, key).then(
      (loaded) => this.#found(key, loaded),
      (error: unknown) => {
        throw toStoreError(error, SCOPE, `get on table "${this.table}"`);
      },
    );
  }

  /** A read's row as the record, remembered for the next compare-and-set; `null` for none or a forward. */
  #found(key: string, loaded: Loaded | null): SessionRecord | null {
    if (loaded === null || loaded.version < 0) {
      this.#read.delete(key);
      return null;
    }
    this.#remember(key, loaded);
    return loaded.record;
  }

  async set(key: string, record: SessionRecord): Promise<void> {
    const { run, s } = await this.#connectionOf();
    this.#read.delete(key);
    await this.#run('set', () => s.upsert.run(run, this.#upsertValues(key, record, this.#o.now())));
  }

  /**
   * Writes many records at once (imports, migrations, benchmarks): multi-row upserts of
   * 500 rows in one transaction. Returns how many records were written.
   */
  async setMany(entries: Iterable<readonly [key: string, record: SessionRecord]>): Promise<number> {
    const { db } = await this.#connectionOf();
    // One statement must not name a key twice (PostgreSQL refuses): the last record wins.
    const rows = [...new Map(entries)];
    await this.#run('setMany', () =>
      db.transaction().execute(async (trx) => {
        for (let i = 0; i < rows.length; i += INSERT_CHUNK)
          await this.#upsertMany(trx, rows.slice(i, i + INSERT_CHUNK));
      }),
    );
    return rows.length;
  }

  /**
   * Applies the change set to the row as this process's last get (or write) of the key left it,
   * written back only if its version is unchanged and the row unexpired: one statement. When
   * another write got in between, or nothing was read, it reads the row and replays (at most
   * `conflictRetries` times). A row that is gone stays gone.
   *
   * Patches of one key from this process never race each other: they wait for the write in
   * flight, and those that arrived meanwhile are applied together, in order, in one write.
   */
  async patch(key: string, change: ChangeSet): Promise<WriteOutcome> {
    const open = await this.#connectionOf();
    return this.#queue.batch(key, change, async (changes: ChangeSet[]) => {
      const outcome = await this.#run('patch', () => this.#patchRow(open, key, changes));
      return changes.map(() => outcome);
    });
  }

  async #patchRow({ db, run, s }: Open, key: string, changes: ChangeSet[]): Promise<WriteOutcome> {
    const read = this.#read.get(key);
    if (read) {
      this.#read.delete(key);
      // Not one of the retries: a miss here is the ordinary path of a row written meanwhile.
      if (await this.#compareAndSet(run, s, key, read, changes)) return true;
      this.#conflicts++;
    }
    // Read and write on one connection: through the pool queue, other writers would
    // almost always get in between. On SQLite this also makes the pair exclusive in-process.
    return this.#retrying('patch', key, () =>
      db.connection().execute(async (conn) => {
        const current = await this.#load(conn, s, key);
        if (!current) return false;
        if (current.version < 0) return 'moved';
        return (await this.#compareAndSet(conn, s, key, current, changes)) ? true : CONFLICTED;
      }),
    );
  }

  /** Runs a compare-and-set until it does not conflict, at most `conflictRetries` more times. */
  #retrying<T>(action: string, key: string, attempt: () => Promise<T | typeof CONFLICTED>): Promise<T> {
    const counted = async () => {
      const outcome = await attempt();
      if (outcome === CONFLICTED) this.#conflicts++;
      return outcome;
    };
    return retryConflicts(this.#o.conflictRetries, counted, (tries) => ({
      message: `${action} of ${shortKey(key)} in table "${this.table}" lost the race ${tries} times in a row`,
      scope: SCOPE,
    }));
  }

  /**
   * Writes `current` with the changes applied if the row still has its version, is unexpired
   * and has its creation time (a row destroyed and made again restarts at version 1). The row
   * count says whether it did on every dialect (MySQL counts the row as changed: the version
   * moves), and the new version is the old one plus one, so no `RETURNING` is needed.
   */
  async #compareAndSet(
    db: Runner,
    s: Statements,
    key: string,
    current: Loaded,
    changes: ChangeSet[],
  ): Promise<boolean> {
    const next = changes.reduce(applyChangeSet, current.record);
    const now = this.#o.now();
    const { numAffectedRows } = await s.update.run(db, [
      JSON.stringify(next.fields),
      next.expiresAt,
      next.userId,
      now,
      key,
      current.version,
      current.record.createdAt,
      now,
    ]);
    if (numAffectedRows === 0n) return false;
    this.#remember(key, { record: next, version: current.version + 1 });
    return true;
  }

  /** Keeps the row as read or written for the key's next patch, the oldest key leaving past the bound. */
  #remember(key: string, loaded: Loaded): void {
    this.#read.delete(key);
    if (this.#read.size >= REMEMBERED_READS) this.#read.delete(this.#read.keys().next().value as string);
    this.#read.set(key, loaded);
  }

  /**
   * Moves the expiry. The version is bumped too, as on every write: a patch that read the row
   * before the touch then replays on top of it, and MySQL reports the row as changed even
   * without CLIENT_FOUND_ROWS.
   */
  async touch(key: string, expiresAt: number): Promise<WriteOutcome> {
    const { run, s } = await this.#connectionOf();
    // Patches arriving after this touch are not applied before it.
    return this.#run('touch', () =>
      this.#queue.run(key, async () => {
        this.#read.delete(key);
        const now = this.#o.now();
        const { numAffectedRows } = await s.touch.run(run, [expiresAt, now, key, now]);
        if (numAffectedRows !== 0n) return true;
        return (await this.#load(run, s, key))?.version === MOVED_VERSION ? 'moved' : false;
      }),
    );
  }

  /**
   * One transaction: the old row becomes a forward (compare-and-set on its version, so a patch
   * committed before is kept and one after is refused), and the new row is written.
   */
  async move(from: string, to: string, change: ChangeSet, forwardUntil: number): Promise<SessionRecord | null> {
    const { db, s } = await this.#connectionOf();
    return this.#run('move', () =>
      this.#queue.run(from, () => {
        this.#read.delete(from);
        return this.#retrying('move', from, () =>
          db.transaction().execute(async (trx) => {
            const current = await this.#load(trx, s, from);
            if (!current || current.version < 0) return null;
            const moved = applyChangeSet(current.record, change);
            const now = this.#o.now();
            const sealed = await s.seal.run(trx, [forwardUntil, now, from, current.version]);
            if (sealed.numAffectedRows === 0n) return CONFLICTED;
            this.#read.delete(to);
            await s.upsert.run(trx, this.#upsertValues(to, moved, now));
            return moved;
          }),
        );
      }),
    );
  }

  async destroy(key: string): Promise<void> {
    const { run, s } = await this.#connectionOf();
    this.#read.delete(key);
    await this.#run('destroy', () => s.destroy.run(run, [key]));
  }

  /**
   * Two statements at most, each atomic: an INSERT that gives way to a row already there (a
   * migration's usual case, one statement), else an UPDATE of that row if it expires earlier
   * (a forward, version below 0, only once it has expired).
   */
  async setIfNewer(key: string, record: SessionRecord): Promise<boolean> {
    const { run, s } = await this.#connectionOf();
    return this.#run('setIfNewer', () =>
      this.#queue.run(key, async () => {
        this.#read.delete(key);
        const now = this.#o.now();
        const data = JSON.stringify(record.fields);
        try {
          const inserted = await s.insert.run(run, [key, data, record.expiresAt, record.createdAt, now, record.userId]);
          if (inserted.numAffectedRows !== 0n) return true;
        } catch (error) {
          // MySQL has no ON CONFLICT DO NOTHING (INSERT IGNORE would also hide other errors).
          if ((error as { errno?: number }).errno !== 1062) throw error;
        }
        const replaced = await s.replaceOlder.run(run, [
          data,
          record.expiresAt,
          record.createdAt,
          record.userId,
          now,
          key,
          record.expiresAt,
          now,
        ]);
        return replaced.numAffectedRows !== 0n;
      }),
    );
  }

  /** Every live session, by key order: one keyset-paginated SELECT per batch. */
  async *entries(options?: EntriesOptions): AsyncIterable<StoredSession[]> {
    const size = batchSizeOf(options, SCOPE);
    const { db } = await this.#connectionOf();
    const c = this.#o.columns;
    let after: string | null = null;
    for (;;) {
      const from = after;
      const rows = await this.#run('entries', () => {
        let query = db
          .selectFrom(this.table)
          .select([c.id, c.data, c.expires, c.created, c.user, c.version])
          .where(c.expires, '>', this.#o.now())
          .where(c.version, '>=', 0);
        if (from !== null) query = query.where(c.id, '>', from);
        return query.orderBy(c.id).limit(size).execute();
      });
      if (rows.length === 0) return;
      const batch = rows.map((row) => {
        const key = String(row[c.id]);
        return { key, record: this.#decode(key, row).record };
      });
      yield batch;
      if (rows.length < size) return;
      after = (batch[batch.length - 1] as StoredSession).key;
    }
  }

  async listByUser(userId: string): Promise<UserSessionEntry[]> {
    const { db } = await this.#connectionOf();
    const c = this.#o.columns;
    return this.#run('listByUser', async () => {
      const rows = await db
        .selectFrom(this.table)
        .select([c.id, c.data, c.created, c.expires, c.user, c.version])
        .where(c.user, '=', userId)
        .where(c.expires, '>', this.#o.now())
        .execute();
      // The data column comes along for the device metadata (one field of it): no query per session.
      return rows.map((row) => {
        const key = String(row[c.id]);
        const { record } = this.#decode(key, row);
        const entry: UserSessionEntry = { key, createdAt: record.createdAt, expiresAt: record.expiresAt, userId };
        const meta = record.fields[META_FIELD];
        if (meta !== undefined) entry.meta = meta;
        return entry;
      });
    });
  }

  /** Deletes the user's live sessions and returns their number; expired ones are left to `prune`. */
  async destroyByUser(userId: string): Promise<number> {
    const { db } = await this.#connectionOf();
    const c = this.#o.columns;
    return this.#run('destroyByUser', async () => {
      const result = await db
        .deleteFrom(this.table)
        .where(c.user, '=', userId)
        .where(c.expires, '>', this.#o.now())
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  async count(): Promise<number> {
    const {
      db,
      k: { sql },
    } = await this.#connectionOf();
    const c = this.#o.columns;
    return this.#run('count', async () => {
      const row = await db
        .selectFrom(this.table)
        .select(sql<number | string | bigint>`count(*)`.as('n'))
        .where(c.expires, '>', this.#o.now())
        .where(c.version, '>=', 0)
        .executeTakeFirstOrThrow();
      return toNumber(row.n);
    });
  }

  /**
   * Deletes expired rows, `pruneBatchSize` per statement, until none is left; returns how many
   * were deleted. On PostgreSQL it first takes an advisory lock and returns 0 at once when
   * another instance holds it (that one is pruning the same table).
   */
  async prune(progress?: (deleted: number) => void): Promise<number> {
    const {
      db,
      k: { sql },
    } = await this.#connectionOf();
    return this.#run('prune', async () => {
      const started = performance.now();
      let result: { deleted: number; batches: number } | null;
      if (this.dialect === 'postgres') {
        const key = lockKey('prune', this.table);
        // Session-level advisory locks belong to one connection: lock, prune and unlock on it.
        result = await db.connection().execute(async (conn) => {
          const { rows } = await sql<{
            locked: boolean;
          }>`select pg_try_advisory_lock(${key}::bigint) as locked`.execute(conn);
          if (!rows[0]?.locked) return null;
          try {
            return await this.#pruneBatches(conn, progress);
          } finally {
            await sql`select pg_advisory_unlock(${key}::bigint)`.execute(conn);
          }
        });
      } else {
        result = await this.#pruneBatches(db, progress);
      }
      const ms = Math.round(performance.now() - started);
      if (result === null) {
        this.#o.logger?.debug({ store: SCOPE, table: this.table }, 'prune skipped: another instance holds the lock');
        return 0;
      }
      this.#o.logger?.debug({ store: SCOPE, table: this.table, ...result, ms }, 'prune');
      return result.deleted;
    });
  }

  /** Compare-and-set writes that lost to another writer and were replayed (for `engine.metrics()`). */
  metrics(): StoreMetrics {
    return { conflictsReplayed: this.#conflicts };
  }

  #conflicts = 0;

  /** How often the store prunes by itself (`pruneIntervalSeconds`), in ms; 0 for never. */
  get pruneIntervalMs(): number {
    return this.#o.pruneIntervalMs;
  }

  /**
   * The database server's clock, in epoch ms (for `tessera doctor`: expiry is written from this
   * process's clock and compared with the server's); `null` for SQLite, which has no server.
   */
  async serverTime(): Promise<number | null> {
    if (this.dialect === 'sqlite') return null;
    const {
      db,
      k: { sql },
    } = await this.#connectionOf();
    return this.#run('serverTime', async () => {
      const query =
        this.dialect === 'postgres'
          ? sql<{ ms: unknown }>`select (extract(epoch from clock_timestamp()) * 1000)::bigint as ms`
          : sql<{ ms: unknown }>`select cast(unix_timestamp(now(3)) * 1000 as unsigned) as ms`;
      const { rows } = await query.execute(db);
      return toNumber(rows[0]?.ms);
    });
  }

  /** Stops the prune timer and closes the connection the store opened (never one you passed in). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pruner?.stop();
    const opening = this.#connection;
    this.#connection = undefined;
    this.#opened = null;
    if (!opening) return;
    const connection = await opening.catch(() => null);
    if (connection?.owned) await connection.db.destroy();
  }

  async #pruneBatches(
    db: Kysely<Db>,
    progress?: (deleted: number) => void,
  ): Promise<{ deleted: number; batches: number }> {
    const c = this.#o.columns;
    const size = this.#o.pruneBatchSize;
    let deleted = 0;
    let batches = 0;
    for (;;) {
      const now = this.#o.now();
      let query = db.deleteFrom(this.table);
      if (this.dialect === 'mysql') {
        // ORDER BY makes DELETE ... LIMIT deterministic, hence safe for statement-based replication.
        query = query.where(c.expires, '<=', now).orderBy(c.expires).limit(size);
      } else {
        // PostgreSQL has no DELETE ... LIMIT, and SQLite only when compiled with it: a subquery bounds the batch.
        const by = this.#rowid ? 'rowid' : c.id;
        query = query.where(by, 'in', (eb) =>
          eb.selectFrom(this.table).select(by).where(c.expires, '<=', now).limit(size),
        );
      }
      const result = await query.executeTakeFirst();
      const count = Number(result.numDeletedRows);
      deleted += count;
      batches++;
      progress?.(deleted);
      if (count < size || this.#closed) return { deleted, batches };
      // Let queued queries run between batches (SQLite's driver is synchronous).
      await nextTurn();
    }
  }

  /** `setMany`'s multi-row upsert: its shape depends on the number of rows, so it is built each time. */
  async #upsertMany(db: Kysely<Db>, entries: (readonly [string, SessionRecord])[]): Promise<void> {
    if (entries.length === 0) return;
    const now = this.#o.now();
    for (const [key] of entries) this.#read.delete(key);
    const { k } = await this.#connectionOf();
    const rows = entries.map(([key, record]) => this.#upsertValues(key, record, now));
    await this.#upsertQuery(db, k.sql, rows).execute();
  }

  /** The values of one row of the upsert, in its column order. */
  #upsertValues(key: string, record: SessionRecord, now: number): unknown[] {
    return [key, JSON.stringify(record.fields), record.expiresAt, record.createdAt, now, record.userId];
  }

  /** An INSERT of rows (values in {@link SqlStore.#upsertValues}' order) that replaces a row of the same id. */
  #upsertQuery(db: Kysely<Db>, sql: Connection['k']['sql'], rows: unknown[][]) {
    const c = this.#o.columns;
    const values = rows.map(([id, data, expires, created, updated, user]) => ({
      [c.id]: id,
      [c.data]: data,
      [c.expires]: expires,
      [c.created]: created,
      [c.updated]: updated,
      [c.user]: user,
      [c.version]: 1,
    }));
    const replaced = [c.data, c.expires, c.created, c.updated, c.user];
    const insert = db.insertInto(this.table).values(values as never);
    if (this.dialect === 'mysql') {
      // VALUES(col) is deprecated since MySQL 8.0.20 in favour of a row alias, which MariaDB lacks.
      const set = Object.fromEntries(replaced.map((col) => [col, sql`VALUES(${sql.ref(col)})`]));
      return insert.onDuplicateKeyUpdate({ ...set, [c.version]: sql`${sql.ref(c.version)} + 1` });
    }
    const set = Object.fromEntries(replaced.map((col) => [col, sql.ref(`excluded.${col}`)]));
    // A bare column would be ambiguous beside `excluded` (PostgreSQL): name the row by its table.
    const bare = this.table.slice(this.table.indexOf('.') + 1);
    const previous = sql`${sql.ref(`${bare}.${c.version}`)} + 1`;
    return insert.onConflict((oc) => oc.column(c.id).doUpdateSet({ ...set, [c.version]: previous }));
  }

  #load(db: Runner, s: Statements, key: string): Promise<Loaded | null> {
    return s.load.run<Row>(db, [key, this.#o.now()]).then(({ rows }) => {
      const row = rows[0];
      return row ? this.#decode(key, row) : null;
    });
  }

  /** Compiles the request path's statements for a connection (see {@link Statement}). */
  #compile(db: Kysely<Db>, { sql }: Connection['k']): Statements {
    const c = this.#o.columns;
    const bump = sql`${sql.ref(c.version)} + 1`;
    return {
      load: new Statement((p) =>
        db
          .selectFrom(this.table)
          .select([c.data, c.expires, c.created, c.user, c.version])
          .where(c.id, '=', p(0))
          .where(c.expires, '>', p(1)),
      ),
      update: new Statement((p) =>
        db
          .updateTable(this.table)
          .set({ [c.data]: p(0), [c.expires]: p(1), [c.user]: p(2), [c.updated]: p(3), [c.version]: bump })
          .where(c.id, '=', p(4))
          .where(c.version, '=', p(5))
          .where(c.created, '=', p(6))
          .where(c.expires, '>', p(7)),
      ),
      touch: new Statement((p) =>
        db
          .updateTable(this.table)
          .set({ [c.expires]: p(0), [c.updated]: p(1), [c.version]: bump })
          .where(c.id, '=', p(2))
          .where(c.expires, '>', p(3))
          .where(c.version, '>=', 0),
      ),
      seal: new Statement((p) =>
        db
          .updateTable(this.table)
          .set({ [c.data]: '{}', [c.expires]: p(0), [c.user]: null, [c.updated]: p(1), [c.version]: MOVED_VERSION })
          .where(c.id, '=', p(2))
          .where(c.version, '=', p(3)),
      ),
      upsert: new Statement((p) => this.#upsertQuery(db, sql, [[p(0), p(1), p(2), p(3), p(4), p(5)]])),
      destroy: new Statement((p) => db.deleteFrom(this.table).where(c.id, '=', p(0))),
      replaceOlder: new Statement((p) =>
        db
          .updateTable(this.table)
          .set({
            [c.data]: p(0),
            [c.expires]: p(1),
            [c.created]: p(2),
            [c.user]: p(3),
            [c.updated]: p(4),
            [c.version]: bump,
          })
          .where(c.id, '=', p(5))
          .where(c.expires, '<', p(6))
          // A forward is replaced only once it has expired.
          .where((eb) => eb.or([eb(c.version, '>=', 0), eb(c.expires, '<=', p(7))])),
      ),
      insert: new Statement((p) => {
        const insert = db.insertInto(this.table).values({
          [c.id]: p(0),
          [c.data]: p(1),
          [c.expires]: p(2),
          [c.created]: p(3),
          [c.updated]: p(4),
          [c.user]: p(5),
          [c.version]: 1,
        } as never);
        return this.dialect === 'mysql' ? insert : insert.onConflict((oc) => oc.column(c.id).doNothing());
      }),
    };
  }

  #decode(key: string, row: Row): Loaded {
    const c = this.#o.columns;
    let fields: unknown = row[c.data];
    if (fields instanceof Uint8Array) fields = Buffer.from(fields).toString('utf8');
    // A JSON or JSONB column (a table made by hand) arrives already parsed.
    if (typeof fields === 'string') {
      try {
        fields = JSON.parse(fields);
      } catch (error) {
        throw this.#corrupt(key, `${c.data} is not valid JSON (${(error as Error).message})`, error);
      }
    }
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
      throw this.#corrupt(key, `${c.data} is not a JSON object of strings`);
    }
    const values = fields as Record<string, unknown>;
    for (const name of Object.keys(values)) {
      if (RESERVED_KEYS.has(name)) {
        throw this.#corrupt(key, `${c.data}: it has a field named "${name}", which is never a session key`);
      }
      if (typeof values[name] !== 'string') throw this.#corrupt(key, `${c.data}: field "${name}" is not a string`);
    }
    const user = row[c.user];
    // Every check validateRecord makes is made above, with the column named.
    const record: SessionRecord = {
      fields: values as Record<string, string>,
      createdAt: toNumber(row[c.created]),
      expiresAt: toNumber(row[c.expires]),
      userId: typeof user === 'number' || typeof user === 'bigint' ? String(user) : ((user ?? null) as string | null),
    };
    if (!Number.isFinite(record.createdAt)) throw this.#corrupt(key, `${c.created} is not a number`);
    if (!Number.isFinite(record.expiresAt)) throw this.#corrupt(key, `${c.expires} is not a number`);
    if (record.userId !== null && typeof record.userId !== 'string') throw this.#corrupt(key, `${c.user} is not text`);
    const version = toNumber(row[c.version]);
    if (!Number.isInteger(version)) throw this.#corrupt(key, `${c.version} is not an integer`);
    return { record, version };
  }

  #corrupt(key: string, problem: string, cause?: unknown): SessionError {
    return new SessionError(
      'CORRUPT_RECORD',
      `row ${shortKey(key)} of table "${this.table}": ${problem}; the row is kept`,
      {
        scope: SCOPE,
        cause,
      },
    );
  }

  #connectionOf(): Promise<Open> {
    if (this.#closed) {
      return Promise.reject(new SessionError('STORE_CLOSED', 'the sql store is closed', { scope: SCOPE }));
    }
    this.#connection ??= this.#open().then(
      (open) => {
        this.#opened = open;
        return open;
      },
      (error: unknown) => {
        this.#connection = undefined;
        throw error;
      },
    );
    return this.#connection;
  }

  async #open(): Promise<Open> {
    const connection = await openConnection(this.#o, (error) => this.#report(error));
    try {
      await this.#prepareTable(connection);
      const s = this.#compile(connection.db, connection.k);
      if (this.dialect === 'postgres' && this.#o.preparedStatements) {
        // A statement's name is its text's hash: two stores on one pool (two tables) never share a name.
        for (const statement of Object.values(s)) {
          const hash = createHash('sha256').update(statement.sql).digest('base64url').slice(0, 20);
          connection.names.set(statement.sql, `tessera_${hash}`);
        }
      }
      return { ...connection, s, run: connection.run ?? connection.db };
    } catch (error) {
      if (connection.owned) await connection.db.destroy().catch(() => {});
      if (error instanceof SessionError) throw error;
      throw toStoreError(error, SCOPE, `opening table "${this.table}" on ${describeTarget(this.#o)}`);
    }
  }

  /** Creates the table when it is missing (and allowed to), then checks its columns. Never alters a table. */
  async #prepareTable({ db, k }: Connection): Promise<void> {
    let columns = await this.#columns(db, k);
    if (columns.length === 0) {
      if (!this.#o.createTable) {
        throw new SessionError(
          'INVALID_OPTIONS',
          `table "${this.table}" does not exist and createTable is false; create it with sql/${this.dialect}.sql`,
          { scope: SCOPE },
        );
      }
      const statements = createTableStatements(this.dialect, this.table, this.#o.columns);
      if (this.dialect === 'postgres') {
        await db.transaction().execute(async (trx) => {
          // Two instances starting together race CREATE TABLE IF NOT EXISTS into a duplicate-key
          // error in PostgreSQL's catalog: a transaction-level lock makes them take turns.
          await k.sql`select pg_advisory_xact_lock(${lockKey('create', this.table)}::bigint)`.execute(trx);
          for (const statement of statements) await k.sql.raw(statement).execute(trx);
        });
      } else {
        // No transaction on SQLite: better-sqlite3 waits for a lock synchronously, so a second
        // connection in this process would block the thread while ours holds it across an await.
        for (const statement of statements) await k.sql.raw(statement).execute(db);
      }
      columns = await this.#columns(db, k);
    }
    const fold = (name: string) => (this.dialect === 'postgres' ? name : name.toLowerCase());
    const present = new Set(columns.map(fold));
    const missing = Object.values(this.#o.columns).filter((name) => !present.has(fold(name)));
    if (missing.length > 0) {
      throw new SessionError(
        'INVALID_OPTIONS',
        `table "${this.table}" lacks the column(s) ${missing.map((m) => `"${m}"`).join(', ')} ` +
          `(it has ${columns.map((m) => `"${m}"`).join(', ')}); the store never alters a table: ` +
          `add them (see sql/${this.dialect}.sql) or point the *Column options at your names`,
        { scope: SCOPE },
      );
    }
    if (this.dialect === 'sqlite') {
      try {
        await k.sql`select rowid from ${k.sql.table(this.table)} limit 0`.execute(db);
        this.#rowid = true;
      } catch {
        this.#rowid = false;
      }
    }
  }

  /** The table's column names; none when it does not exist. */
  async #columns(db: Kysely<Db>, k: Connection['k']): Promise<string[]> {
    const { sql } = k;
    let query: ReturnType<typeof sql<{ name: string }>>;
    if (this.dialect === 'sqlite') {
      query = sql`select name from pragma_table_info(${this.table})`;
    } else if (this.dialect === 'postgres') {
      // to_regclass resolves the name through search_path exactly as the queries will.
      query = sql`select attname as name from pg_attribute
        where attrelid = to_regclass(${quote('postgres', this.table)}) and attnum > 0 and not attisdropped`;
    } else {
      const [schema, table] = this.table.includes('.') ? this.table.split('.') : [null, this.table];
      query = sql`select column_name as name from information_schema.columns
        where table_schema = coalesce(${schema}, database()) and table_name = ${table}`;
    }
    const { rows } = await query.execute(db);
    return rows.map((row) => String(row.name));
  }

  async #run<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw toStoreError(error, SCOPE, `${action} on table "${this.table}"`);
    }
  }
}

/** Creates a {@link SqlStore}. */
export function sqlStore(options: SqlStoreOptions): SqlStore {
  return new SqlStore(options);
}
