// Progress of a long command (migrate, prune) on stderr: a bar with rate and ETA on a terminal
// (cli-progress), plain lines otherwise, so that logs of a scheduled job stay readable.
import { importOptional } from '../core/errors.ts';

/** What a command reports as it goes. */
export interface Progress {
  /** The count so far, and optionally a new total. */
  update(done: number, total?: number | null): void;
  /** The last line (or the finished bar). */
  stop(): void;
}

type CliProgress = typeof import('cli-progress');

/** How often a plain line is printed at most. */
const LINE_EVERY_MS = 2000;

/**
 * Loads cli-progress (an optional peer, like commander: a missing one is `MISSING_DEPENDENCY`
 * naming it) and starts a bar on a terminal, plain lines elsewhere.
 */
export async function startProgress(
  label: string,
  unit: string,
  total: number | null,
  stream: NodeJS.WriteStream = process.stderr,
): Promise<Progress> {
  const bars = await importOptional<CliProgress & { default?: CliProgress }>('cli-progress', 'cli');
  const { SingleBar, Presets } = bars.default ?? bars;
  const started = performance.now();
  const rate = (done: number) => done / Math.max((performance.now() - started) / 1000, 0.001);
  if (stream.isTTY) {
    // Made on the first update, which may bring the total (migrate counts the source first).
    let bar: InstanceType<CliProgress['SingleBar']> | null = null;
    const make = (all: number | null) => {
      const made = new SingleBar(
        {
          stream,
          format:
            all === null
              ? `${label} {value} ${unit} | {speed} ${unit}/s | {duration_formatted}`
              : `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {speed} ${unit}/s | ETA {eta_formatted}`,
          hideCursor: true,
          etaBuffer: 50,
        },
        Presets.shades_classic,
      );
      made.start(all ?? 0, 0, { speed: '0' });
      return made;
    };
    return {
      update(done, next) {
        bar ??= make(next ?? total);
        if (next !== undefined && next !== null) bar.setTotal(next);
        bar.update(done, { speed: String(Math.round(rate(done))) });
      },
      stop() {
        (bar ?? make(total)).stop();
      },
    };
  }
  let last = 0;
  let current = 0;
  let all = total;
  const line = () => {
    const perSecond = rate(current);
    const share = all ? ` of ${all} (${Math.floor((current / all) * 100)}%)` : '';
    const eta = all && perSecond > 0 ? `, ETA ${Math.ceil((all - current) / perSecond)} s` : '';
    stream.write(`${label} ${current}${share} ${unit}, ${Math.round(perSecond)} ${unit}/s${eta}\n`);
  };
  return {
    update(done, next) {
      current = done;
      if (next !== undefined) all = next;
      const now = performance.now();
      if (now - last >= LINE_EVERY_MS) {
        last = now;
        line();
      }
    },
    stop: line,
  };
}
