//! When build caches and builder images were last used, so `arca prune
//! cache` can remove what has not been used for a while.
//!
//! Each container build touches a `last-used` file in its target cache
//! (`cache/rust/builds/<key>/last-used`), one in the shared cargo home, and
//! a marker per builder image (`cache/rust/builders/<hash>`), named by the
//! image tag's hash: the only builder images `prune cache` removes are
//! those this `ARCA_HOME` marked. Markers' modification times are the
//! "last used" times; a cache without a marker counts by its directory's.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The marker file's name inside a cache directory.
const MARKER: &str = "last-used";

/// `$ARCA_HOME/cache/rust`.
fn rust_cache(home: &Path) -> PathBuf {
    home.join("cache").join("rust")
}

/// Marks a build's caches and its builder image as used now. Best effort:
/// a marker that cannot be written only makes the cache look older.
pub fn mark_used(rust_cache: &Path, build_cache: &Path, builder_tag: &str) {
    let mut markers = vec![
        build_cache.join(MARKER),
        rust_cache.join("cargo-home").join(MARKER),
    ];
    if let Some(hash) = builder_hash(builder_tag) {
        markers.push(rust_cache.join("builders").join(hash));
    }
    for marker in markers {
        if let Some(parent) = marker.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(error) = std::fs::write(&marker, b"") {
            tracing::debug!("cache marker {} not written: {error}", marker.display());
        }
    }
}

/// The hash part of `arca-builder:<hash>` (hex only, so it is a safe file name).
fn builder_hash(tag: &str) -> Option<&str> {
    let hash = tag.strip_prefix(&format!("{}:", crate::plan::BUILDER_IMAGE_PREFIX))?;
    (!hash.is_empty() && hash.bytes().all(|byte| byte.is_ascii_hexdigit())).then_some(hash)
}

/// What has not been used since `cutoff_ms` (milliseconds since the epoch).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unused {
    /// Target caches and the cargo home.
    pub dirs: Vec<PathBuf>,
    /// Builder image tags.
    pub builder_images: Vec<String>,
}

/// The caches of `home` last used before `cutoff_ms`.
pub fn unused_since(home: &Path, cutoff_ms: u64) -> Unused {
    let cache = rust_cache(home);
    let mut unused = Unused::default();
    let old = |path: &Path| last_used_ms(path).is_none_or(|used| used < cutoff_ms);
    if let Ok(entries) = std::fs::read_dir(cache.join("builds")) {
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.is_dir() && old(path))
            .collect();
        dirs.sort();
        unused.dirs.extend(dirs);
    }
    let cargo_home = cache.join("cargo-home");
    if cargo_home.is_dir() && old(&cargo_home) {
        unused.dirs.push(cargo_home);
    }
    if let Ok(entries) = std::fs::read_dir(cache.join("builders")) {
        let mut tags: Vec<String> = entries
            .flatten()
            .filter(|entry| old(&entry.path()))
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let tag = format!("{}:{name}", crate::plan::BUILDER_IMAGE_PREFIX);
                builder_hash(&tag).is_some().then_some(tag)
            })
            .collect();
        tags.sort();
        unused.builder_images = tags;
    }
    unused
}

/// Forgets a removed builder image's marker.
pub fn forget_builder(home: &Path, tag: &str) {
    if let Some(hash) = builder_hash(tag) {
        let _ = std::fs::remove_file(rust_cache(home).join("builders").join(hash));
    }
}

/// A cache's last use: its marker's time, else its own modification time.
fn last_used_ms(path: &Path) -> Option<u64> {
    let marker = if path.is_dir() {
        path.join(MARKER)
    } else {
        path.to_path_buf()
    };
    let modified = std::fs::metadata(&marker)
        .or_else(|_| std::fs::metadata(path))
        .and_then(|metadata| metadata.modified())
        .ok()?;
    Some(modified.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_caches_stay_and_unused_ones_are_listed() {
        let home = tempfile::tempdir().unwrap();
        let cache = rust_cache(home.path());
        let build = cache.join("builds/k1");
        std::fs::create_dir_all(&build).unwrap();
        let tag = format!("{}:{}", crate::plan::BUILDER_IMAGE_PREFIX, "ab12");
        mark_used(&cache, &build, &tag);
        mark_used(&cache, &build, "arca-builder:../../etc");
        let now = crate::store::now_epoch_ms();
        assert_eq!(unused_since(home.path(), now - 60_000), Unused::default());
        let everything = unused_since(home.path(), now + 60_000);
        assert_eq!(everything.dirs, [build, cache.join("cargo-home")]);
        assert_eq!(everything.builder_images, std::slice::from_ref(&tag));
        forget_builder(home.path(), &tag);
        assert!(
            unused_since(home.path(), now + 60_000)
                .builder_images
                .is_empty()
        );
    }
}
