import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, describe, it } from 'node:test';
import {
  Controller,
  Get,
  Header,
  HttpCode,
  type INestApplication,
  Inject,
  Module,
  Post,
  Query,
  Redirect,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { SessionEngine } from '../../src/core/engine.ts';
import type { Session } from '../../src/core/session.ts';
import { CurrentSession, SESSION_ENGINE, SessionModule } from '../../src/frameworks/nestjs.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { Browser, close, listen } from '../support/browser.ts';
import { actions, COOKIE, type MakeServer, runBehaviourSuite, secrets, THEME_COOKIE } from './behaviour.ts';

// Parameter types are spelled out with @Inject/@Query names: tsx (esbuild) emits no design:paramtypes.
@Controller()
class AppController {
  @Get('public')
  public() {
    return 'public';
  }

  @Get('state')
  state(@CurrentSession() session: Session) {
    return actions.state(session);
  }

  @Post('login')
  @Header('Set-Cookie', THEME_COOKIE)
  @Redirect('/state', 303)
  async login(@CurrentSession() session: Session, @Query('user') user: string) {
    await actions.login(session, user ?? '');
  }

  @Post('increment')
  @HttpCode(200)
  increment(@CurrentSession() session: Session) {
    return actions.increment(session);
  }

  @Post('logout')
  @Redirect('/', 303)
  async logout(@CurrentSession() session: Session) {
    await actions.logout(session);
  }

  @Post('cached')
  @HttpCode(200)
  @Header('Cache-Control', 'no-cache')
  @Header('Vary', 'Accept-Encoding')
  cached(@CurrentSession() session: Session) {
    return actions.increment(session);
  }

  @Post('fail')
  @HttpCode(500)
  async fail(@CurrentSession() session: Session) {
    await actions.increment(session);
    return 'failed';
  }

  @Post('throw')
  async throws(@CurrentSession() session: Session) {
    await actions.increment(session);
    throw new Error('route failed');
  }
}

const apps: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const app of apps) await app.close();
});

/** Initialises the app; Fastify builds its hooks on `ready()`, which `app.listen()` would have called. */
async function ready(app: INestApplication): Promise<void> {
  await app.init();
  const instance = app.getHttpAdapter().getInstance() as { ready?: () => Promise<unknown> };
  if (adapterIsFastify(app)) await instance.ready?.();
}
const adapterIsFastify = (app: INestApplication) => app.getHttpAdapter() instanceof FastifyAdapter;

/** A Nest app on the given platform around the engine, initialised but not listening. */
function makeNestServer(platform: 'express' | 'fastify'): MakeServer {
  return async (engine) => {
    @Module({ imports: [SessionModule.forRoot(engine)], controllers: [AppController] })
    class AppModule {}
    const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
    const app = await NestFactory.create(AppModule, adapter, { logger: false });
    await ready(app);
    apps.push(app);
    return app.getHttpServer() as Server;
  };
}

runBehaviourSuite('nestjs on express', makeNestServer('express'));
runBehaviourSuite('nestjs on fastify', makeNestServer('fastify'));

describe('SessionModule.forRootAsync', () => {
  it('makes the engine from a factory with injected providers, injects it, and closes it on app.close()', async () => {
    let closed = false;
    // A store per app, whose close() is seen.
    const newStore = () => {
      const made = new MemoryStore();
      const closeStore = made.close.bind(made);
      made.close = async () => {
        closed = true;
        await closeStore();
      };
      return made;
    };
    let store = newStore();

    @Module({ providers: [{ provide: 'SECRETS', useValue: secrets }], exports: ['SECRETS'] })
    class ConfigModule {}

    @Controller()
    class EngineController {
      constructor(@Inject(SESSION_ENGINE) readonly engine: SessionEngine) {}

      @Post('login')
      @HttpCode(200)
      async login(@CurrentSession() session: Session) {
        await actions.login(session, 'olga');
        return 'ok';
      }

      @Get('devices')
      async devices() {
        return { sessions: (await this.engine.listUserSessions('olga')).length };
      }
    }

    @Module({
      imports: [
        SessionModule.forRootAsync({
          imports: [ConfigModule],
          inject: ['SECRETS'],
          useFactory: async (...args: never[]) => ({ store, secrets: args[0] as unknown as string[] }),
        }),
      ],
      controllers: [EngineController],
    })
    class AppModule {}

    for (const platform of ['express', 'fastify'] as const) {
      closed = false;
      store = newStore();
      const app = await NestFactory.create(
        AppModule,
        platform === 'express' ? new ExpressAdapter() : new FastifyAdapter(),
        { logger: false },
      );
      await ready(app);
      const server = app.getHttpServer() as Server;
      const base = await listen(server);
      try {
        const browser = new Browser(base);
        const response = await browser.post('/login');
        assert.equal(response.status, 200, platform);
        assert.ok(browser.jar.has(COOKIE), platform);
        const devices = await browser.get('/devices');
        assert.deepEqual(JSON.parse(devices.text), { sessions: 1 }, `${platform}: the injected engine is the module's`);
        await browser.post('/login'); // a second login regenerates: still one session of olga's
      } finally {
        await close(server);
        await app.close();
      }
      assert.equal(closed, true, `${platform}: the engine the module made is closed with the app`);
    }
  });
});
