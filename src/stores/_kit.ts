/**
 * What stores without native compare-and-set queues need, written once: per-key write ordering
 * with batching, a jittered retry of lost compare-and-set races, a background prune timer, and
 * one path for errors nobody awaits. Exported to store authors through `tessera/store`.
 */
import { SessionError } from '../core/errors.ts';
import type { Logger } from '../core/report.ts';
import { reportError } from '../core/report.ts';

interface Batch {
  ops: unknown[];
  settle: { resolve(value: unknown): void; reject(error: unknown): void }[];
}

/**
 * Orders the writes of one key within this process. `run` runs a write after the ones before it;
 * `batch` adds a change to the batch waiting for its turn, so that a burst of requests on one
 * session costs one write instead of one compare-and-set race each (they would only lose races to
 * each other; the store's version check settles races with other processes).
 */
export class KeyedQueue {
  /** The last queued write per key. */
  readonly #tails = new Map<string, Promise<void>>();
  /** Per key, the batch not yet started: later changes join it. */
  readonly #open = new Map<string, Batch>();

  /** Runs `work` once every earlier write of `key` is done; changes queued after it wait for it. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    this.#open.delete(key);
    return this.#after(key, work);
  }

  /**
   * Adds `op` to the batch of `key` that has not started yet (or starts one), and resolves with
   * this op's result once `write` has written the batch: `write` gets the ops in order and
   * returns one result per op.
   */
  batch<Op, R>(key: string, op: Op, write: (ops: Op[]) => Promise<R[]>): Promise<R> {
    if (!this.#tails.has(key)) {
      // Nothing of this key queued or running (a request's usual case): write now. Changes that
      // arrive meanwhile find the tail and form the next batch behind it.
      const run = attempt(() => write([op])).then((results) => results[0] as R);
      this.#track(key, run);
      return run;
    }
    return new Promise<R>((resolve, reject) => {
      const settle = { resolve: resolve as (value: unknown) => void, reject };
      const open = this.#open.get(key);
      if (open) {
        open.ops.push(op);
        open.settle.push(settle);
        return;
      }
      const batch: Batch = { ops: [op], settle: [settle] };
      this.#open.set(key, batch);
      void this.#after(key, async () => {
        // From here on, new changes start the next batch.
        if (this.#open.get(key) === batch) this.#open.delete(key);
        try {
          const results = await write(batch.ops as Op[]);
          for (const [i, s] of batch.settle.entries()) s.resolve(results[i]);
        } catch (error) {
          for (const s of batch.settle) s.reject(error);
        }
      });
    });
  }

  #after<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    const run = previous ? previous.then(work, work) : attempt(work);
    this.#track(key, run);
    return run;
  }

  /** Makes `run` the key's tail until it settles (the key leaves the map unless a later write took its place). */
  #track(key: string, run: Promise<unknown>): void {
    const forget = () => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    const tail: Promise<void> = run.then(forget, forget);
    this.#tails.set(key, tail);
  }
}

/** `work()`, with a synchronous throw turned into a rejection. */
function attempt<T>(work: () => Promise<T>): Promise<T> {
  try {
    return work();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** What an attempt of {@link retryConflicts} returns when it lost a compare-and-set race. */
export const CONFLICTED: unique symbol = Symbol('conflicted');

/**
 * Runs a compare-and-set attempt until it does not conflict, at most `retries` more times, with
 * a jittered pause between attempts so that writers of other processes still racing do not meet
 * again in lockstep. Past the limit it throws a `CONFLICT` `SessionError` with `describe`'s text.
 */
export async function retryConflicts<T>(
  retries: number,
  attempt: () => Promise<T | typeof CONFLICTED>,
  describe: (attempts: number) => { message: string; scope: string },
): Promise<T> {
  for (let tries = 1; ; tries++) {
    const outcome = await attempt();
    if (outcome !== CONFLICTED) return outcome;
    if (tries > retries) {
      const { message, scope } = describe(tries);
      throw new SessionError('CONFLICT', message, { scope });
    }
    if (tries > 1) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2 ** tries, 20)));
  }
}

/** Where a store's background errors go, in this order: the app's `onError`, its logger, stderr. */
export interface BackgroundErrorOptions {
  scope: string;
  logger?: Logger | undefined;
  onError?: ((error: SessionError) => void) | undefined;
}

/**
 * A function for errors no request awaits (a failed background prune, a pool's lost connection):
 * never swallowed, never logged with client objects, repeats folded on stderr (see report.ts).
 */
export function backgroundErrors(options: BackgroundErrorOptions): (error: SessionError, detail?: object) => void {
  const { scope, logger, onError } = options;
  return (error, detail = {}) => {
    try {
      if (onError) onError(error);
      else if (logger) logger.error({ store: scope, code: error.code, ...detail }, error.message);
      else reportError(error, scope);
    } catch (failure) {
      reportError(error, scope);
      reportError(failure, scope);
    }
  };
}

/** A background task on an unref'd timer (it never keeps the process alive). */
export interface Interval {
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * Runs `task` every `intervalMs` (each wait jittered by ±20 %, so the pruners of many processes do
 * not hit the server together), the next wait starting when a run ends; a failed run goes to
 * `onError` and the timer goes on.
 */
export function every(intervalMs: number, task: () => Promise<unknown>, onError: (error: unknown) => void): Interval {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = () => {
    timer = setTimeout(
      () => {
        running = task()
          .then(
            () => {},
            (error: unknown) => {
              if (!stopped) onError(error);
            },
          )
          .finally(() => {
            running = undefined;
            if (!stopped) schedule();
          });
      },
      intervalMs * (0.8 + Math.random() * 0.4),
    );
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
