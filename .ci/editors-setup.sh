#!/usr/bin/env bash
# Installs what the editor tests need on a brand-new Debian machine: Neovim
# (headless, from Debian's packages), unzip, and the VS Code extension's npm
# dependencies (exactly as locked in editors/vscode/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nvim >/dev/null 2>&1 || missing+=(neovim)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)   # to inspect the packaged .vsix
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
nvim --version | head -1

if ! command -v npm >/dev/null 2>&1; then
    echo "editors-setup: npm is missing; install Node.js 20+ (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
fi
(cd editors/vscode && npm ci --no-audit --no-fund)
