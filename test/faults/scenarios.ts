/**
 * The fault scenarios, one per store and deployment: each starts its private servers and
 * returns a plan for {@link runFault} and a teardown. The fault tests assert on them and
 * `bench/faults.ts` prints their figures.
 */
import { Cluster, Redis } from 'ioredis';
import { createClient, createCluster, createSentinel } from 'redis';
import { createSentinel as createSentinel6 } from 'redis6';
import { RedisStore, type RedisStoreOptions } from '../../src/stores/redis/index.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import {
  type RedisClusterHandle,
  type RedisSentinelHandle,
  redisCommand,
  startRedis,
  startRedisCluster,
  startRedisSentinel,
} from '../support/redis-servers.ts';
import { type SqlServer, startMariadb, startPostgres } from '../support/sql-servers.ts';
import type { FaultPlan } from './harness.ts';

export interface Prepared {
  plan: FaultPlan;
  teardown(): Promise<void>;
}

/** Redis with every write fsynced before it is answered, so a kill loses nothing acknowledged. */
export const DURABLE_REDIS = ['--appendonly', 'yes', '--appendfsync', 'always'];

export async function sqlScenario(kind: 'postgres' | 'mariadb', server?: SqlServer): Promise<Prepared> {
  const db = server ?? (kind === 'postgres' ? await startPostgres() : await startMariadb());
  const store = new SqlStore({ url: db.url, table: `fault_${kind}`, poolSize: 5, connectTimeoutMs: 1000 });
  return {
    plan: {
      name: kind === 'postgres' ? 'PostgreSQL (pg_ctl stop -m immediate)' : 'MariaDB (SIGKILL)',
      store,
      fault: () => db.kill(),
      recover: () => db.start(),
    },
    async teardown() {
      await store.close().catch(() => {});
      if (!server) await db.stop();
    },
  };
}

export async function redisScenario(): Promise<Prepared> {
  const redis = await startRedis({ args: DURABLE_REDIS });
  const store = new RedisStore({ url: redis.url, prefix: 'fault:' });
  return {
    plan: { name: 'Redis, AOF fsync always (SIGKILL)', store, fault: () => redis.kill(), recover: () => redis.start() },
    async teardown() {
      await store.close().catch(() => {});
      await redis.stop();
    },
  };
}

/** The cluster's nodes, killed and restarted all together (an outage of every master). */
export async function clusterScenario(
  library: 'node-redis' | 'ioredis',
  cluster?: RedisClusterHandle,
): Promise<Prepared> {
  const handle = cluster ?? (await startRedisCluster({ args: DURABLE_REDIS }));
  let close: () => Promise<void>;
  let options: RedisStoreOptions;
  if (library === 'node-redis') {
    // As the README shows it: no offline queue on the node connections, so an outage fails fast.
    const c = createCluster({
      rootNodes: handle.nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })),
      defaults: { disableOfflineQueue: true },
    });
    c.on('error', () => {});
    await c.connect();
    options = { client: c };
    close = () => c.close();
  } else {
    const c = new Cluster(handle.nodes, { enableOfflineQueue: false });
    c.on('error', () => {});
    options = { client: c };
    close = async () => {
      c.disconnect();
    };
  }
  const store = new RedisStore({ ...options, prefix: `fault:${library}:` });
  return {
    plan: {
      name: `Redis Cluster, 3 masters, ${library} (all masters SIGKILLed)`,
      store,
      fault: () => handle.kill(),
      recover: () => handle.start(),
    },
    async teardown() {
      await store.close().catch(() => {});
      await close().catch(() => {});
      if (!cluster) await handle.stop();
    },
  };
}

/** The port Sentinel currently names as master. */
async function masterPort(handle: RedisSentinelHandle): Promise<number> {
  const sentinel = handle.sentinels[0] as { port: number };
  const addr = (await redisCommand(sentinel, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', handle.masterName])) as string[];
  return Number(addr[1]);
}

/**
 * Waits until the setup is steady again after an earlier run: the master has its replica online
 * and caught up, and every sentinel sees the replica as a healthy replica (so it can promote it).
 */
async function replicated(handle: RedisSentinelHandle): Promise<void> {
  const deadline = Date.now() + 30_000;
  const info = async (port: number) => String(await redisCommand({ port }, ['INFO', 'replication']));
  const field = (text: string, name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  for (;;) {
    const master = await masterPort(handle);
    const replica = master === handle.master.port ? handle.replica.port : handle.master.port;
    const [m, r] = await Promise.all([info(master), info(replica)]).catch(() => ['', '']);
    const caughtUp =
      field(m, 'role') === 'master' &&
      field(m, 'slave0').includes('state=online') &&
      field(r, 'master_link_status') === 'up' &&
      field(r, 'master_sync_in_progress') === '0' &&
      field(m, 'master_repl_offset') === field(r, 'slave_repl_offset');
    let seen = caughtUp;
    for (const sentinel of handle.sentinels) {
      if (!seen) break;
      const replicas = (await redisCommand(sentinel, ['SENTINEL', 'REPLICAS', handle.masterName])) as string[][];
      seen = replicas.some((entry) => {
        const at = (name: string) => entry[entry.indexOf(name) + 1];
        return at('port') === String(replica) && at('flags') === 'slave';
      });
    }
    if (seen) return;
    if (Date.now() > deadline) throw new Error(`the Sentinel setup did not settle within 30 s:\n${m}\n${r}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether the master on `port` has a replica online (ROLE lists online replicas only). */
async function replicaOnline(port: number): Promise<boolean> {
  const role = (await redisCommand({ port }, ['ROLE']).catch(() => [])) as unknown[];
  return role[0] === 'master' && Array.isArray(role[2]) && role[2].length > 0;
}

/**
 * Every failover a sentinel of `handle` starts from now on (`+try-failover`, published by the
 * sentinel that tries): which master it fails over, and when.
 */
async function watchFailovers(handle: RedisSentinelHandle) {
  const tries: Array<{ master: string; at: number }> = [];
  const clients = await Promise.all(
    handle.sentinels.map(async (node) => {
      const client = createClient({ socket: { host: node.host, port: node.port } });
      client.on('error', () => {});
      await client.connect();
      // The message: "master <name> <ip> <port>".
      await client.subscribe('+try-failover', (message) => {
        const [, , ip, port] = message.split(' ');
        tries.push({ master: `${ip}:${port}`, at: performance.now() });
      });
      return client;
    }),
  );
  const close = () => {
    for (const client of clients) client.destroy();
  };
  return { tries, close };
}

/**
 * Kills the current master of a Sentinel setup; recovery is Sentinel promoting the replica. The
 * old master is then restarted and rejoins as a replica, so the next run can fail over back.
 *
 * A failover Sentinel starts of the new master during the run is reported as an anomaly: two
 * masters then run side by side until Sentinel turns the old one into a replica, about 10 s
 * later (docs/reliability.md). `secondFailover` forces one (`SENTINEL FAILOVER`) once recovered.
 */
export async function sentinelScenario(
  library: 'node-redis' | 'node-redis 6' | 'ioredis',
  durable: boolean,
  sentinel?: RedisSentinelHandle,
  { secondFailover = false }: { secondFailover?: boolean } = {},
): Promise<Prepared> {
  // Down-after 2 s (startRedisSentinel's default), not 1 s: a sentinel reconnects to a master at
  // most once a second, and after a failover each got its first PING reply from the new master
  // 0.8 to 1.05 s after the switch; at 1 s it sometimes flagged that healthy master down and,
  // counting the other sentinels' votes from the failover just done, failed it over again
  // (docs/reliability.md).
  const handle = sentinel ?? (await startRedisSentinel());
  await replicated(handle);
  let options: RedisStoreOptions;
  let close: () => Promise<void>;
  if (library !== 'ioredis') {
    // As the README shows it: the client's own settings, and an error listener.
    const settings = { name: handle.masterName, sentinelRootNodes: handle.sentinels };
    const c = library === 'node-redis' ? createSentinel(settings) : createSentinel6(settings);
    c.on('error', () => {});
    await c.connect();
    options = { client: c };
    close = () => c.close();
  } else {
    // As the README shows it: no offline queue, and an error listener.
    const c = new Redis({ sentinels: handle.sentinels, name: handle.masterName, enableOfflineQueue: false });
    c.on('error', () => {});
    options = { client: c };
    close = async () => {
      c.disconnect();
    };
  }
  const store = new RedisStore({
    ...options,
    prefix: `fault:${library.replace(' ', '')}:${durable ? 'durable' : 'async'}:`,
    ...(durable ? { durableCommit: { replicas: 1, timeoutMs: 200 } } : {}),
  });
  let killed: { start(args?: string[]): Promise<void> } | undefined;
  let killedPort = 0;
  let recoveredAt = Number.POSITIVE_INFINITY;
  const failovers = await watchFailovers(handle);
  return {
    plan: {
      name: `Redis Sentinel, ${library}${durable ? ', durableCommit' : ''} (master SIGKILLed, failover)`,
      store,
      outageMs: 0,
      async fault() {
        killedPort = await masterPort(handle);
        const master = [handle.master, handle.replica].find((server) => server.port === killedPort);
        if (!master) throw new Error(`Sentinel names port ${killedPort} as master, not one of ours`);
        killed = master;
        await master.kill();
      },
      async recover() {
        // Recovered once Sentinel names the other server; then the old master comes back as a replica.
        const deadline = Date.now() + 30_000;
        while ((await masterPort(handle)) === killedPort) {
          if (Date.now() > deadline) throw new Error('Sentinel did not fail over within 30 s');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        // As an operator would: back as a replica of the new master, never as an empty master.
        const master = await masterPort(handle);
        await killed?.start(['--replicaof', '127.0.0.1', String(master)]);
        // A durable commit needs a replica to acknowledge it: until one is online on the new
        // master every write is refused (at once), so that is when the store can recover.
        if (durable) {
          const started = Date.now();
          while (!(await replicaOnline(master))) {
            if (Date.now() > deadline) throw new Error('no replica came online on the new master within 30 s');
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          console.error(`replica online ${Date.now() - started} ms after the restart`);
        }
        recoveredAt = performance.now();
        if (secondFailover) {
          // Refused (NOGOODSLAVE) until the sentinel has seen the restarted server as a healthy replica.
          const first = handle.sentinels[0] as { port: number };
          while ((await redisCommand(first, ['SENTINEL', 'FAILOVER', handle.masterName]).catch(String)) !== 'OK') {
            if (Date.now() > deadline) throw new Error('SENTINEL FAILOVER was refused for 30 s');
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          // The run's recovery is then Sentinel naming the restarted server as master again.
          while ((await masterPort(handle)) !== killedPort) {
            if (Date.now() > deadline) throw new Error('Sentinel did not finish the second failover within 30 s');
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      },
      recoveryDeadlineMs: 30_000,
      anomalies: () =>
        failovers.tries
          .filter((attempt) => attempt.master !== `127.0.0.1:${killedPort}`)
          .map((attempt) => {
            const ms = Math.round(attempt.at - recoveredAt);
            const when = ms >= 0 ? `${ms} ms after the recovery` : 'before the recovery';
            return `Sentinel started a second failover, of the new master ${attempt.master}, ${when}`;
          }),
    },
    async teardown() {
      failovers.close();
      await store.close().catch(() => {});
      await close().catch(() => {});
      if (!sentinel) await handle.stop();
    },
  };
}
