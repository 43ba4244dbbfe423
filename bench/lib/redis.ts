/**
 * The benchmark's own Redis (never the shared one on 6379): started on a free loopback port with
 * no persistence, pinned to the load generator's core, and stopped at the end. Also reads
 * INFO commandstats, and samples MONITOR to tell the commands clients send from those scripts run.
 */
import type { ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { freePort, retryUntil } from './net.ts';
import { capture, cpuSecondsOf, start, stop } from './processes.ts';

export interface BenchRedis {
  port: number;
  url: string;
  version: string;
  /** Sends one command and returns its reply as text (bulk and simple strings, integers). */
  command(...args: string[]): Promise<string>;
  /** CPU time redis-server has used so far, in seconds. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function encode(args: string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
}

/** One command on a fresh connection; enough for INFO, PING and CONFIG between runs. */
function command(port: number, args: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const done = (error: Error | null, value?: string) => {
      socket.destroy();
      if (error) reject(error);
      else resolve(value ?? '');
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`redis ${args[0]}: no reply in ${timeoutMs} ms`)));
    socket.once('error', (error) => done(error));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n');
      if (end < 0) return;
      const type = String.fromCharCode(data[0] ?? 0);
      const head = data.subarray(1, end).toString();
      if (type === '-') done(new Error(`redis ${args[0]}: ${head}`));
      else if (type === '+' || type === ':') done(null, head);
      else if (type === '$') {
        const length = Number(head);
        if (length < 0) done(null, '');
        else if (data.length >= end + 2 + length + 2) done(null, data.subarray(end + 2, end + 2 + length).toString());
      } else done(new Error(`redis ${args[0]}: unexpected reply ${JSON.stringify(head)}`));
    });
    socket.write(encode(args));
  });
}

/** Starts `redis-server` on a free loopback port, on `core` if pinning is possible. */
export async function startRedis(core: number | null): Promise<BenchRedis> {
  const port = await freePort();
  const child: ChildProcess = start(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp'],
    { core, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output = capture(child);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output.stdout().slice(-2000)}`))),
  );
  exited.catch(() => {});
  await Promise.race([retryUntil('redis-server', 10000, () => command(port, ['PING'], 500)), exited]);
  const info = await command(port, ['INFO', 'server']);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    version: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    command: (...args) => command(port, args),
    cpuSeconds: () => cpuSecondsOf(child.pid),
    stop: () => stop(child),
  };
}

/** Calls per command name, from INFO commandstats (`cmdstat_get:calls=12,...`). */
export async function commandStats(redis: BenchRedis): Promise<Map<string, number>> {
  const text = await redis.command('INFO', 'commandstats');
  const calls = new Map<string, number>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1] as string, Number(match[2]));
  return calls;
}

/** What the harness itself sends, left out of the counts. */
const OWN = new Set(['info', 'ping', 'monitor', 'config|resetstat', 'flushall']);

/** Calls made between two snapshots, by command, without the harness's own. */
export function commandDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [name, calls] of after) {
    if (OWN.has(name)) continue;
    const made = calls - (before.get(name) ?? 0);
    if (made > 0) delta.set(name, made);
  }
  return delta;
}

/** For each command name, how many of the sampled calls came from a client and how many from a script. */
export type Origins = Map<string, { client: number; script: number }>;

/**
 * Samples MONITOR for `ms` milliseconds. INFO commandstats counts the commands a Lua script runs
 * as well as the script call itself; MONITOR marks the former `[0 lua]`. The sample says which
 * share of each command's calls were round trips from a client.
 */
export function sampleOrigins(redis: BenchRedis, ms: number): Promise<Origins> {
  return new Promise((resolve, reject) => {
    const origins: Origins = new Map();
    const socket = connect(redis.port, '127.0.0.1');
    let rest = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(origins);
    }, ms);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\r\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        // +1700000000.123456 [0 127.0.0.1:50000] "HGETALL" "key"   or   [0 lua] "HSET" ...
        const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
        if (!match) continue;
        const name = (match[2] as string).toLowerCase();
        const entry = origins.get(name) ?? { client: 0, script: 0 };
        if (match[1] === 'lua') entry.script++;
        else entry.client++;
        origins.set(name, entry);
      }
    });
    socket.write(encode(['MONITOR']));
  });
}

/**
 * Round trips among `calls`: each command's calls times the share of them a client sent. A
 * command the sample never saw counts as sent by a client (scripts show up in the sample).
 */
export function roundTrips(calls: Map<string, number>, origins: Origins): number {
  let total = 0;
  for (const [name, count] of calls) {
    const seen = origins.get(name);
    const share = seen && seen.client + seen.script > 0 ? seen.client / (seen.client + seen.script) : 1;
    total += count * share;
  }
  return total;
}
