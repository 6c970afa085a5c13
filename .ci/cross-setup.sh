#!/usr/bin/env bash
# Installs on the host what cross builds for linux/arm64 and the tests need
# (issue 19), the route of docs/verified-facts.md: Debian bookworm's Rust
# (`rustc-web`/`cargo-web`, from bookworm-security) with its arm64 standard
# library (`libstd-rust-web-dev:arm64`, after `dpkg --add-architecture
# arm64`), GCC's aarch64 cross linker and C library, `qemu-user-static` to
# run the results (`qemu-aarch64-static -L /usr/aarch64-linux-gnu`) and
# `file` to tell what was built. Also what .ci/fixtures.sh downloads the
# arm64 runtime base from (apt's arm64 indices).
#
# Idempotent: adds the architecture only when missing and does no apt work
# when every package is installed. The host's default `rustc`/`cargo`
# (rustup's, first on PATH) must not change: checked before and after.
# Needs root.
set -euo pipefail

say() { echo "cross-setup: $*" >&2; }
PACKAGES=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
    libc6-dev-arm64-cross qemu-user-static file)

toolchain() {
    if command -v rustc >/dev/null 2>&1; then
        echo "$(command -v rustc) $(rustc --version) / $(command -v cargo || echo 'no cargo') $(cargo --version 2>/dev/null || true)"
    else
        echo "none"
    fi
}
installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

before=$(toolchain)
say "default toolchain before: $before"

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    update_needed=1
else
    update_needed=0
fi

if [ ${#missing[@]} -gt 0 ] || [ "$update_needed" = 1 ]; then
    # rustc-web 1.96 is in bookworm-security (bookworm itself has 1.85): say
    # where apt's sources come from, and add Debian's security suite if no
    # source names it.
    sources=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    existing=()
    for file in "${sources[@]}"; do [ -f "$file" ] && existing+=("$file"); done
    say "apt sources: ${existing[*]:-none}"
    if ! grep -qs 'bookworm-security' "${existing[@]}" /dev/null; then
        say "no source names bookworm-security; adding /etc/apt/sources.list.d/arca-bookworm-security.sources"
        cat >/etc/apt/sources.list.d/arca-bookworm-security.sources <<'EOF'
# written by arca .ci/cross-setup.sh: rustc-web/cargo-web 1.96 come from here
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    say "apt-get update"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
fi

if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "all of ${PACKAGES[*]} installed; no apt work"
fi

after=$(toolchain)
say "default toolchain after:  $after"
if [ "$before" != none ] && [ "$before" != "$after" ]; then
    say "error: installing Debian's Rust changed the default toolchain (PATH order?)"
    exit 1
fi
if [ "$before" = none ]; then
    say "warning: the host had no rustc; Debian's /usr/bin/rustc is now the default (the builder fixture wants a rustup toolchain)"
fi
say "cross route: $(/usr/bin/rustc --version) with $(/usr/bin/rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu, $(aarch64-linux-gnu-gcc --version | sed -n 1p), $(qemu-aarch64-static --version | sed -n 1p)"
test -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu"

# QEMU for aarch64 registered with binfmt_misc (flag F: the interpreter is
# opened now, so it works inside containers too), so the engine runs arm64
# images (`arca run --platform linux/arm64`, `docker run --platform`).
# Skipped, with a note, where the kernel refuses (an unprivileged CI box).
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
fi
if [ -e "$binfmt/qemu-aarch64" ]; then
    say "binfmt_misc: qemu-aarch64 $(sed -n 1p "$binfmt/qemu-aarch64")"
elif [ -w "$binfmt/register" ] && [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
    if printf '%s' "$(cat /usr/lib/binfmt.d/qemu-aarch64.conf)" >"$binfmt/register" 2>/dev/null; then
        say "binfmt_misc: registered qemu-aarch64 ($(sed -n 1p "$binfmt/qemu-aarch64"))"
    else
        say "note: the kernel refused to register qemu-aarch64; arm64 images will not run here"
    fi
else
    say "note: binfmt_misc is not available; arm64 images will not run here"
fi
