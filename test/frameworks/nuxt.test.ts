// Nuxt 4 (Nitro 2, h3 1): the app in test/frameworks/apps/nuxt is built with `nuxi build` once (in
// `before`) for Nitro's node-listener preset, and its listener (.output/server/index.mjs, the
// `node:http` handler that .output/server of the node-server preset serves) answers the behaviour
// suite over HTTP: `tessera/h3` as a server middleware, `defineEventHandler(session(engine))`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { ROOT } from '../support/packed.ts';
import { runBehaviourSuite } from './behaviour.ts';
import { type BuiltApp, buildApp, makeBuiltServer } from './built-app.ts';

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

let app: BuiltApp | undefined;
let listener: NodeHandler | undefined;

describe('nuxt 4 (nuxi build, Nitro node-listener)', () => {
  before(async () => {
    app = await buildApp(
      'nuxt',
      [process.execPath, path.join(ROOT, 'node_modules/@nuxt/cli/bin/nuxi.mjs'), 'build'],
      { NUXT_TELEMETRY_DISABLED: '1' },
      // A Nuxt 4 project has h3 1 at its top (Nitro 2's); this repository's top-level h3 is 2.
      { h3: 'nitropack/node_modules/h3' },
    );
    console.log(`# nuxi build of the Nuxt app: ${app.buildSeconds} s`);
    ({ listener } = (await import(path.join(app.dir, '.output/server/index.mjs'))) as { listener: NodeHandler });
  });
  after(async () => {
    await app?.remove();
  });

  runBehaviourSuite(
    'nuxt',
    makeBuiltServer(() => (req, res) => void (listener as NodeHandler)(req, res)),
  );
});
