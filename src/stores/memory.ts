import * as v from 'valibot';
import { check, func, positive, type Same, whole } from '../core/check.ts';
import {
  applyChangeSet,
  batchSizeOf,
  type ChangeSet,
  type EntriesOptions,
  META_FIELD,
  type SessionRecord,
  type Store,
  type StoredSession,
  type UserSessionEntry,
  type WriteOutcome,
} from '../core/store.ts';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** The most sessions kept; the least recently used one is dropped beyond it. @default 10000 */
  maxEntries?: number;
  /** How often expired sessions are swept out (reads never return them anyway). @default 60000 */
  sweepIntervalMs?: number;
  /** Clock in epoch ms, for tests. @default Date.now */
  now?: () => number;
}

/** The options a configuration file can hold (all but `now`). */
export const memoryFileSchema = v.strictObject({
  maxEntries: v.optional(whole(1), 10000),
  sweepIntervalMs: v.optional(positive(), 60000),
});

/** {@link MemoryStoreOptions} as a schema. */
export const memorySchema = v.strictObject({ ...memoryFileSchema.entries, now: v.optional(func<() => number>()) });
const same: Same<v.InferInput<typeof memorySchema>, MemoryStoreOptions> = true;
void same;

/**
 * An in-process store for tests and single-process development: bounded, really expiring, with
 * a per-user index. Every operation is synchronous inside, so change sets are atomic.
 */
export class MemoryStore implements Store {
  readonly name = 'memory';
  readonly atomicPatch = true;
  readonly #records = new Map<string, SessionRecord>();
  readonly #byUser = new Map<string, Set<string>>();
  /** Keys that a `move` left, with the time until which they answer 'moved'. */
  readonly #moved = new Map<string, number>();
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #sweepIntervalMs: number;
  /** Started with the first record: Cloudflare Workers refuse timers at module scope, where stores are made. */
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    const { maxEntries, sweepIntervalMs, now } = check(memorySchema, options, {
      scope: 'memory',
      label: 'memoryStore',
    });
    this.#maxEntries = maxEntries;
    this.#now = now ?? Date.now;
    this.#sweepIntervalMs = sweepIntervalMs;
  }

  /** Number of records held, expired ones included until the next sweep. */
  get size(): number {
    return this.#records.size;
  }

  async get(key: string): Promise<SessionRecord | null> {
    const record = this.#live(key);
    if (!record) return null;
    // Re-insert to keep Map order = least recently used first.
    this.#records.delete(key);
    this.#records.set(key, record);
    return { ...record, fields: { ...record.fields } };
  }

  async set(key: string, record: SessionRecord): Promise<void> {
    this.#moved.delete(key);
    this.#remove(key);
    this.#put(key, { ...record, fields: { ...record.fields } });
    while (this.#records.size > this.#maxEntries) {
      const oldest = this.#records.keys().next().value as string;
      this.#remove(oldest);
    }
  }

  async patch(key: string, change: ChangeSet): Promise<WriteOutcome> {
    const current = this.#live(key);
    if (!current) return this.#forwarded(key);
    this.#remove(key);
    this.#put(key, applyChangeSet(current, change));
    return true;
  }

  async touch(key: string, expiresAt: number): Promise<WriteOutcome> {
    const current = this.#live(key);
    if (!current) return this.#forwarded(key);
    current.expiresAt = expiresAt;
    return true;
  }

  async move(from: string, to: string, change: ChangeSet, forwardUntil: number): Promise<SessionRecord | null> {
    const current = this.#live(from);
    if (!current) return null;
    const moved = applyChangeSet(current, change);
    this.#remove(from);
    this.#moved.set(from, forwardUntil);
    await this.set(to, moved);
    return { ...moved, fields: { ...moved.fields } };
  }

  async setIfNewer(key: string, record: SessionRecord): Promise<boolean> {
    if (this.#forwarded(key) === 'moved') return false;
    const current = this.#live(key);
    if (current && current.expiresAt >= record.expiresAt) return false;
    await this.set(key, record);
    return true;
  }

  /** Every live session, in batches; the keys are taken when the iteration starts. */
  async *entries(options?: EntriesOptions): AsyncIterable<StoredSession[]> {
    const size = batchSizeOf(options, this.name);
    const keys = [...this.#records.keys()];
    for (let i = 0; i < keys.length; i += size) {
      const batch: StoredSession[] = [];
      for (const key of keys.slice(i, i + size)) {
        const record = this.#live(key);
        if (record) batch.push({ key, record: { ...record, fields: { ...record.fields } } });
      }
      if (batch.length > 0) yield batch;
    }
  }

  async destroy(key: string): Promise<void> {
    this.#moved.delete(key);
    this.#remove(key);
  }

  async listByUser(userId: string): Promise<UserSessionEntry[]> {
    const entries: UserSessionEntry[] = [];
    for (const key of this.#byUser.get(userId) ?? []) {
      const record = this.#live(key);
      if (!record) continue;
      const { createdAt, expiresAt } = record;
      entries.push({ key, createdAt, expiresAt, userId, meta: record.fields[META_FIELD] });
    }
    return entries;
  }

  async destroyByUser(userId: string): Promise<number> {
    let count = 0;
    for (const key of [...(this.#byUser.get(userId) ?? [])]) {
      if (this.#live(key)) count++;
      this.#remove(key);
    }
    return count;
  }

  async prune(): Promise<number> {
    const now = this.#now();
    for (const [key, until] of this.#moved) if (until <= now) this.#moved.delete(key);
    let count = 0;
    for (const [key, record] of this.#records) {
      if (record.expiresAt <= now) {
        this.#remove(key);
        count++;
      }
    }
    return count;
  }

  async count(): Promise<number> {
    await this.prune();
    return this.#records.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#closed = true;
  }

  /** A write to a key without a live record: 'moved' while a move's forward stands. */
  #forwarded(key: string): WriteOutcome {
    const until = this.#moved.get(key);
    if (until === undefined) return false;
    if (until > this.#now()) return 'moved';
    this.#moved.delete(key);
    return false;
  }

  #live(key: string): SessionRecord | null {
    const record = this.#records.get(key);
    if (!record) return null;
    if (record.expiresAt <= this.#now()) {
      this.#remove(key);
      return null;
    }
    return record;
  }

  #put(key: string, record: SessionRecord): void {
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = setInterval(() => void this.prune(), this.#sweepIntervalMs);
      // Node and Bun keep no process alive for it; Deno and workerd timers are plain numbers.
      (this.#timer as { unref?: () => void }).unref?.();
    }
    this.#records.set(key, record);
    if (record.userId !== null) {
      const keys = this.#byUser.get(record.userId) ?? new Set<string>();
      keys.add(key);
      this.#byUser.set(record.userId, keys);
    }
  }

  #remove(key: string): void {
    const record = this.#records.get(key);
    if (!record) return;
    this.#records.delete(key);
    if (record.userId === null) return;
    const keys = this.#byUser.get(record.userId);
    keys?.delete(key);
    if (keys?.size === 0) this.#byUser.delete(record.userId);
  }
}

/** Creates a {@link MemoryStore}. */
export function memoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}
