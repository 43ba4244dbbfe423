import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { type CommitResult, type RequestContext, SessionEngine } from '../core/engine.ts';
import type { SessionOptions } from '../core/options.ts';
import type { ClientInfo, SessionData, Session as TesseraSession } from '../core/session.ts';
import { commitHeader, headerOf, headerText, sessionCacheHeaders, varyOn } from './internal/cache-headers.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The visitor's session (Tessera). Loaded from the store on first use. */
    session: TesseraSession<SessionData>;
  }
}

/** Where a request keeps its {@link RequestState}. */
const STATE = Symbol('tessera.state');

/** Options of the Fastify plugin: an engine you made, or the options to make one. */
export type FastifyTesseraOptions = { engine: SessionEngine<object> } | SessionOptions;

/**
 * A request's session and commit state, and its facts for the engine (read lazily: a getter on
 * a class, one shape for every request).
 */
class RequestState implements RequestContext, ClientInfo {
  readonly session: TesseraSession<object>;
  committed = false;
  status = 0;
  readonly #request: FastifyRequest;

  constructor(engine: SessionEngine<object>, request: FastifyRequest) {
    this.#request = request;
    this.session = engine.session(headerOf(request.headers[engine.requestHeader]), this);
  }

  get secure(): boolean {
    return this.#request.protocol === 'https';
  }

  get userAgent(): string | undefined {
    return this.#request.headers['user-agent'];
  }

  get ip(): string | undefined {
    return this.#request.ip;
  }
}

/**
 * Fastify plugin (not encapsulated, like a `fastify-plugin` one; name `tessera`). `request.session` is lazy: it is made on
 * first access from the Cookie header (no `@fastify/cookie` needed; registering it does no
 * harm), and a request that never touches it costs nothing. The session is committed in an
 * `onSend` hook, before the reply is written, and `Set-Cookie` is appended to the cookies
 * already set. Store failures are `SessionError`s with `status` 503, which Fastify's error
 * handler answers with 503.
 *
 * ```ts
 * await app.register(session, { store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] });
 * app.get('/', async (request) => ({ user: await request.session.get('user') }));
 * ```
 */
const plugin: FastifyPluginAsync<FastifyTesseraOptions> = async (fastify, options) => {
  const engine =
    'engine' in options && options.engine instanceof SessionEngine
      ? options.engine
      : new SessionEngine<object>(options as SessionOptions);
  // The request's state in a field Fastify gives every request (null until the session is used):
  // a WeakMap entry per request cost the garbage collector more than the rest of the adapter.
  fastify.decorateRequest(STATE, null);
  fastify.decorateRequest('session', {
    getter(this: FastifyRequest) {
      const request = this as FastifyRequest & { [STATE]: RequestState | null };
      const state = request[STATE] ?? (request[STATE] = new RequestState(engine, this));
      return state.session as unknown as TesseraSession<SessionData>;
    },
  });

  const vary = varyOn(engine);
  const apply = (reply: FastifyReply, result: CommitResult) => {
    const header = commitHeader(engine, result);
    if (!header) return;
    reply.header(header[0], header[1]);
    if (engine.options.cacheHeaders) {
      for (const [name, value] of sessionCacheHeaders((h) => headerText(reply.getHeader(h)), vary)) {
        reply.header(name, value);
      }
    }
  };

  // A callback hook, not an async one: a request whose commit has nothing to write costs no promise.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const state = (request as FastifyRequest & { [STATE]: RequestState | null })[STATE];
    // Commit once: an error reply (for instance after a failed commit) passes through onSend again.
    if (!state || state.committed) {
      done(null, payload);
      return;
    }
    state.committed = true;
    let result: CommitResult | Promise<CommitResult>;
    try {
      state.status = reply.statusCode;
      result = engine.settle(state.session, state);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (!(result instanceof Promise)) {
      apply(reply, result);
      done(null, payload);
      return;
    }
    result.then(
      (settled) => {
        apply(reply, settled);
        done(null, payload);
      },
      (error: Error) => done(error),
    );
  });
};

// What fastify-plugin does, without the dependency: skip-override makes the hooks and the
// decorator apply to the whole instance (routes registered outside the plugin included), and the
// meta gives Fastify the name for hasPlugin() / dependencies and the supported majors.
Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'tessera',
  [Symbol.for('plugin-meta')]: { name: 'tessera', fastify: '4.x || 5.x' },
});

/** The Tessera session plugin for Fastify 4 and 5 (needs nothing beyond `fastify`). */
export const session = plugin;
export default session;
