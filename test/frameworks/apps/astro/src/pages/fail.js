import { actions } from '../lib/hooks.js';

export const POST = async ({ locals }) => {
  await actions.increment(locals.session);
  return new Response('failed', { status: 500 });
};
