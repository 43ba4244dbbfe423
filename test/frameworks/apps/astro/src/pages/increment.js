import { actions } from '../lib/hooks.js';

export const POST = async ({ locals }) => Response.json(await actions.increment(locals.session));
