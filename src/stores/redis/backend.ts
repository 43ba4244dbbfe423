// What the Redis store needs from a client, whatever its library and deployment shape: the
// interface that clients.ts, connection.ts and sentinel.ts implement (sentinel.ts and
// connection.ts need nothing else from clients.ts, which imports them).

/** A node-redis (v5, v6) Sentinel client from `createSentinel()`. */
export interface NodeRedisSentinelLike {
  sendCommand(isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
  getMasterNode(): unknown;
  /**
   * `_execute(isReadonly, fn)` runs `fn` on the client's connection to the master (declared by
   * node-redis 5 and 6; typed loosely so that either library's types fit); the store uses it to
   * learn that connection, see `sentinelBackend`.
   */
  readonly _execute?: unknown;
}

/** One node connection of a node-redis Sentinel client (a node-redis `RedisClient`). */
export interface NodeRedisNodeLike {
  sendCommand(args: string[]): Promise<unknown>;
  readonly isReady: boolean;
  readonly options?: { socket?: { host?: unknown; port?: unknown } };
  on?(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** Which kind of client a store talks through. */
export type RedisClientKind =
  | 'node-redis'
  | 'node-redis-cluster'
  | 'node-redis-sentinel'
  | 'ioredis'
  | 'ioredis-cluster';

/** Sends one command to one node. */
export type NodeSender = (args: string[]) => Promise<unknown>;

/** What the store needs from a client, whatever its library and deployment shape. */
export interface Backend {
  readonly kind: RedisClientKind;
  /** Resolves once commands can be sent; fails fast while a store-created client is disconnected. */
  ready(): Promise<void>;
  /**
   * Whether commands can be sent right now, answered without a promise; when it is not `true`
   * the store asks `ready()`, which says why not or waits.
   */
  usable?(): boolean;
  /** Sends one command; `key` routes it on a cluster. */
  send(key: string | undefined, args: string[]): Promise<unknown>;
  /** One sender per master node (SCAN must visit every master of a cluster). */
  masters(): Promise<NodeSender[]>;
  /** Closes the client if the store created it; a user's client is left open. */
  close(): Promise<void>;
  /**
   * Turns on tracking (default mode: of the keys this connection reads) on the one connection
   * commands go through, redirected to the connection `listener`, with NOLOOP: a change of a key
   * this connection read is reported to `listener`, unless this connection made it. `lost` is
   * called once, when the connection (and the tracking with it) goes. Only where the store owns
   * a single connection (a store-made node-redis client); `false` when `listener` is not a
   * connection named `listenerName` on the same server, or the server is older than Redis 7.0.5.
   */
  track?(listener: string, listenerName: string, lost: () => void): Promise<boolean>;
}
