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

export function measureAllocationsOnRequest(): void {
  if (!process.send) return;
  process.channel?.unref(); // the channel must not keep a stopping server alive
  let profiler: GCProfiler | null = null;
  let base = 0;
  process.on('message', (message: unknown) => {
    if (message === 'alloc-start') {
      profiler?.stop();
      base = getHeapStatistics().used_heap_size;
      profiler = new GCProfiler();
      profiler.start();
    } else if (message === 'alloc-stop' && profiler) {
      const { statistics } = profiler.stop();
      profiler = null;
      let allocated = 0;
      let left = base;
      for (const gc of statistics) {
        allocated += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - left);
        left = gc.afterGC.heapStatistics.usedHeapSize;
      }
      allocated += Math.max(0, getHeapStatistics().used_heap_size - left);
      process.send?.({ allocated });
    }
  });
}
