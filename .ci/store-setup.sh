#!/usr/bin/env bash
# The large runtime base of the layer-store tests and benchmarks (issue 9):
#   arca-test/big-base:latest  arca-test/busybox plus one 1 GiB layer of
#                              random bytes (so the image is >= 1 GB)
# Idempotent: reused while its `arca.fixture` label matches BIG_VERSION.
# Needs a running engine and the busybox fixture (.ci/docker-up.sh,
# .ci/fixtures.sh).
set -euo pipefail

BIG_TAG=arca-test/big-base:latest
BIG_VERSION=busybox-glibc-3-plus-1gib-1
RUNTIME_TAG=arca-test/busybox:latest

say() { echo "store-setup: $*" >&2; }

if [ "$(docker image inspect -f '{{index .Config.Labels "arca.fixture"}}' "$BIG_TAG" 2>/dev/null)" = "$BIG_VERSION" ]; then
    say "$BIG_TAG present; reusing"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
say "building $BIG_TAG (1 GiB of random bytes on $RUNTIME_TAG)"
cat >"$WORK/Dockerfile" <<DOCKERFILE
FROM $RUNTIME_TAG
RUN head -c 1073741824 /dev/urandom > /big.bin
LABEL arca.fixture=$BIG_VERSION
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$BIG_TAG" "$WORK" >/dev/null
say "$BIG_TAG ready: $(docker image inspect -f '{{.Size}}' "$BIG_TAG") bytes"
