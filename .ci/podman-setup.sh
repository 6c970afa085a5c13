#!/usr/bin/env bash
# Make sure a podman service answers the Docker-compatible API on
# unix:///run/arca-podman.sock with the fixture images, for the podman
# variants of the end-to-end tests (tests/common/docker.rs, `Engine::Podman`).
# Idempotent: installs podman from Debian packages only when missing, writes
# the CI machine's containers.conf only when absent (or ours), starts the
# service only when its socket does not answer, and hands a fixture image
# over from Docker (`docker save | podman load`) only when podman lacks it.
# Then rootless podman (.ci/podman-rootless-setup.sh).
# Needs root, a running Docker engine and the fixtures (.ci/docker-up.sh,
# .ci/fixtures.sh).
set -euo pipefail

SOCK=/run/arca-podman.sock
LOG=/var/log/arca-podman.log
PIDFILE=/run/arca-podman.pid
CONF=/etc/containers/containers.conf
MARK="# written by arca .ci/podman-setup.sh"
FIXTURES=(
    arca-test/busybox:latest
    arca-test/rust-builder:latest
    nvidia/cuda:12.8.1-runtime-ubuntu24.04
    nvidia/cuda:12.8.1-base-ubuntu24.04
    nvidia/cuda:12.8.1-devel-ubuntu24.04
)

say() { echo "podman-setup: $*" >&2; }
answers() {
    curl -fsS --max-time 2 --unix-socket "${1:-$SOCK}" http://d/_ping >/dev/null 2>&1
}

if ! command -v podman >/dev/null 2>&1; then
    say "installing podman from Debian packages"
    apt-get update -qq
    NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null
fi
# podman's `--init` (which Arca asks for) needs catatonit, only recommended
# by Debian's podman package.
if [ ! -e /usr/libexec/podman/catatonit ]; then
    say "installing catatonit (podman's init)"
    apt-get update -qq
    NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq catatonit >/dev/null
fi
say "$(podman --version)"

# These CI machines lack CAP_SYS_RESOURCE, so podman's default raised
# nofile/nproc limits fail every container (`error setting rlimit type 6/7`),
# and crun fails on their hybrid cgroups. This is the CI machine's setup,
# not something Arca writes on users' machines.
if [ ! -e "$CONF" ] || grep -qF "$MARK" "$CONF"; then
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF.tmp" <<EOF
$MARK
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]

[engine]
runtime = "runc"
EOF
    mv "$CONF.tmp" "$CONF"
else
    say "keeping the existing $CONF (not written by this script)"
fi

if answers; then
    say "podman already answers on $SOCK; nothing started"
else
    say "starting podman system service on unix://$SOCK, log $LOG"
    rm -f "$SOCK"
    # From /: conmon inherits the working directory, and the clone this runs
    # from may be deleted while the service lives on.
    (cd / && exec nohup podman system service --time=0 "unix://$SOCK" >"$LOG" 2>&1 </dev/null) &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 60); do
        if answers; then break; fi
        sleep 0.5
    done
    if ! answers; then
        say "podman did not answer within 30 s; last log lines:"
        tail -n 30 "$LOG" >&2 || true
        exit 1
    fi
    say "podman up (pid $(cat "$PIDFILE"))"
fi

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
hand_over podman

curl -fsS --unix-socket "$SOCK" http://d/version >&2
echo >&2
bash "$(dirname "$0")/podman-rootless-setup.sh"
