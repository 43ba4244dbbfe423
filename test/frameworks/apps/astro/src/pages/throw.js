import { actions } from '../lib/hooks.js';

export const POST = async ({ locals }) => {
  await actions.increment(locals.session);
  throw new Error('route failed');
};
