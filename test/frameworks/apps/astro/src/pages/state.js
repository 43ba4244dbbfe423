import { actions } from '../lib/hooks.js';

export const GET = async ({ locals }) => Response.json(await actions.state(locals.session));
