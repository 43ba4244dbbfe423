// The `tessera` command itself; src/cli/index.ts loads it once commander is known to be there.
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type ResolvedConfig, resolveConfig } from '../config/index.ts';
import { isSessionError, SessionError } from '../core/errors.ts';
import { CookieSigner, generateId, hashId, shortKey } from '../core/ids.ts';
import { type ResolvedOptions, resolveOptions } from '../core/options.ts';
import { type Capability, notSupported, type Store, supports } from '../core/store.ts';

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

/** Loads the configuration named by the options or the environment. */
async function open(global: Global): Promise<ResolvedConfig> {
  if (global.config) return loadConfig(global.config);
  const url = global.url ?? process.env.TESSERA_STORE_URL;
  if (process.env.TESSERA_CONFIG && !global.url) return loadConfig(process.env.TESSERA_CONFIG);
  if (!url) {
    throw new InvalidArgumentError('say which store: --config FILE, --url URL, TESSERA_CONFIG or TESSERA_STORE_URL');
  }
  return resolveConfig({ store: url });
}

/** Runs an action on the configured store, prints its result, and always closes the store. */
function run(
  action: (store: Store, resolved: ResolvedConfig, global: Global, options: ResolvedOptions) => Promise<unknown>,
) {
  return async function (this: Command): Promise<void> {
    const global = this.optsWithGlobals<Global>();
    const resolved = await open(global);
    try {
      // resolveConfig has checked them as the app will; here they give inspect --cookie its secrets.
      const options = resolveOptions({ ...resolved.session, store: resolved.store, signed: false });
      await resolved.store.ready?.();
      const result = await action(resolved.store, resolved, global, options);
      print(result, global.json === true);
    } finally {
      await resolved.store.close();
    }
  };
}

function print(result: unknown, json: boolean): void {
  if (json || typeof result !== 'object' || result === null) {
    console.log(JSON.stringify(result, null, json ? 2 : undefined));
    return;
  }
  for (const [name, value] of Object.entries(result)) {
    console.log(`${name}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

export function program(): Command {
  const cli = new Command('tessera')
    .description('Inspect and manage Tessera session stores')
    .option('-c, --config <file>', 'a YAML or JSON configuration (or TESSERA_CONFIG)')
    .option(
      '-u, --url <url>',
      'a store URL: redis://, sqlite:, postgres://, mysql://, elasticsearch+https://... (or TESSERA_STORE_URL)',
    )
    .option('--json', 'print JSON')
    .showHelpAfterError()
    // Before the subcommands are added, so that they inherit it: main() decides exit codes.
    .exitOverride();

  cli
    .command('doctor')
    .description('connect, write, read back and delete a probe record; show what the store can do')
    .action(
      run(async (store, resolved) => {
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
        await store.destroy(key);
        const gone = (await store.get(key)) === null;
        if (back?.fields.probe !== '"tessera doctor"' || !gone)
          throw new SessionError('STORE_UNAVAILABLE', 'the probe record did not round-trip', { scope: store.name });
        return {
          store: store.name,
          kind: resolved.kind,
          roundTripMs: Math.round((performance.now() - started) * 100) / 100,
          capabilities: {
            patch: supports(store, 'patch'),
            atomicPatch: store.atomicPatch === true,
            move: supports(store, 'move'),
            userIndex: supports(store, 'userIndex'),
            prune: supports(store, 'prune'),
            count: supports(store, 'count'),
          },
          secrets:
            resolved.session.secrets === undefined
              ? 'not configured (set session.secrets or TESSERA_SECRETS)'
              : 'configured',
        };
      }),
    );

  cli
    .command('migrate')
    .description('create the table, index or template the store needs (or check an existing one)')
    .action(run(async (store) => ({ store: store.name, ready: true })));

  cli
    .command('prune')
    .description('delete expired sessions (stores without native expiry)')
    .action(run(async (store) => ({ deleted: await need(store, 'prune', 'prune').prune() })));

  cli
    .command('count')
    .description('count live sessions')
    .action(run(async (store) => ({ sessions: await need(store, 'count', 'count').count() })));

  cli
    .command('list')
    .description("list a user's live sessions")
    .requiredOption('--user <id>', 'the user id the app passed to session.setUser()')
    .action(
      run(async (store, _resolved) => {
        const user = cli.commands.find((c) => c.name() === 'list')?.opts<{ user: string }>().user as string;
        const sessions = await need(store, 'userIndex', 'list').listByUser(user);
        return {
          user,
          sessions: sessions.map((s) => ({ key: s.key, createdAt: iso(s.createdAt), expiresAt: iso(s.expiresAt) })),
        };
      }),
    );

  cli
    .command('inspect')
    .description('show one session: metadata, field names and sizes (values with --values)')
    .argument('[key]', 'the store key (the SHA-256 of the ID, as `list` shows it)', storeKey)
    .option('--cookie <value>', 'a cookie value (id.tag): verified with the configured secrets, then hashed')
    .option('--values', 'print the stored values too (encrypted ones stay sealed)')
    .action(
      run(async (store, _resolved, _global, options) => {
        const command = cli.commands.find((c) => c.name() === 'inspect') as Command;
        const { cookie, values } = command.opts<{ cookie?: string; values?: boolean }>();
        let key = command.processedArgs[0] as string | undefined;
        if (cookie) {
          if (options.secrets.length === 0)
            throw new InvalidArgumentError('--cookie needs the secrets (session.secrets or TESSERA_SECRETS)');
          const id = new CookieSigner(options.secrets, options.tagBytes).verify(decodeURIComponent(cookie));
          if (!id) throw new InvalidArgumentError('the cookie is malformed or not signed by any configured secret');
          key = hashId(id);
        }
        if (!key) throw new InvalidArgumentError('give a store key or --cookie');
        const record = await store.get(key);
        if (!record) return { key, found: false };
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
    .description('destroy one session (--key) or every session of a user (--user): "log out everywhere"')
    .option('--key <key>', 'a store key', storeKey)
    .option('--user <id>', 'a user id')
    .action(
      run(async (store) => {
        const { key, user } =
          cli.commands.find((c) => c.name() === 'revoke')?.opts<{ key?: string; user?: string }>() ?? {};
        if (Boolean(key) === Boolean(user)) throw new InvalidArgumentError('give exactly one of --key or --user');
        if (key) {
          await store.destroy(key);
          return { destroyed: shortKey(key) };
        }
        return { user, destroyed: await need(store, 'userIndex', 'revoke --user').destroyByUser(user as string) };
      }),
    );
  return cli;
}

/** Runs the CLI; a known error prints one clear line and exits 1 (2 for bad arguments). */
export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    // Thrown by an action: not printed yet. Commander's own parse errors were printed already.
    if (error instanceof InvalidArgumentError && !(error as { printed?: boolean }).printed) {
      if (!e.message?.startsWith('error:')) console.error(`tessera: ${e.message}`);
      return 2;
    }
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return 2;
    console.error(
      isSessionError(error) ? `tessera: ${error.message} (${error.code})` : `tessera: ${e.message ?? String(error)}`,
    );
    return 1;
  }
}

/** The store, when it has the capability a command needs; a `NOT_SUPPORTED` error otherwise. */
function need(store: Store, capability: Capability, command: string): Store & Required<Omit<Store, 'ready'>> {
  if (!supports(store, capability)) throw notSupported(store, capability, `tessera ${command}`);
  return store as Store & Required<Omit<Store, 'ready'>>;
}
