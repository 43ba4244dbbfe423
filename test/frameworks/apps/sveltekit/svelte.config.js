import adapter from '@sveltejs/adapter-node';

export default {
  kit: {
    adapter: adapter(),
    // The suite posts forms without an Origin header (as curl would); the check is SvelteKit's, not Tessera's.
    csrf: { trustedOrigins: ['*'] },
  },
};
