/**
 * For store authors: the store contract, the helpers every store needs, and (in
 * `tessera/testing`) the conformance suite a store must pass. An app never needs this module.
 *
 * ```ts
 * import { type SessionRecord, type Store, toStoreError, validateRecord } from 'tessera/store';
 * ```
 */
export { FieldCodec } from './core/codec.ts';
export {
  importOptional,
  isSessionError,
  missingDependency,
  SessionError,
  type SessionErrorCode,
  toStoreError,
} from './core/errors.ts';
export { hashId, shortKey } from './core/ids.ts';
export {
  applyChangeSet,
  batchSizeOf,
  type Capability,
  type ChangeSet,
  type ConditionalWrites,
  type Counting,
  checkStore,
  DEFAULT_BATCH_SIZE,
  type EntriesOptions,
  type Enumeration,
  FLASH_PREFIX,
  INTERNAL_PREFIX,
  META_FIELD,
  type Moves,
  notSupported,
  type PartialWrites,
  type Pruning,
  RESERVED_KEYS,
  type RecordMeta,
  type SessionRecord,
  type Store,
  type StoreCore,
  type StoredSession,
  type StoreMetrics,
  setIfNewerRecord,
  supports,
  type UserIndex,
  type UserSessionEntry,
  validateRecord,
  type WriteOutcome,
} from './core/store.ts';
export {
  type BackgroundErrorOptions,
  backgroundErrors,
  CONFLICTED,
  every,
  type Interval,
  KeyedQueue,
  retryConflicts,
} from './stores/_kit.ts';
