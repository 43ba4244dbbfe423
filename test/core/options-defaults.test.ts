import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import type { Logger } from '../../src/core/options.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

const run = promisify(execFile);
const secret = 'options-defaults-secret-0123456789abcdef';
const store = new MemoryStore();
const invalidOptions = (e: unknown) => isSessionError(e, 'INVALID_OPTIONS');

describe('cookie.sameSite none', () => {
  it('is refused unless the cookie is always Secure', () => {
    for (const secure of [false, 'auto', undefined] as const) {
      assert.throws(
        () => new SessionEngine({ store, secrets: [secret], cookie: { sameSite: 'none', secure } }),
        invalidOptions,
        `secure: ${String(secure)}`,
      );
    }
  });

  it('is accepted with secure: true or a __Host-/__Secure- name, and the cookie is Secure', async () => {
    const engines = [
      new SessionEngine({ store, secrets: [secret], cookie: { sameSite: 'none', secure: true } }),
      new SessionEngine({ store, secrets: [secret], cookie: { sameSite: 'none', name: '__Host-sid' } }),
      new SessionEngine({ store, secrets: [secret], cookie: { sameSite: 'none', name: '__Secure-sid' } }),
    ];
    for (const engine of engines) {
      const session = engine.session(undefined);
      await session.set('user', 'ann');
      const { setCookie } = await engine.commit(session, { secure: false });
      assert.match(setCookie ?? '', /SameSite=None/);
      assert.match(setCookie ?? '', /; Secure/);
    }
  });
});

describe('secrets', () => {
  it('an undefined entry or value is INVALID_OPTIONS saying it is undefined', () => {
    const env: Record<string, string | undefined> = {};
    for (const secrets of [[env.SESSION_SECRET], [secret, env.OLD_SECRET], env.SESSION_SECRET]) {
      assert.throws(
        () => new SessionEngine({ store, secrets }),
        (e) => invalidOptions(e) && /is undefined/.test((e as Error).message),
      );
    }
  });

  it('a low-variety secret is logged as a warning through the logger', () => {
    const warnings: object[] = [];
    const logger: Logger = { debug() {}, warn: (object) => void warnings.push(object), error() {} };
    new SessionEngine({ store, secrets: [secret], logger });
    assert.equal(warnings.length, 0);
    new SessionEngine({ store, secrets: [secret, 'a'.repeat(40)], logger });
    new SessionEngine({ store, secrets: ['passwordpasswordpasswordpassword'], logger });
    assert.deepEqual(warnings, [
      { code: 'TESSERA_WEAK_SECRET', secret: 1 },
      { code: 'TESSERA_WEAK_SECRET', secret: 0 },
    ]);
  });

  it('without a logger, a process warning with a code, once', async () => {
    // In a child process, so the warning Node prints stays out of this run's output.
    const script = [
      "import { SessionEngine } from './src/core/engine.ts';",
      "import { MemoryStore } from './src/stores/memory.ts';",
      "new SessionEngine({ store: new MemoryStore(), secrets: ['x'.repeat(32)] });",
      "new SessionEngine({ store: new MemoryStore(), secrets: ['y'.repeat(32)] });",
    ].join('\n');
    const { stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../..', import.meta.url).pathname,
    });
    const warnings = stderr.split('\n').filter((line) => line.includes('TESSERA_WEAK_SECRET'));
    assert.equal(warnings.length, 1, stderr);
  });
});
