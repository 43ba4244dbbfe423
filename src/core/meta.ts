import type * as NodeNet from 'node:net';
import * as v from 'valibot';
import { flag, positive, type Same } from './check.ts';
import { SessionError } from './errors.ts';
import { nodeBuiltin, nodeCrypto } from './ids.ts';

/** `node:net` (for `isIP`), or `null` on Cloudflare Workers without `nodejs_compat`. */
const net = nodeBuiltin<typeof NodeNet>('node:net');

/**
 * What the engine keeps about a session beside the app's data, in the record's `META_FIELD`
 * (an ordinary field to every store, so no store schema changes): the session's own lifetime,
 * when it was last authenticated, and the device it was tied to its user from. A session that
 * uses none of these has no such field. Times are epoch ms, timeouts seconds.
 */
export interface Meta {
  idle?: number;
  absolute?: number | null;
  persistent?: boolean;
  authAt?: number;
  userAgent?: string;
  ip?: string;
  label?: string;
}

/** A session's own lifetime, resolved: what the expiry and the cookie follow. */
export interface Lifetime {
  readonly idleMs: number;
  readonly absoluteMs: number | null;
  /** An unmodified session's expiry moves only when this long has passed since it last moved. */
  readonly touchAfterMs: number;
  /** The cookie carries `Expires` (it survives a browser restart). */
  readonly persistent: boolean;
}

/** The lifetime a session can be given: `session.setLifetime(...)`, or the engine's `rememberMe`. */
export interface SessionLifetime {
  /**
   * This session's idle timeout.
   * @default the engine's `idleTimeoutSeconds`
   */
  idleTimeoutSeconds?: number;
  /**
   * This session's absolute timeout, counted from its creation; `null` for none.
   * @default the engine's `absoluteTimeoutSeconds`
   */
  absoluteTimeoutSeconds?: number | null;
  /**
   * Whether its cookie carries `Expires` (survives a browser restart) or ends with the browser.
   * @default the engine's `cookie.persistent`
   */
  persistent?: boolean;
}

/** {@link SessionLifetime} as a schema. */
export const lifetimeSchema = v.strictObject({
  idleTimeoutSeconds: v.optional(positive()),
  absoluteTimeoutSeconds: v.optional(v.nullable(positive('a positive number (or null for none)'))),
  persistent: v.optional(flag()),
});
const same: Same<v.InferInput<typeof lifetimeSchema>, SessionLifetime> = true;
void same;

/** `given` over `base`; the touch throttle keeps the engine's ratio of throttle to idle timeout. */
export function resolveLifetime(base: Lifetime, given: SessionLifetime, ratio: number): Lifetime {
  const idleMs = given.idleTimeoutSeconds === undefined ? base.idleMs : given.idleTimeoutSeconds * 1000;
  const absoluteMs =
    given.absoluteTimeoutSeconds === undefined
      ? base.absoluteMs
      : given.absoluteTimeoutSeconds === null
        ? null
        : given.absoluteTimeoutSeconds * 1000;
  return { idleMs, absoluteMs, touchAfterMs: idleMs * ratio, persistent: given.persistent ?? base.persistent };
}

/** The keys of {@link Meta} in the order they are written (one text per content, for change detection). */
const ORDER: readonly (keyof Meta)[] = ['idle', 'absolute', 'persistent', 'authAt', 'userAgent', 'ip', 'label'];

/** The stored text of a meta object; `null` when it holds nothing (the field is removed). */
export function metaText(meta: Meta | null): string | null {
  if (meta === null) return null;
  const ordered: Record<string, unknown> = {};
  let any = false;
  for (const name of ORDER) {
    if (meta[name] === undefined) continue;
    ordered[name] = meta[name];
    any = true;
  }
  return any ? JSON.stringify(ordered) : null;
}

const number = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
const isText = (value: unknown) => typeof value === 'string';
const CHECKS: Record<keyof Meta, (value: unknown) => boolean> = {
  idle: (value) => number(value) && (value as number) > 0,
  absolute: (value) => value === null || (number(value) && (value as number) > 0),
  persistent: (value) => typeof value === 'boolean',
  authAt: number,
  userAgent: isText,
  ip: isText,
  label: isText,
};

/** Parses a stored meta text; `CORRUPT_RECORD` naming the problem when it is not one. */
export function parseMeta(text: string, where: string): Meta {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SessionError('CORRUPT_RECORD', `${where}: the session's metadata is not JSON; the record is kept`, {
      cause: error,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SessionError('CORRUPT_RECORD', `${where}: the session's metadata is not an object; the record is kept`);
  }
  const meta: Meta = {};
  for (const [name, field] of Object.entries(value)) {
    const checkField = Object.hasOwn(CHECKS, name) ? CHECKS[name as keyof Meta] : undefined;
    // A name this version does not know is dropped (written by a later version); a known one must fit.
    if (!checkField) continue;
    if (!checkField(field)) {
      throw new SessionError(
        'CORRUPT_RECORD',
        `${where}: the session's metadata has an implausible ${name} (${JSON.stringify(field)}); the record is kept`,
      );
    }
    (meta as Record<string, unknown>)[name] = field;
  }
  return meta;
}

/** The lifetime a meta object gives, or `null` when it sets none (the engine's applies). */
export function metaLifetime(meta: Meta, base: Lifetime, ratio: number): Lifetime | null {
  if (meta.idle === undefined && meta.absolute === undefined && meta.persistent === undefined) return null;
  const given: SessionLifetime = {};
  if (meta.idle !== undefined) given.idleTimeoutSeconds = meta.idle;
  if (meta.absolute !== undefined) given.absoluteTimeoutSeconds = meta.absolute;
  if (meta.persistent !== undefined) given.persistent = meta.persistent;
  return resolveLifetime(base, given, ratio);
}

/** How a client's IP address is kept in the per-user index. */
export type IpMode = 'full' | 'truncate' | 'hash' | 'off';

/** The longest user agent kept (longer ones are cut): a record stays small whatever a client sends. */
export const USER_AGENT_MAX = 256;

/**
 * The IP address as `mode` keeps it: `truncate` zeroes the host part (IPv4 to its /24, IPv6 to
 * its /48, an IPv4-mapped IPv6 address as IPv4), `hash` is a keyed HMAC-SHA256 (128 bits,
 * base64url), so equal addresses can be recognised but not read back; `undefined` for `off` or
 * a value that is not an IP address. Where `node:net` and `node:crypto` are missing (Workers
 * without `nodejs_compat`, whose Fetch handlers give no client address anyway) no address is kept.
 */
export function keepIp(ip: string | undefined, mode: IpMode, hashKey: string): string | undefined {
  if (ip === undefined || mode === 'off' || !net || !nodeCrypto) return undefined;
  const { isIP } = net;
  let address = ip.trim();
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) address = address.slice(7);
  const family = isIP(address);
  if (family === 0) return undefined;
  if (mode === 'full') return address;
  if (mode === 'hash')
    return nodeCrypto.createHmac('sha256', hashKey).update(address).digest().subarray(0, 16).toString('base64url');
  if (family === 4) return `${address.split('.').slice(0, 3).join('.')}.0`;
  return `${expandIpv6(address).slice(0, 3).join(':')}::`;
}

/** The eight groups of an IPv6 address, `::` expanded (an embedded IPv4 tail counts as two groups). */
function expandIpv6(address: string): string[] {
  const plain = address.split('%')[0] as string;
  const [head = '', tail] = plain.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').flatMap(ipv4Groups));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const middle = Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...middle, ...right].map((group) => group.replace(/^0+(?=.)/, '').toLowerCase());
}

function ipv4Groups(part: string): string[] {
  if (!part.includes('.')) return [part];
  const bytes = part.split('.').map(Number);
  return [
    (((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0)).toString(16),
    (((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)).toString(16),
  ];
}
