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
    /// gives them, kept until the watcher reports the path changed. Filled
    /// by a job ([`Live::missing_manifest_digests`]), never on the loop.
    manifest_digests: RefCell<HashMap<PathBuf, String>>,
    /// Bumped on every refresh: digests computed before it are stale.
    digest_epoch: u64,
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
            digest_epoch: 0,
        })
    }

    /// Whether a change at `path` may change an input: one of the crate's
    /// inputs, a directory of them, or a directory above its roots.
    pub fn concerns(&self, path: &Path) -> bool {
        self.index.concerns(path)
    }

    /// Re-reads the given paths (O(paths), whatever the tree's size);
    /// returns whether any input changed.
    pub fn refresh(&mut self, paths: &[PathBuf]) -> bool {
        self.digest_epoch += 1;
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

    /// A file's SHA-256 for reliving an input manifest, from the cache
    /// only (an error when not computed yet).
    pub fn manifest_digest(&self, path: &Path) -> Result<String> {
        self.manifest_digests
            .borrow()
            .get(path)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{} not hashed yet", path.display()))
    }

    /// Forgets cached manifest digests under `paths` (changed outside the
    /// index); whether any was known.
    pub fn forget_digests(&mut self, paths: &[PathBuf]) -> bool {
        let mut digests = self.manifest_digests.borrow_mut();
        let before = digests.len();
        digests.retain(|known, _| !paths.iter().any(|path| known.starts_with(path)));
        let forgot = digests.len() != before;
        drop(digests);
        if forgot {
            self.digest_epoch += 1;
        }
        forgot
    }

    /// Files the manifest names whose digest is not cached (to hash in a
    /// job), and the epoch to hand back with them.
    pub fn missing_manifest_digests(
        &self,
        manifest: &crate::manifest::Manifest,
        settings: &BuildSettings,
    ) -> (Vec<PathBuf>, u64) {
        let missing = RefCell::new(Vec::new());
        let _ = crate::status::relive_manifest(manifest, settings, |path| {
            if let Some(digest) = self.manifest_digests.borrow().get(path) {
                return Ok(digest.clone());
            }
            missing.borrow_mut().push(path.to_path_buf());
            Ok(String::new())
        });
        (missing.into_inner(), self.digest_epoch)
    }

    /// Digests hashed by a job at `epoch`; dropped (false) when a refresh
    /// came since.
    pub fn add_manifest_digests(&self, epoch: u64, digests: Vec<(PathBuf, String)>) -> bool {
        if epoch != self.digest_epoch {
            return false;
        }
        self.manifest_digests.borrow_mut().extend(digests);
        true
    }
}

/// SHA-256 of each file, as an input manifest records it. Blocking.
pub fn manifest_digests(paths: Vec<PathBuf>) -> Result<Vec<(PathBuf, String)>, String> {
    paths
        .into_iter()
        .map(|path| {
            let digest =
                crate::manifest::file_digest(&path).map_err(|error| format!("{error:#}"))?;
            Ok((path, digest))
        })
        .collect()
}

/// The whole-tree fingerprint of the crate's inputs now. Blocking.
pub fn whole_tree(facts: &CrateFacts, settings: &BuildSettings) -> Result<String> {
    whole_tree_fingerprint(
        &plan::container_fingerprint_settings(facts, settings),
        &roots(facts),
    )
}
