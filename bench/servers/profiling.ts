/**
 * CPU profiling of the steady state only: with `BENCH_PROFILE_DIR` set, SIGUSR2 starts the V8
 * profiler (the one `node --cpu-prof` uses) and the next SIGUSR2 writes the profile into that
 * folder and prints its path. The
 * harness sends them after the warm-up and after the measured runs, so start-up and module
 * loading stay out of the profile.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

export function profileOnSignal(): void {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir) return;
  let count = 0;
  const session = new Session();
  session.connect();
  let running = false;
  const post = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );
  process.on('SIGUSR2', () => {
    const step = running
      ? post('Profiler.stop').then((result) => {
          const file = join(dir, `${process.pid}-${++count}.cpuprofile`);
          writeFileSync(file, JSON.stringify((result as { profile: object }).profile));
          process.stdout.write(`profile written ${file}\n`);
        })
      : post('Profiler.enable')
          .then(() => post('Profiler.setSamplingInterval', { interval: 100 }))
          .then(() => post('Profiler.start'))
          .then(() => process.stdout.write('profile started\n'));
    running = !running;
    step.catch((error: unknown) => console.error('[bench] profiler:', error));
  });
}
