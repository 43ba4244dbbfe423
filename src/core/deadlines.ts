/**
 * A call under a deadline (see {@link Deadlines}). The caller's own object: a store call is its
 * deadline, so that a call allocates no entry besides itself.
 */
export interface Deadline {
  /** When it was added (ms, the clock of `performance.now()`); set by {@link Deadlines.add}. */
  at: number;
  /** Its place in the list of pending calls; -1 once settled or expired. */
  index: number;
  /** Called once its time has passed, unless it settled first. */
  expire(): void;
}

/**
 * Deadlines of one length for many calls at once, as the engine's store calls have: the pending
 * calls in one list, swept by one timer that runs while there are any. A call is added when it
 * starts and taken out (in place of the last) when it settles; a sweep every tenth of the length
 * expires the calls that are older than it. A timer of its own per call (`setTimeout` and
 * `clearTimeout`) cost more than the rest of a cached read.
 */
export class Deadlines {
  readonly #ms: number;
  readonly #tickMs: number;
  readonly #pending: Deadline[] = [];
  #timer: ReturnType<typeof setInterval> | null = null;

  /** `ms`: how long a call may take; it expires between `ms` and `ms` plus a tenth of it. */
  constructor(ms: number) {
    this.#ms = ms;
    this.#tickMs = Math.max(1, Math.floor(ms / 10));
  }

  /** Calls `deadline.expire()` once `ms` have passed, unless `settle` comes first. */
  add<D extends Deadline>(deadline: D): D {
    deadline.at = performance.now();
    deadline.index = this.#pending.length;
    this.#pending.push(deadline);
    // Holds the process open while a call is pending (its timeout must come), and only then.
    if (this.#timer === null) this.#timer = setInterval(() => this.#sweep(), this.#tickMs);
    else if (deadline.index === 0) this.#timer.ref?.();
    return deadline;
  }

  /** The call settled: its deadline goes. */
  settle(deadline: Deadline): void {
    const { index } = deadline;
    if (index < 0) return;
    deadline.index = -1;
    const last = this.#pending.pop() as Deadline;
    if (last !== deadline) {
      this.#pending[index] = last;
      last.index = index;
    }
    // ref/unref: Node's and Bun's timers; Deno's and workerd's are plain numbers, held by nothing.
    if (this.#pending.length === 0) this.#timer?.unref?.();
  }

  #sweep(): void {
    // Stopped by a sweep that finds nothing pending, not by the last settle: a call after call
    // would otherwise start and stop the timer every time.
    if (this.#pending.length === 0) {
      clearInterval(this.#timer as ReturnType<typeof setInterval>);
      this.#timer = null;
      return;
    }
    const oldest = performance.now() - this.#ms;
    const expired = this.#pending.filter((deadline) => deadline.at <= oldest);
    for (const deadline of expired) this.settle(deadline);
    for (const deadline of expired) deadline.expire();
  }
}
