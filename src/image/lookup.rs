//! Whether a path exists in an image, read from its stored layers instead
//! of a container: layers are applied bottom to top with the OCI whiteout
//! rules (`.wh.NAME` deletes NAME below, `.wh..wh..opq` empties a
//! directory below), so a base fetched from a registry, which the engine
//! does not hold, can still be asked whether it carries a CA bundle.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::BlobRef;
use crate::blobs::BlobStore;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Whether `path` (absolute, as `/etc/ssl/certs/ca-certificates.crt`)
/// exists, as a file or a link, in the image made of `layers` (bottom
/// first).
pub fn has_path(blobs: &BlobStore, layers: &[BlobRef], path: &str) -> Result<bool> {
    let wanted = normal(Path::new(path));
    let mut present = false;
    for layer in layers {
        let file = blobs.open(&layer.digest)?;
        let mut archive = tar::Archive::new(file);
        let mut added = false;
        let mut removed = false;
        for entry in archive
            .entries_with_seek()
            .with_context(|| format!("The stored layer {} is unreadable", layer.digest))?
        {
            let entry = entry
                .with_context(|| format!("The stored layer {} is unreadable", layer.digest))?;
            let entry_path = normal(&entry.path()?);
            match effect(&entry_path, &wanted) {
                Effect::Adds => added = !entry.header().entry_type().is_dir(),
                Effect::Removes => removed = true,
                Effect::None => {}
            }
        }
        present = added || (present && !removed);
    }
    Ok(present)
}

enum Effect {
    Adds,
    Removes,
    None,
}

/// What a layer's entry at `entry` does to `wanted` below it.
fn effect(entry: &Path, wanted: &Path) -> Effect {
    if entry == wanted {
        return Effect::Adds;
    }
    let (Some(parent), Some(name)) = (entry.parent(), entry.file_name()) else {
        return Effect::None;
    };
    let name = name.to_string_lossy();
    if name == OPAQUE {
        // Empties `parent` below this layer.
        return if wanted.starts_with(parent) && wanted != parent {
            Effect::Removes
        } else {
            Effect::None
        };
    }
    if let Some(deleted) = name.strip_prefix(WHITEOUT) {
        let deleted = parent.join(deleted);
        if wanted == deleted || wanted.starts_with(&deleted) {
            return Effect::Removes;
        }
    }
    Effect::None
}

/// A tar or absolute path without its root, `.` parts or trailing slash.
fn normal(path: &Path) -> PathBuf {
    path.components()
        .filter(|component| matches!(component, Component::Normal(_)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(store: &BlobStore, entries: &[(&str, Option<&[u8]>)]) -> BlobRef {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            match content {
                Some(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    header.set_mode(0o644);
                    builder.append_data(&mut header, path, *bytes).unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(0o755);
                    builder.append_data(&mut header, path, &[][..]).unwrap();
                }
            }
        }
        store
            .put_bytes(&builder.into_inner().unwrap())
            .unwrap()
            .into()
    }

    #[test]
    fn a_file_is_found_through_the_layers_and_whiteouts_remove_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let bundle = "/etc/ssl/certs/ca-certificates.crt";
        let adds = layer(
            &store,
            &[
                ("./etc/ssl/certs/", None),
                ("./etc/ssl/certs/ca-certificates.crt", Some(b"pem")),
            ],
        );
        let other = layer(&store, &[("usr/bin/tool", Some(b"x"))]);
        let whiteout = layer(
            &store,
            &[("etc/ssl/certs/.wh.ca-certificates.crt", Some(b""))],
        );
        let opaque = layer(&store, &[("etc/ssl/certs/.wh..wh..opq", Some(b""))]);
        let parent_gone = layer(&store, &[("etc/.wh.ssl", Some(b""))]);
        let opaque_and_again = layer(
            &store,
            &[
                ("etc/ssl/certs/.wh..wh..opq", Some(b"")),
                ("etc/ssl/certs/ca-certificates.crt", Some(b"pem")),
            ],
        );
        let found = |layers: &[&BlobRef]| {
            let layers: Vec<BlobRef> = layers.iter().map(|layer| (*layer).clone()).collect();
            has_path(&store, &layers, bundle).unwrap()
        };
        assert!(!found(&[]));
        assert!(!found(&[&other]));
        assert!(found(&[&adds, &other]));
        assert!(!found(&[&adds, &whiteout]));
        assert!(!found(&[&adds, &opaque]));
        assert!(!found(&[&adds, &parent_gone]));
        assert!(found(&[&adds, &whiteout, &opaque_and_again]));
        assert!(found(&[&opaque_and_again]));
        // A directory of that name is not the file.
        let directory = layer(&store, &[("etc/ssl/certs/ca-certificates.crt/", None)]);
        assert!(!found(&[&directory]));
    }
}
