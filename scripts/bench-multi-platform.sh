#!/usr/bin/env bash
# Multi-platform builds (BENCHMARKS.md, "Multi-platform images", issue 19),
# on the release arca, for ripgrep 14.1.1 from crates.io (the largest real
# crate of the benchmarks) built in the builder container:
#   cold    one build for linux/amd64, then the same crate for linux/amd64
#           and linux/arm64: cargo's own `Finished ... in` of the amd64
#           compile and of the arm64 cross compile (the amd64 part of the
#           second build is fresh), and their ratio
#   edit    ITER one-line rebuilds alternating one platform and both: the
#           whole `arca build` time of each and the ratio of the medians
#   same-compiler reference (when /usr/bin/rustc has the arm64 standard
#           library, as on these machines, where the builder's arm64 route
#           is Debian's rustc while its amd64 compiler is rustup's): cold
#           host builds of the same crate with that one toolchain, amd64
#           and arm64, so the cost of cross-compiling is told apart from
#           the cost of the other compiler
# PARTS=reference runs only that part.
# The two-platform base is the fixture index (.ci/fixtures.sh's
# multi-base-oci) in a loopback registry acting as Docker Hub's mirror for
# the CUDA fixture name. Needs the engine, fixtures, registry tools and
# crates.io (.ci/docker-up.sh, .ci/fixtures.sh, .ci/registry-setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-10}
cargo build --release --quiet
ARCA=$PWD/target/release/arca
BASE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
LAYOUT=${MULTI_BASE_LAYOUT:-/var/cache/arca-fixtures/multi-base-oci}
work=$(mktemp -d)
export ARCA_HOME=$work/home
mkdir -p "$ARCA_HOME/cache/rust" "$work/dl" "$work/registry"
shared=${ARCA_TEST_CARGO_CACHE:-/var/cache/arca-crates/cargo-home}
mkdir -p "$shared"
ln -s "$shared" "$ARCA_HOME/cache/rust/cargo-home"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$work/registry/storage" "$port" >"$work/registry/config.yml"
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
registry_pid=$!
cleanup() {
    kill "$registry_pid" 2>/dev/null || true
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
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.1
done
skopeo copy --quiet --all --dest-tls-verify=false "oci:$LAYOUT:latest" "docker://127.0.0.1:$port/$BASE"
export ARCA_REGISTRY_MIRRORS=127.0.0.1:$port

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# The seconds of the Nth `Finished ... in X` line of a build log.
finished() { grep -oE 'Finished .* in [0-9.]+(s|m [0-9.]+s)' "$1" | sed -n "${2}p" | awk '{t=$NF; if ($(NF-1) ~ /m$/) {sub("m","",$(NF-1)); t=$(NF-1)*60+t}; sub("s","",t); print t}'; }

curl -fsS -o "$work/dl/ripgrep.crate" https://static.crates.io/crates/ripgrep/ripgrep-14.1.1.crate
tar -xzf "$work/dl/ripgrep.crate" -C "$work"
crate=$work/ripgrep-14.1.1
source=$crate/crates/core/main.rs
flags=(--profile release --features '' --base-image "$BASE" --bin rg)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ] && [ -x /usr/bin/cargo ]; then
    reference() {
        CARGO_TERM_COLOR=never RUSTC=/usr/bin/rustc \
            CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
            CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
            /usr/bin/cargo build --locked --release --bin rg --manifest-path "$crate/Cargo.toml" \
            --target-dir "$work/reference-$1" "${@:2}" 2>"$work/reference-$1.log" || { cat "$work/reference-$1.log"; exit 1; }
    }
    reference amd64
    reference arm64 --target aarch64-unknown-linux-gnu
    ref_amd64=$(finished "$work/reference-amd64.log" 1)
    ref_arm64=$(finished "$work/reference-arm64.log" 1)
    echo "same compiler ($(/usr/bin/rustc --version | cut -d' ' -f1-2), host): linux/amd64 ${ref_amd64} s, linux/arm64 (cross) ${ref_arm64} s, ratio $(echo "scale=2; $ref_arm64 / $ref_amd64" | bc)"
fi
[ "${PARTS:-all}" = reference ] && exit 0
build() { "$ARCA" build rust "$crate" "${flags[@]}" --platform "$1" >/dev/null 2>"$2" || { cat "$2"; exit 1; }; }
build linux/amd64 "$work/cold-amd64.log"
build linux/amd64,linux/arm64 "$work/cold-both.log"
amd64=$(finished "$work/cold-amd64.log" 1)
arm64=$(finished "$work/cold-both.log" 2)
: >"$work/one.txt"; : >"$work/both.txt"
for i in $(seq 1 "$ITER"); do
    echo "// one-platform edit $i" >>"$source"
    start=$(now)
    build linux/amd64 "$work/edit.log"
    echo "$(now) - $start" | bc >>"$work/one.txt"
    echo "// two-platform edit $i" >>"$source"
    start=$(now)
    build linux/amd64,linux/arm64 "$work/edit.log"
    echo "$(now) - $start" | bc >>"$work/both.txt"
done
one=$(median <"$work/one.txt")
both=$(median <"$work/both.txt")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ripgrep 14.1.1 cold compile: linux/amd64 ${amd64} s, linux/arm64 (cross) ${arm64} s, ratio $(echo "scale=2; $arm64 / $amd64" | bc)"
echo "one-line rebuild (n=$ITER): one platform median ${one} s (max $(sort -n "$work/one.txt" | tail -1)), two platforms median ${both} s (max $(sort -n "$work/both.txt" | tail -1)), ratio $(echo "scale=2; $both / $one" | bc)"
