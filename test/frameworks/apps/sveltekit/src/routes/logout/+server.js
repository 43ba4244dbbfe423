import { redirect } from '@sveltejs/kit';
import { actions } from '$lib/hooks.js';

export const POST = async ({ locals }) => {
  await actions.logout(locals.session);
  redirect(303, '/');
};
