#!/usr/bin/env node
// The `tessera` command. commander is its own dependency, not the library's: an optional peer that
// is looked for before the program (which imports it) loads, so that a project without it gets one
// line naming the package to install instead of Node's ERR_MODULE_NOT_FOUND.
import { importOptional, isSessionError } from '../core/errors.ts';

/** Runs the CLI; 0 done, 1 a store or configuration error (or commander missing), 2 bad arguments. */
export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await importOptional('commander', 'cli');
  } catch (error) {
    if (!isSessionError(error)) throw error;
    console.error(`tessera: ${error.message} (${error.code})`);
    return 1;
  }
  const program = await import('./program.ts');
  return program.main(argv);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/tessera')) {
  process.exitCode = await main();
}
