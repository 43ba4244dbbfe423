import { getSession } from 'tessera/next';
import { login } from './actions.js';
import { hooks } from './lib/hooks.js';

export const dynamic = 'force-dynamic';

/** A Server Component: it reads the session (and cannot set cookies). */
export default async function Home() {
  const session = await getSession(hooks().engine());
  const user = (await session.get('user')) ?? 'stranger';
  return (
    <main>
      <p>hello {user}</p>
      <form action={login}>
        <input name="user" />
        <button type="submit">log in</button>
      </form>
    </main>
  );
}
