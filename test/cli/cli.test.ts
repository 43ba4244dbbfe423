// stores: sqlite
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/index.ts';
import { SessionEngine } from '../../src/core/engine.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';

const secret = 'cli-test-secret-0123456789abcdefghijklm';
const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, TESSERA_SECRETS: secret },
  });

describe('the tessera command', () => {
  const url = `sqlite:${join(dir, 'cli.db')}`;

  it('doctor round-trips a probe record and reports capabilities', async () => {
    const { stdout } = await cli('--url', url, '--json', 'doctor');
    const report = JSON.parse(stdout);
    assert.equal(report.kind, 'sql');
    assert.equal(report.capabilities.atomicPatch, true);
    assert.equal(report.secrets, 'configured');
  });

  it('lists, inspects and revokes a user’s sessions', async () => {
    const store = new SqlStore({ url });
    const keys = [hashId(generateId()), hashId(generateId())];
    const now = Date.now();
    for (const key of keys) {
      await store.set(key, { fields: { cart: '["book"]' }, createdAt: now, expiresAt: now + 60_000, userId: 'erin' });
    }
    await store.close();
    const listed = JSON.parse((await cli('--url', url, '--json', 'list', '--user', 'erin')).stdout);
    assert.deepEqual(listed.sessions.map((s: { key: string }) => s.key).sort(), [...keys].sort());
    const inspected = JSON.parse((await cli('--url', url, '--json', 'inspect', keys[0] as string)).stdout);
    assert.deepEqual(inspected.fields, { cart: '8 bytes' });
    assert.equal(inspected.userId, 'erin');
    const revoked = JSON.parse((await cli('--url', url, '--json', 'revoke', '--user', 'erin')).stdout);
    assert.equal(revoked.destroyed, 2);
    assert.equal(JSON.parse((await cli('--url', url, '--json', 'count')).stdout).sessions, 0);
  });

  it('inspect --cookie verifies a cookie with the configured secrets and finds its session', async () => {
    const engine = new SessionEngine<{ cart: string[] }>({ store: new SqlStore({ url }), secrets: [secret] });
    const session = engine.session(undefined);
    await session.set('cart', ['book']);
    const cookie = (await engine.commit(session)).setCookie?.split(';')[0]?.split('=')[1] ?? '';
    await engine.close();
    const inspected = JSON.parse((await cli('--url', url, '--json', 'inspect', '--cookie', cookie)).stdout);
    assert.equal(inspected.found, true);
    assert.deepEqual(inspected.fields, { cart: '8 bytes' });
    await assert.rejects(cli('--url', url, 'inspect', '--cookie', `${cookie.slice(0, -2)}xx`), { code: 2 });
  });

  it('refuses a session block the app would refuse (doctor and count), with the app’s INVALID_OPTIONS', async () => {
    const sessions = [{ idleTimeoutSeconds: -5 }, { expire: 900 }, { cookie: { sameSite: 'none', secure: false } }];
    for (const [i, session] of sessions.entries()) {
      const file = join(dir, `refused-${i}.json`);
      writeFileSync(file, JSON.stringify({ store: url, session }));
      for (const command of ['doctor', 'count']) {
        await assert.rejects(cli('--config', file, command), (e: { code?: number; stderr?: string }) => {
          assert.equal(e.code, 1, `${command} ${JSON.stringify(session)}`);
          assert.match(e.stderr ?? '', /INVALID_OPTIONS/);
          return true;
        });
      }
    }
  });

  it('reports a configuration file’s problem as loadConfig names it: the file, the path, the did-you-mean', async () => {
    const file = join(dir, 'misspelt.yml');
    writeFileSync(file, `store:\n  url: ${url}\n  tabel: sessions\nsession:\n  idleTimeoutSeconds: 60\n`);
    const expected = await loadConfig(file).then(
      () => assert.fail('the file was accepted'),
      (error: Error) => error.message,
    );
    assert.match(expected, /misspelt\.yml: store\.tabel: is not a known option \(did you mean "table"\?\)/);
    for (const command of ['doctor', 'count']) {
      await assert.rejects(cli('--config', file, command), (e: { code?: number; stderr?: string }) => {
        assert.equal(e.code, 1, command);
        assert.equal(e.stderr, `tessera: ${expected} (INVALID_OPTIONS)\n`);
        return true;
      });
    }
  });

  it('names bad arguments and exits non-zero', async () => {
    await assert.rejects(cli('--url', url, 'inspect', 'not-a-key'), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr ?? '', /43 base64url characters/);
      return true;
    });
    await assert.rejects(cli('--url', 'mongodb://h/db', 'count'), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr ?? '', /INVALID_OPTIONS/);
      return true;
    });
    await assert.rejects(cli('--url', url, 'revoke'), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr ?? '', /exactly one of --key or --user/);
      return true;
    });
  });
});
