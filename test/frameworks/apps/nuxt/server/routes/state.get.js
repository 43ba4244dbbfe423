import { actions } from '../lib/hooks.js';

export default defineEventHandler((event) => actions.state(event.context.session));
