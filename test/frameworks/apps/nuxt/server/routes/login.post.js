import { actions } from '../lib/hooks.js';

export default defineEventHandler(async (event) => {
  await actions.login(event.context.session, String(getQuery(event).user ?? ''));
  setCookie(event, 'theme', 'dark', { path: '/' });
  return sendRedirect(event, '/state', 303);
});
