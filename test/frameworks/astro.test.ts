// Astro 5 with @astrojs/node 9 in middleware mode: the app in test/frameworks/apps/astro is built
// with `astro build` once (in `before`), and its handler (dist/server/entry.mjs, what a
// `node:http` or Express server mounts) answers the behaviour suite over HTTP.
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { ROOT } from '../support/packed.ts';
import { runBehaviourSuite } from './behaviour.ts';
import { type BuiltApp, buildApp, makeBuiltServer } from './built-app.ts';

type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

let app: BuiltApp | undefined;
let handler: NodeHandler | undefined;

describe('astro (@astrojs/node middleware build)', () => {
  before(async () => {
    app = await buildApp('astro', [process.execPath, path.join(ROOT, 'node_modules/astro/astro.js'), 'build']);
    console.log(`# astro build of the Astro app: ${app.buildSeconds} s`);
    ({ handler } = (await import(path.join(app.dir, 'dist/server/entry.mjs'))) as { handler: NodeHandler });
  });
  after(async () => {
    await app?.remove();
  });

  runBehaviourSuite(
    'astro',
    makeBuiltServer(() => (req, res) => (handler as NodeHandler)(req, res)),
  );
});
