/**
 * What the engine tells the outside about its work, at no cost to a process that does not ask:
 * `node:diagnostics_channel` tracing channels (an OpenTelemetry instrumentation or an APM agent
 * subscribes without Tessera depending on it), and counters for `engine.metrics()`.
 *
 * | channel | one trace per | context |
 * |---|---|---|
 * | `tessera:load` | read of a session's record (a request's first access to its session) | {@link LoadTrace} |
 * | `tessera:commit` | commit that writes to the store | {@link CommitTrace} |
 * | `tessera:store` | store call (get, set, patch, touch, move, destroy, listByUser...) | {@link StoreCallTrace} |
 *
 * Each trace publishes `start`, `end`, `asyncStart`, `asyncEnd` and, on failure, `error`, with
 * one context object: Node sets `result` or `error` on it. Keys are shortened ID hashes, never IDs.
 */
import type * as Diagnostics from 'node:diagnostics_channel';
import type { SessionErrorCode } from './errors.ts';
import { nodeBuiltin } from './ids.ts';

/** The context of a `tessera:load` trace. */
export interface LoadTrace {
  /** The store's name. */
  store: string;
  /** The session's store key, shortened (10 characters of the ID hash). */
  key: string;
  /** Set by Node when the load fails. */
  error?: unknown;
}

/** The context of a `tessera:commit` trace. */
export interface CommitTrace {
  store: string;
  /** The store key written, shortened (for a regenerate, the new one). */
  key: string;
  /** What the commit writes: `create`, `patch`, `move` or `touch`. */
  plan: string;
  /** Set by Node when the commit settles: what the commit did (`write`, `lost`, ...). */
  result?: unknown;
  error?: unknown;
}

/** The context of a `tessera:store` trace. */
export interface StoreCallTrace {
  store: string;
  /** The store method: `get`, `set`, `patch`, `touch`, `move`, `destroy`, `listByUser`... */
  action: string;
  /** The key it is about, shortened, or `user:<id>` for the per-user index. */
  key: string;
  result?: unknown;
  error?: unknown;
}

/**
 * The part of a Node `TracingChannel` the engine uses, declared here so that the emitted types
 * do not depend on the version of `@types/node` a project has.
 */
export interface Tracer<C extends object> {
  readonly hasSubscribers?: boolean;
  tracePromise<T>(fn: () => Promise<T>, context: C): Promise<T>;
}

/**
 * `node:diagnostics_channel` where the runtime has it; found at run time (as `node:crypto` is), so
 * that core also loads where there is none (Cloudflare Workers without `nodejs_compat`), and
 * there the channels are ones nobody can subscribe to.
 */
const diagnostics = nodeBuiltin<typeof Diagnostics>('node:diagnostics_channel');
const unheard: Tracer<object> = { hasSubscribers: false, tracePromise: (fn) => fn() };

const channel = <C extends object>(name: string): Tracer<C> =>
  diagnostics ? (diagnostics.tracingChannel(name) as unknown as Tracer<C>) : (unheard as Tracer<C>);

export const loadChannel = channel<LoadTrace>('tessera:load');
export const commitChannel = channel<CommitTrace>('tessera:commit');
export const storeChannel = channel<StoreCallTrace>('tessera:store');

/**
 * Whether anyone listens to a tracing channel: one property read on Node 20.13 and later (its
 * `hasSubscribers`), five before.
 */
export function traced(tracer: Tracer<object>): boolean {
  const all = tracer.hasSubscribers;
  if (all !== undefined) return all;
  const c = tracer as unknown as Record<'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error', Diagnostics.Channel>;
  return (
    c.start.hasSubscribers ||
    c.end.hasSubscribers ||
    c.asyncStart.hasSubscribers ||
    c.asyncEnd.hasSubscribers ||
    c.error.hasSubscribers
  );
}

/** What `engine.metrics()` returns: counters since the engine was made. */
export interface MetricsSnapshot {
  /** Session records read from the store (one per request that used a cookie's session). */
  loads: number;
  /** Commits, by the store write they made (`none`: nothing to write). */
  commits: { none: number; create: number; patch: number; touch: number };
  /** Writes that found their session destroyed meanwhile (logout won) and were dropped. */
  lostWrites: number;
  /** Failed store calls, by `SessionError` code (`STORE_UNAVAILABLE`, `STORE_TIMEOUT`...). */
  storeErrors: Partial<Record<SessionErrorCode, number>>;
  /** The read tier's hits and misses, when the store is `cachedStore(...)`; `null` otherwise. */
  cache: { hits: number; misses: number } | null;
  /**
   * Compare-and-set writes that lost a race to another writer and were replayed on the current
   * record (SQL, Elasticsearch); `null` for a store that does not count them.
   */
  conflictsReplayed: number | null;
}

/** The engine's own counters; the store's are added when a snapshot is taken. */
export class Counters {
  loads = 0;
  readonly commits = { none: 0, create: 0, patch: 0, touch: 0 };
  lostWrites = 0;
  readonly storeErrors: Partial<Record<SessionErrorCode, number>> = {};

  storeError(code: SessionErrorCode): void {
    this.storeErrors[code] = (this.storeErrors[code] ?? 0) + 1;
  }
}
