// Type tests for the public session API, checked by `tsc --noEmit` (npm test runs it).
// The demo (examples/demo/app.ts) extends SessionData by declaration merging with
// `user: string` and `count: number`, which is what the default generic picks up here.
import { expectTypeOf } from 'expect-type';
import { SessionEngine } from '../../src/core/engine.ts';
import type { Session } from '../../src/core/session.ts';
import { MemoryStore } from '../../src/stores/memory.ts';

const secrets = ['type-test-secret-0123456789abcdefghijkl'];

export async function mergedSessionData(): Promise<void> {
  const engine = new SessionEngine({ store: new MemoryStore(), secrets });
  const session = engine.session(undefined);
  expectTypeOf(session.get('user')).resolves.toEqualTypeOf<string | undefined>();
  expectTypeOf(session.get('count')).resolves.toEqualTypeOf<number | undefined>();
  await session.set('count', 1);
  // @ts-expect-error count is a number (this line must fail to compile)
  await session.set('count', 'one');
  // @ts-expect-error not a key of SessionData
  await session.get('nope');
}

interface Cart {
  items: Array<{ sku: string; qty: number }>;
  coupon?: string;
}

export async function genericSessionData(): Promise<void> {
  const engine = new SessionEngine<Cart>({ store: new MemoryStore(), secrets });
  const session: Session<Cart> = engine.session(undefined);
  expectTypeOf(session.get('items')).resolves.toEqualTypeOf<Array<{ sku: string; qty: number }> | undefined>();
  await session.load();
  // A loaded session may not have every key yet: `data` is Partial, so the check below is needed.
  expectTypeOf(session.data.items).toEqualTypeOf<Array<{ sku: string; qty: number }> | undefined>();
  // @ts-expect-error items is possibly undefined (a session without a cart)
  session.data.items.push({ sku: 'a', qty: 1 });
  (session.data.items ??= []).push({ sku: 'a', qty: 1 });
  expectTypeOf(session.data.coupon).toEqualTypeOf<string | undefined>();
  // @ts-expect-error qty must be a number
  await session.set('items', [{ sku: 'a', qty: '1' }]);
  expectTypeOf(engine.commit(session)).resolves.toHaveProperty('setCookie').toEqualTypeOf<string | null>();
}

declare module '../../src/core/session.ts' {
  interface FlashData {
    notice: string;
  }
}

export async function flashMessages(): Promise<void> {
  const engine = new SessionEngine({ store: new MemoryStore(), secrets });
  const session = engine.session(undefined);
  await session.flash('notice', 'saved');
  expectTypeOf(session.flashed('notice')).resolves.toEqualTypeOf<string | undefined>();
  // @ts-expect-error notice is a string
  await session.flash('notice', 1);
  // @ts-expect-error not a key of FlashData
  await session.flashed('nope');
  expectTypeOf(session.authenticatedWithin(60)).resolves.toEqualTypeOf<boolean>();
  expectTypeOf(engine.listUserSessions('u')).resolves.items.toHaveProperty('current').toEqualTypeOf<boolean>();
  // @ts-expect-error a label is a string
  await session.setUser('u', { label: 1 });
}
