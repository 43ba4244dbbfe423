/**
 * Polls `check` until it holds, yielding to the event loop between tries; fails after `ms`.
 * Returns how long it took. A readiness check with a deadline, never a fixed sleep.
 */
export async function until(check: () => Promise<boolean>, ms = 5000): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > ms) throw new Error(`not seen within ${ms} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return performance.now() - started;
}
