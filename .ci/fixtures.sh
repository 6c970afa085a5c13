#!/usr/bin/env bash
# Build the local fixture images the Docker tests use (no registry is
# reachable). Idempotent: an image already present under its tag is reused.
#   arca-test/busybox:latest       busybox-static rootfs with the host's glibc runtime
#                                  libraries (binaries built in the bookworm builder
#                                  link against glibc, as on a real CUDA runtime) and CA bundle
#     also nvidia/cuda:12.8.1-runtime-ubuntu24.04, nvidia/cuda:12.8.1-base-ubuntu24.04
#   arca-test/rust-builder:latest  debootstrap minbase bookworm + gcc + host Rust toolchain
#     also nvidia/cuda:12.8.1-devel-ubuntu24.04, and debian:bookworm-slim (the README
#     quickstart's base) unless the engine has a real one
# The debootstrap rootfs is cached as a tarball under /var/cache/arca-fixtures.
# Needs root and a running engine (.ci/docker-up.sh).
set -euo pipefail

CACHE=/var/cache/arca-fixtures
RUNTIME_TAG=arca-test/busybox:latest
BUILDER_TAG=arca-test/rust-builder:latest
RUNTIME_ALIASES=(nvidia/cuda:12.8.1-runtime-ubuntu24.04 nvidia/cuda:12.8.1-base-ubuntu24.04)
BUILDER_ALIASES=(nvidia/cuda:12.8.1-devel-ubuntu24.04)

say() { echo "fixtures: $*" >&2; }
# Bump when an image's recipe changes, so existing machines rebuild it.
RUNTIME_VERSION=busybox-glibc-3
BUILDER_VERSION=bookworm-rust-1
have_image() {
    [ "$(docker image inspect -f '{{index .Config.Labels "arca.fixture"}}' "$1" 2>/dev/null)" = "$2" ]
}
apt_install() {
    say "installing $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
tag_aliases() {
    local src=$1; shift
    for alias in "$@"; do
        docker tag "$src" "$alias"
    done
}

BASE_TAR="$CACHE/bookworm-minbase-gcc.tar"
base_tar=$BASE_TAR
# The debootstrap rootfs both images come from (cached as a tarball).
ensure_rootfs() {
    if [ ! -s "$base_tar" ]; then
        if ! command -v debootstrap >/dev/null 2>&1; then apt_install debootstrap; fi
        local mirror
        mirror=$({ grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true; } |
            awk '$2 !~ /security/ {print $2}' | sed -n 1p)
        mirror=${mirror:-http://deb.debian.org/debian}
        say "debootstrap minbase bookworm from $mirror (about a minute)"
        local root="$WORK/bookworm"
        debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
            bookworm "$root" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
            tail -n 30 "$WORK/debootstrap.log" >&2
            exit 1
        }
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar --numeric-owner -C "$root" -cf "$base_tar.partial" .
        mv "$base_tar.partial" "$base_tar"
        rm -rf "$root"
    else
        say "reusing cached rootfs $base_tar"
    fi
}

mkdir -p "$CACHE"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# (a) runtime base: busybox-static
if have_image "$RUNTIME_TAG" "$RUNTIME_VERSION"; then
    say "$RUNTIME_TAG present; reusing"
else
    if ! dpkg -s busybox-static >/dev/null 2>&1; then apt_install busybox-static; fi
    root="$WORK/busybox"
    mkdir -p "$root/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/usr/local/bin"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    else
        say "warning: host has no /etc/ssl/certs/ca-certificates.crt; runtime base gets none"
    fi
    # glibc runtime libraries from the builder's own Debian, so binaries
    # built there run here whatever the host is.
    ensure_rootfs
    libdir=/lib/x86_64-linux-gnu
    libs=(ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1)
    mkdir -p "$root$libdir" "$root/lib64" "$WORK/libs"
    tar -C "$WORK/libs" -xf "$BASE_TAR" "${libs[@]/#/./usr/lib/x86_64-linux-gnu/}"
    for lib in "${libs[@]}"; do
        cp -L "$WORK/libs/usr/lib/x86_64-linux-gnu/$lib" "$root$libdir/$lib"
    done
    ln -sf "$libdir/ld-linux-x86-64.so.2" "$root/lib64/ld-linux-x86-64.so.2"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    say "importing busybox rootfs as $RUNTIME_TAG"
    tar --numeric-owner -C "$root" -c . |
        docker import --change "LABEL arca.fixture=$RUNTIME_VERSION" \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$RUNTIME_TAG" >/dev/null
fi
tag_aliases "$RUNTIME_TAG" "${RUNTIME_ALIASES[@]}"

# (b) builder base: debootstrap minbase + gcc + host toolchain
if have_image "$BUILDER_TAG" "$BUILDER_VERSION"; then
    say "$BUILDER_TAG present; reusing"
else
    ensure_rootfs
    root="$WORK/builder"
    mkdir -p "$root"
    tar --numeric-owner -C "$root" -xf "$base_tar"
    sysroot=$(rustc --print sysroot)
    say "adding host Rust toolchain from $sysroot"
    mkdir -p "$root/usr/local/rust"
    (cd "$sysroot" && tar --exclude=./share -c .) | tar -C "$root/usr/local/rust" -x
    say "importing builder rootfs as $BUILDER_TAG"
    tar --numeric-owner -C "$root" -c . |
        docker import --change "LABEL arca.fixture=$BUILDER_VERSION" \
            --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BUILDER_TAG" >/dev/null
    rm -rf "$root"
fi
tag_aliases "$BUILDER_TAG" "${BUILDER_ALIASES[@]}"

# (c) the README quickstart's base (examples/hello): Debian bookworm with a
# Rust toolchain, tagged only when the engine has no debian:bookworm-slim of
# its own (a real one is never replaced).
QUICKSTART_TAG=debian:bookworm-slim
if ! docker image inspect "$QUICKSTART_TAG" >/dev/null 2>&1 || have_image "$QUICKSTART_TAG" "$BUILDER_VERSION"; then
    tag_aliases "$BUILDER_TAG" "$QUICKSTART_TAG"
else
    say "$QUICKSTART_TAG is a real image here; leaving it as it is"
fi

say "fixture images ready:"
docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E 'arca-test|nvidia/cuda|debian:bookworm-slim' >&2
