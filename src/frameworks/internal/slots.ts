/**
 * Per-request state kept in a property of the request object under a symbol, not in a WeakMap:
 * a WeakMap entry for every request is work for the garbage collector on every request (in the
 * Fastify adapter it cost more than the rest of the adapter: GC went from 17% to 4% of its CPU).
 */
export type Slotted<T> = { [slot: symbol]: T | undefined };

const symbols = new WeakMap<object, symbol>();

/** The symbol under which `owner` (an engine) keeps its state on request objects: one per owner. */
export function slotOf(owner: object): symbol {
  let symbol = symbols.get(owner);
  if (symbol === undefined) {
    symbol = Symbol('tessera');
    symbols.set(owner, symbol);
  }
  return symbol;
}

/** What `target` holds under `slot`. */
export function inSlot<T>(target: object, slot: symbol): T | undefined {
  return (target as Slotted<T>)[slot];
}

/** Puts `value` on `target` under `slot`. */
export function toSlot<T>(target: object, slot: symbol, value: T): T {
  (target as Slotted<T>)[slot] = value;
  return value;
}
