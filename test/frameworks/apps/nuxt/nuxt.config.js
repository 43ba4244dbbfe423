export default {
  compatibilityDate: '2025-07-15',
  devtools: { enabled: false },
  telemetry: false,
  nitro: {
    // .output/server/index.mjs exports the node:http listener and does not listen itself.
    preset: 'node-listener',
    // tessera stays an import of the server build: the test process and the app share one copy of it.
    rollupConfig: { external: [/^tessera(\/|$)/] },
  },
};
