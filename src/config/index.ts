import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { check, closest, describe, inFile, invalid, type Subject, unknownKey, within } from '../core/check.ts';
import { SessionEngine } from '../core/engine.ts';
import { importOptional, SessionError } from '../core/errors.ts';
import { resolveOptions, type SessionOptions } from '../core/options.ts';
import type { SessionData } from '../core/session.ts';
import type { Store } from '../core/store.ts';
import { fromPerlConfig } from './perl.ts';
import { type CacheConfig, configSchema, type StoreConfig, type StoreType, storeSchema } from './types.ts';

export * from './perl.ts';
export type { CacheConfig, StoreConfig, StoreType, TesseraConfig } from './types.ts';

/** What a configuration resolves to: a store and the engine options to use with it. */
export interface ResolvedConfig {
  store: Store;
  kind: StoreType;
  session: Omit<SessionOptions, 'store'>;
}

const CONFIG: Subject = { scope: 'config', path: '' };
const STORE: Subject = { scope: 'config', path: 'store' };
const SCHEMES =
  'use redis://, rediss://, unix://, sqlite:, postgres://, mysql://, mariadb://, elasticsearch+https://, ' +
  'opensearch+https:// or memory:';

/** The kind of store a URL names. */
export function storeTypeOf(url: string): StoreType {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'redis':
    case 'rediss':
    case 'unix':
      return 'redis';
    case 'sqlite':
    case 'postgres':
    case 'postgresql':
    case 'mysql':
    case 'mariadb':
      return 'sql';
    case 'elasticsearch+http':
    case 'elasticsearch+https':
      return 'elasticsearch';
    case 'opensearch+http':
    case 'opensearch+https':
      return 'opensearch';
    case 'memory':
      return 'memory';
    default:
      throw invalid(CONFIG, '', `${JSON.stringify(redact(url))} is not a store URL (no known scheme): ${SCHEMES}`);
  }
}

/** How {@link resolveConfig} and {@link loadConfig} open the store. */
export interface OpenOptions {
  /**
   * Never create anything: a SQL table or SQLite file, an Elasticsearch index or template that
   * is missing is an error instead (`createTable` / `createIndex` forced to `false`). What the
   * CLI's reading commands use. @default false
   */
  noCreate?: boolean;
}

/** Makes a store from a URL or a `{ kind?, url?, ...options }` object. */
export function createStore(config: string | StoreConfig): Promise<{ store: Store; kind: StoreType }> {
  return openStore(config, STORE);
}

/** {@link createStore}, phrasing a problem with the store's options at `subject` (`store.prefix: ...`). */
async function openStore(
  config: unknown,
  subject: Subject,
  open: OpenOptions = {},
): Promise<{ store: Store; kind: StoreType }> {
  const given = typeof config === 'string';
  const { kind: declared, url, ...rest } = check(storeSchema, given ? { url: config } : config, subject);
  const urlAt: Subject = given ? subject : { ...subject, path: `${subject.path}.url` };
  if (declared === undefined && url === undefined) throw invalid(subject, '', 'needs a url or a kind');
  const type = declared ?? within(urlAt, () => storeTypeOf(url as string));
  const withUrl = url === undefined ? {} : { url };
  // A string store block is its URL: the store's `url` is the block itself.
  const rename: Record<string, string> = given ? { url: '' } : {};
  switch (type) {
    case 'redis': {
      const { RedisStore } = await import('../stores/redis/index.ts');
      return { kind: type, store: within(subject, () => new RedisStore({ ...rest, ...withUrl }), rename) };
    }
    case 'sql': {
      const { SqlStore } = await import('../stores/sql/index.ts');
      const options = { ...rest, ...withUrl, ...(open.noCreate ? { createTable: false } : {}) };
      return { kind: type, store: within(subject, () => new SqlStore(options), rename) };
    }
    case 'elasticsearch':
    case 'opensearch': {
      const { ElasticsearchStore } = await import('../stores/elasticsearch/index.ts');
      const node = url?.replace(/^(elasticsearch|opensearch)\+/i, '');
      const options = {
        flavor: type,
        ...rest,
        ...(node === undefined ? {} : { node }),
        ...(open.noCreate ? { createIndex: false } : {}),
      };
      const renamed: Record<string, string> = node === undefined ? {} : { node: given ? '' : 'url' };
      return { kind: type, store: within(subject, () => new ElasticsearchStore(options), renamed) };
    }
    case 'memory': {
      const { MemoryStore } = await import('../stores/memory.ts');
      return { kind: type, store: within(subject, () => new MemoryStore(rest)) };
    }
  }
}

/**
 * Resolves a configuration object (ours, or a Perl engine's) into a store and engine
 * options, checked as the store and the engine check them, each problem named by its path in
 * the configuration (`store.prefix: ...`, `session.cookie.sameSite: ...`). Environment:
 * `TESSERA_SECRETS` (comma-separated) fills `session.secrets` when the configuration has none.
 */
export async function resolveConfig(
  config: unknown,
  env: NodeJS.ProcessEnv = process.env,
  open: OpenOptions = {},
): Promise<ResolvedConfig> {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw invalid(CONFIG, '', `the configuration must be an object, got ${describe(config)}`);
  }
  const perl = 'store' in config ? null : fromPerlConfig(config as Record<string, unknown>);
  if (!perl && !('store' in config)) {
    // A misspelt `store` is likelier than a Perl block Tessera does not know.
    const typo = Object.keys(config).find((key) => closest(key, ['store']) !== undefined);
    if (typo) throw invalid(CONFIG, typo, unknownKey(typo, Object.keys(configSchema.entries)));
    throw invalid(
      CONFIG,
      '',
      'the configuration has no "store", and is not a Dancer (session + redis_session / session_options), ' +
        'Catalyst (Plugin::Session) or Dancer2 (engines.session.DBIC) session configuration',
    );
  }
  const ours = perl ? null : check(configSchema, config, CONFIG);
  const storeConfig = perl?.store ?? (ours?.store as string | StoreConfig);
  const options = { ...(perl?.session ?? ours?.session) } as Omit<SessionOptions, 'store'>;
  const fromEnv = (env.TESSERA_SECRETS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (options.secrets === undefined && fromEnv.length > 0) options.secrets = fromEnv;
  let { store, kind } = await openStore(storeConfig, STORE, open);
  try {
    if (ours?.cache) store = await withCache(store, kind, storeConfig, ours.cache);
    // As the engine will check them; without secrets (a bare URL) signing is left out of the check.
    const unsigned = options.secrets === undefined && options.signed !== false;
    const check = () => resolveOptions({ ...options, store, ...(unsigned ? { signed: false } : {}) });
    if (perl) check();
    else within({ scope: 'config', path: 'session' }, check);
  } catch (error) {
    await store.close();
    throw error;
  }
  return { store, kind, session: options };
}

/**
 * Reads a YAML (`.yml`, `.yaml`) or JSON file and resolves it; a problem in it is reported with
 * the file's name and the path in it (`tessera.yml: store.prefix: ...`). `${VAR}` in a value is
 * replaced from the environment (comments and keys are never expanded); an unset variable is an error.
 */
export async function loadConfig(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  open: OpenOptions = {},
): Promise<ResolvedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SessionError('INVALID_OPTIONS', `cannot read the config file ${path}`, { cause: error, scope: 'config' });
  }
  const yml = ['.yml', '.yaml'].includes(extname(path).toLowerCase());
  const yaml = yml ? await importOptional<typeof import('yaml')>('yaml', 'config') : null;
  let parsed: unknown;
  try {
    if (yaml) {
      const document = yaml.parseDocument(text);
      if (document.errors.length > 0) throw document.errors[0];
      parsed = document;
    } else {
      parsed = JSON.parse(text);
    }
  } catch (error) {
    throw new SessionError(
      'INVALID_OPTIONS',
      `${path} is not valid ${yml ? 'YAML' : 'JSON'}: ${(error as Error).message}`,
      {
        cause: error,
        scope: 'config',
      },
    );
  }
  try {
    if (yaml) {
      const document = parsed as import('yaml').Document;
      // Only scalar values are expanded, after parsing: never comments or keys, and a value from
      // the environment can never add structure to the file.
      yaml.visit(document, {
        Scalar(key, node, ancestors) {
          if (key === 'key' || typeof node.value !== 'string') return;
          const keys = ancestors.flatMap((item, i): (string | number)[] => {
            if (yaml.isPair(item)) return [String((item.key as { value?: unknown } | null)?.value ?? item.key)];
            return yaml.isSeq(item) ? [item.items.indexOf(ancestors[i + 1] ?? node)] : [];
          });
          node.value = expand(node.value, keys, env);
        },
      });
      parsed = document.toJS();
    } else {
      parsed = expandValues(parsed, [], env);
    }
    return await resolveConfig(parsed, env, open);
  } catch (error) {
    throw inFile(error, path);
  }
}

/** `${VAR}` in one configuration value, replaced from the environment; an unset variable is an error. */
function expand(value: string, keys: readonly (string | number)[], env: NodeJS.ProcessEnv): string {
  return value.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
    const found = env[name];
    if (found === undefined) throw invalid(CONFIG, keys, `uses \${${name}}, which is not set in the environment`);
    return found;
  });
}

/** {@link expand} on every string value of parsed JSON (object keys are left alone). */
function expandValues(value: unknown, keys: readonly (string | number)[], env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') return expand(value, keys, env);
  if (Array.isArray(value)) return value.map((item, i) => expandValues(item, [...keys, i], env));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([name, item]) => [name, expandValues(item, [...keys, name], env)]),
  );
}

/**
 * The engine an app gets from its environment: `TESSERA_CONFIG` (a file) or
 * `TESSERA_STORE_URL` (+ `TESSERA_SECRETS`), so an app switches backends with no code change.
 */
export async function engineFromEnv<D extends object = SessionData>(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<SessionOptions> = {},
): Promise<SessionEngine<D>> {
  let resolved: ResolvedConfig;
  if (env.TESSERA_CONFIG) resolved = await loadConfig(env.TESSERA_CONFIG, env);
  else if (env.TESSERA_STORE_URL) resolved = await resolveConfig({ store: env.TESSERA_STORE_URL }, env);
  else throw invalid(CONFIG, '', 'set TESSERA_CONFIG (a YAML or JSON file) or TESSERA_STORE_URL (and TESSERA_SECRETS)');
  const options = { ...resolved.session, ...overrides };
  if (options.secrets === undefined && options.signed !== false) {
    await resolved.store.close();
    throw invalid(
      CONFIG,
      '',
      'no secrets to sign cookies: set TESSERA_SECRETS (comma-separated, each at least 32 characters)' +
        (env.TESSERA_CONFIG ? `, or session.secrets in ${env.TESSERA_CONFIG}` : ''),
    );
  }
  return new SessionEngine<D>({ ...options, store: resolved.store });
}

async function withCache(
  store: Store,
  type: StoreType,
  storeConfig: string | StoreConfig,
  cache: CacheConfig,
): Promise<Store> {
  const { CachedStore, redisTracking, redisPubSub } = await import('../stores/cache/index.ts');
  const { invalidationUrl, ...limits } = cache;
  const storeUrl = typeof storeConfig === 'string' ? storeConfig : storeConfig.url;
  let invalidation: ReturnType<typeof redisTracking> | null;
  if (type === 'redis' && typeof storeUrl === 'string') {
    const prefix =
      typeof storeConfig === 'object' && typeof storeConfig.prefix === 'string' ? storeConfig.prefix : undefined;
    invalidation = redisTracking({ url: invalidationUrl ?? storeUrl, prefix });
  } else if (invalidationUrl) {
    invalidation = redisPubSub({ url: invalidationUrl });
  } else if (type === 'memory') {
    invalidation = null;
  } else {
    throw invalid(CONFIG, 'cache', 'in front of a non-Redis store needs invalidationUrl (a Redis URL for pub/sub)');
  }
  return new CachedStore({ store, invalidation, ...limits });
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
