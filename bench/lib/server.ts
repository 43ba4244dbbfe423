/** Starts one variant's server (bench/servers/*.ts) in a child process and waits until it listens. */
import type { ChildProcess } from 'node:child_process';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './net.ts';
import { capture, cpuSecondsOf, start, stop } from './processes.ts';
import type { Variant } from './variants.ts';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface RunningServer {
  port: number;
  baseUrl: string;
  stderr(): string;
  /** CPU time the server process has used so far, in seconds (NaN where /proc is missing). */
  cpuSeconds(): number;
  /** Starts counting the bytes the server allocates. */
  startAllocations(): void;
  /** Stops counting; the bytes allocated since the start (NaN when the server did not answer). */
  stopAllocations(): Promise<number>;
  /** With profiling on: starts the CPU profiler (SIGUSR2). */
  startProfile(): Promise<void>;
  /** Stops the CPU profiler (SIGUSR2 again) and moves the profile to `file`. */
  stopProfile(file: string): Promise<void>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  core: number | null;
  /** Extra environment (Redis URL, PostgreSQL table...). */
  env: Record<string, string>;
  /** Folder of the compiled servers (lib/compile.ts); `null` runs the TypeScript sources through tsx. */
  compiledDir: string | null;
  /** Turns profiling on: the server writes its profiles into this folder. */
  profileDir?: string | null;
  timeoutMs?: number;
}

export async function startServer(variant: Variant, options: ServerOptions): Promise<RunningServer> {
  const port = await freePort();
  const child: ChildProcess = start(
    process.execPath,
    options.compiledDir
      ? [join(options.compiledDir, 'bench', 'servers', variant.server.replace(/\.ts$/, '.js'))]
      : ['--import', 'tsx', join(ROOT, 'bench', 'servers', variant.server)],
    {
      core: options.core,
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        PORT: String(port),
        ...variant.env,
        ...options.env,
        ...(options.profileDir ? { BENCH_PROFILE_DIR: options.profileDir } : {}),
      },
      // The IPC channel carries the allocation counts (servers/allocation.ts).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  const output = capture(child);
  const timeoutMs = options.timeoutMs ?? 20000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready after ${timeoutMs} ms`)), timeoutMs);
      const onData = () => {
        if (output.stdout().includes('ready\n')) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`exited (${code ?? signal}) before listening`));
      });
    });
  } catch (error) {
    await stop(child);
    const detail = output.stderr().trim().split('\n').slice(-15).join('\n');
    throw new Error(`[bench] server ${variant.id}: ${(error as Error).message}\n${detail}`);
  }
  /** Sends SIGUSR2 and waits for the next stdout line starting with `marker`; returns its rest. */
  const signal = async (marker: string): Promise<string> => {
    const seen = output.stdout().split(marker).length;
    child.kill('SIGUSR2');
    const deadline = Date.now() + 10000;
    for (;;) {
      const parts = output.stdout().split(marker);
      if (parts.length > seen) return (parts[seen]?.split('\n')[0] ?? '').trim();
      if (Date.now() > deadline) throw new Error(`[bench] server ${variant.id}: no "${marker.trim()}" after SIGUSR2`);
      await sleep(20);
    }
  };
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    stderr: output.stderr,
    cpuSeconds: () => cpuSecondsOf(child.pid),
    startAllocations: () => {
      child.send?.('alloc-start');
    },
    stopAllocations: () =>
      new Promise<number>((resolve) => {
        const timer = setTimeout(() => {
          child.off('message', answer);
          resolve(Number.NaN);
        }, 5000);
        const answer = (message: unknown) => {
          const allocated = (message as { allocated?: unknown } | null)?.allocated;
          if (typeof allocated !== 'number') return;
          clearTimeout(timer);
          child.off('message', answer);
          resolve(allocated);
        };
        child.on('message', answer);
        child.send?.('alloc-stop');
      }),
    startProfile: async () => {
      await signal('profile started');
    },
    stopProfile: async (file) => {
      await rename(await signal('profile written '), file);
    },
    stop: () => stop(child, 5000),
  };
}
