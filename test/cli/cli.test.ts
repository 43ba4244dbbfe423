// stores: sqlite redis
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/index.ts';
import { SessionEngine } from '../../src/core/engine.ts';
import { generateId, hashId } from '../../src/core/ids.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';
import { startRedis } from '../support/redis-servers.ts';

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

  it('init creates the table; the other commands never create a database file or a table', async () => {
    const missing = join(dir, 'missing', 'never.db');
    for (const command of [['count'], ['stats'], ['list'], ['doctor'], ['prune'], ['revoke', '--user', 'x']]) {
      await assert.rejects(cli('--url', `sqlite:${missing}`, ...command), (e: { code?: number; stderr?: string }) => {
        assert.equal(e.code, 1, command.join(' '));
        assert.match(
          e.stderr ?? '',
          /does not exist, and createTable is false so it is not created \(INVALID_OPTIONS\)/,
        );
        return true;
      });
    }
    assert.equal(existsSync(missing), false, 'no file was made');
    const fresh = `sqlite:${join(dir, 'fresh.db')}`;
    const { stdout } = await cli('--url', fresh, '--json', 'init');
    assert.deepEqual(JSON.parse(stdout), { store: 'sql', ready: true });
    assert.equal(JSON.parse((await cli('--url', fresh, '--json', 'count')).stdout).sessions, 0);
  });

  it('migrate shows a progress bar with rate and ETA on a terminal, plain lines otherwise', async (t) => {
    const { execFileSync } = await import('node:child_process');
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
    } catch {
      t.skip('no `script` (util-linux) to give the command a terminal');
      return;
    }
    const from = `sqlite:${join(dir, 'progress.db')}`;
    const store = new SqlStore({ url: from });
    const now = Date.now();
    await store.setMany(
      Array.from({ length: 30 }, () => [
        hashId(generateId()),
        { fields: {}, createdAt: now, expiresAt: now + 60_000, userId: null },
      ]),
    );
    await store.close();
    const root = new URL('../..', import.meta.url).pathname;
    const command = `${process.execPath} --import tsx src/cli/index.ts migrate --from ${from} --to memory:`;
    // `script` runs the command on a pseudo-terminal: stderr.isTTY is true there.
    const { stdout } = await run('script', ['-qec', command, '/dev/null'], { cwd: root });
    assert.match(stdout, /migrate: \[[█░]+\] 100% \| 30\/30 sessions \| \d+ sessions\/s \| ETA 0s/);
    const plain = await cli('migrate', '--from', from, '--to', 'memory:');
    assert.match(plain.stderr, /^migrate: 30 of 30 \(100%\) sessions, \d+ sessions\/s, ETA 0 s$/m);
    assert.doesNotMatch(plain.stderr, /█/);
  });

  it('--version prints the package version; --help documents every command and the exit codes', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    assert.equal((await cli('--version')).stdout.trim(), version);
    const help = (await cli('--help')).stdout;
    for (const command of ['init', 'doctor', 'migrate', 'prune', 'count', 'stats', 'list', 'inspect', 'revoke']) {
      assert.match(help, new RegExp(`^  ${command}\\b`, 'm'), `${command} is in --help`);
      const own = (await cli(command, '--help')).stdout;
      assert.match(own, new RegExp(`^Usage: tessera ${command}`, 'm'));
    }
    assert.match(help, /Exit codes:\n {2}0 +done\n {2}1 .*\n {2}2 +bad arguments\n {2}3 +nothing found/);
  });

  it('doctor checks the configuration, the table, a probe record, the expiry policy and the clock', async () => {
    await cli('--url', url, 'init');
    const { stdout } = await cli('--url', url, '--json', 'doctor');
    const report = JSON.parse(stdout);
    assert.equal(report.kind, 'sql');
    const status = Object.fromEntries(report.checks.map((c: { check: string; status: string }) => [c.check, c.status]));
    assert.deepEqual(status, {
      configuration: 'ok',
      secrets: 'ok',
      'store shape': 'ok',
      probe: 'ok',
      expiry: 'warn', // no pruneIntervalSeconds and a store that does not expire by itself
      clock: 'ok',
      capabilities: 'ok',
    });
    const text = (await cli('--url', url, 'doctor')).stdout;
    assert.match(text, /^check +status +detail$/m);
    assert.match(text, /^expiry +warn +sessions end after 15 min idle, 7 d at most; expired records are never read/m);
    const pruning = join(dir, 'pruning.json');
    writeFileSync(pruning, JSON.stringify({ store: { url, pruneIntervalSeconds: 600 } }));
    assert.match((await cli('--config', pruning, 'doctor')).stdout, /^expiry +ok +.*pruned every 10 min$/m);
    // A table without the store's columns: the shape check fails, exit 1, with the store's own message.
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ store: { url, table: 'not_ours' } }));
    const sqlite = new (await import('better-sqlite3')).default(join(dir, 'cli.db'));
    sqlite.exec('CREATE TABLE not_ours (id TEXT)');
    sqlite.close();
    await assert.rejects(cli('--config', bad, 'doctor'), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr ?? '', /table "not_ours" lacks the column\(s\) .* \(INVALID_OPTIONS\)/);
      return true;
    });
  });

  it('stats and list read every session: by age, user, size and expiry; an aligned table or JSON', async () => {
    const file = `sqlite:${join(dir, 'stats.db')}`;
    const store = new SqlStore({ url: file });
    const now = Date.now();
    const keys: string[] = [];
    for (let i = 0; i < 12; i++) {
      const key = hashId(generateId());
      keys.push(key);
      await store.set(key, {
        fields: { data: JSON.stringify('x'.repeat(i * 10)) },
        createdAt: now - (i < 4 ? 60_000 : 2 * 86_400_000),
        expiresAt: now + (i < 3 ? 120_000 : 86_400_000 * 2),
        userId: i < 5 ? 'ann' : i < 7 ? 'bob' : null,
      });
    }
    await store.close();
    const stats = JSON.parse((await cli('--url', file, '--json', 'stats')).stdout);
    assert.equal(stats.sessions, 12);
    assert.deepEqual([stats.withUser, stats.anonymous, stats.users], [7, 5, 2]);
    assert.deepEqual(stats.byAge, { '< 1 h': 4, '1 h - 1 d': 0, '1 - 7 d': 8, '7 - 30 d': 0, '> 30 d': 0 });
    assert.deepEqual(stats.expiring, { 'within 5 min': 3, 'within 1 h': 3, 'within 1 d': 3 });
    assert.deepEqual(stats.topUsers, [
      { user: 'ann', sessions: 5 },
      { user: 'bob', sessions: 2 },
    ]);
    assert.equal(stats.sizeBytes.min, 4 + 2);
    assert.equal(stats.sizeBytes.max, 4 + 112);
    const text = (await cli('--url', file, 'stats')).stdout;
    assert.match(text, /^sessions: 12 \(7 with a user, 5 anonymous; 2 users\)$/m);
    assert.match(text, /^1 - 7 d +8$/m);

    const listed = JSON.parse((await cli('--url', file, '--json', 'list')).stdout);
    assert.deepEqual(listed.map((s: { key: string }) => s.key).sort(), [...keys].sort());
    const table = (await cli('--url', file, 'list', '--limit', '5')).stdout.trimEnd().split('\n');
    assert.match(table[0] ?? '', /^key +user +created +expires +bytes$/);
    assert.equal(table.length, 1 + 5 + 1);
    assert.equal(table[6], '(first 5; --limit for more)');
    // Aligned: every row's columns start where the header's do.
    const userColumn = (table[0] ?? '').indexOf('user');
    for (const row of table.slice(1, 6)) {
      assert.match(row.slice(0, userColumn), /^[A-Za-z0-9_-]{43} +$/, 'keys padded to the user column');
    }
    const ann = (await cli('--url', file, 'list', '--user', 'ann')).stdout.trimEnd().split('\n');
    assert.match(ann[0] ?? '', /^key +user +created +expires$/);
    assert.equal(ann.length, 6);
    assert.equal((await cli('--url', file, 'list', '--user', 'nobody')).stdout, 'no sessions of user nobody\n');
  });

  it('revoke --key and inspect say when the key does not exist (exit 3); prune shows its progress', async () => {
    const absent = hashId(generateId());
    for (const args of [
      ['revoke', '--key', absent],
      ['inspect', absent],
    ]) {
      await assert.rejects(cli('--url', url, ...args), (e: { code?: number; stderr?: string }) => {
        assert.equal(e.code, 3, args.join(' '));
        assert.equal(e.stderr, `tessera: no live session with key ${absent}\n`);
        return true;
      });
    }
    const store = new SqlStore({ url, pruneBatchSize: 100 });
    const now = Date.now();
    const key = hashId(generateId());
    await store.set(key, { fields: {}, createdAt: now, expiresAt: now + 60_000, userId: null });
    await store.setMany(
      Array.from({ length: 250 }, () => [
        hashId(generateId()),
        { fields: {}, createdAt: now - 10_000, expiresAt: now - 1000, userId: null },
      ]),
    );
    await store.close();
    const revoked = await cli('--url', url, '--json', 'revoke', '--key', key);
    assert.equal(JSON.parse(revoked.stdout).destroyed, key.slice(0, 10));
    const pruned = await cli('--url', url, '--json', 'prune');
    assert.equal(JSON.parse(pruned.stdout).deleted, 250);
    assert.match(pruned.stderr, /^prune: 250 sessions, \d+ sessions\/s$/m);
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
    assert.deepEqual(
      listed.map((s: { key: string; user: string }) => [s.key, s.user]).sort(),
      keys.map((k) => [k, 'erin']).sort(),
    );
    const inspected = JSON.parse((await cli('--url', url, '--json', 'inspect', keys[0] as string)).stdout);
    assert.deepEqual(inspected.fields, { cart: '8 bytes' });
    assert.equal(inspected.userId, 'erin');
    const revoked = JSON.parse((await cli('--url', url, '--json', 'revoke', '--user', 'erin')).stdout);
    assert.equal(revoked.destroyed, 2);
    assert.equal(JSON.parse((await cli('--url', url, '--json', 'count')).stdout).sessions, 0);
  });

  it('takes a key that starts with "-" (one in 64 does) as a key, and still names a mistyped option', async () => {
    let key = hashId(generateId());
    while (!key.startsWith('-')) key = hashId(generateId());
    const store = new SqlStore({ url });
    const now = Date.now();
    await store.set(key, { fields: { cart: '["pen"]' }, createdAt: now, expiresAt: now + 60_000, userId: null });
    await store.close();
    const inspected = JSON.parse((await cli('--url', url, '--json', 'inspect', key, '--values')).stdout);
    assert.deepEqual([inspected.key, inspected.fields], [key, { cart: '["pen"]' }]);
    await assert.rejects(cli('--url', url, 'inspect', '--valeus', key), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr ?? '', /unknown option '--valeus'/);
      return true;
    });
    assert.equal(
      JSON.parse((await cli('--url', url, '--json', 'revoke', '--key', key)).stdout).destroyed,
      key.slice(0, 10),
    );
    await assert.rejects(cli('--url', url, 'inspect', key), { code: 3 });
  });

  it('inspect --cookie verifies a cookie with the configured secrets and finds its session', async () => {
    const engine = new SessionEngine<{ cart: string[] }>({ store: new SqlStore({ url }), secrets: [secret] });
    const session = engine.session(undefined);
    await session.set('cart', ['book']);
    const cookie = (await engine.commit(session)).setCookie?.split(';')[0]?.split('=')[1] ?? '';
    await engine.close();
    const inspected = JSON.parse((await cli('--url', url, '--json', 'inspect', '--cookie', cookie)).stdout);
    assert.equal(inspected.key, hashId(cookie.split('.')[0] as string));
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

describe('tessera doctor on Redis', () => {
  it('checks that Redis expires the probe key itself, and warns of a policy that evicts live sessions', async () => {
    const server = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    try {
      const url = `${server.url}/0`;
      const report = JSON.parse((await cli('--url', url, '--json', 'doctor')).stdout);
      const check = report.checks.find((c: { check: string }) => c.check === 'redis expiry');
      assert.equal(check?.status, 'warn');
      assert.match(
        check.detail,
        /the probe key expires in (59|60) s \(PTTL\), as written; maxmemory-policy allkeys-lru evicts live sessions/,
      );
      const { createClient } = await import('redis');
      const admin = createClient({ url: server.url });
      await admin.connect();
      await admin.configSet('maxmemory-policy', 'noeviction');
      await admin.close();
      const text = (await cli('--url', url, 'doctor')).stdout;
      assert.match(
        text,
        /^redis expiry +ok +the probe key expires in (59|60) s \(PTTL\), as written; maxmemory-policy noeviction$/m,
      );
      assert.match(text, /^expiry +ok +.*the store expires records itself$/m);
    } finally {
      await server.stop();
    }
  });
});
