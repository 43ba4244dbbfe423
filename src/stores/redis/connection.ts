import type { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { importOptional, SessionError } from '../../core/errors.ts';
import type { Backend } from './backend.ts';
import type { ConnectionSettings } from './options.ts';

/** The part of a node-redis client the store drives when it owns the client. */
interface OwnedClient extends EventEmitter {
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
  readonly isOpen: boolean;
  readonly isReady: boolean;
}

interface RedisModule {
  createClient(options: object): OwnedClient;
}

/** Where a connection goes, for messages (never with credentials). */
export function describeTarget(settings: ConnectionSettings): string {
  if (settings.socketPath !== undefined) return `unix:${settings.socketPath}`;
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return `${settings.tls ? 'rediss' : 'redis'}://${host}:${settings.port}/${settings.database}`;
}

/**
 * Reconnect delay: 50 ms, then 100 ms, plus up to 50% jitter so that many processes do not
 * reconnect in step. The cap is low on purpose: while Redis is down every call fails fast
 * anyway, and the first success after a restart comes at most one delay later. An attempt
 * against a host that refuses costs one SYN; against one that does not answer it is bounded
 * by `connectTimeoutMs`.
 */
function backoff(retries: number): number {
  const delay = Math.min(50 * 2 ** retries, 100);
  return delay + Math.floor(Math.random() * (delay / 2));
}

/**
 * Creates the node-redis client the store owns. It fails fast while disconnected (no offline
 * queue: an outage costs a quick error, not a hung request) and reconnects by itself, so the app
 * recovers without a restart.
 */
export async function ownedBackend(
  settings: ConnectionSettings,
  onEvent: (event: 'error' | 'ready', error?: Error) => void,
): Promise<Backend> {
  const redis = await importOptional<RedisModule>('redis', 'redis');
  const socket = {
    ...(settings.socketPath !== undefined
      ? { path: settings.socketPath }
      : { host: settings.host, port: settings.port }),
    // SNI names a host, never an address: Node deprecates an IP as `servername` (DEP0123).
    ...(settings.tls
      ? {
          ...settings.tls,
          tls: true,
          servername: settings.tls.servername ?? (isIP(settings.host) ? undefined : settings.host),
        }
      : {}),
    connectTimeout: settings.connectTimeoutMs,
    reconnectStrategy: settings.reconnect ? backoff : false,
  };
  const client = redis.createClient({
    socket,
    username: settings.username,
    password: settings.password,
    database: settings.database,
    name: settings.name,
    pingInterval: settings.pingMs > 0 ? settings.pingMs : undefined,
    disableOfflineQueue: true,
    // The engine bounds every call; node-redis 6's own per-command timer would only add cost.
    commandOptions: { timeout: 0 },
  });
  const target = describeTarget(settings);
  let everReady = false;
  let failure: Error | null = null;
  let connecting: Promise<void> | null = null;
  let attempt: Promise<void> | null = null;
  let closed = false;
  /** Counts the connections made: tracking turned on belongs to one of them. */
  let generation = 0;
  let trackingLost: (() => void) | null = null;
  const dropTracking = () => {
    const lost = trackingLost;
    trackingLost = null;
    lost?.();
  };
  // Without an 'error' listener node-redis would crash the process on the first network error.
  client.on('error', (error: Error) => {
    failure = error;
    dropTracking();
    onEvent('error', error);
  });
  client.on('end', dropTracking);
  client.on('reconnecting', dropTracking);
  client.on('ready', () => {
    // A connection attempt that was under way when close() destroyed the client can still
    // complete; it must not outlive the store.
    if (closed) return client.destroy();
    generation++;
    dropTracking();
    everReady = true;
    failure = null;
    onEvent('ready');
  });

  /** The outcome of the connection attempt under way: ready, or its error. */
  const outcome = () =>
    new Promise<void>((resolve, reject) => {
      const ready = () => {
        client.off('error', error);
        resolve();
      };
      const error = (cause: Error) => {
        client.off('ready', ready);
        reject(cause);
      };
      client.once('ready', ready);
      client.once('error', error);
    });

  return {
    kind: 'node-redis',
    usable: () => client.isReady && !closed,
    async ready() {
      if (client.isReady) return;
      if (closed)
        throw new SessionError('STORE_CLOSED', 'the store was closed while the call waited', { scope: 'redis' });
      if (!client.isOpen) {
        // First use, or (with reconnect off) the first call after the connection was lost.
        attempt = outcome();
        attempt.catch(() => {});
        connecting = client.connect().then(
          () => {},
          () => {},
        );
        return attempt;
      }
      if (everReady || failure) {
        const reason = failure ? failure.message || failure.name : 'reconnecting';
        throw new SessionError('STORE_UNAVAILABLE', `not connected to ${target} (${reason}); reconnecting`, {
          scope: 'redis',
        });
      }
      return attempt ?? outcome();
    },
    send: (_key, args) => client.sendCommand(args),
    masters: async () => [(args) => client.sendCommand(args)],
    async track(listener, listenerName, lost) {
      const connection = generation;
      // Scripts' writes honour NOLOOP from Redis 7.0.5 (redis/redis#11052); Valkey says 7.2.4.
      const server = String(await client.sendCommand(['INFO', 'server']));
      const version = /^redis_version:(\d+)\.(\d+)\.(\d+)/m.exec(server)?.slice(1).map(Number) ?? [0, 0, 0];
      const [major = 0, minor = 0, patch = 0] = version;
      if (major * 1e6 + minor * 1e3 + patch < 7_000_005) return false;
      // A client ID is a counter of its own server: make sure it names the listener, not
      // another client of a different server.
      const found = String(await client.sendCommand(['CLIENT', 'LIST', 'ID', listener]));
      if (!found.includes(` name=${listenerName} `)) return false;
      trackingLost = lost;
      try {
        // ON over an existing tracking (an earlier listener's) with other options is refused.
        await client.sendCommand(['CLIENT', 'TRACKING', 'OFF']);
        await client.sendCommand(['CLIENT', 'TRACKING', 'ON', 'REDIRECT', listener, 'NOLOOP']);
      } catch (error) {
        if (trackingLost === lost) trackingLost = null;
        throw error;
      }
      if (connection !== generation || !client.isReady) {
        if (trackingLost === lost) trackingLost = null;
        throw new SessionError('STORE_UNAVAILABLE', `the connection to ${target} was lost while tracking was set up`, {
          scope: 'redis',
        });
      }
      return true;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (!client.isOpen) return;
      // Destroying a socket that is still being created leaves it open: let the attempt finish.
      if (!client.isReady) await attempt?.catch(() => {});
      if (client.isReady) await client.close();
      else if (client.isOpen) client.destroy();
      await connecting;
    },
  };
}
