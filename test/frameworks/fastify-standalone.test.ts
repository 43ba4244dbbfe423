import assert from 'node:assert/strict';
import { register } from 'node:module';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { MemoryStore } from '../../src/stores/memory.ts';
import { actions, COOKIE, secrets } from './behaviour.ts';

// A project that installed only `fastify`: resolving `fastify-plugin` from ESM fails as it would there.
const hooks = `export async function resolve(specifier, context, next) {
  if (specifier === 'fastify-plugin' || specifier.startsWith('fastify-plugin/')) {
    throw Object.assign(new Error("Cannot find package 'fastify-plugin'"), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);

describe('tessera/fastify with nothing but fastify installed', () => {
  it('loads, and its hooks reach routes registered outside the plugin (root and sibling plugins)', async () => {
    const { session } = await import('../../src/frameworks/fastify.ts');
    const app = Fastify();
    await app.register(session, { store: new MemoryStore(), secrets });
    app.post('/root', async (request) => actions.increment(request.session));
    await app.register(async (sibling) => {
      sibling.post('/sibling', async (request) => actions.increment(request.session));
    });
    assert.equal(app.hasPlugin('tessera'), true);
    const first = await app.inject({ method: 'POST', url: '/root' });
    assert.deepEqual(first.json(), { count: 1 });
    const line = ([] as string[]).concat(first.headers['set-cookie'] ?? []).find((l) => l.startsWith(`${COOKIE}=`));
    assert.ok(line, 'the onSend hook ran for a root route');
    const cookie = line.split(';')[0] ?? '';
    const second = await app.inject({ method: 'POST', url: '/sibling', headers: { cookie } });
    assert.deepEqual(second.json(), { count: 2 });
    await app.close();
  });
});
