import type { APIContext, MiddlewareHandler } from 'astro';
import * as v from 'valibot';
import { check, func, type Same } from '../core/check.ts';
import { SessionEngine } from '../core/engine.ts';
import { isSessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { varyOn } from './internal/cache-headers.ts';
import { commitToResponse, sessionErrorResponse, WebEventSession } from './internal/web.ts';

/** Tessera's SessionData, by a name that Astro's own `App.SessionData` (for `Astro.session`) does not hide. */
type TesseraSessionData = SessionData;

declare global {
  namespace App {
    interface Locals {
      /** The visitor's session (Tessera). Loaded from the store on first use. */
      session: Session<TesseraSessionData>;
    }
  }
}

/** Options of the Astro middleware. */
export interface AstroSessionOptions {
  /**
   * The client's IP address, which `setUser` records (see the engine's `devices`).
   * @default Astro's `context.clientAddress` (the adapter's: @astrojs/node gives the socket's peer)
   */
  clientIp?: (context: APIContext) => string | undefined;
}

const optionsSchema = v.strictObject({ clientIp: v.optional(func<NonNullable<AstroSessionOptions['clientIp']>>()) });
const same: Same<v.InferInput<typeof optionsSchema>, AstroSessionOptions> = true;
void same;

/**
 * Astro middleware (`src/middleware.ts`: `export const onRequest = session(engine)`):
 * `context.locals.session` (`Astro.locals.session` in pages) in every page and endpoint, lazy (a
 * request that never touches it costs no store call). The session is committed after the page
 * or endpoint answered, with its status known, and `Set-Cookie` is added to the response. A
 * store failure, in the commit or thrown by a page or an endpoint, answers 503. Compose it with
 * other middleware through `sequence()` from `astro:middleware`.
 *
 * ```ts
 * export const onRequest = session({ store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] });
 * ```
 */
export function session<D extends object = SessionData>(
  engineOrOptions: SessionEngine<D> | SessionOptions,
  options: AstroSessionOptions = {},
): MiddlewareHandler {
  const engine = (
    engineOrOptions instanceof SessionEngine ? engineOrOptions : new SessionEngine<D>(engineOrOptions)
  ) as SessionEngine<object>;
  check(optionsSchema, options, { scope: 'astro', label: 'session' });
  const clientIp = options.clientIp ?? ((context: APIContext) => context.clientAddress);
  const vary = varyOn(engine);
  return async function tesseraSession(context, next) {
    const request = new WebEventSession(engine, context, context.request, clientIp);
    context.locals.session = request.session as unknown as Session<TesseraSessionData>;
    let response: Response;
    try {
      response = await next();
    } catch (error) {
      // A page or an endpoint threw: no write for a 5xx (see commitOnServerError), and a store
      // failure answers with its status, where Astro would answer 500.
      request.status = isSessionError(error) ? error.status : 500;
      try {
        await engine.commit(request.session, request);
      } catch (failed) {
        if (!isSessionError(failed)) throw failed;
        return sessionErrorResponse(failed.status);
      }
      if (isSessionError(error) && error.status !== 500) return sessionErrorResponse(error.status);
      throw error;
    }
    return commitToResponse(engine, request, response, vary);
  };
}
