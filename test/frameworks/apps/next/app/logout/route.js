import { NextResponse } from 'next/server';
import { actions } from '../lib/hooks.js';
import { route } from '../lib/route.js';

export const dynamic = 'force-dynamic';
export const POST = route(async (request, session) => {
  await actions.logout(session);
  return NextResponse.redirect(new URL('/', request.url), 303);
});
