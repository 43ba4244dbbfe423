// The application API. Store authors import the contract from `tessera/store`, and the
// conformance suite from `tessera/testing`.
export type { EncryptionKey, Serializer } from './core/codec.ts';
export type { CommitTrace, LoadTrace, MetricsSnapshot, StoreCallTrace } from './core/diagnostics.ts';
export { type CommitResult, type RequestContext, SessionEngine, type SessionEvents } from './core/engine.ts';
export {
  isSessionError,
  SessionError,
  type SessionErrorCode,
  type SessionErrorOptions,
} from './core/errors.ts';
export { hashId, shortKey } from './core/ids.ts';
export type { IpMode, Lifetime, SessionLifetime } from './core/meta.ts';
export type {
  CookieOptions,
  DeviceOptions,
  FlushMode,
  HeaderTransport,
  Logger,
  ResolvedOptions,
  ResolvedTransport,
  SessionOptions,
} from './core/options.ts';
export {
  type ClientInfo,
  type DataKey,
  type FlashData,
  type FlashKey,
  Session,
  type SessionData,
  type SetUserOptions,
  type UserSession,
  type WriteKind,
} from './core/session.ts';
export type { Store, UserSessionEntry } from './core/store.ts';

import { SessionEngine } from './core/engine.ts';
import type { SessionOptions } from './core/options.ts';
import type { SessionData } from './core/session.ts';

/** Creates a session engine; the same as `new SessionEngine(options)`. */
export function createSessions<D extends object = SessionData>(options: SessionOptions): SessionEngine<D> {
  return new SessionEngine<D>(options);
}
