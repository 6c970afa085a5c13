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

/// Writes the full archive of the artifact in `artifact_dir` to `dest`,
/// tagged `repo_tag`. An artifact without a layout (made by the original
/// CLI) is exported by copying its `image.tar`. Returns the bytes written.
pub fn export_artifact(
    blobs: &BlobStore,
    artifact_dir: &Path,
    repo_tag: &str,
    dest: &Path,
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
    let (image, _) = layout::read(&layout_dir)?;
    for blob in image.blobs() {
        ensure_blob(blobs, &layout_dir, artifact_dir, blob)?;
    }
    let config = blobs.read(&image.config.digest)?;
    write_image(blobs, &image, &config, repo_tag, dest)
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
