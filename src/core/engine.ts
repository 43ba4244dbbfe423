import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import { FieldCodec } from './codec.ts';
import { type Deadline, Deadlines } from './deadlines.ts';
import { Counters, commitChannel, loadChannel, type MetricsSnapshot, storeChannel, traced } from './diagnostics.ts';
import { SessionError, toStoreError } from './errors.ts';
import { CookieSigner, generateId, hashId, hashIdAsync, parseUnsignedId, shortKey, syncCrypto } from './ids.ts';
import { keepIp, type Meta, metaLifetime, parseMeta, USER_AGENT_MAX } from './meta.ts';
import { type ResolvedOptions, resolveOptions, type SessionOptions } from './options.ts';
import {
  type ClientInfo,
  Session,
  type SessionData,
  type SessionHost,
  sessionInternals as state,
  type UserSession,
  type WriteKind,
  type WritePlan,
} from './session.ts';
import {
  applyChangeSet,
  type ChangeSet,
  checkStore,
  META_FIELD,
  notSupported,
  patchRecord,
  type SessionRecord,
  type Store,
  supports,
  touchRecord,
  type UserSessionEntry,
} from './store.ts';

/** What `commit` did, for the `commit` event and for adapters. */
export interface CommitResult {
  /** The `Set-Cookie` header value to send, or `null` when the cookie does not change (always with a header transport). */
  setCookie: string | null;
  /**
   * With a header `transport`: the signed session value to send in the transport's response
   * header (a session created or regenerated), `''` when the client must drop its value (the
   * session ended), `null` when nothing changes. Absent with cookies.
   */
  token?: string | null;
  /** The store write the commit made. */
  write: WriteKind;
  /**
   * The request's changes found the record destroyed by another request (a logout or a
   * revocation won the race) and were dropped; the cookie is cleared. See `onLostWrite`.
   */
  lost: boolean;
}

/** Per-request facts an adapter passes in. */
export interface RequestContext {
  /** The request came over HTTPS (directly or through a trusted proxy). */
  secure?: boolean | undefined;
  /**
   * The response's status, when the adapter knows it: a 5xx skips the store write unless
   * `commitOnServerError` is on.
   */
  status?: number | undefined;
}

/**
 * Events, in order of a request's life. Listeners may be async and are awaited in order; a
 * `before*` listener that throws aborts the action.
 */
export interface SessionEvents {
  /** Before a stored session is read (only for requests with a validly signed cookie). */
  beforeLoad: [session: Session<object>];
  load: [session: Session<object>];
  beforeCreate: [session: Session<object>];
  create: [session: Session<object>];
  beforeCommit: [session: Session<object>];
  commit: [session: Session<object>, result: CommitResult];
  beforeDestroy: [session: Session<object>];
  destroy: [session: Session<object>];
  beforeRegenerate: [session: Session<object>];
  regenerate: [session: Session<object>, oldKey: string | null];
  /** A write found its record destroyed meanwhile, and its changes were dropped; the key is the ID hash. */
  lost: [session: Session<object>, key: string];
  /** A stored record could not be decoded; the key is the ID hash. */
  corrupt: [error: SessionError, key: string];
  /** A store call failed (also when `onStoreError` is `'degrade'`). */
  storeError: [error: SessionError];
}

/** Verified cookie values remembered per engine (about 200 bytes each). */
const VERIFIED_CACHE_ENTRIES = 10_000;

/**
 * How long a regenerated session's old key answers "moved" (refusing writes of requests that
 * loaded it before the move) before it is simply gone.
 */
const MOVE_FORWARD_MS = 60_000;

/** `Authorization: Bearer <value>` (the scheme is case-insensitive, RFC 9110). */
const BEARER = /^\s*bearer\s+(\S+)\s*$/i;

/** A commit with nothing to write. */
const NO_PLAN: WritePlan = { kind: 'none' };

/** How long the first connection of a store may take (loading a client library included). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Settles like `promise`, or rejects with `timeoutError()` after `ms`. The promise that lost the
 * race gets a handler, so its later rejection is not reported as unhandled.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  // One promise and one timer per call (a race of two promises and a `finally` cost three more).
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

interface CookieTemplate {
  /** `name=` */
  head: string;
  /** The attributes the `cookie` library writes before `Expires`. */
  before: string;
  /** The attributes after it. */
  after: string;
  /** The whole header that clears the cookie. */
  clear: string;
}

/** What the store calls of one engine share (see {@link StoreCall}). */
interface StoreCalls {
  readonly deadlines: Deadlines;
  /** The error of a call that ran out of time. */
  timeout(action: string): SessionError;
  /** Counts, logs and reports a failed call; resolves to the error its caller gets. */
  failed(error: unknown, action: string, key: string): Promise<SessionError>;
  /** With `debug`: logs a call that succeeded, with its time. */
  readonly debug: ((action: string, key: string, ms: number) => void) | null;
}

/**
 * One store call under `storeTimeoutMs`, settled by whichever comes first, the store or the
 * deadline. The call is its own entry among the engine's deadlines and holds what settling needs,
 * so that a call (one sits on every request's path) allocates its promise, this object and the
 * two callbacks that hand the outcome over.
 */
class StoreCall<T> implements Deadline {
  at = 0;
  index = -1;
  #done = false;
  #resolve: ((value: T) => void) | null = null;
  #reject: ((error: unknown) => void) | null = null;
  readonly #calls: StoreCalls;
  readonly #action: string;
  readonly #key: string;

  constructor(calls: StoreCalls, action: string, key: string) {
    this.#calls = calls;
    this.#action = action;
    this.#key = key;
  }

  /** The caller's promise of `pending`'s outcome, or of a `STORE_TIMEOUT` when that comes first. */
  settle(pending: Promise<T>): Promise<T> {
    const promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#calls.deadlines.add(this);
    pending.then(
      (result) => this.#succeeded(result),
      (error) => this.#failed(error),
    );
    return promise;
  }

  expire(): void {
    this.#failed(this.#calls.timeout(this.#action));
  }

  #succeeded(result: T): void {
    if (this.#done) return;
    this.#done = true;
    this.#calls.deadlines.settle(this);
    this.#calls.debug?.(this.#action, this.#key, Math.round((performance.now() - this.at) * 100) / 100);
    (this.#resolve as (value: T) => void)(result);
  }

  #failed(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#calls.deadlines.settle(this);
    const reject = this.#reject as (error: unknown) => void;
    this.#calls.failed(error, this.#action, this.#key).then(reject, reject);
  }
}

/**
 * The Set-Cookie text around the value, worked out once per engine by the `cookie` library
 * (validation and attribute order included), so a write costs a concatenation, not a
 * serialization. IDs and tags are base64url, which is always a valid cookie value.
 */
function cookieTemplate(cookie: ResolvedOptions['cookie'], secure: boolean): CookieTemplate {
  const attributes = {
    path: cookie.path,
    domain: cookie.domain,
    httpOnly: cookie.httpOnly,
    sameSite: cookie.sameSite,
    secure,
    partitioned: cookie.partitioned || undefined,
  } as const;
  const epoch = new Date(0);
  const head = `${cookie.name}=`;
  const bare = serializeCookie(cookie.name, 'v', attributes).slice(head.length + 1);
  const dated = serializeCookie(cookie.name, 'v', { ...attributes, expires: epoch }).slice(head.length + 1);
  const stamp = `; Expires=${epoch.toUTCString()}`;
  const at = dated.indexOf(stamp);
  if (at < 0 || dated.slice(0, at) + dated.slice(at + stamp.length) !== bare) {
    throw new SessionError('INVALID_STATE', 'the cookie library wrote Set-Cookie in an unexpected layout', {
      scope: 'cookie',
    });
  }
  return {
    head,
    before: dated.slice(0, at),
    after: dated.slice(at + stamp.length),
    clear: serializeCookie(cookie.name, '', { ...attributes, expires: epoch, maxAge: 0 }),
  };
}

type Listener<E extends keyof SessionEvents> = (...args: SessionEvents[E]) => void | Promise<void>;

/**
 * The session engine: reads cookies, loads lazily, commits changes, and knows no framework.
 * Adapters call `session(cookieHeader)` per request and `commit(session)` before responding.
 */
export class SessionEngine<D extends object = SessionData> {
  readonly options: ResolvedOptions;
  readonly store: Store;
  readonly #signer: CookieSigner | null;
  readonly #codec: FieldCodec;
  readonly #listeners = new Map<keyof SessionEvents, Listener<keyof SessionEvents>[]>();
  /** What sessions call back into: the engine does every store call on their behalf. */
  readonly #host: SessionHost;
  /** What every store call of this engine shares: the deadlines of the calls in flight (`storeTimeoutMs`). */
  readonly #calls: StoreCalls;

  constructor(options: SessionOptions) {
    this.options = resolveOptions(options);
    checkStore(this.options.store);
    this.store = this.options.store;
    this.#calls = {
      deadlines: new Deadlines(this.options.storeTimeoutMs),
      timeout: (action) =>
        new SessionError('STORE_TIMEOUT', `${action} took longer than ${this.options.storeTimeoutMs} ms`, {
          scope: this.store.name,
        }),
      failed: (error, action, key) => this.#callFailed(error, action, key),
      debug: this.options.debug
        ? (action, key, ms) =>
            this.options.logger?.debug({ store: this.store.name, action, key: shortKey(key), ms }, 'store call')
        : null,
    };
    this.#signer = this.options.signed ? new CookieSigner(this.options.secrets, this.options.tagBytes) : null;
    this.#codec = new FieldCodec(this.options.serializer, this.options.encryptionKeys, this.store.name);
    this.#plainCookie = cookieTemplate(this.options.cookie, false);
    this.#secureCookie = cookieTemplate(this.options.cookie, true);
    const { name } = this.options.cookie;
    this.#secureAlways = name.startsWith('__Host-') || name.startsWith('__Secure-');
    if (this.options.maxSessionsPerUser !== null && !supports(this.store, 'userIndex')) {
      throw new SessionError(
        'INVALID_OPTIONS',
        `SessionEngine: maxSessionsPerUser needs a store with a per-user index, which the ${this.store.name} store lacks`,
        { scope: 'engine' },
      );
    }
    const { transport } = this.options;
    this.requestHeader = transport.requestHeader;
    this.responseHeader = transport.kind === 'cookie' ? 'Set-Cookie' : transport.responseHeader;
    this.#host = {
      options: this.options,
      codec: this.#codec,
      load: (session) => (this.#loadNow(session) ? undefined : this.#tracedLoad(session)),
      save: (session) => this.#save(session),
      newIdentity: (session) => this.#newIdentity(session),
      destroy: (session) => this.#destroy(session),
      regenerate: (session) => this.#regenerate(session),
      device: (client) => this.#device(client),
      admit: (session, userId) => this.#admit(session, userId),
      listUserSessions: (userId, current) => this.listUserSessions(userId, current as Session<D> | null),
      destroyOthers: (userId, keep) => this.#destroyOthers(userId, keep),
    };
  }

  /**
   * The request header adapters pass to {@link SessionEngine.session}, lower case: `cookie`, or
   * the header of a header `transport`.
   */
  readonly requestHeader: string;
  /** The response header a commit's value goes in: `Set-Cookie`, or the header transport's. */
  readonly responseHeader: string;

  /** Subscribes to an event; returns a function that unsubscribes. */
  on<E extends keyof SessionEvents>(event: E, listener: Listener<E>): () => void {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener as Listener<keyof SessionEvents>);
    this.#listeners.set(event, list);
    return () => {
      const at = list.indexOf(listener as Listener<keyof SessionEvents>);
      if (at >= 0) list.splice(at, 1);
    };
  }

  /**
   * The session of a request, from the value of its {@link SessionEngine.requestHeader} (the
   * `Cookie` header, or the header transport's). `client` tells what `setUser` records about the
   * device. No store I/O happens here.
   */
  session(header: string | null | undefined, client?: ClientInfo): Session<D> {
    const value = header ? this.#headerValue(header) : undefined;
    const session = this.sessionFromValue(value, client);
    // Commit listeners see every commit, and the Web Crypto path prepares at commit time.
    if (client?.commitNeeded && (!syncCrypto || this.#listening('beforeCommit') || this.#listening('commit'))) {
      state.commitNeeded(session as Session<object>);
    }
    return session;
  }

  /** The session for a raw cookie (or token) value, already taken out of its header. */
  sessionFromValue(value: string | undefined, client?: ClientInfo): Session<D> {
    if (value === undefined || value === '') return new Session<D>(this.#host, null, false, undefined, client);
    const known = this.#verified.get(value);
    if (known) return new Session<D>(this.#host, known.id, true, known.key, client);
    if (!syncCrypto) {
      // Web Crypto is asynchronous: the value is verified when the session is first used.
      const pending = new Session<D>(this.#host, null, false, undefined, client);
      this.#pending.set(pending as Session<object>, value);
      return pending;
    }
    const opened = this.#signer ? this.#signer.open(value) : parseUnsignedId(value);
    if (opened === null) return new Session<D>(this.#host, null, true, undefined, client);
    const id = typeof opened === 'string' ? opened : opened.id;
    // Returning visitors skip the HMAC and the SHA-256: only values that verified are kept, and
    // the secrets never change for the life of an engine.
    const key = hashId(id);
    this.#remember(this.#verified, value, { id, key });
    // A value signed with an older secret is re-signed with the current one when next sent.
    if (typeof opened !== 'string' && opened.current) this.#remember(this.#signedValues, id, value);
    return new Session<D>(this.#host, id, true, key, client);
  }

  /** Cookie values that verified, with their ID and store key (bounded, oldest dropped first). */
  readonly #verified = new Map<string, { id: string; key: string }>();

  /**
   * Writes what the request changed and says which cookie to send. Adapters call it before the
   * response headers go out, and send `setCookie` when it is not `null`.
   */
  commit(session: Session<D>, request: RequestContext = {}): Promise<CommitResult> {
    try {
      const result = this.settle(session, request);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `commit()` for adapters: settles at once, without a promise, when the commit needs no store
   * call and nobody listens to its events (a request that read the session or never touched it).
   * @internal
   */
  settle(session: Session<D>, request: RequestContext = {}): CommitResult | Promise<CommitResult> {
    const s = session as Session<object>;
    if (!syncCrypto && this.#unprepared(s)) return this.#prepare(s).then(() => this.settle(session, request));
    if (this.options.schema !== null && state.unchecked(s)) return this.#commitChecked(s, request);
    if (this.#listening('beforeCommit') || this.#listening('commit')) return this.#commitWithEvents(s, request);
    const plan = this.#commitPlan(s, request);
    if (plan.kind === 'none') return this.#committed(s, request, 'none');
    return this.#commitWrite(s, plan).then((write) => this.#committed(s, request, write));
  }

  /** Data changed in place is checked against the schema first (`INVALID_DATA` fails the commit). */
  async #commitChecked(session: Session<object>, request: RequestContext): Promise<CommitResult> {
    await state.checkChanged(session);
    return this.settle(session as Session<D>, request);
  }

  async #commitWithEvents(session: Session<object>, request: RequestContext): Promise<CommitResult> {
    await this.#emit('beforeCommit', session);
    const plan = this.#commitPlan(session, request);
    const result = this.#committed(
      session,
      request,
      plan.kind === 'none' ? 'none' : await this.#commitWrite(session, plan),
    );
    await this.#emit('commit', session, result);
    return result;
  }

  /** What the commit writes: nothing for a session never loaded, destroyed, degraded, or after a 5xx. */
  #commitPlan(session: Session<object>, request: RequestContext): WritePlan {
    const failed = (request.status ?? 0) >= 500 && !this.options.commitOnServerError;
    if (!session.isLoaded || session.isDestroyed || state.isDegraded(session) || failed) return NO_PLAN;
    return state.plan(session, this.options.now(), { changes: this.options.flush !== 'manual', touch: true });
  }

  #commitWrite(session: Session<object>, plan: WritePlan): Promise<WriteKind> {
    if (!traced(commitChannel)) return this.#writeCommit(session, plan);
    const key = plan.kind === 'move' ? plan.to : plan.kind === 'none' ? '' : plan.key;
    const context = { store: this.store.name, key: shortKey(key), plan: plan.kind };
    return commitChannel.tracePromise(() => this.#writeCommit(session, plan), context);
  }

  /**
   * A commit's write; a store failure is the failure policy's to answer. A then-chain, not an
   * async frame: it runs on every commit that writes.
   */
  #writeCommit(session: Session<object>, plan: WritePlan): Promise<WriteKind> {
    let written: Promise<WriteKind | 'lost'>;
    try {
      written = this.#write(session, plan);
    } catch (error) {
      written = Promise.reject(error);
    }
    return written.then(
      (write) => (write === 'lost' ? 'none' : write),
      (error: unknown) => {
        if (!this.#storeFailed(error, 'commit')) throw error;
        return 'none';
      },
    );
  }

  #committed(session: Session<object>, request: RequestContext, write: WriteKind): CommitResult {
    this.#counters.commits[write]++;
    const header = this.options.transport.kind === 'header';
    const result: CommitResult = {
      setCookie: header ? null : this.#setCookie(session as Session<D>, request),
      write,
      lost: state.wasLost(session),
    };
    // Only with a header transport: a fourth property would make every cookie commit's result larger.
    if (header) result.token = this.#token(session as Session<D>);
    state.cookieSent(session);
    state.committed(session);
    return result;
  }

  /**
   * The live sessions of a user, oldest first, with what `setUser` recorded of each device
   * (needs a store with a per-user index). Pass the request's session as `current` to have it
   * marked.
   */
  async listUserSessions(userId: string, current: Session<D> | null = null): Promise<UserSession[]> {
    const entries = await this.#listByUser(userId, 'listUserSessions');
    const mine = current ? state.ownKeys(current as Session<object>) : [];
    const now = this.options.now();
    return entries
      .map((entry) => this.#userSession(entry, mine, now))
      .sort((a, b) => a.createdAt - b.createdAt || (a.key < b.key ? -1 : 1));
  }

  #listByUser(userId: string, action: string): Promise<UserSessionEntry[]> {
    const { listByUser } = this.store;
    if (!listByUser) throw notSupported(this.store, 'userIndex', action);
    return this.#call('listByUser', `user:${userId}`, () => listByUser.call(this.store, userId));
  }

  /** A listed session with its metadata decoded; metadata that cannot be decoded shows as none. */
  #userSession(entry: UserSessionEntry, mine: readonly string[], now: number): UserSession {
    let meta: Meta = {};
    if (entry.meta !== undefined) {
      try {
        meta = parseMeta(this.#codec.open(entry.key, META_FIELD, entry.meta), `record ${shortKey(entry.key)}`);
      } catch (error) {
        // A listing is not the place to fail on one damaged record: its load reports it.
        this.options.logger?.warn({ store: this.store.name, key: shortKey(entry.key) }, (error as Error).message);
      }
    }
    const { idleMs } = metaLifetime(meta, this.options.lifetime, this.options.touchRatio) ?? this.options.lifetime;
    return {
      key: entry.key,
      userId: entry.userId ?? '',
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
      lastSeenAt: Math.min(now, Math.max(entry.createdAt, entry.expiresAt - idleMs)),
      authenticatedAt: meta.authAt ?? null,
      userAgent: meta.userAgent ?? null,
      ip: meta.ip ?? null,
      label: meta.label ?? null,
      current: mine.includes(entry.key),
    };
  }

  /** The device facts of a client, as the `devices` option keeps them. */
  #device(client: ClientInfo | undefined): Pick<Meta, 'userAgent' | 'ip'> {
    const device: Pick<Meta, 'userAgent' | 'ip'> = {};
    if (!client) return device;
    const { devices, secrets } = this.options;
    if (devices.userAgent) {
      const agent = client.userAgent;
      if (typeof agent === 'string' && agent !== '') device.userAgent = agent.slice(0, USER_AGENT_MAX);
    }
    if (devices.ip !== 'off') {
      const ip = keepIp(client.ip, devices.ip, `tessera:ip:${secrets[0] ?? ''}`);
      if (ip !== undefined) device.ip = ip;
    }
    return device;
  }

  /** `onMaxSessions: 'refuse'`: a user at the limit gets no new session. */
  async #admit(session: Session<object>, userId: string): Promise<void> {
    const limit = this.options.maxSessionsPerUser;
    if (limit === null || this.options.onMaxSessions !== 'refuse') return;
    const mine = state.ownKeys(session);
    const others = (await this.#listByUser(userId, 'setUser')).filter((entry) => !mine.includes(entry.key));
    if (others.length >= limit) {
      throw new SessionError(
        'TOO_MANY_SESSIONS',
        `the user already has ${others.length} sessions (maxSessionsPerUser is ${limit}); end one first`,
      );
    }
  }

  /** `onMaxSessions: 'end-oldest'`: after a session was tied to a user, the oldest beyond the limit end. */
  async #endOldest(userId: string, keep: string): Promise<void> {
    const limit = this.options.maxSessionsPerUser;
    if (limit === null || this.options.onMaxSessions !== 'end-oldest') return;
    // The session just written counts whether the listing shows it yet or not (Elasticsearch
    // shows a write to searches after its next refresh).
    const others = (await this.#listByUser(userId, 'setUser'))
      .filter((entry) => entry.key !== keep)
      .sort((a, b) => a.createdAt - b.createdAt || (a.key < b.key ? -1 : 1));
    for (const entry of others.slice(0, Math.max(0, others.length + 1 - limit))) {
      await this.#call('destroy', entry.key, () => this.store.destroy(entry.key));
    }
  }

  async #destroyOthers(userId: string, keep: readonly string[]): Promise<number> {
    const entries = await this.#listByUser(userId, 'destroyOtherSessions');
    let count = 0;
    for (const entry of entries) {
      if (keep.includes(entry.key)) continue;
      await this.#call('destroy', entry.key, () => this.store.destroy(entry.key));
      count++;
    }
    return count;
  }

  /** Logs a user out everywhere; returns how many sessions were destroyed. */
  async destroyUserSessions(userId: string): Promise<number> {
    const { destroyByUser } = this.store;
    if (!destroyByUser) throw notSupported(this.store, 'userIndex', 'destroyUserSessions');
    return this.#call('destroyByUser', `user:${userId}`, () => destroyByUser.call(this.store, userId));
  }

  /** Destroys one session by its store key (as listed by `listUserSessions`). */
  async destroyByKey(key: string): Promise<void> {
    await this.#call('destroy', key, () => this.store.destroy(key));
  }

  /** The store key of a raw session ID (for tools that hold an ID). */
  keyOf(id: string): string {
    // Where only Web Crypto exists this throws NOT_SUPPORTED, naming hashIdAsync().
    return hashId(id);
  }

  /**
   * Counters since the engine was made, for a metrics endpoint (see docs/guides/operations.md for
   * Prometheus): loads, commits by write, lost writes, store errors by code, and the store's own
   * (a read tier's hits and misses, replayed compare-and-set conflicts). Costs nothing per request
   * beyond an increment.
   */
  metrics(): MetricsSnapshot {
    const c = this.#counters;
    const own = this.store.metrics?.() ?? {};
    return {
      loads: c.loads,
      commits: { ...c.commits },
      lostWrites: c.lostWrites,
      storeErrors: { ...c.storeErrors },
      cache:
        own.cacheHits === undefined && own.cacheMisses === undefined
          ? null
          : { hits: own.cacheHits ?? 0, misses: own.cacheMisses ?? 0 },
      conflictsReplayed: own.conflictsReplayed ?? null,
    };
  }

  readonly #counters = new Counters();

  /** Closes the store. */
  async close(): Promise<void> {
    await this.store.close();
  }

  /** The session value in the transport's request header. */
  #headerValue(header: string): string | undefined {
    const { transport } = this.options;
    if (transport.kind === 'header') {
      if (!transport.bearer) return header.trim();
      const match = BEARER.exec(header);
      return match ? match[1] : undefined;
    }
    // A malformed header must not throw: the request just has no session.
    try {
      return parseCookies(header)[this.options.cookie.name];
    } catch {
      return undefined;
    }
  }

  /** A header transport's value to send: the signed value of a new ID, `''` to drop it, or nothing. */
  #token(session: Session<D>): string | null {
    const cookieState = state.cookieState(session as Session<object>);
    if (!session.isNew && session.id !== null && !session.isDestroyed) {
      if (!cookieState.changed) return null;
      const own = session as Session<object>;
      if (session.key !== state.cookieKey(own)) return this.#signed(session.id, own);
      // A touch sends nothing (the value is the same), unless the client's value was signed with
      // an older secret: then it gets one under the current secret, as a cookie would.
      return this.#signedValues.has(session.id) ? null : this.#signed(session.id, own);
    }
    return cookieState.clear ? '' : null;
  }

  #setCookie(session: Session<D>, request: RequestContext): string | null {
    const cookieState = state.cookieState(session as Session<object>);
    if (!session.isNew && session.id !== null && !session.isDestroyed) {
      if (!cookieState.changed) return null;
      const { head, before, after } = this.#template(request);
      const value = this.#signed(session.id, session as Session<object>);
      if (!state.lifetime(session as Session<object>).persistent) return `${head}${value}${before}${after}`;
      return `${head}${value}${before}; Expires=${this.#expiresText(session.expiresAt)}${after}`;
    }
    return cookieState.clear ? this.#template(request).clear : null;
  }

  /** The last Expires date written, by its second: formatting a Date costs about 1 µs. */
  readonly #expires = { second: Number.NaN, text: '' };

  /** A cookie's Expires date (HTTP date, whole seconds), formatted once per second. */
  #expiresText(ms: number): string {
    const second = Math.floor(ms / 1000);
    const last = this.#expires;
    if (last.second !== second) {
      last.text = new Date(ms).toUTCString();
      last.second = second;
    }
    return last.text;
  }

  /** The Set-Cookie template for this request; `request.secure` is read only when it decides. */
  #template(request: RequestContext): CookieTemplate {
    if (this.#secureAlways) return this.#secureCookie;
    const { secure } = this.options.cookie;
    const isSecure = secure === 'auto' ? request.secure === true : secure;
    return isSecure ? this.#secureCookie : this.#plainCookie;
  }

  /** The cookie value of an ID: the one the browser sent when it is signed with the current secret. */
  #signed(id: string, session: Session<object>): string {
    if (!this.#signer) return id;
    const known = this.#signedValues.get(id);
    if (known !== undefined) return known;
    if (!syncCrypto) {
      const own = this.#webIdentities.get(session);
      if (own?.id === id) return own.value;
      throw new SessionError('INVALID_STATE', 'no signed value was prepared for this session', { scope: 'crypto' });
    }
    const value = this.#signer.sign(id);
    this.#remember(this.#signedValues, id, value);
    return value;
  }

  /** A new ID for a session, with its store key: made now by node:crypto, or ahead by `#prepare`. */
  #newIdentity(session: Session<object>): { id: string; key: string } {
    const made = this.#spares.get(session);
    if (!made) throw new SessionError('INVALID_STATE', 'no new ID was prepared for this session', { scope: 'crypto' });
    this.#spares.delete(session);
    this.#webIdentities.set(session, made);
    return made;
  }

  /**
   * Web Crypto path only: whether a session needs async work before a synchronous step (a
   * cookie value still to verify, a new ID that a write would need, a signed value to send).
   */
  #unprepared(session: Session<object>): boolean {
    if (this.#pending.has(session)) return true;
    if (!session.isLoaded || session.isDestroyed) return false;
    if (session.key === null) return !this.#spares.has(session);
    const id = session.id;
    return (
      id !== null && this.#signer !== null && !this.#signedValues.has(id) && this.#webIdentities.get(session)?.id !== id
    );
  }

  /**
   * Web Crypto path only: verifies a pending cookie value, and makes the session's next ID (its
   * store key and signed value too) before the synchronous code that needs it runs; `regenerate`
   * asks for a new ID whatever the session holds.
   */
  async #prepare(session: Session<object>, newId = false): Promise<void> {
    const value = this.#pending.get(session);
    if (value !== undefined) {
      this.#pending.delete(session);
      const opened = this.#signer ? await this.#signer.openAsync(value) : parseUnsignedId(value);
      if (opened === null) state.verified(session, null);
      else {
        const id = typeof opened === 'string' ? opened : opened.id;
        const identity = { id, key: await hashIdAsync(id), value: typeof opened === 'string' ? id : opened.signed };
        this.#remember(this.#verified, value, { id, key: identity.key });
        this.#remember(this.#signedValues, id, identity.value);
        this.#webIdentities.set(session, identity);
        state.verified(session, identity);
      }
    }
    if ((newId || (session.isLoaded && session.key === null)) && !this.#spares.has(session)) {
      const id = generateId();
      const [key, signed] = await Promise.all([hashIdAsync(id), this.#signer ? this.#signer.signAsync(id) : id]);
      this.#spares.set(session, { id, key, value: signed });
    }
    const id = session.id;
    if (id !== null && this.#signer && !this.#signedValues.has(id) && this.#webIdentities.get(session)?.id !== id) {
      this.#webIdentities.set(session, { id, key: session.key as string, value: await this.#signer.signAsync(id) });
    }
  }

  /** Web Crypto path: cookie values not verified yet, by session. */
  readonly #pending = new WeakMap<Session<object>, string>();
  /** Web Crypto path: a session's next ID, made ahead of the write that takes it. */
  readonly #spares = new WeakMap<Session<object>, { id: string; key: string; value: string }>();
  /** Web Crypto path: the signed value of each session's current ID. */
  readonly #webIdentities = new WeakMap<Session<object>, { id: string; key: string; value: string }>();

  #remember<V>(cache: Map<string, V>, key: string, value: V): void {
    if (cache.size >= VERIFIED_CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(key, value);
  }

  /** Signed cookie values by ID, for the Set-Cookie of a session whose expiry moved (bounded). */
  readonly #signedValues = new Map<string, string>();
  readonly #plainCookie: CookieTemplate;
  readonly #secureCookie: CookieTemplate;
  /** A `__Host-` or `__Secure-` cookie is Secure whatever the request says. */
  readonly #secureAlways: boolean;

  async #emit<E extends keyof SessionEvents>(event: E, ...args: SessionEvents[E]): Promise<void> {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return;
    for (const listener of [...list]) await (listener as Listener<E>)(...args);
  }

  /** Whether anyone listens: the hot paths skip `#emit` (an async call) when nobody does. */
  #listening(event: keyof SessionEvents): boolean {
    const list = this.#listeners.get(event);
    return list !== undefined && list.length > 0;
  }

  /**
   * Connects the store (loads its client library, opens connections). Store calls do this by
   * themselves the first time; call it at boot to fail early on a wrong address or password.
   */
  ready(): Promise<void> {
    if (!this.store.ready) return Promise.resolve();
    this.#connecting ??= withTimeout(
      this.store.ready(),
      CONNECT_TIMEOUT_MS,
      () =>
        new SessionError('STORE_TIMEOUT', `connecting took longer than ${CONNECT_TIMEOUT_MS} ms`, {
          scope: this.store.name,
        }),
    ).then(
      () => {
        this.#connected = true;
      },
      (error: unknown) => {
        this.#connecting = null;
        throw toStoreError(error, this.store.name, 'connect');
      },
    );
    return this.#connecting;
  }

  #connecting: Promise<void> | null = null;
  #connected = false;

  /** Runs one store call with the timeout, debug logging and error wrapping. */
  #call<T>(action: string, key: string, run: () => Promise<T>): Promise<T> {
    // The first call waits for the store to be connected, outside the per-call timeout.
    if (!this.#connected && (this.#connecting !== null || this.store.ready)) {
      return this.#connect().then(() => this.#timed(action, key, run));
    }
    return this.#timed(action, key, run);
  }

  async #connect(): Promise<void> {
    if (this.#connecting === null) {
      try {
        await this.ready();
      } catch (error) {
        await this.#emit('storeError', error as SessionError);
        throw error;
      }
    } else await this.#connecting.catch(() => {});
  }

  /** The call under `storeTimeoutMs` (see {@link StoreCall}). */
  #timed<T>(action: string, key: string, call: () => Promise<T>): Promise<T> {
    const run = traced(storeChannel) ? this.#tracedCall(action, key, call) : call;
    let pending: Promise<T>;
    try {
      pending = run();
    } catch (error) {
      pending = Promise.reject(error);
    }
    return new StoreCall<T>(this.#calls, action, key).settle(pending);
  }

  /** A store call published on `tessera:store` (only when someone subscribes). */
  #tracedCall<T>(action: string, key: string, call: () => Promise<T>): () => Promise<T> {
    const context = { store: this.store.name, action, key: key.startsWith('user:') ? key : shortKey(key) };
    return () => storeChannel.tracePromise(call, context);
  }

  /** A failed store call as the SessionError it rejects with, logged and emitted. */
  async #callFailed(error: unknown, action: string, key: string): Promise<SessionError> {
    const failure = error instanceof SessionError ? error : toStoreError(error, this.store.name, action);
    this.#counters.storeError(failure.code);
    this.options.logger?.error(
      { store: this.store.name, action, key: shortKey(key), code: failure.code },
      failure.message,
    );
    await this.#emit('storeError', failure);
    return failure;
  }

  /**
   * A regenerate's store write: the record moves from the old key to the new one with the
   * request's change set applied (sealed for the old key); the old key keeps a forward for a
   * while. Encrypted fields are bound to their key, so with encryption on the moved record is
   * re-sealed for the new key and written there again, which is safe because nobody else knows
   * the new ID before this response.
   */
  async #move(from: string, to: string, change: ChangeSet): Promise<SessionRecord | null> {
    const store = this.store;
    const move = store.move;
    let moved: SessionRecord | null;
    if (move) {
      const forwardUntil = this.options.now() + MOVE_FORWARD_MS;
      moved = await this.#call('move', from, () => move.call(store, from, to, change, forwardUntil));
    } else {
      // Not atomic: a write landing between this read and the destroy below is lost.
      const current = await this.#call('get', from, () => store.get(from));
      moved = current && applyChangeSet(current, change);
    }
    if (!moved) return null;
    if (this.options.encryptionKeys.length === 0 && move) return moved;
    const fields: Record<string, string> = {};
    for (const [name, stored] of Object.entries(moved.fields))
      fields[name] = this.#codec.reseal(from, to, name, stored);
    const record: SessionRecord = { ...moved, fields };
    await this.#call('set', to, () => store.set(to, record));
    if (!move) await this.#call('destroy', from, () => store.destroy(from));
    return record;
  }

  /** A load published on `tessera:load` (only when someone subscribes, and only for a store read). */
  /**
   * A load done at once, when there is nothing to wait for: no cookie (a new session), or a
   * record the store holds in memory (`peek`: the read tier's hit, the memory store), which then
   * costs no store call, timer or promise. Only where nobody would see the difference: no load
   * listeners or traces, no schema (it may be async), synchronous crypto. Anything else, an
   * expired or undecodable record included, goes the usual way, with its policies.
   */
  #loadNow(session: Session<object>): boolean {
    if (!syncCrypto) return false;
    const key = state.cookieKey(session);
    if (key === null) {
      state.fresh(session, 'no-cookie');
      return true;
    }
    const { peek } = this.store;
    if (peek === undefined || this.options.schema !== null || traced(loadChannel)) return false;
    if (this.#listening('beforeLoad') || this.#listening('load')) return false;
    const record = peek.call(this.store, key);
    if (record === undefined) return false;
    try {
      if (state.expired(session, key, record)) return false;
      state.loaded(session, key, record);
    } catch {
      return false; // an undecodable record: the usual load reports it, by the corrupt-record policy
    }
    this.#counters.loads++;
    return true;
  }

  #tracedLoad(session: Session<object>): Promise<unknown> {
    const key = state.cookieKey(session);
    if (key === null || !traced(loadChannel)) return this.#load(session);
    return loadChannel.tracePromise(() => this.#load(session), { store: this.store.name, key: shortKey(key) });
  }

  /**
   * Reads a session's record, once per request, with the corrupt-record and store-failure
   * policies. The usual load (no listeners, synchronous crypto) is a then-chain, not an async
   * frame: it runs on every request that reads its session.
   */
  #load(session: Session<object>): Promise<unknown> {
    if (!syncCrypto || this.#listening('beforeLoad') || this.#listening('load')) return this.#loadInTurns(session);
    const key = state.cookieKey(session);
    if (key === null) {
      state.fresh(session, 'no-cookie');
      return Promise.resolve();
    }
    this.#counters.loads++;
    return this.#readRecord(session, key);
  }

  /** {@link #load} with its waits: a crypto preparation, load listeners. */
  async #loadInTurns(session: Session<object>): Promise<void> {
    if (!syncCrypto && this.#pending.has(session)) await this.#prepare(session);
    const key = state.cookieKey(session);
    if (key === null) {
      state.fresh(session, 'no-cookie');
      return;
    }
    this.#counters.loads++;
    if (this.#listening('beforeLoad')) await this.#emit('beforeLoad', session);
    // A record that could not be used (corrupt, or the store failed) is not a load.
    if ((await this.#readRecord(session, key)) && this.#listening('load')) await this.#emit('load', session);
  }

  /**
   * The store's record for `key` taken into the session: an expired one is deleted and the
   * session starts empty. Resolves to `false` when the failure policies started it empty instead.
   */
  #readRecord(session: Session<object>, key: string): Promise<boolean> {
    return this.#call('get', key, () => this.store.get(key)).then(
      (record) => this.#takeRecord(session, key, record),
      (error: unknown) => this.#unread(session, key, error),
    );
  }

  /** {@link #readRecord}'s answer taken in: decoded, checked, or started empty. */
  #takeRecord(session: Session<object>, key: string, record: SessionRecord | null): boolean | Promise<boolean> {
    try {
      if (!record) {
        state.fresh(session, 'missing');
        return true;
      }
      if (state.expired(session, key, record)) {
        return this.#call('destroy', key, () => this.store.destroy(key)).then(
          () => {
            state.fresh(session, 'missing');
            return true;
          },
          (error: unknown) => this.#unread(session, key, error),
        );
      }
      // Only a schema makes taking the record in wait.
      const checked = state.loaded(session, key, record);
      if (!checked) return true;
      return checked.then(
        () => true,
        (error: unknown) => this.#unread(session, key, error),
      );
    } catch (error) {
      return this.#unread(session, key, error);
    }
  }

  /** A read that failed, answered by the failure policies: `false` once the session starts empty. */
  #unread(session: Session<object>, key: string, error: unknown): Promise<boolean> {
    return this.#loadFailed(session, key, error).then(() => false);
  }

  /**
   * A load that failed: a corrupt record by `onCorruptRecord`, a store failure by `onStoreError`
   * (both start the session empty, or throw).
   */
  async #loadFailed(session: Session<object>, key: string, error: unknown): Promise<void> {
    if (error instanceof SessionError && error.code === 'CORRUPT_RECORD') {
      this.options.logger?.warn({ store: this.store.name, key: shortKey(key), code: error.code }, error.message);
      await this.#emit('corrupt', error, key);
      if (this.options.onCorruptRecord === 'throw') throw error;
      state.fresh(session, 'corrupt');
      return;
    }
    if (!this.#storeFailed(error, 'load')) throw error;
    state.fresh(session, 'degraded');
  }

  /** `session.save()`: writes pending changes, never a touch. */
  async #save(session: Session<object>): Promise<WriteKind | 'lost'> {
    if (!syncCrypto && this.#unprepared(session)) await this.#prepare(session);
    if (this.options.schema !== null && state.unchecked(session)) await state.checkChanged(session);
    return this.#write(session, state.plan(session, this.options.now(), { changes: true, touch: false }));
  }

  /**
   * Carries out a session's write plan: the one place where a session's changes reach the store.
   * A patch, the usual write, is a then-chain, and so is a new session's create without an owner
   * or create listeners; the others wait in turn in {@link #writeInTurns}.
   */
  #write(session: Session<object>, plan: WritePlan): Promise<WriteKind | 'lost'> {
    if (plan.kind === 'patch') return this.#patch(session, plan);
    const plain = plan.kind === 'create' && plan.record.userId === null;
    if (plain && !this.#listening('beforeCreate') && !this.#listening('create')) {
      return this.#create(session, plan);
    }
    return this.#writeInTurns(session, plan);
  }

  /** A create plan's store write. */
  #create(session: Session<object>, plan: Extract<WritePlan, { kind: 'create' }>): Promise<'create'> {
    return this.#call('set', plan.key, () => this.store.set(plan.key, plan.record)).then(() => {
      state.written(session, plan);
      return 'create';
    });
  }

  async #writeInTurns(
    session: Session<object>,
    plan: Exclude<WritePlan, { kind: 'patch' }>,
  ): Promise<WriteKind | 'lost'> {
    switch (plan.kind) {
      case 'none':
        return 'none';
      case 'create':
        // Only a listener costs a wait: #emit is an async call.
        if (this.#listening('beforeCreate')) await this.#emit('beforeCreate', session);
        await this.#create(session, plan);
        if (this.#listening('create')) await this.#emit('create', session);
        if (plan.record.userId !== null) await this.#endOldest(plan.record.userId, plan.key);
        return 'create';
      case 'move': {
        if (this.#listening('beforeCreate')) await this.#emit('beforeCreate', session);
        const moved = await this.#move(plan.from, plan.to, plan.change);
        if (!moved) return this.#lost(session, plan.from);
        state.written(session, plan, moved);
        if (this.#listening('create')) await this.#emit('create', session);
        if (typeof plan.change.userId === 'string') await this.#endOldest(plan.change.userId, plan.to);
        return 'create';
      }
      case 'touch': {
        const outcome = await this.#call('touch', plan.key, () => touchRecord(this.store, plan.key, plan.expiresAt));
        // 'moved': a concurrent regenerate gave the session a new ID, and the browser gets that
        // cookie from its response; clearing the cookie here would log it out.
        if (outcome === true) state.written(session, plan);
        else if (outcome === false) state.lost(session, false);
        return outcome === true ? 'touch' : 'none';
      }
    }
  }

  /** A patch plan's write: the change set applied to the stored record, as one then-chain. */
  #patch(session: Session<object>, plan: Extract<WritePlan, { kind: 'patch' }>): Promise<WriteKind | 'lost'> {
    return this.#call('patch', plan.key, () => patchRecord(this.store, plan.key, plan.change)).then((outcome) => {
      if (outcome === 'moved') {
        throw new SessionError(
          'SESSION_MOVED',
          'a concurrent request gave this session a new ID (regenerate); the changes of this request were not saved',
        );
      }
      // Destroyed (or expired) by someone else meanwhile: logout wins, nothing is resurrected.
      if (!outcome) return this.#lost(session, plan.key);
      state.written(session, plan);
      if (typeof plan.change.userId !== 'string') return 'patch';
      return this.#endOldest(plan.change.userId, plan.key).then(() => 'patch' as const);
    });
  }

  /** A write found its record gone: the session is over, and the changes are reported lost. */
  async #lost(session: Session<object>, key: string): Promise<'lost'> {
    this.#counters.lostWrites++;
    state.lost(session, true);
    this.options.logger?.warn({ store: this.store.name, key: shortKey(key) }, 'a write found its session destroyed');
    await this.#emit('lost', session, key);
    if (this.options.onLostWrite === 'throw') {
      throw new SessionError(
        'SESSION_LOST',
        'the session was destroyed by another request (a logout or a revocation) before these changes were saved',
      );
    }
    return 'lost';
  }

  async #destroy(session: Session<object>): Promise<void> {
    if (!syncCrypto) await this.#prepare(session);
    await this.#emit('beforeDestroy', session);
    for (const key of state.destroyKeys(session)) await this.#call('destroy', key, () => this.store.destroy(key));
    state.destroyed(session);
    await this.#emit('destroy', session);
  }

  async #regenerate(session: Session<object>): Promise<void> {
    if (!syncCrypto) await this.#prepare(session, true);
    await this.#emit('beforeRegenerate', session);
    const oldKey = state.regenerated(session);
    await this.#emit('regenerate', session, oldKey);
  }

  /** Whether the failure policy answers a store failure by going on without a session. */
  #storeFailed(error: unknown, action: string): boolean {
    const isStoreError = error instanceof SessionError && error.status === 503;
    if (this.options.onStoreError !== 'degrade' || !isStoreError) return false;
    this.options.logger?.warn({ action, code: error.code }, 'store failed; continuing without a session');
    return true;
  }
}
