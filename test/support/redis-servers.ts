/**
 * Throwaway Redis servers for tests that need their own: outage/restart tests, unix sockets, passwords,
 * Redis Cluster and Redis Sentinel. Every server runs in its own temp dir with no persistence and is
 * SIGKILLed when the test process exits, even if a test forgets to stop it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const CLUSTER_TIMEOUT_MS = 30_000;
const SENTINEL_TIMEOUT_MS = 30_000;
const FAILOVER_TIMEOUT_MS = 3000;
const POLL_MS = 50;
const PORT_ATTEMPTS = 5;

/** A throwaway `redis-server` owned by the current test process. */
export interface RedisServer {
  host: '127.0.0.1';
  port: number;
  /** Set when started with `unixSocket: true`. */
  socketPath?: string;
  /** Set when started with `password`; not part of `url`. */
  password?: string;
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** SIGTERM, wait for exit, remove the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL (a crash) and wait for exit; the temp dir is kept. */
  kill(): Promise<void>;
  /**
   * Start again on the same port (and socket) after stop/kill, and wait until ready. No-op if
   * running. `args` are added for this start only (e.g. `['--replicaof', host, port]`).
   */
  start(args?: string[]): Promise<void>;
}

export interface StartRedisOptions {
  /** Fixed port; by default a free one is picked (and re-picked if another process grabs it first). */
  port?: number;
  /** Also listen on a unix socket (mode 700) in the temp dir. */
  unixSocket?: boolean;
  /** `requirepass` for the default user. */
  password?: string;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
}

export interface RedisClusterHandle {
  nodes: Array<{ host: string; port: number }>;
  stop(): Promise<void>;
  /** SIGKILL every node at once (an outage of all masters); temp dirs and nodes.conf are kept. */
  kill(): Promise<void>;
  /** Start every node again on its ports and wait until the cluster reports `cluster_state:ok`. */
  start(): Promise<void>;
}

export interface RedisSentinelHandle {
  masterName: string;
  master: RedisServer;
  replica: RedisServer;
  sentinels: Array<{ host: string; port: number }>;
  /**
   * SIGSTOPs every sentinel but the one on port `keep` (connections to them are accepted by the
   * kernel and then get no answer, as from a sentinel stuck on a loaded host); returns how to
   * SIGCONT them.
   */
  freezeSentinels(keep?: number): () => void;
  stop(): Promise<void>;
}

export type RespValue = string | number | null | Error | RespValue[];

/** Where `redisCommand` connects: a TCP port on 127.0.0.1, or a unix socket path. */
export type RedisTarget = { port: number } | { path: string };

// --- process bookkeeping: whatever is still running or on disk when the test process exits goes away ---

const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();

process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-redis-'));
  tempDirs.add(dir);
  return dir;
}

async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

// --- a minimal RESP2 client, enough for readiness checks and the odd admin command ---

function parseReply(buf: Buffer, pos: number): [RespValue, number] | undefined {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (String.fromCharCode(buf[pos] ?? 0)) {
    case '+':
      return [line, next];
    case '-':
      return [new Error(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const len = Number(line);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) return undefined;
      return [buf.toString('utf8', next, next + len), next + len + 2];
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return [null, next];
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, at);
        if (!item) return undefined;
        items.push(item[0]);
        at = item[1];
      }
      return [items, at];
    }
    default:
      throw new Error(`unexpected RESP reply: ${JSON.stringify(buf.toString('utf8', pos, eol))}`);
  }
}

function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * Sends one command over a fresh connection (after `AUTH` when `password` is given) and resolves with the
 * reply. Error replies reject. Meant for test setup and assertions, not for the code under test.
 */
export function redisCommand(
  target: RedisTarget,
  args: readonly string[],
  opts: { password?: string; timeoutMs?: number } = {},
): Promise<RespValue> {
  const commands = opts.password === undefined ? [args] : [['AUTH', opts.password], args];
  const where = 'path' in target ? target.path : `${HOST}:${target.port}`;
  return new Promise((resolve, reject) => {
    const socket = 'path' in target ? net.connect(target.path) : net.connect(target.port, HOST);
    const replies: RespValue[] = [];
    let buf = Buffer.alloc(0);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new Error(`${args[0]} to ${where} timed out after ${opts.timeoutMs ?? 2000} ms`)),
      opts.timeoutMs ?? 2000,
    );
    socket.on('error', fail);
    socket.on('connect', () => socket.write(commands.map(encodeCommand).join('')));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        while (replies.length < commands.length) {
          const parsed = parseReply(buf, 0);
          if (!parsed) break;
          replies.push(parsed[0]);
          buf = buf.subarray(parsed[1]);
        }
      } catch (err) {
        return fail(err as Error);
      }
      if (replies.length < commands.length) return;
      clearTimeout(timer);
      socket.end();
      const failed = replies.find((r) => r instanceof Error);
      if (failed instanceof Error) reject(new Error(`${where}: ${failed.message}`));
      else resolve(replies[replies.length - 1] ?? null);
    });
    socket.on('close', () => fail(new Error(`${where} closed the connection before replying`)));
  });
}

async function infoField(target: RedisTarget, section: string, field: string, password?: string): Promise<string> {
  const info = String(await redisCommand(target, ['INFO', section], { password, timeoutMs: 1000 }));
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
}

/** Thrown by a readiness check to stop polling at once (e.g. the process died). */
class GiveUp extends Error {}

/** Polls `check` until it returns true; on timeout the error names `what` and the last reason it gave. */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<true | string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'never checked';
  while (Date.now() < deadline) {
    try {
      const result = await check();
      if (result === true) return;
      last = result;
    } catch (err) {
      if (err instanceof GiveUp) throw new Error(`${what}: ${err.message}`);
      last = (err as Error).message;
    }
    await sleep(POLL_MS);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms (last: ${last})`);
}

// --- one spawned server process: spawn, wait ready, stop, restart on the same port ---

class ServerProcess {
  private child: ChildProcess | undefined;
  private alive = false;
  private exitReason = '';
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly bin: 'redis-server' | 'redis-sentinel',
    readonly dir: string,
    readonly port: number,
    private readonly argv: readonly string[],
    readonly password?: string,
  ) {}

  get logFile(): string {
    return path.join(this.dir, 'output.log');
  }

  async start(extra: readonly string[] = []): Promise<void> {
    if (this.alive) return;
    mkdirSync(this.dir, { recursive: true });
    tempDirs.add(this.dir);
    const out = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.bin, [...this.argv, ...extra], { cwd: this.dir, stdio: ['ignore', out, out] });
    } finally {
      closeSync(out);
    }
    this.child = child;
    this.alive = true;
    running.add(child);
    this.exited = new Promise((resolve) => {
      const done = (reason: string) => {
        this.alive = false;
        this.exitReason = reason;
        running.delete(child);
        resolve();
      };
      child.once('exit', (code, signal) => done(`exited with ${signal ?? `code ${code}`}`));
      child.once('error', (err) => done(`failed to spawn: ${err.message}`));
    });
    // No handle of ours keeps the test process alive; the exit handler reaps forgotten servers.
    child.unref();
    try {
      await waitFor(`${this.bin} on ${HOST}:${this.port}`, READY_TIMEOUT_MS, async () => {
        if (!this.alive) throw new GiveUp(this.exitReason);
        // Check the PID too: another process may already own the port we are failing to bind.
        const pid = await infoField({ port: this.port }, 'server', 'process_id', this.password);
        return pid === String(child.pid) || `port answered by process ${pid || '?'}, not ${child.pid}`;
      });
    } catch (err) {
      await this.halt('SIGKILL');
      throw new Error(`${(err as Error).message}\n--- last output of ${this.bin} ---\n${this.tail()}`);
    }
  }

  /** Sends `signal`, waits for exit; escalates to SIGKILL if SIGTERM is not enough in time. */
  async halt(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    child.ref(); // keep the event loop alive until the exit is seen (an unref'd child would not)
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
    });
    const late = await Promise.race([this.exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** SIGSTOP / SIGCONT: the process stays, and stops (resumes) answering. */
  pause(paused: boolean): void {
    if (this.alive) this.child?.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  tail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no output)';
    }
  }
}

/**
 * Spawns `bin` with `argsFor(port)` and waits until it answers. When no port was asked for, a port that
 * another process takes between our probe and the bind is replaced by a fresh one (a few attempts).
 */
async function launch(spec: {
  bin: 'redis-server' | 'redis-sentinel';
  dir: string;
  port?: number;
  password?: string;
  argsFor: (port: number) => Promise<string[]> | string[];
}): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = spec.port ?? (await freePort());
    const proc = new ServerProcess(spec.bin, spec.dir, port, await spec.argsFor(port), spec.password);
    try {
      await proc.start();
      return proc;
    } catch (err) {
      const portTaken = /Address already in use/.test((err as Error).message);
      if (spec.port !== undefined || !portTaken || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

function baseArgs(port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir];
}

function asRedisServer(proc: ServerProcess, socketPath?: string): RedisServer {
  return {
    host: HOST,
    port: proc.port,
    ...(socketPath === undefined ? {} : { socketPath }),
    ...(proc.password === undefined ? {} : { password: proc.password }),
    url: `redis://${HOST}:${proc.port}`,
    stop: async () => {
      await proc.halt('SIGTERM');
      await removeTempDir(proc.dir);
    },
    kill: () => proc.halt('SIGKILL'),
    start: (args) => proc.start(args),
  };
}

/**
 * Starts a throwaway `redis-server` on 127.0.0.1 (a free port unless `port` is given) with no persistence,
 * in a fresh temp dir, and resolves once it answers. Rejects with the port and the server's last output
 * lines if it does not come up within 10 s.
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const dir = await makeTempDir();
  const socketPath = opts.unixSocket ? path.join(dir, 'redis.sock') : undefined;
  try {
    const proc = await launch({
      bin: 'redis-server',
      dir,
      port: opts.port,
      password: opts.password,
      argsFor: (port) => [
        ...baseArgs(port, dir),
        ...(socketPath === undefined ? [] : ['--unixsocket', socketPath, '--unixsocketperm', '700']),
        ...(opts.password === undefined ? [] : ['--requirepass', opts.password]),
        ...(opts.args ?? []),
      ],
    });
    return asRedisServer(proc, socketPath);
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
}

async function stopAll(procs: readonly ServerProcess[]): Promise<void> {
  await Promise.all(procs.map((p) => p.halt('SIGTERM')));
  await Promise.all(procs.map((p) => removeTempDir(p.dir)));
}

/** Starts several processes in parallel; if any fails, the others are stopped before rejecting. */
async function launchAll(specs: ReadonlyArray<Parameters<typeof launch>[0]>): Promise<ServerProcess[]> {
  const results = await Promise.allSettled(specs.map((spec) => launch(spec)));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stopAll(started);
    await Promise.all(specs.map((s) => removeTempDir(s.dir)));
    throw failed.reason;
  }
  return started;
}

/**
 * Starts a Redis Cluster of `masters` (default 3, minimum 3) master-only nodes on free ports, creates it with
 * `redis-cli --cluster create`, and resolves once every node reports `cluster_state:ok` with all 16384 slots
 * assigned and every node known.
 */
export async function startRedisCluster(opts: { masters?: number; args?: string[] } = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3) {
    throw new RangeError(`startRedisCluster: masters must be an integer >= 3 (redis-cli requirement), got ${masters}`);
  }
  const dirs = await Promise.all(Array.from({ length: masters }, () => makeTempDir()));
  const procs = await launchAll(
    dirs.map((dir) => ({
      bin: 'redis-server' as const,
      dir,
      argsFor: async (port: number) => [
        ...baseArgs(port, dir),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(dir, 'nodes.conf'),
        '--cluster-node-timeout',
        '5000',
        // An explicit bus port: the default (port + 10000) may be taken or beyond 65535.
        '--cluster-port',
        String(await freePort()),
        ...(opts.args ?? []),
      ],
    })),
  );
  const stop = () => stopAll(procs);
  try {
    const addresses = procs.map((p) => `${HOST}:${p.port}`);
    await promisify(execFile)(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: CLUSTER_TIMEOUT_MS },
    ).catch((err: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(`redis-cli --cluster create failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    await clusterOk(procs, masters);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes: procs.map((p) => ({ host: HOST, port: p.port })),
    stop,
    kill: async () => {
      await Promise.all(procs.map((p) => p.halt('SIGKILL')));
    },
    start: async () => {
      await Promise.all(procs.map((p) => p.start()));
      await clusterOk(procs, masters);
    },
  };
}

/** Waits until every node reports the cluster healthy: all slots assigned, every node known. */
async function clusterOk(procs: readonly ServerProcess[], masters: number): Promise<void> {
  for (const proc of procs) {
    await waitFor(`cluster node ${HOST}:${proc.port}`, CLUSTER_TIMEOUT_MS, async () => {
      const info = String(await redisCommand({ port: proc.port }, ['CLUSTER', 'INFO'], { timeoutMs: 1000 }));
      const ok =
        info.includes('cluster_state:ok') &&
        info.includes('cluster_slots_assigned:16384') &&
        info.includes(`cluster_known_nodes:${masters}\r`) &&
        info.includes(`cluster_size:${masters}\r`);
      return ok || info.replace(/\r\n/g, ' ').slice(0, 200);
    });
  }
}

/**
 * Starts a Sentinel setup: a master, one replica of it, and 3 `redis-sentinel` processes monitoring it under
 * `masterName` with quorum 2 (down-after 2 s unless `downAfterMs` says otherwise, failover-timeout 3 s). Resolves once the replica's link is up
 * and every sentinel reports the master's address, lists the replica, and knows the other two sentinels
 * (so a failover can be authorised).
 */
export async function startRedisSentinel(opts: { downAfterMs?: number } = {}): Promise<RedisSentinelHandle> {
  const masterName = 'tessera';
  // Without this a master waits 5 s before the first full sync to a replica (and again after a failover).
  const replication = ['--repl-diskless-sync-delay', '0'];
  const master = await startRedis({ args: replication });
  let replica: RedisServer | undefined;
  let sentinelProcs: ServerProcess[] = [];
  const stop = async () => {
    for (const p of sentinelProcs) p.pause(false);
    await stopAll(sentinelProcs);
    await Promise.all([replica?.stop(), master.stop()]);
  };
  try {
    replica = await startRedis({ args: [...replication, '--replicaof', HOST, String(master.port)] });
    const replicaPort = replica.port;
    await waitFor(`replica ${HOST}:${replicaPort} of ${HOST}:${master.port}`, SENTINEL_TIMEOUT_MS, async () => {
      const link = await infoField({ port: replicaPort }, 'replication', 'master_link_status');
      return link === 'up' || `master_link_status:${link}`;
    });
    // Sentinels start after the link is up, so their first INFO to the master already lists the replica.
    const dirs = await Promise.all([1, 2, 3].map(() => makeTempDir()));
    sentinelProcs = await launchAll(
      dirs.map((dir) => ({
        bin: 'redis-sentinel' as const,
        dir,
        argsFor: async (port: number) => {
          const conf = path.join(dir, 'sentinel.conf');
          await writeFile(
            conf,
            [
              `port ${port}`,
              `bind ${HOST}`,
              `dir ${dir}`,
              `sentinel monitor ${masterName} ${HOST} ${master.port} 2`,
              `sentinel down-after-milliseconds ${masterName} ${opts.downAfterMs ?? 2000}`,
              // An attempt that aborts (a split vote, or `no-good-slave` while the replica is
              // still syncing) is retried after twice this: 20 s at 10 s, the slow failovers
              // the fault suite once blamed on the client.
              `sentinel failover-timeout ${masterName} ${FAILOVER_TIMEOUT_MS}`,
              '',
            ].join('\n'),
          );
          return [conf];
        },
      })),
    );
    for (const sentinel of sentinelProcs) {
      await waitFor(`sentinel ${HOST}:${sentinel.port}`, SENTINEL_TIMEOUT_MS, () =>
        sentinelReady(sentinel.port, masterName, master.port, replicaPort),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    masterName,
    master,
    replica,
    sentinels: sentinelProcs.map((p) => ({ host: HOST, port: p.port })),
    freezeSentinels(keep) {
      for (const p of sentinelProcs) if (p.port !== keep) p.pause(true);
      return () => {
        for (const p of sentinelProcs) p.pause(false);
      };
    },
    stop,
  };
}

function fields(entry: RespValue): Map<string, string> {
  const map = new Map<string, string>();
  if (!Array.isArray(entry)) return map;
  for (let i = 0; i + 1 < entry.length; i += 2) map.set(String(entry[i]), String(entry[i + 1]));
  return map;
}

async function sentinelReady(
  port: number,
  name: string,
  masterPort: number,
  replicaPort: number,
): Promise<true | string> {
  const target = { port };
  const addr = await redisCommand(target, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name], { timeoutMs: 1000 });
  if (!Array.isArray(addr) || addr[0] !== HOST || addr[1] !== String(masterPort)) {
    return `master address ${JSON.stringify(addr)}`;
  }
  const replicas = await redisCommand(target, ['SENTINEL', 'REPLICAS', name], { timeoutMs: 1000 });
  const known = Array.isArray(replicas) ? replicas.map(fields) : [];
  const replica = known.find((r) => r.get('port') === String(replicaPort));
  if (replica?.get('flags') !== 'slave') return `replica ${replicaPort} flags: ${replica?.get('flags') ?? 'unknown'}`;
  const others = fields(await redisCommand(target, ['SENTINEL', 'MASTER', name], { timeoutMs: 1000 })).get(
    'num-other-sentinels',
  );
  return others === '2' || `num-other-sentinels:${others}`;
}
