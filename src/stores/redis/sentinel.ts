import { SessionError } from '../../core/errors.ts';
import type { Backend, NodeRedisSentinelLike, NodeSender } from './backend.ts';

/** How often the master is looked at while commands are in flight. */
const WATCH_MS = 10;
/** How long a request waits for `ROLE` on a master connection that is new. */
const ROLE_WAIT_MS = 100;
/** How soon `ROLE` is asked again after a server said it is not the master. */
const ROLE_RETRY_MS = 50;

/**
 * The backend over a node-redis (v5, v6) Sentinel client the user owns. What node-redis does on
 * its own, and what this changes:
 *
 * - A command in flight when the master connection drops is kept and retried through its
 *   rediscovery, a loop that asks Sentinel and sleeps 1 s after every answer without a usable
 *   master, until the new master answers it seconds later: past the engine's timeout. No event
 *   says the master was lost, so while commands are in flight the backend looks at the client's
 *   master (`getMasterNode()`) every {@link WATCH_MS} ms, and when it was lost or changed, fails
 *   them at once. node-redis may still run such a command later on the new master, as after a
 *   timeout; a WAIT among them then counts the new master's replicas, not the write's, which is
 *   why it must fail.
 * - While no master is known, a command would wait for that loop: it fails at once instead.
 * - The master connection reconnects to its old address, where a restarted old master may now be
 *   a replica (empty until its first sync) until the loop moves the client to the new master,
 *   up to 1 s later. Reads would see no session there and writes would wait on READONLY retries,
 *   so a master connection that is new (first use, reconnected, moved) is asked `ROLE` before
 *   commands go to it, and requests fail fast until it answers `master`.
 */
export function sentinelBackend(client: NodeRedisSentinelLike): Backend {
  // Never `isReadonly: true`: with `useReplicas` that could read a replica that lags a write.
  const send: NodeSender = (args) => client.sendCommand(false, args);
  const inFlight = new Set<(error: Error) => void>();
  let watcher: NodeJS.Timeout | undefined;
  /** The master last seen (`host:port`), and the one `ROLE` confirmed. */
  let master = nodeName(client.getMasterNode());
  let confirmed: string | undefined;
  let role: { master: string; at: number; answer: Promise<string>; settled: boolean } | undefined;

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
    confirmed = undefined;
    for (const fail of inFlight) fail(lost);
    inFlight.clear();
    return now;
  };

  const sendWatched: NodeSender = (args) =>
    new Promise((resolve, reject) => {
      inFlight.add(reject);
      if (watcher === undefined) {
        watcher = setInterval(look, WATCH_MS);
        watcher.unref();
      }
      const done = () => {
        inFlight.delete(reject);
        if (inFlight.size === 0 && watcher !== undefined) {
          clearInterval(watcher);
          watcher = undefined;
        }
      };
      // A command failed by look() still settles here later; its outcome no longer matters.
      send(args).then(
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
        answer: sendWatched(['ROLE']).then(
          (reply) => (Array.isArray(reply) ? String(reply[0]) : `an unexpected ROLE reply`),
          (error: unknown) => (error instanceof Error ? error.message : String(error)),
        ),
      };
      asked.answer.then(() => {
        asked.settled = true;
      });
      role = asked;
    }
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
    if (confirmed === name) return;
    const answer = await askRole(name);
    if (answer === 'master' && look() === name) {
      confirmed = name;
      return;
    }
    throw new SessionError(
      'STORE_UNAVAILABLE',
      `the Sentinel client's master connection ${name} is not to the master yet (${answer}; failover?)`,
      { scope: 'redis' },
    );
  };

  return {
    kind: 'node-redis-sentinel',
    ready,
    send: (_key, args) => sendWatched(args),
    masters: async () => [sendWatched],
    close: async () => {},
  };
}

function nodeName(node: unknown): string | undefined {
  if (typeof node !== 'object' || node === null) return undefined;
  const { host, port } = node as { host?: unknown; port?: unknown };
  return `${String(host)}:${String(port)}`;
}
