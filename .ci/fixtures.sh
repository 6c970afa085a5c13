#!/usr/bin/env bash
# Build the local fixture images the Docker tests use (no registry is
# reachable). Idempotent: an image already present under its tag is reused.
#   arca-test/busybox:latest       busybox-static rootfs with the host's glibc runtime
#                                  libraries (binaries built in the bookworm builder
#                                  link against glibc, as on a real CUDA runtime) and CA bundle
#     also nvidia/cuda:12.8.1-runtime-ubuntu24.04, nvidia/cuda:12.8.1-base-ubuntu24.04
#   arca-test/rust-builder:latest  debootstrap minbase bookworm + gcc + host Rust toolchain
#                                  (/usr/local/rust, first on PATH) + Debian's route to
#                                  cross-compile for linux/arm64 (rustc-web/cargo-web in
#                                  /usr/bin with libstd-rust-web-dev:arm64, gcc-aarch64-linux-gnu,
#                                  libc6-dev-arm64-cross; arm64 a dpkg architecture)
#     also nvidia/cuda:12.8.1-devel-ubuntu24.04, and debian:bookworm-slim (the README
#     quickstart's base) unless the engine has a real one
#   /var/cache/arca-fixtures/multi-base-oci  an OCI image layout (ref `latest`): an image
#                                  index of linux/amd64 (arca-test/busybox's layer) and
#                                  linux/arm64 (the same recipe from Debian's arm64
#                                  busybox-static and glibc), for the multi-platform tests
#                                  (tests/common/registry.rs `put_multi_platform_base`)
# The debootstrap rootfs is cached as a tarball under /var/cache/arca-fixtures, and
# so is the builder's rootfs after the cross packages (keyed by CROSS_VERSION).
# When the builder is rebuilt, Arca's builder images (`arca-builder:*`, tagged by the
# base's name, so they would be reused over the new one) are removed, and the
# replaced fixture image once nothing uses it.
# Needs root, a running engine (.ci/docker-up.sh), and arm64 apt indices and
# qemu-aarch64-static on the host (.ci/cross-setup.sh).
set -euo pipefail

CACHE=/var/cache/arca-fixtures
RUNTIME_TAG=arca-test/busybox:latest
BUILDER_TAG=arca-test/rust-builder:latest
RUNTIME_ALIASES=(nvidia/cuda:12.8.1-runtime-ubuntu24.04 nvidia/cuda:12.8.1-base-ubuntu24.04)
BUILDER_ALIASES=(nvidia/cuda:12.8.1-devel-ubuntu24.04)

say() { echo "fixtures: $*" >&2; }
# Bump when an image's recipe changes, so existing machines rebuild it.
RUNTIME_VERSION=busybox-glibc-3
BUILDER_VERSION=bookworm-rust-cross-arm64-2
# What the builder's rootfs gets in a chroot (cached as CROSS_TAR, named by this).
CROSS_VERSION=bookworm-cross-arm64-1
CROSS_PACKAGES=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
# The multi-platform layout; rebuilt when this or RUNTIME_VERSION changes.
MULTI_VERSION=multi-busybox-1
MULTI_LAYOUT="$CACHE/multi-base-oci"
FIXTURE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fixture_label() {
    docker image inspect -f '{{index .Config.Labels "arca.fixture"}}' "$1" 2>/dev/null || true
}
have_image() {
    [ "$(fixture_label "$1")" = "$2" ]
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
CROSS_TAR="$CACHE/$CROSS_VERSION.tar"
# host_mirror main|security: the host's Debian mirror or security mirror, from
# apt's sources (Debian's own when none is found).
host_mirror() {
    local found
    found=$({ grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
        awk -v want="$1" '($2 ~ /security/) == (want == "security") {print $2}' | sed -n 1p)
    if [ "$1" = security ]; then
        echo "${found:-http://deb.debian.org/debian-security}"
    else
        echo "${found:-http://deb.debian.org/debian}"
    fi
}
# The debootstrap rootfs both images come from (cached as a tarball).
ensure_rootfs() {
    if [ ! -s "$base_tar" ]; then
        if ! command -v debootstrap >/dev/null 2>&1; then apt_install debootstrap; fi
        local mirror
        mirror=$(host_mirror main)
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
# The builder's rootfs: the debootstrap one plus CROSS_PACKAGES, installed by
# apt in a chroot from the host's mirrors (bookworm, bookworm-updates and
# bookworm-security: rustc-web 1.96 is only there), with arm64 a dpkg
# architecture (for libstd-rust-web-dev:arm64). Its apt sources are left as
# debian:bookworm-slim's (one debian.sources); apt's lists and caches are
# removed. Cached as CROSS_TAR; older versions' tars are deleted.
ensure_cross_rootfs() {
    if [ -s "$CROSS_TAR" ]; then
        say "reusing cached builder rootfs $CROSS_TAR"
        return
    fi
    ensure_rootfs
    local root="$WORK/cross" mirror security start=$SECONDS sysroot old
    mirror=$(host_mirror main)
    security=$(host_mirror security)
    say "installing ${CROSS_PACKAGES[*]} in a chroot from $mirror and $security (about a minute)"
    mkdir -p "$root"
    tar --numeric-owner -C "$root" -xf "$base_tar"
    rm -f "$root/etc/apt/sources.list"
    printf '%s\n' "Types: deb" "URIs: $mirror" "Suites: bookworm bookworm-updates" "Components: main" \
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
        "Types: deb" "URIs: $security" "Suites: bookworm-security" "Components: main" \
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$root/etc/apt/sources.list.d/debian.sources"
    # The host's resolver for apt, the rootfs's own back afterwards.
    cp -a "$root/etc/resolv.conf" "$WORK/resolv.conf.rootfs"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    if ! {
        chroot "$root" dpkg --add-architecture arm64 &&
            chroot "$root" apt-get update &&
            chroot "$root" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y --no-install-recommends "${CROSS_PACKAGES[@]}" &&
            chroot "$root" apt-get clean
    } >"$WORK/cross.log" 2>&1; then
        tail -n 30 "$WORK/cross.log" >&2
        exit 1
    fi
    cp -a "$WORK/resolv.conf.rootfs" "$root/etc/resolv.conf"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    sysroot=$(chroot "$root" /usr/bin/rustc --print sysroot)
    if [ ! -d "$root$sysroot/lib/rustlib/aarch64-unknown-linux-gnu/lib" ]; then
        say "error: the chroot's /usr/bin/rustc (sysroot $sysroot) has no aarch64-unknown-linux-gnu std"
        exit 1
    fi
    say "chroot done in $((SECONDS - start))s: $(chroot "$root" /usr/bin/rustc --version), $(chroot "$root" /usr/bin/cargo --version)"
    tar --numeric-owner -C "$root" -cf "$CROSS_TAR.partial" .
    mv "$CROSS_TAR.partial" "$CROSS_TAR"
    rm -rf "$root"
    for old in "$CACHE"/bookworm-cross-*.tar; do
        if [ "$old" != "$CROSS_TAR" ] && [ -e "$old" ]; then
            say "removing the older builder rootfs $old"
            rm -f "$old"
        fi
    done
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

# (b) builder base: debootstrap minbase + gcc + the cross packages + host toolchain
old_builder=""
if have_image "$BUILDER_TAG" "$BUILDER_VERSION"; then
    say "$BUILDER_TAG present; reusing"
else
    old_builder=$(docker image inspect -f '{{.Id}}' "$BUILDER_TAG" 2>/dev/null || true)
    build_start=$SECONDS
    sysroot=$(rustc --print sysroot)
    # Debian's rustc (/usr, .ci/cross-setup.sh) first on PATH would copy all of /usr.
    if [ "$sysroot" = /usr ] || [ ! -x "$sysroot/bin/cargo" ]; then
        say "error: the host's rustc ($(command -v rustc), sysroot $sysroot) is no rustup toolchain to copy; put rustup's first on PATH"
        exit 1
    fi
    ensure_cross_rootfs
    root="$WORK/builder"
    mkdir -p "$root"
    tar --numeric-owner -C "$root" -xf "$CROSS_TAR"
    say "adding host Rust toolchain from $sysroot"
    mkdir -p "$root/usr/local/rust"
    (cd "$sysroot" && tar --exclude=./share -c .) | tar -C "$root/usr/local/rust" -x
    say "importing builder rootfs as $BUILDER_TAG"
    tar --numeric-owner -C "$root" -c . |
        docker import --change "LABEL arca.fixture=$BUILDER_VERSION" \
            --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BUILDER_TAG" >/dev/null
    rm -rf "$root"
    say "built $BUILDER_TAG in $((SECONDS - build_start))s, $(docker image inspect -f '{{.Size}}' "$BUILDER_TAG") bytes"
fi
tag_aliases "$BUILDER_TAG" "${BUILDER_ALIASES[@]}"

# (c) the README quickstart's base (examples/hello): Debian bookworm with a
# Rust toolchain, tagged only when the engine has no debian:bookworm-slim of
# its own (a real one is never replaced; one with an arca.fixture label is ours,
# of this or an older builder version).
QUICKSTART_TAG=debian:bookworm-slim
if ! docker image inspect "$QUICKSTART_TAG" >/dev/null 2>&1 || [ -n "$(fixture_label "$QUICKSTART_TAG")" ]; then
    tag_aliases "$BUILDER_TAG" "$QUICKSTART_TAG"
else
    say "$QUICKSTART_TAG is a real image here; leaving it as it is"
fi

# A rebuilt builder: Arca tags its builder images by the base's name, not its
# id, so those built over the old fixture would be reused. Remove them all,
# then the old fixture image if no tag and no image is left on it.
if [ -n "$old_builder" ]; then
    stale=$(docker image ls --format '{{.Repository}}:{{.Tag}}' arca-builder)
    if [ -n "$stale" ]; then
        say "removing Arca's builder images (built over the old $BUILDER_TAG):"
        for image in $stale; do
            if docker rmi "$image" >/dev/null 2>&1; then
                say "  removed $image"
            else
                say "  could not remove $image (a container uses it?)"
            fi
        done
    fi
    # Removing an image removes its untagged parents: the old fixture may be
    # gone already, with its last builder image.
    tags=$(docker image inspect -f '{{len .RepoTags}}' "$old_builder" 2>/dev/null || echo gone)
    if [ "$tags" = gone ]; then
        say "the replaced fixture image $old_builder is gone (removed with the builder images built on it)"
    elif [ "$tags" = 0 ]; then
        if docker rmi "$old_builder" >/dev/null 2>&1; then
            say "removed the replaced fixture image $old_builder"
        else
            say "kept the replaced fixture image $old_builder (still used)"
        fi
    fi
fi

# (d) the multi-platform base, an OCI layout (.ci/oci-layout.py): linux/amd64 is
# arca-test/busybox's own layer (from `docker save`), linux/arm64 the same recipe
# from Debian's arm64 packages (`apt-get download` + `dpkg -x` of busybox-static
# and the glibc runtime, the loader at /lib/ld-linux-aarch64.so.1).
multi_stamp="$MULTI_VERSION/$RUNTIME_VERSION"
if [ "$(cat "$MULTI_LAYOUT/arca-fixture-version" 2>/dev/null)" = "$multi_stamp" ]; then
    say "$MULTI_LAYOUT ($multi_stamp) present; reusing"
else
    if ! dpkg --print-foreign-architectures | grep -qx arm64 || ! command -v qemu-aarch64-static >/dev/null 2>&1; then
        say "error: the arm64 runtime base needs arm64 apt indices and qemu-aarch64-static: run .ci/cross-setup.sh"
        exit 1
    fi
    multi_start=$SECONDS
    debs="$WORK/arm64-debs"
    mkdir -p "$debs"
    arm64_packages=(busybox-static:arm64 libc6:arm64 libgcc-s1:arm64)
    say "downloading ${arm64_packages[*]}"
    if ! (cd "$debs" && apt-get -qq -o APT::Sandbox::User=root download "${arm64_packages[@]}") >/dev/null 2>&1; then
        apt-get update -qq
        (cd "$debs" && apt-get -qq -o APT::Sandbox::User=root download "${arm64_packages[@]}") >/dev/null
    fi
    extracted="$WORK/arm64-x"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$extracted"; done
    root="$WORK/busybox-arm64"
    libdir=/lib/aarch64-linux-gnu
    mkdir -p "$root/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/usr/local/bin" "$root$libdir"
    chmod 1777 "$root/tmp"
    cp "$extracted/bin/busybox" "$root/bin/busybox"
    for applet in $(qemu-aarch64-static "$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    else
        say "warning: host has no /etc/ssl/certs/ca-certificates.crt; the arm64 base gets none"
    fi
    for lib in ld-linux-aarch64.so.1 libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1; do
        cp -L "$extracted$libdir/$lib" "$root$libdir/$lib"
    done
    ln -sf aarch64-linux-gnu/ld-linux-aarch64.so.1 "$root/lib/ld-linux-aarch64.so.1"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    # The dynamic loader and libc in place: a glibc program of the rootfs runs
    # under qemu-user with the rootfs as its library root.
    qemu-aarch64-static -L "$root" "$root$libdir/libc.so.6" | sed -n 1p | sed 's/^/fixtures: arm64 libc says: /' >&2
    tar --numeric-owner -C "$root" -cf "$WORK/arm64-rootfs.tar" .
    docker save -o "$WORK/busybox-amd64.tar" "$RUNTIME_TAG"
    python3 "$HERE/oci-layout.py" "$WORK/multi-base-oci" --ref latest \
        --env "PATH=$FIXTURE_PATH" --label "arca.fixture=$MULTI_VERSION" \
        "linux/amd64=docker-archive:$WORK/busybox-amd64.tar" "linux/arm64=layer:$WORK/arm64-rootfs.tar" >&2
    echo "$multi_stamp" >"$WORK/multi-base-oci/arca-fixture-version"
    rm -rf "$MULTI_LAYOUT"
    mv "$WORK/multi-base-oci" "$MULTI_LAYOUT"
    say "wrote $MULTI_LAYOUT in $((SECONDS - multi_start))s ($(du -sh "$MULTI_LAYOUT" | cut -f1))"
fi

say "fixture images ready:"
docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E 'arca-test|nvidia/cuda|debian:bookworm-slim' >&2
