#!/usr/bin/env python3
"""Independent reference for the original Arca CLI's whole-tree fingerprint.

Written from the original's algorithm (compute_build_fingerprint, hash_path,
hash_directory, hash_entry, should_skip_hashed_path, hash_text), with
hashlib only, sharing no code with the Rust implementation. The Rust tests in
src/fingerprint/stream.rs compare against values this script prints.

Usage:
  # Build the test fixture tree (the same one the Rust test builds) in a
  # temporary directory and print the expected fingerprints as Rust constants:
  python3 scripts/fingerprint_reference.py fixture

  # Fingerprint any tree (container mode unless --rustc-version is given):
  python3 scripts/fingerprint_reference.py tree --workspace-root /ws \\
      --package demo --version 0.1.0 --binary demo --profile release \\
      --feature a --feature b --base-image debian:bookworm-slim \\
      --builder-key arca-rust-builder-v1:arca-builder:... ROOT [ROOT ...]

The stream: hash_text(s) = len(s) as u64 little endian + s (UTF-8).
  hash_text("arca-rust-build-v3"), workspace root, package, version, binary,
  profile, each feature sorted (duplicates kept), base image, then
  "container-build" + builder key, or "host-build" + `rustc -Vv` text.
  Then per root: lstat; a directory is walked (entries sorted by path, any
  entry whose path relative to the root has a component target/.git/.arca is
  skipped, each entry hashed, directories recursed); anything else is one
  entry whose relative path is "". Entries: dir -> "dir" + rel;
  regular file -> "file" + rel + raw contents (no length prefix);
  symlink -> "symlink" + rel + link target; anything else -> nothing.
"""

import argparse
import hashlib
import os
import stat
import struct
import sys
import tempfile

SKIPPED = {b"target", b".git", b".arca"}


def text(h, value):
    data = value.encode("utf-8")
    h.update(struct.pack("<Q", len(data)))
    h.update(data)


def display(raw):
    """How Rust's Path::display shows a path's bytes: lossy UTF-8."""
    return raw.decode("utf-8", errors="replace")


def hash_entry(h, path, rel, st):
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        text(h, "dir")
        text(h, display(rel))
    elif stat.S_ISREG(mode):
        text(h, "file")
        text(h, display(rel))
        with open(path, "rb") as f:
            h.update(f.read())
    elif stat.S_ISLNK(mode):
        text(h, "symlink")
        text(h, display(rel))
        text(h, display(os.readlink(path)))


def hash_directory(h, directory, rel):
    # Every name in one directory: sorting the full paths is sorting the names
    # by their bytes.
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        child = rel + b"/" + name if rel else name
        if any(part in SKIPPED for part in child.split(b"/")):
            continue
        st = os.lstat(path)
        hash_entry(h, path, child, st)
        if stat.S_ISDIR(st.st_mode):
            hash_directory(h, path, child)


def fingerprint(settings, roots):
    h = hashlib.sha256()
    text(h, "arca-rust-build-v3")
    text(h, settings["workspace_root"])
    text(h, settings["package"])
    text(h, settings["version"])
    text(h, settings["binary"])
    text(h, settings["profile"])
    for feature in sorted(settings["features"]):
        text(h, feature)
    text(h, settings["base_image"])
    if settings.get("rustc_version") is not None:
        text(h, "host-build")
        text(h, settings["rustc_version"])
    else:
        text(h, "container-build")
        text(h, settings["builder_key"])
    for root in roots:
        root = os.fsencode(root)
        st = os.lstat(root)
        if stat.S_ISDIR(st.st_mode):
            hash_directory(h, root, b"")
        else:
            hash_entry(h, root, b"", st)
    return h.hexdigest()


# --- The fixture shared with src/fingerprint/stream.rs ----------------------
# Keep in step with `build_fixture` in the Rust tests.

WORKSPACE_ROOT = "/fixtures/arca-ws"
BUILDER_KEY = "arca-rust-builder-v1:arca-builder:0123456789abcdef"
RUSTC_TEXT = (
    "rustc 1.95.0 (59807616e 2026-04-14)\n"
    "binary: rustc\n"
    "commit-hash: 59807616e\n"
    "host: x86_64-unknown-linux-gnu\n"
    "release: 1.95.0\n"
    "LLVM version: 20.1.8"
)


def pattern(length, seed):
    return bytes((i * 7 + seed) % 251 for i in range(length))


def build_fixture(ws):
    def write(rel, data):
        path = os.path.join(ws, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def mkdir(rel):
        os.makedirs(os.path.join(ws, rel), exist_ok=True)

    def link(rel, target):
        os.symlink(target, os.path.join(ws, rel))

    write("Cargo.lock", b"# lock\nversion = 4\n")
    write("crate/Cargo.toml", b'[package]\nname = "demo"\nversion = "0.1.0"\n')
    write("crate/src/main.rs", b"fn main() {\n    println!(\"hi\");\n}\n")
    write("crate/src/a/b/c.rs", b"pub fn c() {}\n")
    write("crate/src/a.rs", b"pub mod b;\n")
    write("crate/src/a-b.rs", b"")
    write("crate/src/B.rs", b"// upper case sorts first\n")
    mkdir("crate/empty")
    write("crate/target", b"a file named target is skipped too\n")
    write("crate/sub/target/debug/x.rs", b"skipped\n")
    write("crate/sub/keep.rs", b"kept\n")
    write("crate/.git/HEAD", b"ref: refs/heads/main\n")
    write("crate/.arca/config.toml", b"[rust]\nprofile = \"release\"\n")
    write("crate/assets/big.bin", pattern(2_500_003, 3))
    write("crate/assets/bytes.bin", bytes(range(256)))
    write("crate/\u00fcn\u00efc\u00f6d\u00e9.rs", "// \u00e9\n".encode("utf-8"))
    write("crate/\u65e5\u672c/\u8a9e.txt", b"nihongo\n")
    link("crate/link-to-main", "src/main.rs")
    link("crate/loop", "loop")
    link("crate/dir-link", "src")
    os.mkfifo(os.path.join(ws, "crate/pipe"))
    # Names and a link target that are not UTF-8: shown lossily (U+FFFD).
    odd = os.path.join(os.fsencode(ws), b"crate", b"odd")
    os.mkdir(odd)
    with open(os.path.join(odd, b"bad\xff\xfename.rs"), "wb") as f:
        f.write(b"bad name\n")
    with open(os.path.join(odd, b"trunc\xe6\x97.rs"), "wb") as f:
        f.write(b"truncated sequence\n")
    os.symlink(b"tar\xffget", os.path.join(odd, b"badlink"))
    write("dep/Cargo.toml", b'[package]\nname = "dep"\n')
    write("dep/src/lib.rs", b"pub fn dep() {}\n")
    link("lock-link", "Cargo.lock")


def fixture_settings(**overrides):
    settings = {
        "workspace_root": WORKSPACE_ROOT,
        "package": "demo",
        "version": "0.1.0",
        "binary": "demo",
        "profile": "release",
        "features": ["tls", "cli", "tls"],
        "base_image": "debian:bookworm-slim",
        "builder_key": BUILDER_KEY,
        "rustc_version": None,
    }
    settings.update(overrides)
    return settings


def fixture_cases(ws):
    def at(*rels):
        return [os.path.join(ws, rel) for rel in rels]

    all_roots = at("Cargo.lock", "crate", "dep")
    return [
        ("CONTAINER_ALL_ROOTS", fixture_settings(), all_roots),
        ("HOST_ALL_ROOTS", fixture_settings(rustc_version=RUSTC_TEXT), all_roots),
        ("LOCKFILE_ONLY", fixture_settings(features=[]), at("Cargo.lock")),
        ("NO_ROOTS", fixture_settings(), []),
        ("TWO_DIR_ROOTS", fixture_settings(profile="dev"), at("crate", "dep")),
        ("SYMLINK_ROOT", fixture_settings(), at("lock-link")),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fixture", help="print the Rust test constants")
    tree = sub.add_parser("tree", help="fingerprint the given roots")
    tree.add_argument("--workspace-root", required=True)
    tree.add_argument("--package", required=True)
    tree.add_argument("--version", required=True)
    tree.add_argument("--binary", required=True)
    tree.add_argument("--profile", required=True)
    tree.add_argument("--feature", action="append", default=[])
    tree.add_argument("--base-image", required=True)
    tree.add_argument("--builder-key")
    tree.add_argument("--rustc-version")
    tree.add_argument("roots", nargs="*")
    args = parser.parse_args()

    if args.command == "tree":
        if (args.builder_key is None) == (args.rustc_version is None):
            parser.error("give exactly one of --builder-key and --rustc-version")
        settings = {
            "workspace_root": args.workspace_root,
            "package": args.package,
            "version": args.version,
            "binary": args.binary,
            "profile": args.profile,
            "features": args.feature,
            "base_image": args.base_image,
            "builder_key": args.builder_key,
            "rustc_version": args.rustc_version,
        }
        print(fingerprint(settings, args.roots))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        ws = os.path.join(tmp, "ws")
        os.mkdir(ws)
        build_fixture(ws)
        print("// Generated by `python3 scripts/fingerprint_reference.py fixture`.")
        for name, settings, roots in fixture_cases(ws):
            print(f'const {name}: &str = "{fingerprint(settings, roots)}";')
    return 0


if __name__ == "__main__":
    sys.exit(main())
