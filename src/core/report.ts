import { SessionError } from './errors.ts';

/**
 * The logger every part of Tessera takes (the engine and every store): pino, bunyan, winston
 * child loggers and `console` all fit.
 */
export interface Logger {
  debug(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** A logger writing one line per call to stderr, for `debug: true` without a logger of one's own. */
export function stderrLogger(scope?: string): Logger {
  const head = scope ? `[tessera] [${scope}]` : '[tessera]';
  const line = (object: object, message?: string) => console.error(head, message ?? '', JSON.stringify(object));
  return { debug: line, warn: line, error: line };
}

/** How long repeats of one error are folded into a count instead of printed. */
const FOLD_MS = 10_000;
/** At most this many distinct errors are tracked at once; the oldest is dropped first. */
const TRACKED = 100;
/** A line longer than this is cut (a cause message can carry a whole query or reply). */
const MAX_LINE = 400;

interface Folded {
  repeated: number;
  timer: ReturnType<typeof setTimeout>;
}

const folded = new Map<string, Folded>();
let write = (line: string): void => {
  // Workers without nodejs_compat have no process: their console is the log.
  const stderr = (globalThis as { process?: { stderr?: { write(text: string): unknown } } }).process?.stderr;
  if (stderr) stderr.write(`${line}\n`);
  else console.error(line);
};

/**
 * One line for an error, never an object dump: a driver's error can hold its client, and a
 * client holds connection secrets (pg's `secretKey`, passwords in its config).
 */
export function describeError(error: unknown, scope?: string): string {
  let line: string;
  if (error instanceof SessionError) {
    line = `${error.message} (${error.code})`;
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    if (cause && !error.message.includes(cause)) line += `: ${cause}`;
  } else {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    line = `[tessera]${scope ? ` [${scope}]` : ''} ${message}`;
  }
  line = line.replace(/\s*\n\s*/g, ' ');
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE - 3)}...` : line;
}

/**
 * Prints an error the app cannot catch (a pool's lost connection, a failed background prune) to
 * stderr as one line. The same error again within 10 s is only counted, and the count printed
 * when the 10 s are over, so an outage costs a few lines, not one per connection or request.
 */
export function reportError(error: unknown, scope?: string): void {
  const line = describeError(error, scope);
  const seen = folded.get(line);
  if (seen) {
    seen.repeated++;
    return;
  }
  if (folded.size >= TRACKED) {
    const [oldest, entry] = folded.entries().next().value as [string, Folded];
    clearTimeout(entry.timer);
    folded.delete(oldest);
  }
  const entry: Folded = {
    repeated: 0,
    timer: setTimeout(() => {
      folded.delete(line);
      if (entry.repeated > 0) write(`${line} (repeated ${entry.repeated} times in ${FOLD_MS / 1000} s)`);
    }, FOLD_MS),
  };
  (entry.timer as { unref?: () => void }).unref?.();
  folded.set(line, entry);
  write(line);
}

/** @internal For tests: where lines go (stderr by default); returns the previous writer. */
export function setReportWriter(writer: (line: string) => void): (line: string) => void {
  const previous = write;
  write = writer;
  return previous;
}
