//! The original CLI's whole-tree fingerprint, byte for byte.
//!
//! One SHA-256 stream over the settings and then every input entry: see
//! [`whole_tree_fingerprint`] for the exact layout. It is how an artifact
//! made by the original CLI is judged, and the fingerprint a crate without
//! an artifact reports. The inputs are read ahead on a second thread
//! (the private `walk` module) while this thread hashes.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::walk::{read_inputs, text_record};
use super::{BuildModeKey, FingerprintSettings};

/// The stream's format tag, first in every fingerprint.
const FORMAT_TAG: &str = "arca-rust-build-v3";

/// The original's `hash_text`: the length as u64 little endian, then the bytes.
pub(crate) fn hash_text(hasher: &mut Sha256, value: &str) {
    hasher.update(text_record(value));
    hasher.update(value.as_bytes());
}

/// A SHA-256 state holding the settings part of the stream.
pub(crate) fn settings_hasher(settings: &FingerprintSettings) -> Sha256 {
    let mut hasher = Sha256::new();
    hash_text(&mut hasher, FORMAT_TAG);
    hash_text(&mut hasher, &settings.workspace_root.display().to_string());
    hash_text(&mut hasher, &settings.package_name);
    hash_text(&mut hasher, &settings.package_version);
    hash_text(&mut hasher, &settings.binary_name);
    hash_text(&mut hasher, &settings.profile);
    let mut features: Vec<&str> = settings.features.iter().map(String::as_str).collect();
    features.sort_unstable();
    for feature in features {
        hash_text(&mut hasher, feature);
    }
    hash_text(&mut hasher, &settings.base_image);
    match &settings.mode {
        BuildModeKey::Container { fingerprint_key } => {
            hash_text(&mut hasher, "container-build");
            hash_text(&mut hasher, fingerprint_key);
        }
        BuildModeKey::Host { rustc_version } => {
            hash_text(&mut hasher, "host-build");
            hash_text(&mut hasher, rustc_version);
        }
    }
    hasher
}

/// Lowercase hex of a finished digest.
pub(crate) fn finish_hex(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The original CLI's build fingerprint (lowercase hex SHA-256).
///
/// The stream: `hash_text` (u64 LE length, then the bytes) of
/// `"arca-rust-build-v3"`, the workspace root as displayed, package name,
/// version, binary, profile, each feature in sorted order (duplicates kept),
/// the base image, then `"container-build"` and the builder key or
/// `"host-build"` and the `rustc -Vv` text. Then, for each root in the order
/// given (callers pass [`super::input_roots`], sorted): a directory
/// contributes its entries depth first, sorted by name, skipping `target`,
/// `.git` and `.arca`; any other root is one entry with an empty relative
/// path. An entry is `hash_text("dir")` + relative path; or
/// `hash_text("file")` + relative path + the raw contents (not length
/// prefixed); or `hash_text("symlink")` + relative path + target text.
/// Symlinks are not followed; fifos and sockets contribute nothing.
///
/// Fails, naming the path, when an input cannot be read.
pub fn whole_tree_fingerprint(settings: &FingerprintSettings, roots: &[PathBuf]) -> Result<String> {
    let mut hasher = settings_hasher(settings);
    read_inputs(roots, false, |chunk| {
        hasher.update(chunk.bytes());
        Ok(())
    })?;
    Ok(finish_hex(hasher))
}

/// The host build mode's key: the output of `rustc -Vv`, trimmed (as the
/// original's command helper returns it).
pub fn host_mode_key() -> Result<BuildModeKey> {
    let output = Command::new("rustc").arg("-Vv").output().context(
        "Failed to run `rustc -Vv` to read the Rust toolchain version; is rustc on PATH?",
    )?;
    if !output.status.success() {
        bail!(
            "`rustc -Vv` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8(output.stdout)
        .context("`rustc -Vv` printed something that is not UTF-8")?;
    Ok(BuildModeKey::Host {
        rustc_version: text.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::test_fixture::{self, RUSTC_TEXT, build_fixture, roots, settings};

    // Expected values come from the independent Python implementation, not
    // from this code. Regenerate (after changing the fixture in both
    // src/fingerprint/test_fixture.rs and the script) with:
    //     python3 scripts/fingerprint_reference.py fixture
    const CONTAINER_ALL_ROOTS: &str =
        "5873f468f7362d41db0898b7e2a98ae1acca6859e4de7f275735c00746273e92";
    const HOST_ALL_ROOTS: &str = "c1ac8dba138fc8be998cd07356d2f21c066ecd4ee59d65aba5ca7f51fc97dec5";
    const LOCKFILE_ONLY: &str = "1cbe16badf36b22689fe20357f2ad3291439f3fca0628edd4a4d23a51cb71ec8";
    const NO_ROOTS: &str = "9cfd7d1673fc77bc556ffe28a5581860b26279ee22ecafe411f3ab802d67c3b8";
    const TWO_DIR_ROOTS: &str = "abfaec580f582c3852544dde977abb6ed01de31ec3eead6c897edd13dd4a2a59";
    const SYMLINK_ROOT: &str = "9cbbe419b0f3ee0e8094ad82a55c90cb88cc7b25b8d7a1c0c7f3271b9857c67d";

    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).expect("create ws");
        build_fixture(&ws);
        (dir, ws)
    }

    #[test]
    fn container_mode_matches_the_reference() {
        let (_dir, ws) = fixture();
        let roots = roots(&ws, &["Cargo.lock", "crate", "dep"]);
        let value = whole_tree_fingerprint(&settings(), &roots).expect("fingerprint");
        assert_eq!(value, CONTAINER_ALL_ROOTS);
    }

    #[test]
    fn host_mode_matches_the_reference() {
        let (_dir, ws) = fixture();
        let roots = roots(&ws, &["Cargo.lock", "crate", "dep"]);
        let host = FingerprintSettings {
            mode: BuildModeKey::Host {
                rustc_version: RUSTC_TEXT.into(),
            },
            ..settings()
        };
        let value = whole_tree_fingerprint(&host, &roots).expect("fingerprint");
        assert_eq!(value, HOST_ALL_ROOTS);
    }

    #[test]
    fn single_file_roots_symlink_roots_and_no_roots_match_the_reference() {
        let (_dir, ws) = fixture();
        let no_features = FingerprintSettings {
            features: Vec::new(),
            ..settings()
        };
        let lockfile = whole_tree_fingerprint(&no_features, &roots(&ws, &["Cargo.lock"]));
        assert_eq!(lockfile.expect("fingerprint"), LOCKFILE_ONLY);
        let empty = whole_tree_fingerprint(&settings(), &[]).expect("fingerprint");
        assert_eq!(empty, NO_ROOTS);
        let dev = FingerprintSettings {
            profile: "dev".into(),
            ..settings()
        };
        let two = whole_tree_fingerprint(&dev, &roots(&ws, &["crate", "dep"]));
        assert_eq!(two.expect("fingerprint"), TWO_DIR_ROOTS);
        let link = whole_tree_fingerprint(&settings(), &roots(&ws, &["lock-link"]));
        assert_eq!(link.expect("fingerprint"), SYMLINK_ROOT);
    }

    #[test]
    fn skipped_paths_do_not_count_and_inputs_do() {
        let (_dir, ws) = fixture();
        let roots = roots(&ws, &["Cargo.lock", "crate", "dep"]);
        for skipped in [
            "crate/sub/target/debug/y.rs",
            "crate/.git/objects/ab",
            "crate/.arca/config.toml",
            "crate/src/target/z.rs",
        ] {
            test_fixture::write(&ws, skipped, b"changed");
        }
        let value = whole_tree_fingerprint(&settings(), &roots).expect("fingerprint");
        assert_eq!(value, CONTAINER_ALL_ROOTS);
        test_fixture::write(&ws, "crate/sub/keep.rs", b"changed");
        let value = whole_tree_fingerprint(&settings(), &roots).expect("fingerprint");
        assert_ne!(value, CONTAINER_ALL_ROOTS);
    }

    #[test]
    fn a_missing_root_names_the_path() {
        let (_dir, ws) = fixture();
        let missing = ws.join("no-such-dir");
        let error = whole_tree_fingerprint(&settings(), std::slice::from_ref(&missing))
            .expect_err("a missing root is an error");
        let message = format!("{error:#}");
        assert!(
            message.contains(&format!(
                "Failed to read build input metadata: {}",
                missing.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn an_unreadable_file_names_the_path() {
        // Reading /proc/self/mem at offset 0 fails even for root.
        let (_dir, ws) = fixture();
        let mut roots = roots(&ws, &["crate"]);
        roots.push(PathBuf::from("/proc/self/mem"));
        let error = whole_tree_fingerprint(&settings(), &roots).expect_err("unreadable");
        let message = format!("{error:#}");
        assert!(
            message.contains("Failed to read build input file: /proc/self/mem"),
            "{message}"
        );
    }

    #[test]
    fn a_file_without_read_permission_names_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, ws) = fixture();
        let secret = ws.join("crate/src/secret.rs");
        test_fixture::write(&ws, "crate/src/secret.rs", b"x");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        if std::fs::read(&secret).is_ok() {
            // Running as root: permissions do not stop reads. The
            // /proc/self/mem test covers the read failure path.
            return;
        }
        let error =
            whole_tree_fingerprint(&settings(), &roots(&ws, &["crate"])).expect_err("unreadable");
        let message = format!("{error:#}");
        assert!(
            message.contains(&format!(
                "Failed to read build input file: {}",
                secret.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn a_directory_without_read_permission_names_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, ws) = fixture();
        let locked = ws.join("crate/locked");
        test_fixture::write(&ws, "crate/locked/inner.rs", b"x");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        let readable = std::fs::read_dir(&locked).is_ok();
        let outcome = whole_tree_fingerprint(&settings(), &roots(&ws, &["crate"]));
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755))
            .expect("chmod back");
        if readable {
            // Running as root: permissions do not stop reads.
            return;
        }
        let message = format!("{:#}", outcome.expect_err("unreadable"));
        assert!(
            message.contains(&format!(
                "Failed to read build input directory: {}",
                locked.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn the_constants_are_what_the_python_reference_prints_today() {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/fingerprint_reference.py"
        );
        let output = Command::new("python3")
            .arg(script)
            .arg("fixture")
            .output()
            .expect("python3 runs (the reference implementation needs it)");
        assert!(output.status.success(), "{output:?}");
        let printed = String::from_utf8(output.stdout).expect("UTF-8");
        let expected = [
            ("CONTAINER_ALL_ROOTS", CONTAINER_ALL_ROOTS),
            ("HOST_ALL_ROOTS", HOST_ALL_ROOTS),
            ("LOCKFILE_ONLY", LOCKFILE_ONLY),
            ("NO_ROOTS", NO_ROOTS),
            ("TWO_DIR_ROOTS", TWO_DIR_ROOTS),
            ("SYMLINK_ROOT", SYMLINK_ROOT),
        ];
        for (name, value) in expected {
            let line = format!("const {name}: &str = \"{value}\";");
            assert!(printed.contains(&line), "missing `{line}` in:\n{printed}");
        }
    }

    #[test]
    fn host_mode_key_reads_rustc() {
        let BuildModeKey::Host { rustc_version } = host_mode_key().expect("rustc -Vv runs") else {
            panic!("host_mode_key gives a host key");
        };
        assert!(rustc_version.starts_with("rustc "), "{rustc_version}");
        assert!(rustc_version.contains("\nhost: "), "{rustc_version}");
        assert_eq!(rustc_version.trim(), rustc_version);
    }
}
