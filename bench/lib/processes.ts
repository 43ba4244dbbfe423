/**
 * Every child process of the benchmark (Redis, the servers, wrk) is started here and killed at
 * the end, also when the harness fails or is interrupted.
 */
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

const children = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

/** What must still be undone when the harness is interrupted (tables it made, for instance). */
const cleanups = new Set<() => Promise<void>>();

/**
 * Runs `cleanup` if the harness is interrupted (SIGINT, SIGTERM, SIGHUP), after the children are
 * killed and before it exits; an interrupted run never reaches its `finally`. Returns a function
 * that takes it back.
 */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  hook();
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      console.error(`\n[bench] ${signal}: stopping every child process`);
      killAll();
      const undo = Promise.allSettled([...cleanups].map((cleanup) => cleanup()));
      // At most 5 s: a cleanup that hangs (a database gone too) must not keep the harness alive.
      const limit = new Promise((resolve) => setTimeout(resolve, 5000).unref());
      Promise.race([undo, limit]).then(() => process.exit(130));
    });
  }
}

let tasksetChecked: boolean | undefined;

/** Whether `taskset` can pin processes here. */
export function canPin(): boolean {
  tasksetChecked ??= spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  return tasksetChecked;
}

/** Starts a child, pinned to `core` when given and possible (taskset execs, so the pid is the program's). */
export function start(
  command: string,
  args: string[],
  options: SpawnOptions & { core?: number | null } = {},
): ChildProcess {
  hook();
  const { core, ...spawnOptions } = options;
  const pinned = core !== undefined && core !== null && canPin();
  const child = pinned
    ? spawn('taskset', ['-c', String(core), command, ...args], spawnOptions)
    : spawn(command, args, spawnOptions);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
    children.delete(child);
  }
}

/** Stops every child still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stop(child)));
}

/** Collects a child's output (bounded, the last `limit` characters of each stream). */
export function capture(child: ChildProcess, limit = 20000): { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out = (out + chunk).slice(-limit);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err = (err + chunk).slice(-limit);
  });
  return { stdout: () => out, stderr: () => err };
}

/** utime + stime of a process from /proc/<pid>/stat, in seconds (clock ticks are 1/100 s on Linux); NaN elsewhere. */
export function cpuSecondsOf(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; the fields after it are space-separated.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
