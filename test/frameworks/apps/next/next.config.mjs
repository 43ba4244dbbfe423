// tessera stays an import of the server build: the test process and the app share one copy of it.
// (serverExternalPackages would not do: this app's tessera is a link into src/, outside node_modules.)
export default {
  experimental: { cpus: 1 },
  webpack(config, { isServer }) {
    if (isServer) {
      config.externals.push(({ request }, callback) =>
        /^tessera(\/|$)/.test(request ?? '') ? callback(null, `import ${request}`) : callback(),
      );
    }
    return config;
  },
};
