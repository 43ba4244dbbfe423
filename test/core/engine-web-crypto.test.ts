// The engine's whole unit suite again, on its Web Crypto path (as on Cloudflare Workers without
// nodejs_compat): the first import hides node:crypto from src/core/ids.ts for this process. The
// cases below check that path's own pieces against node:crypto (imported here directly).
import '../support/web-crypto-only.ts';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import { CookieSigner, generateId, hashId, hashIdAsync, syncCrypto } from '../../src/core/ids.ts';
import { MemoryStore } from '../../src/stores/memory.ts';
import { CountingStore } from '../../src/testing/counting-store.ts';
import './engine.test.ts';

const current = 'web-crypto-current-secret-0123456789ab';
const older = 'web-crypto-older-secret-0123456789abcd';
const tag = (secret: string, id: string, bytes = 32) =>
  createHmac('sha256', secret).update(id).digest().subarray(0, bytes).toString('base64url');

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** The last character of a 32-byte tag carries 4 bits and 2 zero padding bits: one of them set. */
const padded = (last: string) => ALPHABET[ALPHABET.indexOf(last) ^ 1] ?? '';

describe('the Web Crypto path', () => {
  it('is the path this file runs on', () => {
    assert.equal(syncCrypto, false);
  });

  it('makes IDs, keys and tags that node:crypto agrees with', async () => {
    const id = generateId();
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(generateId(), id);
    assert.equal(await hashIdAsync(id), createHash('sha256').update(id).digest('base64url'));
    const signer = new CookieSigner([current, older]);
    assert.equal(await signer.signAsync(id), `${id}.${tag(current, id)}`);
    const short = new CookieSigner([current], 16);
    assert.equal(await short.signAsync(id), `${id}.${tag(current, id, 16)}`);
  });

  it('opens values of every secret, says which, and gives the current secret’s value', async () => {
    const id = generateId();
    const signer = new CookieSigner([current, older]);
    assert.deepEqual(await signer.openAsync(`${id}.${tag(current, id)}`), {
      id,
      current: true,
      signed: `${id}.${tag(current, id)}`,
    });
    assert.deepEqual(await signer.openAsync(`${id}.${tag(older, id)}`), {
      id,
      current: false,
      signed: `${id}.${tag(current, id)}`,
    });
    const good = tag(current, id);
    const flipped = `${good.slice(0, -2)}${good.at(-2) === 'A' ? 'B' : 'A'}${good.at(-1)}`;
    const forgeries = [
      `${id}.${tag('not-a-secret-of-this-engine-0123456', id)}`,
      `${id}.${flipped}`,
      `${id}.${good.slice(0, -1)}`, // truncated
      `${id}.${good.slice(0, -1)}${padded(good.at(-1) ?? 'A')}`, // the same bytes with a padding bit set: not canonical
      `${id}.`,
      id,
      `${id.slice(1)}.${good}`,
      `${id}.${good}=`,
      '%%%',
    ];
    for (const forged of forgeries) assert.equal(await signer.openAsync(forged), null, forged);
  });

  it('leaves the synchronous APIs to node:crypto, saying so', () => {
    const engine = new SessionEngine({ store: new MemoryStore(), secrets: [current] });
    for (const call of [() => hashId('x'), () => engine.keyOf('x'), () => new CookieSigner([current]).sign('x')]) {
      assert.throws(call, (error) => isSessionError(error, 'NOT_SUPPORTED'));
    }
  });

  it('refuses encryption at rest at construction, naming nodejs_compat', () => {
    assert.throws(
      () =>
        new SessionEngine({
          store: new MemoryStore(),
          secrets: [current],
          encryption: { keys: [{ id: 'k1', key: new Uint8Array(32) }] },
        }),
      (error) => isSessionError(error, 'INVALID_OPTIONS') && /nodejs_compat/.test(error.message),
    );
  });

  it('verifies a cookie when the session is first used, and clears a forged one even if never used', async () => {
    const store = new CountingStore(new MemoryStore());
    const engine = new SessionEngine({ store, secrets: [current] });
    const first = engine.session(undefined);
    await first.set('user', 'wen');
    const setCookie = (await engine.commit(first)).setCookie ?? '';
    const value = setCookie.split(';')[0]?.split('=')[1] ?? '';
    assert.match(value, /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
    const id = value.split('.')[0] ?? '';
    assert.equal(value, `${id}.${tag(current, id)}`, 'node:crypto verifies what the Web path signed');
    assert.ok(await store.get(createHash('sha256').update(id).digest('base64url')), 'stored under SHA-256(id)');

    store.reset();
    const again = engine.session(`tessera.sid=${value}`);
    assert.equal(await again.get('user'), 'wen');
    assert.equal(store.calls.get, 1);
    assert.equal((await engine.commit(again)).setCookie, null);

    store.reset();
    const untouched = engine.session(`tessera.sid=${id}.${tag(older, id)}`);
    assert.match((await engine.commit(untouched)).setCookie ?? '', /^tessera\.sid=;/, 'a forged cookie is cleared');
    assert.equal(store.total, 0, 'and costs no store call');

    const rotated = new SessionEngine({ store, secrets: [older, current] });
    const old = rotated.session(`tessera.sid=${value}`);
    await old.regenerate();
    await old.regenerate(); // twice in one request: a new ID each time
    const moved = (await rotated.commit(old)).setCookie ?? '';
    const newValue = moved.split(';')[0]?.split('=')[1] ?? '';
    const newId = newValue.split('.')[0] ?? '';
    assert.notEqual(newId, id);
    assert.equal(newValue, `${newId}.${tag(older, newId)}`, 'signed with the first secret');
    assert.equal(await rotated.session(`tessera.sid=${newValue}`).get('user'), 'wen');
    assert.equal(await rotated.session(`tessera.sid=${value}`).get('user'), undefined, 'the old ID is gone');
  });
});
