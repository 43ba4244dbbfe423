import { actions } from '../lib/hooks.js';

export default defineEventHandler((event) => actions.increment(event.context.session));
