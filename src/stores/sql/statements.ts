import type { CompiledQuery, Kysely, QueryResult } from 'kysely';

/** What runs one statement: the store's Kysely, a transaction, a pinned connection, or {@link pgRunner}. */
export type Runner = Pick<Kysely<never>, 'executeQuery'>;

/** A stand-in for the n-th parameter of a statement, found again in the compiled parameters. */
class Slot {
  constructor(readonly index: number) {}
}

/**
 * A statement shape compiled once by Kysely, run with new parameters: compiling a query anew is
 * most of the store's own CPU per request (33-118 µs), and the SQL text never changes.
 */
export class Statement {
  readonly #compiled: CompiledQuery;
  /** Per compiled parameter: the slot it comes from, or a constant of the shape. */
  readonly #sources: readonly (Slot | { value: unknown })[];

  /**
   * `build` makes the query with `slot(i)` wherever the i-th value of {@link Statement.run}
   * goes; Kysely never looks at a value, it only passes it through (typed `never` to stand
   * for a value of any column).
   */
  constructor(build: (slot: (index: number) => never) => { compile(): CompiledQuery }) {
    this.#compiled = build((index) => new Slot(index) as never).compile();
    this.#sources = this.#compiled.parameters.map((value) => (value instanceof Slot ? value : { value }));
  }

  /** The SQL text, as the driver gets it. */
  get sql(): string {
    return this.#compiled.sql;
  }

  /** Runs the statement on `db` (the store's Kysely, a transaction or a pinned connection). */
  run<R>(db: Runner, values: readonly unknown[]): Promise<QueryResult<R>> {
    const parameters = this.#sources.map((source) => (source instanceof Slot ? values[source.index] : source.value));
    return db.executeQuery({ ...this.#compiled, parameters }) as Promise<QueryResult<R>>;
  }
}

/** The better-sqlite3 calls Kysely's SqliteDialect makes. */
interface SqliteDatabase {
  prepare(sql: string): unknown;
  close(): unknown;
}

/** Distinct statement texts kept per SQLite database; more only come from `setMany`'s chunk sizes and DDL. */
const SQLITE_STATEMENTS = 64;

/**
 * A better-sqlite3 database whose `prepare` keeps its statements (Kysely's SqliteDialect prepares
 * every query anew, ~45 µs each). The oldest text goes first past the bound. SQLite re-prepares
 * a kept statement by itself when the schema changes.
 */
export function keepingStatements(database: SqliteDatabase): SqliteDatabase {
  const kept = new Map<string, unknown>();
  return {
    prepare(sql) {
      let statement = kept.get(sql);
      if (statement === undefined) {
        statement = database.prepare(sql);
        if (kept.size >= SQLITE_STATEMENTS) kept.delete(kept.keys().next().value as string);
        kept.set(sql, statement);
      }
      return statement;
    },
    close: () => database.close(),
  };
}

/** The part of a pg pool Kysely's PostgresDialect uses (0.29 also reads `Client` and `options`, for cancels). */
interface PgPool {
  connect(): Promise<PgClient>;
  end(): Promise<void>;
  Client?: unknown;
  options?: unknown;
}
interface PgClient {
  query(text: unknown, values?: unknown): Promise<unknown>;
  release(error?: unknown): void;
}

/** What `pg`'s `Pool.query` answers (the part a statement's result needs). */
interface PgResult {
  command: string;
  rowCount: number | null;
  rows: unknown[];
}

/**
 * Runs single statements straight on a pg pool (`pool.query` checks a client out, runs the
 * query and puts the client back), as named prepared statements where `names` has the text.
 * Kysely's own path wraps each statement in a connection provider, a driver call and a
 * connection object: about 8 KiB allocated per read-modify-write (two statements) before pg is
 * reached. Transactions and pinned connections still go through Kysely; Kysely still writes
 * every statement. The result has the shape Kysely's PostgreSQL driver gives.
 */
export function pgRunner(
  pool: {
    query(config: string | { name: string; text: string; values: unknown[] }, values?: unknown[]): Promise<PgResult>;
  },
  names: ReadonlyMap<string, string>,
): Runner {
  return {
    async executeQuery<R>({ sql, parameters }: CompiledQuery): Promise<QueryResult<R>> {
      const name = names.get(sql);
      const values = parameters as unknown[];
      const { command, rowCount, rows } = await (name === undefined
        ? pool.query(sql, values)
        : pool.query({ name, text: sql, values }));
      const counted = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
      return { rows: rows as R[], numAffectedRows: counted ? BigInt(rowCount ?? 0) : undefined };
    },
  } as Runner;
}

/**
 * A pg pool for Kysely whose clients run the texts in `names` (text to statement name) as named
 * prepared statements: PostgreSQL parses and plans them once per connection, not on every call,
 * and pg sends no Parse message after the first. Any other text goes as it is.
 */
export function preparingPool(pool: PgPool, names: ReadonlyMap<string, string>): PgPool {
  // One stand-in per pg client: Kysely keeps its connection object per client object.
  const standIns = new WeakMap<PgClient, PgClient>();
  const standIn = (client: PgClient): PgClient => ({
    query(text, values) {
      const name = typeof text === 'string' ? names.get(text) : undefined;
      return name === undefined ? client.query(text, values) : client.query({ name, text, values });
    },
    release: (error) => client.release(error),
  });
  return {
    async connect() {
      const client = await pool.connect();
      let wrapped = standIns.get(client);
      if (wrapped === undefined) standIns.set(client, (wrapped = standIn(client)));
      return wrapped;
    },
    end: () => pool.end(),
    get Client() {
      return pool.Client;
    },
    get options() {
      return pool.options;
    },
  };
}
