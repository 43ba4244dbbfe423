import { json } from '@sveltejs/kit';
import { actions } from '$lib/hooks.js';

export const POST = async ({ locals, setHeaders }) => {
  setHeaders({ 'cache-control': 'no-cache', vary: 'Accept-Encoding' });
  return json(await actions.increment(locals.session));
};
