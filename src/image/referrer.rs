//! OCI artifacts that refer to an image (the OCI 1.1 `subject` field): an
//! SBOM or a provenance statement stored as an image manifest with an
//! `artifactType`, the empty config (`application/vnd.oci.empty.v1+json`,
//! `{}`) and the document as its one layer. An artifact's layout lists
//! them in `index.json` after its image, as the image layout spec allows,
//! so they live (and are collected) with it and push can send them.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};

use super::BlobRef;
use super::descriptor::{blob_ref, descriptor};
use crate::blobs::{BlobStore, Written};

/// The empty config's media type and bytes.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The annotation with the artifact's creation time.
pub const CREATED: &str = "org.opencontainers.image.created";

/// One stored artifact referring to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub artifact_type: String,
    pub manifest: BlobRef,
    /// The document (the one layer) and its media type.
    pub content: BlobRef,
    pub content_media_type: String,
    /// The empty config.
    pub config: BlobRef,
    /// The image manifest it refers to (its `subject`).
    pub subject: crate::blobs::Digest,
}

impl Referrer {
    /// Every blob of the artifact (manifest last).
    pub fn blobs(&self) -> [&BlobRef; 3] {
        [&self.config, &self.content, &self.manifest]
    }
}

/// Stores `content` and its artifact manifest referring to `subject` (an
/// image manifest); `written` learns every blob put, for taking back.
pub fn store(
    blobs: &BlobStore,
    subject: &BlobRef,
    artifact_type: &str,
    content: &[u8],
    created: &str,
    written: &mut Vec<Written>,
) -> Result<Referrer> {
    let config_blob = blobs.put_bytes(EMPTY_CONFIG)?;
    let config = BlobRef::from(&config_blob);
    written.push(config_blob);
    let content_blob = blobs.put_bytes(content)?;
    let content_ref = BlobRef::from(&content_blob);
    written.push(content_blob);
    let bytes = manifest_bytes(subject, artifact_type, &config, &content_ref, created)?;
    let manifest_blob = blobs.put_bytes(&bytes)?;
    let manifest = BlobRef::from(&manifest_blob);
    written.push(manifest_blob);
    Ok(Referrer {
        artifact_type: artifact_type.to_owned(),
        manifest,
        content: content_ref,
        content_media_type: artifact_type.to_owned(),
        config,
        subject: subject.digest.clone(),
    })
}

fn manifest_bytes(
    subject: &BlobRef,
    artifact_type: &str,
    config: &BlobRef,
    content: &BlobRef,
    created: &str,
) -> Result<Vec<u8>> {
    let mut config = descriptor(MediaType::Other(EMPTY_MEDIA_TYPE.into()), config)?;
    config.set_data(Some("e30=".into()));
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(artifact_type.into()))
        .config(config)
        .layers(vec![descriptor(
            MediaType::Other(artifact_type.into()),
            content,
        )?])
        .subject(descriptor(MediaType::ImageManifest, subject)?)
        .annotations(HashMap::from([(CREATED.to_owned(), created.to_owned())]))
        .build()
        .context("Failed to build the artifact manifest")?;
    // Through a `Value`: its object keys are sorted, so the bytes are
    // the same for the same content.
    let value = serde_json::to_value(&manifest).context("Failed to encode the manifest")?;
    serde_json::to_vec(&value).context("Failed to encode the manifest")
}

/// The layout index entry of a referrer.
pub fn index_entry(referrer: &Referrer) -> Result<Descriptor> {
    let mut entry = descriptor(MediaType::ImageManifest, &referrer.manifest)?;
    entry.set_artifact_type(Some(MediaType::Other(referrer.artifact_type.clone())));
    Ok(entry)
}

/// Reads a referrer back from its manifest's bytes (checked against the
/// descriptor's digest by the caller).
pub fn parse(manifest: BlobRef, bytes: &[u8]) -> Result<Referrer> {
    let parsed = ImageManifest::from_reader(bytes).context("not an artifact manifest")?;
    let artifact_type = parsed
        .artifact_type()
        .as_ref()
        .map(ToString::to_string)
        .ok_or_else(|| anyhow!("the manifest has no artifactType"))?;
    let layer = parsed
        .layers()
        .first()
        .ok_or_else(|| anyhow!("the artifact manifest has no layer"))?;
    let subject = parsed
        .subject()
        .as_ref()
        .ok_or_else(|| anyhow!("the artifact manifest names no subject"))?;
    Ok(Referrer {
        artifact_type,
        manifest,
        content: blob_ref(layer)?,
        content_media_type: layer.media_type().to_string(),
        config: blob_ref(parsed.config())?,
        subject: blob_ref(subject)?.digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_manifest_refers_to_its_subject_and_reads_back() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path().join("blobs"));
        let subject: BlobRef = blobs.put_bytes(b"image manifest").unwrap().into();
        let mut written = Vec::new();
        let referrer = store(
            &blobs,
            &subject,
            "application/spdx+json",
            b"{\"spdxVersion\":\"SPDX-2.3\"}",
            "1970-01-01T00:00:00Z",
            &mut written,
        )
        .unwrap();
        assert_eq!(written.len(), 3);
        let bytes = blobs.read(&referrer.manifest.digest).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(manifest["artifactType"], "application/spdx+json");
        assert_eq!(manifest["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            manifest["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            manifest["subject"]["digest"],
            subject.digest.to_string().as_str()
        );
        assert_eq!(parse(referrer.manifest.clone(), &bytes).unwrap(), referrer);
    }
}
