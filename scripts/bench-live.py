#!/usr/bin/env python3
"""Live-update benchmark (BENCHMARKS.md, "Live update", issue 17).

Save on disk -> the new program's first output line under
`arca run --watch`, on the >= 1 GB base fixture (arca-test/big-base,
.ci/store-setup.sh, tagged under a CUDA runtime name for the run), against host `cargo build --release` of the same
one-line change measured in the same run (the reference: the issue's bar is
host cargo + 0.5 s), and the manual loop of today (Ctrl-C, `arca run`) for
comparison. Reports medians and the split of a live update: detect (save ->
the rebuild starts), cargo (debounce, staleness check, cargo in the warm
session), stop, copy, restart (start -> first line).

Usage: python3 scripts/bench-live.py  (ITER=10 MANUAL_ITER=5 by default;
needs the release build, `cargo build --release`).
"""

import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCA = os.path.join(ROOT, "target", "release", "arca")
# The >= 1 GB runtime base under a CUDA name, so the builder is the
# promoted `-devel-` image (the Rust builder fixture), as for a CUDA crate.
BIG = "arca-test/big-base:latest"
BASE = "nvidia/cuda:12.8.1-runtime-bench1g"
BUILDER = "nvidia/cuda:12.8.1-devel-bench1g"
BUILDER_FIXTURE = "nvidia/cuda:12.8.1-devel-ubuntu24.04"
ITER = int(os.environ.get("ITER", "10"))
MANUAL_ITER = int(os.environ.get("MANUAL_ITER", "5"))

PROGRAM = """fn main() {
    println!("version: %s");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
"""

SEPARATOR = re.compile(
    r"rebuilt after .* \(([0-9.]+) s: cargo ([0-9.]+), stop ([0-9.]+), copy ([0-9.]+)\)"
)


def spawn_watch(crate, env):
    """Starts `arca run --watch`; returns the process and a queue of
    (monotonic time, line)."""
    child = subprocess.Popen(
        [ARCA, "run", "--watch", crate],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        bufsize=1,
    )
    lines = queue.Queue()

    def pump(stream):
        for line in stream:
            lines.put((time.monotonic(), line.rstrip("\n")))

    for stream in (child.stdout, child.stderr):
        threading.Thread(target=pump, args=(stream,), daemon=True).start()
    return child, lines


def wait_line(lines, needle, timeout=300):
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            sys.exit(f"no line with {needle!r}; saw:\n" + "\n".join(seen[-30:]))
        try:
            stamp, line = lines.get(timeout=left)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return stamp, line, seen


def write_program(crate, version):
    path = os.path.join(crate, "src", "main.rs")
    with open(path, "w") as out:
        out.write(PROGRAM % version)
    return time.monotonic()


def main():
    subprocess.run(["docker", "tag", BIG, BASE], check=True)
    subprocess.run(["docker", "tag", BUILDER_FIXTURE, BUILDER], check=True)
    work = tempfile.mkdtemp(prefix="arca-bench-live-")
    crate = os.path.join(work, "hello")
    shutil.copytree(os.path.join(ROOT, "examples", "hello"), crate)
    crate = os.path.realpath(crate)
    os.makedirs(os.path.join(crate, ".arca"), exist_ok=True)
    with open(os.path.join(crate, ".arca", "config.toml"), "w") as out:
        out.write(f'[rust]\nprofile = "release"\nfeatures = []\nbase_image = "{BASE}"\n')
    env = dict(os.environ, ARCA_HOME=os.path.join(work, "home"), ARCA_LIVE_TIMINGS="1")
    env.pop("DOCKER_HOST", None)
    try:
        run(crate, env)
    finally:
        subprocess.run(
            f"docker ps -aq --filter label=io.khoek.arca.crate-dir={crate} | xargs -r docker rm -f",
            shell=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        for tag in out:
            if tag.startswith("arca-local:hello-"):
                subprocess.run(["docker", "rmi", "-f", tag], stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["docker", "rmi", BASE, BUILDER], stdout=subprocess.DEVNULL)


def run(crate, env):
    load = os.getloadavg()
    print(f"machine load at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; base {BASE}")
    write_program(crate, "0")
    # The reference builds a copy nobody watches, so the two never compete.
    host_crate = crate + "-host"
    shutil.copytree(crate, host_crate)
    manifest = os.path.join(host_crate, "Cargo.toml")
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--manifest-path", manifest], check=True
    )
    child, lines = spawn_watch(crate, env)
    wait_line(lines, "version: 0")
    live, host = [], []
    split = {"detect": [], "cargo": [], "stop": [], "copy": [], "restart": []}
    for i in range(1, ITER + 1):
        time.sleep(1.5)
        saved = write_program(crate, f"live{i}")
        sep_at, sep, _ = wait_line(lines, "rebuilt after")
        first_at, _, _ = wait_line(lines, f"version: live{i}")
        total = first_at - saved
        live.append(total)
        match = SEPARATOR.search(sep)
        if match:
            seconds, cargo, stop, copy = (float(g) for g in match.groups())
            split["detect"].append(sep_at - saved - seconds)
            split["cargo"].append(cargo)
            split["stop"].append(stop)
            split["copy"].append(copy)
            split["restart"].append(first_at - sep_at)
        # The reference: host cargo of the same one-line change.
        write_program(host_crate, f"host{i}")
        start = time.monotonic()
        subprocess.run(
            ["cargo", "build", "--release", "--quiet", "--manifest-path", manifest], check=True
        )
        host.append(time.monotonic() - start)
        print(f"  {i}: live {total:.3f} s, host cargo {host[-1]:.3f} s")
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)

    manual = []
    for i in range(1, MANUAL_ITER + 1):
        saved = write_program(crate, f"manual{i}")
        child, lines = spawn_watch_manual(crate, env)
        first_at, _, _ = wait_line(lines, f"version: manual{i}")
        manual.append(first_at - saved)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
    med = statistics.median
    print()
    print(f"live update, save -> first line: median {med(live):.3f} s (min {min(live):.3f}, max {max(live):.3f}, n={len(live)})")
    print(f"host cargo build --release:      median {med(host):.3f} s")
    print(f"bar (host + 0.5 s):              {med(host) + 0.5:.3f} s; live - host = {med(live) - med(host):+.3f} s; ratio {med(live) / med(host):.2f}x")
    print("split (medians): " + ", ".join(f"{k} {med(v):.3f} s" for k, v in split.items() if v))
    print(f"manual loop (arca run after Ctrl-C), save -> first line: median {med(manual):.3f} s (n={len(manual)})")
    load = os.getloadavg()
    print(f"machine load at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def spawn_watch_manual(crate, env):
    child = subprocess.Popen(
        [ARCA, "run", crate],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
        bufsize=1,
    )
    lines = queue.Queue()

    def pump():
        for line in child.stdout:
            lines.put((time.monotonic(), line.rstrip("\n")))

    threading.Thread(target=pump, daemon=True).start()
    return child, lines


if __name__ == "__main__":
    main()
