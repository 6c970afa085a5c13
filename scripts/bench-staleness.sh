#!/usr/bin/env bash
# Issue 6's figures: runs the whole staleness matrix (a real build, then every
# change judged by `arca status` and reverted) and prints the false-stale and
# missed-stale rates. Needs a Docker engine and the fixture images.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test staleness -- --nocapture 2>&1 | grep -E '^staleness:|test result'
