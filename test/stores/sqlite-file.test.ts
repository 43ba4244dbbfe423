// stores: sqlite
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateId, hashId } from '../../src/core/ids.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-sqlite-'));
const cwd = process.cwd();
after(() => {
  process.chdir(cwd);
  rmSync(dir, { recursive: true, force: true });
});

async function roundTrip(url: string): Promise<void> {
  const store = new SqlStore({ url });
  try {
    const key = hashId(generateId());
    const now = Date.now();
    await store.set(key, { fields: { user: '"ann"' }, createdAt: now, expiresAt: now + 60_000, userId: null });
    assert.deepEqual((await store.get(key))?.fields, { user: '"ann"' });
  } finally {
    await store.close();
  }
}

describe('SQLite file databases', () => {
  it('create the missing parent directory of the quick start’s relative path (sqlite:var/sessions.db)', async () => {
    process.chdir(dir);
    try {
      await roundTrip('sqlite:var/sessions.db');
    } finally {
      process.chdir(cwd);
    }
    assert.ok(existsSync(join(dir, 'var', 'sessions.db')));
  });

  it('create nested missing directories of an absolute path', async () => {
    await roundTrip(`sqlite:${join(dir, 'a', 'b', 'c', 'sessions.db')}`);
    assert.ok(existsSync(join(dir, 'a', 'b', 'c', 'sessions.db')));
  });
});
