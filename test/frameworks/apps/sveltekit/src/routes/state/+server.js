import { json } from '@sveltejs/kit';
import { actions } from '$lib/hooks.js';

export const GET = async ({ locals }) => json(await actions.state(locals.session));
