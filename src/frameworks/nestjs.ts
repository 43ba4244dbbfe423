import type { IncomingMessage, ServerResponse } from 'node:http';
import type {
  ArgumentsHost,
  DynamicModule,
  ExecutionContext,
  InjectionToken,
  MiddlewareConsumer,
  ModuleMetadata,
  OptionalFactoryDependency,
} from '@nestjs/common';
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';
import { SessionEngine } from '../core/engine.ts';
import { SessionError } from '../core/errors.ts';
import type { SessionOptions } from '../core/options.ts';
import type { Session, SessionData } from '../core/session.ts';
import { varyOn } from './internal/cache-headers.ts';
import { respondWithError } from './internal/hold.ts';
import { inSlot, toSlot } from './internal/slots.ts';
import { commitSession, getSession, holdWhenNeeded } from './node.ts';

// Imported statically, not loaded by a top-level await: a module that awaits at its top cannot be
// require()d, and Nest apps are mostly CommonJS (Nest 11's starter). Not require()d either: under a
// loader such as tsx, require() of Nest 12's ES modules makes a second copy of them, whose
// HttpAdapterHost the app never provides. So without the Nest packages, loading tessera/nestjs fails
// with Node's own ERR_MODULE_NOT_FOUND, which names @nestjs/common.

/** The injection token of the `SessionEngine` the module uses: `@Inject(SESSION_ENGINE) engine: SessionEngine`. */
export const SESSION_ENGINE = 'TESSERA_SESSION_ENGINE';
/** Whether the module made the engine (and so closes it when the app shuts down). */
const OWNS_ENGINE = 'TESSERA_SESSION_ENGINE_OWNED';

/** Where the `node:http` request (what both Nest platforms share) keeps its session. */
const SESSION = Symbol('tessera.nest.session');

/** The `node:http` request under a platform's request (Fastify's `request.raw`; Express's is one already). */
function rawRequest(req: IncomingMessage | { raw: IncomingMessage }): IncomingMessage {
  return 'raw' in req && req.raw ? req.raw : (req as IncomingMessage);
}

/**
 * Nest middleware, on Express and on Fastify alike: it gives the request its session (lazy: no
 * store call until it is used) and holds the `node:http` response until the commit is done, so
 * the cookie goes out with the response head, whatever wrote it (a handler's return value, a
 * redirect, an exception filter). The module applies it to every route.
 */
class SessionMiddleware {
  readonly #engine: SessionEngine<object>;

  constructor(engine: SessionEngine<object>) {
    this.#engine = engine;
  }

  use(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void {
    const raw = rawRequest(req);
    if (inSlot(raw, SESSION)) {
      next();
      return;
    }
    toSlot(raw, SESSION, getSession(this.#engine, raw));
    const rawRes = (res as ServerResponse & { raw?: ServerResponse }).raw ?? res;
    holdWhenNeeded(
      raw,
      rawRes,
      (status) => commitSession(raw, rawRes, status),
      (error) => respondWithError(error, raw, rawRes),
      varyOn(this.#engine),
    );
    next();
  }
}
common.Injectable()(SessionMiddleware);
common.Inject(SESSION_ENGINE)(SessionMiddleware, undefined, 0);

/**
 * Answers a `SessionError` with its status (503 when the store failed) through Nest's own
 * exception handling, as an `HttpException` whose `cause` is the `SessionError`. Registered as a
 * global filter by the module; without it Nest would answer a store outage with 500.
 */
class SessionErrorFilter extends core.BaseExceptionFilter {
  override catch(error: SessionError, host: ArgumentsHost): void {
    const message = error.status === 503 ? 'Service Unavailable' : 'Session error';
    super.catch(new common.HttpException(message, error.status, { cause: error }), host);
  }
}
common.Catch(SessionError)(SessionErrorFilter);

/** Options of `SessionModule.forRootAsync()`, as Nest's own async modules take them. */
export interface SessionModuleAsyncOptions<D extends object = SessionData> extends Pick<ModuleMetadata, 'imports'> {
  /** Makes the engine or its options, from the providers named in `inject`. */
  useFactory: (...args: never[]) => SessionEngine<D> | SessionOptions | Promise<SessionEngine<D> | SessionOptions>;
  /**
   * The providers `useFactory` receives, in order.
   * @default []
   */
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
}

/**
 * The Nest module: sessions on every route, `@CurrentSession()` in handlers, the engine
 * injectable as {@link SESSION_ENGINE}, and store failures answered with 503. It is global: import
 * it once, in the root module. An engine the module made from options is closed when the app
 * shuts down (`app.close()`); one you pass in is yours to close.
 *
 * ```ts
 * @Module({ imports: [SessionModule.forRoot({ store: redisStore({ url }), secrets: [process.env.SESSION_SECRET] })] })
 * export class AppModule {}
 * ```
 */
export class SessionModule {
  readonly #engine: SessionEngine<object>;
  readonly #owned: boolean;

  constructor(engine: SessionEngine<object>, owned: boolean) {
    this.#engine = engine;
    this.#owned = owned;
  }

  /** @internal Nest calls it: the middleware runs for every route. */
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(SessionMiddleware).forRoutes('{*path}');
  }

  /** @internal Nest calls it on `app.close()`. */
  async onApplicationShutdown(): Promise<void> {
    if (this.#owned) await this.#engine.close();
  }

  /** Sessions from an engine, or from the options to make one. */
  static forRoot<D extends object = SessionData>(engineOrOptions: SessionEngine<D> | SessionOptions): DynamicModule {
    const owned = !(engineOrOptions instanceof SessionEngine);
    const engine = owned ? new SessionEngine<D>(engineOrOptions) : engineOrOptions;
    return SessionModule.#module([
      { provide: SESSION_ENGINE, useValue: engine },
      { provide: OWNS_ENGINE, useValue: owned },
    ]);
  }

  /** Sessions from an engine or options made by a factory (from a ConfigService, say). */
  static forRootAsync<D extends object = SessionData>(options: SessionModuleAsyncOptions<D>): DynamicModule {
    let owned = false;
    const make = async (...args: never[]) => {
      const made = await options.useFactory(...args);
      owned = !(made instanceof SessionEngine);
      return made instanceof SessionEngine ? made : new SessionEngine<D>(made);
    };
    return SessionModule.#module(
      [
        { provide: SESSION_ENGINE, useFactory: make, inject: options.inject ?? [] },
        { provide: OWNS_ENGINE, useFactory: () => owned, inject: [SESSION_ENGINE] },
      ],
      options.imports,
    );
  }

  static #module(
    providers: NonNullable<DynamicModule['providers']>,
    imports: ModuleMetadata['imports'] = [],
  ): DynamicModule {
    return {
      module: SessionModule,
      global: true,
      imports,
      providers: [...providers, SessionMiddleware, { provide: core.APP_FILTER, useClass: SessionErrorFilter }],
      exports: [SESSION_ENGINE],
    };
  }
}
common.Module({})(SessionModule);
common.Inject(SESSION_ENGINE)(SessionModule, undefined, 0);
common.Inject(OWNS_ENGINE)(SessionModule, undefined, 1);

/** The session of the request a Nest handler answers, on either platform. */
export function sessionOf<D extends object = SessionData>(
  request: IncomingMessage | { raw: IncomingMessage },
): Session<D> {
  const found = inSlot<Session<object>>(rawRequest(request), SESSION);
  if (!found) {
    throw new SessionError(
      'INVALID_STATE',
      'no session on this request: import SessionModule.forRoot() in the root module',
      {
        scope: 'nestjs',
      },
    );
  }
  return found as Session<D>;
}

/**
 * Parameter decorator: the request's session, typed by your `SessionData` (or
 * `@CurrentSession() session: Session<MyData>`).
 *
 * ```ts
 * @Get() async hello(@CurrentSession() session: Session) { return session.get('user'); }
 * ```
 */
export const CurrentSession: () => ParameterDecorator = common.createParamDecorator(
  (_data: unknown, context: ExecutionContext) => sessionOf(context.switchToHttp().getRequest()),
);
