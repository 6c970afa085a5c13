#!/bin/sh
# Arca's builder recipe: runs once per builder image, as root, inside the
# builder base image. POSIX sh (dash, busybox ash, bash).
#
# Inputs (environment, validated by Arca):
#   ARCA_PACKAGES          extra system packages, space-separated ([rust] packages)
#   ARCA_TOOLCHAIN         pinned Rust toolchain, or empty
#   ARCA_TOOLCHAIN_SOURCE  where it was pinned (a file path or `[rust] toolchain`)
#   ARCA_CROSS             platforms to cross-compile for, space-separated entries
#                          `<rust triple>:<C compiler>:<package>,<package>` ([rust] platforms)
# The host CA bundle is at /opt/arca/host-ca.crt (empty when the host has none);
# proxies come as build arguments.
#
# Every failure prints `arca: builder step '<step>' failed` and exits non-zero,
# so the engine tags nothing. Downloads go to files and are checked before use.
set -eu
if (set -o pipefail) 2>/dev/null; then set -o pipefail; fi

step="start"
on_exit() {
    code=$?
    if [ "$code" -ne 0 ]; then echo "arca: builder step '$step' failed (exit $code)" >&2; fi
}
trap on_exit EXIT

ca=/opt/arca/host-ca.crt
if [ -s "$ca" ]; then
    export SSL_CERT_FILE="$ca" CURL_CA_BUNDLE="$ca" CARGO_HTTP_CAINFO="$ca" GIT_SSL_CAINFO="$ca"
fi
mkdir -p /opt/arca/bin

packages="${ARCA_PACKAGES:-}"
if ! command -v cargo >/dev/null 2>&1; then
    need_tools=1
else
    need_tools=0
fi

install_packages() {
    if command -v apt-get >/dev/null 2>&1; then
        apt_ca=""
        if [ -s "$ca" ]; then apt_ca="-o Acquire::https::CAInfo=$ca"; fi
        # shellcheck disable=SC2086
        apt-get $apt_ca update
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get $apt_ca install -y --no-install-recommends "$@"
        rm -rf /var/lib/apt/lists/*
    elif command -v dnf >/dev/null 2>&1; then
        dnf install -y "$@"
        dnf clean all
    elif command -v microdnf >/dev/null 2>&1; then
        microdnf install -y "$@"
        microdnf clean all
    elif command -v apk >/dev/null 2>&1; then
        apk add --no-cache "$@"
    else
        echo "arca: the builder base image has no known package manager (apt-get, dnf, microdnf, apk) to install: $*" >&2
        return 1
    fi
}

if [ "$need_tools" = 1 ]; then
    step="install build tools (the base image has no cargo)"
    if command -v apt-get >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        install_packages build-essential ca-certificates curl git pkg-config $packages
    elif command -v apk >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        install_packages build-base ca-certificates curl git pkgconf $packages
    else
        # shellcheck disable=SC2086
        install_packages gcc gcc-c++ make ca-certificates curl git pkgconf-pkg-config $packages
    fi
elif [ -n "$packages" ]; then
    step="install packages: $packages"
    # shellcheck disable=SC2086
    install_packages $packages
fi

want="${ARCA_TOOLCHAIN:-}"
has_toolchain() {
    command -v cargo >/dev/null 2>&1 || return 1
    [ -z "$want" ] && return 0
    [ "$want" = stable ] && return 0
    version=$(rustc --version 2>/dev/null | cut -d' ' -f2)
    case "$version" in
        "$want" | "$want".*) return 0 ;;
    esac
    return 1
}

if [ -n "$want" ] && command -v rustup >/dev/null 2>&1; then
    # A rustup-managed cargo reads rust-toolchain.toml itself: the pinned
    # toolchain must be installed under its own name.
    step="rustup toolchain install $want (pinned by ${ARCA_TOOLCHAIN_SOURCE:-?})"
    rustup toolchain install "$want" --profile minimal
    rustup default "$want"
elif ! has_toolchain; then
    toolchain="${want:-stable}"
    arch=$(uname -m)
    libc=gnu
    if command -v apk >/dev/null 2>&1; then libc=musl; fi
    url="https://static.rust-lang.org/rustup/dist/$arch-unknown-linux-$libc/rustup-init"
    if [ -n "$want" ]; then
        step="download rustup to install toolchain $want (pinned by ${ARCA_TOOLCHAIN_SOURCE:-?}) from $url"
    else
        step="download rustup from $url"
    fi
    curl --proto '=https' --tlsv1.2 -fsS --retry 2 -o /tmp/rustup-init "$url"
    curl --proto '=https' --tlsv1.2 -fsS --retry 2 -o /tmp/rustup-init.sha256 "$url.sha256"
    step="check the downloaded rustup-init against $url.sha256"
    expected=$(cut -d' ' -f1 /tmp/rustup-init.sha256)
    actual=$(sha256sum /tmp/rustup-init | cut -d' ' -f1)
    [ -n "$expected" ] && [ "$expected" = "$actual" ]
    chmod 0755 /tmp/rustup-init
    step="rustup-init: install toolchain $toolchain"
    mkdir -p /opt/arca/cargo-home /opt/arca/rustup
    CARGO_HOME=/opt/arca/cargo-home RUSTUP_HOME=/opt/arca/rustup \
        /tmp/rustup-init -y --profile minimal --default-toolchain "$toolchain" --no-modify-path
    rm -f /tmp/rustup-init /tmp/rustup-init.sha256
    for tool in cargo rustc rustup; do
        printf '#!/bin/sh\nRUSTUP_HOME=/opt/arca/rustup exec /opt/arca/cargo-home/bin/%s "$@"\n' "$tool" >/opt/arca/bin/$tool
        chmod 0755 /opt/arca/bin/$tool
    done
fi

# Cross targets: for each, /opt/arca/targets/<triple>/{rustc,cargo} link to a
# toolchain whose sysroot has the target's standard library (the default one,
# after `rustup target add` where rustup manages it; else a second toolchain
# such as Debian's /usr/bin/rustc with libstd-rust-dev:<arch>), and the C
# cross compiler (linker, and `cc` for -sys crates) is installed.
has_target() {
    sysroot=$("$1" --print sysroot 2>/dev/null) || return 1
    [ -d "$sysroot/lib/rustlib/$2/lib" ]
}
for entry in ${ARCA_CROSS:-}; do
    triple=${entry%%:*}
    rest=${entry#*:}
    compiler=${rest%%:*}
    cross_packages=$(echo "${rest#*:}" | tr ',' ' ')
    step="the Rust standard library for $triple"
    default_rustc=$(command -v rustc)
    target_rustc=""
    if has_target "$default_rustc" "$triple"; then
        target_rustc=$default_rustc
    elif command -v rustup >/dev/null 2>&1; then
        step="rustup target add $triple"
        rustup target add "$triple"
        target_rustc=$default_rustc
    else
        for candidate in /usr/bin/rustc /usr/local/bin/rustc; do
            if [ "$candidate" != "$default_rustc" ] && [ -x "$candidate" ] && has_target "$candidate" "$triple"; then
                target_rustc=$candidate
                break
            fi
        done
    fi
    if [ -z "$target_rustc" ]; then
        echo "arca: no Rust standard library for $triple: the builder's rustc ($default_rustc) lacks it and there is no rustup to add it" >&2
        false
    fi
    target_cargo=$(dirname "$target_rustc")/cargo
    [ -x "$target_cargo" ] || target_cargo=$(command -v cargo)
    mkdir -p "/opt/arca/targets/$triple"
    ln -sf "$target_rustc" "/opt/arca/targets/$triple/rustc"
    ln -sf "$target_cargo" "/opt/arca/targets/$triple/cargo"
    if ! command -v "$compiler" >/dev/null 2>&1; then
        step="install the C cross compiler for $triple: $cross_packages"
        # shellcheck disable=SC2086
        install_packages $cross_packages
    fi
    step="$compiler --version (the C cross compiler for $triple)"
    "$compiler" --version >/dev/null
    echo "arca: cross target $triple: rustc $target_rustc, cargo $target_cargo, C compiler $compiler"
done

step="done"
echo "arca: builder recipe finished"
