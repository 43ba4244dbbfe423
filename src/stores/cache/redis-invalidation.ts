import { importOptional, SessionError } from '../../core/errors.ts';
import type { Store } from '../../core/store.ts';
import type { InvalidationListener, InvalidationSource } from './invalidation.ts';

/** node-redis `createClient` options; not typed with node-redis's own types, which are not Tessera's API. */
type ClientOptions = Readonly<Record<string, unknown>>;

/** The part of a node-redis client this module uses. */
interface Connection {
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: 'error' | 'end', listener: (error?: unknown) => void): unknown;
  sendCommand(args: string[]): Promise<unknown>;
  subscribe(channel: string, listener: (message: string | string[] | null) => void): Promise<void>;
  publish(channel: string, message: string): Promise<number>;
}

type CreateClient = (options: ClientOptions) => Connection;

/** Options of {@link redisTracking} and {@link redisPubSub}. */
export interface RedisInvalidationOptions {
  /**
   * The Redis server (`redis://`, `rediss://`, `unix:///path/to.sock`). For a Redis Cluster give any node:
   * the masters are discovered and each gets its own listener.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string;
  /**
   * More node-redis `createClient` options (TLS, username, password...) for the listener
   * connections, passed as they are (`url` is the option above).
   */
  clientOptions?: ClientOptions;
  /**
   * `redisTracking`: the key prefix of the Redis store (its `prefix` option).
   * @default 'tessera:'
   */
  prefix?: string;
  /**
   * `redisPubSub`: the channel the processes announce changed keys on.
   * @default 'tessera:invalidate'
   */
  channel?: string;
  /** First delay before reconnecting after the listener lost its connection; doubles up to 5 s. @default 100 */
  reconnectDelayMs?: number;
}

const INVALIDATE = '__redis__:invalidate';

/**
 * Keeps listener connections up, and tells the cache to drop everything whenever they are not,
 * until they are back. Subclasses say what to subscribe to.
 */
abstract class RedisListener implements InvalidationSource {
  abstract readonly name: string;
  protected readonly url: string;
  protected readonly clientOptions: ClientOptions;
  readonly #firstDelay: number;
  #delay: number;
  #listener: InvalidationListener | null = null;
  #connections: Connection[] = [];
  #live = false;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  #createClient: CreateClient | null = null;
  /** The cache's backing store, given to `start`. */
  protected store: Store | null = null;

  constructor(options: RedisInvalidationOptions) {
    this.url = options.url ?? 'redis://127.0.0.1:6379';
    this.clientOptions = options.clientOptions ?? {};
    this.#firstDelay = options.reconnectDelayMs ?? 100;
    this.#delay = this.#firstDelay;
  }

  get live(): boolean {
    return this.#live;
  }

  async start(listener: InvalidationListener, store?: Store): Promise<void> {
    this.#listener = listener;
    this.store = store ?? null;
    const redis = await importOptional<{ createClient: CreateClient }>('redis', 'cache');
    this.#createClient = redis.createClient;
    await this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#teardown();
  }

  /** Sets up the subscriptions on fresh connections made with `open`. */
  protected abstract listen(
    open: (url: string) => Promise<Connection>,
    onKeys: (keys: string[] | null) => void,
  ): Promise<void>;

  protected connection(url: string): Promise<Connection> {
    // node-redis takes no unix:// URL: a socket path goes in socket.path.
    const socketPath = url.startsWith('unix://') ? decodeURIComponent(new URL(url).pathname) : undefined;
    const client = (this.#createClient as CreateClient)({
      ...this.clientOptions,
      ...(socketPath ? {} : { url }),
      // Reconnecting is done here, as a whole, so that tracking is set up again each time.
      socket: {
        ...(this.clientOptions.socket as object | undefined),
        ...(socketPath ? { path: socketPath } : {}),
        reconnectStrategy: false,
      },
    });
    this.#connections.push(client);
    client.on('error', () => this.lost());
    client.on('end', () => this.lost());
    return client.connect().then(() => {
      // close() may have run while this connection was being opened.
      if (this.#closed) {
        this.#teardown();
        client.destroy();
        throw new SessionError('STORE_CLOSED', 'the cache was closed while its listener connected', { scope: 'cache' });
      }
      return client;
    });
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.listen(
        (url) => this.connection(url),
        (keys) => this.#onKeys(keys),
      );
      // A connection lost while the listeners were set up has scheduled a new attempt.
      if (this.#timer || this.#closed) return;
      this.#live = true;
      this.#delay = this.#firstDelay;
    } catch {
      if (this.#closed) this.#teardown();
      else this.lost();
    }
  }

  #onKeys(keys: string[] | null): void {
    if (keys === null) {
      this.#listener?.reset('the server was flushed');
      return;
    }
    for (const key of keys) {
      const local = this.toLocalKey(key);
      if (local !== null) this.#listener?.evict(local);
    }
  }

  /** The cache key for a key named in a message, or `null` when it is not a session. */
  protected abstract toLocalKey(key: string): string | null;

  /** The connections are gone (lost or closed). */
  protected tornDown(): void {}

  /** A connection (or the tracking) is gone: drop the cache, and connect again after a delay. */
  protected lost(): void {
    if (this.#timer || this.#closed) return;
    this.#live = false;
    // The timer is set first: tearing down emits 'end' events that land back here.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#connect();
    }, this.#delay);
    this.#timer.unref();
    this.#delay = Math.min(this.#delay * 2, 5000);
    this.#listener?.reset('the invalidation connection was lost');
    this.#teardown();
  }

  #teardown(): void {
    this.#live = false;
    this.tornDown();
    const connections = this.#connections;
    this.#connections = [];
    for (const connection of connections) {
      try {
        connection.destroy();
      } catch {
        // Already closed: nothing to release.
      }
    }
  }
}

/** What `redisTracking` asks of a backing Redis store (`RedisStore.trackOwnWrites`), to keep what the cache wrote. */
interface TracksOwnWrites {
  trackOwnWrites(owner: object, listener: string, listenerName: string, lost: () => void): Promise<boolean>;
}

function tracksOwnWrites(store: Store | null): store is Store & TracksOwnWrites {
  return typeof (store as Partial<TracksOwnWrites> | null)?.trackOwnWrites === 'function';
}

/** Server-assisted client-side caching (RESP2 tracking with a redirect, broadcast mode). */
class RedisTracking extends RedisListener {
  readonly name = 'redis-tracking';
  readonly #prefix: string;
  #quiet = false;

  constructor(options: RedisInvalidationOptions) {
    super(options);
    this.#prefix = options.prefix ?? 'tessera:';
  }

  get quietOwnWrites(): boolean {
    return this.#quiet && this.live;
  }

  protected override tornDown(): void {
    this.#quiet = false;
  }

  protected toLocalKey(key: string): string | null {
    return key.startsWith(this.#prefix) ? key.slice(this.#prefix.length) : null;
  }

  protected async listen(
    open: (url: string) => Promise<Connection>,
    onKeys: (keys: string[] | null) => void,
  ): Promise<void> {
    const first = await open(this.url);
    // Tracking is per server: on a cluster every master reports only its own keys.
    const urls = await masterUrls(first, this.url);
    // On one server, the tracking goes on the store's own connection when the store allows it:
    // with NOLOOP, the store's writes raise no invalidation here (the cache keeps what it wrote,
    // and a read-modify-write costs one round trip) while everyone else's still do.
    const store = urls.length === 1 && tracksOwnWrites(this.store) ? this.store : null;
    for (const url of urls) {
      // With the tracking on the store's connection, the first connection is free to listen.
      const subscriber = store ? first : await open(url);
      const id = String(await subscriber.sendCommand(['CLIENT', 'ID']));
      const listenerName = `tessera-tier-${globalThis.crypto.randomUUID()}`;
      await subscriber.sendCommand(['CLIENT', 'SETNAME', listenerName]);
      await subscriber.subscribe(INVALIDATE, (message) => onKeys(Array.isArray(message) ? message : null));
      if (store && (await store.trackOwnWrites(this, id, listenerName, () => this.lost()))) {
        this.#quiet = true;
        continue;
      }
      const control = url === this.url && subscriber !== first ? first : await open(url);
      // BCAST: told about every change under the prefix, whoever made it, with no read needed first.
      await control.sendCommand(['CLIENT', 'TRACKING', 'ON', 'REDIRECT', id, 'BCAST', 'PREFIX', this.#prefix]);
    }
  }
}

/** Explicit announcements on a Redis channel, for stores that are not Redis. */
class RedisPubSub extends RedisListener {
  readonly name = 'redis-pubsub';
  readonly #channel: string;
  #publisher: Connection | null = null;

  constructor(options: RedisInvalidationOptions) {
    super(options);
    this.#channel = options.channel ?? 'tessera:invalidate';
  }

  protected toLocalKey(key: string): string | null {
    return key;
  }

  protected async listen(
    open: (url: string) => Promise<Connection>,
    onKeys: (keys: string[] | null) => void,
  ): Promise<void> {
    const subscriber = await open(this.url);
    await subscriber.subscribe(this.#channel, (message) => onKeys(typeof message === 'string' ? [message] : null));
    this.#publisher = await open(this.url);
  }

  async announce(key: string): Promise<void> {
    if (!this.#publisher || !this.live) {
      throw new SessionError('STORE_UNAVAILABLE', 'cannot announce a change: the invalidation channel is down', {
        scope: 'cache',
      });
    }
    await this.#publisher.publish(this.#channel, key);
  }
}

/** The URL of every master when `connection` is a cluster node, else just `url`. */
async function masterUrls(connection: Connection, url: string): Promise<string[]> {
  const info = String(await connection.sendCommand(['INFO', 'cluster']));
  if (!/cluster_enabled:1/.test(info)) return [url];
  const nodes = String(await connection.sendCommand(['CLUSTER', 'NODES']));
  const base = new URL(url);
  const masters: string[] = [];
  for (const line of nodes.split('\n')) {
    const [, address, flags] = line.split(' ');
    if (!address || !flags?.split(',').includes('master') || flags.includes('fail')) continue;
    const hostPort = address.split('@')[0] as string;
    const at = hostPort.lastIndexOf(':');
    const node = new URL(base.toString());
    node.hostname = hostPort.slice(0, at) || base.hostname;
    node.port = hostPort.slice(at + 1);
    masters.push(node.toString());
  }
  return masters;
}

/**
 * Invalidations for a cache in front of the Redis store: Redis itself reports every change
 * under the store's prefix (CLIENT TRACKING, broadcast mode), whoever made it, including
 * expiry. Propagation is one network hop.
 */
export function redisTracking(options: RedisInvalidationOptions = {}): InvalidationSource {
  return new RedisTracking(options);
}

/**
 * Invalidations over a Redis pub/sub channel, for a cache in front of a store that is not Redis
 * (SQL, Elasticsearch): every process announces the keys it writes.
 */
export function redisPubSub(options: RedisInvalidationOptions = {}): InvalidationSource {
  return new RedisPubSub(options);
}
