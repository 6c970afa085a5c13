//! The OCI image manifest and the per-artifact OCI image layout
//! (`containers/<id>/image/`): `oci-layout`, `index.json` with one manifest
//! descriptor annotated `org.opencontainers.image.ref.name`, and
//! `blobs/sha256/*` hard links into the shared store (copies when a hard
//! link fails, e.g. across file systems). Any OCI tool reads it
//! (`skopeo inspect oci:DIR`).
//!
//! A multi-platform artifact's first entry is an image index instead (one
//! manifest per platform, each with its `platform`), as `docker buildx`
//! and ko write it; [`read`] resolves it to the engine's platform.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::image::{
    Arch, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, Os, PlatformBuilder,
};

use super::descriptor::{blob_ref, descriptor};
use super::referrer::Referrer;
use super::{BlobRef, StoredImage};
use crate::blobs::{BlobStore, Digest};
use crate::platform::Platform;

/// The directory of an artifact's layout, beside its record.
pub const LAYOUT_DIR: &str = crate::store::LAYOUT_DIR;
/// The index annotation naming the image.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The manifest's bytes for this config and these layers.
pub fn manifest_bytes(config: &BlobRef, layers: &[BlobRef]) -> Result<Vec<u8>> {
    let layers = layers
        .iter()
        .map(|layer| descriptor(MediaType::ImageLayer, layer))
        .collect::<Result<Vec<_>>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, config)?)
        .layers(layers)
        .build()
        .context("Failed to build the image manifest")?;
    let value = serde_json::to_value(&manifest).context("Failed to encode the manifest")?;
    serde_json::to_vec(&value).context("Failed to encode the manifest")
}

/// The image index bytes naming each platform's manifest.
pub fn index_bytes(images: &[(Platform, StoredImage)]) -> Result<Vec<u8>> {
    let manifests = images
        .iter()
        .map(|(platform, image)| {
            let mut entry = descriptor(MediaType::ImageManifest, &image.manifest)?;
            entry.set_platform(Some(oci_platform(*platform)?));
            Ok(entry)
        })
        .collect::<Result<Vec<_>>>()?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .context("Failed to build the image index")?;
    let value = serde_json::to_value(&index).context("Failed to encode the image index")?;
    serde_json::to_vec(&value).context("Failed to encode the image index")
}

fn oci_platform(platform: Platform) -> Result<oci_spec::image::Platform> {
    let mut builder = PlatformBuilder::default()
        .os(Os::from(platform.os()))
        .architecture(Arch::from(platform.architecture()));
    if let Some(variant) = platform.variant() {
        builder = builder.variant(variant.to_owned());
    }
    builder.build().context("Failed to build a platform")
}

/// A multi-platform image: its index blob and each platform's image.
#[derive(Debug, Clone)]
pub struct PlatformIndex {
    pub index: BlobRef,
    pub images: Vec<(Platform, StoredImage)>,
}

/// Writes the layout of `image` and the artifacts referring to it into
/// `dir` (which must not exist yet), linking their blobs from the store.
pub fn write(
    dir: &Path,
    blobs: &BlobStore,
    image: &StoredImage,
    ref_name: &str,
    referrers: &[Referrer],
) -> Result<()> {
    let first = descriptor(MediaType::ImageManifest, &image.manifest)?;
    write_entries(dir, blobs, image.blobs(), first, ref_name, referrers)
}

/// [`write`] for a multi-platform image: the first entry is its index.
pub fn write_index(
    dir: &Path,
    blobs: &BlobStore,
    index: &PlatformIndex,
    ref_name: &str,
    referrers: &[Referrer],
) -> Result<()> {
    let first = descriptor(MediaType::ImageIndex, &index.index)?;
    let linked = std::iter::once(&index.index)
        .chain(index.images.iter().flat_map(|(_, image)| image.blobs()));
    write_entries(dir, blobs, linked, first, ref_name, referrers)
}

fn write_entries<'a>(
    dir: &Path,
    blobs: &BlobStore,
    linked: impl Iterator<Item = &'a BlobRef>,
    first: oci_spec::image::Descriptor,
    ref_name: &str,
    referrers: &'a [Referrer],
) -> Result<()> {
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir)
        .with_context(|| format!("Failed to create {}", blob_dir.display()))?;
    let referred = referrers.iter().flat_map(|referrer| referrer.blobs());
    for blob in linked.chain(referred) {
        let source = blobs.path(&blob.digest);
        let dest = blob_dir.join(blob.digest.hex());
        if dest.exists() {
            continue;
        }
        if fs::hard_link(&source, &dest).is_err() {
            fs::copy(&source, &dest).with_context(|| {
                format!(
                    "Failed to link or copy {} into {}",
                    source.display(),
                    dest.display()
                )
            })?;
        }
    }
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .context("Failed to build oci-layout")?;
    fs::write(dir.join("oci-layout"), layout.to_string()?)
        .with_context(|| format!("Failed to write {}", dir.join("oci-layout").display()))?;
    let mut manifest = first;
    manifest.set_annotations(Some(HashMap::from([(
        REF_NAME.to_owned(),
        ref_name.to_owned(),
    )])));
    let mut manifests = vec![manifest];
    for referrer in referrers {
        manifests.push(super::referrer::index_entry(referrer)?);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .context("Failed to build index.json")?;
    fs::write(dir.join("index.json"), index.to_string()?)
        .with_context(|| format!("Failed to write {}", dir.join("index.json").display()))?;
    Ok(())
}

/// After blobs were repaired in the store (imported again after one was
/// found corrupt), points every artifact layout under `artifacts` that
/// still links an old copy at the store's new one. Best effort.
pub fn relink(artifacts: &Path, blobs: &BlobStore, digests: &[&Digest]) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = fs::read_dir(artifacts) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path().join(LAYOUT_DIR);
        for digest in digests {
            let linked = blob_path(&dir, digest);
            let stored = blobs.path(digest);
            let (Ok(old), Ok(new)) = (fs::metadata(&linked), fs::metadata(&stored)) else {
                continue;
            };
            if old.ino() == new.ino() && old.dev() == new.dev() {
                continue;
            }
            let temp = linked.with_extension("relink");
            let _ = fs::remove_file(&temp);
            if fs::hard_link(&stored, &temp).is_ok() && fs::rename(&temp, &linked).is_err() {
                let _ = fs::remove_file(&temp);
            }
        }
    }
}

/// Where a layout keeps a blob.
pub fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

/// A layout's `index.json`.
fn read_index(dir: &Path) -> Result<ImageIndex> {
    let index_path = dir.join("index.json");
    crate::fsread::read(&index_path, crate::fsread::Kind::StoreRecord)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| Ok(ImageIndex::from_reader(bytes.as_slice())?))
        .with_context(|| format!("Cannot read {}", index_path.display()))
}

/// A small blob of a layout (a manifest), checked against its digest.
fn read_checked(dir: &Path, digest: &Digest) -> Result<(PathBuf, Vec<u8>)> {
    let path = blob_path(dir, digest);
    let bytes = crate::fsread::read(&path, crate::fsread::Kind::StoreRecord)
        .with_context(|| format!("Cannot read {}", path.display()))?;
    if Digest::of(&bytes) != *digest {
        bail!("{} does not match its digest", path.display());
    }
    Ok((path, bytes))
}

/// The artifacts a layout lists as referring to its image (an SBOM, a
/// provenance statement), each manifest checked against its digest.
pub fn read_referrers(dir: &Path) -> Result<Vec<Referrer>> {
    let index = read_index(dir)?;
    let mut referrers = Vec::new();
    for entry in index.manifests().iter().skip(1) {
        if entry.artifact_type().is_none() {
            continue;
        }
        let manifest = blob_ref(entry)?;
        let (path, bytes) = read_checked(dir, &manifest.digest)?;
        referrers.push(
            super::referrer::parse(manifest, &bytes)
                .with_context(|| format!("{} is not an artifact manifest", path.display()))?,
        );
    }
    Ok(referrers)
}

/// Reads a layout back: its one manifest, config and layers (of a
/// multi-platform image, the first listed: the build writes the image of
/// the engine's platform, the one it loaded, first).
pub fn read(dir: &Path) -> Result<(StoredImage, Option<String>)> {
    let index = read_index(dir)?;
    let Some(entry) = index.manifests().first() else {
        bail!("{} lists no image", dir.join("index.json").display());
    };
    let ref_name = entry
        .annotations()
        .as_ref()
        .and_then(|annotations| annotations.get(REF_NAME).cloned());
    if *entry.media_type() == MediaType::ImageIndex {
        let images = read_platforms(dir)?;
        let chosen = images
            .into_iter()
            .next()
            .map(|(_, image)| image)
            .with_context(|| format!("The image index of {} lists no image", dir.display()))?;
        return Ok((chosen, ref_name));
    }
    Ok((read_image(dir, entry)?, ref_name))
}

/// The platforms of a multi-platform layout's index, as `os/arch[/variant]`
/// (empty for a single-platform layout, or one that cannot be read).
/// Reads only `index.json` and the index.
pub fn platform_names(dir: &Path) -> Vec<String> {
    let Ok(index) = read_index(dir) else {
        return Vec::new();
    };
    let Some(entry) = index.manifests().first() else {
        return Vec::new();
    };
    if *entry.media_type() != MediaType::ImageIndex {
        return Vec::new();
    }
    let Ok(index_ref) = blob_ref(entry) else {
        return Vec::new();
    };
    let Ok((_, bytes)) = read_checked(dir, &index_ref.digest) else {
        return Vec::new();
    };
    let Ok(platforms) = ImageIndex::from_reader(bytes.as_slice()) else {
        return Vec::new();
    };
    platforms
        .manifests()
        .iter()
        .filter_map(|entry| entry.platform().as_ref())
        .map(|platform| {
            let mut name = format!("{}/{}", platform.os(), platform.architecture());
            if let Some(variant) = platform.variant() {
                name.push('/');
                name.push_str(variant);
            }
            name.escape_debug().to_string()
        })
        .collect()
}

/// Every platform's image of a layout: one for a single-platform layout
/// (its platform read from the config), each entry of a multi-platform
/// one's index. A platform Arca does not know is `None`.
pub fn read_platforms(dir: &Path) -> Result<Vec<(Option<Platform>, StoredImage)>> {
    let index = read_index(dir)?;
    let Some(entry) = index.manifests().first() else {
        bail!("{} lists no image", dir.join("index.json").display());
    };
    if *entry.media_type() != MediaType::ImageIndex {
        let image = read_image(dir, entry)?;
        let (_, config) = read_checked(dir, &image.config.digest)?;
        let platform = Platform::parse(&super::config::platform_name(&config)).ok();
        return Ok(vec![(platform, image)]);
    }
    let index_ref = blob_ref(entry)?;
    let (path, bytes) = read_checked(dir, &index_ref.digest)?;
    let platforms = ImageIndex::from_reader(bytes.as_slice())
        .with_context(|| format!("{} is not an image index", path.display()))?;
    platforms
        .manifests()
        .iter()
        .map(|entry| {
            let platform = entry.platform().as_ref().and_then(|platform| {
                Platform::from_oci(
                    &platform.os().to_string(),
                    &platform.architecture().to_string(),
                    platform.variant().as_deref(),
                )
            });
            Ok((platform, read_image(dir, entry)?))
        })
        .collect()
}

/// One image manifest of a layout, with its config and layers.
fn read_image(dir: &Path, entry: &oci_spec::image::Descriptor) -> Result<StoredImage> {
    let manifest_ref = blob_ref(entry)?;
    let (path, bytes) = read_checked(dir, &manifest_ref.digest)?;
    let manifest = ImageManifest::from_reader(bytes.as_slice())
        .with_context(|| format!("{} is not an image manifest", path.display()))?;
    Ok(StoredImage {
        manifest: manifest_ref,
        config: blob_ref(manifest.config())?,
        layers: manifest
            .layers()
            .iter()
            .map(blob_ref)
            .collect::<Result<Vec<_>>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_links_the_store_and_reads_back() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path().join("blobs"));
        let layer: BlobRef = blobs.put_bytes(b"layer").unwrap().into();
        let config: BlobRef = blobs.put_bytes(b"{}").unwrap().into();
        let manifest: BlobRef = blobs
            .put_bytes(&manifest_bytes(&config, std::slice::from_ref(&layer)).unwrap())
            .unwrap()
            .into();
        let image = StoredImage {
            manifest,
            config,
            layers: vec![layer.clone()],
        };
        let dir = root.path().join("art/image");
        write(&dir, &blobs, &image, "hello-ab12cd34", &[]).unwrap();
        let (read_back, ref_name) = read(&dir).unwrap();
        assert_eq!(read_back, image);
        assert_eq!(ref_name.as_deref(), Some("hello-ab12cd34"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(blob_path(&dir, &layer.digest)).unwrap().ino(),
            fs::metadata(blobs.path(&layer.digest)).unwrap().ino(),
            "hard link, not a copy"
        );
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&blobs.read(&image.manifest.digest).unwrap()).unwrap();
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar"
        );
    }
}
