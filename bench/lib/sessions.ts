/**
 * Before measuring: checks that a server does what each scenario says (a smoke test, so a broken
 * variant is not "fast"), and makes the sessions the existing-session scenarios reuse.
 */
import { writeFile } from 'node:fs/promises';
import type { Variant } from './variants.ts';

function sessionCookie(response: Response, name: string): string | null {
  for (const header of response.headers.getSetCookie()) {
    if (header.startsWith(`${name}=`)) {
      const pair = header.split(';', 1)[0] as string;
      // A cleared cookie (empty value) is not a session.
      return pair.length > name.length + 1 ? pair : null;
    }
  }
  return null;
}

async function get(baseUrl: string, path: string, cookie?: string): Promise<Response> {
  const response = await fetch(baseUrl + path, {
    headers: cookie ? { cookie } : {},
    signal: AbortSignal.timeout(5000),
  });
  if (response.status !== 200) throw new Error(`GET ${path} answered ${response.status}: ${await response.text()}`);
  return response;
}

/** Throws when a route does not behave as its scenario says. */
export async function probe(variant: Variant, baseUrl: string): Promise<void> {
  const fail = (message: string) => new Error(`[bench] ${variant.id} probe: ${message}`);
  const anon = await get(baseUrl, '/anon');
  await anon.text();
  if (variant.cookie === null) {
    for (const path of ['/read', '/rmw', '/new']) await (await get(baseUrl, path)).text();
    return;
  }
  if (sessionCookie(anon, variant.cookie)) throw fail('/anon set a session cookie');
  const created = await get(baseUrl, '/new');
  await created.text();
  const cookie = sessionCookie(created, variant.cookie);
  if (!cookie) throw fail(`/new set no ${variant.cookie} cookie`);
  for (const expected of [1, 2]) {
    const body = (await (await get(baseUrl, '/rmw', cookie)).json()) as { count: number };
    if (body.count !== expected) throw fail(`/rmw answered count ${body.count}, expected ${expected}`);
  }
  const read = (await (await get(baseUrl, '/read', cookie)).json()) as { count: number };
  if (read.count !== 2) throw fail(`/read answered count ${read.count}, expected 2`);
}

/** Makes `count` sessions through `/new` and writes their cookies, one per line, to `file`. */
export async function makeSessions(variant: Variant, baseUrl: string, count: number, file: string): Promise<number> {
  if (variant.cookie === null) {
    await writeFile(file, '');
    return 0;
  }
  const name = variant.cookie;
  const cookies: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const response = await get(baseUrl, '/new');
      await response.text();
      const cookie = sessionCookie(response, name);
      if (!cookie) throw new Error(`[bench] ${variant.id}: /new set no ${name} cookie`);
      cookies.push(cookie);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await writeFile(file, `${cookies.join('\n')}\n`);
  return cookies.length;
}
