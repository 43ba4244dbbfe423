import type { Handle, HandleServerError, RequestEvent } from '@sveltejs/kit';
import * as v from 'valibot';
import { check, func, type Same } from '../core/check.ts';
import { SessionEngine } from '../core/engine.ts';
import { isSessionError, type SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { varyOn } from './internal/cache-headers.ts';
import { commitToResponse, WebEventSession } from './internal/web.ts';

/** Tessera's SessionData, by a name that an `App.SessionData` (Astro declares one) does not hide. */
type TesseraSessionData = SessionData;

declare global {
  namespace App {
    interface Locals {
      /** The visitor's session (Tessera). Loaded from the store on first use. */
      session: Session<TesseraSessionData>;
    }
  }
}

/** Options of the SvelteKit `handle` hook. */
export interface SvelteKitSessionOptions {
  /**
   * The client's IP address, which `setUser` records (see the engine's `devices`).
   * @default SvelteKit's `event.getClientAddress()` (the adapter's; adapter-node reads `ADDRESS_HEADER` when set)
   */
  clientIp?: (event: RequestEvent) => string | undefined;
}

const optionsSchema = v.strictObject({
  clientIp: v.optional(func<NonNullable<SvelteKitSessionOptions['clientIp']>>()),
});
const same: Same<v.InferInput<typeof optionsSchema>, SvelteKitSessionOptions> = true;
void same;

/**
 * SessionErrors that SvelteKit's `handleError` saw, by the request's `locals` (the hooks get
 * copies of one event, which share it): their status replaces SvelteKit's 500.
 */
const failures = new WeakMap<object, SessionError>();

/**
 * The SvelteKit `handle` hook (`src/hooks.server.ts`): `event.locals.session` in every load
 * function, form action and endpoint, lazy (a request that never touches it costs no store
 * call). The session is committed after SvelteKit rendered the response, with its status known,
 * and `Set-Cookie` is added to it before it leaves. A store failure in the commit answers 503;
 * one inside a load function, action or endpoint does too when `handleError` is
 * {@link handleSessionError} (SvelteKit's own answer to an unexpected error is 500). Compose it
 * with other hooks through `sequence()` from `@sveltejs/kit/hooks`.
 *
 * ```ts
 * export const handle = session({ store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] });
 * export const handleError = handleSessionError();
 * ```
 */
export function session<D extends object = SessionData>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
  options: SvelteKitSessionOptions = {},
): Handle {
  const engine = (
    engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions)
  ) as SessionEngine<object>;
  check(optionsSchema, options, { scope: 'sveltekit', label: 'session' });
  const clientIp = options.clientIp ?? ((event: RequestEvent) => event.getClientAddress());
  const vary = varyOn(engine);
  return async function tesseraSession({ event, resolve }) {
    const request = new WebEventSession(engine, event, event.request, clientIp);
    event.locals.session = request.session as unknown as Session<TesseraSessionData>;
    let response = await resolve(event);
    const failure = failures.get(event.locals);
    if (failure && response.status === 500) {
      // An unexpected error was a store failure: its status (503), on the page SvelteKit rendered.
      response = new Response(response.body, { status: failure.status, headers: response.headers });
    }
    return commitToResponse(engine, request, response, vary);
  };
}

/**
 * SvelteKit's `handleError` hook, noting a `SessionError` (a store that failed inside a load
 * function, an action or an endpoint) so that the {@link session} hook answers with its status
 * (503) instead of SvelteKit's 500. Give it your own handler to run after it.
 */
export function handleSessionError(next?: HandleServerError): HandleServerError {
  return (input) => {
    if (isSessionError(input.error) && input.error.status !== 500) failures.set(input.event.locals, input.error);
    return next?.(input);
  };
}
