//! Whether a path exists in an image, read from its stored layers instead
//! of a container: layers are applied bottom to top with the OCI whiteout
//! rules (`.wh.NAME` deletes NAME below, `.wh..wh..opq` empties a
//! directory below), so a base fetched from a registry, which the engine
//! does not hold, can still be asked whether it carries a CA bundle; and
//! one file's bytes out of one layer ([`read_file`]). Layers are untrusted
//! tar streams: entries are only compared by name, never written or
//! followed, and a read is bounded before it starts.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

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

/// The bytes of the regular file at `path` (absolute) in one layer, at
/// most `max` bytes. A link, device or directory of that name is an error
/// (nothing is followed), as is an entry larger than `max` (refused from
/// its header, before reading) or no entry at all.
pub fn read_file(blobs: &BlobStore, layer: &BlobRef, path: &str, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let wanted = normal(Path::new(path));
    let unreadable = || format!("The stored layer {} is unreadable", layer.digest);
    let mut archive = tar::Archive::new(blobs.open(&layer.digest)?);
    for entry in archive.entries().with_context(unreadable)? {
        let entry = entry.with_context(unreadable)?;
        if normal(&entry.path().with_context(unreadable)?) != wanted {
            continue;
        }
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            bail!(
                "{path} in the layer {} is a {kind:?} entry, not a regular file; Arca does not follow links inside layers",
                layer.digest
            );
        }
        let size = entry.size();
        if size > max {
            bail!(
                "{path} in the layer {} is {size} bytes, over the {max}-byte limit for it; the layer is not what Arca expects",
                layer.digest
            );
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry
            .take(max)
            .read_to_end(&mut bytes)
            .with_context(unreadable)?;
        if bytes.len() as u64 != size {
            bail!(
                "The stored layer {} ends inside {path} ({} of {size} bytes): it is truncated",
                layer.digest,
                bytes.len()
            );
        }
        return Ok(bytes);
    }
    Err(anyhow!("The layer {} has no {path}", layer.digest))
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
    fn one_file_is_read_bounded_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let bundle = "/etc/ssl/certs/ca-certificates.crt";
        let plain = layer(
            &store,
            &[("./etc/ssl/certs/ca-certificates.crt", Some(b"pem"))],
        );
        assert_eq!(read_file(&store, &plain, bundle, 16).unwrap(), b"pem");
        // Larger than allowed: refused from the header.
        let error = read_file(&store, &plain, bundle, 2)
            .unwrap_err()
            .to_string();
        assert!(error.contains("over the 2-byte limit"), "{error}");
        // A symlink (to a host file, say) or a hard link is not read.
        for kind in [tar::EntryType::Symlink, tar::EntryType::Link] {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(0);
            builder
                .append_link(
                    &mut header,
                    "etc/ssl/certs/ca-certificates.crt",
                    "/etc/shadow",
                )
                .unwrap();
            let linked: BlobRef = store
                .put_bytes(&builder.into_inner().unwrap())
                .unwrap()
                .into();
            let error = read_file(&store, &linked, bundle, 1 << 20)
                .unwrap_err()
                .to_string();
            assert!(error.contains("not a regular file"), "{error}");
        }
        // A header that claims a terabyte in a short stream: refused, not
        // allocated.
        let mut header = tar::Header::new_gnu();
        header
            .set_path("etc/ssl/certs/ca-certificates.crt")
            .unwrap();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(1 << 40);
        header.set_cksum();
        let mut lying = header.as_bytes().to_vec();
        lying.extend_from_slice(&[0u8; 512]);
        let lying: BlobRef = store.put_bytes(&lying).unwrap().into();
        let error = read_file(&store, &lying, bundle, 16 << 20)
            .unwrap_err()
            .to_string();
        assert!(error.contains("over the"), "{error}");
        // A truncated stream is an error, not a short file.
        let mut header = tar::Header::new_gnu();
        header
            .set_path("etc/ssl/certs/ca-certificates.crt")
            .unwrap();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(4096);
        header.set_cksum();
        let mut truncated = header.as_bytes().to_vec();
        truncated.extend_from_slice(&[b'x'; 100]);
        let truncated: BlobRef = store.put_bytes(&truncated).unwrap().into();
        assert!(read_file(&store, &truncated, bundle, 16 << 20).is_err());
        // `..` does not reach it from elsewhere, and absence is said.
        let mut header = tar::Header::new_old();
        let name = b"usr/../../etc/ssl/certs/ca-certificates.crt";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(1);
        header.set_cksum();
        let mut dotted = header.as_bytes().to_vec();
        dotted.extend_from_slice(&[b'x'; 512]);
        dotted.extend_from_slice(&[0u8; 1024]);
        let dotted: BlobRef = store.put_bytes(&dotted).unwrap().into();
        let error = read_file(&store, &dotted, bundle, 16)
            .unwrap_err()
            .to_string();
        assert!(error.contains("has no"), "{error}");
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
