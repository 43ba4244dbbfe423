import { redirect } from '@sveltejs/kit';
import { actions } from '$lib/hooks.js';

export const POST = async ({ locals, url, cookies }) => {
  await actions.login(locals.session, url.searchParams.get('user') ?? '');
  cookies.set('theme', 'dark', { path: '/', httpOnly: false, secure: false });
  redirect(303, '/state');
};
