#!/usr/bin/env bash
# Push benchmarks (BENCHMARKS.md, "Pushing to a registry"), on this machine,
# in one run:
#  1. `arca push` of a 1 GiB image (a 1 GiB random base layer + an 8 MiB
#     "binary" layer, OCI layout as the layer store keeps it) to a fresh
#     loopback registry, against `skopeo copy oci:… docker://…` of the same
#     layout to another fresh registry (best of 2 each, alternating);
#  2. a re-push of the unchanged image: bytes sent and time;
#  3. a push after a one-line change of the binary: bytes sent, and bytes
#     the registry stored (its storage directory, counted before and after).
# Needs docker-registry and skopeo (.ci/registry-setup.sh) and a built
# `arca` (default target/release/arca, else target/debug/arca; ARCA_BIN=…).
set -euo pipefail
cd "$(dirname "$0")/.."

ARCA=${ARCA_BIN:-}
if [ -z "$ARCA" ]; then
    if [ -x target/release/arca ]; then ARCA=target/release/arca; else ARCA=target/debug/arca; fi
fi
ARCA=$(realpath "$ARCA")
work=$(mktemp -d /tmp/arca-bench-push.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_registry NAME -> sets REG (address) and REG_STORE (storage dir)
start_registry() {
    local name=$1 port
    port=$(free_port)
    mkdir -p "$work/$name"
    cat > "$work/$name/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/$name/storage
http:
  addr: 127.0.0.1:$port
YML
    docker-registry serve "$work/$name/config.yml" > "$work/$name/access.log" 2>"$work/$name/err.log" &
    pids+=($!)
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
        sleep 0.05
    done
    REG="127.0.0.1:$port"
    REG_STORE="$work/$name/storage"
}

stored_bytes() { # total bytes of blob files a registry stored
    find "$1/docker/registry/v2/blobs" -name data -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}'
}

# write_image LAYOUT_DIR BASE_TAR APP_TAR ARTIFACT_ID: an OCI layout and an
# artifact record for it in $ARCA_HOME.
write_image() {
    local layout=$1 base=$2 app=$3 id=$4
    mkdir -p "$layout/blobs/sha256"
    python3 - "$layout" "$base" "$app" <<'PY'
import hashlib, json, os, shutil, sys
layout, base, app = sys.argv[1:]
blobs = os.path.join(layout, "blobs", "sha256")
def put_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    hexd = h.hexdigest()
    target = os.path.join(blobs, hexd)
    if not os.path.exists(target):
        os.link(path, target)
    return hexd, os.path.getsize(path)
def put_bytes(data):
    hexd = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, hexd), "wb").write(data)
    return hexd, len(data)
layers = [put_file(base), put_file(app)]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/app"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + h for h, _ in layers]}}).encode()
ch, cs = put_bytes(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + ch, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + h, "size": s} for h, s in layers]}).encode()
mh, ms = put_bytes(manifest)
open(os.path.join(layout, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + mh, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
    open(os.path.join(layout, "index.json"), "w"))
PY
    cat > "$(dirname "$layout")/metadata.toml" <<TOML
schema_version = 3
artifact_id = "$id"
remote_tag = "demo-$id"
build_fingerprint = "$(printf '0%.0s' $(seq 64))"
kind = "rust"
created_at_epoch_ms = $(date +%s%3N)
crate_name = "demo"
crate_version = "0.1.0"
binary_name = "demo"
source_path = "$work/crate"
manifest_path = "$work/crate/Cargo.toml"
cargo_profile = "release"
cargo_features = []
base_image = "debian:bookworm-slim"
runtime = "docker"
local_tag = "arca-local:demo-$id"
archive_file = "image.tar"
TOML
}

export ARCA_HOME="$work/arca" HOME="$work/home"
mkdir -p "$ARCA_HOME/containers" "$HOME" "$work/crate" "$work/src"
echo "arca: $ARCA ($("$ARCA" --version))"
echo "skopeo: $(skopeo --version)"

echo "making a 1 GiB base layer and an 8 MiB binary layer..."
head -c $((1024 * 1024 * 1024)) /dev/urandom > "$work/src/base.bin"
tar --mtime=@0 --owner=0 --group=0 -C "$work/src" -cf "$work/base.tar" base.bin
rm "$work/src/base.bin"
python3 - "$work/src/app" one <<'PY'
import os, sys
path, version = sys.argv[1:]
rng = bytearray(os.urandom(8 << 20))
line = f'\nprintln!("{version}");\n'.encode()
rng[4 << 20 : (4 << 20) + len(line)] = line
open(path, "wb").write(rng)
PY
tar --mtime=@0 --owner=0 --group=0 -C "$work/src" -cf "$work/app1.tar" app
write_image "$ARCA_HOME/containers/bench001/image" "$work/base.tar" "$work/app1.tar" bench001
layout="$ARCA_HOME/containers/bench001/image"
image_bytes=$(du -cb "$layout"/blobs/sha256/* | tail -1 | cut -f1)
echo "image: $image_bytes bytes"
cat "$layout"/blobs/sha256/* > /dev/null   # both tools read from the page cache

best_arca=""; best_skopeo=""
for round in 1 2; do
    start_registry "arca$round"
    t0=$(now)
    "$ARCA" push bench001 --to "$REG/demo" --json > "$work/arca$round.json"
    t1=$(now)
    arca_s=$(echo "$t1 - $t0" | bc)
    start_registry "skopeo$round"
    t0=$(now)
    skopeo copy -q --dest-tls-verify=false "oci:$layout:bench" "docker://$REG/demo:bench"
    t1=$(now)
    skopeo_s=$(echo "$t1 - $t0" | bc)
    echo "round $round: arca push ${arca_s}s, skopeo copy ${skopeo_s}s"
    if [ -z "$best_arca" ] || (( $(echo "$arca_s < $best_arca" | bc) )); then best_arca=$arca_s; fi
    if [ -z "$best_skopeo" ] || (( $(echo "$skopeo_s < $best_skopeo" | bc) )); then best_skopeo=$skopeo_s; fi
done
ratio=$(echo "scale=2; $best_arca / $best_skopeo" | bc)
echo "1 GiB push: arca ${best_arca}s, skopeo ${best_skopeo}s (best of 2), ratio ${ratio}x"

# Registry arca2 now holds bench001 under demo.
arca_reg=$(python3 -c "import json;print(json.load(open('$work/arca2.json'))['tag'].split('/')[0])")
arca_store="$work/arca2/storage"
uploads_before=$(grep -c '/blobs/uploads/' "$work/arca2/access.log" || true)
t0=$(now)
"$ARCA" push bench001 --to "$arca_reg/demo" --json > "$work/repush.json"
t1=$(now)
uploads_after=$(grep -c '/blobs/uploads/' "$work/arca2/access.log" || true)
repush_ms=$(echo "($t1 - $t0) * 1000 / 1" | bc)
echo "re-push: $(python3 -c "import json;print(json.load(open('$work/repush.json'))['bytesSent'])") bytes sent, $((uploads_after - uploads_before)) upload requests, ${repush_ms} ms"

python3 - "$work/src/app" two <<'PY'
import sys
path, version = sys.argv[1:]
data = bytearray(open(path, "rb").read())
old = b'println!("one");'
i = data.index(old)
data[i:i + len(old)] = f'println!("{version}");'.encode()
open(path, "wb").write(data)
PY
tar --mtime=@0 --owner=0 --group=0 -C "$work/src" -cf "$work/app2.tar" app
write_image "$ARCA_HOME/containers/bench002/image" "$work/base.tar" "$work/app2.tar" bench002
app_layer=$(stat -c %s "$work/app2.tar")
stored_before=$(stored_bytes "$arca_store")
t0=$(now)
"$ARCA" push bench002 --to "$arca_reg/demo" --json > "$work/change.json"
t1=$(now)
stored_after=$(stored_bytes "$arca_store")
change_ms=$(echo "($t1 - $t0) * 1000 / 1" | bc)
sent=$(python3 -c "import json;print(json.load(open('$work/change.json'))['bytesSent'])")
echo "one-line change: $sent bytes sent, registry stored $((stored_after - stored_before)) new bytes; binary layer $app_layer bytes (+64 KiB budget = $((app_layer + 65536))), ${change_ms} ms"
