import { getSession } from 'tessera/next';
import { hooks } from '../lib/hooks.js';

export const dynamic = 'force-dynamic';

/** A Server Component behind proxy.js: it reads the count the proxy wrote. */
export default async function Proxied() {
  const session = await getSession(hooks().engine());
  return <p>count {(await session.get('count')) ?? 0}</p>;
}
