// stores: sqlite
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { generateId, hashId } from '../../src/core/ids.ts';
import type { SessionRecord } from '../../src/core/store.ts';
import { SqlStore } from '../../src/stores/sql/index.ts';

const EXPIRED = 100_000;
const LIVE = 1_000;

describe('sql store: pruning 100,000 expired sessions on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sql-prune-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('deletes every expired row and keeps every live one', async () => {
    const file = join(dir, 'sessions.db');
    const store = new SqlStore({ url: `sqlite:${file}` });
    const now = Date.now();
    const entry = (i: number, lifetimeMs: number): [string, SessionRecord] => [
      hashId(generateId()),
      {
        fields: { user: JSON.stringify(`user-${i}`), cart: '[1,2,3]' },
        createdAt: now - 7_200_000,
        expiresAt: now + lifetimeMs,
        userId: i % 10 === 0 ? `user-${i}` : null,
      },
    ];
    const expired = Array.from({ length: EXPIRED }, (_, i) => entry(i, -1_000 - i));
    const live = Array.from({ length: LIVE }, (_, i) => entry(i, 3_600_000));
    // Multi-row INSERTs in one transaction; live rows mixed in so that batches meet them.
    const all = [...expired];
    for (const [i, row] of live.entries()) all.splice(i * 100, 0, row);
    assert.equal(await store.setMany(all), EXPIRED + LIVE);

    const raw = new Database(file, { readonly: true });
    const total = () => (raw.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n;
    assert.equal(total(), EXPIRED + LIVE);

    assert.equal(await store.prune(), EXPIRED);
    assert.equal(total(), LIVE, 'only the live rows are left');
    assert.equal(await store.count(), LIVE);
    let found = 0;
    for (const [key, record] of live) {
      const read = await store.get(key);
      if (read && read.fields.user === record.fields.user) found++;
    }
    assert.equal(found, LIVE, 'every live session survives');
    assert.equal(await store.prune(), 0);
    raw.close();
    await store.close();
  });
});
