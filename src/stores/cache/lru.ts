/**
 * A least-recently-used map bounded by entry count and by an estimate of bytes. Map keeps
 * insertion order, so re-inserting on every hit makes the first key the least recently used.
 */
export class LruMap<V> {
  readonly #entries = new Map<string, { value: V; bytes: number }>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #bytes = 0;
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
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, bytes: number): void {
    this.delete(key);
    if (bytes > this.#maxBytes) return;
    this.#entries.set(key, { value, bytes });
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
