import { actions } from '../lib/hooks.js';

export const POST = async ({ locals }) =>
  Response.json(await actions.increment(locals.session), {
    headers: { 'cache-control': 'no-cache', vary: 'Accept-Encoding' },
  });
