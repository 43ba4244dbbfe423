export { type EncryptionKey, FieldCodec, type Serializer } from './core/codec.ts';
export { type CommitResult, type RequestContext, SessionEngine, type SessionEvents } from './core/engine.ts';
export {
  importOptional,
  isSessionError,
  missingDependency,
  SessionError,
  type SessionErrorCode,
  type SessionErrorOptions,
  toStoreError,
} from './core/errors.ts';
export { CookieSigner, generateId, hashId, shortKey } from './core/ids.ts';
export type { CookieOptions, FlushMode, Logger, ResolvedOptions, SessionOptions } from './core/options.ts';
export { type DataKey, Session, type SessionData } from './core/session.ts';
export {
  applyChangeSet,
  BaseStore,
  type ChangeSet,
  type RecordMeta,
  type SessionRecord,
  type Store,
  type StoreCapabilities,
  type UserSessionEntry,
  validateRecord,
} from './core/store.ts';

import { SessionEngine } from './core/engine.ts';
import type { SessionOptions } from './core/options.ts';
import type { SessionData } from './core/session.ts';

/** Creates a session engine; the same as `new SessionEngine(options)`. */
export function createSessions<D extends object = SessionData>(options: SessionOptions): SessionEngine<D> {
  return new SessionEngine<D>(options);
}
