#!/usr/bin/env bash
# The real-crate tests (tests/real_crates.rs) build crates with crates.io
# dependencies in the builder container and compare with the host's cargo.
# Their downloads are cached across CI runs in one cargo home, linked into
# each test's private ARCA_HOME. Idempotent.
set -euo pipefail
cache=/var/cache/arca-crates/cargo-home
mkdir -p "$cache"
# Host cargo judges freshness (the ground truth) and runs `make` for the
# make fixture; the fixture builds need nothing else on the host.
if ! command -v make >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make >/dev/null
fi
echo "crates-setup: cargo download cache at $cache"
