#!/usr/bin/env bash
# The whole check, as `npm test` and CI run it: services, lint, types, build, exports, then the tests.
# The node test runner's summary is the last thing printed (CI reads it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
  echo "==> $*" >&2
  "$@" || { echo "test.sh: FAILED: $*" >&2; exit 1; }
}

step bash scripts/ensure-services.sh
step npx --no-install biome check .
step npx --no-install tsc -p tsconfig.json --noEmit
step npx --no-install tsc -p test/types/tsconfig.json
step npx --no-install tsc -p test/types/compat/tsconfig.json
step npm run build
# The built declarations as a strict user project sees them (exactOptionalPropertyTypes included).
step npx --no-install tsc -p test/types/strict/tsconfig.json
step node scripts/check-exports.mjs
if [ -x node_modules/.bin/publint ]; then
  step npx --no-install publint --strict
fi
# The emitted .d.ts files resolve and type-check for every subpath, as an ESM-only package.
step npx --no-install attw --pack . --profile esm-only --quiet

mapfile -t tests < <(find test -type f -name '*.test.ts' -not -path '*/node_modules/*' | LC_ALL=C sort)
if [ "${#tests[@]}" -eq 0 ]; then
  echo "test.sh: no test/**/*.test.ts files found" >&2
  exit 1
fi
echo "==> node --test (${#tests[@]} files)" >&2
exec node --import tsx --test --test-concurrency=2 --test-timeout=120000 "${tests[@]}"
