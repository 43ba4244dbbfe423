import { cookies } from 'next/headers';
import { NextResponse } from 'next/server';
import { actions } from '../lib/hooks.js';
import { route } from '../lib/route.js';

export const dynamic = 'force-dynamic';
export const POST = route(async (request, session) => {
  await actions.login(session, new URL(request.url).searchParams.get('user') ?? '');
  (await cookies()).set('theme', 'dark', { path: '/' });
  return NextResponse.redirect(new URL('/state', request.url), 303);
});
