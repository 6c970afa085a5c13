#!/usr/bin/env bash
# Fuzzes the two parsers that take outside bytes (issue 21), each for a
# bounded time: the language server's framing and JSON-RPC validation, and
# the image tar readers (an engine's archive import, a stored layer's path
# lookup and bounded file read). Targets in fuzz/fuzz_targets/, seeds in
# fuzz/corpus/<target>/ (kept in the repository; what a run finds goes to a
# temporary corpus, so the checkout is not changed). A crash or a leak fails
# the run and leaves its input under fuzz/artifacts/<target>/.
#   FUZZ_SECONDS=N   seconds per target (default 60)
# Needs the nightly toolchain and cargo-fuzz (installed from crates.io when
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly); cargo fuzz needs it" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked --quiet
fi
cargo +nightly fuzz build --sanitizer none --debug-assertions --fuzz-dir fuzz
for target in framing layer_tar; do
    found=$(mktemp -d)
    log=$(mktemp)
    echo "fuzz: $target for ${seconds}s (seeds: fuzz/corpus/$target)"
    status=0
    cargo +nightly fuzz run --sanitizer none --debug-assertions --fuzz-dir fuzz "$target" "$found" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)' "$log" || true
    rm -rf "$found"
    if [ "$status" -ne 0 ]; then
        tail -60 "$log" >&2
        rm -f "$log"
        echo "fuzz: $target FAILED (exit $status); the input is under fuzz/artifacts/$target/" >&2
        exit 1
    fi
    rm -f "$log"
done
echo "fuzz: ok"
