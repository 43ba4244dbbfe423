import { session } from 'tessera/astro';
import { hooks } from './lib/hooks.js';

const handlers = new WeakMap();

/** `session(engine)`, made once per engine of the suite. */
export const onRequest = (context, next) => {
  const engine = hooks().engine();
  let handler = handlers.get(engine);
  if (!handler) {
    handler = session(engine);
    handlers.set(engine, handler);
  }
  return handler(context, next);
};
