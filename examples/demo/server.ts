import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SessionEngine } from '../../src/core/engine.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { createDemoApp } from './app.ts';

const dataDir = process.env.TESSERA_DATA_DIR ?? join(process.cwd(), 'data');
mkdirSync(dataDir, { recursive: true });

/** A stable secret for the demo, kept beside its data so cookies survive a restart. */
function demoSecret(): string {
  if (process.env.SESSION_SECRET) return process.env.SESSION_SECRET;
  const file = join(dataDir, 'demo-secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    const secret = randomBytes(32).toString('base64url');
    writeFileSync(file, secret, { mode: 0o600 });
    return secret;
  }
}

// The embedded default: a SQLite file beside the secret, so sessions survive a restart.
const store = new SqlStore({ url: `sqlite:${join(dataDir, 'sessions.db')}`, pruneIntervalSeconds: 300 });
const engine = new SessionEngine({ store, secrets: [demoSecret()] });
await engine.ready();
const port = Number(process.env.PORT ?? 3000);
const server = createDemoApp(engine).listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`Tessera demo listening on http://127.0.0.1:${actual}`);
});

const shutdown = () => server.close(() => void engine.close());
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
