/**
 * A least-recently-used map bounded by entry count and by an estimate of bytes. Map keeps
 * insertion order, so re-inserting an entry makes it the most recently used and the first key
 * the least. A hit re-inserts only an entry that has fallen into the older half: the ones used
 * lately stay where they are, and a hit on them costs a lookup, not a delete and an insert.
 */
export class LruMap<V> {
  readonly #entries = new Map<string, { value: V; bytes: number; at: number }>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #bytes = 0;
  /** Counts insertions; an entry's `at` is the count when it was last inserted. */
  #clock = 0;
  /** Entries dropped to stay within bounds. */
  evictions = 0;

  constructor(maxEntries: number, maxBytes: number) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (this.#clock - entry.at > this.#entries.size / 2) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      entry.at = ++this.#clock;
    }
    return entry.value;
  }

  set(key: string, value: V, bytes: number): void {
    this.delete(key);
    if (bytes > this.#maxBytes) return;
    this.#entries.set(key, { value, bytes, at: ++this.#clock });
    this.#bytes += bytes;
    while (this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      const oldest = this.#entries.keys().next().value as string;
      this.delete(oldest);
      this.evictions++;
    }
  }

  delete(key: string): boolean {
    const entry = this.#entries.get(key);
    if (!entry) return false;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    return true;
  }

  /** Deletes every entry whose value matches; returns how many. */
  deleteWhere(matches: (value: V) => boolean): number {
    let count = 0;
    for (const [key, entry] of this.#entries) {
      if (matches(entry.value) && this.delete(key)) count++;
    }
    return count;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
