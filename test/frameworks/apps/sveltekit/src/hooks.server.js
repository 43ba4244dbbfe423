import { handleSessionError, session } from 'tessera/sveltekit';
import { hooks } from '$lib/hooks.js';

const handles = new WeakMap();

/** `session(engine)`, made once per engine of the suite. */
export const handle = (input) => {
  const engine = hooks().engine();
  let handle = handles.get(engine);
  if (!handle) {
    handle = session(engine);
    handles.set(engine, handle);
  }
  return handle(input);
};

// Quiet (SvelteKit would print the /throw stack), and store failures answer 503.
export const handleError = handleSessionError(() => ({ message: 'failed' }));
