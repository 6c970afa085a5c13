//! Standalone image archives of stored artifacts, made by copying blobs
//! (never by an engine export): a full docker-archive that `docker load`,
//! `podman load` and `skopeo docker-archive:` read.
//!
//! Every blob is checked first ([`BlobStore::check`]: a `stat`, or a hash
//! when the blob was changed since it was verified). A blob missing from
//! the store is taken from the artifact's own layout when that copy is
//! intact (and put back into the store); a corrupt one is removed and the
//! error says how to get it back. The archive is written to a temporary
//! file beside the destination and renamed into place.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

use super::{BlobRef, StoredImage, layout};
use crate::blobs::{BlobStore, Check};
use crate::platform::Platform;

/// Writes the full archive of the artifact in `artifact_dir` to `dest`,
/// tagged `repo_tag`. An artifact without a layout (made by the original
/// CLI) is exported by copying its `image.tar`. Returns the bytes written.
pub fn export_artifact(
    blobs: &BlobStore,
    artifact_dir: &Path,
    repo_tag: &str,
    dest: &Path,
) -> Result<u64> {
    export_platform(blobs, artifact_dir, repo_tag, dest, None)
}

/// [`export_artifact`] of one platform's image (`None`: the engine's, as
/// the layout reads back); a platform the artifact lacks is refused naming
/// those it has.
pub fn export_platform(
    blobs: &BlobStore,
    artifact_dir: &Path,
    repo_tag: &str,
    dest: &Path,
    platform: Option<Platform>,
) -> Result<u64> {
    let layout_dir = artifact_dir.join(layout::LAYOUT_DIR);
    if !layout_dir.join("index.json").is_file() {
        let legacy = artifact_dir.join(crate::store::ARCHIVE_FILE);
        if !legacy.is_file() {
            bail!(
                "{} has neither an image layout nor an image.tar; rebuild the crate (`arca build rust PATH --force`).",
                artifact_dir.display()
            );
        }
        if same_file(&legacy, dest) {
            return Ok(fs::metadata(&legacy)?.len());
        }
        return write_atomically(dest, |file| {
            let mut source = fs::File::open(&legacy)
                .with_context(|| format!("Failed to read {}", legacy.display()))?;
            Ok(std::io::copy(&mut source, file)?)
        });
    }
    let image = match platform {
        None => layout::read(&layout_dir)?.0,
        Some(wanted) => {
            let images = layout::read_platforms(&layout_dir)?;
            let names: Vec<String> = images
                .iter()
                .map(|(platform, _)| {
                    platform.map_or("an unknown platform".to_owned(), |p| p.to_string())
                })
                .collect();
            images
                .into_iter()
                .find(|(platform, _)| *platform == Some(wanted))
                .map(|(_, image)| image)
                .ok_or_else(|| {
                    anyhow!(
                        "Artifact {} has no image for {wanted}: it was built for {}. Build it with `--platform {wanted}` (or add it to `[rust] platforms`).",
                        artifact_dir
                            .file_name()
                            .map_or_else(|| artifact_dir.display().to_string(), |name| name.to_string_lossy().into_owned()),
                        names.join(", ")
                    )
                })?
        }
    };
    for blob in image.blobs() {
        ensure_blob(blobs, &layout_dir, artifact_dir, blob)?;
    }
    let config = blobs.read(&image.config.digest)?;
    write_image(blobs, &image, &config, repo_tag, dest)
}

/// Writes the artifact's whole OCI layout (every platform's image, the
/// index, the SBOM and provenance) as an OCI archive (`oci-archive:` for
/// skopeo and podman), each blob checked first. Returns the bytes written.
pub fn export_oci_archive(blobs: &BlobStore, artifact_dir: &Path, dest: &Path) -> Result<u64> {
    let layout_dir = artifact_dir.join(layout::LAYOUT_DIR);
    if !layout_dir.join("index.json").is_file() {
        bail!(
            "{} has no OCI image layout (an artifact of the original CLI); rebuild the crate (`arca build rust PATH --force`).",
            artifact_dir.display()
        );
    }
    for (_, image) in layout::read_platforms(&layout_dir)? {
        for blob in image.blobs() {
            ensure_blob(blobs, &layout_dir, artifact_dir, blob)?;
        }
    }
    write_atomically(dest, |file| {
        let mut counted = CountingWriter {
            inner: file,
            written: 0,
        };
        {
            let mut archive = tar::Builder::new(&mut counted);
            archive.mode(tar::HeaderMode::Deterministic);
            archive.follow_symlinks(false);
            for name in ["oci-layout", "index.json"] {
                archive.append_path_with_name(layout_dir.join(name), name)?;
            }
            let blob_dir = layout_dir.join("blobs").join("sha256");
            let mut names: Vec<_> = fs::read_dir(&blob_dir)
                .with_context(|| format!("Cannot read {}", blob_dir.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
                .collect();
            names.sort();
            for name in names {
                let path = blob_dir.join(&name);
                if !fs::symlink_metadata(&path)?.is_file() {
                    continue;
                }
                archive.append_path_with_name(&path, Path::new("blobs/sha256").join(&name))?;
            }
            archive.finish()?;
        }
        Ok(counted.written)
    })
}

/// Counts the bytes written through it.
struct CountingWriter<'a> {
    inner: &'a mut fs::File,
    written: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.written += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_image(
    blobs: &BlobStore,
    image: &StoredImage,
    config: &[u8],
    repo_tag: &str,
    dest: &Path,
) -> Result<u64> {
    write_atomically(dest, |file| {
        let open = |blob: &BlobRef| blobs.open(&blob.digest);
        super::archive::write(file, image, config, Some(repo_tag), &|_, _| true, &open)
    })
}

/// Makes sure the store holds an intact copy of `blob`.
fn ensure_blob(
    blobs: &BlobStore,
    layout_dir: &Path,
    artifact_dir: &Path,
    blob: &BlobRef,
) -> Result<()> {
    match blobs.check(&blob.digest, Some(blob.size))? {
        Check::Good => return Ok(()),
        Check::Discarded => {
            tracing::warn!("blob {} was corrupt; discarded", blob.digest);
        }
        Check::Missing => {}
    }
    // The layout's own link may be a separate, intact copy.
    let own = layout::blob_path(layout_dir, &blob.digest);
    if own.is_file() {
        let restored = blobs.put(
            fs::File::open(&own).with_context(|| format!("Failed to read {}", own.display()))?,
        )?;
        if restored.digest == blob.digest {
            return Ok(());
        }
        blobs.discard_if_unlinked(&restored.digest);
    }
    Err(anyhow!(
        "The blob {} of artifact {} is missing or corrupt (it was removed from the store). Build the crate again with `arca build rust PATH --force` (the same binary gives the same layer; base layers are imported again), or remove the artifact with `arca prune`.",
        blob.digest,
        artifact_dir.display()
    ))
}

fn same_file(left: &Path, right: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(left), fs::metadata(right)) {
        (Ok(left), Ok(right)) => left.dev() == right.dev() && left.ino() == right.ino(),
        _ => false,
    }
}

/// Writes `dest` through a temporary file in its directory, renamed into
/// place; nothing half-written is left on failure. Not fsynced, like `cp`:
/// an archive is derived from the store and can be written again.
fn write_atomically(dest: &Path, write: impl FnOnce(&mut fs::File) -> Result<u64>) -> Result<u64> {
    let dir = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".arca-export-")
        .tempfile_in(dir)
        .with_context(|| format!("Cannot write in {} (is it writable?)", dir.display()))?;
    let bytes =
        write(temp.as_file_mut()).with_context(|| format!("Failed to write {}", dest.display()))?;
    temp.as_file_mut()
        .flush()
        .with_context(|| format!("Failed to write {} (is the disk full?)", dest.display()))?;
    let _ = fs::set_permissions(
        temp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    );
    temp.persist(dest)
        .map_err(|error| anyhow!(error.error))
        .with_context(|| format!("Failed to move the archive into {}", dest.display()))?;
    Ok(bytes)
}
