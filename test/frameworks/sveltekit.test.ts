// SvelteKit 2 with @sveltejs/adapter-node 5: the app in test/frameworks/apps/sveltekit is built
// with `vite build` once (in `before`), and its adapter-node handler (build/handler.js, what
// `node build` serves) answers the behaviour suite over HTTP.
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { ROOT } from '../support/packed.ts';
import { runBehaviourSuite } from './behaviour.ts';
import { type BuiltApp, buildApp, makeBuiltServer } from './built-app.ts';

type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

let app: BuiltApp | undefined;
let handler: NodeHandler | undefined;

describe('sveltekit (adapter-node build)', () => {
  before(async () => {
    // adapter-node takes the origin from ORIGIN (else https://<host>), read when handler.js loads:
    // the protocol decides Secure, and these servers are plain http.
    process.env.ORIGIN = 'http://127.0.0.1';
    app = await buildApp('sveltekit', [process.execPath, path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build']);
    console.log(`# vite build of the SvelteKit app: ${app.buildSeconds} s`);
    ({ handler } = (await import(path.join(app.dir, 'build/handler.js'))) as { handler: NodeHandler });
  });
  after(async () => {
    await app?.remove();
  });

  runBehaviourSuite(
    'sveltekit',
    makeBuiltServer(() => (req, res) => (handler as NodeHandler)(req, res)),
  );
});
