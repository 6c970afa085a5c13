#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the import-circle
# check, the Rust tests (unit, CLI, language server over stdio, Docker end to
# end), a bounded fuzzing run of the two parsers of outside bytes
# (scripts/fuzz.sh) and the editor clients' tests. Ends with one line
# `tests: N passed, N failed`.
#
# The Docker tests need an engine and the fixture images (.ci/docker-up.sh,
# .ci/fixtures.sh); with ARCA_REQUIRE_DOCKER=1 a missing engine fails them,
# otherwise they are skipped with a note.
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

echo "==> [${SECONDS}s] cargo fmt --check"
cargo fmt --check || status=1
echo "==> [${SECONDS}s] cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings || status=1
echo "==> [${SECONDS}s] import circles (scripts/check-import-cycles.py)"
python3 scripts/test_check_import_cycles.py || status=1
python3 scripts/check-import-cycles.py || status=1
echo "==> [${SECONDS}s] cargo test --no-run (build the tests)"
cargo test --no-run --quiet || status=1
echo "==> [${SECONDS}s] cargo test"
cargo test --no-fail-fast 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "==> [${SECONDS}s] fuzzing (scripts/fuzz.sh, ${FUZZ_SECONDS:-60} s per target)"
scripts/fuzz.sh || status=1
if [ -x scripts/test-editors.sh ]; then
    echo "==> editor clients"
    scripts/test-editors.sh 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

# Totals over every runner's summary lines.
passed=$(grep -oE '(test result: [a-zA-Z]+\. )?[0-9]+ passed' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -oE '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$failed" -gt 0 ]; then status=1; fi
# The failures again at the end, where a truncated CI log still shows them.
if grep -qE '^test .* FAILED|^watchdog: test|^not ok ' "$log"; then
    echo "==> failures"
    grep -E '^test .* FAILED|^watchdog: test|^not ok ' "$log" | head -40
fi
echo "tests: $passed passed, $failed failed"
exit $status
