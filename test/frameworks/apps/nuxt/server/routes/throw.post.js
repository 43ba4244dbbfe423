import { actions } from '../lib/hooks.js';

export default defineEventHandler(async (event) => {
  await actions.increment(event.context.session);
  throw new Error('route failed');
});
