// `STORES=redis,postgres npm test` runs the tests of those stores only, and the service bootstrap
// starts only their servers. Unset, every store is selected.
//
// A test file that is about particular stores says so in a header line, `// stores: redis`, which
// scripts/test.sh reads to leave out a file none of whose stores is selected. Inside a file about
// several stores, each store's suite takes `only(store)` (skipped, and reported as skipped, when its
// store is left out), and a suite that needs several servers at once takes `needs(...)`.

/** The names STORES accepts; `mariadb` is read as `mysql`. */
export const STORE_NAMES = ['memory', 'sqlite', 'postgres', 'mysql', 'redis', 'elasticsearch'] as const;
export type StoreName = (typeof STORE_NAMES)[number];

function parse(value: string | undefined): ReadonlySet<StoreName> | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const names = new Set<StoreName>();
  for (const raw of value.split(/[\s,]+/).filter(Boolean)) {
    const name = raw === 'mariadb' ? 'mysql' : raw;
    if (!(STORE_NAMES as readonly string[]).includes(name)) {
      throw new Error(`STORES: unknown store "${raw}"; use a comma-separated list of ${STORE_NAMES.join(', ')}`);
    }
    names.add(name as StoreName);
  }
  return names;
}

const chosen = parse(process.env.STORES);

/** True when STORES is unset or names the store. */
export function selected(store: StoreName): boolean {
  return chosen === undefined || chosen.has(store);
}

/** Options for `describe(name, only('postgres'), fn)`: skipped, with the reason, when left out. */
export function only(store: StoreName): { skip?: string } {
  return selected(store) ? {} : { skip: `STORES=${process.env.STORES} leaves out ${store}` };
}

/** Options for a suite that needs every one of these stores' servers at once. */
export function needs(...stores: StoreName[]): { skip?: string } {
  const missing = stores.filter((store) => !selected(store));
  return missing.length === 0 ? {} : { skip: `STORES=${process.env.STORES} leaves out ${missing.join(', ')}` };
}
