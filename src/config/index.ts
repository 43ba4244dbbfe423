import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { SessionEngine } from '../core/engine.ts';
import { importOptional, SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { SessionData } from '../core/session.ts';
import type { Store } from '../core/store.ts';
import { fromPerlConfig } from './perl.ts';
import type { StoreConfig, StoreType, TesseraConfig } from './types.ts';

export * from './perl.ts';
export type { StoreConfig, StoreType, TesseraConfig } from './types.ts';

/** What a configuration resolves to: a store and the engine options to use with it. */
export interface ResolvedConfig {
  store: Store;
  kind: StoreType;
  session: Omit<SessionOptions, 'store'>;
}

const invalid = (message: string) => new SessionError('INVALID_OPTIONS', message, { scope: 'config' });

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
      throw invalid(
        `store URL "${redact(url)}" has no known scheme: use redis://, rediss://, unix://, sqlite:, postgres://, ` +
          'mysql://, mariadb://, elasticsearch+https://, opensearch+https:// or memory:',
      );
  }
}

/** Makes a store from a URL or a `{ type?, url?, ...options }` object. */
export async function createStore(config: string | StoreConfig): Promise<{ store: Store; kind: StoreType }> {
  const { kind: declared, url, ...rest } = typeof config === 'string' ? { url: config } : config;
  if (declared === undefined && url === undefined) throw invalid('store needs a url or a kind');
  if (url !== undefined && typeof url !== 'string') throw invalid('store.url must be a string');
  const type = declared ?? storeTypeOf(url as string);
  switch (type) {
    case 'redis': {
      const { RedisStore } = await import('../stores/redis/index.ts');
      return { kind: type, store: new RedisStore({ ...rest, ...(url === undefined ? {} : { url }) }) };
    }
    case 'sql': {
      const { SqlStore } = await import('../stores/sql/index.ts');
      return { kind: type, store: new SqlStore({ ...rest, ...(url === undefined ? {} : { url }) }) };
    }
    case 'elasticsearch':
    case 'opensearch': {
      const { ElasticsearchStore } = await import('../stores/elasticsearch/index.ts');
      const node = url?.replace(/^(elasticsearch|opensearch)\+/i, '');
      return {
        kind: type,
        store: new ElasticsearchStore({ flavor: type, ...rest, ...(node === undefined ? {} : { node }) }),
      };
    }
    case 'memory': {
      const { MemoryStore } = await import('../stores/memory.ts');
      return { kind: type, store: new MemoryStore(rest) };
    }
    default:
      throw invalid(`store.kind "${String(type)}" is not one of redis, sql, elasticsearch, opensearch, memory`);
  }
}

/**
 * Resolves a configuration object (ours, or a Perl engine's) into a store and engine
 * options. Environment: `TESSERA_SECRETS` (comma-separated) fills `session.secrets` when the
 * configuration has none.
 */
export async function resolveConfig(config: unknown, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConfig> {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw invalid('the configuration must be an object');
  }
  const { store: storeConfig, session, cache } = await fromSeeds(config as Record<string, unknown>);
  if (storeConfig === undefined) throw invalid('the configuration has no "store"');
  const options = { ...(session ?? {}) } as Omit<SessionOptions, 'store'>;
  const fromEnv = (env.TESSERA_SECRETS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (options.secrets === undefined && fromEnv.length > 0) options.secrets = fromEnv;
  let { store, kind } = await createStore(storeConfig as string | StoreConfig);
  if (cache) store = await withCache(store, kind, storeConfig as string | StoreConfig, cache);
  return { store, kind, session: options };
}

/**
 * Reads a YAML (`.yml`, `.yaml`) or JSON file and resolves it. `${VAR}` in a value is replaced
 * from the environment (comments and keys are never expanded); an unset variable is an error.
 */
export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SessionError('INVALID_OPTIONS', `cannot read the config file ${path}`, { cause: error, scope: 'config' });
  }
  let parsed: unknown;
  try {
    if (['.yml', '.yaml'].includes(extname(path).toLowerCase())) {
      const yaml = await importOptional<typeof import('yaml')>('yaml', 'config');
      const document = yaml.parseDocument(text);
      if (document.errors.length > 0) throw document.errors[0];
      // Only scalar values are expanded, after parsing: never comments or keys, and a value from
      // the environment can never add structure to the file.
      yaml.visit(document, {
        Scalar(key, node) {
          if (key !== 'key' && typeof node.value === 'string') node.value = expand(node.value, path, env);
        },
      });
      parsed = document.toJS();
    } else {
      parsed = expandValues(JSON.parse(text), path, env);
    }
  } catch (error) {
    if (error instanceof SessionError) throw error;
    throw new SessionError(
      'INVALID_OPTIONS',
      `${path} is not valid ${extname(path) || 'JSON'}: ${(error as Error).message}`,
      {
        cause: error,
        scope: 'config',
      },
    );
  }
  return resolveConfig(parsed, env);
}

/** `${VAR}` in one configuration value, replaced from the environment; an unset variable is an error. */
function expand(value: string, path: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
    const found = env[name];
    if (found === undefined) throw invalid(`${path} uses \${${name}}, which is not set in the environment`);
    return found;
  });
}

/** {@link expand} on every string value of parsed JSON (object keys are left alone). */
function expandValues(value: unknown, path: string, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') return expand(value, path, env);
  if (Array.isArray(value)) return value.map((item) => expandValues(item, path, env));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, expandValues(item, path, env)]));
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
  else throw invalid('set TESSERA_CONFIG (a YAML or JSON file) or TESSERA_STORE_URL (and TESSERA_SECRETS)');
  const options = { ...resolved.session, ...overrides };
  if (options.secrets === undefined && options.signed !== false) {
    await resolved.store.close();
    throw invalid(
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
  cache: NonNullable<TesseraConfig['cache']>,
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
    throw invalid('cache in front of a non-Redis store needs cache.invalidationUrl (a Redis URL for pub/sub)');
  }
  return new CachedStore({ store, invalidation, ...limits });
}

/** Turns a Perl engine's configuration into ours; passes ours through. */
async function fromSeeds(config: Record<string, unknown>): Promise<Partial<TesseraConfig>> {
  if ('store' in config) {
    for (const key of Object.keys(config)) {
      if (!['store', 'session', 'cache'].includes(key))
        throw invalid(`unknown top-level key "${key}" (store, session, cache)`);
    }
    const cache = config.cache as Record<string, unknown> | undefined;
    for (const key of Object.keys(cache ?? {})) {
      if (!['maxEntries', 'maxBytes', 'maxStalenessMs', 'invalidationUrl'].includes(key)) {
        throw invalid(`unknown cache option "${key}" (maxEntries, maxBytes, maxStalenessMs, invalidationUrl)`);
      }
    }
    return config as Partial<TesseraConfig>;
  }
  const perl = fromPerlConfig(config);
  if (perl) return perl;
  throw invalid(
    'the configuration has no "store", and is not a Dancer (session + redis_session / session_options), ' +
      'Catalyst (Plugin::Session) or Dancer2 (engines.session.DBIC) session configuration',
  );
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
