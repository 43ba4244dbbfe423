import { type OutgoingHttpHeader, type OutgoingHttpHeaders, type ServerResponse, STATUS_CODES } from 'node:http';
import { isSessionError } from '../../core/errors.ts';
import { headerText, mergeVary } from './cache-headers.ts';

type Method = 'writeHead' | 'write' | 'end' | 'flushHeaders';
const METHODS: readonly Method[] = ['writeHead', 'write', 'end', 'flushHeaders'];
type Call = (...args: unknown[]) => unknown;

/** A commit: settled at once (`undefined`) when it has nothing to wait for, else a promise. */
export type HeldCommit = (status: number) => void | Promise<void>;

/** One held response's state (a class: one shape for every response). */
class Hold {
  state: 'open' | 'holding' | 'released' = 'open';
  /** The calls made while the commit ran, replayed once it succeeds. */
  queue: Array<[number, unknown[]]> | null = null;
  constructor(
    readonly commit: HeldCommit,
    /** The Vary token the commit adds (`Cookie`, or a header transport's header). */
    readonly vary: string,
    readonly onError: (error: unknown) => void,
    /** The response's own methods, in the order of METHODS. */
    readonly originals: readonly Call[],
  ) {}
}

/** A response as the stand-ins see it (its four methods replaceable). */
type Holding = Record<Method, Call> & { readonly statusCode: number; destroy(error?: Error): void };

/**
 * Holds a `node:http` response until `commit` settles, so a Set-Cookie header added by the
 * commit goes out with the head. The first `writeHead`, `write`, `end` or `flushHeaders` starts
 * the commit; when it settles at once (nothing to write) the call goes straight through,
 * otherwise the calls made meanwhile are replayed in order once it succeeds. When it fails,
 * the held calls are dropped and `onError` decides the response (the head has not been sent).
 * Once the commit has settled the stand-ins pass every call straight to the methods they
 * replaced (putting those back would cost each response four more property writes).
 *
 * Headers passed to `writeHead` are applied with `setHeader` (they take precedence, as in Node),
 * except `Set-Cookie`, which is appended so the session cookie is not clobbered.
 *
 * The stand-ins are on the response itself, not on a prototype put in front of its own:
 * middleware that wrapped `res.end` before (compression) must be held too, and Express
 * swaps a response's prototype when it enters and leaves a mounted sub-app. The stand-in
 * methods are shared by every response (the per-response state is in a WeakMap), so holding a
 * response allocates no closures.
 */
export function holdUntilCommitted(
  res: ServerResponse,
  commit: HeldCommit,
  onError: (error: unknown) => void,
  vary = 'Cookie',
): void {
  const target = res as unknown as Holding;
  HOLDS.set(target, new Hold(commit, vary, onError, [target.writeHead, target.write, target.end, target.flushHeaders]));
  target.writeHead = STAND_INS[0] as Call;
  target.write = STAND_INS[1] as Call;
  target.end = STAND_INS[2] as Call;
  target.flushHeaders = STAND_INS[3] as Call;
}

/**
 * Each held response's state. Not a property of the response: Express changes every response's
 * prototype, after which V8 gives each response a map of its own, so a property added to one
 * copies its map (about 1 KiB) every time.
 */
const HOLDS = new WeakMap<object, Hold>();

const STAND_INS: readonly Call[] = METHODS.map(
  (_, index) =>
    function held(this: Holding, ...args: unknown[]): unknown {
      return intercept(this, index, args);
    },
);

function intercept(res: Holding, index: number, args: unknown[]): unknown {
  const hold = HOLDS.get(res) as Hold;
  if (hold.state === 'released') return (hold.originals[index] as Call).apply(res, args);
  if (hold.state === 'holding') {
    (hold.queue ??= []).push([index, args]);
    return heldResult(res, index);
  }
  hold.state = 'holding';
  // The status a held writeHead is about to send is not on the response yet.
  const status = index === 0 && typeof args[0] === 'number' ? args[0] : res.statusCode;
  let pending: void | Promise<void>;
  try {
    pending = hold.commit(status);
  } catch (error) {
    hold.state = 'released';
    hold.onError(error);
    return heldResult(res, index);
  }
  if (pending === undefined) {
    hold.state = 'released';
    return replay(res, hold, index, args);
  }
  pending.then(
    () => {
      hold.state = 'released';
      try {
        replay(res, hold, index, args);
        const queue = hold.queue;
        hold.queue = null;
        if (queue) for (const [method, held] of queue) replay(res, hold, method, held);
      } catch (error) {
        // A call that is invalid now (e.g. a second writeHead) would have thrown unheld too.
        res.destroy(error instanceof Error ? error : undefined);
      }
    },
    (error: unknown) => {
      hold.queue = null;
      hold.state = 'released';
      hold.onError(error);
    },
  );
  return heldResult(res, index);
}

/** write() reports no backpressure while held; the others return the response. */
function heldResult(res: Holding, index: number): unknown {
  return index === 1 ? true : index === 3 ? undefined : res;
}

function replay(res: Holding, hold: Hold, index: number, args: unknown[]): unknown {
  const call = hold.originals[index] as Call;
  return call.apply(res, index === 0 ? applyHeadHeaders(res as unknown as ServerResponse, hold, args) : args);
}

/** Moves the headers argument of a held `writeHead` onto the response; returns the other arguments. */
function applyHeadHeaders(res: ServerResponse, hold: Hold, args: unknown[]): unknown[] {
  const last = args[args.length - 1];
  if (args.length < 2 || typeof last !== 'object' || last === null) return args;
  const headers = Array.isArray(last) ? pairs(last as string[]) : (last as OutgoingHttpHeaders);
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (lower === 'set-cookie') res.appendHeader(name, value as string | string[]);
    else if (lower === 'vary') res.setHeader(name, keepCookieVary(res, value, hold.vary));
    else res.setHeader(name, value as OutgoingHttpHeader);
  }
  return args.slice(0, -1);
}

/** A `Vary` given to writeHead keeps the token the session commit added (see cache-headers.ts). */
function keepCookieVary(res: ServerResponse, value: OutgoingHttpHeader, token: string): OutgoingHttpHeader {
  const committed = headerText(res.getHeader('vary'));
  if (committed === undefined || mergeVary(committed, token) !== null) return value;
  return mergeVary(headerText(value), token) ?? value;
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

/**
 * Answers a request whose commit failed or whose handler threw: the error's `status` (503 for
 * store failures) or 500, as plain text; a response already under way is destroyed instead.
 */
export function respondWithError(error: unknown, _req: unknown, res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy(error instanceof Error ? error : undefined);
    return;
  }
  const status = isSessionError(error) ? error.status : 500;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(STATUS_CODES[status]);
}
