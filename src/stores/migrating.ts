/**
 * Moving sessions from one store to another without logging anyone out: {@link copySessions}
 * (what `tessera migrate` runs) copies every live session, and {@link migratingStore} lets an app
 * serve from the new store while the copy runs.
 */
import * as v from 'valibot';
import { check, flag, func, having, type Same, whole } from '../core/check.ts';
import {
  type ChangeSet,
  DEFAULT_BATCH_SIZE,
  LayeredStore,
  notSupported,
  type SessionRecord,
  type Store,
  type StoreMetrics,
  setIfNewerRecord,
  supports,
  type UserSessionEntry,
  type WriteOutcome,
} from '../core/store.ts';

/** Where a copy stands, as {@link CopyOptions.onProgress} hears it after every batch. */
export interface CopyProgress {
  /** Live sessions read from the source so far. */
  read: number;
  /** Written to the destination (missing there, or older there). With `dryRun`: would be. */
  copied: number;
  /** Left alone: the destination holds the same session as new or newer. */
  skipped: number;
  /** Destroyed at the source while being copied, so destroyed at the destination too. */
  destroyed: number;
  /** The source's count of live sessions when the copy started, or `null` when it cannot count. */
  total: number | null;
}

/** Options of {@link copySessions}. */
export interface CopyOptions {
  /** The store to copy from; it needs enumeration (`entries`). */
  from: Store;
  /** The store to copy to; with `setIfNewer` (every built-in store) the copy is safe beside live writes. */
  to: Store;
  /** Read and compare only: report what would be copied, write nothing. @default false */
  dryRun?: boolean;
  /** Sessions read per batch (and written concurrently). @default 500 */
  batchSize?: number;
  /** Called after every batch, and once at the start with the total. @default none */
  onProgress?: (progress: CopyProgress) => void;
  /** Clock in epoch ms, for tests. @default Date.now */
  now?: () => number;
}

const copySchema = v.strictObject({
  from: having<Store>(['get', 'set', 'destroy'], 'a store'),
  to: having<Store>(['get', 'set', 'destroy'], 'a store'),
  dryRun: v.optional(flag()),
  batchSize: v.optional(whole(1)),
  onProgress: v.optional(func<(progress: CopyProgress) => void>()),
  now: v.optional(func<() => number>()),
});
const sameCopy: Same<v.InferInput<typeof copySchema>, CopyOptions> = true;
void sameCopy;

/**
 * Copies every live session of one store to another, keeping its key (so the cookies issued
 * under the old store work unchanged), remaining lifetime, creation time, owner (the new store's
 * user index) and fields exactly as stored (encrypted ones stay sealed: they are bound to the
 * key, which does not change).
 *
 * Idempotent and resumable: a session the destination holds as new or newer (same or later
 * expiry: every write moves it) is skipped, so a re-run copies only what is missing or changed,
 * and never overwrites what an app serving from the destination (through {@link migratingStore})
 * wrote meanwhile. A session destroyed at the source while its copy was being written (a logout
 * through `migratingStore`, which destroys in the old store first) is destroyed at the
 * destination too: after each write the source is read again.
 */
export async function copySessions(options: CopyOptions): Promise<CopyProgress> {
  const {
    from,
    to,
    dryRun = false,
    batchSize = DEFAULT_BATCH_SIZE,
    onProgress,
    now = Date.now,
  } = check(copySchema, options, { scope: 'migrate', label: 'copySessions' });
  const entries = from.entries;
  if (!entries) throw notSupported(from, 'enumerate', 'copying sessions');
  const total = from.count ? await from.count.call(from) : null;
  const progress: CopyProgress = { read: 0, copied: 0, skipped: 0, destroyed: 0, total };
  onProgress?.({ ...progress });
  for await (const batch of entries.call(from, { batchSize })) {
    await Promise.all(
      batch.map(async ({ key, record }) => {
        progress.read++;
        if (dryRun) {
          const there = await to.get(key);
          if (there && there.expiresAt >= record.expiresAt) progress.skipped++;
          else progress.copied++;
          return;
        }
        if (!(await setIfNewerRecord(to, key, record))) {
          progress.skipped++;
          return;
        }
        progress.copied++;
        // Gone at the source although not expired: destroyed while this copy was in flight.
        if ((await from.get(key)) === null && record.expiresAt > now()) {
          await to.destroy(key);
          progress.destroyed++;
        }
      }),
    );
    onProgress?.({ ...progress });
  }
  return progress;
}

/** Options of {@link migratingStore}. */
export interface MigratingStoreOptions {
  /** The store sessions are moving out of: read when the new one has no record, and destroyed in. */
  from: Store;
  /** The store sessions are moving to: every write goes here. */
  to: Store;
  /** Close both stores in `close()`. @default true */
  closeStores?: boolean;
}

const migratingSchema = v.strictObject({
  from: having<Store>(['get', 'set', 'destroy', 'close'], 'a store'),
  to: having<Store>(['get', 'set', 'destroy', 'close'], 'a store'),
  closeStores: v.optional(flag()),
});
const sameMigrating: Same<v.InferInput<typeof migratingSchema>, MigratingStoreOptions> = true;
void sameMigrating;

/**
 * A store for the time sessions move from one store to another (deploy it, then run
 * `tessera migrate`, then, once the copy is done, deploy with the new store alone):
 *
 * - reads go to the new store, and to the old one when the new one has no record; a session
 *   found only in the old store is copied to the new one on that first touch (`setIfNewer`, so a
 *   copy racing it, the CLI's or another process's, never overwrites a newer write);
 * - writes (`set`, `patch`, `touch`, `move`) go to the new store only;
 * - destroys go to both: the old store first, so that a copy in flight either finds the session
 *   gone when it reads the source again (and destroys its copy) or is written before the
 *   destroy reaches the new store. A regenerate's `move` destroys the old store's record first
 *   too, so the old ID does not come back from there.
 *
 * Capabilities are the new store's (the per-user index when both stores have one: a user's
 * sessions are in either); `count` and `entries` are left out, as a session may be in both.
 * Every instance of the app must run it before the copy starts: an instance still writing to
 * the old store alone would write where the others no longer read.
 */
export class MigratingStore extends LayeredStore {
  readonly name: string;
  readonly from: Store;
  readonly to: Store;
  readonly #closeStores: boolean;

  constructor(options: MigratingStoreOptions) {
    super();
    check(migratingSchema, options, { scope: 'migrating', label: 'migratingStore' });
    const { from, to } = options;
    this.from = from;
    this.to = to;
    this.name = to.name;
    this.#closeStores = options.closeStores ?? true;
    if (supports(to, 'patch')) {
      const { patch, touch } = to as Required<Pick<Store, 'patch' | 'touch'>>;
      this.atomicPatch = to.atomicPatch === true;
      this.patch = (key, change) => this.#write(key, () => patch.call(to, key, change));
      this.touch = (key, expiresAt) => this.#write(key, () => touch.call(to, key, expiresAt));
    }
    const move = to.move;
    if (move) {
      this.move = async (old: string, key: string, change: ChangeSet, forwardUntil: number) => {
        if ((await this.#current(old)) === null) return null;
        // The old store's copy goes first: a read of the old ID must not find it there.
        await from.destroy(old);
        return move.call(to, old, key, change, forwardUntil);
      };
    }
    if (supports(to, 'userIndex') && supports(from, 'userIndex')) {
      const list = (store: Store, userId: string) =>
        (store.listByUser as NonNullable<Store['listByUser']>).call(store, userId);
      this.listByUser = async (userId) => {
        const listed = new Map<string, UserSessionEntry>();
        for (const entry of await list(from, userId)) listed.set(entry.key, entry);
        // The new store's entry wins: it is the session as it is now.
        for (const entry of await list(to, userId)) listed.set(entry.key, entry);
        return [...listed.values()].sort((a, b) => a.createdAt - b.createdAt);
      };
      this.destroyByUser = async (userId) => {
        const keys = new Set([...(await list(from, userId)), ...(await list(to, userId))].map((e) => e.key));
        await (from.destroyByUser as NonNullable<Store['destroyByUser']>).call(from, userId);
        await (to.destroyByUser as NonNullable<Store['destroyByUser']>).call(to, userId);
        return keys.size;
      };
    }
    const prune = to.prune;
    // Pruning as the new store has it (a store with native expiry has none); the old one's too then.
    if (prune) {
      this.prune = async (progress) => ((await from.prune?.call(from)) ?? 0) + (await prune.call(to, progress));
    }
    const setIfNewer = to.setIfNewer;
    if (setIfNewer) this.setIfNewer = (key, record) => setIfNewer.call(to, key, record);
  }

  async ready(): Promise<void> {
    await Promise.all([this.from.ready?.(), this.to.ready?.()]);
  }

  /** The new store's counters. */
  metrics(): StoreMetrics {
    return this.to.metrics?.() ?? {};
  }

  get(key: string): Promise<SessionRecord | null> {
    return this.#current(key);
  }

  set(key: string, record: SessionRecord): Promise<void> {
    return this.to.set(key, record);
  }

  async destroy(key: string): Promise<void> {
    await this.from.destroy(key);
    await this.to.destroy(key);
  }

  async close(): Promise<void> {
    if (!this.#closeStores) return;
    await Promise.all([this.from.close(), this.to.close()]);
  }

  /** The record in the new store, or the old store's, copied to the new one on this first touch. */
  async #current(key: string): Promise<SessionRecord | null> {
    const there = await this.to.get(key);
    if (there) return there;
    const old = await this.from.get(key);
    if (!old) return null;
    if (await setIfNewerRecord(this.to, key, old)) return old;
    // Someone else copied it (or wrote a newer one, or destroyed it) meanwhile.
    return this.to.get(key);
  }

  /** A write to the new store; a session still only in the old store is copied first. */
  async #write(key: string, write: () => Promise<WriteOutcome>): Promise<WriteOutcome> {
    const outcome = await write();
    if (outcome !== false) return outcome;
    const old = await this.from.get(key);
    if (!old) return false;
    await setIfNewerRecord(this.to, key, old);
    return write();
  }
}

/** Creates a {@link MigratingStore}. */
export function migratingStore(options: MigratingStoreOptions): MigratingStore {
  return new MigratingStore(options);
}
