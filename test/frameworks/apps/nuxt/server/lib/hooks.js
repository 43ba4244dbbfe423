/**
 * The test process's hooks (test/frameworks/built-app.ts), read when a request needs them: the
 * build imports the server's modules, outside any test.
 * @returns {import('../../../../built-app.ts').TestHooks}
 */
export const hooks = () => globalThis[Symbol.for('tessera.test.hooks')];

/** The suite's actions (test/frameworks/behaviour.ts). */
export const actions = new Proxy({}, { get: (_, name) => hooks().actions[name] });
