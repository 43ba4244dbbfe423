// The conformance suite itself: a createStore that gives nothing is named, not a TypeError.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Store } from '../../src/core/store.ts';
import { runStoreConformance, type TestApi } from '../../src/testing/index.ts';

type Fn = () => unknown;

describe('runStoreConformance', () => {
  it('names createStore when it gives no store, with INVALID_OPTIONS', async () => {
    // A runner that records what the suite registers, so one case can be run by hand.
    const tests: Fn[] = [];
    const hooks: { before: Fn[]; after: Fn[] } = { before: [], after: [] };
    const api: TestApi = {
      describe: (_name, fn) => fn(),
      it: (_name, fn) => tests.push(fn as Fn),
      beforeEach: (fn) => hooks.before.push(fn as Fn),
      afterEach: (fn) => hooks.after.push(fn as Fn),
    };
    runStoreConformance(api, { name: 'nothing', createStore: () => undefined as unknown as Store });
    assert.ok(tests.length > 0);
    for (const hook of hooks.before) await hook();
    await assert.rejects(async () => (tests[0] as Fn)(), {
      name: 'SessionError',
      code: 'INVALID_OPTIONS',
      message:
        '[tessera] [testing] runStoreConformance: createStore gave no store: it must return the store to test (or a promise of one)',
    });
    for (const hook of hooks.after) await hook();
  });
});
