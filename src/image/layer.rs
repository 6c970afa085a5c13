//! The reproducible layer writer: an uncompressed tar of a few files and
//! their parent directories, written straight into the blob store.
//!
//! The same files give the same bytes on any machine: entries sorted by
//! path, owner 0:0 with no user or group names, fixed modes, one fixed
//! mtime ([`layer_mtime`]: `SOURCE_DATE_EPOCH` when set, else 0).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::blobs::{BlobStore, Written};

/// Where a file's bytes come from.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

/// One file of a layer, at an absolute path in the image.
#[derive(Debug, Clone, Copy)]
pub struct FileEntry<'a> {
    pub path: &'a str,
    pub content: Content<'a>,
    pub mode: u32,
}

/// The mtime of every entry: `SOURCE_DATE_EPOCH` (whole seconds since
/// 1970) when set and not empty, else 0. A malformed value is an error.
pub fn layer_mtime() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if value.trim().is_empty() => Ok(0),
        Ok(value) => parse_epoch(&value),
        Err(std::env::VarError::NotPresent) => Ok(0),
        Err(std::env::VarError::NotUnicode(_)) => {
            bail!(
                "SOURCE_DATE_EPOCH is not valid UTF-8. Set it to whole seconds since 1970 (e.g. `1700000000`) or unset it."
            )
        }
    }
}

fn parse_epoch(value: &str) -> Result<u64> {
    value.trim().parse::<u64>().map_err(|_| {
        anyhow::anyhow!(
            "SOURCE_DATE_EPOCH `{}` is not a whole number of seconds since 1970. Set it to e.g. `1700000000` or unset it.",
            value.escape_debug()
        )
    })
}

enum Node<'a> {
    Dir,
    File(Content<'a>, u32),
}

/// Writes a layer holding `files` (and their parent directories, mode
/// 0755) into the store.
pub fn write_layer(blobs: &BlobStore, files: &[FileEntry<'_>], mtime: u64) -> Result<Written> {
    let mut nodes: BTreeMap<String, Node<'_>> = BTreeMap::new();
    for file in files {
        let relative = file.path.trim_start_matches('/');
        if relative.is_empty()
            || relative
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            bail!(
                "`{}` is not a clean absolute path for a layer entry",
                file.path
            );
        }
        let mut prefix = String::new();
        let parts: Vec<&str> = relative.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            prefix.push_str(part);
            prefix.push('/');
            nodes.entry(prefix.clone()).or_insert(Node::Dir);
        }
        nodes.insert(relative.to_owned(), Node::File(file.content, file.mode));
    }
    let mut writer = blobs.writer()?;
    {
        let mut builder = tar::Builder::new(&mut writer);
        for (path, node) in &nodes {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(mtime);
            match node {
                Node::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, path, std::io::empty())
                        .with_context(|| format!("Failed to add {path} to a layer"))?;
                }
                Node::File(content, mode) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    match content {
                        Content::Bytes(bytes) => {
                            header.set_size(bytes.len() as u64);
                            builder
                                .append_data(&mut header, path, *bytes)
                                .with_context(|| format!("Failed to add {path} to a layer"))?;
                        }
                        Content::File(source) => {
                            let file = File::open(source)
                                .with_context(|| format!("Failed to read {}", source.display()))?;
                            let size = file
                                .metadata()
                                .with_context(|| format!("Failed to read {}", source.display()))?
                                .len();
                            header.set_size(size);
                            builder
                                .append_data(&mut header, path, file)
                                .with_context(|| format!("Failed to add {path} to a layer"))?;
                        }
                    }
                }
            }
        }
        builder.finish().context("Failed to finish a layer")?;
    }
    writer.flush().map_err(|error| writer.explain(error))?;
    writer.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_give_the_same_layer_and_entries_are_sorted_and_owned_by_root() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path().join("blobs"));
        let binary = root.path().join("hello");
        std::fs::write(&binary, b"\x7fELF binary").unwrap();
        let files = [FileEntry {
            path: "/usr/local/bin/hello",
            content: Content::File(&binary),
            mode: 0o755,
        }];
        let first = write_layer(&blobs, &files, 0).unwrap();
        // Another mtime on the host file changes nothing.
        filetime::set_file_mtime(&binary, filetime::FileTime::now()).unwrap();
        let second = write_layer(&blobs, &files, 0).unwrap();
        assert_eq!(first.digest, second.digest);
        assert_ne!(
            write_layer(&blobs, &files, 1_700_000_000).unwrap().digest,
            first.digest
        );

        let bytes = blobs.read(&first.digest).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().display().to_string(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mtime().unwrap(),
                    header.username().unwrap().map(str::to_owned),
                )
            })
            .collect();
        let expected = |path: &str, mode| (path.to_owned(), mode, 0, 0, 0, Some(String::new()));
        assert_eq!(
            entries,
            [
                expected("usr/", 0o755),
                expected("usr/local/", 0o755),
                expected("usr/local/bin/", 0o755),
                expected("usr/local/bin/hello", 0o755),
            ]
        );
    }

    #[test]
    fn source_date_epoch_must_be_whole_seconds() {
        assert_eq!(parse_epoch("1700000000").unwrap(), 1_700_000_000);
        let error = parse_epoch("yesterday").unwrap_err().to_string();
        assert!(error.contains("SOURCE_DATE_EPOCH `yesterday`"), "{error}");
        assert!(parse_epoch("-5").is_err());
    }

    #[test]
    fn unclean_paths_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        for path in ["/", "/a/../b", "/a//b"] {
            let files = [FileEntry {
                path,
                content: Content::Bytes(b""),
                mode: 0o644,
            }];
            assert!(write_layer(&blobs, &files, 0).is_err(), "{path}");
        }
    }
}
