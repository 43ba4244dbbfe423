/**
 * Bytes allocated on the JavaScript heap between two messages from the harness (it starts every
 * server with an IPC channel): `alloc-start`, then `alloc-stop`, answered with `{ allocated }`.
 *
 * V8 has no running total of allocations, so it is added up from its GC profile: each collection
 * reports the heap used before it, which is what the last one left plus everything allocated
 * since. Allocations that die between two collections are counted, which is the point (they are
 * what the collector spends its time on).
 */
import { GCProfiler, getHeapStatistics } from 'node:v8';

/** Counts the bytes allocated between `start()` and `stop()` (see above). */
export class AllocationCounter {
  #profiler: GCProfiler | null = null;
  #base = 0;

  start(): void {
    this.#profiler?.stop();
    this.#base = getHeapStatistics().used_heap_size;
    this.#profiler = new GCProfiler();
    this.#profiler.start();
  }

  stop(): number {
    const statistics = this.#profiler?.stop()?.statistics ?? [];
    this.#profiler = null;
    let allocated = 0;
    let left = this.#base;
    for (const gc of statistics) {
      allocated += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - left);
      left = gc.afterGC.heapStatistics.usedHeapSize;
    }
    return allocated + Math.max(0, getHeapStatistics().used_heap_size - left);
  }
}

export function measureAllocationsOnRequest(): void {
  if (!process.send) return;
  process.channel?.unref(); // the channel must not keep a stopping server alive
  const counter = new AllocationCounter();
  let counting = false;
  process.on('message', (message: unknown) => {
    if (message === 'alloc-start') {
      counter.start();
      counting = true;
    } else if (message === 'alloc-stop' && counting) {
      counting = false;
      process.send?.({ allocated: counter.stop() });
    }
  });
}
