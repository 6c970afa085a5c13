#!/usr/bin/env bash
# A base fetched from a registry by Arca (BENCHMARKS.md, "Bases fetched
# from a registry"). Needs the engine, the fixtures, the 1 GiB base
# (.ci/store-setup.sh) and docker-registry + skopeo (.ci/registry-setup.sh).
#   1. BASE goes into a loopback docker-registry with skopeo (gzip layers)
#   2. first `arca build rust --host-build` on REGISTRY/base:1 with a private
#      ARCA_HOME (the engine lacks that reference): the fetch figure of the
#      build ("fetched ... in X s") vs `skopeo copy docker://REF oci:DIR` of
#      the same reference (an independent client downloading, verifying and
#      writing the same blobs; it keeps them compressed, Arca unpacks them).
#      Not `docker pull`: the engine holds BASE's layers already, so it
#      downloads nothing.
#   3. rebuild after a one-line change: the whole build, and the registry
#      requests it made (0 expected)
# ITER runs of 2 and 3, medians. Removes what it made. Uses the dev build
# (dependencies at opt-level 2, as Cargo.toml sets).
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-3}
BASE=${BASE:-arca-test/big-base:latest}
cargo build --quiet
ARCA=$PWD/target/debug/arca
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REF=127.0.0.1:$port/base:1
cat >"$work/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>"$work/registry.err" &
registry=$!
cleanup() {
    kill "$registry" 2>/dev/null || true
    docker rmi "$REF" >/dev/null 2>&1 || true
    for tag in $(cat "$work/tags" 2>/dev/null); do docker rmi -f "$tag" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

start=$(now)
skopeo copy -q --dest-tls-verify=false "docker-daemon:$BASE" "docker://$REF"
echo "skopeo copy into the registry: $(echo "$(now) - $start" | bc) s"
docker image inspect "$REF" >/dev/null 2>&1 && { echo "the engine must lack $REF"; exit 1; }

cp -r examples/hello "$work/hello"
crate=$work/hello
(cd "$crate" && cargo build --release --quiet)
build() {
    "$ARCA" build rust "$crate" --profile release --features "" --host-build --base-image "$REF" "$@" 2>&1
}

fetches=() pulls=() rebuilds=() requests=()
for i in $(seq "$ITER"); do
    export ARCA_HOME=$work/home-$i
    start=$(now)
    build >"$work/first.log"
    whole=$(echo "$(now) - $start" | bc)
    grep -oE 'arca-local:hello-[a-z0-9]+' "$work/first.log" | head -1 >>"$work/tags"
    fetch=$(grep -oE 'fetched from .* in [0-9.]+ s' "$work/first.log" | grep -oE '[0-9.]+ s$' | cut -d' ' -f1)
    fetches+=("$fetch")
    echo "run $i: first build ${whole} s, of which the fetch ${fetch} s"

    start=$(now)
    skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$work/oci-$i"
    pull=$(echo "$(now) - $start" | bc)
    pulls+=("$pull")
    rm -rf "$work/oci-$i"
    echo "run $i: skopeo copy to oci: ${pull} s"

    sed -i "s/Hello from/Hello $i from/" "$crate/src/main.rs"
    (cd "$crate" && cargo build --release --quiet)
    before=$(grep -c ' /v2/' "$work/registry.log" || true)
    start=$(now)
    build >"$work/second.log"
    rebuild=$(echo "$(now) - $start" | bc)
    grep -oE 'arca-local:hello-[a-z0-9]+' "$work/second.log" | head -1 >>"$work/tags"
    after=$(grep -c ' /v2/' "$work/registry.log" || true)
    rebuilds+=("$rebuild")
    requests+=("$((after - before))")
    echo "run $i: one-line rebuild ${rebuild} s ($(grep -oE 'Loaded[^(]*\([^)]*\)' "$work/second.log")), registry requests $((after - before))"
    sed -i "s/Hello $i from/Hello from/" "$crate/src/main.rs"
done
fetch=$(printf '%s\n' "${fetches[@]}" | median)
pull=$(printf '%s\n' "${pulls[@]}" | median)
echo "median fetch into the store ${fetch} s vs skopeo copy ${pull} s: ratio $(echo "scale=2; $fetch / $pull" | bc)x"
echo "median one-line rebuild $(printf '%s\n' "${rebuilds[@]}" | median) s; registry requests during rebuilds: ${requests[*]}"
