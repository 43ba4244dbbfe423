import { actions } from '../lib/hooks.js';

export default defineEventHandler(async (event) => {
  await actions.logout(event.context.session);
  return sendRedirect(event, '/', 303);
});
