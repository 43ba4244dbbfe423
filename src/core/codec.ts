import * as v from 'valibot';
import { check, type Same } from './check.ts';
import { SessionError } from './errors.ts';
import { nodeCrypto, shortKey } from './ids.ts';

/** Turns session values into text and back. JSON by default; `superjson` or `devalue` fit too. */
export interface Serializer {
  stringify(value: unknown): string;
  parse(text: string): unknown;
}

/** One key of the encryption key ring. */
export interface EncryptionKey {
  /** A short identifier stored in each envelope (letters, digits, `_` and `-`). */
  id: string;
  /** 32 bytes: a Buffer (any `Uint8Array`), or a base64/base64url string of 32 bytes. */
  key: Uint8Array | string;
}

const ENVELOPE = '~1';
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const KEY_RULE = 'must be 32 bytes: a Buffer, or a base64 or base64url string of 32 bytes';
const keyBytes = (key: Uint8Array | string) => (typeof key === 'string' ? Buffer.from(key, 'base64') : key);

/** {@link EncryptionKey} as a schema. */
const keySchema = v.strictObject({
  id: v.pipe(v.string('must be a string'), v.regex(KEY_ID, 'must be 1-32 of [A-Za-z0-9_-]')),
  key: v.pipe(
    v.union([v.string(), v.custom<Uint8Array>((input) => input instanceof Uint8Array, KEY_RULE)], KEY_RULE),
    v.check((key) => keyBytes(key).length === 32, KEY_RULE),
  ),
});
const keySame: Same<v.InferInput<typeof keySchema>, EncryptionKey> = true;
void keySame;

/** The engine's `encryption` option as a schema: a key ring whose ids differ. */
export const encryptionSchema = v.strictObject({
  keys: v.pipe(
    v.array(keySchema, 'must be a list of { id, key }'),
    v.check((keys) => new Set(keys.map((k) => k.id)).size === keys.length, 'must give each key an id of its own'),
  ),
});

/**
 * Encodes each top-level session value for the store: serializer text, optionally sealed with
 * AES-256-GCM. The envelope is `~1.<keyId>.<iv>.<ciphertext+tag>`; the additional data binds it
 * to the store key and field name, so a value cannot be moved to another session or field.
 * Plain values are still read when encryption is on, so encryption can be switched on without
 * logging anyone out; keys rotate by putting the new key first and keeping the old ones.
 */
export class FieldCodec {
  readonly serializer: Serializer;
  readonly #keys: Map<string, Uint8Array>;
  readonly #current: { id: string; key: Uint8Array } | null;
  readonly #scope: string | undefined;

  /** `scope`: the store's name, shown in the errors about records that cannot be decoded. */
  constructor(serializer: Serializer, keys: readonly EncryptionKey[] = [], scope?: string) {
    this.serializer = serializer;
    this.#scope = scope;
    this.#keys = new Map();
    if (keys.length > 0 && !nodeCrypto) {
      // Encryption at rest stays synchronous (fields are sealed while a write is planned).
      throw new SessionError(
        'INVALID_OPTIONS',
        'encryption needs node:crypto, which this runtime lacks: on Cloudflare Workers enable the nodejs_compat flag',
        { scope: scope ?? 'codec' },
      );
    }
    check(encryptionSchema, { keys }, { scope: scope ?? 'codec', label: 'FieldCodec' });
    for (const { id, key } of keys) {
      const bytes = keyBytes(key);
      this.#keys.set(id, bytes);
    }
    const first = keys[0];
    this.#current = first ? { id: first.id, key: this.#keys.get(first.id) as Uint8Array } : null;
  }

  /** Serializer text for a value; `undefined` values are refused by the caller beforehand. */
  serialize(value: unknown): string {
    return this.serializer.stringify(value);
  }

  /** Store form of serialized text. */
  seal(storeKey: string, field: string, text: string): string {
    if (!this.#current) return text;
    const { randomBytes, createCipheriv } = nodeCrypto as NonNullable<typeof nodeCrypto>;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#current.key, iv);
    cipher.setAAD(Buffer.from(`${storeKey}\0${field}`));
    const sealed = Buffer.concat([cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${ENVELOPE}.${this.#current.id}.${iv.toString('base64url')}.${sealed.toString('base64url')}`;
  }

  /** A stored value sealed for `fromKey`, sealed again for `toKey` (a session moved to a new ID). */
  reseal(fromKey: string, toKey: string, field: string, stored: string): string {
    return this.seal(toKey, field, this.open(fromKey, field, stored));
  }

  /** Serialized text of a stored value; throws `CORRUPT_RECORD` naming the field and the reason. */
  open(storeKey: string, field: string, stored: string): string {
    if (!stored.startsWith(`${ENVELOPE}.`)) return stored;
    const [, keyId, ivText, body] = stored.split('.');
    const key = keyId === undefined ? undefined : this.#keys.get(keyId);
    if (!key || ivText === undefined || body === undefined) {
      const why = this.#keys.size === 0 ? 'no encryption key is configured' : `key "${keyId}" is not in the key ring`;
      throw this.#corrupt(storeKey, field, `it is encrypted and ${why}`);
    }
    const sealed = Buffer.from(body, 'base64url');
    if (sealed.length < 16) throw this.#corrupt(storeKey, field, 'the envelope is truncated');
    try {
      const { createDecipheriv } = nodeCrypto as NonNullable<typeof nodeCrypto>;
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivText, 'base64url'));
      decipher.setAAD(Buffer.from(`${storeKey}\0${field}`));
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString(
        'utf8',
      );
    } catch (error) {
      throw this.#corrupt(storeKey, field, 'it failed authentication (wrong key, or tampered with)', error);
    }
  }

  /** Parses serialized text; throws `CORRUPT_RECORD` naming the field (and the record, given its key). */
  parse(field: string, text: string, storeKey?: string): unknown {
    try {
      return this.serializer.parse(text);
    } catch (error) {
      throw this.#corrupt(storeKey, field, 'it is not valid serializer output', error);
    }
  }

  /** The error for a field that cannot be decoded: the store, the shortened key, the field, why. */
  #corrupt(storeKey: string | undefined, field: string, why: string, cause?: unknown): SessionError {
    const record = storeKey === undefined ? '' : `record ${shortKey(storeKey)}: `;
    return new SessionError('CORRUPT_RECORD', `${record}stored field "${field}" cannot be decoded: ${why}`, {
      cause,
      scope: this.#scope,
    });
  }
}
