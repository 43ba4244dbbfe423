import { actions } from '../lib/hooks.js';
import { route } from '../lib/route.js';

export const dynamic = 'force-dynamic';
export const POST = route(async (_request, session) => Response.json(await actions.increment(session)));
