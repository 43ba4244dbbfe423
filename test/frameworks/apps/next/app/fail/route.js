import { actions } from '../lib/hooks.js';
import { route } from '../lib/route.js';

export const dynamic = 'force-dynamic';
export const POST = route(async (_request, session) => {
  await actions.increment(session);
  return new Response('failed', { status: 500 });
});
