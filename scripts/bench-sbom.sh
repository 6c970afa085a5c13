#!/usr/bin/env bash
# The SBOM's cost (BENCHMARKS.md, "SBOM and provenance", issue 20), on the
# release arca, for ripgrep 14.1.1 from crates.io (its real dependency
# graph) built in the builder container:
#   cold   the first build's "Recording the SBOM" stage (cargo tree runs)
#   edit   ITER one-line rebuilds: that stage's time (the graph comes from
#          the cache: what a rebuild adds), the whole rebuild, and host
#          `cargo build --release` of the same change (the reference)
#   size   the stored SPDX document's bytes per package
# Needs the engine and fixture images (.ci/docker-up.sh, .ci/fixtures.sh)
# and crates.io; BASE picks the runtime base (default: the CUDA fixture).
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-10}
cargo build --release --quiet
ARCA=$PWD/target/release/arca
BASE=${BASE:-nvidia/cuda:12.8.1-runtime-ubuntu24.04}
work=$(mktemp -d)
export ARCA_HOME=$work/home
mkdir -p "$ARCA_HOME/cache/rust" "$work/dl"
shared=${ARCA_TEST_CARGO_CACHE:-/var/cache/arca-crates/cargo-home}
mkdir -p "$shared"
ln -s "$shared" "$ARCA_HOME/cache/rust/cargo-home"
cleanup() {
    docker ps -aq --filter "label=io.khoek.arca.session" | while read -r id; do
        dir=$(docker inspect -f '{{index .Config.Labels "io.khoek.arca.crate-dir"}}' "$id" 2>/dev/null || true)
        case "$dir" in "$work"/*) docker rm -f "$id" >/dev/null 2>&1 || true ;; esac
    done
    for tag in $(grep -ho 'local_tag = "[^"]*"' "$ARCA_HOME"/containers/*/metadata.toml 2>/dev/null | cut -d'"' -f2); do
        docker rmi -f "$tag" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
sbom_secs() { grep -oE 'SBOM of [0-9]+ packages \([^)]*\)\. \(([0-9.]+) s\)' "$1" | grep -oE '[0-9]+\.[0-9]+ s\)$' | grep -oE '[0-9.]+'; }

curl -fsS -o "$work/dl/ripgrep.crate" https://static.crates.io/crates/ripgrep/ripgrep-14.1.1.crate
tar -xzf "$work/dl/ripgrep.crate" -C "$work"
crate=$work/ripgrep-14.1.1
source=$crate/crates/core/main.rs
flags=(--profile release --features '' --base-image "$BASE" --bin rg)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$ARCA" build rust "$crate" "${flags[@]}" >/dev/null 2>"$work/cold.log" || { cat "$work/cold.log"; exit 1; }
cold=$(sbom_secs "$work/cold.log")
cargo build --locked --release --quiet --manifest-path "$crate/Cargo.toml" --bin rg --target-dir "$work/host-target"
: >"$work/sbom.txt"; : >"$work/arca.txt"; : >"$work/host.txt"
for i in $(seq 1 "$ITER"); do
    echo "// arca edit $i" >>"$source"
    start=$(now)
    "$ARCA" build rust "$crate" "${flags[@]}" >/dev/null 2>"$work/edit.log" || { cat "$work/edit.log"; exit 1; }
    echo "$(now) - $start" | bc >>"$work/arca.txt"
    sbom_secs "$work/edit.log" >>"$work/sbom.txt"
    echo "// host edit $i" >>"$source"
    start=$(now)
    cargo build --locked --release --quiet --manifest-path "$crate/Cargo.toml" --bin rg --target-dir "$work/host-target"
    echo "$(now) - $start" | bc >>"$work/host.txt"
done
"$ARCA" sbom "$crate" -o "$work/rg.spdx.json" 2>/dev/null
bytes=$(stat -c %s "$work/rg.spdx.json")
packages=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['packages']))" "$work/rg.spdx.json")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ripgrep 14.1.1: SBOM of $packages packages, $bytes bytes ($((bytes / packages)) bytes per package)"
echo "SBOM stage, cold (cargo tree): ${cold} s"
echo "SBOM stage on a one-line rebuild: median $(median <"$work/sbom.txt") s, max $(sort -n "$work/sbom.txt" | tail -1) s (n=$ITER)"
echo "one-line rebuild: arca median $(median <"$work/arca.txt") s, host cargo median $(median <"$work/host.txt") s"
