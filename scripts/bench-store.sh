#!/usr/bin/env bash
# Layer-store benchmarks (BENCHMARKS.md, "Images over a layer store").
# Needs the engine and fixtures (.ci/docker-up.sh, .ci/fixtures.sh,
# .ci/store-setup.sh for the 1 GiB base). For each runtime base (the
# >= 1 GB arca-test/big-base and the busybox fixture), with a private
# ARCA_HOME and a copy of examples/hello (host builds: the compile is the
# same for both sides; the image step is what is measured):
#   1. first build on a new base: the base import (the "imported ... in X s"
#      stage figure) vs a plain `docker save` of the base to a file
#   2. rebuild after a one-line change, whole `arca build rust --host-build`
#      vs host `cargo build --release` of the same change
#   3. disk added to $ARCA_HOME by a further artifact (--force, same
#      binary) and by a one-line change, vs the binary layer
#   4. `arca export` of the image vs `cp` of the same bytes
# ITER runs each, medians. Removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-5}
cargo build --release --quiet
ARCA=$PWD/target/release/arca
BASES=(arca-test/big-base:latest nvidia/cuda:12.8.1-runtime-ubuntu24.04)
work=$(mktemp -d)
cleanup() {
    for tag in $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^arca-local:hello-' || true); do
        if grep -qx "$tag" "$work/tags" 2>/dev/null; then docker rmi -f "$tag" >/dev/null 2>&1 || true; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
home_bytes() { find "$ARCA_HOME" -type f -printf '%i %s\n' | sort -u | awk '{s+=$2} END {print s+0}'; }
record_tag() { grep -oE 'arca-local:hello-[a-z0-9]+' "$1" | head -1 >>"$work/tags"; }
id_of() { grep -oE 'artifact [a-z0-9]{8}' "$1" | head -1 | cut -d' ' -f2; }

for BASE in "${BASES[@]}"; do
    docker image inspect "$BASE" >/dev/null
    name=$(echo "$BASE" | tr '/:' '__')
    dir=$work/$name
    mkdir -p "$dir"
    cp -r examples/hello "$dir/hello"
    rm -rf "$dir/hello/target"
    crate=$(cd "$dir/hello" && pwd -P)
    export ARCA_HOME=$dir/home
    flags=(--profile release --features '' --host-build --base-image "$BASE")
    base_size=$(docker image inspect -f '{{.Size}}' "$BASE")
    echo "== $BASE ($base_size bytes)"
    cargo build --release --quiet --manifest-path "$crate/Cargo.toml"

    # 1. base import vs docker save
    : >"$dir/import.txt"; : >"$dir/save.txt"
    for i in $(seq 1 "$ITER"); do
        rm -rf "$ARCA_HOME"
        "$ARCA" build rust "$crate" "${flags[@]}" --force >"$dir/out" 2>"$dir/log"
        record_tag "$dir/out"
        grep -oE 'imported into the store: .* in [0-9.]+ s' "$dir/log" | grep -oE '[0-9.]+ s$' | cut -d' ' -f1 >>"$dir/import.txt"
        start=$(now)
        docker save -o "$dir/save.tar" "$BASE"
        echo "$(now) - $start" | bc >>"$dir/save.txt"
        rm -f "$dir/save.tar"
    done
    import=$(median <"$dir/import.txt"); save=$(median <"$dir/save.txt")
    echo "1. base import median ${import} s vs docker save ${save} s: ratio $(echo "scale=2; $import / $save" | bc) (goal <= 1.2)"

    # 2. one-line rebuild vs host cargo
    : >"$dir/arca.txt"; : >"$dir/host.txt"
    for i in $(seq 1 "$ITER"); do
        sed -i "s/Hello from[^{]*{/Hello from v$i {/" "$crate/src/main.rs"
        start=$(now)
        "$ARCA" build rust "$crate" "${flags[@]}" >"$dir/out" 2>"$dir/log"
        echo "$(now) - $start" | bc >>"$dir/arca.txt"
        record_tag "$dir/out"
        sed -i "s/Hello from[^{]*{/Hello from h$i {/" "$crate/src/main.rs"
        start=$(now)
        cargo build --release --quiet --manifest-path "$crate/Cargo.toml" --bin hello
        echo "$(now) - $start" | bc >>"$dir/host.txt"
    done
    arca=$(median <"$dir/arca.txt"); host=$(median <"$dir/host.txt")
    echo "2. one-line rebuild median: arca build ${arca} s vs host cargo ${host} s: +$(echo "$arca - $host" | bc) s (goal <= +0.5 s)"
    grep -E 'Runtime image assembled|Loaded into the engine' "$dir/log" | sed 's/^ */   last run: /'

    # 3. disk per further artifact
    before=$(home_bytes)
    "$ARCA" build rust "$crate" "${flags[@]}" --force >"$dir/out" 2>"$dir/log"
    record_tag "$dir/out"
    id=$(id_of "$dir/out")
    after=$(home_bytes)
    layer=$(python3 -c "import json,sys; d='$ARCA_HOME/containers/$id/image'; i=json.load(open(d+'/index.json')); m=json.load(open(d+'/blobs/sha256/'+i['manifests'][0]['digest'][7:])); print(m['layers'][-1]['size'])")
    echo "3. --force artifact (same binary layer): +$((after - before)) bytes; binary layer $layer bytes (goal <= layer + 1 MB)"
    sed -i "s/Hello from[^{]*{/Hello from d {/" "$crate/src/main.rs"
    before=$(home_bytes)
    "$ARCA" build rust "$crate" "${flags[@]}" >"$dir/out" 2>"$dir/log"
    record_tag "$dir/out"
    id=$(id_of "$dir/out")
    after=$(home_bytes)
    layer=$(python3 -c "import json,sys; d='$ARCA_HOME/containers/$id/image'; i=json.load(open(d+'/index.json')); m=json.load(open(d+'/blobs/sha256/'+i['manifests'][0]['digest'][7:])); print(m['layers'][-1]['size'])")
    echo "   one-line change artifact: +$((after - before)) bytes; its binary layer $layer bytes; margin $((after - before - layer)) bytes"

    # 4. export vs cp
    : >"$dir/export.txt"; : >"$dir/cp.txt"
    for i in $(seq 1 "$ITER"); do
        rm -f "$dir/export.tar" "$dir/copy.tar"
        start=$(now)
        "$ARCA" export "$id" -o "$dir/export.tar" >/dev/null 2>&1
        echo "$(now) - $start" | bc >>"$dir/export.txt"
        start=$(now)
        cp "$dir/export.tar" "$dir/copy.tar"
        echo "$(now) - $start" | bc >>"$dir/cp.txt"
    done
    export_s=$(median <"$dir/export.txt"); cp_s=$(median <"$dir/cp.txt")
    echo "4. arca export median ${export_s} s vs cp ${cp_s} s of $(stat -c %s "$dir/export.tar") bytes: ratio $(echo "scale=2; $export_s / $cp_s" | bc) (goal <= 1.5)"
    rm -f "$dir/export.tar" "$dir/copy.tar"
    rm -rf "$ARCA_HOME"
done
