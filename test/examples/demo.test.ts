import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Browser } from '../support/browser.ts';

const root = new URL('../..', import.meta.url).pathname;

/** Starts the demo as `npm start` does; resolves with its URL once it says it is listening. */
function startDemo(dataDir: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/server.ts'], {
    cwd: root,
    env: { ...process.env, PORT: '0', TESSERA_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve({ child, base: match[1] as string });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the demo exited (${code}) before listening:\n${output}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe('the demo (npm start) on its embedded SQLite store', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-demo-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps a logged-in session across a restart of the process', async () => {
    const first = await startDemo(dataDir);
    const browser = new Browser(first.base);
    try {
      await browser.post('/login', { user: 'carol' });
      await browser.post('/increment');
      assert.deepEqual(JSON.parse((await browser.get('/api/state')).text), { user: 'carol', count: 1 });
    } finally {
      await stop(first.child);
    }

    const second = await startDemo(dataDir);
    try {
      const again = new Browser(second.base);
      for (const [name, value] of browser.jar) again.jar.set(name, value);
      assert.deepEqual(JSON.parse((await again.get('/api/state')).text), { user: 'carol', count: 1 });
      await again.post('/increment');
      assert.deepEqual(JSON.parse((await again.get('/api/state')).text), { user: 'carol', count: 2 });
    } finally {
      await stop(second.child);
    }
  });
});
