import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Length of a session ID in characters: 32 random bytes, base64url without padding. */
export const ID_LENGTH = 43;
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const TAG_PATTERN = /^[A-Za-z0-9_-]+$/;

/** A new session ID: 32 bytes from the CSPRNG, base64url. */
export function generateId(): string {
  return randomBytes(32).toString('base64url');
}

/** The store key of an ID: SHA-256, base64url. A leaked store yields no usable cookie. */
export function hashId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

/** A short form of a store key for logs. */
export function shortKey(key: string): string {
  return key.slice(0, 10);
}

/**
 * Signs and verifies cookie values of the form `id.tag`, where tag is HMAC-SHA256(secret, id)
 * truncated to `tagBytes` (32, the full length, unless configured otherwise; never under 16).
 * New cookies are signed with the first secret; every secret is tried on verification, so a
 * secret can be rotated in without logging anyone out.
 */
export class CookieSigner {
  readonly #keys: Buffer[];
  readonly #tagBytes: number;

  constructor(secrets: readonly string[], tagBytes = 32) {
    this.#keys = secrets.map((secret) => Buffer.from(secret, 'utf8'));
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
      if (timingSafeEqual(this.#tag(this.#keys[i] as Buffer, id), tag)) matched = i;
    }
    return matched < 0 ? null : { id, current: matched === 0 };
  }

  #tag(key: Buffer, id: string): Buffer {
    const full = createHmac('sha256', key).update(id).digest();
    return this.#tagBytes === full.length ? full : full.subarray(0, this.#tagBytes);
  }
}

/** Accepts an unsigned cookie value when signing is explicitly disabled. */
export function parseUnsignedId(value: string): string | null {
  return ID_PATTERN.test(value) ? value : null;
}
