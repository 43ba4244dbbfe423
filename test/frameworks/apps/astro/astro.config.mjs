import node from '@astrojs/node';

export default {
  output: 'server',
  adapter: node({ mode: 'middleware' }),
  // The suite posts forms without an Origin header (as curl would); the check is Astro's, not Tessera's.
  security: { checkOrigin: false },
  // tessera stays an import of the server build: the test process and the app share one copy of it.
  vite: { ssr: { external: ['tessera'] }, build: { rollupOptions: { external: [/^tessera(\/|$)/] } } },
};
