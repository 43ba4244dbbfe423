'use server';
import { redirect } from 'next/navigation';
import { commitSession, getSession } from 'tessera/next';
import { hooks } from './lib/hooks.js';

/** A Server Action: the session read and changed, committed through cookies(), then a redirect. */
export async function login(form) {
  const session = await getSession(hooks().engine());
  await session.regenerate();
  await session.set('user', String(form.get('user')));
  await commitSession(session);
  redirect('/');
}
