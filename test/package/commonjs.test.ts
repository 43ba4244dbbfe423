// CommonJS projects, as most Express apps and Nest 11's starter are. Tessera is an ES module, which
// a CommonJS project require()s on Node 20.19+ and 22.12+ (Node's require(esm)), as long as no
// module of it awaits at its top (subpaths.test.ts require()s every subpath). Here a TypeScript
// project compiled to CommonJS, from the packed tarball, two ways: "module": "commonjs" (TypeScript's
// node10 resolution, which reads `types` and `typesVersions`, never `exports`) and "module":
// "nodenext" in a package without "type": "module". Each build type-checks under `strict` against the
// published declarations (an @ts-expect-error proves they are not `any`) and runs: a NestJS 11 app
// and an Express app, driven over HTTP through a login and a logout. Then Jest 30, which Nest 11's
// starter runs, tests a Nest app with the configuration docs/frameworks/nestjs.md gives (read from
// the page): Jest's own require() takes no ES module before Node 24.9.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { drive } from '../../scripts/docs-test.ts';
import { freshProject, ROOT } from '../support/packed.ts';
import { freePort } from '../support/ports.ts';

const run = promisify(execFile);
const SECRET = 'K7pq9Lm2xVb8Nw4Rt6Yz1Hc3Jd5Fg0QsE';

/** Node's require(esm): unflagged from 20.19 and 22.12. */
const requiresEsm = (process.features as { require_module?: boolean }).require_module === true;

const NEST_APP = `import 'reflect-metadata';
import { Body, Controller, Get, Module, Post, Redirect } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SessionEngine, type Session } from 'tessera';
import { memoryStore } from 'tessera/memory';
import { CurrentSession, SessionModule } from 'tessera/nestjs';

declare module 'tessera' {
  interface SessionData { user: string }
}

// The published types are real, not \`any\`: a number is no store.
// @ts-expect-error
void (() => new SessionEngine({ store: 42, secrets: [] }));

@Controller()
class HomeController {
  @Get()
  async hello(@CurrentSession() session: Session) {
    return \`hello \${(await session.get('user')) ?? 'stranger'}\`;
  }

  @Post('login')
  @Redirect('/', 303)
  async login(@CurrentSession() session: Session, @Body('user') user: string) {
    await session.regenerate();
    await session.set('user', user);
  }

  @Post('logout')
  @Redirect('/', 303)
  async logout(@CurrentSession() session: Session) {
    await session.destroy();
  }
}

@Module({
  imports: [SessionModule.forRoot({ store: memoryStore(), secrets: [process.env.SESSION_SECRET] })],
  controllers: [HomeController],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: ['error'] });
  await app.listen(Number(process.env.PORT));
  console.log('listening');
  process.on('SIGTERM', () => void app.close());
}
void main();
`;

const EXPRESS_APP = `import express from 'express';
import { SessionEngine } from 'tessera';
import { session } from 'tessera/express';
import { memoryStore } from 'tessera/memory';

declare module 'tessera' {
  interface SessionData { user: string }
}

const engine = new SessionEngine({ store: memoryStore(), secrets: [process.env.SESSION_SECRET] });
// @ts-expect-error -- the published types are real: a session key is typed
void (async () => engine.session(undefined).set('user', 42));

const app = express();
app.use(express.urlencoded({ extended: false }));
app.use(session(engine));
app.get('/', async (req, res) => {
  res.send(\`hello \${(await req.session.get('user')) ?? 'stranger'}\`);
});
app.post('/login', async (req, res) => {
  await req.session.regenerate();
  await req.session.set('user', String(req.body.user));
  res.redirect(303, '/');
});
app.post('/logout', async (req, res) => {
  await req.session.destroy();
  res.redirect(303, '/');
});
const server = app.listen(Number(process.env.PORT), () => console.log('listening'));
process.on('SIGTERM', () => server.close(() => void engine.close()));
`;

const JEST_SPEC = `import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Session } from 'tessera';
import { memoryStore } from 'tessera/memory';
import { CurrentSession, SessionModule } from 'tessera/nestjs';

declare module 'tessera' {
  interface SessionData { user: string }
}

@Controller()
class HomeController {
  @Get()
  async hello(@CurrentSession() session: Session) {
    await session.set('user', 'alice');
    return 'hello';
  }
}

@Module({
  imports: [SessionModule.forRoot({ store: memoryStore(), secrets: ['${SECRET}'] })],
  controllers: [HomeController],
})
class AppModule {}

test('the Nest app answers with a session cookie', async () => {
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  try {
    const { port } = app.getHttpServer().address();
    const response = await fetch(\`http://127.0.0.1:\${port}/\`);
    expect(await response.text()).toBe('hello');
    expect(response.headers.get('set-cookie')).toMatch(/^tessera\\.sid=/);
  } finally {
    await app.close();
  }
});
`;

/** The Jest configuration docs/frameworks/nestjs.md gives: its JSON block with transformIgnorePatterns. */
async function documentedJestConfig(): Promise<Record<string, unknown>> {
  const page = await readFile(path.join(ROOT, 'docs/frameworks/nestjs.md'), 'utf8');
  const block = [...page.matchAll(/```json\n([\s\S]*?)```/g)].find((match) =>
    match[1]?.includes('transformIgnorePatterns'),
  );
  assert.ok(block?.[1], 'docs/frameworks/nestjs.md has a json block with transformIgnorePatterns');
  return JSON.parse(block[1]) as Record<string, unknown>;
}

const CHECKS = [
  { method: 'GET', path: '/', status: 200, text: 'hello stranger' },
  { method: 'POST', path: '/login', body: { type: 'form' as const, text: 'user=alice' }, status: 303 },
  { method: 'GET', path: '/', status: 200, text: 'hello alice' },
  { method: 'POST', path: '/logout', status: 303 },
  { method: 'GET', path: '/', status: 200, text: 'hello stranger' },
];

/** What every compile here shares: a strict project with Nest's legacy decorators, as Nest's starter has. */
const COMPILER = {
  target: 'ES2022',
  strict: true,
  esModuleInterop: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  skipLibCheck: true,
};

/** The module options of each build: both emit CommonJS. */
const BUILDS: Record<string, Record<string, unknown>> = {
  commonjs: { module: 'commonjs' },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext' },
};

/** Starts `node file` and resolves once it printed "listening" (or rejects when it exits first). */
function start(dir: string, file: string, port: number): { child: ChildProcess; listening: Promise<void> } {
  const child = spawn(process.execPath, [file], {
    cwd: dir,
    env: { ...process.env, PORT: String(port), SESSION_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const listening = new Promise<void>((resolve, reject) => {
    const exited = () => reject(new Error(`${file} exited (${child.exitCode ?? child.signalCode}):\n${text}`));
    child.once('exit', exited);
    child.stderr?.on('data', (chunk) => (text += chunk));
    child.stdout?.on('data', (chunk) => {
      text += chunk;
      if (!text.includes('listening')) return;
      child.off('exit', exited);
      resolve();
    });
  });
  return { child, listening };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe('a CommonJS TypeScript project (NestJS 11 and Express, from the packed tarball)', {
  skip: !requiresEsm && 'this Node has no require(esm) (Node 20.19+, 22.12+)',
}, () => {
  let dir = '';
  before(async () => {
    dir = await freshProject({
      dependencies: [
        '@nestjs/common@11',
        '@nestjs/core@11',
        '@nestjs/platform-express@11',
        'reflect-metadata',
        'rxjs',
        'express@5',
      ],
      devDependencies: ['@types/express@5', '@types/node@20', 'jest@30', 'ts-jest@29', '@types/jest@30'],
    });
    // freshProject makes an ES module project; this one is CommonJS, as `npm init` and Nest's starter make them.
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    pkg.type = 'commonjs';
    await writeFile(path.join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
    await mkdir(path.join(dir, 'src'));
    await writeFile(path.join(dir, 'src/nest.ts'), NEST_APP);
    await writeFile(path.join(dir, 'src/express.ts'), EXPRESS_APP);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs a Jest suite on a NestJS 11 app with the Jest configuration the NestJS page gives', async () => {
    await mkdir(path.join(dir, 'spec'));
    await writeFile(path.join(dir, 'spec/app.spec.ts'), JEST_SPEC);
    // ts-jest reads tsconfig.json: Nest's decorators are TypeScript's legacy ones.
    const tsconfig = {
      compilerOptions: { ...COMPILER, module: 'commonjs', types: ['node', 'jest'] },
      include: ['spec'],
    };
    await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    const config = {
      rootDir: 'spec',
      testRegex: '.*\\.spec\\.ts$',
      testEnvironment: 'node',
      ...(await documentedJestConfig()),
    };
    await writeFile(path.join(dir, 'jest.config.json'), JSON.stringify(config, null, 2));
    const jest = path.join(dir, 'node_modules/jest/bin/jest.js');
    const { stderr } = await run(process.execPath, [jest, '--config', 'jest.config.json', '--ci'], {
      cwd: dir,
      timeout: 120_000,
    }).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`jest failed:\n${error.stderr ?? ''}${error.stdout ?? ''}`);
    });
    assert.match(stderr, /Tests:\s+1 passed, 1 total/);
  });

  for (const [build, module] of Object.entries(BUILDS)) {
    describe(`compiled with "module": "${module.module}"`, () => {
      const out = `out-${build}`;
      it('type-checks against the published types and emits CommonJS', async () => {
        const tsconfig = {
          compilerOptions: { ...COMPILER, ...module, types: ['node'], outDir: out },
          include: ['src'],
        };
        await writeFile(path.join(dir, `tsconfig.${build}.json`), JSON.stringify(tsconfig, null, 2));
        const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
        await run(process.execPath, [tsc, '-p', `tsconfig.${build}.json`], { cwd: dir }).catch(
          (error: { stdout?: string }) => {
            throw new Error(`tsc -p tsconfig.${build}.json failed:\n${error.stdout ?? String(error)}`);
          },
        );
        for (const file of ['nest.js', 'express.js']) {
          const emitted = await readFile(path.join(dir, out, file), 'utf8');
          assert.match(emitted, /require\("tessera\//, `${file} require()s tessera`);
          assert.doesNotMatch(emitted, /^import /m, `${file} is CommonJS`);
        }
      });

      for (const app of ['nest', 'express']) {
        it(`runs the ${app === 'nest' ? 'NestJS 11' : 'Express'} app: login, then logout`, async () => {
          const port = await freePort();
          const { child, listening } = start(dir, path.join(out, `${app}.js`), port);
          try {
            await listening;
            assert.equal(await drive(port, CHECKS), null);
          } finally {
            await stop(child);
          }
        });
      }
    });
  }
});
