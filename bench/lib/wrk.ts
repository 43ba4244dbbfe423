/**
 * Drives a server with wrk. A Lua script cycles through pre-generated session cookies (one per
 * request, so every connection hits existing sessions) and prints the summary as JSON in
 * `done()`, so nothing depends on wrk's human-readable output.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { capture, start, stop } from './processes.ts';

export interface WrkResult {
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  /** Latencies in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Non-2xx/3xx answers plus socket errors and timeouts. */
  errors: number;
}

const DONE = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"errors":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;

/** With cookies: a request function picks the next cookie from the list given after `--`. */
const WITH_COOKIES = `
local cookies = {}
local count = 0
local next_index = 0
local threads = 0

setup = function(thread)
  threads = threads + 1
  thread:set("thread_index", threads)
end

init = function(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      count = count + 1
      cookies[count] = line
    end
  end
  -- Threads start at different places in the list.
  next_index = ((thread_index or 1) * 7919) % math.max(count, 1)
end

request = function()
  next_index = next_index % count + 1
  return wrk.format(nil, nil, { ["Cookie"] = cookies[next_index] })
end
`;

/** Writes the two scripts into `dir`; returns their paths. */
export async function writeScripts(dir: string): Promise<{ plain: string; cookies: string }> {
  const plain = join(dir, 'plain.lua');
  const cookies = join(dir, 'cookies.lua');
  await writeFile(plain, DONE);
  await writeFile(cookies, WITH_COOKIES + DONE);
  return { plain, cookies };
}

export interface WrkRun {
  url: string;
  seconds: number;
  connections: number;
  script: string;
  /** File of cookies, one per line, for the cookie script. */
  cookieFile?: string;
  core: number | null;
}

/** One bounded wrk run; killed if it outlives its duration by 20 s. */
export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const args = [
    '-t1',
    `-c${run.connections}`,
    `-d${run.seconds}s`,
    '--timeout',
    '5s',
    '-s',
    run.script,
    run.url,
    ...(run.cookieFile ? ['--', run.cookieFile] : []),
  ];
  const child = start('wrk', args, { core: run.core, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = capture(child);
  const guard = setTimeout(() => void stop(child), (run.seconds + 20) * 1000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(guard);
  const line = output
    .stdout()
    .split('\n')
    .find((l) => l.startsWith('WRK_JSON '));
  if (code !== 0 || !line) {
    throw new Error(`[bench] wrk ${run.url} failed (exit ${code}): ${output.stderr() || output.stdout()}`);
  }
  const raw = JSON.parse(line.slice('WRK_JSON '.length)) as {
    requests: number;
    duration_us: number;
    errors: number;
    p50: number;
    p90: number;
    p99: number;
    max: number;
  };
  const durationSeconds = raw.duration_us / 1e6;
  return {
    requests: raw.requests,
    durationSeconds,
    requestsPerSecond: raw.requests / durationSeconds,
    p50: raw.p50 / 1000,
    p90: raw.p90 / 1000,
    p99: raw.p99 / 1000,
    max: raw.max / 1000,
    errors: raw.errors,
  };
}

/** wrk's version, e.g. `4.1.0` from `wrk 4.1.0 [epoll] ...`. */
export async function wrkVersion(): Promise<string> {
  const child = start('wrk', ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = capture(child);
  await new Promise((resolve, reject) => {
    child.once('exit', resolve);
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new Error('[bench] wrk is not installed: install it (Debian: apt-get install wrk) and run again')
          : error,
      ),
    );
  });
  const line = (output.stdout() + output.stderr()).split('\n')[0] ?? '';
  return /^wrk (\S+)/.exec(line)?.[1] ?? line.trim();
}
