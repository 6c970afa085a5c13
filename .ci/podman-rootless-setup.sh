#!/usr/bin/env bash
# Rootless podman for tests/podman_rootless.rs: the user `arcapod`, its
# podman service on /run/user/UID/podman/podman.sock, the fixture images in
# its storage, and the host toolchain at /opt/arca-rootless-rust for it.
# Idempotent. Needs root; called by .ci/podman-setup.sh.
set -euo pipefail

ROOTLESS_USER=arcapod
SOCK=/run/arca-podman.sock
say() { echo "podman-rootless-setup: $*" >&2; }
answers() {
    curl -fsS --max-time 2 --unix-socket "${1:-$SOCK}" http://d/_ping >/dev/null 2>&1
}

# Hand the fixture images over (they keep their image ids, and load as
# localhost/NAME, which short names resolve to). An alias of an image podman
# already holds is only tagged, not saved again. "$@": how to run podman.
hand_over() {
    for image in "${FIXTURES[@]}"; do
        want=$(docker image inspect -f '{{.Id}}' "$image")
        want=${want#sha256:}
        have=$("$@" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
        if [ "$have" = "$want" ]; then
            say "$image present in $*; reusing"
        elif "$@" image exists "$want"; then
            say "$* tag $image (same image as one already handed over)"
            "$@" tag "$want" "$image"
        else
            say "docker save $image | $* load"
            docker save "$image" | "$@" load -q >/dev/null
        fi
    done
}

# Rootless podman, as most users run it. Storage: the kernel's native
# rootless overlay (fuse-overlayfs needs /dev/fuse, root-only on these
# machines; without either podman falls back to the slow vfs driver).
if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
    say "creating the user $ROOTLESS_USER for rootless podman"
    useradd --create-home --shell /bin/bash "$ROOTLESS_USER"
fi
uid=$(id -u "$ROOTLESS_USER")
home=$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)
if ! grep -q "^$ROOTLESS_USER:" /etc/subuid || ! grep -q "^$ROOTLESS_USER:" /etc/subgid; then
    usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$ROOTLESS_USER"
fi
# These machines make /dev/net/tun root-only (Debian's usual mode is 0666),
# so slirp4netns, which rootless podman's networks need, cannot open it.
# CI machine setup, not something Arca does on users' machines.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    say "making /dev/net/tun usable by unprivileged users (mode 0666)"
    chmod 0666 /dev/net/tun
fi
runtime_dir=/run/user/$uid
install -d -m 700 -o "$ROOTLESS_USER" -g "$ROOTLESS_USER" "$runtime_dir"
install -d -o "$ROOTLESS_USER" -g "$ROOTLESS_USER" "$home/.config" "$home/.config/containers"
printf '[storage]\ndriver = "overlay"\n' >"$home/.config/containers/storage.conf"
chown "$ROOTLESS_USER:" "$home/.config/containers/storage.conf"
as_user() { runuser -u "$ROOTLESS_USER" -- env XDG_RUNTIME_DIR="$runtime_dir" HOME="$home" "$@"; }
rootless_sock=$runtime_dir/podman/podman.sock
if answers "$rootless_sock"; then
    say "rootless podman already answers on $rootless_sock"
else
    # A rootless netns file left by a failed start (e.g. before the tun fix)
    # wedges every later container ("failed to mount runtime directory for
    # rootless netns"); with none of the user's containers running it is
    # stale, and removing it lets podman make a new one.
    if [ -z "$(as_user podman ps -q 2>/dev/null)" ]; then
        rm -f "$runtime_dir"/netns/rootless-netns-*
    fi
    say "starting rootless podman ($ROOTLESS_USER) on unix://$rootless_sock"
    # exec, not the shell function: a function would keep this script's
    # stdout open in the background (bash saves redirected descriptors).
    (cd / && exec runuser -u "$ROOTLESS_USER" -- env XDG_RUNTIME_DIR="$runtime_dir" HOME="$home" \
        podman system service --time=0 >/var/log/arca-podman-rootless.log 2>&1 </dev/null) &
    for _ in $(seq 1 60); do
        if answers "$rootless_sock"; then break; fi
        sleep 0.5
    done
    if ! answers "$rootless_sock"; then
        say "rootless podman did not answer within 30 s; last log lines:"
        tail -n 30 /var/log/arca-podman-rootless.log >&2 || true
        exit 1
    fi
fi
# arca runs `cargo metadata` on the host; the user gets the host toolchain
# (hard links, so no copy when on one filesystem), not access to /root.
TOOLCHAIN=/opt/arca-rootless-rust
sysroot=$(rustc --print sysroot)
if [ "$("$TOOLCHAIN/bin/rustc" -V 2>/dev/null)" != "$(rustc -V)" ]; then
    say "linking the host toolchain $sysroot to $TOOLCHAIN for $ROOTLESS_USER"
    rm -rf "$TOOLCHAIN"
    cp -al "$sysroot" "$TOOLCHAIN" 2>/dev/null || cp -a "$sysroot" "$TOOLCHAIN"
fi
FIXTURES=(arca-test/busybox:latest arca-test/rust-builder:latest
    nvidia/cuda:12.8.1-runtime-ubuntu24.04 nvidia/cuda:12.8.1-devel-ubuntu24.04)
(cd / && hand_over as_user podman)
