#!/usr/bin/env bash
# The npm package of the wasm build (bindings/wasm/, built by
# scripts/build-wasm-package.sh): `npm pack` holds exactly the module, its
# JavaScript, the declarations and the README; the tarball installs into an
# empty project; a TypeScript program type-checks against dbmux.d.ts with
# tsc --strict (typescript 5.9.3 and @types/node 20, installed into
# target/tools/npm) and runs in Node from the installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NPM_TOOLS=$ROOT/target/tools/npm
TSC=$NPM_TOOLS/node_modules/.bin/tsc
if [ ! -x "$TSC" ] || [ ! -d "$NPM_TOOLS/node_modules/@types/node" ]; then
  echo "test-wasm-package: installing typescript 5.9.3 and @types/node 20 into target/tools/npm" >&2
  npm install --silent --no-audit --no-fund --prefix "$NPM_TOOLS" typescript@5.9.3 @types/node@20.19.25 >&2
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

TGZ=$(cd bindings/wasm && npm pack --silent --pack-destination "$WORK")
echo "-- npm pack: $TGZ"
tar tzf "$WORK/$TGZ" | sort > "$WORK/files"
printf 'package/%s\n' README.md dbmux.d.ts dist/dbmux.js dist/dbmux_bg.wasm package.json | sort > "$WORK/want"
diff -u "$WORK/want" "$WORK/files" || { echo "test-wasm-package: the tarball holds other files than these" >&2; exit 1; }

mkdir "$WORK/app"
cp bindings/wasm/test/smoke.ts "$WORK/app/"
cat > "$WORK/app/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext",
    "strict": true, "lib": ["es2022", "dom"], "outDir": "out",
    "typeRoots": ["$NPM_TOOLS/node_modules/@types"], "types": ["node"]
  },
  "files": ["smoke.ts"]
}
JSON
echo '{ "name": "app", "private": true, "type": "module" }' > "$WORK/app/package.json"
(cd "$WORK/app" && npm install --silent --no-audit --no-fund "$WORK/$TGZ")
echo "-- tsc --strict against dbmux.d.ts"
(cd "$WORK/app" && "$TSC" -p tsconfig.json)
OUT=$(cd "$WORK/app" && node out/smoke.js)
echo "$OUT"
WANT='{"changed":1,"total":2,"names":["ada","grace"],"big":"1152921504606846976","code":8,"status":"healthy","pool_size":1,"metrics":true}'
[ "$OUT" = "$WANT" ] || { echo "test-wasm-package: expected $WANT" >&2; exit 1; }

# a misuse the declarations must reject: a parameter of a type dbmux refuses
printf '%s\n' 'import { Database } from "dbmux-wasm";' \
  'Database.open("sqlite::memory:").execute("SELECT ?", [{ not: "a value" }]);' > "$WORK/app/bad.ts"
if (cd "$WORK/app" && "$TSC" --strict --noEmit --module nodenext --moduleResolution nodenext --types node --typeRoots "$NPM_TOOLS/node_modules/@types" --lib es2022,dom bad.ts) > "$WORK/bad.log" 2>&1; then
  echo "test-wasm-package: tsc accepted an object as a SQL parameter" >&2; exit 1
fi
grep -q "^bad.ts(2," "$WORK/bad.log" || { cat "$WORK/bad.log" >&2; exit 1; }
echo "test-wasm-package: 4 passed, 0 failed"
