import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionEngine } from '../src/core/engine.ts';
import { isSessionError } from '../src/core/errors.ts';
import type { Logger } from '../src/core/options.ts';
import { MemoryStore } from '../src/stores/memory.ts';

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
    const seen: Array<Error & { code?: string }> = [];
    const listener = (warning: Error) => seen.push(warning);
    process.on('warning', listener);
    try {
      new SessionEngine({ store, secrets: ['x'.repeat(32)] });
      new SessionEngine({ store, secrets: ['y'.repeat(32)] });
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        seen.map((w) => w.code),
        ['TESSERA_WEAK_SECRET'],
      );
    } finally {
      process.off('warning', listener);
    }
  });
});
