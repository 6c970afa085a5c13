#!/usr/bin/env bash
# Make sure a Docker engine answers on /var/run/docker.sock (and on a loopback
# TCP port for the remote-engine tests). Idempotent: installs docker.io from
# Debian packages only when dockerd is missing, starts dockerd only when the
# socket does not answer. Needs root.
set -euo pipefail

SOCK=/var/run/docker.sock
TCP_PORT="${ARCA_DOCKER_TCP_PORT:-23750}"
LOG=/var/log/arca-dockerd.log
PIDFILE=/var/run/arca-dockerd.pid

say() { echo "docker-up: $*" >&2; }

answers() {
    curl -fsS --max-time 2 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
}

if ! command -v curl >/dev/null 2>&1; then
    say "installing curl"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi

# stunnel and openssl: the TLS test puts a mutual-TLS listener in front of
# the engine's socket (tests/docker_tls.rs).
if ! command -v stunnel >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    say "installing stunnel4 and openssl"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 openssl >/dev/null
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "dockerd missing: installing docker.io from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
else
    say "dockerd present: $(dockerd --version)"
fi

if answers; then
    say "engine already answers on $SOCK; nothing started"
else
    say "starting dockerd (unix://$SOCK and tcp://127.0.0.1:$TCP_PORT), log $LOG"
    rm -f "$PIDFILE"
    nohup dockerd -H "unix://$SOCK" -H "tcp://127.0.0.1:$TCP_PORT" \
        --pidfile "$PIDFILE" >"$LOG" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        if answers; then break; fi
        sleep 0.5
    done
    if ! answers; then
        say "dockerd did not answer within 30 s; last log lines:"
        tail -n 30 "$LOG" >&2 || true
        exit 1
    fi
    say "engine up (pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
fi

if curl -fsS --max-time 2 "http://127.0.0.1:$TCP_PORT/_ping" >/dev/null 2>&1; then
    say "tcp://127.0.0.1:$TCP_PORT answers"
else
    say "warning: tcp://127.0.0.1:$TCP_PORT does not answer (engine started elsewhere without it); remote-engine tests will skip"
fi
curl -fsS --unix-socket "$SOCK" http://localhost/version >&2; echo >&2
