// test/runtimes/app.ts as a Cloudflare Worker (module syntax) on the memory store: one isolate,
// so one store for every request. Bundled by test/runtimes/workerd.test.ts, without nodejs_compat.
import { MemoryStore } from '../../src/stores/memory.ts';
import { makeApp } from './app.ts';

const fetch = makeApp(new MemoryStore(), 'workerd');
export default { fetch };
