import { SessionError, toStoreError } from '../../core/errors.ts';
import { shortKey } from '../../core/ids.ts';
import {
  applyChangeSet,
  batchSizeOf,
  type ChangeSet,
  type EntriesOptions,
  META_FIELD,
  type SessionRecord,
  type Store,
  type StoredSession,
  type StoreMetrics,
  type UserSessionEntry,
  validateRecord,
  type WriteOutcome,
} from '../../core/store.ts';
import { backgroundErrors, CONFLICTED, every, type Interval, KeyedQueue, retryConflicts } from '../_kit.ts';
import {
  type Backend,
  type ElasticsearchClientKind,
  type EsRequestParams,
  type EsResponse,
  ownedBackend,
  userBackend,
} from './client.ts';
import {
  type ElasticsearchStoreOptions,
  type ResolvedElasticsearchOptions,
  resolveElasticsearchOptions,
} from './options.ts';

/**
 * The mapping of a session index. `fields` is stored in `_source` but not indexed (`enabled:
 * false`), so session data can never grow the mapping; the three metadata fields are mapped
 * explicitly because dynamic mapping would make `userId` a `text` field that `term` cannot find.
 */
export const SESSION_INDEX_MAPPINGS = Object.freeze({
  dynamic: 'strict',
  properties: Object.freeze({
    fields: Object.freeze({ type: 'object', enabled: false }),
    createdAt: Object.freeze({ type: 'date', format: 'epoch_millis' }),
    expiresAt: Object.freeze({ type: 'date', format: 'epoch_millis' }),
    userId: Object.freeze({ type: 'keyword' }),
  }),
});

/** What each mapped field must be for the store's queries to work. */
const EXPECTED: Record<string, (m: Record<string, unknown>) => boolean> = {
  fields: (m) => m.enabled === false && (m.type === undefined || m.type === 'object'),
  createdAt: (m) => m.type === 'date',
  expiresAt: (m) => m.type === 'date',
  userId: (m) => m.type === 'keyword',
};

/** Priority of the index template; templates of equal priority may not overlap, so it is not 0. */
const TEMPLATE_PRIORITY = 200;
/** How many times `destroyByUser` repeats its delete-by-query after version conflicts. */
const REVOKE_ROUNDS = 5;
/** How long a point in time of `entries()` lives between two pages. */
const PIT_KEEP_ALIVE = '2m';
/** The most entries `listByUser` returns (the default `index.max_result_window`). */
const MAX_LISTED = 10_000;

type Doc = Record<string, unknown>;
const isObject = (value: unknown): value is Doc => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A queued change to one session: a change set (`patch`) or a new expiry (`touch`). */
type Op = { change: ChangeSet } | { expiresAt: number };

/**
 * The `createdAt` of a forward left by `move`: the strict mapping has no spare field, and no
 * session is created before 1970. A forward has no fields and no owner.
 */
const MOVED_CREATED_AT = -1;

interface Versioned {
  source: unknown;
  seqNo: number;
  primaryTerm: number;
}

function errorOf(body: unknown): { type: string; reason: string } {
  const error = isObject(body) ? body.error : undefined;
  if (isObject(error)) return { type: String(error.type ?? 'unknown'), reason: String(error.reason ?? '') };
  return { type: 'unknown', reason: typeof error === 'string' ? error : JSON.stringify(body) };
}

/**
 * An Elasticsearch / OpenSearch store: one document per session in one index, `_id` = the
 * session's ID hash (the store key), `_source` = `{ fields, createdAt, expiresAt, userId }`.
 *
 * - Reads are realtime GETs by ID: a write is visible to the next read at once, no refresh.
 * - `patch` and `touch` are optimistic: read with `_seq_no`/`_primary_term`, write with
 *   `if_seq_no`/`if_primary_term`, and on a 409 re-read and replay (`conflictRetries`). A
 *   missing or expired document is never written again, so a logout is never undone.
 * - Expiry is enforced on every read; Elasticsearch has had no document TTL since 5.0, so
 *   expired documents are deleted by `prune()` (delete-by-query), in-process with
 *   `pruneIntervalSeconds` or from a scheduled job.
 * - Listing, counting and delete-by-query use search, which sees writes after the index's next
 *   refresh (1 s by default); `destroyByUser` refreshes first so that it misses no session.
 */
export class ElasticsearchStore implements Store {
  readonly name = 'elasticsearch';
  readonly atomicPatch = true;
  /** The index holding the sessions. */
  readonly index: string;
  /** The index template the store creates when the index is missing. */
  readonly templateName: string;
  /** The kind of client the store talks through; for a client the store creates, its `flavor`. */
  readonly clientKind: ElasticsearchClientKind;
  readonly #options: ResolvedElasticsearchOptions;
  readonly #path: string;
  #backend: Promise<Backend> | null = null;
  #setup: Promise<void> | null = null;
  #pruner: Interval | undefined;
  #closed = false;
  /** Changes of one session from this process go one write at a time, batched. */
  readonly #queue = new KeyedQueue();

  constructor(options: ElasticsearchStoreOptions = {}) {
    this.#options = resolveElasticsearchOptions(options);
    this.index = this.#options.index;
    this.templateName = `tessera-${this.index}`;
    this.#path = `/${encodeURIComponent(this.index)}`;
    const connection = this.#options.connection;
    this.clientKind =
      this.#options.client?.kind ?? (connection?.flavor === 'opensearch' ? 'opensearch' : 'elasticsearch');
    const type = this.#options.type;
    if (type !== undefined && type !== '_doc') {
      this.#warn(
        { index: this.index, type },
        `the "type" setting (${JSON.stringify(type)}) is ignored: Elasticsearch 7 removed mapping types, ` +
          `so session documents live under _doc in index "${this.index}"`,
        'TESSERA_ES_TYPE_IGNORED',
      );
    }
    const interval = this.#options.pruneIntervalMs;
    if (interval !== undefined) {
      const report = backgroundErrors({ scope: 'elasticsearch', logger: this.#options.logger });
      this.#pruner = every(
        interval,
        () => this.prune(),
        (error) => report(toStoreError(error, 'elasticsearch', 'background prune'), { index: this.index }),
      );
    }
  }

  /** Conditional writes that lost to another writer (409) and were replayed (for `engine.metrics()`). */
  metrics(): StoreMetrics {
    return { conflictsReplayed: this.#conflicts };
  }

  #conflicts = 0;

  /** How often the store prunes by itself (`pruneIntervalSeconds`), in ms; 0 for never. */
  get pruneIntervalMs(): number {
    return this.#options.pruneIntervalMs ?? 0;
  }

  async get(key: string): Promise<SessionRecord | null> {
    const found = await this.#read(key, 'get');
    if (!found || isForward(found.source)) return null;
    const record = this.#decode(key, found.source);
    return record.expiresAt <= Date.now() ? null : record;
  }

  async set(key: string, record: SessionRecord): Promise<void> {
    await this.#request('set', {
      method: 'PUT',
      path: this.#docPath(key),
      querystring: this.#writeQuery(),
      body: toDoc(record),
    });
  }

  patch(key: string, change: ChangeSet): Promise<WriteOutcome> {
    return this.#enqueue(key, { change });
  }

  touch(key: string, expiresAt: number): Promise<WriteOutcome> {
    return this.#enqueue(key, { expiresAt });
  }

  /**
   * Replaces the old document with a forward, conditionally on the `_seq_no` it was read at (a
   * patch that got in first is re-read and moved with it; one that comes after finds the forward
   * and is refused), then writes the new document, which nobody else knows yet.
   */
  async move(from: string, to: string, change: ChangeSet, forwardUntil: number): Promise<SessionRecord | null> {
    return retryConflicts(
      this.#options.conflictRetries,
      async () => {
        const current = await this.#read(from, 'move');
        if (!current || isForward(current.source)) return null;
        const record = this.#decode(from, current.source);
        if (record.expiresAt <= Date.now()) return null;
        const forward = { fields: {}, createdAt: MOVED_CREATED_AT, expiresAt: forwardUntil, userId: null };
        const res = await this.#request(
          'move',
          { method: 'PUT', path: this.#docPath(from), querystring: this.#writeQuery(current), body: forward },
          [404, 409],
        );
        if (res.statusCode === 404) return null;
        if (res.statusCode === 409) {
          this.#conflicts++;
          return CONFLICTED;
        }
        const moved = applyChangeSet(record, change);
        await this.set(to, moved);
        return moved;
      },
      (tries) => ({
        message: `move of ${shortKey(from)} in index "${this.index}" lost ${tries} version conflicts in a row`,
        scope: 'elasticsearch',
      }),
    );
  }

  /**
   * Writes the document unless the index holds one that expires as late or later, or a forward:
   * read with `_seq_no`/`_primary_term`, then a conditional PUT (`if_seq_no`, or `op_type=create`
   * when there was none), replayed on a 409 at most `conflictRetries` more times.
   */
  async setIfNewer(key: string, record: SessionRecord): Promise<boolean> {
    return retryConflicts(
      this.#options.conflictRetries,
      async () => {
        const current = await this.#read(key, 'setIfNewer');
        if (current) {
          if (isForward(current.source)) {
            const source = isObject(current.source) ? current.source : {};
            if (Number(source.expiresAt) > Date.now()) return false;
          } else if (this.#decode(key, current.source).expiresAt >= record.expiresAt) return false;
        }
        const querystring = current ? this.#writeQuery(current) : { ...this.#writeQuery(), op_type: 'create' };
        const res = await this.#request(
          'setIfNewer',
          { method: 'PUT', path: this.#docPath(key), querystring, body: toDoc(record) },
          [409],
        );
        if (res.statusCode !== 409) return true;
        this.#conflicts++;
        return CONFLICTED;
      },
      (tries) => ({
        message: `setIfNewer of ${shortKey(key)} in index "${this.index}" lost ${tries} version conflicts in a row`,
        scope: 'elasticsearch',
      }),
    );
  }

  /**
   * Every live session, page by page with `search_after`: on Elasticsearch inside a point in time
   * (one consistent view, sorted by `_shard_doc`), on OpenSearch sorted by `_id` (its point-in-time
   * API differs and 1.x has none). A search sees writes after the index's next refresh.
   */
  async *entries(options?: EntriesOptions): AsyncIterable<StoredSession[]> {
    const size = batchSizeOf(options, 'elasticsearch');
    const query = {
      bool: { filter: [{ range: { expiresAt: { gt: Date.now() } } }, { range: { createdAt: { gte: 0 } } }] },
    };
    const opensearch = this.clientKind === 'opensearch';
    let pit: string | null = null;
    if (!opensearch) {
      const opened = await this.#request(
        'entries',
        { method: 'POST', path: `${this.#path}/_pit`, querystring: { keep_alive: PIT_KEEP_ALIVE } },
        [404],
      );
      // No index: no sessions.
      if (opened.statusCode === 404) return;
      pit = String((opened.body as Doc).id);
    }
    try {
      let after: unknown[] | undefined;
      for (;;) {
        const body: Doc = {
          query,
          size,
          track_total_hits: false,
          sort: [opensearch ? { _id: 'asc' } : { _shard_doc: 'asc' }],
          ...(after ? { search_after: after } : {}),
          ...(pit ? { pit: { id: pit, keep_alive: PIT_KEEP_ALIVE } } : {}),
        };
        const res = await this.#request('entries', {
          method: 'POST',
          path: pit ? '/_search' : `${this.#path}/_search`,
          ...(pit ? {} : { querystring: { ignore_unavailable: true } }),
          body,
        });
        const found = isObject(res.body) ? res.body : {};
        if (pit && typeof found.pit_id === 'string') pit = found.pit_id;
        const hits = isObject(found.hits) && Array.isArray(found.hits.hits) ? (found.hits.hits as unknown[]) : [];
        const now = Date.now();
        const batch: StoredSession[] = [];
        for (const hit of hits) {
          const h = isObject(hit) ? hit : {};
          const key = String(h._id);
          if (isForward(h._source)) continue;
          const record = this.#decode(key, h._source);
          if (record.expiresAt > now) batch.push({ key, record });
        }
        if (batch.length > 0) yield batch;
        const last = hits[hits.length - 1];
        if (hits.length < size || !isObject(last) || !Array.isArray(last.sort)) return;
        after = last.sort;
      }
    } finally {
      if (pit) {
        const closing = pit;
        await this.#request('entries', { method: 'DELETE', path: '/_pit', body: { id: closing } }, [404]).catch(
          () => {},
        );
      }
    }
  }

  async destroy(key: string): Promise<void> {
    await this.#request(
      'destroy',
      { method: 'DELETE', path: this.#docPath(key), querystring: this.#writeQuery() },
      [404],
    );
  }

  async listByUser(userId: string): Promise<UserSessionEntry[]> {
    const search = async (size: number) => {
      const res = await this.#request('listByUser', {
        method: 'POST',
        path: `${this.#path}/_search`,
        querystring: { ignore_unavailable: true },
        body: {
          query: { bool: { filter: [{ term: { userId } }, { range: { expiresAt: { gt: Date.now() } } }] } },
          // The device metadata is one field of `fields`: source filtering takes it alone.
          _source: ['createdAt', 'expiresAt', 'userId', `fields.${META_FIELD}`],
          size,
          track_total_hits: true,
        },
      });
      const hits = isObject(res.body) && isObject(res.body.hits) ? res.body.hits : {};
      const total = isObject(hits.total) ? Number(hits.total.value) : Number(hits.total ?? 0);
      return { hits: Array.isArray(hits.hits) ? (hits.hits as unknown[]) : [], total };
    };
    let page = await search(100);
    if (page.total > page.hits.length) page = await search(Math.min(page.total, MAX_LISTED));
    if (page.total > MAX_LISTED) {
      this.#warn(
        { index: this.index, userId, total: page.total },
        `listByUser returns the first ${MAX_LISTED} sessions only`,
      );
    }
    return page.hits.map((hit) => {
      const h = isObject(hit) ? hit : {};
      const key = String(h._id);
      const source = isObject(h._source) ? h._source : {};
      const record = this.#decode(key, { ...source, fields: isObject(source.fields) ? source.fields : {} });
      const entry: UserSessionEntry = {
        key,
        createdAt: record.createdAt,
        expiresAt: record.expiresAt,
        userId: record.userId,
      };
      const meta = record.fields[META_FIELD];
      if (meta !== undefined) entry.meta = meta;
      return entry;
    });
  }

  async destroyByUser(userId: string): Promise<number> {
    let deleted = 0;
    for (let round = 0; round < REVOKE_ROUNDS; round++) {
      // Delete-by-query sees what the last refresh saw: refresh first, or a session written
      // in the last second would survive "log out everywhere".
      await this.#refreshIndex();
      const result = await this.#deleteByQuery('destroyByUser', {
        bool: { filter: [{ term: { userId } }, { range: { expiresAt: { gt: Date.now() } } }] },
      });
      deleted += result.deleted;
      // A conflict is a session of this user written since the refresh: go again.
      if (result.conflicts === 0) return deleted;
    }
    throw new SessionError(
      'STORE_UNAVAILABLE',
      `destroyByUser kept meeting concurrent writes in index "${this.index}" after ${REVOKE_ROUNDS} rounds (${deleted} deleted)`,
      { scope: 'elasticsearch' },
    );
  }

  async prune(): Promise<number> {
    const result = await this.#deleteByQuery('prune', { range: { expiresAt: { lte: Date.now() } } });
    return result.deleted;
  }

  async count(): Promise<number> {
    const res = await this.#request('count', {
      method: 'POST',
      path: `${this.#path}/_count`,
      querystring: { ignore_unavailable: true },
      body: {
        query: {
          bool: { filter: [{ range: { expiresAt: { gt: Date.now() } } }, { range: { createdAt: { gte: 0 } } }] },
        },
      },
    });
    return isObject(res.body) ? Number(res.body.count ?? 0) : 0;
  }

  /**
   * Makes the client and creates (or checks) the index template and index. Every call does this
   * on first use; the engine calls it before the first store call, and an app may call it at
   * startup to fail early. A failure is retried on the next call.
   */
  async ready(): Promise<void> {
    await this.#ready();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pruner?.stop();
    const backend = this.#backend;
    this.#backend = null;
    if (backend)
      await backend.then(
        (b) => b.close(),
        () => {},
      );
  }

  // --- requests ------------------------------------------------------------------------------

  #docPath(key: string): string {
    return `${this.#path}/_doc/${encodeURIComponent(key)}`;
  }

  #writeQuery(current?: Versioned): Record<string, string | number> {
    const query: Record<string, string | number> = {};
    if (current) {
      query.if_seq_no = current.seqNo;
      query.if_primary_term = current.primaryTerm;
    }
    if (this.#options.refresh !== 'false') query.refresh = this.#options.refresh;
    return query;
  }

  /** Sends a request once the client exists and the index is set up. */
  async #request(action: string, params: EsRequestParams, ignore?: number[]): Promise<EsResponse> {
    const backend = await this.#ready();
    return this.#send(backend, action, params, ignore);
  }

  async #send(backend: Backend, action: string, params: EsRequestParams, ignore?: number[]): Promise<EsResponse> {
    try {
      return await backend.request(params, ignore);
    } catch (error) {
      if (error instanceof Error && error.name === 'ProductNotSupportedError') {
        throw new SessionError(
          'STORE_UNAVAILABLE',
          `${action} failed: the @elastic/elasticsearch client refuses a server that is not Elasticsearch; ` +
            "for OpenSearch use flavor: 'opensearch' or pass an @opensearch-project/opensearch client",
          { cause: error, scope: 'elasticsearch' },
        );
      }
      throw toStoreError(error, 'elasticsearch', action);
    }
  }

  /** The document with its sequence number and primary term, or `null` when there is none. */
  async #read(key: string, action: string): Promise<Versioned | null> {
    const res = await this.#request(action, { method: 'GET', path: this.#docPath(key) }, [404]);
    // A 404 is a missing document or a missing index: no session either way.
    if (res.statusCode === 404 || !isObject(res.body) || res.body.found === false) return null;
    const { _source: source, _seq_no: seqNo, _primary_term: primaryTerm } = res.body;
    if (typeof seqNo !== 'number' || typeof primaryTerm !== 'number') {
      throw new SessionError('STORE_UNAVAILABLE', `${action} failed: the GET response has no _seq_no/_primary_term`, {
        scope: 'elasticsearch',
      });
    }
    return { source, seqNo, primaryTerm };
  }

  /**
   * Queues a change to one session. While a write to that session is in flight, the changes that
   * arrive meanwhile wait and then go out together as one write: requests of one process never
   * race each other for the same `_seq_no`, so conflicts only come from other processes.
   */
  #enqueue(key: string, op: Op): Promise<WriteOutcome> {
    return this.#queue.batch(key, op, (ops: Op[]) => this.#write(key, ops));
  }

  /**
   * Applies changes in order, as one conditional write: read with `_seq_no`/`_primary_term`,
   * apply, write with `if_seq_no`/`if_primary_term`; on a 409 re-read and replay, at most
   * `conflictRetries` more times. A change finding the session missing or expired is refused.
   */
  async #write(key: string, ops: Op[]): Promise<WriteOutcome[]> {
    const touchOnly = ops.every((op) => !('change' in op));
    const action = touchOnly ? 'touch' : 'patch';
    return retryConflicts(
      this.#options.conflictRetries,
      async (): Promise<WriteOutcome[] | typeof CONFLICTED> => {
        const current = await this.#read(key, action);
        if (!current) return ops.map(() => false);
        if (isForward(current.source)) return ops.map(() => 'moved' as const);
        let record = this.#decode(key, current.source);
        const now = Date.now();
        const results = ops.map((op) => {
          if (record.expiresAt <= now) return false;
          record = 'change' in op ? applyChangeSet(record, op.change) : { ...record, expiresAt: op.expiresAt };
          return true;
        });
        if (!results.includes(true)) return results;
        const querystring = this.#writeQuery(current);
        const res = touchOnly
          ? await this.#request(
              action,
              {
                method: 'POST',
                path: `${this.#path}/_update/${encodeURIComponent(key)}`,
                querystring,
                body: { doc: { expiresAt: record.expiresAt } },
              },
              [404, 409],
            )
          : await this.#request(
              action,
              { method: 'PUT', path: this.#docPath(key), querystring, body: toDoc(record) },
              [409],
            );
        if (res.statusCode === 404) return ops.map(() => false);
        if (res.statusCode !== 409) return results;
        this.#conflicts++;
        return CONFLICTED;
      },
      (tries) => ({
        message:
          `${action} of ${shortKey(key)} in index "${this.index}" lost ${tries} version conflicts in a row ` +
          '(too many concurrent writes to one session from other processes); raise conflictRetries if this is expected',
        scope: 'elasticsearch',
      }),
    );
  }

  async #deleteByQuery(action: string, query: Doc): Promise<{ deleted: number; conflicts: number }> {
    const querystring: Record<string, string | boolean> = { conflicts: 'proceed', ignore_unavailable: true };
    // Delete-by-query takes refresh=true|false only.
    if (this.#options.refresh !== 'false') querystring.refresh = true;
    const res = await this.#request(action, {
      method: 'POST',
      path: `${this.#path}/_delete_by_query`,
      querystring,
      body: { query },
    });
    const body = isObject(res.body) ? res.body : {};
    const failures = Array.isArray(body.failures) ? body.failures : [];
    if (failures.length > 0) {
      throw new SessionError(
        'STORE_UNAVAILABLE',
        `${action} failed on ${failures.length} document(s): ${JSON.stringify(failures[0]).slice(0, 500)}`,
        { scope: 'elasticsearch' },
      );
    }
    return { deleted: Number(body.deleted ?? 0), conflicts: Number(body.version_conflicts ?? 0) };
  }

  async #refreshIndex(): Promise<void> {
    const res = await this.#request(
      'refresh',
      { method: 'POST', path: `${this.#path}/_refresh`, querystring: { ignore_unavailable: true } },
      [403],
    );
    if (res.statusCode === 403) {
      this.#warn(
        { index: this.index, error: errorOf(res.body) },
        `cannot refresh index "${this.index}" (grant the "maintenance" privilege): destroyByUser may miss sessions written in the last refresh interval`,
      );
    }
  }

  // --- records -------------------------------------------------------------------------------

  #decode(key: string, source: unknown): SessionRecord {
    const where = `index "${this.index}", document ${shortKey(key)}`;
    if (!isObject(source)) throw this.#corrupt(`${where}: the document has no _source object`);
    const candidate = {
      fields: isObject(source.fields) ? { ...source.fields } : source.fields,
      createdAt: source.createdAt,
      expiresAt: source.expiresAt,
      // Elasticsearch tools often leave out null fields; a missing owner is no owner.
      userId: source.userId === undefined ? null : source.userId,
    };
    try {
      return validateRecord(candidate, where);
    } catch (error) {
      throw this.#corrupt((error as Error).message, error);
    }
  }

  #corrupt(problem: string, cause?: unknown): SessionError {
    return new SessionError('CORRUPT_RECORD', `${problem} (the document is kept for inspection)`, {
      cause,
      scope: 'elasticsearch',
    });
  }

  // --- setup ---------------------------------------------------------------------------------

  /** The client, and the index ready for use; a failed setup is tried again on the next call. */
  async #ready(): Promise<Backend> {
    if (this.#closed) {
      throw new SessionError('STORE_CLOSED', 'the store is closed', { scope: 'elasticsearch' });
    }
    this.#backend ??= this.#options.client
      ? Promise.resolve(userBackend(this.#options.client.value, this.#options.client.kind))
      : ownedBackend(this.#options.connection as NonNullable<ResolvedElasticsearchOptions['connection']>);
    const backend = await this.#backend.catch((error: unknown) => {
      this.#backend = null;
      throw error;
    });
    this.#setup ??= this.#prepareIndex(backend).catch((error: unknown) => {
      this.#setup = null;
      throw error;
    });
    await this.#setup;
    return backend;
  }

  async #prepareIndex(backend: Backend): Promise<void> {
    const exists = await this.#send(backend, 'setup', { method: 'HEAD', path: this.#path }, [404]);
    if (exists.statusCode !== 404) return this.#checkMapping(backend);
    if (!this.#options.createIndex) {
      throw new SessionError(
        'INVALID_OPTIONS',
        `index "${this.index}" does not exist and createIndex is false: create it with SESSION_INDEX_MAPPINGS (see the README)`,
        { scope: 'elasticsearch' },
      );
    }
    const template = await this.#send(
      backend,
      'setup',
      {
        method: 'PUT',
        path: `/_index_template/${encodeURIComponent(this.templateName)}`,
        body: {
          index_patterns: [this.index],
          priority: TEMPLATE_PRIORITY,
          template: { mappings: SESSION_INDEX_MAPPINGS },
        },
      },
      [400, 403, 404, 405],
    );
    if (template.statusCode >= 400) {
      this.#warn(
        { index: this.index, template: this.templateName, status: template.statusCode, error: errorOf(template.body) },
        `could not create index template "${this.templateName}"; creating index "${this.index}" with its mapping only ` +
          '(if the index is deleted, recreate it the same way rather than letting a write create it)',
      );
    }
    const created = await this.#send(
      backend,
      'setup',
      { method: 'PUT', path: this.#path, body: { mappings: SESSION_INDEX_MAPPINGS } },
      [400],
    );
    if (created.statusCode < 400) return;
    const error = errorOf(created.body);
    // Another process created it first.
    if (error.type === 'resource_already_exists_exception') return this.#checkMapping(backend);
    throw new SessionError(
      'STORE_UNAVAILABLE',
      `creating index "${this.index}" failed: ${error.type}: ${error.reason}`,
      {
        scope: 'elasticsearch',
      },
    );
  }

  /** Checks an existing index's mapping; fields it lacks are added (when allowed), conflicts refused. */
  async #checkMapping(backend: Backend): Promise<void> {
    const res = await this.#send(backend, 'setup', { method: 'GET', path: `${this.#path}/_mapping` }, [403]);
    if (res.statusCode === 403) {
      this.#warn({ index: this.index }, `cannot read the mapping of index "${this.index}"; it is not checked`);
      return;
    }
    const missing = new Set<string>();
    const wrong: string[] = [];
    for (const [name, entry] of Object.entries(isObject(res.body) ? res.body : {})) {
      const mappings = isObject(entry) && isObject(entry.mappings) ? entry.mappings : {};
      const properties = isObject(mappings.properties) ? mappings.properties : {};
      for (const [field, ok] of Object.entries(EXPECTED)) {
        const mapping = properties[field];
        if (mapping === undefined) missing.add(field);
        else if (!isObject(mapping) || !ok(mapping))
          wrong.push(`${name}: ${field} is mapped as ${JSON.stringify(mapping)}`);
      }
    }
    if (wrong.length > 0) {
      const expected = JSON.stringify(SESSION_INDEX_MAPPINGS.properties);
      throw new SessionError(
        'INVALID_OPTIONS',
        `index "${this.index}" has a mapping the store cannot use (${wrong.join('; ')}); expected ${expected}. ` +
          'Was it created by a write before the store set it up? Delete it or choose another index.',
        { scope: 'elasticsearch' },
      );
    }
    if (missing.size === 0) return;
    if (!this.#options.createIndex) {
      throw new SessionError(
        'INVALID_OPTIONS',
        `index "${this.index}" does not map ${[...missing].join(', ')} and createIndex is false: add them (SESSION_INDEX_MAPPINGS, see the README)`,
        { scope: 'elasticsearch' },
      );
    }
    const properties = Object.fromEntries(
      [...missing].map((field) => [
        field,
        SESSION_INDEX_MAPPINGS.properties[field as keyof typeof SESSION_INDEX_MAPPINGS.properties],
      ]),
    );
    await this.#send(backend, 'setup', { method: 'PUT', path: `${this.#path}/_mapping`, body: { properties } });
  }

  // --- logging and pruning -------------------------------------------------------------------

  #warn(object: object, message: string, code = 'TESSERA_ES_WARNING'): void {
    if (this.#options.logger) this.#options.logger.warn(object, `[tessera] [elasticsearch] ${message}`);
    else process.emitWarning(`[tessera] [elasticsearch] ${message}`, { type: 'TesseraWarning', code });
  }
}

/** A forward left by `move` (see MOVED_CREATED_AT). */
function isForward(source: unknown): boolean {
  return isObject(source) && source.createdAt === MOVED_CREATED_AT;
}

function toDoc(record: SessionRecord): Doc {
  return {
    fields: { ...record.fields },
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    userId: record.userId,
  };
}

/** Creates an {@link ElasticsearchStore}. */
export function elasticsearchStore(options?: ElasticsearchStoreOptions): ElasticsearchStore {
  return new ElasticsearchStore(options);
}
