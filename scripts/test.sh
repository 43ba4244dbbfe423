#!/usr/bin/env bash
# The whole check, as `npm test` and CI run it: services, lint, types, build, exports, then the tests.
# The node test runner's summary is the last thing printed (CI reads it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
  echo "==> $*" >&2
  "$@" || { echo "test.sh: FAILED: $*" >&2; exit 1; }
}

# STORES=redis,postgres (memory, sqlite, postgres, mysql or mariadb, redis, elasticsearch) runs the
# tests of those stores only and starts only their servers; test/support/stores.ts says how.
services=()
if [ -n "${STORES:-}" ]; then
  for store in ${STORES//,/ }; do
    case "$store" in
      redis) services+=(redis) ;;
      postgres) services+=(postgres) ;;
      mysql | mariadb) services+=(mariadb) ;;
      memory | sqlite | elasticsearch) ;;
      *) echo "test.sh: STORES: unknown store \"$store\"; use memory, sqlite, postgres, mysql, redis, elasticsearch" >&2; exit 1 ;;
    esac
  done
fi
if [ -z "${STORES:-}" ] || [ "${#services[@]}" -gt 0 ]; then
  step bash scripts/ensure-services.sh "${services[@]}"
fi
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
# The emitted .d.ts files resolve and type-check for every subpath under every resolution TypeScript
# has, node10 (CommonJS projects' "module": "commonjs") included. attw's one objection left out is that
# CommonJS loads the package only by import(): Node 20.19+ and 22.12+ require() it, and TypeScript 5.8+
# compiles that under "module": "nodenext" (test/package/commonjs.test.ts builds and runs both).
step npx --no-install attw --pack . --ignore-rules cjs-resolves-to-esm --quiet

# The package as npm would publish it, packed once for the tests that install it into fresh projects.
pack_dir="$(mktemp -d)"
trap 'rm -rf "$pack_dir"' EXIT
# Each test run's counts, added up into the closing line (the reporter appends them here).
export TESSERA_TEST_TOTALS="$pack_dir/totals.jsonl"
step npm pack --pack-destination "$pack_dir" --loglevel=error --silent
TESSERA_TARBALL="$(ls "$pack_dir"/*.tgz)"
export TESSERA_TARBALL

# test/docs runs after the others, on its own: its installs and compilers would load the machine
# while the fault tests measure answer times.
mapfile -t tests < <(find test -type f -name '*.test.ts' -not -path '*/node_modules/*' -not -path 'test/docs/*' | LC_ALL=C sort)
# With STORES set, a file whose `// stores:` header names none of them is left out.
wanted() {
  local header
  header="$(head -n 3 "$1" | sed -n 's#^// stores: *##p')"
  [ -z "${STORES:-}" ] || [ -z "$header" ] && return 0
  local store mine
  for store in ${STORES//,/ }; do
    [ "$store" = mariadb ] && store=mysql
    for mine in $header; do [ "$store" = "$mine" ] && return 0; done
  done
  return 1
}
if [ -n "${STORES:-}" ]; then
  kept=()
  for file in "${tests[@]}"; do wanted "$file" && kept+=("$file"); done
  echo "==> STORES=$STORES: ${#kept[@]} of ${#tests[@]} test files" >&2
  tests=("${kept[@]}")
fi
if [ "${#tests[@]}" -eq 0 ]; then
  echo "test.sh: no test/**/*.test.ts files found" >&2
  exit 1
fi
# Tests must leave no keys in the shared Redis: they delete what they wrote, under their own prefixes.
redis_keys() { if command -v redis-cli >/dev/null; then redis-cli -h 127.0.0.1 -p 6379 --scan 2>/dev/null | wc -l; else echo 0; fi; }
keys_before="$(redis_keys)"
echo "==> node --test (${#tests[@]} files)" >&2
# One line per top-level suite, failures in full, then node's summary and `N passed, N failed, ...`.
status=0
node --import tsx --test --test-concurrency=2 --test-timeout=120000 \
  --test-reporter=./scripts/test-reporter.mjs --test-reporter-destination=stdout "${tests[@]}" || status=$?
echo "==> node --test test/docs (every code block of README.md and docs/)" >&2
node --import tsx --test --test-timeout=600000 \
  --test-reporter=./scripts/test-reporter.mjs --test-reporter-destination=stdout test/docs/*.test.ts || status=$?
keys_after="$(redis_keys)"
if [ "$keys_after" -gt "$keys_before" ]; then
  echo "test.sh: the tests left $((keys_after - keys_before)) key(s) in the shared Redis ($keys_before before, $keys_after after); some:" >&2
  redis-cli -h 127.0.0.1 -p 6379 --scan | head -n 10 | sed 's/^/  /' >&2
  # Elsewhere than CI another checkout may be writing to the same Redis: only CI fails on it.
  if [ "${CI:-}" = true ]; then status=1; fi
fi
# The closing line: every run above added up (CI reads the last `N passed, N failed` line).
node -e '
  const lines = require("node:fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean);
  const t = { passed: 0, failed: 0, skipped: 0, todo: 0 };
  for (const line of lines) for (const [k, v] of Object.entries(JSON.parse(line))) t[k] += v;
  if (lines.length < 2) t.failed += 1; // a run that crashed before its report counts as a failure
  if (process.argv[2] !== "0" && t.failed === 0) t.failed = 1; // e.g. keys left behind in the shared Redis
  console.log(`\nAll runs (main suite and docs): ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped, ${t.todo} todo`);
  console.log(`${t.passed} passed, ${t.failed} failed`);
' "$TESSERA_TEST_TOTALS" "$status" || status=1
exit "$status"
