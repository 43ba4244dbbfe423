/**
 * The fault harness, shared by the fault tests (`test/faults/*.test.ts`) and `bench/faults.ts`:
 * an Express app on Tessera over a given store, concurrent read-modify-write load on many
 * sessions over real HTTP on 127.0.0.1, a fault (kill, stop, failover) in the middle, and a
 * client-side ledger of every write answered 2xx, checked by reading every session back.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import { SessionEngine } from '../../src/core/engine.ts';
import type { Store } from '../../src/core/store.ts';
import { session } from '../../src/frameworks/express.ts';
import { until } from '../support/until.ts';

/** What a scenario gives the harness. */
export interface FaultPlan {
  /** Shown in messages and the bench table. */
  name: string;
  store: Store;
  /** Takes the server down (kill, stop, or kill the master of a Sentinel setup). */
  fault(): Promise<void>;
  /**
   * Brings it back: restart and wait until it answers, or wait until Sentinel has promoted
   * the replica. Called `outageMs` after `fault()` resolved.
   */
  recover(): Promise<void>;
  /** @default 2500 */
  outageMs?: number;
  /** Sessions under load. @default 12 */
  sessions?: number;
  /** Concurrent request loops per session (so writes to one session race). @default 2 */
  loopsPerSession?: number;
  /** The engine's `storeTimeoutMs`. @default 1000 */
  storeTimeoutMs?: number;
  /** How long to wait for the first success after `recover()`. @default 20000 */
  recoveryDeadlineMs?: number;
  /**
   * What the fault did besides the one planned, asked once the load has stopped (e.g. Sentinel
   * failing over a second time): the run then measures that too, not the store alone.
   */
  anomalies?(): string[];
}

/** What happened, in the units the bench table shows. */
export interface FaultResult {
  name: string;
  requests: number;
  ok: number;
  /** Answers by status other than 2xx (503 expected while the store is down). */
  failed: Record<number, number>;
  /** Requests the client gave up on (no answer within 10 s). */
  unanswered: number;
  /** Slowest answer of the whole run. */
  maxMs: number;
  /** Answers to requests started between the fault and the first success after it. */
  outage: { answers: number; p99Ms: number; maxMs: number };
  /** From the first failed answer to the last one; 0 when nothing failed. */
  errorWindowMs: number;
  /** From `recover()` resolving to the first success; null if there was none before the deadline. */
  recoveryMs: number | null;
  /** Writes answered 2xx. */
  acknowledged: number;
  /** Of those, how many were missing when the sessions were read back. */
  lost: number;
  lostExamples: string[];
  /** Sessions that could not be read back at the end (status of the last try). */
  unreadable: number;
  /** Store errors that were the engine's timeout (`STORE_TIMEOUT`), not a fast failure. */
  timeouts: number;
  /** The most frequent store errors (digits masked) and their counts. */
  errors: Array<[message: string, count: number]>;
  /** What the plan's `anomalies()` reported: the fault was not the one planned. */
  anomalies: string[];
}

const SECRET = 'fault-suite-secret-0123456789abcdef';
const CLIENT_TIMEOUT_MS = 10_000;
const PACE_MS = 10;
const MAX_REQUESTS = 40_000;

interface Answer {
  start: number;
  end: number;
  status: number;
}

function appFor(engine: SessionEngine<Record<string, unknown>>): Server {
  const app = express();
  app.set('env', 'test');
  app.use(session(engine));
  // Read-modify-write: a counter read and bumped, and one key of its own per request.
  app.post('/w', async (req, res) => {
    const s = req.session as unknown as {
      get(k: string): Promise<unknown>;
      set(k: string, v: unknown): Promise<void>;
    };
    const n = ((await s.get('n')) as number | undefined) ?? 0;
    await s.set('n', n + 1);
    await s.set(String(req.query.k), String(req.query.v));
    res.json({ n: n + 1 });
  });
  app.get('/dump', async (req, res) => {
    res.json(await (req.session as unknown as { all(): Promise<Record<string, unknown>> }).all());
  });
  app.use((error: { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(error.status ?? 500).json({ code: error.code ?? 'UNKNOWN' });
  });
  return createServer(app);
}

/** One visitor: remembers the session cookie it was given. */
class Visitor {
  cookie = '';
  constructor(readonly base: string) {}

  async request(method: string, path: string): Promise<{ status: number; body: string } | null> {
    try {
      const response = await fetch(this.base + path, {
        method,
        headers: this.cookie ? { cookie: this.cookie } : {},
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      for (const line of response.headers.getSetCookie()) {
        const pair = line.split(';')[0] ?? '';
        if (/max-age=0/i.test(line)) continue;
        this.cookie = pair;
      }
      return { status: response.status, body: await response.text() };
    } catch {
      return null;
    }
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Runs the load, the fault and the recovery, then reads every session back against the ledger. */
export async function runFault(plan: FaultPlan): Promise<FaultResult> {
  const sessions = plan.sessions ?? 12;
  const loops = plan.loopsPerSession ?? 2;
  const outageMs = plan.outageMs ?? 2500;
  const engine = new SessionEngine<Record<string, unknown>>({
    store: plan.store,
    secrets: [SECRET],
    storeTimeoutMs: plan.storeTimeoutMs ?? 1000,
  });
  await engine.ready();
  const errors = new Map<string, number>();
  let timeouts = 0;
  engine.on('storeError', (error) => {
    if (error.code === 'STORE_TIMEOUT') timeouts++;
    // Numbers (ports, counts, ms) vary between otherwise equal errors.
    const message = error.message.replace(/\d+/g, 'N');
    errors.set(message, (errors.get(message) ?? 0) + 1);
  });
  const server = appFor(engine);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const answers: Answer[] = [];
  const ledger: Array<Map<string, string>> = [];
  const visitors: Visitor[] = [];
  let unanswered = 0;
  let stop = false;
  let faultAt = Number.POSITIVE_INFINITY;
  let recoveredAt = Number.POSITIVE_INFINITY;
  let firstOkAfterRecovery: number | null = null;

  try {
    // Readiness before anything is measured: the store answers a write (after a previous run's
    // failover, a durable commit waits for the restarted server to finish syncing as a replica).
    await until(async () => (await new Visitor(base).request('POST', '/w?k=ready&v=1'))?.status === 200, 30_000);
    for (let i = 0; i < sessions; i++) {
      const visitor = new Visitor(base);
      const first = await visitor.request('POST', '/w?k=k0&v=v0');
      if (first?.status !== 200 || !visitor.cookie) {
        throw new Error(`${plan.name}: the first request of session ${i} answered ${first?.status ?? 'nothing'}`);
      }
      visitors.push(visitor);
      ledger.push(new Map([['k0', 'v0']]));
    }

    const loop = async (s: number, l: number) => {
      const visitor = visitors[s] as Visitor;
      for (let seq = 1; !stop && answers.length + unanswered < MAX_REQUESTS; seq++) {
        const k = `k${l}-${seq}`;
        const v = `v${s}-${l}-${seq}-${Math.random().toString(36).slice(2, 8)}`;
        const start = performance.now();
        const answer = await visitor.request('POST', `/w?k=${k}&v=${v}`);
        const end = performance.now();
        if (answer === null) unanswered++;
        else {
          answers.push({ start, end, status: answer.status });
          if (answer.status >= 200 && answer.status < 300) {
            (ledger[s] as Map<string, string>).set(k, v);
            if (firstOkAfterRecovery === null && start >= faultAt && end >= recoveredAt) firstOkAfterRecovery = end;
          }
        }
        // Failures come back fast: pace them a little more, so the outage costs less CPU.
        await sleep(answer !== null && answer.status < 300 ? PACE_MS : 2 * PACE_MS);
      }
    };
    const running = visitors.flatMap((_, s) => Array.from({ length: loops }, (_, l) => loop(s, l)));

    await sleep(500); // load before the fault
    faultAt = performance.now();
    await plan.fault();
    await sleep(outageMs); // the outage itself
    await plan.recover();
    recoveredAt = performance.now();
    const deadline = recoveredAt + (plan.recoveryDeadlineMs ?? 20_000);
    while (firstOkAfterRecovery === null && performance.now() < deadline) await sleep(20);
    if (firstOkAfterRecovery !== null) await sleep(500); // steady again: a little load after recovery
    stop = true;
    await Promise.all(running);

    // Read every session back; retry a little in case the store is still settling.
    let acknowledged = 0;
    let lost = 0;
    let unreadable = 0;
    const lostExamples: string[] = [];
    for (let s = 0; s < sessions; s++) {
      const expected = ledger[s] as Map<string, string>;
      acknowledged += expected.size;
      let stored: Record<string, unknown> | null = null;
      for (let attempt = 0; attempt < 50 && stored === null; attempt++) {
        const answer = await (visitors[s] as Visitor).request('GET', '/dump');
        if (answer?.status === 200) stored = JSON.parse(answer.body) as Record<string, unknown>;
        else await sleep(100);
      }
      if (stored === null) {
        unreadable++;
        lost += expected.size;
        continue;
      }
      for (const [k, v] of expected) {
        if (stored[k] !== v) {
          lost++;
          if (lostExamples.length < 5) lostExamples.push(`session ${s} ${k}=${v} (stored: ${String(stored[k])})`);
        }
      }
    }

    const failures = answers.filter((a) => a.status < 200 || a.status >= 300);
    const failed: Record<number, number> = {};
    for (const a of failures) failed[a.status] = (failed[a.status] ?? 0) + 1;
    const outageEnd = firstOkAfterRecovery ?? Number.POSITIVE_INFINITY;
    const during = answers.filter((a) => a.start >= faultAt && a.start <= outageEnd).map((a) => a.end - a.start);
    return {
      name: plan.name,
      requests: answers.length + unanswered,
      ok: answers.length - failures.length,
      failed,
      unanswered,
      maxMs: Math.max(0, ...answers.map((a) => a.end - a.start)),
      outage: { answers: during.length, p99Ms: percentile(during, 99), maxMs: Math.max(0, ...during) },
      errorWindowMs:
        failures.length === 0 ? 0 : Math.max(...failures.map((a) => a.end)) - Math.min(...failures.map((a) => a.end)),
      recoveryMs: firstOkAfterRecovery === null ? null : Math.max(0, firstOkAfterRecovery - recoveredAt),
      acknowledged,
      lost,
      lostExamples,
      unreadable,
      timeouts,
      errors: [...errors].sort((a, b) => b[1] - a[1]).slice(0, 5),
      anomalies: plan.anomalies?.() ?? [],
    };
  } finally {
    stop = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await engine.close();
  }
}

/** A one-line summary for test output and the bench. */
export function summary(r: FaultResult): string {
  const round = (n: number) => Math.round(n);
  return (
    `${r.name}: ${r.requests} requests, ${r.ok} ok, failed ${JSON.stringify(r.failed)}, unanswered ${r.unanswered}; ` +
    `error window ${round(r.errorWindowMs)} ms; outage answers p99 ${round(r.outage.p99Ms)} ms, max ${round(r.outage.maxMs)} ms; ` +
    `first success ${r.recoveryMs === null ? 'never' : `${round(r.recoveryMs)} ms`} after recovery; ` +
    `${r.lost} of ${r.acknowledged} acknowledged writes lost${r.lostExamples.length ? ` (${r.lostExamples.join('; ')})` : ''}; ` +
    `${r.timeouts} store timeouts; ` +
    `errors: ${r.errors.map(([message, count]) => `${count}x ${message}`).join(' | ')}` +
    (r.anomalies.length > 0 ? `; not the planned fault alone: ${r.anomalies.join('; ')}` : '')
  );
}

/** The assertions every fault test makes, with the bound a hung request would break. */
export function checkFault(
  r: FaultResult,
  options: { storeTimeoutMs?: number; slackMs?: number; allowLost?: boolean } = {},
): string[] {
  const bound = (options.storeTimeoutMs ?? 1000) + (options.slackMs ?? 1000);
  const problems: string[] = [];
  const unexpected = Object.keys(r.failed).filter((status) => status !== '503');
  if (unexpected.length > 0) problems.push(`answers other than 2xx or 503: ${JSON.stringify(r.failed)}`);
  if (r.unanswered > 0) problems.push(`${r.unanswered} requests got no answer within 10 s`);
  if (r.maxMs > bound) problems.push(`an answer took ${Math.round(r.maxMs)} ms (bound ${bound} ms)`);
  if (r.recoveryMs === null) problems.push('no request succeeded after recovery');
  if (!r.failed[503]) problems.push('no request failed during the outage (was the server really down?)');
  if (r.unreadable > 0) problems.push(`${r.unreadable} sessions could not be read back`);
  if (!options.allowLost && r.lost > 0) problems.push(`${r.lost} acknowledged writes lost`);
  problems.push(...r.anomalies);
  return problems;
}
