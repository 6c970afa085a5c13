//! A crate's live fingerprint: the whole-tree fingerprint at a baseline and
//! the per-file index ([`TreeIndex`]) that tells, after a save, which
//! inputs differ from that baseline without rehashing the tree.
//!
//! Startup computes the byte-exact stream first (the status can go out as
//! soon as it is known) and builds the index right after; a change seen
//! between the two makes the current digest unknown until a rehash.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::fingerprint::index::{Change, TreeIndex};
use crate::fingerprint::stream::whole_tree_fingerprint;
use crate::plan::{self, BuildSettings};
use crate::workspace::{CrateFacts, SKIPPED_DIR_NAMES};

/// What the server knows about a crate's inputs right now.
pub struct Live {
    /// The settings the fingerprints were computed with.
    pub settings: BuildSettings,
    /// The whole-tree fingerprint when the stream was computed (the
    /// baseline).
    pub baseline_fingerprint: String,
    /// The whole-tree fingerprint of the current tree, when known: the
    /// baseline's while nothing differs from it, else filled in by a
    /// background recomputation.
    pub current_fingerprint: Option<String>,
    /// `None` until built (right after the stream).
    index: Option<TreeIndex>,
    roots: Vec<PathBuf>,
    /// Whether an input changed while the index was not built yet.
    changed_before_index: bool,
    /// Those inputs (named in reasons until a rehash settles the verdict).
    changed_early: Vec<PathBuf>,
    crate_dir: PathBuf,
    /// SHA-256 of files an input manifest names, as `manifest::file_digest`
    /// gives them, kept until the watcher reports the path changed.
    manifest_digests: RefCell<HashMap<PathBuf, String>>,
}

/// The crate's input roots (the original CLI's).
pub fn roots(facts: &CrateFacts) -> Vec<PathBuf> {
    crate::fingerprint::input_roots(facts, dirs::home_dir().as_deref())
}

impl Live {
    /// The byte-exact stream over the crate's inputs. Blocking: run it off
    /// the main loop, then [`build_index`] and [`attach_index`](Self::attach_index).
    pub fn stream(facts: &CrateFacts, settings: BuildSettings) -> Result<Self> {
        let roots = roots(facts);
        let fingerprint = whole_tree(facts, &settings)?;
        Ok(Self {
            settings,
            current_fingerprint: Some(fingerprint.clone()),
            baseline_fingerprint: fingerprint,
            index: None,
            roots,
            changed_before_index: false,
            changed_early: Vec::new(),
            crate_dir: facts.crate_dir.clone(),
            manifest_digests: RefCell::new(HashMap::new()),
        })
    }

    /// Installs the index; returns false when an input changed between the
    /// stream and the index (the current digest is then unknown).
    pub fn attach_index(&mut self, index: TreeIndex) -> bool {
        self.index = Some(index);
        if self.changed_before_index {
            self.current_fingerprint = None;
            return false;
        }
        true
    }

    /// A recomputed whole-tree digest of the current tree. When it equals
    /// the baseline and the index sees no change, the early changes are
    /// settled: the index's baseline is the stream's again.
    pub fn settle(&mut self, fingerprint: String) {
        let index_clean = self.index.as_ref().is_some_and(TreeIndex::matches_baseline);
        if fingerprint == self.baseline_fingerprint && index_clean {
            self.changed_before_index = false;
            self.changed_early.clear();
        }
        self.current_fingerprint = Some(fingerprint);
    }

    /// Whether `path` is one of the crate's inputs (or a directory of them).
    pub fn covers(&self, path: &Path) -> bool {
        match &self.index {
            Some(index) => index.covers(path),
            None => self.roots.iter().any(|root| {
                path.strip_prefix(root).is_ok_and(|relative| {
                    !relative.components().any(|component| {
                        SKIPPED_DIR_NAMES
                            .contains(&component.as_os_str().to_string_lossy().as_ref())
                    })
                })
            }),
        }
    }

    /// Re-reads the given paths (O(paths), whatever the tree's size);
    /// returns whether any input changed.
    pub fn refresh(&mut self, paths: &[PathBuf]) -> bool {
        {
            let mut digests = self.manifest_digests.borrow_mut();
            digests.retain(|known, _| !paths.iter().any(|path| known.starts_with(path)));
        }
        let Some(index) = self.index.as_mut() else {
            let covered: Vec<PathBuf> = paths
                .iter()
                .filter(|path| self.covers(path))
                .cloned()
                .collect();
            if !covered.is_empty() {
                self.changed_early.extend(covered);
                self.changed_before_index = true;
                self.current_fingerprint = None;
                return true;
            }
            return false;
        };
        let changed = !index.refresh(paths).is_empty();
        if index.matches_baseline() && !self.changed_before_index {
            self.current_fingerprint = Some(self.baseline_fingerprint.clone());
        } else if changed {
            self.current_fingerprint = None;
        }
        changed
    }

    /// Inputs that differ from the baseline, as reasons
    /// (`src/main.rs changed`), sorted by path.
    pub fn changes(&self) -> Vec<String> {
        let mut reasons: Vec<String> = self
            .index
            .as_ref()
            .map(TreeIndex::changes_since_baseline)
            .unwrap_or_default()
            .iter()
            .map(Change::to_string)
            .collect();
        for path in &self.changed_early {
            let shown = path.strip_prefix(&self.crate_dir).unwrap_or(path).display();
            let reason = format!("{shown} changed");
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        reasons
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

/// The per-file index of the crate's inputs. Blocking.
pub fn build_index(facts: &CrateFacts) -> Result<TreeIndex> {
    TreeIndex::build(&roots(facts), &facts.crate_dir)
}

/// The whole-tree fingerprint of the crate's inputs now. Blocking.
pub fn whole_tree(facts: &CrateFacts, settings: &BuildSettings) -> Result<String> {
    whole_tree_fingerprint(
        &plan::container_fingerprint_settings(facts, settings),
        &roots(facts),
    )
}
