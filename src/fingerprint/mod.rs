//! Build fingerprints: what decides whether an image is still fresh.
//!
//! - [`stream`]: the original CLI's whole-tree fingerprint, one SHA-256 stream
//!   over the settings and every input entry, byte for byte.
//! - [`index`]: a per-file digest index kept current from watcher events, so
//!   the fresh/stale verdict after a save costs the same on any tree size;
//!   [`index::stream_and_index`] gives both from one read of the tree.
//! - `walk` (private): the inputs' order and skip rules, shared by both, and
//!   the read-ahead thread.
//!
//! **Knows neither Docker nor LSP.**

pub mod index;
pub mod stream;
#[cfg(test)]
mod test_fixture;
mod walk;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::workspace::CrateFacts;

/// How the binary is built, as the original CLI mixes it into the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildModeKey {
    /// In the builder container: the key is
    /// `arca-rust-builder-v1:arca-builder:<hash>` (see `plan::builder_fingerprint_key`).
    Container { fingerprint_key: String },
    /// On the host: the key is the output of `rustc -Vv`.
    Host { rustc_version: String },
}

/// The settings part of the original CLI's fingerprint stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintSettings {
    pub workspace_root: PathBuf,
    pub package_name: String,
    pub package_version: String,
    pub binary_name: String,
    pub profile: String,
    /// As configured; the stream sorts them (and keeps duplicates).
    pub features: Vec<String>,
    pub base_image: String,
    pub mode: BuildModeKey,
}

/// The original CLI's input roots for a crate, sorted by path: every local
/// package directory, the workspace `Cargo.lock`, and every existing
/// `.cargo/config.toml` / `.cargo/config` from the crate directory up to the
/// filesystem root and in `cargo_home_parent/.cargo` (the user's home).
pub fn input_roots(facts: &CrateFacts, home_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut roots: BTreeSet<PathBuf> = facts.local_package_dirs.iter().cloned().collect();
    let lockfile = facts.workspace_root.join("Cargo.lock");
    if lockfile.is_file() {
        roots.insert(lockfile);
    }
    let config_dirs = facts
        .crate_dir
        .ancestors()
        .map(Path::to_path_buf)
        .chain(home_dir.map(Path::to_path_buf));
    for dir in config_dirs {
        for name in ["config.toml", "config"] {
            let path = dir.join(".cargo").join(name);
            if path.is_file() {
                roots.insert(path);
            }
        }
    }
    roots.into_iter().collect()
}
