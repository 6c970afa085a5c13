#!/usr/bin/env bash
# Containerized-build benchmarks (BENCHMARKS.md, "Containerized builds").
# Needs the engine and fixture images (.ci/docker-up.sh, .ci/fixtures.sh),
# hyperfine and GNU time. Uses a copy of examples/hello in a temp dir and a
# private ARCA_HOME; removes what it made.
#   1. full build (cold target cache, builder image present) and the
#      up-to-date `arca build rust` (hyperfine)
#   2. rebuild after a one-line change, warm caches, versus host
#      `cargo build` of the same change (ITER iterations, medians)
#   3. peak RSS of arca while it imports a 1 GB base into the layer store
#      and writes the image archive (--archive)
set -euo pipefail
cd "$(dirname "$0")/.."
#   ARCA=PATH times another arca binary (a before/after comparison in one
#   run); BASE=IMAGE another runtime base; NO_RSS=1 skips part 3.
ITER=${ITER:-5}
if [ -z "${ARCA:-}" ]; then
    cargo build --release --quiet
    ARCA=$PWD/target/release/arca
fi
BASE=${BASE:-nvidia/cuda:12.8.1-runtime-ubuntu24.04}
work=$(mktemp -d)
crate=$work/hello
export ARCA_HOME=$work/home
cleanup() {
    docker ps -aq --filter "label=io.khoek.arca.crate-dir=$crate" | xargs -r docker rm -f >/dev/null 2>&1 || true
    for tag in $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^arca-local:hello-'); do
        docker rmi -f "$tag" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
cp -r examples/hello "$work/hello"
crate=$(cd "$work/hello" && pwd -P)
flags=(--profile release --features '' --base-image "$BASE")
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
stage_secs() { grep -oE "$1 \(([0-9.]+) s\)" | grep -oE '[0-9]+\.[0-9]+' | tail -1; }

echo "== 1. full build vs up-to-date"
start=$(now)
"$ARCA" build rust "$crate" "${flags[@]}" >/dev/null 2>"$work/full.log"
full=$(echo "$(now) - $start" | bc)
echo "full build (cold target cache, builder image cached): ${full} s"
hyperfine -N --warmup 3 --runs 30 --export-json "$work/uptodate.json" \
    "$ARCA build rust $crate --profile release --features '' --base-image $BASE" 2>/dev/null |
    grep -E 'Time|Range'

echo "== 2. one-line change: arca (container) vs host cargo build"
cargo build --release --quiet --manifest-path "$crate/Cargo.toml"   # warm host target dir
: >"$work/arca.txt"; : >"$work/cargo-stage.txt"; : >"$work/image-step.txt"; : >"$work/host.txt"
for i in $(seq 1 "$ITER"); do
    sed -i "s/Hello from[^{]*{/Hello from v$i {/" "$crate/src/main.rs"
    start=$(now)
    "$ARCA" build rust "$crate" "${flags[@]}" >/dev/null 2>"$work/step.log"
    echo "$(now) - $start" | bc >>"$work/arca.txt"
    stage_secs 'Containerized cargo build finished for `hello`.' <"$work/step.log" >>"$work/cargo-stage.txt"
    # The runtime-image step over the layer store: assemble + load.
    assembled=$(grep -oE 'Runtime image assembled: .*\(([0-9.]+) s\)$' "$work/step.log" | grep -oE '[0-9]+\.[0-9]+ s\)$' | grep -oE '[0-9.]+' | tail -1)
    loaded=$(grep -oE 'Loaded into the engine: .*\(([0-9.]+) s\)$' "$work/step.log" | grep -oE '[0-9]+\.[0-9]+ s\)$' | grep -oE '[0-9.]+' | tail -1)
    echo "$assembled + $loaded" | bc >>"$work/image-step.txt"
    sed -i "s/Hello from[^{]*{/Hello from h$i {/" "$crate/src/main.rs"
    start=$(now)
    cargo build --release --quiet --manifest-path "$crate/Cargo.toml" --bin hello
    echo "$(now) - $start" | bc >>"$work/host.txt"
done
arca=$(median <"$work/arca.txt"); stage=$(median <"$work/cargo-stage.txt")
image=$(median <"$work/image-step.txt"); host=$(median <"$work/host.txt")
echo "median of $ITER: arca total ${arca} s = cargo stage ${stage} s + runtime-image step ${image} s (+ rest)"
echo "median of $ITER: host cargo build ${host} s"
echo "ratio (arca total - runtime-image step) / host: $(echo "scale=2; ($arca - $image) / $host" | bc)"
: >"$work/run.txt"
for i in $(seq 1 "$ITER"); do
    start=$(now)
    docker run --rm "$BASE" true
    echo "$(now) - $start" | bc >>"$work/run.txt"
done
echo "reference, same machine: median \`docker run --rm $BASE true\` $(median <"$work/run.txt") s (the fixed cost of one container)"

[ -n "${NO_RSS:-}" ] && exit 0
echo "== 3. peak RSS while importing the 1 GB base and writing its archive"
# arca-test/big-base: the runtime fixture plus 1 GiB (.ci/store-setup.sh).
/usr/bin/time -v "$ARCA" build rust "$crate" --profile release --features '' --host-build --force \
    --archive --base-image arca-test/big-base:latest >"$work/big.out" 2>"$work/big.log"
grep -E 'Maximum resident set size|Elapsed \(wall' "$work/big.log"
grep -E 'imported into the store|Image archive saved' "$work/big.log"
grep -oE 'archive .*' "$work/big.out"
