import { actions } from '../lib/hooks.js';

export default defineEventHandler((event) => {
  setResponseHeaders(event, { 'cache-control': 'no-cache', vary: 'Accept-Encoding' });
  return actions.increment(event.context.session);
});
