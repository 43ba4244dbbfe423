import type { EventEmitter } from 'node:events';
import { SessionError } from '../../core/errors.ts';
import type { Backend, NodeRedisSentinelLike, NodeSender, RedisClientKind } from './backend.ts';
import { sentinelBackend } from './sentinel.ts';

export type { Backend, NodeRedisSentinelLike, NodeSender, RedisClientKind } from './backend.ts';

/**
 * The Redis clients the store accepts, typed structurally (no import of either library's types),
 * and one small adapter over them so the store logic is written once.
 */

/** A node-redis (v5) client from `createClient()`. Connect it before use; the store never closes it. */
export interface NodeRedisClientLike {
  sendCommand(args: string[], options?: object): Promise<unknown>;
  readonly isOpen: boolean;
  readonly isReady: boolean;
}

/** A node-redis (v5) cluster from `createCluster()`. */
export interface NodeRedisClusterLike {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
    options?: object,
  ): Promise<unknown>;
  readonly masters: readonly object[];
  nodeClient(node: object): Promise<NodeRedisClientLike>;
}

/** An ioredis (v5) `Redis` instance: standalone, or through Sentinel (`new Redis({ sentinels, name })`). */
export interface IORedisLike {
  call(command: string, args: string[]): Promise<unknown>;
  readonly status: string;
}

/** An ioredis (v5) `Cluster`. */
export interface IORedisClusterLike extends IORedisLike {
  readonly isCluster: boolean;
  nodes(role?: 'master' | 'slave' | 'all'): IORedisLike[];
}

/** Any client the store accepts through the `client` option. */
export type RedisClientLike =
  | NodeRedisClientLike
  | NodeRedisClusterLike
  | NodeRedisSentinelLike
  | IORedisLike
  | IORedisClusterLike;

/**
 * node-redis 6 gives every command a 5 s timer of its own (an `AbortSignal.timeout`, about 10 µs
 * a command with the garbage it keeps alive) unless the client was told otherwise. The engine
 * already bounds every store call (`storeTimeoutMs`), so commands go without it, unless the app
 * chose a `commandOptions.timeout` for its client, which is then kept.
 */
export function commandOptionsOf(client: object): object | undefined {
  const options = (client as { options?: { commandOptions?: { timeout?: unknown } } }).options;
  return options?.commandOptions?.timeout === undefined ? NO_COMMAND_TIMEOUT : undefined;
}
const NO_COMMAND_TIMEOUT = Object.freeze({ timeout: 0 });

const has = (value: object, name: string, type: 'function' | 'string' | 'boolean' | 'object') =>
  name in value && typeof (value as Record<string, unknown>)[name] === type;

/** Detects the kind of a client structurally, or `null` when it is neither library's client. */
export function clientKind(value: unknown): RedisClientKind | null {
  if (typeof value !== 'object' || value === null) return null;
  if (has(value, 'call', 'function') && has(value, 'status', 'string')) {
    return (value as { isCluster?: unknown }).isCluster === true && has(value, 'nodes', 'function')
      ? 'ioredis-cluster'
      : 'ioredis';
  }
  if (!has(value, 'sendCommand', 'function')) return null;
  if (has(value, 'nodeClient', 'function') && 'masters' in value) return 'node-redis-cluster';
  if (has(value, 'getMasterNode', 'function')) return 'node-redis-sentinel';
  if ('isOpen' in value && 'isReady' in value) return 'node-redis';
  return null;
}

/**
 * Fails fast while an ioredis client that has been ready is not: reconnecting, or (through
 * Sentinel) still looking for the new master. Commands sent meanwhile would wait in its offline
 * queue until the engine's timeout; before its first connection they may wait (it is connecting).
 */
function ioredisReadiness(c: IORedisLike): () => Promise<void> {
  let seen = false;
  return async () => {
    if (c.status === 'ready') {
      seen = true;
      return;
    }
    if (seen || c.status === 'reconnecting' || c.status === 'end' || c.status === 'close') {
      throw new SessionError(
        'STORE_UNAVAILABLE',
        `the ioredis client is not connected (status ${c.status}); calls fail at once until it reconnects`,
        { scope: 'redis' },
      );
    }
    // Its first connection is under way: wait for it (with `enableOfflineQueue: false` a command
    // sent now would fail), bounded by the engine's timeout.
    const events = c as Partial<EventEmitter>;
    if ((c.status === 'connecting' || c.status === 'connect') && typeof events.once === 'function') {
      await new Promise<void>((resolve, reject) => {
        const done = (error?: Error) => {
          events.off?.('ready', done);
          events.off?.('error', done);
          if (error) reject(error);
          else resolve();
        };
        events.once?.('ready', done);
        events.once?.('error', done);
      });
      seen = true;
    }
  };
}

/** The rejections of the commands each ioredis client has in flight for the store(s) over it. */
const ioredisInFlight = new WeakMap<IORedisLike, Set<(error: Error) => void>>();

/**
 * Sends through an ioredis client and fails what is in flight at once when its connection closes.
 * ioredis keeps such commands and sends them again after it reconnects (through Sentinel: to the
 * new master, once found), so they would run to the engine's timeout. ioredis may still run one
 * later, as after a timeout; a WAIT among them would then count the new master's replicas, not
 * the write's, which is why it must fail. One `close` listener per client, however many stores
 * share it.
 */
function ioredisSender(c: IORedisLike): NodeSender {
  let pending = ioredisInFlight.get(c);
  if (pending === undefined) {
    const created = new Set<(error: Error) => void>();
    pending = created;
    ioredisInFlight.set(c, created);
    (c as Partial<EventEmitter>).on?.('close', () => {
      const lost = new SessionError(
        'STORE_UNAVAILABLE',
        'the connection closed while the command was in flight (server gone, or failover?)',
        { scope: 'redis' },
      );
      for (const fail of created) fail(lost);
      created.clear();
    });
  }
  const inFlight = pending;
  return (args) =>
    new Promise((resolve, reject) => {
      inFlight.add(reject);
      c.call(args[0] as string, args.slice(1)).then(
        (reply) => {
          inFlight.delete(reject);
          resolve(reply);
        },
        (error: unknown) => {
          inFlight.delete(reject);
          reject(error);
        },
      );
    });
}

/** An adapter over a client the user created and owns. */
export function userBackend(client: RedisClientLike, kind: RedisClientKind): Backend {
  const base = { kind, ready: async () => {}, close: async () => {} };
  switch (kind) {
    case 'node-redis': {
      const c = client as NodeRedisClientLike;
      const options = commandOptionsOf(c);
      const send: NodeSender = (args) => c.sendCommand(args, options);
      const ready = async () => {
        if (c.isReady) return;
        const state = c.isOpen ? 'ready (reconnecting)' : 'connected: call its connect() before using the store';
        throw new SessionError('STORE_UNAVAILABLE', `the node-redis client is not ${state}`, { scope: 'redis' });
      };
      return { ...base, ready, usable: () => c.isReady, send: (_key, args) => send(args), masters: async () => [send] };
    }
    case 'node-redis-cluster': {
      const c = client as NodeRedisClusterLike;
      const options = commandOptionsOf(c);
      return {
        ...base,
        // Every master the cluster client has connected to is down: commands would wait for a
        // rediscovery that cannot succeed. A partial outage is left to the node clients'
        // `disableOfflineQueue`.
        async ready() {
          const clients = c.masters
            .map((master) => (master as { client?: { isReady?: boolean } }).client)
            .filter((node) => node !== undefined);
          if (clients.length > 0 && clients.every((node) => node.isReady === false)) {
            throw new SessionError('STORE_UNAVAILABLE', 'no master of the cluster is connected', { scope: 'redis' });
          }
        },
        send: (key, args) => c.sendCommand(key, false, args, options),
        masters: async () => {
          const nodes = await Promise.all(c.masters.map((master) => c.nodeClient(master)));
          return nodes.map((node) => (args: string[]) => node.sendCommand(args));
        },
      };
    }
    case 'node-redis-sentinel':
      return sentinelBackend(client as NodeRedisSentinelLike);
    case 'ioredis': {
      const c = client as IORedisLike;
      const send = ioredisSender(c);
      return {
        ...base,
        ready: ioredisReadiness(c),
        usable: () => c.status === 'ready',
        send: (_key, args) => send(args),
        masters: async () => [send],
      };
    }
    case 'ioredis-cluster': {
      const c = client as IORedisClusterLike;
      return {
        ...base,
        ready: ioredisReadiness(c),
        send: (_key, args) => c.call(args[0] as string, args.slice(1)),
        async masters() {
          // Until the cluster is ready its node list is empty; a first command waits for it.
          if (c.status !== 'ready') await c.call('PING', []);
          return c.nodes('master').map((node) => (args: string[]) => node.call(args[0] as string, args.slice(1)));
        },
      };
    }
  }
}
