#!/usr/bin/env bash
# Installs what the SBOM tests (tests/sbom.rs) check Arca's documents with,
# on a brand-new Debian machine: a Python venv at
# /var/cache/arca-sbom/venv (ARCA_SBOM_VENV overrides it) holding the SPDX
# project's validator (`spdx-tools`, its `pyspdxtools`), the CycloneDX
# library with its JSON-schema validation (`cyclonedx-python-lib
# [json-validation]`) and the oras-py client (`oras`). Idempotent and fast
# when already installed: pip runs only when a tool is missing or broken.
set -euo pipefail

venv="${ARCA_SBOM_VENV:-/var/cache/arca-sbom/venv}"
# Known to work with the tests' checks (the CycloneDX validator's API moves
# between major versions).
packages=(
    "spdx-tools==0.8.5"
    "cyclonedx-python-lib[json-validation]==11.12.0"
    "oras==0.2.43"
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian's own Python (not a pyenv shim or another one first on PATH).
python=/usr/bin/python3

tools_work() {
    [ -x "$venv/bin/python" ] || return 1
    "$venv/bin/pyspdxtools" --help >/dev/null 2>&1 || return 1
    "$venv/bin/python" - >/dev/null 2>&1 <<'EOF' || return 1
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
JsonStrictValidator(SchemaVersion.V1_5)
import oras.client
import spdx_tools.spdx.validation.document_validator
EOF
}

if tools_work; then
    echo "sbom-setup: $venv already has pyspdxtools, cyclonedx-python-lib and oras; nothing to do"
    exit 0
fi

# python3 and its venv module (with ensurepip) come from Debian.
if [ ! -x "$python" ] || ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "sbom-setup: installing python3 and python3-venv"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y \
        --no-install-recommends python3 python3-venv
fi

# Missing, half made (an interrupted run) or lacking a tool: made anew (pip
# would not restore a deleted entry point of an installed package).
if [ -e "$venv" ]; then
    echo "sbom-setup: $venv lacks a working tool; making it anew"
    $SUDO rm -rf "$venv"
fi
echo "sbom-setup: creating the venv $venv"
$SUDO mkdir -p "$(dirname "$venv")"
$SUDO "$python" -m venv "$venv"

echo "sbom-setup: pip-installing ${packages[*]} into $venv"
$SUDO "$venv/bin/python" -m pip install --quiet "${packages[@]}"

if ! tools_work; then
    echo "sbom-setup: $venv still lacks a working pyspdxtools, cyclonedx-python-lib or oras" >&2
    exit 1
fi
echo "sbom-setup: installed into $venv:"
"$venv/bin/python" -m pip list 2>/dev/null | grep -iE '^(spdx-tools|cyclonedx-python-lib|oras) '
