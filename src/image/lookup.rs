//! Whether a path exists in an image, read from its stored layers instead
//! of a container: layers are applied bottom to top with the OCI whiteout
//! rules (`.wh.NAME` deletes NAME below, `.wh..wh..opq` empties a
//! directory below), so a base fetched from a registry, which the engine
//! does not hold, can still be asked whether it carries a CA bundle; and
//! one file's bytes out of one layer ([`read_file`]). Layers are untrusted
//! tar streams: entries are only compared by name, never written or
//! followed, and a read is bounded before it starts.
//!
//! Names are read as an engine applies them: an absolute name (`/etc/x`)
//! means `etc/x`, `.` parts and a trailing slash mean nothing, and a name
//! with a `..` component refuses the whole layer. Within one layer the
//! last entry of a name wins, as when it is extracted; a whiteout there
//! applies only to the layers below it (OCI image spec, "Whiteouts").

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::BlobRef;
use crate::blobs::{BlobStore, Digest};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Whether `path` (absolute, as `/etc/ssl/certs/ca-certificates.crt`)
/// exists, as a regular file or a link, in the image made of `layers`
/// (bottom first). A directory, device or FIFO of that name is not a file.
pub fn has_path(blobs: &BlobStore, layers: &[BlobRef], path: &str) -> Result<bool> {
    let wanted = wanted_name(path)?;
    let mut present = false;
    for layer in layers {
        present = match in_layer(blobs, layer, &wanted)? {
            Layer::Holds(file) => file,
            Layer::Removes => false,
            Layer::Keeps => present,
        };
    }
    Ok(present)
}

/// What one layer does to the wanted path.
enum Layer {
    /// Its last entry of that name is a file or link (`true`), or
    /// something else (`false`); either replaces what is below.
    Holds(bool),
    /// It has no entry of that name but a whiteout that removes it below.
    Removes,
    /// It does not touch it.
    Keeps,
}

/// Reads one layer's entries (headers only: file data is skipped).
fn in_layer(blobs: &BlobStore, layer: &BlobRef, wanted: &Path) -> Result<Layer> {
    let unreadable = || format!("The stored layer {} is unreadable", layer.digest);
    let mut archive = tar::Archive::new(blobs.open(&layer.digest)?);
    let mut held = None;
    let mut removed = false;
    for entry in archive.entries_with_seek().with_context(unreadable)? {
        let entry = entry.with_context(unreadable)?;
        let name = entry_name(&entry, &layer.digest)?;
        let kind = entry.header().entry_type();
        match effect(&name, wanted, &layer.digest)? {
            Effect::Adds => held = Some(is_file_or_link(kind)),
            Effect::Removes => removed = true,
            // A directory above the wanted path replaced by something that
            // holds nothing (a file, device or FIFO) hides it below. A
            // symlink there is left alone: it is not followed.
            Effect::None if wanted.starts_with(&name) && !kind.is_dir() && !kind.is_symlink() => {
                removed = true;
            }
            Effect::None => {}
        }
    }
    Ok(match (held, removed) {
        (Some(file), _) => Layer::Holds(file),
        (None, true) => Layer::Removes,
        (None, false) => Layer::Keeps,
    })
}

/// Whether an entry of this type is what [`has_path`] counts as present:
/// a regular file (a sparse one too: engines write it as one), a hard link
/// or a symlink (links are not followed).
fn is_file_or_link(kind: tar::EntryType) -> bool {
    kind.is_file() || kind.is_gnu_sparse() || kind.is_hard_link() || kind.is_symlink()
}

/// The bytes of the regular file at `path` (absolute) in one layer, at
/// most `max` bytes; of the last entry of that name when there are
/// several. A link, device or directory of that name is an error
/// (nothing is followed), as is an entry larger than `max` (refused from
/// its header, before reading) or no entry at all.
pub fn read_file(blobs: &BlobStore, layer: &BlobRef, path: &str, max: u64) -> Result<Vec<u8>> {
    let wanted = wanted_name(path)?;
    let unreadable = || format!("The stored layer {} is unreadable", layer.digest);
    let mut archive = tar::Archive::new(blobs.open(&layer.digest)?);
    let mut last = None;
    for entry in archive.entries_with_seek().with_context(unreadable)? {
        let entry = entry.with_context(unreadable)?;
        if entry_name(&entry, &layer.digest)? == wanted {
            // Only the last one's bytes are kept (one at a time in memory).
            last = Some(read_entry(entry, layer, path, max));
        }
    }
    last.unwrap_or_else(|| Err(anyhow!("The layer {} has no {path}", layer.digest)))
}

/// The bytes of `entry` (named `path` in `layer`), at most `max`, when it
/// is a regular file.
fn read_entry(
    entry: tar::Entry<'_, impl Read>,
    layer: &BlobRef,
    path: &str,
    max: u64,
) -> Result<Vec<u8>> {
    let kind = entry.header().entry_type();
    if kind.is_gnu_sparse() {
        bail!(
            "{path} in the layer {} is stored sparse (a GNU sparse entry), which Arca does not read out of layers; the layer is not what Arca expects",
            layer.digest
        );
    }
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
        .with_context(|| format!("The stored layer {} is unreadable", layer.digest))?;
    if bytes.len() as u64 != size {
        bail!(
            "The stored layer {} ends inside {path} ({} of {size} bytes): it is truncated",
            layer.digest,
            bytes.len()
        );
    }
    Ok(bytes)
}

enum Effect {
    /// The entry is the wanted path itself.
    Adds,
    /// The entry is a whiteout that removes the wanted path below.
    Removes,
    None,
}

/// What a layer's entry named `entry` does to `wanted` below it.
fn effect(entry: &Path, wanted: &Path, layer: &Digest) -> Result<Effect> {
    if entry == wanted {
        return Ok(Effect::Adds);
    }
    let (Some(parent), Some(name)) = (entry.parent(), entry.file_name()) else {
        return Ok(Effect::None);
    };
    let name = name.to_string_lossy();
    if name == OPAQUE {
        // Empties `parent` below this layer (at the root: every lower
        // layer, which is what an opaque root means).
        let emptied = wanted.starts_with(parent) && wanted != parent;
        return Ok(if emptied {
            Effect::Removes
        } else {
            Effect::None
        });
    }
    let Some(deleted) = name.strip_prefix(WHITEOUT) else {
        return Ok(Effect::None);
    };
    match deleted {
        // `.wh.` or `.wh..` would name the directory it is in (at the
        // root, `/`): no engine writes it, and taking it as a whiteout of
        // everything below would let one entry hide a whole image.
        "" | "." => Ok(Effect::None),
        ".." => Err(outside(layer, entry)),
        deleted if wanted.starts_with(parent.join(deleted)) => Ok(Effect::Removes),
        _ => Ok(Effect::None),
    }
}

/// The name of `entry` inside the image (its PAX `path` or GNU long name
/// when it has one), as [`inside`] reads it; a `..` in it is an error.
fn entry_name(entry: &tar::Entry<'_, impl Read>, layer: &Digest) -> Result<PathBuf> {
    let name = entry
        .path()
        .with_context(|| format!("The stored layer {layer} has an unreadable entry name"))?;
    inside(&name).ok_or_else(|| outside(layer, &name))
}

/// The wanted (absolute) path as an entry name.
fn wanted_name(path: &str) -> Result<PathBuf> {
    inside(Path::new(path))
        .ok_or_else(|| anyhow!("{path:?} climbs with `..`; ask for a path inside the image"))
}

/// A tar or absolute path without its root, `.` parts or trailing slash;
/// `None` when it has a `..` part. An absolute name (`/etc/x`) means
/// `etc/x`: engines apply a layer's names below the image's root.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut name = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => name.push(part),
            Component::ParentDir => return None,
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(name)
}

/// The refusal of a layer with an entry whose name climbs with `..`.
fn outside(layer: &Digest, name: &Path) -> anyhow::Error {
    anyhow!(
        "The stored layer {layer} has an entry named {name:?}: a name with `..` can reach a path outside the image, which is not what an image's layer holds (Docker refuses a layer whose names climb out of its root), so Arca does not read this layer. Use a base image from a source you trust, or rebuild it."
    )
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
        // Absence is said.
        let error = read_file(&store, &plain, "/etc/other", 16)
            .unwrap_err()
            .to_string();
        assert!(error.contains("has no /etc/other"), "{error}");
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

    const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

    /// One entry as raw bytes (a GNU header and its padded data), its
    /// name copied as is: `tar::Builder` refuses `..` and absolute names.
    fn raw_entry(name: &[u8], kind: tar::EntryType, data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().next_multiple_of(512), 0);
        bytes
    }

    /// A layer of raw entries, ended by two zero blocks.
    fn raw_layer(store: &BlobStore, entries: &[Vec<u8>]) -> BlobRef {
        let mut bytes = entries.concat();
        bytes.extend_from_slice(&[0u8; 1024]);
        store.put_bytes(&bytes).unwrap().into()
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        raw_entry(name.as_bytes(), tar::EntryType::Regular, data)
    }

    /// A PAX extended-header record, `LENGTH key=value\n`, whose length
    /// counts its own digits.
    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        let mut length = body.len() + 1;
        while format!("{length}{body}").len() != length {
            length += 1;
        }
        format!("{length}{body}").into_bytes()
    }

    fn present(store: &BlobStore, layers: &[&BlobRef]) -> bool {
        let layers: Vec<BlobRef> = layers.iter().map(|layer| (*layer).clone()).collect();
        has_path(store, &layers, BUNDLE).unwrap()
    }

    #[test]
    fn a_name_that_climbs_with_dot_dot_refuses_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let names: [&[u8]; 5] = [
            b"../etc/ssl/certs/ca-certificates.crt",
            b"usr/../../etc/ssl/certs/ca-certificates.crt",
            b"usr/../etc/ssl/certs/ca-certificates.crt",
            b"/../etc/ssl/certs/ca-certificates.crt",
            b"etc/ssl/certs/..",
        ];
        for name in names {
            let climbing = raw_layer(
                &store,
                &[
                    file("etc/ssl/certs/ca-certificates.crt", b"pem"),
                    raw_entry(name, tar::EntryType::Regular, b"evil"),
                ],
            );
            let shown = format!("{:?}", String::from_utf8_lossy(name));
            for error in [
                has_path(&store, std::slice::from_ref(&climbing), BUNDLE).unwrap_err(),
                read_file(&store, &climbing, BUNDLE, 16).unwrap_err(),
            ] {
                let error = error.to_string();
                assert!(error.contains(&climbing.digest.to_string()), "{error}");
                assert!(error.contains(&shown), "{error}");
                assert!(error.contains("outside the image"), "{error}");
            }
        }
        // A whiteout of `..` climbs too.
        let climbing = raw_layer(&store, &[file("etc/ssl/.wh...", b"")]);
        let error = has_path(&store, &[climbing], BUNDLE).unwrap_err();
        assert!(error.to_string().contains("outside the image"), "{error}");
        // The name reaches a terminal escaped.
        let coloured = raw_layer(
            &store,
            &[raw_entry(b"../\x1b[31mred", tar::EntryType::Regular, b"")],
        );
        let error = has_path(&store, &[coloured], BUNDLE)
            .unwrap_err()
            .to_string();
        assert!(error.contains(r"\u{1b}[31mred"), "{error}");
        assert!(!error.contains('\x1b'), "{error}");
    }

    #[test]
    fn a_pax_path_that_climbs_refuses_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let record = pax_record("path", "../../etc/ssl/certs/ca-certificates.crt");
        assert_eq!(&record[..3], b"48 ");
        let pax = raw_layer(
            &store,
            &[
                raw_entry(b"PaxHeaders/innocent", tar::EntryType::XHeader, &record),
                file("innocent", b"pem"),
            ],
        );
        for error in [
            has_path(&store, std::slice::from_ref(&pax), BUNDLE).unwrap_err(),
            read_file(&store, &pax, BUNDLE, 16).unwrap_err(),
        ] {
            let error = error.to_string();
            assert!(
                error.contains("\"../../etc/ssl/certs/ca-certificates.crt\""),
                "{error}"
            );
            assert!(error.contains(&pax.digest.to_string()), "{error}");
        }
        // A PAX path inside the image is the entry's name.
        let record = pax_record("path", "etc/ssl/certs/ca-certificates.crt");
        let renamed = raw_layer(
            &store,
            &[
                raw_entry(b"PaxHeaders/innocent", tar::EntryType::XHeader, &record),
                file("innocent", b"pem"),
            ],
        );
        assert!(present(&store, &[&renamed]));
        assert_eq!(read_file(&store, &renamed, BUNDLE, 16).unwrap(), b"pem");
    }

    #[test]
    fn absolute_names_mean_names_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let absolute = raw_layer(
            &store,
            &[file("/etc/ssl/certs/ca-certificates.crt", b"pem")],
        );
        assert!(present(&store, &[&absolute]));
        assert_eq!(read_file(&store, &absolute, BUNDLE, 16).unwrap(), b"pem");
        let whiteout = raw_layer(
            &store,
            &[file("/etc/ssl/certs/.wh.ca-certificates.crt", b"")],
        );
        assert!(!present(&store, &[&absolute, &whiteout]));
        // Asked for without its root, the same path.
        let relative = vec![absolute.clone()];
        assert!(has_path(&store, &relative, "etc/ssl/certs/ca-certificates.crt").unwrap());
    }

    #[test]
    fn devices_and_fifos_are_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let plain = raw_layer(&store, &[file("etc/ssl/certs/ca-certificates.crt", b"pem")]);
        for kind in [
            tar::EntryType::Char,
            tar::EntryType::Block,
            tar::EntryType::Fifo,
        ] {
            let node = raw_layer(
                &store,
                &[raw_entry(b"etc/ssl/certs/ca-certificates.crt", kind, b"")],
            );
            assert!(!present(&store, &[&node]), "{kind:?}");
            // Over a file below, it replaces it.
            assert!(!present(&store, &[&plain, &node]), "{kind:?}");
            let error = read_file(&store, &node, BUNDLE, 16)
                .unwrap_err()
                .to_string();
            assert!(error.contains("not a regular file"), "{error}");
        }
        // Links count as present (they are not followed).
        for kind in [tar::EntryType::Symlink, tar::EntryType::Link] {
            let link = raw_layer(
                &store,
                &[raw_entry(b"etc/ssl/certs/ca-certificates.crt", kind, b"")],
            );
            assert!(present(&store, &[&link]), "{kind:?}");
        }
    }

    #[test]
    fn a_sparse_entry_claiming_gigabytes_is_read_without_allocating_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        // A GNU sparse entry: 8 GiB of real size (the most 11 octal digits
        // say), one 512-byte block stored.
        let mut header = tar::Header::new_gnu();
        let name = b"etc/ssl/certs/ca-certificates.crt";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_size(512);
        header.set_mode(0o644);
        {
            let gnu = header.as_gnu_mut().unwrap();
            let octal = |field: &mut [u8], value: u64| {
                let text = format!("{value:0width$o}", width = field.len() - 1);
                field[..text.len()].copy_from_slice(text.as_bytes());
            };
            octal(&mut gnu.realsize, (1 << 33) - 1);
            octal(&mut gnu.sparse[0].offset, (1 << 33) - 513);
            octal(&mut gnu.sparse[0].numbytes, 512);
        }
        header.set_cksum();
        let mut sparse = header.as_bytes().to_vec();
        sparse.extend_from_slice(&[b'x'; 512]);
        let layer = raw_layer(&store, &[sparse]);
        let started = std::time::Instant::now();
        // Present (a file), but far over any limit to read.
        assert!(present(&store, &[&layer]));
        let error = read_file(&store, &layer, BUNDLE, 16 << 20)
            .unwrap_err()
            .to_string();
        assert!(error.contains("stored sparse"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_directory_above_replaced_by_a_file_hides_what_was_below() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let plain = raw_layer(&store, &[file("etc/ssl/certs/ca-certificates.crt", b"pem")]);
        for kind in [tar::EntryType::Regular, tar::EntryType::Fifo] {
            let replaced = raw_layer(&store, &[raw_entry(b"etc/ssl", kind, b"")]);
            assert!(!present(&store, &[&plain, &replaced]), "{kind:?}");
        }
        // A directory entry there (a layer that only touches it) keeps it,
        // and a symlink is not followed, so it says nothing either way.
        for kind in [tar::EntryType::Directory, tar::EntryType::Symlink] {
            let touched = raw_layer(&store, &[raw_entry(b"etc/ssl", kind, b"")]);
            assert!(present(&store, &[&plain, &touched]), "{kind:?}");
        }
    }

    #[test]
    fn a_whiteout_of_the_root_or_of_its_own_directory_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let plain = raw_layer(&store, &[file("etc/ssl/certs/ca-certificates.crt", b"pem")]);
        for name in [
            ".wh.",
            "/.wh.",
            "./.wh.",
            ".wh..",
            "etc/.wh.",
            "etc/ssl/certs/.wh.",
            "etc/ssl/.wh..",
        ] {
            let empty = raw_layer(&store, &[file(name, b"")]);
            assert!(present(&store, &[&plain, &empty]), "{name}");
        }
    }

    #[test]
    fn an_opaque_root_empties_only_the_layers_below() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let plain = raw_layer(&store, &[file("etc/ssl/certs/ca-certificates.crt", b"pem")]);
        let other = raw_layer(&store, &[file("usr/bin/tool", b"x")]);
        for name in [".wh..wh..opq", "/.wh..wh..opq", "./.wh..wh..opq"] {
            let opaque = raw_layer(&store, &[file(name, b"")]);
            assert!(!present(&store, &[&plain, &opaque]), "{name}");
            assert!(!present(&store, &[&opaque]), "{name}");
            // Its own layer's files stay, and layers above add again.
            let opaque_and_file = raw_layer(
                &store,
                &[
                    file(name, b""),
                    file("etc/ssl/certs/ca-certificates.crt", b"pem"),
                ],
            );
            assert!(present(&store, &[&plain, &opaque_and_file]), "{name}");
            assert!(present(&store, &[&plain, &opaque, &plain]), "{name}");
            assert!(!present(&store, &[&plain, &opaque, &other]), "{name}");
        }
    }

    #[test]
    fn the_last_entry_of_a_name_wins_within_a_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let name = "etc/ssl/certs/ca-certificates.crt";
        let directory = raw_entry(name.as_bytes(), tar::EntryType::Directory, b"");
        let symlink = raw_entry(name.as_bytes(), tar::EntryType::Symlink, b"");
        let whiteout = file("etc/ssl/certs/.wh.ca-certificates.crt", b"");
        let twice = raw_layer(&store, &[file(name, b"first"), file(name, b"second")]);
        assert_eq!(read_file(&store, &twice, BUNDLE, 16).unwrap(), b"second");
        let then_directory = raw_layer(&store, &[file(name, b"pem"), directory.clone()]);
        assert!(!present(&store, &[&then_directory]));
        let then_file = raw_layer(&store, &[directory, file(name, b"pem")]);
        assert!(present(&store, &[&then_file]));
        let then_link = raw_layer(&store, &[file(name, b"pem"), symlink.clone()]);
        let error = read_file(&store, &then_link, BUNDLE, 16)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let link_then_file = raw_layer(&store, &[symlink, file(name, b"pem")]);
        assert_eq!(
            read_file(&store, &link_then_file, BUNDLE, 16).unwrap(),
            b"pem"
        );
        // A file and a whiteout of it in one layer (in either order): the
        // whiteout applies only below (OCI), so the file is there; below
        // it, the older file is gone either way.
        let plain = raw_layer(&store, &[file(name, b"old")]);
        for entries in [
            [file(name, b"pem"), whiteout.clone()],
            [whiteout.clone(), file(name, b"pem")],
        ] {
            let both = raw_layer(&store, &entries);
            assert!(present(&store, &[&both]));
            assert!(present(&store, &[&plain, &both]));
            assert_eq!(read_file(&store, &both, BUNDLE, 16).unwrap(), b"pem");
        }
    }

    #[test]
    fn a_million_entry_layer_is_read_streaming() {
        use std::io::Write;
        use std::time::{Duration, Instant};
        const COUNT: u32 = 1_000_000;
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::at(dir.path().join("blobs"));
        let started = Instant::now();
        let mut writer = store.writer().unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(0);
        header.set_mode(0o644);
        for index in 1..=COUNT {
            header.set_path(format!("d/{index:07}")).unwrap();
            header.set_cksum();
            writer.write_all(header.as_bytes()).unwrap();
        }
        writer.write_all(&[0u8; 1024]).unwrap();
        let layer: BlobRef = writer.commit().unwrap().into();
        assert_eq!(layer.size, (u64::from(COUNT) + 2) * 512);
        let written = started.elapsed();
        let last = format!("/d/{COUNT:07}");
        let started = Instant::now();
        assert!(has_path(&store, std::slice::from_ref(&layer), &last).unwrap());
        let looked_up = started.elapsed();
        assert_eq!(read_file(&store, &layer, &last, 16).unwrap(), b"");
        let read = started.elapsed() - looked_up;
        eprintln!(
            "a {COUNT}-entry layer: written in {written:.2?}, has_path in {looked_up:.2?}, read_file in {read:.2?}"
        );
        assert!(looked_up + read < Duration::from_secs(120));
    }
}
