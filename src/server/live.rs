//! A crate's live fingerprint: the whole-tree fingerprint at a baseline and
//! the per-file index that tells, after a save, which inputs differ from
//! that baseline without rehashing the tree.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::interim_index::{Change, TreeIndex};
use crate::fingerprint::FingerprintSettings;
use crate::plan::{self, BuildSettings};
use crate::workspace::CrateFacts;

/// What the server knows about a crate's inputs right now.
pub struct Live {
    /// The settings the fingerprints were computed with.
    pub settings: BuildSettings,
    /// The whole-tree fingerprint when the index was built (the baseline).
    pub baseline_fingerprint: String,
    /// The whole-tree fingerprint of the current tree, when known: the
    /// baseline's while nothing changed, else filled in by a background
    /// recomputation.
    pub current_fingerprint: Option<String>,
    index: TreeIndex,
    roots: Vec<PathBuf>,
}

/// The fingerprint settings of a container build of `facts` with `settings`.
fn fingerprint_settings(facts: &CrateFacts, settings: &BuildSettings) -> FingerprintSettings {
    plan::container_fingerprint_settings(facts, settings)
}

/// The crate's input roots (the original CLI's).
pub fn roots(facts: &CrateFacts) -> Vec<PathBuf> {
    crate::fingerprint::input_roots(facts, dirs::home_dir().as_deref())
}

impl Live {
    /// Hashes the whole tree once and indexes every input file. Blocking:
    /// run it off the main loop.
    pub fn build(facts: &CrateFacts, settings: BuildSettings) -> Result<Self> {
        let roots = roots(facts);
        let fingerprint_settings = fingerprint_settings(facts, &settings);
        let (fingerprint, mut index) =
            super::interim_index::stream_and_index(&fingerprint_settings, &roots)?;
        index.mark_baseline();
        Ok(Self {
            settings,
            current_fingerprint: Some(fingerprint.clone()),
            baseline_fingerprint: fingerprint,
            index,
            roots,
        })
    }

    /// Whether `path` is (or is inside) one of the crate's input roots.
    pub fn covers(&self, path: &Path) -> bool {
        self.roots.iter().any(|root| path.starts_with(root))
    }

    /// Re-reads the given paths; returns whether the set of changes since
    /// the baseline is different afterwards.
    pub fn refresh(&mut self, paths: &[PathBuf]) -> bool {
        let before = self.index.changes_since_baseline();
        let relevant: Vec<PathBuf> = paths
            .iter()
            .filter(|path| self.covers(path))
            .cloned()
            .collect();
        if relevant.is_empty() {
            return false;
        }
        self.index.refresh(&relevant);
        let after = self.index.changes_since_baseline();
        if after.is_empty() {
            self.current_fingerprint = Some(self.baseline_fingerprint.clone());
        } else if after != before {
            self.current_fingerprint = None;
        }
        after != before
    }

    /// The digest the index holds for a file (`None` when the file is not
    /// one of its inputs).
    pub fn cached_digest(&self, path: &Path) -> Option<String> {
        if !self.covers(path) {
            return None;
        }
        self.index.digest(path)
    }

    /// Input files that differ from the baseline, sorted by path.
    pub fn changes(&self) -> Vec<Change> {
        self.index.changes_since_baseline()
    }
}

/// The whole-tree fingerprint of the crate's inputs now. Blocking.
pub fn whole_tree(facts: &CrateFacts, settings: &BuildSettings) -> Result<String> {
    let (fingerprint, _) = super::interim_index::stream_and_index(
        &fingerprint_settings(facts, settings),
        &roots(facts),
    )?;
    Ok(fingerprint)
}
