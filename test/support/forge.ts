/**
 * `tag` (a cookie's signature, base64url) with its first character changed: a signature that
 * certainly differs from the genuine one. Replacing its last characters does not: 1 time in
 * 1,024 they were the replacement already, and the "forgery" was the genuine cookie.
 */
export function alteredTag(tag: string): string {
  return `${tag.startsWith('A') ? 'B' : 'A'}${tag.slice(1)}`;
}
