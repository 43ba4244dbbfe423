import type * as NodeCrypto from 'node:crypto';
import { SessionError } from './errors.ts';

/** Length of a session ID in characters: 32 random bytes, base64url without padding. */
export const ID_LENGTH = 43;
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const TAG_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * A Node built-in module where the runtime has it (Node, Bun, Deno, Cloudflare Workers with
 * `nodejs_compat`), found through `process.getBuiltinModule` rather than a static import, so that
 * core also loads where there is none (Workers without `nodejs_compat`); `null` there.
 */
export function nodeBuiltin<T>(name: `node:${string}`): T | null {
  const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof process?.getBuiltinModule !== 'function') return null;
  try {
    return (process.getBuiltinModule(name) as T | undefined) ?? null;
  } catch {
    return null;
  }
}

/**
 * `node:crypto`, or `null` where the runtime lacks it: then Web Crypto does the hashing and
 * signing, asynchronously, and the engine verifies a cookie when the session is first used and
 * makes new IDs ahead of the writes that need them. Node's synchronous calls are kept wherever
 * they exist (they are faster, and need no await).
 */
const node = nodeBuiltin<typeof NodeCrypto>('node:crypto');

/** `node:crypto`, or `null` where the runtime has none (encryption at rest needs it). */
export const nodeCrypto = node;

/** Whether hashing and signing are synchronous here (`node:crypto`); otherwise Web Crypto's async calls. */
export const syncCrypto = node !== null;

/** The error of a synchronous API called where only Web Crypto is available. */
function needsNodeCrypto(what: string): SessionError {
  return new SessionError(
    'NOT_SUPPORTED',
    `${what} is synchronous and needs node:crypto, which this runtime lacks (Cloudflare Workers without nodejs_compat); ${
      what === 'hashId' ? 'use hashIdAsync()' : 'the engine does it asynchronously'
    }`,
    { scope: 'crypto' },
  );
}

/** Bytes of the CSPRNG drawn ahead for new IDs: 128 IDs per call to it. */
const RANDOM_POOL_BYTES = 32 * 128;

/**
 * Random bytes drawn ahead, as Node's `randomUUID` does: one call to the CSPRNG costs about
 * 4 µs, whatever its size, so 128 IDs share one. Each 32-byte slice is used once. The pool
 * belongs to the process that filled it (`pid`): a process started from a snapshot of another
 * refills before its first ID.
 */
const randomPool: { bytes: Buffer | null; at: number; pid: number | undefined } = {
  bytes: null,
  at: RANDOM_POOL_BYTES,
  pid: undefined,
};

const processId = (): number | undefined => (globalThis as { process?: { pid?: number } }).process?.pid;

/** A new session ID: 32 bytes from the CSPRNG, base64url. */
export function generateId(): string {
  if (!node) return toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  const pool = randomPool;
  const pid = processId();
  let bytes = pool.bytes;
  if (bytes === null || pool.at === RANDOM_POOL_BYTES || pool.pid !== pid) {
    if (bytes === null) bytes = pool.bytes = node.randomBytes(RANDOM_POOL_BYTES);
    else node.randomFillSync(bytes);
    pool.at = 0;
    pool.pid = pid;
  }
  const start = pool.at;
  pool.at = start + 32;
  return bytes.toString('base64url', start, start + 32);
}

/** `crypto.hash` (Node 20.12 and later): a one-shot digest, without a Hash object per call. */
const oneShotHash = typeof node?.hash === 'function' ? node.hash : null;

/** The store key of an ID: SHA-256, base64url. A leaked store yields no usable cookie. */
export function hashId(id: string): string {
  if (!node) throw needsNodeCrypto('hashId');
  if (oneShotHash) return oneShotHash('sha256', id, 'base64url');
  return node.createHash('sha256').update(id).digest('base64url');
}

/** {@link hashId} on any runtime: synchronous work where `node:crypto` exists, Web Crypto elsewhere. */
export async function hashIdAsync(id: string): Promise<string> {
  if (node) return hashId(id);
  return toBase64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', utf8.encode(id))));
}

/** A short form of a store key for logs. */
export function shortKey(key: string): string {
  return key.slice(0, 10);
}

/**
 * Signs and verifies cookie values of the form `id.tag`, where tag is HMAC-SHA256(secret, id)
 * truncated to `tagBytes` (32, the full length, unless configured otherwise; never under 16).
 * New cookies are signed with the first secret; every secret is tried on verification, so a
 * secret can be rotated in without logging anyone out. `sign`/`open` are synchronous and need
 * `node:crypto`; `signAsync`/`openAsync` work everywhere (Web Crypto where `node:crypto` is missing).
 */
export class CookieSigner {
  readonly #secrets: readonly string[];
  readonly #keys: Buffer[];
  readonly #tagBytes: number;
  #webKeys: Promise<CryptoKey[]> | undefined;

  constructor(secrets: readonly string[], tagBytes = 32) {
    this.#secrets = secrets;
    this.#keys = node ? secrets.map((secret) => Buffer.from(secret, 'utf8')) : [];
    this.#tagBytes = tagBytes;
  }

  sign(id: string): string {
    return `${id}.${this.#tag(this.#keys[0] as Buffer, id).toString('base64url')}`;
  }

  /** The ID inside a cookie value, or `null` when it is malformed or no secret signed it. */
  verify(value: string): string | null {
    return this.open(value)?.id ?? null;
  }

  /** Like `verify`, and says whether the current (first) secret signed it. */
  open(value: string): { id: string; current: boolean } | null {
    const dot = value.indexOf('.');
    if (dot !== ID_LENGTH) return null;
    const id = value.slice(0, dot);
    const tagText = value.slice(dot + 1);
    if (!ID_PATTERN.test(id) || !TAG_PATTERN.test(tagText)) return null;
    const tag = Buffer.from(tagText, 'base64url');
    // Only the canonical encoding: other spellings of the same bytes (padding bits) are refused.
    if (tag.length !== this.#tagBytes || tag.toString('base64url') !== tagText) return null;
    let matched = -1;
    // Every key is tried even after a match, so timing does not reveal which key signed it.
    for (let i = this.#keys.length - 1; i >= 0; i--) {
      if ((node as typeof NodeCrypto).timingSafeEqual(this.#tag(this.#keys[i] as Buffer, id), tag)) matched = i;
    }
    return matched < 0 ? null : { id, current: matched === 0 };
  }

  /** {@link sign} on any runtime. */
  async signAsync(id: string): Promise<string> {
    if (node) return this.sign(id);
    const [key] = await this.#cryptoKeys();
    return `${id}.${toBase64Url(await this.#webTag(key as CryptoKey, id))}`;
  }

  /**
   * {@link open} on any runtime; also gives the value signed with the current secret (`signed`),
   * which is the value itself when the current secret signed it.
   */
  async openAsync(value: string): Promise<{ id: string; current: boolean; signed: string } | null> {
    if (node) {
      const opened = this.open(value);
      return opened && { ...opened, signed: opened.current ? value : this.sign(opened.id) };
    }
    const parts = this.#split(value);
    if (!parts) return null;
    const { id, tagText } = parts;
    const tag = fromBase64Url(tagText);
    if (tag === null || tag.length !== this.#tagBytes || toBase64Url(tag) !== tagText) return null;
    const tags = await Promise.all((await this.#cryptoKeys()).map((key) => this.#webTag(key, id)));
    let matched = -1;
    for (let i = tags.length - 1; i >= 0; i--) if (equalBytes(tags[i] as Uint8Array, tag)) matched = i;
    if (matched < 0) return null;
    return { id, current: matched === 0, signed: `${id}.${toBase64Url(tags[0] as Uint8Array)}` };
  }

  #split(value: string): { id: string; tagText: string } | null {
    const dot = value.indexOf('.');
    if (dot !== ID_LENGTH) return null;
    const id = value.slice(0, dot);
    const tagText = value.slice(dot + 1);
    if (!ID_PATTERN.test(id) || !TAG_PATTERN.test(tagText)) return null;
    return { id, tagText };
  }

  #tag(key: Buffer, id: string): Buffer {
    if (!node) throw needsNodeCrypto('CookieSigner.sign/open');
    const full = node.createHmac('sha256', key).update(id).digest();
    return this.#tagBytes === full.length ? full : full.subarray(0, this.#tagBytes);
  }

  async #webTag(key: CryptoKey, id: string): Promise<Uint8Array> {
    const full = new Uint8Array(await crypto.subtle.sign('HMAC', key, utf8.encode(id)));
    return this.#tagBytes === full.length ? full : full.subarray(0, this.#tagBytes);
  }

  #cryptoKeys(): Promise<CryptoKey[]> {
    this.#webKeys ??= Promise.all(
      this.#secrets.map((secret) =>
        crypto.subtle.importKey('raw', utf8.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']),
      ),
    );
    return this.#webKeys;
  }
}

/** Accepts an unsigned cookie value when signing is explicitly disabled. */
export function parseUnsignedId(value: string): string | null {
  return ID_PATTERN.test(value) ? value : null;
}

const utf8 = new TextEncoder();

/** Bytes as base64url without padding (what `Buffer#toString('base64url')` gives). */
function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** base64url text as bytes, or `null` when it is not base64url. */
function fromBase64Url(text: string): Uint8Array | null {
  try {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Compares two byte strings in time that depends on their length only. */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number);
  return difference === 0;
}

/** UTF-8 length of a string: `Buffer.byteLength` where there is a Buffer, else by its code points. */
export const utf8Length: (text: string) => number =
  typeof Buffer === 'function' ? (text) => Buffer.byteLength(text) : (text) => utf8.encode(text).length;
