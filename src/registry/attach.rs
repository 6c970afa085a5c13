//! Attaching an image's SBOM and provenance at push, after the image: each
//! artifact's blobs (only those the registry lacks) and its manifest by
//! digest, whose `subject` names the image. A registry with the referrers
//! API lists them by itself; for one without (`GET /v2/<repo>/referrers/`
//! answers 404, as Debian's distribution registry does), the distribution
//! spec's fallback: an image index under the tag `sha256-<hex>` of the
//! image digest, listing the referrers already there plus these.
//!
//! A registry that refuses them costs the push nothing but one warning
//! ([`super::push`] reports it); the image is already in place.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::client::RegistryClient;
use super::error::RegistryError;
use super::source::{Image, OCI_MANIFEST};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What attaching did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The attached artifacts' types, in the layout's order.
    pub artifact_types: Vec<String>,
    /// Blob bytes sent (0 when the registry had them all).
    pub bytes_sent: u64,
    /// The fallback tag written, when the registry has no referrers API
    /// and did not list them yet.
    pub fallback_tag: Option<String>,
}

/// The `sha256-<hex>` tag of the referrers fallback for `digest`.
pub fn fallback_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

/// Sends the referrers of every platform's image (each refers to its
/// own manifest); the fallback tag reported is the first written (the
/// engine's image's, when it needed one).
pub async fn attach_all(client: &RegistryClient, image: &Image) -> Result<Attached, RegistryError> {
    let mut all = Attached {
        artifact_types: Vec::new(),
        bytes_sent: 0,
        fallback_tag: None,
    };
    for platform_image in image.images() {
        let attached = attach(client, platform_image).await?;
        all.bytes_sent += attached.bytes_sent;
        for artifact_type in attached.artifact_types {
            if !all.artifact_types.contains(&artifact_type) {
                all.artifact_types.push(artifact_type);
            }
        }
        all.fallback_tag = all.fallback_tag.or(attached.fallback_tag);
    }
    Ok(all)
}

/// Sends the image's referrers; see the module docs.
pub async fn attach(client: &RegistryClient, image: &Image) -> Result<Attached, RegistryError> {
    let mut attached = Attached {
        artifact_types: Vec::new(),
        bytes_sent: 0,
        fallback_tag: None,
    };
    if image.referrers.is_empty() {
        return Ok(attached);
    }
    for referrer in &image.referrers {
        for blob in &referrer.blobs {
            client.refresh_login().await?;
            if client.blob_exists(&blob.digest).await? {
                continue;
            }
            let sent = Arc::new(AtomicU64::new(0));
            let counter = sent.clone();
            client
                .upload(
                    blob,
                    Arc::new(move |bytes| counter.store(bytes, Ordering::Relaxed)),
                )
                .await?;
            attached.bytes_sent += sent.load(Ordering::Relaxed);
        }
        client
            .put_manifest_as(&referrer.manifest_digest, &referrer.manifest, OCI_MANIFEST)
            .await?;
        attached.artifact_types.push(referrer.artifact_type.clone());
    }
    let subject = image.manifest_digest();
    let listed = client.referrers(&subject).await?;
    let missing: Vec<Value> = image
        .referrers
        .iter()
        .filter(|referrer| {
            !listed
                .iter()
                .any(|entry| entry["digest"] == referrer.manifest_digest.as_str())
        })
        .map(|referrer| {
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": referrer.manifest_digest,
                "size": referrer.manifest.len(),
                "artifactType": referrer.artifact_type,
            })
        })
        .collect();
    if missing.is_empty() {
        return Ok(attached);
    }
    let index = fallback_index(listed, missing);
    let tag = fallback_tag(&subject);
    client.put_manifest_as(&tag, &index, OCI_INDEX).await?;
    attached.fallback_tag = Some(tag);
    Ok(attached)
}

/// The fallback tag's index: the entries listed before, then the new ones.
fn fallback_index(listed: Vec<Value>, missing: Vec<Value>) -> Vec<u8> {
    let manifests: Vec<Value> = listed.into_iter().chain(missing).collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    serde_json::to_vec(&index).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_tag_and_index_follow_the_distribution_spec() {
        assert_eq!(fallback_tag("sha256:ab12"), "sha256-ab12");
        let old = json!({"mediaType": OCI_MANIFEST, "digest": "sha256:01", "size": 3});
        let new = json!({"mediaType": OCI_MANIFEST, "digest": "sha256:02", "size": 4, "artifactType": "application/spdx+json"});
        let index: Value =
            serde_json::from_slice(&fallback_index(vec![old.clone()], vec![new.clone()])).unwrap();
        assert_eq!(index["mediaType"], OCI_INDEX);
        assert_eq!(index["manifests"], json!([old, new]));
    }
}
