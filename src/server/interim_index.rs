//! INTERIM (deleted when crate::fingerprint::index lands): a per-file digest
//! index with the API the server expects from the fingerprint module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::fingerprint::FingerprintSettings;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: PathBuf,
    pub kind: ChangeKind,
}

pub struct TreeIndex {
    roots: Vec<PathBuf>,
    files: BTreeMap<PathBuf, [u8; 32]>,
    baseline: BTreeMap<PathBuf, [u8; 32]>,
}

fn skipped(root: &Path, path: &Path) -> bool {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .any(|c| {
            let name = c.as_os_str();
            name == "target" || name == ".git" || name == ".arca"
        })
}

fn digest(path: &Path) -> Option<[u8; 32]> {
    let bytes = std::fs::read(path).ok()?;
    Some(Sha256::digest(bytes).into())
}

pub fn stream_and_index(
    settings: &FingerprintSettings,
    roots: &[PathBuf],
) -> Result<(String, TreeIndex)> {
    let mut index = TreeIndex {
        roots: roots.to_vec(),
        files: BTreeMap::new(),
        baseline: BTreeMap::new(),
    };
    for root in roots {
        let mut pending = vec![root.clone()];
        while let Some(path) = pending.pop() {
            if skipped(root, &path) {
                continue;
            }
            if path.is_dir() {
                for entry in std::fs::read_dir(&path)?.flatten() {
                    pending.push(entry.path());
                }
            } else if let Some(digest) = digest(&path) {
                index.files.insert(path, digest);
            }
        }
    }
    let fingerprint = crate::fingerprint::stream::whole_tree_fingerprint(settings, roots)?;
    Ok((fingerprint, index))
}

impl TreeIndex {
    pub fn digest(&self, path: &Path) -> Option<String> {
        match self.files.get(path) {
            Some(digest) => Some(digest.iter().map(|b| format!("{b:02x}")).collect()),
            None if !path.exists() => Some("absent".to_owned()),
            None => None,
        }
    }

    pub fn mark_baseline(&mut self) {
        self.baseline = self.files.clone();
    }

    pub fn refresh(&mut self, paths: &[PathBuf]) {
        for path in paths {
            let Some(root) = self.roots.iter().find(|root| path.starts_with(root)) else {
                continue;
            };
            if skipped(root, path) {
                continue;
            }
            if path.is_dir() {
                continue;
            }
            match digest(path) {
                Some(digest) => {
                    self.files.insert(path.clone(), digest);
                }
                None => {
                    self.files.retain(|known, _| !known.starts_with(path));
                }
            }
        }
    }

    pub fn changes_since_baseline(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        for (path, digest) in &self.files {
            match self.baseline.get(path) {
                None => changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Added,
                }),
                Some(old) if old != digest => changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Modified,
                }),
                Some(_) => {}
            }
        }
        for path in self.baseline.keys() {
            if !self.files.contains_key(path) {
                changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Removed,
                });
            }
        }
        changes.sort();
        changes
    }
}
