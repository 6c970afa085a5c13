#!/usr/bin/env bash
# Real-crate benchmarks (BENCHMARKS.md, "Real crates").
# Needs the engine and fixture images (.ci/docker-up.sh, .ci/fixtures.sh)
# and network access to crates.io (the first run downloads; both sides
# then build with downloads warm). For each fixture of
# tests/fixtures/real-crates:
#   cold   `arca build rust` with an empty target cache (builder image and
#          cargo downloads warm) vs host `cargo build --release` into an
#          empty target dir (host downloads warm)
#   edit   a one-line change of the binary's source rebuilt by
#          `arca build rust` vs host `cargo build` of the same change
#          (ITER iterations, medians)
# Host cargo is the same toolchain as the fixture builder's (.ci/fixtures.sh
# copies the host's). Then the staleness matrix of tests/real_crates.rs, counted.
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-3}
# PROFILE=dev measures a debug arca (its dependencies are optimized anyway).
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" --quiet
ARCA=$PWD/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/arca
BASE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
work=$(mktemp -d)
export ARCA_HOME=$work/home
mkdir -p "$ARCA_HOME/cache/rust"
# Downloads warm for both sides: one shared cargo home for arca's builds.
shared=${ARCA_TEST_CARGO_CACHE:-/var/cache/arca-crates/cargo-home}
mkdir -p "$shared"
ln -s "$shared" "$ARCA_HOME/cache/rust/cargo-home"
cleanup() {
    for tag in $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^arca-local:' || true); do
        if grep -qs "local_tag = \"$tag\"" "$ARCA_HOME"/containers/*/metadata.toml; then
            docker rmi -f "$tag" >/dev/null 2>&1 || true
        fi
    done
    docker ps -aq --filter "label=io.khoek.arca.session" | while read -r id; do
        dir=$(docker inspect -f '{{index .Config.Labels "io.khoek.arca.crate-dir"}}' "$id" 2>/dev/null || true)
        case "$dir" in "$work"/*) docker rm -f "$id" >/dev/null 2>&1 || true ;; esac
    done
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
stage_secs() { grep -oE "$1 \(([0-9.]+) s\)" | grep -oE '[0-9]+\.[0-9]+' | tail -1; }
# The image step of a build log, in seconds: assembling the runtime image
# over the layer store and loading it into the engine.
image_secs() {
    local log=$1 assembled loaded
    # Absent when the binary came out byte-identical and its image was reused.
    assembled=$(grep -oE 'Runtime image assembled: [^(]*\(([0-9.]+) s\)' "$log" | grep -oE '[0-9]+\.[0-9]+ s\)$' | grep -oE '[0-9.]+' | tail -1 || true)
    loaded=$(grep -oE 'Loaded into the engine: .*\(([0-9.]+) s\)' "$log" | grep -oE '[0-9]+\.[0-9]+ s\)$' | grep -oE '[0-9.]+' | tail -1 || true)
    echo "${assembled:-0} + ${loaded:-0}" | bc
}

# A crate at the scale users build, from crates.io (not committed): ripgrep
# 14.1.1, 58 packages. BIG=0 leaves it out (about ten more minutes here).
if [ "${BIG:-1}" = 1 ]; then
    mkdir -p "$work/dl"
    curl -fsS -o "$work/dl/ripgrep.crate" https://static.crates.io/crates/ripgrep/ripgrep-14.1.1.crate
    tar -xzf "$work/dl/ripgrep.crate" -C "$work/dl"
fi

# name, member dir, binary, source file for the one-line change
fixtures=(
    "c-build||c-build|src/main.rs"
    "make-build||make-build|src/main.rs"
    "ws|app|ws-app|app/src/main.rs"
    "no-lock||no-lock|src/main.rs"
    "two-bins||second|src/bin/second.rs"
)
if [ "${BIG:-1}" = 1 ]; then fixtures+=("ripgrep||rg|crates/core/main.rs"); fi
printf '%-11s %9s %9s %9s %6s %6s %9s %9s %9s %8s\n' crate "cold arca" "  (cargo)" "cold host" ratio "cargo" "edit arca" "  (image)" "edit host" "diff"
for entry in "${fixtures[@]}"; do
    IFS='|' read -r name member bin source <<<"$entry"
    if [ "$name" = ripgrep ]; then
        cp -r "$work/dl/ripgrep-14.1.1" "$work/$name"
    else
        cp -r "tests/fixtures/real-crates/$name" "$work/$name"
    fi
    root="$work/$name"
    crate="$root${member:+/$member}"
    flags=(--profile release --features '' --base-image "$BASE" --bin "$bin")
    # Warm-up: builder image and downloads (not measured), then a cold target.
    "$ARCA" build rust "$crate" "${flags[@]}" --force >/dev/null 2>"$work/warm.log" || { cat "$work/warm.log"; exit 1; }
    rm -rf "$ARCA_HOME"/cache/rust/builds/*
    docker ps -aq --filter "label=io.khoek.arca.crate-dir=$crate" | xargs -r docker rm -f >/dev/null
    start=$(now)
    "$ARCA" build rust "$crate" "${flags[@]}" --force >/dev/null 2>"$work/cold.log" || { cat "$work/cold.log"; exit 1; }
    cold_arca=$(echo "$(now) - $start" | bc)
    cold_cargo=$(stage_secs 'Containerized cargo build finished for `[^`]*`.' <"$work/cold.log")
    host_target=$work/host-target-$name
    cargo build --locked --release --quiet --manifest-path "$crate/Cargo.toml" --bin "$bin" --target-dir "$work/host-warmup" 2>/dev/null
    start=$(now)
    cargo build --locked --release --quiet --manifest-path "$crate/Cargo.toml" --bin "$bin" --target-dir "$host_target"
    cold_host=$(echo "$(now) - $start" | bc)
    : >"$work/edit-arca.txt"; : >"$work/edit-host.txt"; : >"$work/edit-image.txt"
    for i in $(seq 1 "$ITER"); do
        echo "// arca edit $i" >>"$root/$source"
        start=$(now)
        "$ARCA" build rust "$crate" "${flags[@]}" >/dev/null 2>"$work/edit.log" || { cat "$work/edit.log"; exit 1; }
        echo "$(now) - $start" | bc >>"$work/edit-arca.txt"
        image_secs "$work/edit.log" >>"$work/edit-image.txt"
        echo "// host edit $i" >>"$root/$source"
        start=$(now)
        cargo build --locked --release --quiet --manifest-path "$crate/Cargo.toml" --bin "$bin" --target-dir "$host_target"
        echo "$(now) - $start" | bc >>"$work/edit-host.txt"
    done
    edit_arca=$(median <"$work/edit-arca.txt")
    edit_host=$(median <"$work/edit-host.txt")
    edit_image=$(median <"$work/edit-image.txt")
    printf '%-11s %8.2fs %8.2fs %8.2fs %5.2fx %5.2fx %8.2fs %8.2fs %8.2fs %+7.2fs\n' "$name" \
        "$cold_arca" "$cold_cargo" "$cold_host" \
        "$(echo "$cold_arca / $cold_host" | bc -l)" "$(echo "$cold_cargo / $cold_host" | bc -l)" \
        "$edit_arca" "$edit_image" "$edit_host" "$(echo "$edit_arca - $edit_host" | bc -l)"
done

echo "== staleness matrix (tests/real_crates.rs, cargo's fresh as ground truth)"
ARCA_REQUIRE_DOCKER=1 cargo test --profile "$PROFILE" --quiet --test real_crates -- --nocapture --test-threads 1 2>/dev/null |
    grep -o 'matrix .*' >"$work/matrix.txt" || true
total=$(wc -l <"$work/matrix.txt")
false_stale=$(grep -c 'cargo fresh | arca stale' "$work/matrix.txt" || true)
missed_stale=$(grep -c 'cargo rebuilds | arca fresh' "$work/matrix.txt" || true)
sed 's/^matrix /  /' "$work/matrix.txt"
echo "real crates: false-stale $false_stale of $total, missed-stale $missed_stale of $total"
