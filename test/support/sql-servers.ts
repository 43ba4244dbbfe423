/**
 * Throwaway PostgreSQL and MariaDB servers for fault tests: each in its own temp dir, on a free
 * loopback port, run as an unprivileged user (the servers refuse root), never the shared ones.
 * A server that cannot start (binary missing, init failing) rejects with the reason and the last
 * lines of its log, so a test that needs it fails instead of skipping.
 */
import {
  type ChildProcess,
  type ExecFileSyncOptionsWithStringEncoding,
  execFile,
  execFileSync,
  spawn,
} from 'node:child_process';
import { chownSync, closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';

const HOST = '127.0.0.1';
const USER = 'tessera-fault';
const READY_TIMEOUT_MS = 30_000;
const POLL_MS = 50;
const run = promisify(execFile);

/** A private database server. */
export interface SqlServer {
  /** Connection URL (with the password, where there is one). */
  url: string;
  port: number;
  /** The password in `url`, to check it never shows up in logs. */
  password: string;
  /** Crash it: `pg_ctl stop -m immediate` for PostgreSQL, SIGKILL for MariaDB. The data dir is kept. */
  kill(): Promise<void>;
  /**
   * The same, synchronously (blocking the event loop until the server is gone), so a test can
   * crash it at an exact point of the code under test; the connections see it on the next tick.
   */
  killSync(): void;
  /** Start it again on the same port and data dir; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stop it and remove its temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const dirs = new Set<string>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The uid and gid to run servers as; creates the user when running as root and it is missing. */
function account(): { uid: number; gid: number } | Record<string, never> {
  if (process.getuid?.() !== 0) return {};
  // stderr is piped, not inherited: the first probe on a fresh machine fails by design ("no such
  // user") and is answered by creating the user; a useradd failure carries its stderr in the error.
  const quiet: ExecFileSyncOptionsWithStringEncoding = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] };
  const id = (flag: string) => Number(execFileSync('id', [flag, USER], quiet).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], quiet);
    return { uid: id('-u'), gid: id('-g') };
  }
}

async function tempDir(prefix: string, owner: { uid?: number; gid?: number }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.add(dir);
  if (owner.uid !== undefined) chownSync(dir, owner.uid, owner.gid as number);
  return dir;
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `check` every 50 ms until it resolves true; fails naming `what` with the last error. */
async function waitFor(what: string, check: () => Promise<boolean>, alive: () => string | null): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'never checked';
  while (Date.now() < deadline) {
    const dead = alive();
    if (dead) throw new Error(`${what}: ${dead}`);
    try {
      if (await check()) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(POLL_MS);
  }
  throw new Error(`${what}: not ready after ${READY_TIMEOUT_MS} ms (last: ${last})`);
}

/** One server process we spawned, restartable with the same arguments. */
class Daemon {
  #child: ChildProcess | undefined;
  #exit = '';
  #exited: Promise<void> = Promise.resolve();
  #signalled = false;

  constructor(
    readonly name: string,
    readonly bin: string,
    readonly argv: string[],
    readonly log: string,
    readonly owner: { uid?: number; gid?: number },
  ) {}

  get running(): boolean {
    return this.#child !== undefined;
  }

  spawn(): void {
    const out = openSync(this.log, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.bin, this.argv, { stdio: ['ignore', out, out], ...this.owner });
    } finally {
      closeSync(out);
    }
    this.#child = child;
    this.#exit = '';
    running.add(child);
    this.#exited = new Promise((resolve) => {
      const done = (reason: string) => {
        if (this.#child === child) this.#child = undefined;
        this.#exit = reason;
        running.delete(child);
        resolve();
      };
      child.once('exit', (code, signal) => done(`exited with ${signal ?? `code ${code}`}`));
      child.once('error', (error) => done(`failed to start ${this.bin}: ${error.message}`));
    });
    child.unref();
  }

  /** Why the process is gone, or null while it runs. */
  dead = (): string | null => (this.#child ? null : this.#exit || 'not running');

  async signal(signal: NodeJS.Signals): Promise<void> {
    if (!this.#child) return;
    // Unref'd, the child would not keep the event loop alive until its exit is seen: a script
    // with nothing else pending (bench/faults.ts between scenarios) ended there with exit code 13.
    this.#child.ref();
    this.#child.kill(signal);
    await this.#exited;
  }

  killSync(): void {
    this.#signalled = true;
    this.#child?.kill('SIGKILL');
  }

  /** The process was told to stop by someone else (pg_ctl): its exit is coming. */
  markSignalled(): void {
    if (this.#child) this.#signalled = true;
  }

  /** After a kill whose exit has not been seen yet (killSync, pg_ctl), waits for that exit. */
  async settle(): Promise<void> {
    if (this.#signalled) {
      this.#child?.ref(); // as in signal(): wait for the exit with the loop kept alive
      await this.#exited;
    }
    this.#signalled = false;
  }

  get exited(): Promise<void> {
    return this.#exited;
  }

  failure(message: string): Error {
    return new Error(`${message}\n--- last lines of ${this.log} ---\n${tail(this.log)}`);
  }
}

/** The newest `/usr/lib/postgresql/<version>/bin` holding initdb, pg_ctl and postgres. */
export function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      `no PostgreSQL server binaries in ${root}/*/bin (initdb, pg_ctl, postgres): run scripts/ensure-services.sh`,
    );
  }
  return path.join(root, versions[0] as string, 'bin');
}

/**
 * Starts a private PostgreSQL (initdb + postgres) on a free loopback port with password
 * authentication over TCP. `kill()` is `pg_ctl stop -m immediate`: every backend ends at once,
 * as in a crash, and the next start replays the WAL.
 */
export async function startPostgres(): Promise<SqlServer> {
  const bin = postgresBin();
  const owner = account();
  const dir = await tempDir('tessera-pg-', owner);
  const data = path.join(dir, 'data');
  const password = `fault-pw-${Math.random().toString(36).slice(2, 10)}`;
  const pwfile = path.join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`);
  if (owner.uid !== undefined) chownSync(pwfile, owner.uid, owner.gid as number);
  try {
    await run(
      path.join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`],
      { ...owner, timeout: 60_000 },
    );
  } catch (error) {
    const e = error as Error & { stderr?: string };
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${e.message}\n${e.stderr ?? ''}`);
  }
  const port = await freePort();
  const daemon = new Daemon(
    'postgres',
    path.join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-c', `listen_addresses=${HOST}`, '-c', `unix_socket_directories=${dir}`],
    path.join(dir, 'postgres.log'),
    owner,
  );
  const url = `postgres://postgres:${password}@${HOST}:${port}/postgres`;
  const pg = (await import('pg')).default;
  const start = async () => {
    await daemon.settle();
    if (daemon.running) return;
    daemon.spawn();
    try {
      await waitFor(
        `PostgreSQL on ${HOST}:${port}`,
        async () => {
          const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
          client.on('error', () => {});
          try {
            await client.connect();
            await client.query('select 1');
            return true;
          } finally {
            await client.end().catch(() => {});
          }
        },
        daemon.dead,
      );
    } catch (error) {
      await daemon.signal('SIGKILL');
      throw daemon.failure((error as Error).message);
    }
  };
  const pgCtlStop = ['stop', '-D', data, '-m', 'immediate', '-w'];
  const kill = async () => {
    if (!daemon.running) return;
    try {
      await run(path.join(bin, 'pg_ctl'), pgCtlStop, { ...owner, timeout: 30_000 });
    } finally {
      await Promise.race([daemon.exited, sleep(5000)]);
      if (daemon.running) await daemon.signal('SIGKILL');
    }
  };
  try {
    await start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    password,
    kill,
    killSync: () => {
      daemon.markSignalled();
      execFileSync(path.join(bin, 'pg_ctl'), pgCtlStop, { ...owner, timeout: 30_000, stdio: 'ignore' });
    },
    start,
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true, maxRetries: 5 });
      dirs.delete(dir);
    },
  };
}

/**
 * Starts a private MariaDB (mariadb-install-db + mariadbd) on a free loopback port, with a
 * database `fault` and `root` without a password. `kill()` is SIGKILL: InnoDB recovers on start.
 */
export async function startMariadb(): Promise<SqlServer> {
  const daemonBin = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((file) => existsSync(file));
  if (!daemonBin) throw new Error('no MariaDB server (/usr/sbin/mariadbd): run scripts/ensure-services.sh');
  const owner = account();
  const dir = await tempDir('tessera-mariadb-', owner);
  const data = path.join(dir, 'data');
  try {
    await run(
      'mariadb-install-db',
      [
        '--no-defaults',
        `--datadir=${data}`,
        ...(process.getuid?.() === 0 ? [`--user=${USER}`] : []),
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      { timeout: 60_000 },
    );
  } catch (error) {
    const e = error as Error & { stderr?: string };
    await rm(dir, { recursive: true, force: true });
    throw new Error(`mariadb-install-db failed: ${e.message}\n${e.stderr ?? ''}`);
  }
  const port = await freePort();
  const daemon = new Daemon(
    'mariadbd',
    daemonBin,
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--port=${port}`,
      `--bind-address=${HOST}`,
      `--socket=${path.join(dir, 'mysqld.sock')}`,
      `--pid-file=${path.join(dir, 'mysqld.pid')}`,
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=32M',
      `--log-error=${path.join(dir, 'error.log')}`,
    ],
    path.join(dir, 'error.log'),
    owner,
  );
  const mysql = (await import('mysql2/promise')).default;
  const start = async () => {
    await daemon.settle();
    if (daemon.running) return;
    daemon.spawn();
    try {
      await waitFor(
        `MariaDB on ${HOST}:${port}`,
        async () => {
          const connection = await mysql.createConnection({ host: HOST, port, user: 'root', connectTimeout: 1000 });
          connection.on('error', () => {});
          try {
            await connection.query('create database if not exists fault');
            return true;
          } finally {
            await connection.end().catch(() => {});
          }
        },
        daemon.dead,
      );
    } catch (error) {
      await daemon.signal('SIGKILL');
      throw daemon.failure((error as Error).message);
    }
  };
  try {
    await start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `mysql://root@${HOST}:${port}/fault`,
    port,
    password: '',
    kill: () => daemon.signal('SIGKILL'),
    killSync: () => daemon.killSync(),
    start,
    async stop() {
      await daemon.signal('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}
