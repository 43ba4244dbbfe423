import { sveltekit } from '@sveltejs/kit/vite';

export default {
  plugins: [sveltekit()],
  // tessera stays an import of the server build (adapter-node keeps the app's dependencies out of its bundle too).
  build: { rollupOptions: { external: (id) => id === 'tessera' || id.startsWith('tessera/') } },
};
