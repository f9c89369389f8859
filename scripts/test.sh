#!/usr/bin/env bash
# The README's test command: every vitest suite and the runtime node's pytest suite, then one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
export NODE_OPTIONS="${NODE_OPTIONS:-} --max-old-space-size=8192"

npx vitest run --reporter=default --reporter=json --outputFile="$out/vitest.json"
vitest_rc=$?

python="$(npx tsx scripts/python-env.ts)" || { echo "could not bootstrap the Python env for the runtime node"; python=""; }
pytest_rc=1
if [ -n "$python" ]; then
  (cd runtime/node && "$python" -m pytest -q -p no:cacheprovider --junitxml="$out/pytest.xml" tests)
  pytest_rc=$?
fi

node -e '
const fs = require("fs");
const [dir, vrc, prc] = process.argv.slice(1);
let passed = 0, failed = 0;
try {
  const v = JSON.parse(fs.readFileSync(dir + "/vitest.json", "utf8"));
  passed += v.numPassedTests; failed += v.numFailedTests;
  if (v.numTotalTests === 0 || Number(vrc) !== 0 && v.numFailedTests === 0) failed += 1;
} catch { failed += 1; }
try {
  const x = fs.readFileSync(dir + "/pytest.xml", "utf8");
  const m = x.match(/<testsuite [^>]*>/)[0];
  const n = (k) => Number((m.match(new RegExp(k + "=\"(\\d+)\"")) || [0, 0])[1]);
  const pf = n("failures") + n("errors");
  passed += n("tests") - pf - n("skipped"); failed += pf;
  if (n("tests") === 0 || Number(prc) !== 0 && pf === 0) failed += 1;
} catch { failed += 1; }
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
' "$out" "$vitest_rc" "$pytest_rc"
