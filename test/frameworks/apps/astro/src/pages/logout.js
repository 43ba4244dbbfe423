import { actions } from '../lib/hooks.js';

export const POST = async ({ locals, redirect }) => {
  await actions.logout(locals.session);
  return redirect('/', 303);
};
