import { SessionError, toStoreError } from '../../core/errors.ts';
import { shortKey } from '../../core/ids.ts';
import { type Logger, stderrLogger } from '../../core/report.ts';
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
  type UserSessionEntry,
  validateRecord,
  type WriteOutcome,
} from '../../core/store.ts';
import { type Backend, type RedisClientKind, userBackend } from './clients.ts';
import { describeTarget, ownedBackend } from './connection.ts';
import { type RedisStoreOptions, type ResolvedRedisOptions, resolveRedisOptions } from './options.ts';
import { DESTROY, DROP_EXPIRED, INDEX, MOVE_OUT, type Script, SET, SET_IF_NEWER, UPDATE } from './scripts.ts';

/** Data fields live beside the metadata in one hash; this prefix keeps their names apart. */
const DATA = 'd:';

/**
 * A hash reply as a flat `[name, value, name, value...]` list: RESP2 arrays (both libraries)
 * as they are, RESP3 maps (objects or `Map`s) flattened.
 */
function flat(reply: unknown): readonly unknown[] {
  if (Array.isArray(reply)) return reply;
  const entries =
    reply instanceof Map ? [...reply] : typeof reply === 'object' && reply !== null ? Object.entries(reply) : [];
  return entries.flat();
}

/** A store key: the SHA-256 of an ID, base64url. */
const SESSION_KEY = /^[A-Za-z0-9_-]{43}$/;

const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
const isNumeric = (value: string | null): value is string => value !== null && /^-?\d+(\.\d+)?$/.test(value);

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * A Redis store: one hash per session at `${prefix}${key}` (data fields `d:<name>`, metadata
 * `createdAt`, `expiresAt`, `userId`, `indexedUntil`), Redis expiry set to the record's expiry
 * on every write, writes as single-key Lua scripts (atomic, Cluster-safe), and a per-user index
 * (a sorted set per user) for listing and revoking a user's sessions without SCAN.
 *
 * Commands per request: a read is one HGETALL; a change or a touch is one EVALSHA more; a login
 * (a new owner) costs one index write more.
 */
export class RedisStore implements Store {
  readonly name = 'redis';
  readonly atomicPatch = true;
  /** The prefix of every key the store writes. */
  readonly prefix: string;
  /** The kind of client the store talks through. */
  readonly clientKind: RedisClientKind;
  readonly #options: ResolvedRedisOptions;
  readonly #logger: Logger | undefined;
  #backend: Promise<Backend> | null = null;
  /** The backend once it has been ready, for the fast path of #send. */
  #live: Backend | null = null;
  #closed = false;
  #failing = false;
  /** With `durableCommit`: the last WAIT found fewer replicas than needed, or failed (see {@link #replicasOnline}). */
  #replicasShort = false;
  /** With `durableCommit` on one master connection: whether a WAIT is out, and the writes waiting for the next. */
  #waiting = false;
  #waiters: Array<{ resolve(acked: number): void; reject(error: unknown): void }> = [];
  /** The read tier whose tracking rides on this store's connection (see {@link trackOwnWrites}). */
  #tracker: object | null = null;
  /**
   * Whether the write scripts read their key back (see READ_BACK in scripts.ts): from the moment
   * a tier starts to track on this connection, so that no write sent once tracking may be on
   * goes without.
   */
  #readBack = false;

  constructor(options: RedisStoreOptions = {}) {
    this.#options = resolveRedisOptions(options);
    this.prefix = this.#options.prefix;
    this.clientKind = this.#options.client?.kind ?? 'node-redis';
    this.#logger = this.#options.logger ?? (this.#options.debug ? stderrLogger('redis') : undefined);
    if (this.#options.connection) {
      // Loading node-redis and building its client takes a few hundred ms the first time: done
      // now, in the background, so that the first request does not pay for it. No connection
      // is opened until the first call (or `ready()`).
      this.#backend = this.#open();
      this.#backend.catch(() => {});
    }
  }

  /**
   * Opens the connection now (e.g. at startup, to fail early on a wrong address or password)
   * instead of on the first call. Optional; with a client of your own it only checks readiness.
   */
  async ready(): Promise<void> {
    await this.#ready('connect');
  }

  get(key: string): Promise<SessionRecord | null> {
    const redisKey = this.prefix + key;
    return this.#send('get', redisKey, ['HGETALL', redisKey]).then(
      (reply) => this.#found(redisKey, reply),
      (error: unknown) => {
        const cause = error instanceof SessionError ? error.cause : error;
        if (cause instanceof Error && cause.message.startsWith('WRONGTYPE')) {
          throw this.#corrupt(redisKey, 'the key holds a value that is not a hash');
        }
        throw error;
      },
    );
  }

  /** What a read found: the live record, or `null` (none, a forward, or expired and now deleted). */
  #found(redisKey: string, reply: unknown): SessionRecord | null | Promise<null> {
    const record = this.#record(redisKey, flat(reply));
    if (record === null) return null;
    const now = Date.now();
    if (record.expiresAt > now) return record;
    // Expired, yet the key is still there (its TTL was removed by hand): delete it now, unless a
    // concurrent write has given it a new expiry meanwhile.
    return this.#eval('get', DROP_EXPIRED, redisKey, [String(now)]).then(() => null);
  }

  /** A session hash as a record (one pass over the reply); `null` for no hash or a forward left by a move. */
  #record(redisKey: string, reply: readonly unknown[]): SessionRecord | null {
    if (reply.length === 0) return null;
    const fields: Record<string, string> = {};
    let createdAt: string | null = null;
    let expiresAt: string | null = null;
    let userId: string | null = null;
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const name = String(reply[i]);
      const value = String(reply[i + 1]);
      if (name.startsWith(DATA)) {
        const field = name.slice(DATA.length);
        if (RESERVED_KEYS.has(field)) {
          throw this.#corrupt(redisKey, `it has a field named "${field}", which is never a session key`);
        }
        fields[field] = value;
      } else if (name === 'createdAt') createdAt = value;
      else if (name === 'expiresAt') expiresAt = value;
      else if (name === 'userId') userId = value;
      else if (name === 'movedAt') return null;
    }
    const created = this.#time(redisKey, 'createdAt', createdAt);
    const record = { fields, createdAt: created, expiresAt: this.#time(redisKey, 'expiresAt', expiresAt), userId };
    // Its error names the store and the shortened key only, like #corrupt's.
    validateRecord(record, `the session hash ${this.#shown(redisKey)}`, 'redis');
    return record;
  }

  #time(redisKey: string, name: string, value: string | null): number {
    if (value === null) throw this.#corrupt(redisKey, `the metadata field ${name} is missing`);
    if (!isNumeric(value)) throw this.#corrupt(redisKey, `${name} is not a number (${JSON.stringify(value)})`);
    return Number(value);
  }

  set(key: string, record: SessionRecord): Promise<void> {
    // Without an owner to index first (the usual new session), one script call and its reply.
    const indexed = this.#indexOwner(key, record);
    if (indexed === null) return this.#setRecord(key, record, '');
    return indexed.then((covered) => this.#setRecord(key, record, covered));
  }

  #setRecord(key: string, record: SessionRecord, covered: string): Promise<void> {
    const script = this.#readBack ? SET.readBack : SET.plain;
    const redisKey = this.prefix + key;
    return this.#evalCommand('set', script, redisKey, setCommand(script, redisKey, record, covered)).then((reply) => {
      const previous = text(reply);
      if (previous !== null && previous !== record.userId) return this.#unindex(previous, [key]);
    });
  }

  /** One script: SET unless the hash expires as late or later, or is a forward (see SET_IF_NEWER). */
  async setIfNewer(key: string, record: SessionRecord): Promise<boolean> {
    const covered = (await this.#indexOwner(key, record)) ?? '';
    const redisKey = this.prefix + key;
    const command = setCommand(SET_IF_NEWER, redisKey, record, covered);
    const reply = (await this.#evalCommand('setIfNewer', SET_IF_NEWER, redisKey, command)) as unknown[];
    if (Number(reply[0]) !== 1) return false;
    const previous = text(reply[1]);
    if (previous !== null && previous !== record.userId) await this.#unindex(previous, [key]);
    return true;
  }

  /**
   * A live record with an owner joins the owner's index before it is written; resolves to how
   * long the index covers it. `null` when there is nothing to index.
   */
  #indexOwner(key: string, record: SessionRecord): Promise<string> | null {
    const now = Date.now();
    const userId = record.userId;
    if (userId === null || record.expiresAt <= now) return null;
    const covered = this.#coverUntil(record.expiresAt, now);
    return this.#index(userId, key, covered, now).then(() => covered);
  }

  /**
   * Every live session: SCAN of the prefix on every master (each node of a cluster, the master
   * of a Sentinel group), then one HGETALL per key (pipelined, routed to the key's node).
   */
  async *entries(options?: EntriesOptions): AsyncIterable<StoredSession[]> {
    const size = batchSizeOf(options, 'redis');
    const backend = await this.#ready('entries');
    const pattern = `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let masters: Awaited<ReturnType<Backend['masters']>>;
    try {
      masters = await backend.masters();
    } catch (error) {
      throw toStoreError(error, 'redis', 'entries');
    }
    let pending: string[] = [];
    for (const node of masters) {
      let cursor = '0';
      do {
        this.#debug('entries', 'SCAN', pattern);
        let reply: [unknown, unknown[]];
        try {
          reply = (await node(['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(size)])) as [unknown, unknown[]];
        } catch (error) {
          throw toStoreError(error, 'redis', 'entries');
        }
        cursor = String(reply[0]);
        for (const redisKey of reply[1]) {
          const key = String(redisKey).slice(this.prefix.length);
          // User indexes and anything else under the prefix: session keys are ID hashes.
          if (SESSION_KEY.test(key)) pending.push(key);
        }
        while (pending.length >= size || (pending.length > 0 && cursor === '0')) {
          const batch = await this.#entriesOf(pending.slice(0, size));
          pending = pending.slice(size);
          if (batch.length > 0) yield batch;
        }
      } while (cursor !== '0');
    }
  }

  async #entriesOf(keys: string[]): Promise<StoredSession[]> {
    const now = Date.now();
    const replies = await Promise.all(
      keys.map((key) => this.#send('entries', this.prefix + key, ['HGETALL', this.prefix + key])),
    );
    const batch: StoredSession[] = [];
    keys.forEach((key, i) => {
      const record = this.#record(this.prefix + key, flat(replies[i]));
      if (record !== null && record.expiresAt > now) batch.push({ key, record });
    });
    return batch;
  }

  patch(key: string, change: ChangeSet): Promise<WriteOutcome> {
    return this.#update('patch', key, change.expiresAt, change.userId, change.set, change.unset);
  }

  touch(key: string, expiresAt: number): Promise<WriteOutcome> {
    return this.#update('touch', key, expiresAt, undefined, NO_FIELDS, NO_NAMES);
  }

  /**
   * Two single-key steps (the keys live in different slots on a cluster): MOVE_OUT takes the old
   * hash and leaves a forward, then the new hash is written. Writes to the old key commit either
   * before the first step (and move with it) or are refused by the forward.
   */
  async move(from: string, to: string, change: ChangeSet, forwardUntil: number): Promise<SessionRecord | null> {
    const redisKey = this.prefix + from;
    const now = Date.now();
    const reply = await this.#eval('move', MOVE_OUT, redisKey, [
      String(now),
      expireAt(Math.max(forwardUntil, now + 1)),
    ]);
    const current = reply === null || reply === undefined ? null : this.#record(redisKey, flat(reply));
    if (current === null) return null;
    const moved = applyChangeSet(current, change);
    await this.set(to, moved);
    if (current.userId !== null) await this.#unindex(current.userId, [from]);
    return moved;
  }

  async destroy(key: string): Promise<void> {
    const reply = (await this.#eval('destroy', DESTROY, this.prefix + key, [''])) as unknown[];
    const owner = text(reply[1]);
    if (owner !== null) await this.#unindex(owner, [key]);
  }

  async listByUser(userId: string): Promise<UserSessionEntry[]> {
    const indexKey = this.#indexKey(userId);
    const now = Date.now();
    const members = (await this.#send('listByUser', indexKey, [
      'ZRANGEBYSCORE',
      indexKey,
      `(${now}`,
      '+inf',
    ])) as string[];
    // Concurrent commands: node-redis and ioredis pipeline them on one connection, and on a
    // cluster each goes to the node owning its key (one pipeline would be CROSSSLOT).
    const metas = await Promise.all(
      members.map(
        (member) =>
          this.#send('listByUser', this.prefix + member, [
            'HMGET',
            this.prefix + member,
            'createdAt',
            'expiresAt',
            'userId',
            DATA + META_FIELD,
          ]) as Promise<unknown[]>,
      ),
    );
    const entries: UserSessionEntry[] = [];
    const stale: string[] = [];
    members.forEach((member, i) => {
      const [createdAt = null, expiresAt = null, owner = null, meta = null] = (metas[i] ?? []).map(text);
      const gone = expiresAt === null || (isNumeric(expiresAt) && Number(expiresAt) <= now);
      if (gone || owner !== userId) stale.push(member);
      else if (isNumeric(createdAt) && isNumeric(expiresAt)) {
        const entry: UserSessionEntry = {
          key: member,
          createdAt: Number(createdAt),
          expiresAt: Number(expiresAt),
          userId,
        };
        if (meta !== null) entry.meta = meta;
        entries.push(entry);
      }
    });
    if (stale.length > 0) await this.#unindex(userId, stale);
    return entries.sort((a, b) => a.createdAt - b.createdAt);
  }

  async destroyByUser(userId: string): Promise<number> {
    const indexKey = this.#indexKey(userId);
    const members = (await this.#send('destroyByUser', indexKey, ['ZRANGE', indexKey, '0', '-1'])) as string[];
    // One conditional delete per session (never a multi-key DEL: CROSSSLOT on a cluster); a
    // session that has meanwhile passed to another user is left alone.
    const replies = await Promise.all(
      members.map(
        (member) => this.#eval('destroyByUser', DESTROY, this.prefix + member, [userId]) as Promise<unknown[]>,
      ),
    );
    // ZREM rather than DEL of the index: a login that lands meanwhile keeps its entry.
    if (members.length > 0) await this.#unindex(userId, members);
    return replies.filter((reply) => Number(reply[0]) === 1).length;
  }

  /** Number of session hashes under the prefix (SCAN over every master; user indexes not counted). */
  async count(): Promise<number> {
    const backend = await this.#ready('count');
    const pattern = `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const indexPrefix = `${this.prefix}user:`;
    let total = 0;
    try {
      for (const node of await backend.masters()) {
        let cursor = '0';
        do {
          this.#debug('count', 'SCAN', pattern);
          const [next, keys] = (await node(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [
            unknown,
            unknown[],
          ];
          cursor = String(next);
          for (const key of keys) if (!String(key).startsWith(indexPrefix)) total++;
        } while (cursor !== '0');
      }
    } catch (error) {
      throw toStoreError(error, 'redis', 'count');
    }
    return total;
  }

  /**
   * The Redis server's clock (TIME), in epoch ms: key expiry runs on it, while `expiresAt` is
   * written from this process's clock (`tessera doctor` compares the two).
   */
  async serverTime(): Promise<number> {
    const [seconds, micros] = (await this.#send('serverTime', '', ['TIME'])) as unknown[];
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /**
   * What `tessera doctor` reports of Redis's expiry: the milliseconds left on `key` (PTTL: -1 no
   * expiry, -2 no key), and the server's `maxmemory-policy`, or `null` where CONFIG is refused
   * (managed services often rename it).
   */
  async expiryPolicy(key: string): Promise<{ ttlMs: number; evictionPolicy: string | null }> {
    const ttlMs = Number(await this.#send('expiryPolicy', this.prefix + key, ['PTTL', this.prefix + key]));
    let evictionPolicy: string | null = null;
    try {
      const reply = flat(await this.#send('expiryPolicy', '', ['CONFIG', 'GET', 'maxmemory-policy']));
      evictionPolicy = reply.length >= 2 ? String(reply[1]) : null;
    } catch {
      evictionPolicy = null; // CONFIG disabled or renamed: not knowable from here
    }
    return { ttlMs, evictionPolicy };
  }

  /**
   * For the read tier's `redisTracking` (not an application API): turns on tracking on the
   * connection the store reads and writes through (default mode: Redis remembers the keys it
   * read, and the write scripts read back what they wrote), redirected to the listener
   * connection `listener` (client ID) named `listenerName`, with NOLOOP, so that the process
   * hears of every change to what it holds but its own writes, and its tier can keep what it
   * wrote. `lost` is called once when that connection goes. `false` when the store cannot: a
   * client of the app's own (its connection is not the store's to change), a Cluster or
   * Sentinel client, a listener on another server, Redis older than 7.0.5, or another tier
   * already tracking through this store (`owner` tells them apart).
   */
  async trackOwnWrites(owner: object, listener: string, listenerName: string, lost: () => void): Promise<boolean> {
    if (this.#tracker !== null && this.#tracker !== owner) return false;
    this.#readBack = true;
    let tracking = false;
    try {
      const backend = await this.#ready('track');
      tracking = backend.track ? await backend.track(listener, listenerName, lost) : false;
    } catch (error) {
      throw toStoreError(error, 'redis', 'track');
    } finally {
      if (tracking) this.#tracker = owner;
      else this.#readBack = this.#tracker !== null;
    }
    return tracking;
  }

  /** Closes the client the store created; a client passed in as `client` is left open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const backend = await this.#backend?.catch(() => null);
    await backend?.close();
  }

  /**
   * One UPDATE script call. A write that names no new owner (most of them) is a then-chain: it
   * runs on every write. Naming an owner, or finding the owner's index short, goes on in turns.
   */
  #update(
    action: 'patch' | 'touch',
    key: string,
    expiresAt: number,
    userId: string | null | undefined,
    set: Readonly<Record<string, string>>,
    unset: readonly string[],
  ): Promise<WriteOutcome> {
    const redisKey = this.prefix + key;
    const now = Date.now();
    const command = updateCommand(redisKey, now, expiresAt, set, unset);
    if (typeof userId === 'string') return this.#updateInTurns(action, key, command, expiresAt, userId, now, null);
    const mode = userId === null ? 'clear' : 'keep';
    return this.#sendUpdate(action, command, mode, '', '').then((reply) => {
      if (Number(reply[0]) !== 2) return this.#updated(reply, key, userId);
      return this.#updateInTurns(action, key, command, expiresAt, userId, now, String(reply[1]));
    });
  }

  /**
   * UPDATE when an index must be written first: the new owner's (`userId`), or the current
   * owner's (`owner`), which a first attempt found short of the new expiry.
   */
  async #updateInTurns(
    action: 'patch' | 'touch',
    key: string,
    command: string[],
    expiresAt: number,
    userId: string | null | undefined,
    now: number,
    owner: string | null,
  ): Promise<WriteOutcome> {
    // Without a new owner, the current one's index entry is extended ('cover'), never replaced.
    const mode = userId === undefined ? 'cover' : userId === null ? 'clear' : 'set';
    let user = typeof userId === 'string' ? userId : (owner as string);
    // Three sends at most, the first attempt's included.
    for (let attempt = owner === null ? 0 : 1; attempt < 3; attempt++) {
      // The index entry first (the new owner's, or the one the session would outlive), then the session.
      const covered = this.#coverUntil(expiresAt, now);
      await this.#index(user, key, covered, now);
      const reply = await this.#sendUpdate(action, command, mode, user, covered);
      if (Number(reply[0]) !== 2) return this.#updated(reply, key, userId);
      user = String(reply[1]);
    }
    throw new SessionError('STORE_UNAVAILABLE', `${action} of ${shortKey(key)} kept racing owner changes`, {
      scope: 'redis',
    });
  }

  /** Sends UPDATE's command with its script and owner slots filled. */
  #sendUpdate(action: string, command: string[], mode: string, user: string, covered: string): Promise<unknown[]> {
    const update = this.#readBack ? UPDATE.readBack : UPDATE.plain;
    command[1] = update.sha;
    command[UPDATE_MODE] = mode;
    command[UPDATE_MODE + 1] = user;
    command[UPDATE_MODE + 2] = covered;
    return this.#evalCommand(action, update, command[3] as string, command) as Promise<unknown[]>;
  }

  /** UPDATE's outcome (status 0, 1 or 3); a session that changed owner leaves the old owner's index. */
  #updated(reply: unknown[], key: string, userId: string | null | undefined): WriteOutcome | Promise<WriteOutcome> {
    const status = Number(reply[0]);
    if (status === 0) return false;
    if (status === 3) return 'moved';
    const previous = text(reply[1]);
    if (userId !== undefined && previous !== null && previous !== userId) {
      return this.#unindex(previous, [key]).then(() => true);
    }
    return true;
  }

  #coverUntil(expiresAt: number, now: number): string {
    return expireAt(Math.max(expiresAt, now + this.#options.userIndexTtlMs));
  }

  #indexKey(userId: string): string {
    return `${this.prefix}user:${userId}`;
  }

  async #index(userId: string, key: string, covered: string, now: number): Promise<void> {
    await this.#eval('index', INDEX, this.#indexKey(userId), [String(now), key, covered]);
  }

  async #unindex(userId: string, keys: string[]): Promise<void> {
    const indexKey = this.#indexKey(userId);
    await this.#send('unindex', indexKey, ['ZREM', indexKey, ...keys]);
  }

  /** A session hash's key for messages and logs: the prefix and the shortened store key. */
  #shown(redisKey: string): string {
    return this.prefix + shortKey(redisKey.slice(this.prefix.length));
  }

  #corrupt(redisKey: string, problem: string, cause?: unknown): SessionError {
    const shown = this.#shown(redisKey);
    return new SessionError('CORRUPT_RECORD', `the session hash ${shown} is corrupt: ${problem} (left in place)`, {
      scope: 'redis',
      cause,
    });
  }

  /**
   * Runs a script by EVALSHA, loading it with EVAL when this server has not seen it yet. Every
   * script writes, so with `durableCommit` each is followed by WAIT (see {@link #durable}).
   */
  #eval(action: string, script: Script, key: string, args: string[]): Promise<unknown> {
    return this.#evalCommand(action, script, key, ['EVALSHA', script.sha, '1', key, ...args]);
  }

  /** {@link #eval} of a whole `EVALSHA sha 1 key ...args` command. */
  #evalCommand(action: string, script: Script, key: string, command: string[]): Promise<unknown> {
    // With durableCommit: replicas first when they were short, and WAIT after the write.
    if (this.#options.durableCommit) return this.#evalDurable(action, script, key, command);
    return this.#send(action, key, command, script.name).catch((error: unknown) =>
      this.#evalAgain(error, action, script, key, command),
    );
  }

  async #evalDurable(action: string, script: Script, key: string, command: string[]): Promise<unknown> {
    if (this.#replicasShort) await this.#replicasOnline(action, key);
    let reply: unknown;
    try {
      reply = await this.#send(action, key, command, script.name);
    } catch (error) {
      reply = await this.#evalAgain(error, action, script, key, command);
    }
    await this.#durable(action, key);
    return reply;
  }

  /**
   * After a restart or failover, or on a cluster node that has not run it yet, the script cache is
   * empty: EVAL runs the script and caches it for the next EVALSHA. Any other error is thrown.
   */
  #evalAgain(error: unknown, action: string, script: Script, key: string, command: string[]): Promise<unknown> {
    const cause = error instanceof SessionError ? error.cause : error;
    if (!isNoScript(cause)) {
      // Failed to reach the master (an outage, a failover): ask for replicas before the next write.
      if (this.#options.durableCommit) this.#replicasShort = true;
      return Promise.reject(error);
    }
    return this.#send(action, key, ['EVAL', script.source, ...command.slice(2)], script.name);
  }

  /**
   * With `durableCommit`: WAIT until enough replicas have every write sent so far on this
   * connection (routed by `key`, so on a cluster it is the connection to the key's master).
   * Fewer acknowledgements in time fail the write: the master has it, but a failover may not.
   *
   * A WAIT blocks its connection until it returns, and the connection is shared by every
   * request: without replicas each WAIT runs to `timeoutMs`, and WAITs one after another held
   * reads behind them for seconds. So on one master connection (not a cluster) one WAIT is out
   * at a time, and the writes answered while it is out share the next one (a WAIT covers every
   * write its connection sent before it); a failure sends the next writes to
   * {@link #replicasOnline} first.
   */
  async #durable(action: string, key: string): Promise<void> {
    const durable = this.#options.durableCommit;
    if (!durable) return;
    const acked =
      this.clientKind === 'node-redis-cluster'
        ? await this.#wait(action, key)
        : await new Promise<number>((resolve, reject) => {
            this.#waiters.push({ resolve, reject });
            if (this.#waiters.length === 1 && !this.#waiting) this.#nextWait(action, key);
          });
    if (acked < durable.replicas) {
      throw new SessionError(
        'STORE_UNAVAILABLE',
        `${action}: ${acked} of ${durable.replicas} replicas acknowledged the write within ${durable.timeoutMs} ms (durableCommit)`,
        { scope: 'redis' },
      );
    }
  }

  /** Sends one WAIT for the writes waiting now; the writes answered meanwhile wait for the next. */
  #nextWait(action: string, key: string): void {
    const batch = this.#waiters;
    this.#waiters = [];
    this.#waiting = true;
    this.#wait(action, key)
      .then(
        (acked) => {
          for (const waiter of batch) waiter.resolve(acked);
        },
        (error: unknown) => {
          for (const waiter of batch) waiter.reject(error);
        },
      )
      .finally(() => {
        this.#waiting = false;
        if (this.#waiters.length > 0) this.#nextWait(action, key);
      });
  }

  /** One WAIT; notes whether the replicas fell short (an error counts as short). */
  async #wait(action: string, key: string): Promise<number> {
    const { replicas, timeoutMs } = this.#options.durableCommit!;
    try {
      const acked = Number(await this.#send(action, key, ['WAIT', String(replicas), String(timeoutMs)]));
      this.#replicasShort = acked < replicas;
      return acked;
    } catch (error) {
      this.#replicasShort = true;
      throw error;
    }
  }

  /**
   * While replicas are short (the last WAIT was), each durable write first asks the key's master
   * for its online replicas (`ROLE`, instant) and fails before writing when there are too few.
   * A WAIT blocks its connection until it returns, and the connection is shared: with no replica
   * every write's WAIT ran to `timeoutMs`, one after another, and reads queued behind them for
   * seconds (store timeouts after a failover, until the old master had rejoined as a replica).
   */
  async #replicasOnline(action: string, key: string): Promise<void> {
    const needed = this.#options.durableCommit?.replicas ?? 0;
    const role = await this.#send(action, key, ['ROLE']);
    // A master's ROLE: ['master', offset, [[host, port, offset], ...]], online replicas only.
    const master = Array.isArray(role) && role[0] === 'master';
    const online = master && Array.isArray(role[2]) ? role[2].length : 0;
    if (online >= needed) return;
    throw new SessionError(
      'STORE_UNAVAILABLE',
      master
        ? `${action}: ${online} of ${needed} replicas online (durableCommit); nothing was written`
        : `${action}: the server is not a master (ROLE ${Array.isArray(role) ? String(role[0]) : 'unknown'}; failover?); nothing was written`,
      { scope: 'redis' },
    );
  }

  #send(action: string, key: string, args: string[], script?: string): Promise<unknown> {
    // Connected and usable right now (the usual case): no readiness round of promises.
    const live = this.#live;
    if (live === null || this.#closed || live.usable?.() !== true)
      return this.#sendWhenReady(action, key, args, script);
    this.#debug(action, args[0] as string, key, script);
    let sent: Promise<unknown>;
    try {
      sent = live.send(key, args);
    } catch (error) {
      sent = Promise.reject(error);
    }
    return sent.catch((error: unknown) => {
      throw toStoreError(error, 'redis', action);
    });
  }

  async #sendWhenReady(action: string, key: string, args: string[], script?: string): Promise<unknown> {
    const backend = await this.#ready(action);
    this.#debug(action, args[0] as string, key, script);
    try {
      return await backend.send(key, args);
    } catch (error) {
      throw toStoreError(error, 'redis', action);
    }
  }

  async #ready(action: string): Promise<Backend> {
    if (this.#closed) throw new SessionError('STORE_CLOSED', `${action} after close()`, { scope: 'redis' });
    try {
      this.#backend ??= this.#open();
      const backend = await this.#backend;
      await backend.ready();
      this.#live = backend;
      return backend;
    } catch (error) {
      throw toStoreError(error, 'redis', action);
    }
  }

  async #open(): Promise<Backend> {
    const { client, connection } = this.#options;
    if (client) return userBackend(client.value, client.kind);
    const settings = connection!;
    const target = describeTarget(settings);
    return ownedBackend(settings, (event, error) => {
      if (event === 'error') {
        if (!this.#failing) this.#logger?.warn({ store: 'redis', target, error: error?.message }, 'connection failed');
        this.#failing = true;
      } else if (this.#failing) {
        this.#failing = false;
        this.#logger?.warn({ store: 'redis', target }, 'connection restored');
      }
    }).catch((error) => {
      this.#backend = null;
      throw error;
    });
  }

  #debug(action: string, command: string, key: string, script?: string): void {
    if (!this.#options.debug || !this.#logger) return;
    const shown = key.startsWith(this.prefix) ? this.prefix + shortKey(key.slice(this.prefix.length)) : shortKey(key);
    this.#logger.debug({ store: 'redis', action, command, ...(script ? { script } : {}), key: shown }, 'redis command');
  }
}

/** Where UPDATE's mode (then user and covered) and its count of fields sit in its EVALSHA command. */
const UPDATE_MODE = 7;
const UPDATE_FIELDS = 10;
const NO_FIELDS: Readonly<Record<string, string>> = Object.freeze({});
const NO_NAMES: readonly string[] = Object.freeze([]);

/** PEXPIREAT takes whole milliseconds. */
function expireAt(ms: number): string {
  return String(Math.ceil(ms));
}

/**
 * UPDATE's EVALSHA command whole, at its final length: UPDATE's ARGV (see scripts.ts), then the
 * fields (own ones only, as Object.entries gives them), then the removed names. The script and
 * the owner slots are filled on each attempt.
 */
function updateCommand(
  redisKey: string,
  now: number,
  expiresAt: number,
  set: Readonly<Record<string, string>>,
  unset: readonly string[],
): string[] {
  let fields = 0;
  for (const name in set) if (Object.hasOwn(set, name)) fields++;
  const command: string[] = new Array(UPDATE_FIELDS + 1 + 2 * fields + unset.length);
  command[0] = 'EVALSHA';
  command[2] = '1';
  command[3] = redisKey;
  command[4] = String(now);
  command[5] = String(expiresAt);
  command[6] = expireAt(expiresAt);
  command[UPDATE_FIELDS] = String(fields);
  let at = UPDATE_FIELDS + 1;
  for (const name in set) {
    if (!Object.hasOwn(set, name)) continue;
    command[at++] = DATA + name;
    command[at++] = set[name] as string;
  }
  for (const name of unset) command[at++] = DATA + name;
  return command;
}

/**
 * The EVALSHA command of SET or SET_IF_NEWER for a record (ARGV as scripts.ts gives them), as
 * one array: the fields go in with their `d:` names (own ones only, as Object.entries gives them).
 */
function setCommand(script: Script, redisKey: string, record: SessionRecord, covered: string): string[] {
  const command = [
    'EVALSHA',
    script.sha,
    '1',
    redisKey,
    String(record.createdAt),
    String(record.expiresAt),
    expireAt(record.expiresAt),
    record.userId ?? '',
    covered,
  ];
  const { fields } = record;
  for (const name in fields) if (Object.hasOwn(fields, name)) command.push(DATA + name, fields[name] as string);
  return command;
}

/** Creates a {@link RedisStore}. */
export function redisStore(options?: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}
