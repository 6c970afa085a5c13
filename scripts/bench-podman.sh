#!/usr/bin/env bash
# One-line rebuild of the example crate through podman vs through Docker, in
# the same run (BENCHMARKS.md, "Podman vs Docker"). Needs Docker and its
# fixtures (.ci/docker-up.sh, .ci/fixtures.sh) and podman's service
# (.ci/podman-setup.sh). Each engine gets its own copy of examples/hello and
# its own ARCA_HOME; after one warm-up build each, the two engines take turns
# (ITER one-line changes each), so both see the same machine load. Prints the
# medians of the whole `arca build rust` and of its stages, and the ratio.
# Removes the containers and images it made.
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-7}
PODMAN_HOST=${PODMAN_HOST:-unix:///run/arca-podman.sock}
cargo build --release --quiet
ARCA=$PWD/target/release/arca
BASE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
work=$(mktemp -d)
engines=(docker podman)
declare -A host=([docker]=unix:///var/run/docker.sock [podman]=$PODMAN_HOST)
cleanup() {
    for engine in "${engines[@]}"; do
        crate=$(cd "$work/$engine/hello" 2>/dev/null && pwd -P) || continue
        "$engine" ps -aq --filter "label=io.khoek.arca.crate-dir=$crate" | xargs -r "$engine" rm -f >/dev/null 2>&1 || true
        grep -ho 'arca-local:hello-[a-z0-9]*' "$work/$engine"/*.log 2>/dev/null | sort -u |
            xargs -r "$engine" rmi -f >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
stage_secs() { grep -oE "$1 \(([0-9.]+) s\)" | grep -oE '[0-9]+\.[0-9]+' | tail -1; }
# The image step of a build log: the runtime base checked in the store,
# the image assembled, and its load into the engine (or, on an engine that
# takes no thin archives, its build over the base there).
image_secs() {
    grep -E '^ *(Base image |Runtime image assembled|Loaded |Built over the base)' "$1" |
        grep -oE '\(([0-9.]+) s\)$' | grep -oE '[0-9.]+' | paste -sd+ | bc
}
build() { # engine log
    local engine=$1
    ARCA_HOME="$work/$engine/home" DOCKER_HOST=${host[$engine]} \
        "$ARCA" --engine "$engine" build rust "$work/$engine/hello" \
        --profile release --features '' --base-image "$BASE" >"$2.out" 2>"$2"
    cat "$2.out" >>"$2"
}
for engine in "${engines[@]}"; do
    mkdir -p "$work/$engine"
    cp -r examples/hello "$work/$engine/hello"
    rm -rf "$work/$engine/hello/target"
    build "$engine" "$work/$engine/warmup.log"
    grep -q "runtime = \"$engine\"" "$work/$engine"/home/containers/*/metadata.toml
    : >"$work/$engine/total.txt"; : >"$work/$engine/cargo.txt"; : >"$work/$engine/image.txt"
done
for i in $(seq 1 "$ITER"); do
    for engine in "${engines[@]}"; do
        sed -i "s/Hello from[^{]*{/Hello from v$i {/" "$work/$engine/hello/src/main.rs"
        log="$work/$engine/step$i.log"
        start=$(now)
        build "$engine" "$log"
        echo "$(now) - $start" | bc >>"$work/$engine/total.txt"
        stage_secs 'Containerized cargo build finished for `hello`.' <"$log" >>"$work/$engine/cargo.txt"
        image_secs "$log" >>"$work/$engine/image.txt"
    done
done
declare -A total
for engine in "${engines[@]}"; do
    total[$engine]=$(median <"$work/$engine/total.txt")
    printf '%-7s one-line rebuild (median of %s): %.2f s = cargo stage %.2f s + image step %.2f s\n' \
        "$engine" "$ITER" "${total[$engine]}" "$(median <"$work/$engine/cargo.txt")" "$(median <"$work/$engine/image.txt")"
done
printf 'podman / docker: %.2f\n' "$(echo "${total[podman]} / ${total[docker]}" | bc -l)"
