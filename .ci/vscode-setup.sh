#!/usr/bin/env bash
# Installs what the real-VS-Code end-to-end tests need, idempotently and from
# the package registries only (recipe: docs/vscode-real.md):
#   - Debian: chromium (the browser Playwright drives), libkrb5-dev and
#     build-essential (code-server's native modules), ripgrep;
#   - npm: code-server@4.100.3 (Code 1.100.3, Node 20) into a cached prefix,
#     $ARCA_CODE_SERVER_PREFIX (default /var/cache/arca-code-server);
#   - PyPI: playwright (the Python driver only; never `playwright install`,
#     Debian's chromium is the browser).
# A second run finds everything in place and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

CODE_SERVER_VERSION=4.100.3
RG_CACHE_VERSION=1.15.11          # the @vscode/ripgrep that code-server 4.100.3 pulls
RG_ARCHIVE=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
PREFIX="${ARCA_CODE_SERVER_PREFIX:-/var/cache/arca-code-server}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
dpkg -s build-essential >/dev/null 2>&1 || missing+=(build-essential)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
if [ ${#missing[@]} -gt 0 ]; then
    echo "vscode-setup: apt-get install ${missing[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$PREFIX/node_modules/.bin/code-server" ] \
    || ! grep -q "\"version\": \"$CODE_SERVER_VERSION\"" "$PREFIX/node_modules/code-server/package.json" 2>/dev/null; then
    # @vscode/ripgrep's postinstall downloads rg from GitHub, which is not
    # reachable; it first looks for a cached archive, so give it Debian's rg.
    rg_cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-$RG_CACHE_VERSION"
    mkdir -p "$rg_cache"
    if [ ! -s "$rg_cache/$RG_ARCHIVE" ]; then
        tmp="$(mktemp -d)"
        cp "$(command -v rg)" "$tmp/rg"
        tar czf "$rg_cache/$RG_ARCHIVE" -C "$tmp" rg
        rm -rf "$tmp"
    fi
    echo "vscode-setup: npm install code-server@$CODE_SERVER_VERSION into $PREFIX (a few minutes)"
    $SUDO mkdir -p "$PREFIX"
    (
        cd "$PREFIX"
        [ -f package.json ] || echo '{"name":"arca-code-server","private":true}' >package.json
        npm_config_nodedir=/usr npm_config_yes=true \
            npm install --unsafe-perm --foreground-scripts --no-audit --no-fund \
            "code-server@$CODE_SERVER_VERSION"
    )
fi
"$PREFIX/node_modules/.bin/code-server" --version | head -1

if ! python3 -c 'import playwright' >/dev/null 2>&1; then
    python3 -m pip install --quiet playwright
fi
python3 -c 'import playwright; from importlib.metadata import version; print("playwright", version("playwright"))'
