// The `tessera` command itself; src/cli/index.ts loads it once commander is known to be there.
import { existsSync, readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, type OpenOptions, type ResolvedConfig, resolveConfig } from '../config/index.ts';
import { isSessionError, SessionError } from '../core/errors.ts';
import { CookieSigner, generateId, hashId, shortKey } from '../core/ids.ts';
import { type ResolvedOptions, resolveOptions } from '../core/options.ts';
import {
  type Capability,
  notSupported,
  type SessionRecord,
  type Store,
  type StoredSession,
  supports,
} from '../core/store.ts';
import { copySessions } from '../stores/migrating.ts';
import { startProgress } from './progress.ts';

/**
 * Exit codes, documented in `tessera --help` and docs/guides/operations.md:
 * 0 done, 1 a store or configuration error (or doctor found a problem), 2 bad arguments,
 * 3 nothing found (a key that does not exist).
 */
export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3 } as const;

/** A command's outcome that is not an error: printed, then the process exits with `code`. */
class Outcome extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Global {
  config?: string;
  url?: string;
  json?: boolean;
}

const KEY = /^[A-Za-z0-9_-]{43}$/;

function storeKey(value: string): string {
  if (!KEY.test(value)) throw new InvalidArgumentError('a store key is 43 base64url characters (see `tessera list`)');
  return value;
}

/**
 * inspect's operands. A base64url key may start with '-', which commander would take for an
 * option, so inspect lets unknown options through as operands and tells a key from a typo here.
 */
function keyOperand(operands: readonly string[]): string | undefined {
  const typo = operands.find((operand) => operand.startsWith('-') && !KEY.test(operand));
  if (typo) throw new InvalidArgumentError(`unknown option '${typo}' (see \`tessera inspect --help\`)`);
  if (operands.length > 1) throw new InvalidArgumentError(`give one store key, not ${operands.length}`);
  return operands[0] === undefined ? undefined : storeKey(operands[0]);
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number from 1');
  return n;
}

/** A URL, or a YAML/JSON configuration file when it names one. */
function openTarget(target: string, open: OpenOptions): Promise<ResolvedConfig> {
  if (/\.(ya?ml|json)$/i.test(target) || (existsSync(target) && !/^[a-z][a-z0-9+.-]*:/i.test(target))) {
    return loadConfig(target, process.env, open);
  }
  return resolveConfig({ store: target }, process.env, open);
}

/** Loads the configuration named by the options or the environment. */
async function open(global: Global, options: OpenOptions): Promise<ResolvedConfig> {
  if (global.config) return loadConfig(global.config, process.env, options);
  const url = global.url ?? process.env.TESSERA_STORE_URL;
  if (process.env.TESSERA_CONFIG && !global.url) return loadConfig(process.env.TESSERA_CONFIG, process.env, options);
  if (!url) {
    throw new InvalidArgumentError('say which store: --config FILE, --url URL, TESSERA_CONFIG or TESSERA_STORE_URL');
  }
  return resolveConfig({ store: url }, process.env, options);
}

interface Context {
  store: Store;
  resolved: ResolvedConfig;
  global: Global;
  /** The engine options as the app resolves them (signing left out when no secrets are set). */
  options: ResolvedOptions;
  command: Command;
}

/**
 * Runs an action on the configured store, prints its result, and always closes the store. Only
 * `init` may create a table, index or database file; every other command opens with `noCreate`.
 */
function run(action: (context: Context) => Promise<unknown>, { create = false } = {}) {
  return async function (this: Command): Promise<void> {
    const global = this.optsWithGlobals<Global>();
    const resolved = await open(global, { noCreate: !create });
    try {
      const signed = resolved.session.secrets !== undefined;
      const options = resolveOptions({
        ...resolved.session,
        store: resolved.store,
        ...(signed ? {} : { signed: false }),
      });
      await resolved.store.ready?.();
      const result = await action({ store: resolved.store, resolved, global, options, command: this });
      print(result, global.json === true);
    } finally {
      await resolved.store.close();
    }
  };
}

/** A text result is printed as it is; an object as `name: value` lines, or JSON with --json. */
function print(result: unknown, json: boolean): void {
  if (result === undefined) return;
  if (typeof result === 'string' && !json) {
    console.log(result);
    return;
  }
  if (json || typeof result !== 'object' || result === null) {
    console.log(JSON.stringify(result instanceof Text ? result.data : result, null, json ? 2 : undefined));
    return;
  }
  if (result instanceof Text) {
    console.log(result.text);
    return;
  }
  for (const [name, value] of Object.entries(result)) {
    console.log(`${name}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
  }
}

/** A result printed as text, or as its data with --json. */
class Text {
  constructor(
    readonly text: string,
    readonly data: unknown,
  ) {}
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number'));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (numeric[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const iso = (ms: number) => new Date(ms).toISOString();

/** UTF-8 bytes of a record's field names and values, as the store holds them. */
function sizeOf(record: SessionRecord): number {
  let size = 0;
  for (const [name, value] of Object.entries(record.fields)) size += Buffer.byteLength(name) + Buffer.byteLength(value);
  return size;
}

/** "3 m", "2 h", "5 d" for a duration in ms. */
function ago(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** Every live session of an enumerating store, each key once. */
async function* sessionsOf(store: Store, command: string): AsyncIterable<StoredSession> {
  const seen = new Set<string>();
  for await (const batch of need(store, 'enumerate', command).entries({ batchSize: 1000 })) {
    for (const entry of batch) {
      if (seen.has(entry.key)) continue;
      seen.add(entry.key);
      yield entry;
    }
  }
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The buckets of `stats`: upper bounds in ms (or bytes) and their labels. */
const AGES: [number, string][] = [
  [HOUR, '< 1 h'],
  [DAY, '1 h - 1 d'],
  [7 * DAY, '1 - 7 d'],
  [30 * DAY, '7 - 30 d'],
  [Number.POSITIVE_INFINITY, '> 30 d'],
];
const SOON: [number, string][] = [
  [5 * 60_000, 'within 5 min'],
  [HOUR, 'within 1 h'],
  [DAY, 'within 1 d'],
];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function stats(store: Store, top: number) {
  const now = Date.now();
  const byAge = new Map<string, number>(AGES.map(([, label]) => [label, 0]));
  const soon = new Map<string, number>(SOON.map(([, label]) => [label, 0]));
  const byUser = new Map<string, number>();
  const sizes: number[] = [];
  let anonymous = 0;
  for await (const { record } of sessionsOf(store, 'stats')) {
    const age = now - record.createdAt;
    const bucket = AGES.find(([limit]) => age < limit) as [number, string];
    byAge.set(bucket[1], (byAge.get(bucket[1]) ?? 0) + 1);
    for (const [limit, label] of SOON) if (record.expiresAt - now <= limit) soon.set(label, (soon.get(label) ?? 0) + 1);
    if (record.userId === null) anonymous++;
    else byUser.set(record.userId, (byUser.get(record.userId) ?? 0) + 1);
    sizes.push(sizeOf(record));
  }
  sizes.sort((a, b) => a - b);
  const users = [...byUser].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const total = sizes.reduce((a, b) => a + b, 0);
  return {
    sessions: sizes.length,
    withUser: sizes.length - anonymous,
    anonymous,
    users: byUser.size,
    byAge: Object.fromEntries(byAge),
    expiring: Object.fromEntries(soon),
    topUsers: users.slice(0, top).map(([user, sessions]) => ({ user, sessions })),
    sizeBytes: {
      total,
      min: sizes[0] ?? 0,
      p50: percentile(sizes, 50),
      p90: percentile(sizes, 90),
      p99: percentile(sizes, 99),
      max: sizes[sizes.length - 1] ?? 0,
    },
  };
}

function statsText(s: Awaited<ReturnType<typeof stats>>): string {
  const lines = [
    `sessions: ${s.sessions} (${s.withUser} with a user, ${s.anonymous} anonymous; ${s.users} users)`,
    '',
    table(
      ['age', 'sessions'],
      Object.entries(s.byAge).map(([label, n]) => [label, n]),
    ),
    '',
    table(
      ['expiring', 'sessions'],
      Object.entries(s.expiring).map(([label, n]) => [label, n]),
    ),
    '',
    table(
      ['size (bytes)', 'min', 'p50', 'p90', 'p99', 'max', 'total'],
      [['', s.sizeBytes.min, s.sizeBytes.p50, s.sizeBytes.p90, s.sizeBytes.p99, s.sizeBytes.max, s.sizeBytes.total]],
    ),
  ];
  if (s.topUsers.length > 0) {
    lines.push(
      '',
      table(
        ['user', 'sessions'],
        s.topUsers.map((u) => [u.user, u.sessions]),
      ),
    );
  }
  return lines.join('\n');
}

const version = (): string =>
  (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const EXIT_HELP = `
Exit codes:
  0  done
  1  a store or configuration error (one line with its code), or doctor found a problem
  2  bad arguments
  3  nothing found (revoke --key or inspect of a key that does not exist)`;

export function program(): Command {
  const cli = new Command('tessera')
    .description('Inspect, check, migrate and manage Tessera session stores')
    .version(version(), '-V, --version', 'print the version')
    .option('-c, --config <file>', 'a YAML or JSON configuration (or TESSERA_CONFIG)')
    .option(
      '-u, --url <url>',
      'a store URL: redis://, sqlite:, postgres://, mysql://, elasticsearch+https://... (or TESSERA_STORE_URL)',
    )
    .option('--json', 'print JSON')
    .addHelpText('after', EXIT_HELP)
    .showHelpAfterError()
    // Before the subcommands are added, so that they inherit it: main() decides exit codes.
    .exitOverride();

  cli
    .command('init')
    .description('create the table, index or template the store needs (or check an existing one)')
    .action(run(async ({ store }) => ({ store: store.name, ready: true }), { create: true }));

  cli
    .command('doctor')
    .description(
      'check a configuration as the app will, the store (connection, table or index shape, a probe write), ' +
        'its expiry policy and the clocks; exits 1 when a check fails',
    )
    .action(run(doctor));

  cli
    .command('migrate')
    .description(
      'copy every live session from one store to another (same keys, remaining lifetime, creation time, ' +
        'user index): cookies keep working. Idempotent: a re-run copies only what is missing or newer',
    )
    .requiredOption('--from <url|file>', 'the store to copy from: a URL or a YAML/JSON configuration')
    .requiredOption('--to <url|file>', 'the store to copy to (its table or index is created when missing)')
    .option('--dry-run', 'compare only: say what would be copied, write nothing')
    .addOption(new Option('--batch-size <n>', 'sessions per batch').default(500).argParser(positiveInt))
    .action(async function (this: Command) {
      const { from, to, dryRun, batchSize, json } = this.optsWithGlobals<{
        from: string;
        to: string;
        dryRun?: boolean;
        batchSize: number;
        json?: boolean;
      }>();
      const source = await openTarget(from, { noCreate: true });
      try {
        const target = await openTarget(to, { noCreate: dryRun === true });
        try {
          await Promise.all([source.store.ready?.(), target.store.ready?.()]);
          const progress = await startProgress(dryRun ? 'migrate (dry run):' : 'migrate:', 'sessions', null);
          const started = performance.now();
          let report: Awaited<ReturnType<typeof copySessions>>;
          try {
            report = await copySessions({
              from: source.store,
              to: target.store,
              dryRun: dryRun === true,
              batchSize,
              onProgress: (p) => progress.update(p.read, p.total),
            });
          } finally {
            progress.stop();
          }
          const seconds = (performance.now() - started) / 1000;
          const result = {
            from: source.store.name,
            to: target.store.name,
            dryRun: dryRun === true,
            ...report,
            seconds: Math.round(seconds * 100) / 100,
            perSecond: Math.round(report.read / Math.max(seconds, 0.001)),
          };
          print(result, json === true);
        } finally {
          await target.store.close();
        }
      } finally {
        await source.store.close();
      }
    });

  cli
    .command('prune')
    .description('delete expired sessions (stores without native expiry: SQL, Elasticsearch), with progress')
    .action(
      run(async ({ store }) => {
        const prune = need(store, 'prune', 'prune').prune;
        const progress = await startProgress('prune:', 'sessions', null);
        try {
          return { deleted: await prune.call(store, (deleted) => progress.update(deleted)) };
        } finally {
          progress.stop();
        }
      }),
    );

  cli
    .command('count')
    .description('count live sessions (never creates a table or a database file)')
    .action(run(async ({ store }) => ({ sessions: await need(store, 'count', 'count').count() })));

  cli
    .command('stats')
    .description('sessions by age, by user, by size, and how many expire soon (reads every session)')
    .addOption(new Option('--top <n>', 'users with the most sessions to show').default(10).argParser(positiveInt))
    .action(
      run(async ({ store, command }) => {
        const s = await stats(store, command.opts<{ top: number }>().top);
        return new Text(statsText(s), s);
      }),
    );

  cli
    .command('list')
    .description("list sessions as a table: a user's (--user), or every session (up to --limit)")
    .option('--user <id>', 'the user id the app passed to session.setUser()')
    .addOption(
      new Option('--limit <n>', 'the most sessions to list without --user').default(100).argParser(positiveInt),
    )
    .action(
      run(async ({ store, command }) => {
        const { user, limit } = command.opts<{ user?: string; limit: number }>();
        const now = Date.now();
        const rows: { key: string; userId: string | null; createdAt: number; expiresAt: number; bytes?: number }[] = [];
        let more = false;
        if (user !== undefined) {
          for (const s of await need(store, 'userIndex', 'list --user').listByUser(user)) rows.push(s);
        } else {
          for await (const { key, record } of sessionsOf(store, 'list')) {
            if (rows.length === limit) {
              more = true;
              break;
            }
            rows.push({ key, ...record, bytes: sizeOf(record) });
          }
        }
        const data = rows.map((r) => ({
          key: r.key,
          user: r.userId,
          createdAt: iso(r.createdAt),
          expiresAt: iso(r.expiresAt),
          ...(r.bytes === undefined ? {} : { bytes: r.bytes }),
        }));
        if (rows.length === 0)
          return new Text(user === undefined ? 'no sessions' : `no sessions of user ${user}`, data);
        const text = table(
          ['key', 'user', 'created', 'expires', ...(user === undefined ? ['bytes'] : [])],
          rows.map((r) => [
            r.key,
            r.userId ?? '-',
            `${iso(r.createdAt)} (${ago(now - r.createdAt)} ago)`,
            `${iso(r.expiresAt)} (in ${ago(r.expiresAt - now)})`,
            ...(r.bytes === undefined ? [] : [r.bytes]),
          ]),
        );
        return new Text(more ? `${text}\n(first ${limit}; --limit for more)` : text, data);
      }),
    );

  cli
    .command('inspect')
    .description('show one session: metadata, field names and sizes (values with --values); exit 3 when not found')
    .argument('[key]', 'the store key (the SHA-256 of the ID, as `list` shows it)')
    .option('--cookie <value>', 'a cookie value (id.tag): verified with the configured secrets, then hashed')
    .option('--values', 'print the stored values too (encrypted ones stay sealed)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(
      run(async ({ store, options, command }) => {
        const { cookie, values } = command.opts<{ cookie?: string; values?: boolean }>();
        let key = keyOperand(command.args);
        if (cookie) {
          if (options.secrets.length === 0)
            throw new InvalidArgumentError('--cookie needs the secrets (session.secrets or TESSERA_SECRETS)');
          const id = new CookieSigner(options.secrets, options.tagBytes).verify(decodeURIComponent(cookie));
          if (!id) throw new InvalidArgumentError('the cookie is malformed or not signed by any configured secret');
          key = hashId(id);
        }
        if (!key) throw new InvalidArgumentError('give a store key or --cookie');
        const record = await store.get(key);
        if (!record) throw new Outcome(EXIT.notFound, `no live session with key ${key}`);
        return {
          key,
          found: true,
          createdAt: iso(record.createdAt),
          expiresAt: iso(record.expiresAt),
          userId: record.userId,
          fields: values
            ? record.fields
            : Object.fromEntries(Object.entries(record.fields).map(([name, v]) => [name, `${v.length} bytes`])),
        };
      }),
    );

  cli
    .command('revoke')
    .description(
      'destroy one session (--key; exit 3 when it does not exist) or every session of a user (--user): ' +
        '"log out everywhere"',
    )
    .option('--key <key>', 'a store key', storeKey)
    .option('--user <id>', 'a user id')
    .action(
      run(async ({ store, command }) => {
        const { key, user } = command.opts<{ key?: string; user?: string }>();
        if (Boolean(key) === Boolean(user)) throw new InvalidArgumentError('give exactly one of --key or --user');
        if (key) {
          if ((await store.get(key)) === null) throw new Outcome(EXIT.notFound, `no live session with key ${key}`);
          await store.destroy(key);
          return { destroyed: shortKey(key) };
        }
        return { user, destroyed: await need(store, 'userIndex', 'revoke --user').destroyByUser(user as string) };
      }),
    );
  return cli;
}

interface Check {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
}

/** What a Redis store tells doctor of its expiry (`RedisStore.expiryPolicy`). */
type ExpiryPolicy = (key: string) => Promise<{ ttlMs: number; evictionPolicy: string | null }>;

/** The clock difference (ms) past which doctor warns, and past which it fails. */
const SKEW_WARN_MS = 1000;
const SKEW_FAIL_MS = 60_000;

async function doctor({ store, resolved, options }: Context): Promise<Text> {
  const checks: Check[] = [];
  const add = (check: string, status: Check['status'], detail: string) => checks.push({ check, status, detail });
  add('configuration', 'ok', `${resolved.kind} store "${store.name}"; engine options valid (as the app checks them)`);
  add(
    'secrets',
    resolved.session.secrets === undefined ? 'warn' : 'ok',
    resolved.session.secrets === undefined
      ? 'not configured (set session.secrets or TESSERA_SECRETS): cookies cannot be signed'
      : `${resolved.session.secrets.length} configured`,
  );
  add('store shape', 'ok', shapeOf(store));
  const key = hashId(generateId());
  const now = Date.now();
  const started = performance.now();
  await store.set(key, {
    fields: { probe: '"tessera doctor"' },
    createdAt: now,
    expiresAt: now + 60_000,
    userId: null,
  });
  const back = await store.get(key);
  const policy = await (inner(store) as { expiryPolicy?: ExpiryPolicy }).expiryPolicy?.call(inner(store), key);
  await store.destroy(key);
  const gone = (await store.get(key)) === null;
  const ms = Math.round((performance.now() - started) * 100) / 100;
  if (back?.fields.probe === '"tessera doctor"' && back.expiresAt === now + 60_000 && gone) {
    add('probe', 'ok', `write, read back, delete: ${ms} ms`);
  } else {
    add('probe', 'fail', 'the probe record did not round-trip (written, read back with its expiry, deleted)');
  }
  const { idleMs, absoluteMs } = options;
  const native = store.prune === undefined;
  const pruned = (inner(store) as { pruneIntervalMs?: number }).pruneIntervalMs;
  if (policy) {
    // The store writes the expiry as the key's own: Redis must show it on the probe.
    const expiring = policy.ttlMs > 0 && policy.ttlMs <= 60_000 + SKEW_FAIL_MS;
    const evicting = policy.evictionPolicy?.startsWith('allkeys-') === true;
    add(
      'redis expiry',
      !expiring ? 'fail' : evicting ? 'warn' : 'ok',
      (expiring
        ? `the probe key expires in ${Math.round(policy.ttlMs / 1000)} s (PTTL), as written`
        : `the probe key has PTTL ${policy.ttlMs}, expected about 60000: Redis would keep sessions past their expiry`) +
        (policy.evictionPolicy === null
          ? '; maxmemory-policy unknown (CONFIG refused)'
          : evicting
            ? `; maxmemory-policy ${policy.evictionPolicy} evicts live sessions when memory is full (noeviction or volatile-* keeps them)`
            : `; maxmemory-policy ${policy.evictionPolicy}`),
    );
  }
  add(
    'expiry',
    native || (pruned ?? 0) > 0 ? 'ok' : 'warn',
    `sessions end after ${ago(idleMs)} idle, ${absoluteMs === null ? 'no absolute limit' : `${ago(absoluteMs)} at most`}; ` +
      (native
        ? 'the store expires records itself'
        : (pruned ?? 0) > 0
          ? `expired records are pruned every ${ago(pruned ?? 0)}`
          : 'expired records are never read, but deleted only by `tessera prune` (schedule it) or pruneIntervalSeconds'),
  );
  const clock = (inner(store) as { serverTime?: () => Promise<number | null> }).serverTime;
  if (typeof clock === 'function') {
    const before = Date.now();
    const server = await clock.call(inner(store));
    const after = Date.now();
    if (server === null) add('clock', 'ok', 'no server clock (embedded database)');
    else {
      const skew = Math.round(server - (before + after) / 2);
      const status = Math.abs(skew) > SKEW_FAIL_MS ? 'fail' : Math.abs(skew) > SKEW_WARN_MS ? 'warn' : 'ok';
      add(
        'clock',
        status,
        `the server's clock is ${Math.abs(skew)} ms ${skew >= 0 ? 'ahead of' : 'behind'} this one's`,
      );
    }
  } else add('clock', 'ok', 'not checked: the store has no server clock to ask');
  add(
    'capabilities',
    'ok',
    (['patch', 'move', 'userIndex', 'prune', 'count', 'enumerate', 'setIfNewer'] as const)
      .map((c) => `${c} ${supports(store, c) ? 'yes' : 'no'}`)
      .join(', ') + `, atomicPatch ${store.atomicPatch === true ? 'yes' : 'no'}`,
  );
  const text = table(
    ['check', 'status', 'detail'],
    checks.map((c) => [c.check, c.status, c.detail]),
  );
  const failed = checks.filter((c) => c.status === 'fail');
  if (failed.length > 0) {
    console.log(text);
    throw new Outcome(EXIT.error, `doctor: ${failed.map((c) => c.check).join(', ')} failed`);
  }
  return new Text(text, { store: store.name, kind: resolved.kind, checks });
}

/** The store under a read tier. */
function inner(store: Store): Store {
  const wrapped = (store as { inner?: Store }).inner;
  return wrapped && typeof wrapped === 'object' ? inner(wrapped) : store;
}

function shapeOf(store: Store): string {
  const s = inner(store) as { table?: string; index?: string; prefix?: string };
  if (typeof s.table === 'string') return `table "${s.table}" has the columns the store needs`;
  if (typeof s.index === 'string') return `index "${s.index}" has the mapping the store needs`;
  if (typeof s.prefix === 'string') return `keys under "${s.prefix}"`;
  return 'connected';
}

/** Runs the CLI; a known error prints one clear line and exits with a code of {@link EXIT}. */
export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await program().parseAsync(argv);
    return EXIT.ok;
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT.ok;
    if (error instanceof Outcome) {
      console.error(`tessera: ${error.message}`);
      return error.code;
    }
    // Thrown by an action: not printed yet. Commander's own parse errors were printed already.
    if (error instanceof InvalidArgumentError && !(error as { printed?: boolean }).printed) {
      if (!e.message?.startsWith('error:')) console.error(`tessera: ${e.message}`);
      return EXIT.usage;
    }
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return EXIT.usage;
    console.error(
      isSessionError(error) ? `tessera: ${error.message} (${error.code})` : `tessera: ${e.message ?? String(error)}`,
    );
    return EXIT.error;
  }
}

/** The store, when it has the capability a command needs; a `NOT_SUPPORTED` error otherwise. */
function need(store: Store, capability: Capability, command: string): Store & Required<Omit<Store, 'ready'>> {
  if (!supports(store, capability)) throw notSupported(store, capability, `tessera ${command}`);
  return store as Store & Required<Omit<Store, 'ready'>>;
}

export { SessionError };
