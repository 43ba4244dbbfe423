// The session data every type test here expects, merged the way an app would do it
// (`declare module 'tessera'` in a published app). Same keys as the demo app, so the root
// program, which holds both, agrees.
declare module '../../src/core/session.ts' {
  interface SessionData {
    user: string;
    count: number;
  }
}

export {};
