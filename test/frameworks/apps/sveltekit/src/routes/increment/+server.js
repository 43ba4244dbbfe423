import { json } from '@sveltejs/kit';
import { actions } from '$lib/hooks.js';

export const POST = async ({ locals }) => json(await actions.increment(locals.session));
