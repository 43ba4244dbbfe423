import { afterEach, beforeEach, describe, it } from 'node:test';
import { MemoryStore } from '../src/stores/memory.ts';
import { runStoreConformance } from '../src/testing/index.ts';

runStoreConformance(
  { describe, it, beforeEach, afterEach },
  {
    name: 'memory',
    createStore: () => new MemoryStore(),
  },
);
