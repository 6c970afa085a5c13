//! Garbage collection of the blob store: a blob is live while some
//! artifact's layout (`containers/<id>/image/blobs/sha256/`) names it.
//! A base record keeps its config (and CA-bundle layer) alive while some
//! artifact still uses all its layers; a base no artifact uses is collected
//! whole, and imported again by the next build that needs it.
//!
//! Runs under the store's exclusive lock, so it never races a build (a
//! build holds the lock shared from its first blob write until its record
//! is committed). Under that lock, staging directories left in the
//! artifact store are a crashed build's, and are removed too.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use anyhow::Result;

use super::base::Bases;
use crate::blobs::{BlobStore, Digest, GcReport};

/// Where the pieces live under `$ARCA_HOME`.
pub struct Home<'a> {
    pub blobs: &'a BlobStore,
    pub bases: &'a Bases,
    /// The artifact store (`containers/`).
    pub artifacts: &'a Path,
}

/// Every blob some artifact directory's layout links (readable records or
/// not: a directory Arca cannot read is kept conservatively).
pub fn live_blobs(artifacts: &Path) -> HashSet<Digest> {
    let mut live = HashSet::new();
    let Ok(entries) = fs::read_dir(artifacts) else {
        return live;
    };
    for entry in entries.flatten() {
        let dir = entry
            .path()
            .join(super::layout::LAYOUT_DIR)
            .join("blobs")
            .join("sha256");
        if let Ok(blobs) = fs::read_dir(dir) {
            live.extend(
                blobs
                    .flatten()
                    .filter_map(|blob| Digest::parse(&blob.file_name().to_string_lossy()).ok()),
            );
        }
    }
    live
}

/// Collects every unreferenced blob. `waiting` is called once when a build
/// holds the store and the collection has to wait for it.
pub fn collect(home: &Home<'_>, waiting: &dyn Fn()) -> Result<GcReport> {
    let lock = match home.blobs.try_lock_exclusive()? {
        Some(lock) => lock,
        None => {
            waiting();
            home.blobs.lock_exclusive()?
        }
    };
    if let Ok(entries) = fs::read_dir(home.artifacts) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".staging-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let mut live = live_blobs(home.artifacts);
    // A base still used by an artifact (all its layers live) keeps its
    // config and CA-bundle layer, so the next build needs no import.
    for record in home.bases.list() {
        if record
            .layers
            .iter()
            .all(|layer| live.contains(&layer.digest))
        {
            live.extend(record.blobs().into_iter().map(|blob| blob.digest.clone()));
        }
    }
    let report = home.blobs.gc(&live, &lock)?;
    for record in home.bases.list() {
        if record
            .blobs()
            .iter()
            .any(|blob| !home.blobs.has(&blob.digest))
        {
            home.bases.remove(&record.image_id);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_linked_by_a_layout_survive_and_others_go() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path().join("blobs"));
        let bases = Bases::at(root.path().join("bases"));
        let artifacts = root.path().join("containers");
        let kept = blobs.put_bytes(b"kept").unwrap().digest;
        let freed = blobs.put_bytes(b"freed").unwrap().digest;
        let linked = artifacts.join("ab12cd34/image/blobs/sha256");
        fs::create_dir_all(&linked).unwrap();
        fs::hard_link(blobs.path(&kept), linked.join(kept.hex())).unwrap();
        fs::create_dir_all(artifacts.join(".staging-zz-1/image")).unwrap();
        let report = collect(
            &Home {
                blobs: &blobs,
                bases: &bases,
                artifacts: &artifacts,
            },
            &|| {},
        )
        .unwrap();
        assert_eq!((report.removed, report.kept, report.bytes), (1, 1, 5));
        assert!(blobs.has(&kept));
        // A base in use keeps its config; an unused one goes with its record.
        let config = blobs.put_bytes(b"config").unwrap();
        let used = super::super::base::BaseRecord {
            image_id: config.digest.clone(),
            config: (&config).into(),
            layers: vec![super::super::BlobRef {
                digest: kept.clone(),
                size: 4,
            }],
            references: vec![],
            imported_at_epoch_ms: 1,
            ca_bundle: None,
        };
        bases.save(&used).unwrap();
        let unused_layer = blobs.put_bytes(b"unused layer").unwrap();
        let unused_config = blobs.put_bytes(b"unused config").unwrap();
        bases
            .save(&super::super::base::BaseRecord {
                image_id: unused_config.digest.clone(),
                config: (&unused_config).into(),
                layers: vec![(&unused_layer).into()],
                ..used.clone()
            })
            .unwrap();
        let home = Home {
            blobs: &blobs,
            bases: &bases,
            artifacts: &artifacts,
        };
        let report = collect(&home, &|| {}).unwrap();
        assert_eq!(report.removed, 2);
        assert!(blobs.has(&config.digest));
        assert_eq!(bases.list(), vec![used]);
        assert!(!blobs.has(&freed));
        assert!(!artifacts.join(".staging-zz-1").exists());
    }
}
