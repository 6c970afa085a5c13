//! A crate's live fingerprint: the whole-tree fingerprint at a baseline and
//! the per-file index ([`TreeIndex`]) that tells, after a save, which
//! inputs differ from that baseline without rehashing the tree.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::fingerprint::index::{Change, TreeIndex, stream_and_index};
use crate::fingerprint::stream::whole_tree_fingerprint;
use crate::plan::{self, BuildSettings};
use crate::workspace::CrateFacts;

/// What the server knows about a crate's inputs right now.
pub struct Live {
    /// The settings the fingerprints were computed with.
    pub settings: BuildSettings,
    /// The whole-tree fingerprint when the index was built (the baseline).
    pub baseline_fingerprint: String,
    /// The whole-tree fingerprint of the current tree, when known: the
    /// baseline's while nothing differs from it, else filled in by a
    /// background recomputation.
    pub current_fingerprint: Option<String>,
    index: TreeIndex,
    /// SHA-256 of files an input manifest names, as `manifest::file_digest`
    /// gives them, kept until the watcher reports the path changed.
    manifest_digests: RefCell<HashMap<PathBuf, String>>,
}

/// The crate's input roots (the original CLI's).
pub fn roots(facts: &CrateFacts) -> Vec<PathBuf> {
    crate::fingerprint::input_roots(facts, dirs::home_dir().as_deref())
}

impl Live {
    /// Hashes the whole tree once (stream and index from one read). Blocking:
    /// run it off the main loop.
    pub fn build(facts: &CrateFacts, settings: BuildSettings) -> Result<Self> {
        let fingerprint_settings = plan::container_fingerprint_settings(facts, &settings);
        let (fingerprint, index) =
            stream_and_index(&fingerprint_settings, &roots(facts), &facts.crate_dir)?;
        Ok(Self {
            settings,
            current_fingerprint: Some(fingerprint.clone()),
            baseline_fingerprint: fingerprint,
            index,
            manifest_digests: RefCell::new(HashMap::new()),
        })
    }

    /// Whether `path` is one of the crate's inputs (or a directory of them).
    pub fn covers(&self, path: &Path) -> bool {
        self.index.covers(path)
    }

    /// Re-reads the given paths (O(paths), whatever the tree's size);
    /// returns whether any input changed.
    pub fn refresh(&mut self, paths: &[PathBuf]) -> bool {
        {
            let mut digests = self.manifest_digests.borrow_mut();
            digests.retain(|known, _| !paths.iter().any(|path| known.starts_with(path)));
        }
        let changed = !self.index.refresh(paths).is_empty();
        if self.index.matches_baseline() {
            self.current_fingerprint = Some(self.baseline_fingerprint.clone());
        } else if changed {
            self.current_fingerprint = None;
        }
        changed
    }

    /// Inputs that differ from the baseline, sorted by path; each displays
    /// as `src/main.rs changed`.
    pub fn changes(&self) -> Vec<Change> {
        self.index.changes_since_baseline()
    }

    /// A file's SHA-256 for reliving an input manifest, cached until the
    /// watcher reports the path.
    pub fn manifest_digest(&self, path: &Path) -> Result<String> {
        if let Some(digest) = self.manifest_digests.borrow().get(path) {
            return Ok(digest.clone());
        }
        let digest = crate::manifest::file_digest(path)?;
        self.manifest_digests
            .borrow_mut()
            .insert(path.to_path_buf(), digest.clone());
        Ok(digest)
    }
}

/// The whole-tree fingerprint of the crate's inputs now. Blocking.
pub fn whole_tree(facts: &CrateFacts, settings: &BuildSettings) -> Result<String> {
    whole_tree_fingerprint(
        &plan::container_fingerprint_settings(facts, settings),
        &roots(facts),
    )
}
