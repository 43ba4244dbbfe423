import { session } from 'tessera/next';
import { hooks } from './hooks.js';

const wrapped = new WeakMap();
const clientIp = (request) => request.headers.get('x-forwarded-for')?.split(',')[0]?.trim();

/** A Route Handler: `session(engine, handler)` for the engine of the request (made once per engine). */
export function route(handler) {
  return (request, context) => {
    const engine = hooks().engine();
    let byEngine = wrapped.get(handler);
    if (!byEngine) wrapped.set(handler, (byEngine = new WeakMap()));
    let made = byEngine.get(engine);
    // Next.js gives a Route Handler no client address; its server sets x-forwarded-for from the socket.
    if (!made) byEngine.set(engine, (made = session(engine, handler, { clientIp })));
    return made(request, context);
  };
}
