import { SessionError } from '../../core/errors.ts';
import type { FlushMode } from '../../core/options.ts';
import type { ElasticsearchAuth, ElasticsearchStoreOptions } from './options.ts';
import { resolveElasticsearchOptions } from './options.ts';

/** Values as a YAML or Perl config gives them: numbers may arrive as strings, flags as 0/1. */
type Num = number | string;
type Flag = boolean | number | string;

/**
 * The seed's `connection` block: "settings to pass to ElasticSearch". Both Perl clients'
 * node lists are understood (`servers` of ElasticSearch.pm, `nodes` of Search::Elasticsearch,
 * as `host:port` or URLs), with `userinfo` and `use_https`; and the store's own connection
 * options may be written here directly.
 */
export interface SeedConnection {
  /** ElasticSearch.pm: `host:port` or a list of them. */
  servers?: string | readonly string[];
  /** Search::Elasticsearch: `host:port`, URLs, or a list of them. */
  nodes?: string | readonly string[];
  node?: string;
  /** Search::Elasticsearch: `user:password` for basic auth. */
  userinfo?: string;
  /** Search::Elasticsearch: use https for nodes given as `host:port`. */
  use_https?: Flag;
  auth?: ElasticsearchAuth;
  tls?: ElasticsearchStoreOptions['tls'];
  cloud?: { id: string };
  flavor?: 'elasticsearch' | 'opensearch';
}

/** Dancer::Session::ElasticSearch's `session_options` block (seed 004). */
export interface DancerElasticSearchSessionOptions {
  connection?: SeedConnection;
  /** @default 'session' */
  index?: string;
  /** Accepted and ignored (mapping types are gone since Elasticsearch 7); the store warns once. */
  type?: string;
  signing?: {
    /** The cookie signing secret (at least 32 characters), or several for rotation. Required. */
    secret?: string | readonly string[];
    /** Bytes of the cookie's HMAC-SHA256 tag, 16 to 32. @default 32 */
    length?: Num;
  };
  /** Off (default): every change is written at once; on: only when the app calls `save()`. */
  is_lazy?: Flag;
}

/** Dancer settings with the block inside: `{ session: 'ElasticSearch', session_options: {...} }`. */
export interface DancerElasticSearchSettings {
  session?: string;
  session_options: DancerElasticSearchSessionOptions;
}

/** What {@link fromSeedConfig} returns: store options, and the engine settings the seed's keys map to. */
export interface ElasticsearchSeedResult {
  store: ElasticsearchStoreOptions;
  engine: { secrets: string[]; tagBytes: number; flush: FlushMode };
}

const KNOWN = ['connection', 'index', 'type', 'signing', 'is_lazy'];
const SIGNING = ['secret', 'length'];
const CONNECTION = ['servers', 'nodes', 'node', 'userinfo', 'use_https', 'auth', 'tls', 'cloud', 'flavor'];

function invalid(message: string): SessionError {
  return new SessionError('INVALID_OPTIONS', `seed config: ${message}`, { scope: 'elasticsearch' });
}

function checkKeys(value: Record<string, unknown>, known: string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw invalid(`unknown key "${key}" in ${where} (known: ${known.join(', ')})`);
  }
}

function mapping(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${name} must be a mapping`);
  return value as Record<string, unknown>;
}

function flag(name: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === true || value === 1 || value === '1' || value === 'true') return true;
  if (value === false || value === 0 || value === '0' || value === 'false' || value === '') return false;
  throw invalid(`${name} must be 0 or 1 (or true/false), got ${JSON.stringify(value)}`);
}

/** `host:port`, `host` (port 9200) or a URL, as both Perl clients accept them. */
function nodeUrl(name: string, value: unknown, https: boolean): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(`${name} must be host:port or a URL`);
  const text = value.trim();
  if (/^https?:\/\//i.test(text)) return text;
  return `${https ? 'https' : 'http'}://${text}${/:\d+$/.test(text) ? '' : ':9200'}`;
}

function nodeList(name: string, value: unknown, https: boolean): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) throw invalid(`${name} must be host:port, a URL, or a list of them`);
  return list.map((entry, i) => nodeUrl(`${name}[${i}]`, entry, https));
}

function connectionOptions(value: unknown): ElasticsearchStoreOptions {
  if (value === undefined || value === null) return {};
  const c = mapping('connection', value);
  checkKeys(c, CONNECTION, 'connection');
  const https = flag('connection.use_https', c.use_https) ?? false;
  const lists = ['servers', 'nodes', 'node'].filter((key) => c[key] !== undefined);
  if (lists.length > 1) throw invalid(`give one of connection.${lists.join(', connection.')}`);
  const out: ElasticsearchStoreOptions = {};
  if (lists[0]) out.nodes = nodeList(`connection.${lists[0]}`, c[lists[0]], https);
  if (c.userinfo !== undefined) {
    if (c.auth !== undefined) throw invalid('give connection.userinfo or connection.auth, not both');
    const text = typeof c.userinfo === 'string' ? c.userinfo : '';
    const colon = text.indexOf(':');
    if (colon <= 0) throw invalid('connection.userinfo must be "user:password"');
    out.auth = { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (c.auth !== undefined) out.auth = c.auth as ElasticsearchAuth;
  if (c.tls !== undefined) out.tls = c.tls as ElasticsearchStoreOptions['tls'];
  if (c.cloud !== undefined) out.cloud = c.cloud as { id: string };
  if (c.flavor !== undefined) out.flavor = c.flavor as 'elasticsearch' | 'opensearch';
  return out;
}

function secrets(value: unknown): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (list === undefined || list === null) {
    throw invalid('signing.secret is required: the engine signs every cookie (at least 32 characters)');
  }
  if (!Array.isArray(list) || list.length === 0) throw invalid('signing.secret must be a string or a list of strings');
  return list.map((secret, i) => {
    const name = Array.isArray(value) ? `signing.secret[${i}]` : 'signing.secret';
    if (typeof secret !== 'string' || secret.length < 32) {
      throw invalid(
        `${name} must be at least 32 characters (the seed accepted shorter ones); generate one with: openssl rand -base64 32`,
      );
    }
    return secret;
  });
}

/**
 * The seed's `signing.length` counted characters: a random salt of that many characters and the
 * first that many hex digits of an HMAC-SHA1, so its default of 10 gave a 40-bit tag. Here it is
 * the number of bytes of the HMAC-SHA256 tag in the cookie (the engine's `tagBytes`): from 16
 * (128 bits) to 32 (the whole HMAC, the default when it is left out). Anything under 16 is
 * refused rather than silently raised, so the config says what is really used.
 */
function tagBytes(value: unknown): number {
  if (value === undefined || value === null) return 32;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw invalid(`signing.length must be a whole number of bytes from 16 to 32, got ${JSON.stringify(value)}`);
  }
  if (n < 16) {
    throw invalid(
      `signing.length ${n} would give a ${n * 8}-bit cookie tag; Tessera needs at least 16 bytes (128 bits). ` +
        'signing.length counts bytes of the HMAC-SHA256 tag here (16 to 32); remove it for the full 32',
    );
  }
  if (n > 32) throw invalid(`signing.length ${n} is more than the 32 bytes of an HMAC-SHA256 tag`);
  return n;
}

/**
 * Converts a Dancer::Session::ElasticSearch `session_options` block (or the settings holding it)
 * to Tessera options:
 *
 * | seed key | becomes |
 * |---|---|
 * | `connection` | store connection options (`nodes`, `auth`, `tls`, `cloud`, `flavor`) |
 * | `index` | store `index` (default `session`) |
 * | `type` | store `type`: accepted, ignored, warned about once |
 * | `signing.secret` | engine `secrets` (each at least 32 characters) |
 * | `signing.length` | engine `tagBytes`: bytes of the cookie tag, 16-32 (see below) |
 * | `is_lazy` | engine `flush`: off (the seed's default) → `'immediate'`, on → `'manual'` |
 *
 * Unknown keys are refused, so a typo is not silently ignored. The store options are validated
 * here, so a bad config fails before anything connects. Spread the result into the engine:
 * `new SessionEngine({ ...engine, store: new ElasticsearchStore(store) })`.
 */
export function fromSeedConfig(
  config: DancerElasticSearchSessionOptions | DancerElasticSearchSettings,
): ElasticsearchSeedResult {
  let c = mapping('the config', config);
  if ('session_options' in c) {
    checkKeys(c, ['session', 'session_options'], 'Dancer settings');
    if (c.session !== undefined && c.session !== 'ElasticSearch') {
      throw invalid(`session is ${JSON.stringify(c.session)}, not 'ElasticSearch'`);
    }
    c = mapping('session_options', c.session_options);
  }
  checkKeys(c, KNOWN, 'session_options');
  const signing = c.signing === undefined ? {} : mapping('signing', c.signing);
  checkKeys(signing, SIGNING, 'signing');
  const store: ElasticsearchStoreOptions = connectionOptions(c.connection);
  if (c.index !== undefined) store.index = c.index as string;
  if (c.type !== undefined) store.type = c.type as string;
  resolveElasticsearchOptions(store);
  return {
    store,
    engine: {
      secrets: secrets(signing.secret),
      tagBytes: tagBytes(signing.length),
      flush: flag('is_lazy', c.is_lazy) ? 'manual' : 'immediate',
    },
  };
}
