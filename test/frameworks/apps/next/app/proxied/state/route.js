import { actions } from '../../lib/hooks.js';
import { route } from '../../lib/route.js';

export const dynamic = 'force-dynamic';
export const GET = route(async (_request, session) => Response.json(await actions.state(session)));
