// Imported first by a test file, before anything of src/: the process then looks like a runtime
// without node:crypto (Cloudflare Workers without nodejs_compat) to src/core/ids.ts, which finds
// node:crypto through process.getBuiltinModule, so the engine takes its Web Crypto path.
Reflect.deleteProperty(process, 'getBuiltinModule');
