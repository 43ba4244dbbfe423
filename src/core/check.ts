/**
 * The one way options are checked: a valibot schema per options type, whose inferred input type
 * must equal the TSDoc'd interface (see {@link Same}), and one formatter that turns the first
 * problem into a `SessionError` `INVALID_OPTIONS` naming the option, the rule and what it got:
 * `redisStore: prefix must be a non-empty string, got 42`, or `store.prefix: must be ...` for a
 * configuration file. An unknown key lists the known ones, with the closest as a suggestion.
 */
import * as v from 'valibot';
import { SessionError } from './errors.ts';
import type { Logger } from './report.ts';

/** Any schema the checker takes. */
export type Schema = v.GenericSchema;

/** Arrays without `readonly`, at any depth: a schema infers mutable arrays, an options interface takes readonly ones. */
type Loose<T> = T extends readonly (infer U)[]
  ? Loose<U>[]
  : T extends Uint8Array | ((...args: never[]) => unknown)
    ? T
    : T extends object
      ? { [K in keyof T]: Loose<T[K]> }
      : T;
type Shape<T> = { [K in keyof T]: Loose<T[K]> };

/**
 * `true` only when `A` and `B` are the same type, field by field (a readonly array and a mutable
 * one count as one). A schema's file states
 * `const same: Same<v.InferInput<typeof schema>, XxxOptions> = true`, so adding, removing or
 * retyping a field in one of them and not the other fails to compile.
 */
export type Same<A, B> =
  (<T>() => T extends Shape<A> ? 1 : 2) extends <T>() => T extends Shape<B> ? 1 : 2 ? true : false;

/** Where a problem is reported: the component's scope and how the checked value is named. */
export interface Subject {
  /** `[tessera] [scope]` in the message. */
  scope: string;
  /**
   * The function the options were given to (`redisStore: prefix must be ...`), or, with
   * `path`, the path of the value inside a file (`store.prefix: must be ...`).
   */
  label?: string;
  /** A path prefix such as `store` or `session.cookie`; the message then starts with the path. */
  path?: string;
  /**
   * Options given as `undefined` although their type allows it only so that
   * `process.env.X` compiles: the name of the variable a user probably forgot, per option.
   */
  unset?: Readonly<Record<string, string>>;
}

/** Option names whose value is never echoed in a message. */
const SECRET = /secret|password|apikey|bearer|token|^key$/i;

/** What a value is, for "got ...": short, and never the text of a secret. */
export function describe(value: unknown, key?: string): string {
  if (typeof value === 'string') {
    return key !== undefined && SECRET.test(key)
      ? `a string of ${value.length} characters`
      : JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  }
  if (typeof value === 'function') return 'a function';
  if (typeof Buffer === 'function' && Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** `a.b[0].c` for a path. */
function join(base: string | undefined, keys: readonly (string | number)[]): string {
  let out = base ?? '';
  for (const key of keys) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? key : `.${key}`;
  }
  return out;
}

/** The problem, phrased for where it was found. */
function phrase(subject: Subject, path: string, rule: string): string {
  if (subject.path !== undefined) return path === '' ? rule : `${path}: ${rule}`;
  const head = subject.label ? `${subject.label}: ` : '';
  return path === '' ? `${head}${rule}` : `${head}${path} ${rule}`;
}

/** What each error {@link invalid} made was about, so that {@link within} can phrase it again. */
const problems = new WeakMap<SessionError, { keys: readonly (string | number)[]; rule: string }>();

/** The error for one problem, phrased as {@link check} phrases them; for rules a schema cannot state. */
export function invalid(subject: Subject, path: string | readonly (string | number)[], rule: string): SessionError {
  const keys = typeof path === 'string' ? (path === '' ? [] : [path]) : path;
  const error = new SessionError('INVALID_OPTIONS', phrase(subject, join(subject.path, keys), rule), {
    scope: subject.scope,
  });
  problems.set(error, { keys, rule });
  return error;
}

/**
 * Runs `make`, and phrases an options problem it throws for `subject` instead of the function
 * it was given to: a store made from a file's `store` block reports `tessera.yml: store.url: ...`,
 * not `redisStore: url ...`. `rename` maps an option to the key the file wrote it under.
 */
export function within<T>(subject: Subject, make: () => T, rename: Readonly<Record<string, string>> = {}): T {
  try {
    return make();
  } catch (error) {
    const problem = error instanceof SessionError ? problems.get(error) : undefined;
    if (!problem) throw error;
    const [head, ...rest] = problem.keys;
    const renamed = typeof head === 'string' ? rename[head] : undefined;
    const keys = renamed === undefined ? problem.keys : renamed === '' ? rest : [renamed, ...rest];
    throw invalid(subject, keys, problem.rule);
  }
}

/** An options error as found in a configuration file: its message starts with the file's name. */
export function inFile(error: unknown, file: string): unknown {
  if (!(error instanceof SessionError) || error.code !== 'INVALID_OPTIONS') return error;
  const head = error.scope === undefined ? '[tessera] ' : `[tessera] [${error.scope}] `;
  const message = `${file}: ${error.message.slice(head.length)}`;
  return new SessionError('INVALID_OPTIONS', message, { scope: error.scope ?? 'config', cause: error.cause });
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

/** The known key closest to a typo, when it is close enough to be a likely meaning. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const name of known) {
    const d = distance(key, name);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** The rule an unknown key breaks: the known keys, the likeliest first. */
export function unknownKey(key: string, known: readonly string[], noun = 'option'): string {
  const guess = closest(key, known);
  return `is not a known ${noun}${guess ? ` (did you mean "${guess}"?)` : ''}; known: ${known.join(', ')}`;
}

type Issue = v.BaseIssue<unknown>;

function keysOf(issue: Issue): (string | number)[] {
  return (issue.path ?? []).map((item) => item.key as string | number);
}

/** The deepest issue of a union: the branch that got furthest names the real problem. */
function deepest(issue: Issue): Issue {
  let found = issue;
  for (const inner of issue.issues ?? []) {
    // A branch's paths start at the union's value.
    const path = [...(issue.path ?? []), ...(inner.path ?? [])] as Issue['path'];
    const candidate = deepest({ ...inner, path });
    if ((candidate.path?.length ?? 0) > (found.path?.length ?? 0)) found = candidate;
  }
  return found;
}

function explain(schema: Schema, subject: Subject, issue: Issue): SessionError {
  const first = deepest(issue);
  const keys = keysOf(first);
  const last = first.path?.at(-1);
  if (first.type === 'strict_object' && first.expected === 'never' && last) {
    const name = String(last.key);
    const known = entriesAt(schema, keys.slice(0, -1)) ?? [];
    return invalid(subject, keys, unknownKey(name, known));
  }
  if (first.expected?.startsWith('"') && first.input === undefined && last?.origin === 'key') {
    return invalid(subject, keys, 'is required');
  }
  const got = last ? last.value : first.input;
  return invalid(subject, keys, `${first.message}, got ${describe(got, last ? String(last.key) : undefined)}`);
}

/** The entry names of the strict object a path leads to, for listing known keys. */
function entriesAt(schema: Schema, keys: readonly (string | number)[]): readonly string[] | null {
  let node: unknown = schema;
  for (const key of keys) {
    const entries = (unwrap(node) as { entries?: Record<string, unknown> }).entries;
    if (!entries || typeof key !== 'string' || !(key in entries)) return null;
    node = entries[key];
  }
  const entries = (unwrap(node) as { entries?: Record<string, unknown> }).entries;
  return entries ? Object.keys(entries) : null;
}

/** The schema inside optional, nullable and pipe wrappers. */
function unwrap(node: unknown): unknown {
  let current = node as { wrapped?: unknown; pipe?: unknown[] };
  for (;;) {
    if (current.wrapped) current = current.wrapped as typeof current;
    else if (current.pipe && current.pipe[0] !== current) current = current.pipe[0] as typeof current;
    else return current;
  }
}

/**
 * Checks `input` against `schema` and returns the parsed value (defaults applied, the input
 * never mutated); the first problem is thrown as `INVALID_OPTIONS`, unknown keys first.
 */
export function check<S extends Schema>(schema: S, input: unknown, subject: Subject): v.InferOutput<S> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid(subject, '', `must be an object, got ${describe(input)}`);
  }
  for (const [name, variable] of Object.entries(subject.unset ?? {})) {
    if (name in input && (input as Record<string, unknown>)[name] === undefined) {
      throw invalid(
        subject,
        name,
        `is undefined: is the environment variable it comes from (e.g. ${variable}) set? Leave ${name} out for the default`,
      );
    }
  }
  const result = v.safeParse(schema, input);
  if (result.success) return result.output;
  const unknown = result.issues.find((issue) => {
    const inner = deepest(issue);
    return inner.type === 'strict_object' && inner.expected === 'never';
  });
  throw explain(schema, subject, unknown ?? (result.issues[0] as Issue));
}

// Schema pieces with the rule in their message, so every options type words its rules alike.

/** A non-empty string. */
export const text = () => v.pipe(v.string('must be a non-empty string'), v.nonEmpty('must be a non-empty string'));

/** A number greater than 0. */
export const positive = (what = 'a positive number') =>
  v.pipe(v.number(`must be ${what}`), v.finite(`must be ${what}`), v.gtValue(0, `must be ${what}`));

/** A background interval in seconds, `0` for off. */
export const interval = () => {
  const rule = 'must be a number of seconds >= 0 (0 = off)';
  return v.pipe(v.number(rule), v.finite(rule), v.minValue(0, rule));
};

/** A whole number from `min` (to `max`). */
export const whole = (min: number, max?: number) => {
  const rule = max === undefined ? `must be a whole number >= ${min}` : `must be a whole number from ${min} to ${max}`;
  const from = v.pipe(v.number(rule), v.integer(rule), v.minValue(min, rule));
  return max === undefined ? from : v.pipe(from, v.maxValue(max, rule));
};

/** `true` or `false`. */
export const flag = () => v.boolean('must be true or false');

/** One of a few strings. */
export const oneOf = <const T extends readonly string[]>(values: T) =>
  v.picklist(values, `must be one of ${values.map((value) => `'${value}'`).join(', ')}`);

/** A function (a callback option). */
export const func = <T>() => v.custom<T>((value) => typeof value === 'function', 'must be a function');

/** An object with these methods (a logger, a store, a client...); `what` says what fits. */
export const having = <T>(methods: readonly string[], what: string) =>
  v.custom<T>(
    (value) =>
      ((typeof value === 'object' && value !== null) || typeof value === 'function') &&
      methods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function'),
    `must have ${methods.join(', ')} methods (${what})`,
  );

/** A plain object (settings passed through to a library, e.g. `tls.connect` options). */
export const record = <T>(what: string) =>
  v.custom<T>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), `must be ${what}`);

/** A {@link Logger}: pino, console... */
export const logger = () => having<Logger>(['debug', 'warn', 'error'], 'pino, console...');
