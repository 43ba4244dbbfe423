import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { headerText, mergeVary } from './cache-headers.ts';

type Method = 'writeHead' | 'write' | 'end' | 'flushHeaders';
const METHODS: readonly Method[] = ['writeHead', 'write', 'end', 'flushHeaders'];
type Call = (...args: unknown[]) => unknown;

/**
 * Holds a `node:http` response until `commit` settles, so a Set-Cookie header added by the
 * commit goes out with the head. The first `writeHead`, `write`, `end` or `flushHeaders` starts
 * the commit; the calls made meanwhile are replayed in order once it succeeds. When it fails,
 * the held calls are dropped, the original methods are put back and `onError` decides the
 * response (the head has not been sent).
 *
 * Headers passed to `writeHead` are applied with `setHeader` (they take precedence, as in Node),
 * except `Set-Cookie`, which is appended so the session cookie is not clobbered.
 */
export function holdUntilCommitted(
  res: ServerResponse,
  commit: (status: number) => Promise<void>,
  onError: (error: unknown) => void,
): void {
  const target = res as unknown as Record<Method, Call>;
  const originals = new Map<Method, Call>(METHODS.map((name) => [name, target[name]]));
  let state: 'open' | 'holding' | 'released' = 'open';
  const queue: Array<[Method, unknown[]]> = [];

  const original = (name: Method) => originals.get(name) as Call;
  const release = () => {
    for (const name of METHODS) target[name] = original(name);
    state = 'released';
  };
  const replay = (name: Method, args: unknown[]) => {
    if (name === 'writeHead') args = applyHeadHeaders(res, args);
    original(name).apply(res, args);
  };
  const start = (name: Method, args: unknown[]) => {
    state = 'holding';
    // The status a held writeHead is about to send is not on the response yet.
    const status = name === 'writeHead' && typeof args[0] === 'number' ? args[0] : res.statusCode;
    commit(status).then(
      () => {
        release();
        try {
          for (const [name, args] of queue.splice(0)) replay(name, args);
        } catch (error) {
          // A call that is invalid now (e.g. a second writeHead) would have thrown unheld too.
          res.destroy(error instanceof Error ? error : undefined);
        }
      },
      (error: unknown) => {
        queue.length = 0;
        release();
        onError(error);
      },
    );
  };

  for (const name of METHODS) {
    target[name] = function held(...args: unknown[]): unknown {
      if (state === 'released') return original(name).apply(res, args);
      queue.push([name, args]);
      if (state === 'open') start(name, args);
      // write() reports no backpressure while held; the others return the response.
      return name === 'write' ? true : name === 'flushHeaders' ? undefined : res;
    };
  }
}

/** Moves the headers argument of a held `writeHead` onto the response; returns the other arguments. */
function applyHeadHeaders(res: ServerResponse, args: unknown[]): unknown[] {
  const last = args[args.length - 1];
  if (args.length < 2 || typeof last !== 'object' || last === null) return args;
  const headers = Array.isArray(last) ? pairs(last as string[]) : (last as OutgoingHttpHeaders);
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (lower === 'set-cookie') res.appendHeader(name, value as string | string[]);
    else if (lower === 'vary') res.setHeader(name, keepCookieVary(res, value));
    else res.setHeader(name, value as OutgoingHttpHeader);
  }
  return args.slice(0, -1);
}

/** A `Vary` given to writeHead keeps the `Cookie` the session commit added (see cache-headers.ts). */
function keepCookieVary(res: ServerResponse, value: OutgoingHttpHeader): OutgoingHttpHeader {
  const committed = headerText(res.getHeader('vary'));
  if (committed === undefined || mergeVary(committed) !== null) return value;
  return mergeVary(headerText(value)) ?? value;
}

/** `writeHead` also takes a flat `[name, value, name, value]` array, like `rawHeaders`. */
function pairs(flat: readonly string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    const seen = headers[name];
    headers[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  return headers;
}
