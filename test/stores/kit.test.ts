import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedQueue } from '../../src/store.ts';

/** A write the test settles by hand, recording the ops it was given. */
class Writes {
  readonly calls: string[][] = [];
  readonly #pending: { resolve(results: string[]): void; reject(error: Error): void }[] = [];

  readonly write = (ops: string[]): Promise<string[]> => {
    this.calls.push(ops);
    return new Promise((resolve, reject) => this.#pending.push({ resolve, reject }));
  };

  /** Settles the oldest write still running, with one result per op. */
  finish(): void {
    const ops = this.calls[this.calls.length - this.#pending.length] as string[];
    this.#pending.shift()?.resolve(ops.map((op) => `done ${op}`));
  }

  fail(message: string): void {
    this.#pending.shift()?.reject(new Error(message));
  }
}

/** Lets every settled promise's callbacks run. */
const drain = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('KeyedQueue (store kit)', () => {
  it('writes a change to an idle key at once, alone', async () => {
    const queue = new KeyedQueue();
    const writes = new Writes();
    const result = queue.batch('a', 'x', writes.write);
    assert.deepEqual(writes.calls, [['x']]);
    writes.finish();
    assert.equal(await result, 'done x');
  });

  it('batches the changes that arrive during a write, in order, and writes them after it', async () => {
    const queue = new KeyedQueue();
    const writes = new Writes();
    const first = queue.batch('a', '1', writes.write);
    const second = queue.batch('a', '2', writes.write);
    const third = queue.batch('a', '3', writes.write);
    await drain();
    assert.deepEqual(writes.calls, [['1']], 'the batch waits for the write in flight');
    writes.finish();
    assert.equal(await first, 'done 1');
    await drain();
    assert.deepEqual(writes.calls, [['1'], ['2', '3']]);
    writes.finish();
    assert.deepEqual(await Promise.all([second, third]), ['done 2', 'done 3']);
    // Everything settled: the key is idle again, and the next change is written at once.
    await drain();
    const fourth = queue.batch('a', '4', writes.write);
    assert.deepEqual(writes.calls.at(-1), ['4']);
    writes.finish();
    assert.equal(await fourth, 'done 4');
  });

  it('rejects every change of a failed batch, and the next batch still runs', async () => {
    const queue = new KeyedQueue();
    const writes = new Writes();
    const first = queue.batch('a', '1', writes.write);
    const second = queue.batch('a', '2', writes.write);
    const third = queue.batch('a', '3', writes.write);
    writes.fail('first failed');
    await assert.rejects(first, /first failed/);
    await drain();
    writes.fail('batch failed');
    await assert.rejects(second, /batch failed/);
    await assert.rejects(third, /batch failed/);
    const fourth = queue.batch('a', '4', writes.write);
    writes.finish();
    assert.equal(await fourth, 'done 4');
  });

  it('turns a write that throws at once into a rejection', async () => {
    const queue = new KeyedQueue();
    const result = queue.batch('a', 'x', () => {
      throw new Error('thrown');
    });
    await assert.rejects(result, /thrown/);
    const ran = await queue.run('a', async () => 'after');
    assert.equal(ran, 'after');
  });

  it('runs a whole-key write after the batch in flight, and later changes after it', async () => {
    const queue = new KeyedQueue();
    const writes = new Writes();
    const order: string[] = [];
    const first = queue.batch('a', '1', writes.write).then((r) => order.push(r));
    const exclusive = queue.run('a', async () => {
      order.push('run');
      return 'run';
    });
    const later = queue.batch('a', '2', writes.write).then((r) => order.push(r));
    await drain();
    assert.deepEqual(order, []);
    writes.finish();
    assert.equal(await exclusive, 'run');
    await drain();
    writes.finish();
    await Promise.all([first, later]);
    assert.deepEqual(order, ['done 1', 'run', 'done 2']);
  });

  it('keeps keys apart: a write of one key does not wait for another', async () => {
    const queue = new KeyedQueue();
    const writes = new Writes();
    void queue.batch('a', 'a1', writes.write);
    const b = queue.batch('b', 'b1', writes.write);
    assert.deepEqual(writes.calls, [['a1'], ['b1']]);
    writes.finish();
    writes.finish();
    assert.equal(await b, 'done b1');
  });
});
