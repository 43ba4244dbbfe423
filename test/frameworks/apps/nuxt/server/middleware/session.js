import { session } from 'tessera/h3';
import { hooks } from '../lib/hooks.js';

const handlers = new WeakMap();

/** `session(engine)`, made once per engine of the suite. */
export default defineEventHandler((event) => {
  const engine = hooks().engine();
  let handler = handlers.get(engine);
  if (!handler) {
    handler = session(engine);
    handlers.set(engine, handler);
  }
  return handler(event);
});
