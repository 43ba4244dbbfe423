import { route } from '../lib/route.js';

export const dynamic = 'force-dynamic';
export const GET = route(() => new Response('public'));
