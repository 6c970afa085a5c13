//! The fixture tree the fingerprint tests share with
//! `scripts/fingerprint_reference.py` (its `build_fixture`): keep both in step.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{BuildModeKey, FingerprintSettings};

/// The workspace root the fixture settings name: hashed as text only, so the
/// expected values do not depend on where the temporary tree lives.
pub(crate) const WORKSPACE_ROOT: &str = "/fixtures/arca-ws";
pub(crate) const BUILDER_KEY: &str = "arca-rust-builder-v1:arca-builder:0123456789abcdef";
pub(crate) const RUSTC_TEXT: &str = "rustc 1.95.0 (59807616e 2026-04-14)\n\
binary: rustc\n\
commit-hash: 59807616e\n\
host: x86_64-unknown-linux-gnu\n\
release: 1.95.0\n\
LLVM version: 20.1.8";

/// `(i * 7 + seed) % 251` for each byte index.
pub(crate) fn pattern(length: usize, seed: usize) -> Vec<u8> {
    (0..length).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

pub(crate) fn write(ws: &Path, relative: &str, data: &[u8]) {
    let path = ws.join(relative);
    fs::create_dir_all(path.parent().expect("fixture paths have a parent"))
        .expect("create fixture directory");
    fs::write(&path, data).expect("write fixture file");
}

fn link(ws: &Path, relative: &str, target: &str) {
    std::os::unix::fs::symlink(target, ws.join(relative)).expect("create fixture symlink");
}

/// Builds the fixture below `ws` (an existing empty directory).
pub(crate) fn build_fixture(ws: &Path) {
    write(ws, "Cargo.lock", b"# lock\nversion = 4\n");
    write(
        ws,
        "crate/Cargo.toml",
        b"[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
    );
    write(
        ws,
        "crate/src/main.rs",
        b"fn main() {\n    println!(\"hi\");\n}\n",
    );
    write(ws, "crate/src/a/b/c.rs", b"pub fn c() {}\n");
    write(ws, "crate/src/a.rs", b"pub mod b;\n");
    write(ws, "crate/src/a-b.rs", b"");
    write(ws, "crate/src/B.rs", b"// upper case sorts first\n");
    fs::create_dir_all(ws.join("crate/empty")).expect("create empty dir");
    write(ws, "crate/target", b"a file named target is skipped too\n");
    write(ws, "crate/sub/target/debug/x.rs", b"skipped\n");
    write(ws, "crate/sub/keep.rs", b"kept\n");
    write(ws, "crate/.git/HEAD", b"ref: refs/heads/main\n");
    write(
        ws,
        "crate/.arca/config.toml",
        b"[rust]\nprofile = \"release\"\n",
    );
    write(ws, "crate/assets/big.bin", &pattern(2_500_003, 3));
    let all_bytes: Vec<u8> = (0..=255).collect();
    write(ws, "crate/assets/bytes.bin", &all_bytes);
    write(
        ws,
        "crate/\u{fc}n\u{ef}c\u{f6}d\u{e9}.rs",
        "// \u{e9}\n".as_bytes(),
    );
    write(ws, "crate/\u{65e5}\u{672c}/\u{8a9e}.txt", b"nihongo\n");
    link(ws, "crate/link-to-main", "src/main.rs");
    link(ws, "crate/loop", "loop");
    link(ws, "crate/dir-link", "src");
    let fifo = std::ffi::CString::new(ws.join("crate/pipe").into_os_string().into_encoded_bytes())
        .expect("fixture path has no NUL");
    // SAFETY: `fifo` is a valid NUL-terminated path for the duration of the call.
    let made = unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) };
    assert_eq!(made, 0, "mkfifo failed");
    // Names and a link target that are not UTF-8: shown lossily (U+FFFD).
    let odd = ws.join("crate/odd");
    fs::create_dir(&odd).expect("create odd dir");
    let name = |bytes: &[u8]| OsStr::from_bytes(bytes).to_os_string();
    fs::write(odd.join(name(b"bad\xff\xfename.rs")), b"bad name\n").expect("write");
    fs::write(odd.join(name(b"trunc\xe6\x97.rs")), b"truncated sequence\n").expect("write");
    std::os::unix::fs::symlink(name(b"tar\xffget"), odd.join("badlink")).expect("symlink");
    write(ws, "dep/Cargo.toml", b"[package]\nname = \"dep\"\n");
    write(ws, "dep/src/lib.rs", b"pub fn dep() {}\n");
    link(ws, "lock-link", "Cargo.lock");
}

/// The fixture's settings (container mode), as the script's `fixture_settings`.
pub(crate) fn settings() -> FingerprintSettings {
    FingerprintSettings {
        workspace_root: PathBuf::from(WORKSPACE_ROOT),
        package_name: "demo".into(),
        package_version: "0.1.0".into(),
        binary_name: "demo".into(),
        profile: "release".into(),
        features: vec!["tls".into(), "cli".into(), "tls".into()],
        base_image: "debian:bookworm-slim".into(),
        mode: BuildModeKey::Container {
            fingerprint_key: BUILDER_KEY.into(),
        },
    }
}

/// `relatives` below `ws`, as roots.
pub(crate) fn roots(ws: &Path, relatives: &[&str]) -> Vec<PathBuf> {
    relatives.iter().map(|relative| ws.join(relative)).collect()
}
