import { SessionError } from '../../core/errors.ts';
import type { Backend, NodeRedisNodeLike, NodeRedisSentinelLike, NodeSender } from './backend.ts';

/** How often the master is looked at while commands are in flight. */
const WATCH_MS = 10;
/** How long a request waits for `ROLE` on a master connection that is new (after the first one). */
const ROLE_WAIT_MS = 100;
/** How soon `ROLE` is asked again after a server said it is not the master. */
const ROLE_RETRY_MS = 50;

/**
 * The backends listening to each master connection: one set of listeners per connection, however
 * many stores share the client (each would otherwise add its own and trip MaxListeners).
 */
const listeners = new WeakMap<NodeRedisNodeLike, Set<() => void>>();

/** Calls `listener` when `node` errs, ends or reconnects; returns how to stop. */
function onDrop(node: NodeRedisNodeLike, listener: () => void): () => void {
  let set = listeners.get(node);
  if (set === undefined) {
    const created = new Set<() => void>();
    set = created;
    listeners.set(node, created);
    for (const event of ['error', 'end', 'reconnecting']) {
      node.on?.(event, () => {
        for (const call of created) call();
      });
    }
  }
  set.add(listener);
  return () => set.delete(listener);
}

/** A command in flight, and the master connection it went to once known. */
interface Pending {
  fail(error: Error): void;
  node?: NodeRedisNodeLike;
}

/**
 * The backend over a node-redis (v5, v6) Sentinel client the user owns. What node-redis does on
 * its own, and what this changes:
 *
 * - Every command waits while the client runs its rediscovery, a loop that asks Sentinel and
 *   sleeps 1 s after every answer without a usable master. It runs on any Sentinel event about
 *   the master, and Sentinel can flag a master that is up as down for a moment (busy, on a loaded
 *   machine, with a restarted replica's sync): node-redis then holds every command, on a
 *   connection that is up, for seconds, past the engine's timeout. So the backend learns the
 *   client's master connection (`_execute` hands it over) and, once `ROLE` on that connection
 *   said `master`, sends to it directly while it stays up and is the one `getMasterNode()` names.
 *   That is what node-redis would send to once its loop ends; when the loop moves to another
 *   master it closes this connection, and the backend follows. A write that reached a master
 *   Sentinel had meanwhile replaced is the asynchronous-replication loss `durableCommit` exists
 *   for: its WAIT then finds no replica and the commit fails.
 * - A command in flight when the master connection drops is kept and retried through that loop,
 *   until the new master answers it seconds later. The backend fails it at once: on the
 *   connection's `error`/`end`, and, as no event says the master changed, by looking at
 *   `getMasterNode()` every {@link WATCH_MS} ms while commands are in flight. node-redis may still
 *   run such a command later on the new master, as after a timeout; a WAIT among them then counts
 *   the new master's replicas, not the write's, which is why it must fail.
 * - While no master is known, a command would wait for that loop: it fails at once instead.
 * - The master connection reconnects to its old address, where a restarted old master may now be
 *   a replica (empty until its first sync) until the loop moves the client to the new master,
 *   up to 1 s later. Reads would see no session there and writes would wait on READONLY retries,
 *   so a master connection that is new (first use, reconnected, moved) is asked `ROLE` before
 *   commands go to it, and requests fail fast until it answers `master`.
 *
 * Without `_execute` (a client that does not declare it) every command goes through
 * `sendCommand`, and the first point does not apply.
 */
export function sentinelBackend(client: NodeRedisSentinelLike): Backend {
  const pending = new Set<Pending>();
  let watcher: NodeJS.Timeout | undefined;
  /** The master last seen (`host:port`). */
  let master = nodeName(client.getMasterNode());
  /** The client's master connection, as `_execute` last handed it over, and whether ROLE said master on it. */
  let pinned: { node: NodeRedisNodeLike; name: string | undefined; confirmed: boolean } | undefined;
  /** The connections this backend listens to, and how to stop. */
  const heard = new Map<NodeRedisNodeLike, () => void>();
  /** Without `_execute`: the master ROLE confirmed, by address (the connection is not known). */
  let confirmedName: string | undefined;
  let everConfirmed = false;
  let role: { master: string; at: number; answer: Promise<string>; settled: boolean } | undefined;

  const fail = (which: (entry: Pending) => boolean, error: Error) => {
    for (const entry of pending) {
      if (!which(entry)) continue;
      pending.delete(entry);
      entry.fail(error);
    }
  };

  /** Notes a lost or changed master; what was in flight on the previous one fails now. */
  const look = (): string | undefined => {
    const now = nodeName(client.getMasterNode());
    if (now === master) return now;
    const lost = new SessionError(
      'STORE_UNAVAILABLE',
      `the connection to the master${master ? ` ${master}` : ''} was lost while the command was in flight (failover?)`,
      { scope: 'redis' },
    );
    master = now;
    confirmedName = undefined;
    if (pinned) pinned.confirmed = false;
    fail(() => true, lost);
    return now;
  };

  /** A master connection went down (or reconnects): nothing more goes to it before ROLE again. */
  const dropped = (node: NodeRedisNodeLike) => {
    if (pinned?.node === node) pinned.confirmed = false;
    const name = nodeName(node.options?.socket);
    fail(
      (entry) => entry.node === node,
      new SessionError(
        'STORE_UNAVAILABLE',
        `the connection to the master ${name ?? ''} was lost while the command was in flight (failover?)`,
        { scope: 'redis' },
      ),
    );
  };

  const adopt = (node: NodeRedisNodeLike) => {
    if (pinned?.node === node) return;
    pinned = { node, name: nodeName(node.options?.socket), confirmed: false };
    if (heard.has(node) || typeof node.on !== 'function') return;
    // node-redis replaces its master connections on a failover: forget the ones that ended.
    for (const [old, stop] of heard) {
      if (!old.isReady) {
        stop();
        heard.delete(old);
      }
    }
    heard.set(
      node,
      onDrop(node, () => dropped(node)),
    );
  };

  /** The pinned connection when it is up and is the master's; `confirmed` also asks for ROLE's word. */
  const usable = (confirmed: boolean): NodeRedisNodeLike | undefined => {
    const p = pinned;
    if (!p?.node.isReady || p.name !== master || p.name === undefined) return undefined;
    return !confirmed || p.confirmed ? p.node : undefined;
  };

  /** Sends on the pinned connection when it may be used, otherwise through the client (and learns its connection). */
  const sendOn = (args: string[], entry: Pending, confirmedOnly: boolean): Promise<unknown> => {
    const node = usable(confirmedOnly);
    if (node) {
      entry.node = node;
      return node.sendCommand(args).catch((error: unknown) => {
        // Demoted under us (Sentinel moved the master, node-redis has not yet): ROLE again first.
        if (error instanceof Error && error.message.startsWith('READONLY') && pinned?.node === node) {
          pinned.confirmed = false;
        }
        throw error;
      });
    }
    const execute = client._execute as
      | ((isReadonly: boolean, fn: (node: NodeRedisNodeLike) => Promise<unknown>) => Promise<unknown>)
      | undefined;
    if (typeof execute !== 'function') return client.sendCommand(false, args);
    // Never `isReadonly: true`: with `useReplicas` that could read a replica that lags a write.
    return execute.call(client, false, (through) => {
      adopt(through);
      entry.node = through;
      return through.sendCommand(args);
    });
  };

  const sendWatched = (args: string[], confirmedOnly = true, entry: Pending = { fail: () => {} }): Promise<unknown> =>
    new Promise((resolve, reject) => {
      entry.fail = reject;
      pending.add(entry);
      if (watcher === undefined) {
        watcher = setInterval(look, WATCH_MS);
        watcher.unref();
      }
      const done = () => {
        pending.delete(entry);
        if (pending.size === 0 && watcher !== undefined) {
          clearInterval(watcher);
          watcher = undefined;
        }
      };
      // A command failed by look() or dropped() still settles here later; its outcome no longer matters.
      sendOn(args, entry, confirmedOnly).then(
        (reply) => {
          done();
          resolve(reply);
        },
        (error: unknown) => {
          done();
          reject(error);
        },
      );
    });

  /** What the server behind the master connection says it is (`master`, `slave`), or why not known. */
  const askRole = (name: string): Promise<string> => {
    if (role?.master !== name || (role.settled && Date.now() - role.at >= ROLE_RETRY_MS)) {
      const asked = {
        master: name,
        at: Date.now(),
        settled: false,
        answer: (async () => {
          const entry: Pending = { fail: () => {} };
          try {
            const reply = await sendWatched(['ROLE'], false, entry);
            const answer = Array.isArray(reply) ? String(reply[0]) : 'an unexpected ROLE reply';
            if (answer === 'master') {
              // The connection that answered is the one confirmed (a drop since then asks again).
              if (entry.node !== undefined && pinned?.node === entry.node && usable(false)) pinned.confirmed = true;
              if (entry.node === undefined) confirmedName = name;
              everConfirmed = true;
            }
            return answer;
          } catch (error) {
            return error instanceof Error ? error.message : String(error);
          }
        })(),
      };
      asked.answer.then(() => {
        asked.settled = true;
      });
      role = asked;
    }
    // Until a master was first confirmed (the store's first call), wait for the answer, within
    // the engine's timeout: failing fast is for a master connection that is new after a failover.
    if (!everConfirmed) return role.answer;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no ROLE answer within ${ROLE_WAIT_MS} ms`), ROLE_WAIT_MS);
    });
    return Promise.race([role.answer, late]).finally(() => clearTimeout(timer));
  };

  const ready = async () => {
    const name = look();
    if (name === undefined) {
      throw new SessionError('STORE_UNAVAILABLE', 'Sentinel knows no master right now (failover?)', { scope: 'redis' });
    }
    if (usable(true) || confirmedName === name) return;
    const answer = await askRole(name);
    if (answer === 'master' && look() === name && (usable(true) || confirmedName === name)) return;
    throw new SessionError(
      'STORE_UNAVAILABLE',
      `the Sentinel client's master connection ${name} is not to the master yet (${answer}; failover?)`,
      { scope: 'redis' },
    );
  };

  const send: NodeSender = (args) => sendWatched(args);
  return {
    kind: 'node-redis-sentinel',
    ready,
    send: (_key, args) => send(args),
    masters: async () => [send],
    close: async () => {
      for (const stop of heard.values()) stop();
      heard.clear();
    },
  };
}

function nodeName(node: unknown): string | undefined {
  if (typeof node !== 'object' || node === null) return undefined;
  const { host, port } = node as { host?: unknown; port?: unknown };
  return `${String(host)}:${String(port)}`;
}
