import { actions } from '../lib/hooks.js';

export const POST = async ({ locals, url, cookies, redirect }) => {
  await actions.login(locals.session, url.searchParams.get('user') ?? '');
  cookies.set('theme', 'dark', { path: '/' });
  return redirect('/state', 303);
};
