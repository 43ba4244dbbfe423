import { actions } from '../lib/hooks.js';

export default defineEventHandler(async (event) => {
  await actions.increment(event.context.session);
  setResponseStatus(event, 500);
  return 'failed';
});
