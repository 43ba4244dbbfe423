// stores: memory
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isSessionError } from '../../src/core/errors.ts';
import { MemoryStore, memoryStore } from '../../src/stores/memory.ts';
import { runStoreConformance } from '../../src/testing/index.ts';

runStoreConformance(
  { describe, it, beforeEach, afterEach },
  {
    name: 'memory',
    createStore: () => new MemoryStore(),
  },
);

describe('memory store options', () => {
  it('refuses a misspelt option with INVALID_OPTIONS listing the known ones', () => {
    assert.throws(
      () => new MemoryStore({ maxEntrys: 10 } as never),
      (e) =>
        isSessionError(e, 'INVALID_OPTIONS') &&
        /maxEntrys/.test((e as Error).message) &&
        /maxEntries/.test((e as Error).message),
    );
    assert.throws(
      () => memoryStore({ sweepInterval: 5 } as never),
      (e) => isSessionError(e, 'INVALID_OPTIONS'),
    );
    memoryStore({ maxEntries: 5, sweepIntervalMs: 1000, now: Date.now }).close();
  });
});
