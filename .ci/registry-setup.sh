#!/usr/bin/env bash
# Installs what the push tests need on a brand-new Debian machine: the CNCF
# distribution registry (Debian `docker-registry`), skopeo (the independent
# client the tests check pushes with), htpasswd (apache2-utils, for the
# basic-auth registry) and openssl (the throwaway TLS CA, and the token-auth tests' JWT signatures). Idempotent: installs
# only what is missing. The tests start their own registries on free loopback
# ports and stop them; nothing is left running.
set -euo pipefail

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
fi
# The Debian package enables a system registry on :5000; the tests never use
# it (they start their own), so it may run or not.
docker-registry --version
skopeo --version
