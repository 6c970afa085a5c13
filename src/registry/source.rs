//! What a push sends, read from an artifact: its OCI image layout
//! (`<artifact>/image/`, blobs hard-linked from the layer store) or, for
//! artifacts of the original CLI, the docker-archive `image.tar` (its
//! `manifest.json`, config and layer tars, sent as an OCI image with
//! uncompressed layers).
//!
//! Nothing is copied or buffered whole: a blob is a file, or a byte range
//! of the archive, streamed when it is uploaded.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::store::StoredArtifact;

/// The layout directory inside an artifact.
pub const LAYOUT_DIR: &str = "image";
/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where a blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobData {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

/// One blob to send: a layer or the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
    pub data: BlobData,
}

/// An image ready to push: its blobs (layers, then the config) and the
/// manifest that names them, byte for byte as it will be sent.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    /// Where it was read from, for messages.
    pub origin: String,
    /// Artifacts referring to the image (its SBOM, its provenance).
    pub referrers: Vec<Referrer>,
    /// A multi-platform artifact's image index (pushed under the tag, after
    /// every platform's manifest by digest), and the images of its other
    /// platforms; `None` and empty for a single-platform one.
    pub index: Option<Vec<u8>>,
    pub other_platforms: Vec<Image>,
    /// The platform the layout's index names for this image (`None`: a
    /// single-platform artifact, the engine's).
    pub platform: Option<crate::platform::Platform>,
}

/// An artifact whose `subject` is the image: its blobs (the empty config,
/// the document) and its manifest, byte for byte.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub artifact_type: String,
    pub blobs: Vec<Blob>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

impl Image {
    /// `sha256:<hex>` of the manifest: the pushed image's digest.
    pub fn manifest_digest(&self) -> String {
        format!("sha256:{:x}", Sha256::digest(&self.manifest))
    }

    /// Layers and config, in upload order.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }

    /// `sha256:<hex>` of what the tag names: the index of a multi-platform
    /// image, else the manifest.
    pub fn pushed_digest(&self) -> String {
        match &self.index {
            Some(index) => format!("sha256:{:x}", Sha256::digest(index)),
            None => self.manifest_digest(),
        }
    }

    /// Only `platforms` of it: one image pushed plain, or several under an
    /// index of just those; a platform it lacks is refused naming those
    /// it has. Each image's referrers (SBOM, provenance) go with it.
    pub fn only(self, platforms: &[crate::platform::Platform]) -> Result<Image, String> {
        let has: Vec<crate::platform::Platform> = match self.platform {
            Some(_) => self.images().filter_map(|image| image.platform).collect(),
            None => vec![crate::platform::Platform::host()],
        };
        if let Some(missing) = platforms.iter().find(|platform| !has.contains(platform)) {
            let names: Vec<&str> = has.iter().map(|platform| platform.name()).collect();
            return Err(format!(
                "The artifact has no image for {missing}: it was built for {}. Build it with `--platform` naming {missing} (or add it to `[rust] platforms`), then push.",
                names.join(", ")
            ));
        }
        if self.index.is_none() {
            return Ok(self);
        }
        let Image {
            index,
            other_platforms,
            ..
        } = self.clone();
        let mut kept: Vec<Image> = std::iter::once(Image {
            index: None,
            other_platforms: Vec::new(),
            ..self
        })
        .chain(other_platforms)
        .filter(|image| {
            image
                .platform
                .is_some_and(|platform| platforms.contains(&platform))
        })
        .collect();
        // Each image keeps its own SBOM and provenance (their subject).
        if kept.len() == 1 {
            return Ok(kept.remove(0));
        }
        let digests: Vec<String> = kept.iter().map(Image::manifest_digest).collect();
        let mut index: serde_json::Value = serde_json::from_slice(&index.unwrap_or_default())
            .map_err(|error| format!("its image index is not readable ({error})"))?;
        if let Some(entries) = index["manifests"].as_array_mut() {
            entries.retain(|entry| {
                entry["digest"]
                    .as_str()
                    .is_some_and(|digest| digests.iter().any(|kept| kept == digest))
            });
        }
        let mut primary = kept.remove(0);
        primary.other_platforms = kept;
        primary.index = Some(
            serde_json::to_vec(&index)
                .map_err(|error| format!("cannot write the index ({error})"))?,
        );
        Ok(primary)
    }

    /// Every image to push: this one, then the other platforms'.
    pub fn images(&self) -> impl Iterator<Item = &Image> {
        std::iter::once(self).chain(self.other_platforms.iter())
    }
}

/// Reads what to push from the artifact: its image layout when it has one,
/// else its docker-archive.
pub fn read(artifact: &StoredArtifact) -> Result<Image, String> {
    let layout = artifact.dir.join(LAYOUT_DIR);
    if layout.join("oci-layout").is_file() {
        return read_layout(&layout).map_err(|reason| {
            format!(
                "Artifact {} cannot be pushed: {reason}. Build the crate again (`arca build rust {}`) and push the new artifact.",
                artifact.metadata.artifact_id, artifact.metadata.source_path
            )
        });
    }
    let archive = artifact.archive_path();
    if archive.is_file() {
        return read_docker_archive(&archive).map_err(|reason| {
            format!(
                "Artifact {} cannot be pushed: {reason}. Build the crate again (`arca build rust {}`) and push the new artifact.",
                artifact.metadata.artifact_id, artifact.metadata.source_path
            )
        });
    }
    Err(format!(
        "Artifact {} has neither an image layout ({}) nor an image archive ({}): its image data was pruned. Build the crate again (`arca build rust {}`) and push the new artifact.",
        artifact.metadata.artifact_id,
        layout.display(),
        archive.display(),
        artifact.metadata.source_path
    ))
}

/// Reads a standard OCI image layout: `index.json`'s manifest (the one
/// annotated `org.opencontainers.image.ref.name`, else the only one), its
/// config and layers, each checked to be present with its recorded size.
pub fn read_layout(dir: &Path) -> Result<Image, String> {
    let index_path = dir.join("index.json");
    let index = ImageIndex::from_file(&index_path).map_err(|error| {
        format!(
            "{} is not a readable image index ({error})",
            index_path.display()
        )
    })?;
    let manifests = index.manifests();
    let descriptor = match manifests.as_slice() {
        [] => return Err(format!("{} lists no image", index_path.display())),
        [only] => only,
        several => several
            .iter()
            .find(|d| {
                d.annotations()
                    .as_ref()
                    .is_some_and(|a| a.contains_key("org.opencontainers.image.ref.name"))
            })
            .unwrap_or(&several[0]),
    };
    let (mut image, index) = if *descriptor.media_type() == MediaType::ImageIndex {
        let (index_bytes, _) = read_checked_manifest(dir, descriptor)?;
        let platforms = ImageIndex::from_reader(index_bytes.as_slice())
            .map_err(|error| format!("its image index is not readable ({error})"))?;
        // The first listed is the engine's image (the build writes it first).
        let mut images = Vec::new();
        for entry in platforms.manifests() {
            let platform = entry.platform().as_ref().and_then(|platform| {
                crate::platform::Platform::from_oci(
                    &platform.os().to_string(),
                    &platform.architecture().to_string(),
                    platform.variant().as_deref(),
                )
            });
            let mut image = read_layout_image(dir, entry)?;
            image.platform = platform;
            images.push(image);
        }
        if images.is_empty() {
            return Err("its image index lists no image".to_owned());
        }
        let mut primary = images.remove(0);
        primary.other_platforms = images;
        (primary, Some(index_bytes))
    } else {
        (read_layout_image(dir, descriptor)?, None)
    };
    // Each artifact (SBOM, provenance) goes with the platform image it
    // refers to.
    for entry in manifests
        .iter()
        .filter(|entry| entry.artifact_type().is_some())
    {
        let (subject, referrer) = layout_referrer(dir, entry)?;
        let owner = if image.manifest_digest() == subject {
            Some(&mut image)
        } else {
            image
                .other_platforms
                .iter_mut()
                .find(|other| other.manifest_digest() == subject)
        };
        match owner {
            Some(owner) => owner.referrers.push(referrer),
            None => {
                return Err(format!(
                    "the artifact manifest {} refers to {subject}, which is none of its images",
                    referrer.manifest_digest
                ));
            }
        }
    }
    image.index = index;
    Ok(image)
}

/// A layout blob that is a manifest or index, read whole and checked
/// against its digest.
fn read_checked_manifest(dir: &Path, descriptor: &Descriptor) -> Result<(Vec<u8>, String), String> {
    let manifest_blob = layout_blob(dir, descriptor)?;
    let manifest = std::fs::read(&manifest_blob.data.path).map_err(|error| {
        format!(
            "cannot read the manifest {}: {error}",
            manifest_blob.data.path.display()
        )
    })?;
    let actual = format!("sha256:{:x}", Sha256::digest(&manifest));
    if actual != manifest_blob.digest {
        return Err(format!(
            "the manifest {} does not match its digest {} (the store is damaged)",
            manifest_blob.data.path.display(),
            manifest_blob.digest
        ));
    }
    Ok((manifest, actual))
}

/// One image manifest of a layout with its config and layers, each
/// checked to be present with its recorded size.
fn read_layout_image(dir: &Path, descriptor: &Descriptor) -> Result<Image, String> {
    let manifest_blob = layout_blob(dir, descriptor)?;
    let (manifest, _) = read_checked_manifest(dir, descriptor)?;
    let parsed = ImageManifest::from_reader(manifest.as_slice()).map_err(|error| {
        format!(
            "{} is not an image manifest ({error})",
            manifest_blob.data.path.display()
        )
    })?;
    let layers = parsed
        .layers()
        .iter()
        .map(|layer| layout_blob(dir, layer))
        .collect::<Result<Vec<_>, _>>()?;
    let config = layout_blob(dir, parsed.config())?;
    let media_type = parsed
        .media_type()
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| descriptor.media_type().to_string());
    Ok(Image {
        layers,
        config,
        manifest,
        manifest_media_type: media_type,
        origin: dir.display().to_string(),
        referrers: Vec::new(),
        index: None,
        other_platforms: Vec::new(),
        platform: None,
    })
}

/// A layout's artifact manifest, with the digest of the image it refers to.
fn layout_referrer(dir: &Path, entry: &Descriptor) -> Result<(String, Referrer), String> {
    let manifest_blob = layout_blob(dir, entry)?;
    let manifest = std::fs::read(&manifest_blob.data.path).map_err(|error| {
        format!(
            "cannot read the artifact manifest {}: {error}",
            manifest_blob.data.path.display()
        )
    })?;
    if format!("sha256:{:x}", Sha256::digest(&manifest)) != manifest_blob.digest {
        return Err(format!(
            "the artifact manifest {} does not match its digest (the store is damaged)",
            manifest_blob.data.path.display()
        ));
    }
    let parsed = ImageManifest::from_reader(manifest.as_slice()).map_err(|error| {
        format!(
            "{} is not an artifact manifest ({error})",
            manifest_blob.data.path.display()
        )
    })?;
    let Some(subject) = parsed
        .subject()
        .as_ref()
        .map(|referred| referred.digest().to_string())
    else {
        return Err(format!(
            "the artifact manifest {} refers to no image",
            manifest_blob.data.path.display()
        ));
    };
    let mut blobs = vec![layout_blob(dir, parsed.config())?];
    for layer in parsed.layers() {
        blobs.push(layout_blob(dir, layer)?);
    }
    Ok((
        subject,
        Referrer {
            artifact_type: entry
                .artifact_type()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            blobs,
            manifest,
            manifest_digest: manifest_blob.digest,
        },
    ))
}

fn layout_blob(dir: &Path, descriptor: &Descriptor) -> Result<Blob, String> {
    let digest = descriptor.digest().to_string();
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!("blob {digest} is not a sha256 digest"));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("blob digest {digest} is malformed"));
    }
    let path = dir.join("blobs").join("sha256").join(hex);
    let size = match std::fs::metadata(&path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "its blob {digest} is missing from {} (pruned from the layer store)",
                dir.display()
            ));
        }
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    if size != descriptor.size() {
        return Err(format!(
            "blob {digest} in {} has {size} bytes where the manifest says {} (the store is damaged)",
            dir.display(),
            descriptor.size()
        ));
    }
    Ok(Blob {
        digest,
        size,
        data: BlobData {
            path,
            offset: 0,
            len: size,
        },
    })
}

#[derive(Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Reads a docker-archive (`docker save` output): the first image of its
/// `manifest.json`. Layer digests are the config's `diff_ids` for
/// uncompressed layers (the registry verifies them as the bytes arrive);
/// compressed layers are hashed first.
pub fn read_docker_archive(path: &Path) -> Result<Image, String> {
    let file =
        File::open(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let mut archive = tar::Archive::new(file);
    let mut entries_by_name = std::collections::HashMap::new();
    let entries = archive
        .entries_with_seek()
        .map_err(|error| format!("{} is not a tar archive ({error})", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|error| format!("{} is damaged ({error})", path.display()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|error| format!("{} has a bad entry name ({error})", path.display()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        entries_by_name.insert(
            name,
            BlobData {
                path: path.to_path_buf(),
                offset: entry.raw_file_position(),
                len: entry.size(),
            },
        );
    }
    let entry_of = |name: &str| {
        entries_by_name
            .get(name.trim_start_matches("./"))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "{} lacks `{name}`, which its manifest.json names",
                    path.display()
                )
            })
    };
    let manifest_json = read_range(&entry_of("manifest.json")?)?;
    let images: Vec<ArchiveEntry> = serde_json::from_slice(&manifest_json).map_err(|error| {
        format!(
            "{}'s manifest.json is not a docker-archive manifest ({error})",
            path.display()
        )
    })?;
    let image = images
        .first()
        .ok_or_else(|| format!("{}'s manifest.json lists no image", path.display()))?;
    let config_data = entry_of(&image.config)?;
    let config_bytes = read_range(&config_data)?;
    let config_digest = format!("sha256:{:x}", Sha256::digest(&config_bytes));
    let diff_ids: Vec<String> = serde_json::from_slice::<serde_json::Value>(&config_bytes)
        .ok()
        .and_then(|config| {
            config["rootfs"]["diff_ids"].as_array().map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .ok_or_else(|| format!("{}'s image config has no rootfs.diff_ids", path.display()))?;
    if diff_ids.len() != image.layers.len() {
        return Err(format!(
            "{} lists {} layers but its config {} diff_ids",
            path.display(),
            image.layers.len(),
            diff_ids.len()
        ));
    }
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for (name, diff_id) in image.layers.iter().zip(&diff_ids) {
        let data = entry_of(name)?;
        let compressed = is_gzip(&data)?;
        let digest = if compressed {
            hash_range(&data)?
        } else {
            diff_id.clone()
        };
        let media_type = if compressed {
            OCI_LAYER_GZIP
        } else {
            OCI_LAYER_TAR
        };
        descriptors.push(descriptor(media_type, &digest, data.len)?);
        layers.push(Blob {
            digest,
            size: data.len,
            data,
        });
    }
    let config_descriptor = descriptor(OCI_CONFIG, &config_digest, config_data.len)?;
    let manifest = oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_descriptor)
        .layers(descriptors)
        .build()
        .map_err(|error| format!("cannot describe the image: {error}"))?;
    let manifest = serde_json::to_vec(&manifest).map_err(|error| error.to_string())?;
    Ok(Image {
        layers,
        config: Blob {
            digest: config_digest,
            size: config_data.len,
            data: config_data,
        },
        manifest,
        manifest_media_type: OCI_MANIFEST.to_owned(),
        origin: path.display().to_string(),
        referrers: Vec::new(),
        index: None,
        other_platforms: Vec::new(),
        platform: None,
    })
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Result<Descriptor, String> {
    let digest: oci_spec::image::Digest = digest
        .parse()
        .map_err(|error| format!("`{digest}` is not a digest ({error})"))?;
    Ok(Descriptor::new(MediaType::from(media_type), size, digest))
}

fn open_at(data: &BlobData) -> Result<std::io::Take<File>, String> {
    let mut file = File::open(&data.path)
        .map_err(|error| format!("cannot open {}: {error}", data.path.display()))?;
    file.seek(SeekFrom::Start(data.offset))
        .map_err(|error| format!("cannot read {}: {error}", data.path.display()))?;
    Ok(file.take(data.len))
}

fn read_range(data: &BlobData) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    open_at(data)?
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read {}: {error}", data.path.display()))?;
    Ok(bytes)
}

fn is_gzip(data: &BlobData) -> Result<bool, String> {
    let mut magic = [0u8; 2];
    let mut reader = open_at(data)?;
    let mut read = 0;
    while read < 2 {
        match reader.read(&mut magic[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(error) => return Err(format!("cannot read {}: {error}", data.path.display())),
        }
    }
    Ok(read == 2 && magic == [0x1f, 0x8b])
}

fn hash_range(data: &BlobData) -> Result<String, String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut open_at(data)?, &mut hasher)
        .map_err(|error| format!("cannot read {}: {error}", data.path.display()))?;
    Ok(format!("sha256:{:x}", hasher.finalize()))
}
