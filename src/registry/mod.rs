//! Pushing artifacts to OCI registries: read the artifact's image (its OCI
//! layout, or the original CLI's docker-archive), ask the registry which
//! blobs it already has (`HEAD`), mount the rest from another repository of
//! the same registry where Arca pushed before, upload what is still missing
//! in chunks with per-blob progress, put the manifest under the tag, and
//! record `uploaded_ref` in the artifact's record.
//!
//! [`pull`] is the other direction: a base image the engine lacks,
//! fetched into the layer store and verified blob by blob.
//!
//! **A push that fails or is cancelled records nothing;** the record is
//! written only after the registry accepted the manifest. **Credentials go
//! only to the registry:** never into records, logs or messages. Reaches
//! the registry only through [`client`] (and its blob transfers in `transfer`).

pub mod attach;
mod bounded;
pub mod client;
pub mod credentials;
pub mod destination;
pub mod error;
pub mod fixture;
mod helper_process;
pub mod mirrors;
pub mod pull;
pub mod record;
pub mod source;
mod token;
mod transfer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use client::RegistryClient;
use credentials::{Credential, Login};
pub use destination::Destination;
use error::RegistryError;

use crate::store::{Store, StoredArtifact};

/// What to push where.
#[derive(Debug, Clone)]
pub struct PushRequest {
    pub artifact: StoredArtifact,
    pub destination: Destination,
    /// Plain HTTP allowed although the registry is not on loopback.
    pub insecure: bool,
    /// Repositories of the same registry to mount missing layers from.
    pub mount_from: Vec<String>,
    /// Also attach the image's SBOM and provenance (OCI referrers).
    pub attestations: bool,
    /// Push only these platforms of a multi-platform artifact (`None`: all).
    pub platforms: Option<Vec<crate::platform::Platform>>,
}

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobAction {
    /// The registry had it: nothing sent.
    Exists,
    /// Mounted from another repository: nothing sent.
    Mounted,
    /// Being uploaded (progress follows).
    Uploading,
    /// Uploaded.
    Uploaded,
}

/// Progress of a push, for the CLI's bars and the server's `$/progress`.
#[derive(Debug, Clone)]
pub enum PushEvent {
    /// Connected to the registry.
    Connected {
        registry: String,
        scheme: &'static str,
    },
    /// A blob (layer or config) changed state; `index` counts from 0 of
    /// `total`.
    Blob {
        index: usize,
        total: usize,
        digest: String,
        size: u64,
        action: BlobAction,
    },
    /// Bytes of the blob being uploaded handed to the connection so far.
    Sent {
        digest: String,
        sent: u64,
        size: u64,
    },
    /// The manifest is being put under the tag.
    Manifest { tag: String },
}

/// A finished push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// `registry/repo@sha256:…`, as recorded in `uploaded_ref`.
    pub uploaded_ref: String,
    /// `registry/repo:tag`.
    pub tag_ref: String,
    /// Blob bytes sent (layers and config; 0 when the registry had them).
    pub bytes_sent: u64,
    pub uploaded: usize,
    pub existing: usize,
    pub mounted: usize,
    pub at_epoch_ms: u64,
    /// The SBOM and provenance attached, if any.
    pub attached: Option<attach::Attached>,
    /// What went wrong that did not fail the push (one line each).
    pub warnings: Vec<String>,
}

/// Why a push did not happen.
#[derive(Debug)]
pub enum PushError {
    Cancelled,
    Failed(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Cancelled => {
                formatter.write_str("The push was cancelled; nothing was recorded as pushed.")
            }
            PushError::Failed(message) => formatter.write_str(message),
        }
    }
}

impl std::error::Error for PushError {}

/// The OCI image index media type.
const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// A sink for push events, shareable with upload streams.
pub type Events = Arc<dyn Fn(PushEvent) + Send + Sync>;

/// Pushes the artifact and records the upload. See the module docs.
pub async fn push(
    request: PushRequest,
    events: Events,
    cancel: &CancellationToken,
) -> Result<PushOutcome, PushError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(PushError::Cancelled),
        result = run(request, events) => result,
    }
}

async fn run(request: PushRequest, events: Events) -> Result<PushOutcome, PushError> {
    let destination = request.destination.clone();
    let artifact = request.artifact.clone();
    let registry = destination.registry.clone();
    let platforms = request.platforms.clone();
    let (image, credential) = tokio::task::spawn_blocking(move || {
        let image = source::read(&artifact)?;
        let image = match &platforms {
            Some(platforms) => image.only(platforms)?,
            None => image,
        };
        let credential = credentials::lookup(&registry)?;
        Ok::<_, String>((image, credential))
    })
    .await
    .map_err(|error| PushError::Failed(format!("The push stopped unexpectedly: {error}")))?
    .map_err(PushError::Failed)?;

    let client = RegistryClient::connect(&destination, credential.as_ref(), request.insecure)
        .await
        .map_err(|error| explain(&destination, credential.as_ref(), error, None))?;
    events(PushEvent::Connected {
        registry: destination.registry.clone(),
        scheme: client.scheme,
    });

    // Every platform's layers then config; a blob two platforms share
    // (none usually) is sent once.
    let mut blobs: Vec<(source::Blob, bool)> = Vec::new();
    for platform_image in image.images() {
        for blob in &platform_image.layers {
            blobs.push((blob.clone(), false));
        }
        blobs.push((platform_image.config.clone(), true));
    }
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|(blob, _)| seen.insert(blob.digest.clone()));
    let total = blobs.len();
    let mut outcome = PushOutcome {
        uploaded_ref: destination.by_digest(&image.pushed_digest()),
        tag_ref: destination.to_string(),
        bytes_sent: 0,
        uploaded: 0,
        existing: 0,
        mounted: 0,
        at_epoch_ms: 0,
        attached: None,
        warnings: Vec::new(),
    };
    for (index, (blob, is_config)) in blobs.iter().enumerate() {
        let is_config = *is_config;
        let report = |action| {
            events(PushEvent::Blob {
                index,
                total,
                digest: blob.digest.clone(),
                size: blob.size,
                action,
            })
        };
        let what = format!(
            "{} {}/{total} ({})",
            if is_config { "the config" } else { "layer" },
            index + 1,
            blob.digest
        );
        let during = Some(what.as_str());
        client
            .refresh_login()
            .await
            .map_err(|error| explain(&destination, credential.as_ref(), error, during))?;
        if client
            .blob_exists(&blob.digest)
            .await
            .map_err(|error| explain(&destination, credential.as_ref(), error, during))?
        {
            outcome.existing += 1;
            report(BlobAction::Exists);
            continue;
        }
        let mut mounted = false;
        if !is_config {
            for from in request
                .mount_from
                .iter()
                .filter(|from| **from != destination.repository)
                .take(2)
            {
                if client.mount(from, &blob.digest).await {
                    mounted = true;
                    break;
                }
            }
        }
        if mounted {
            outcome.mounted += 1;
            report(BlobAction::Mounted);
            continue;
        }
        report(BlobAction::Uploading);
        let sent = Arc::new(AtomicU64::new(0));
        let on_sent: Arc<dyn Fn(u64) + Send + Sync> = {
            let events = events.clone();
            let sent = sent.clone();
            let digest = blob.digest.clone();
            let size = blob.size;
            Arc::new(move |bytes| {
                sent.store(bytes, Ordering::Relaxed);
                events(PushEvent::Sent {
                    digest: digest.clone(),
                    sent: bytes,
                    size,
                });
            })
        };
        client
            .upload(blob, on_sent)
            .await
            .map_err(|error| explain_write(&destination, credential.as_ref(), error, during))?;
        outcome.bytes_sent += sent.load(Ordering::Relaxed);
        outcome.uploaded += 1;
        report(BlobAction::Uploaded);
    }
    events(PushEvent::Manifest {
        tag: outcome.tag_ref.clone(),
    });
    client.refresh_login().await.map_err(|error| {
        explain(
            &destination,
            credential.as_ref(),
            error,
            Some("the manifest"),
        )
    })?;
    let write_error =
        |error, during: &str| explain_write(&destination, credential.as_ref(), error, Some(during));
    match &image.index {
        None => client
            .put_manifest(&image.manifest, &image.manifest_media_type)
            .await
            .map_err(|error| write_error(error, "the manifest"))?,
        Some(index) => {
            // Each platform's manifest by digest, then the index under the
            // tag: the tag never names an index whose images are missing.
            let mut put_now = Vec::new();
            for platform_image in image.images() {
                let digest = platform_image.manifest_digest();
                if !client.manifest_exists(&digest).await.unwrap_or(true) {
                    put_now.push(digest);
                }
                client
                    .put_manifest_as(
                        &platform_image.manifest_digest(),
                        &platform_image.manifest,
                        &platform_image.manifest_media_type,
                    )
                    .await
                    .map_err(|error| write_error(error, "a platform's manifest"))?;
            }
            if let Err(error) = client.put_manifest(index, OCI_INDEX_MEDIA_TYPE).await {
                // The platforms' manifests this push added would be left
                // untagged: take them back where the registry allows it.
                let mut removed = 0;
                for digest in &put_now {
                    if client.delete_manifest(digest).await.unwrap_or(false) {
                        removed += 1;
                    }
                }
                let left = put_now.len() - removed;
                let message = write_error(
                    error,
                    "the image index (the registry may not accept multi-platform images)",
                )
                .to_string();
                return Err(PushError::Failed(format!(
                    "{message} {}",
                    if left == 0 {
                        format!(
                            "The {} platform manifests this push added were removed again; nothing was recorded as pushed.",
                            put_now.len()
                        )
                    } else {
                        format!(
                            "{left} platform manifest(s) this push added stay in {} untagged (it does not allow deleting them; its garbage collection removes untagged manifests); nothing was recorded as pushed. Push one platform with `arca export --platform` and another tool, or use a registry that accepts OCI image indexes.",
                            destination.registry
                        )
                    }
                )));
            }
        }
    }
    if request.attestations && image.images().any(|image| !image.referrers.is_empty()) {
        match attach::attach_all(&client, &image).await {
            Ok(attached) => {
                outcome.bytes_sent += attached.bytes_sent;
                outcome.attached = Some(attached);
            }
            Err(error) => outcome.warnings.push(format!(
                "The image was pushed, but {} refused its SBOM and provenance ({error}); they stay in the local store (`arca sbom`). Push with `--no-attest` to skip them.",
                destination.registry
            )),
        }
    }
    outcome.at_epoch_ms = crate::store::now_epoch_ms();
    record::mark_uploaded(
        &request.artifact.dir,
        &outcome.uploaded_ref,
        outcome.at_epoch_ms,
    )
    .map_err(|error| {
        PushError::Failed(format!(
            "Pushed {} but could not record it: {error:#}",
            outcome.uploaded_ref
        ))
    })?;
    Ok(outcome)
}

/// Repositories of `destination`'s registry that artifacts were pushed to
/// before (from their records), newest first: where layers can be mounted.
pub fn mount_candidates(store: &Store, destination: &Destination) -> Vec<String> {
    let mut repositories = Vec::new();
    for artifact in store.list().artifacts {
        let Some(uploaded) = artifact.metadata.uploaded_ref else {
            continue;
        };
        let name = uploaded.split('@').next().unwrap_or_default();
        let Some((registry, repository)) = name.split_once('/') else {
            continue;
        };
        if registry == destination.registry
            && repository != destination.repository
            && !repositories.iter().any(|known| known == repository)
        {
            repositories.push(repository.to_owned());
        }
    }
    repositories
}

/// [`explain`] for a write (an upload or the manifest): a login that
/// already passed the connection's checks (its token or basic credentials
/// read the repository) but is refused here lacks push rights, which the
/// user fixes differently from a wrong password.
fn explain_write(
    destination: &Destination,
    credential: Option<&Credential>,
    error: RegistryError,
    during: Option<&str>,
) -> PushError {
    match (error, credential) {
        (RegistryError::Unauthorized(detail), Some(credential)) => {
            let registry = &destination.registry;
            PushError::Failed(format!(
                "{registry} accepted the login{} from {} but refused to let it push to {} ({detail}): the account or access token has no write (push) rights there. Log in with one that may push (`docker login {registry}`), or push to a repository it may write. Nothing was recorded as pushed.",
                credential
                    .username()
                    .map(|user| format!(" of `{user}`"))
                    .unwrap_or_default(),
                credential.source,
                destination.repository
            ))
        }
        (error, _) => explain(destination, credential, error, during),
    }
}

/// One message per failure: what went wrong and what to do.
fn explain(
    destination: &Destination,
    credential: Option<&Credential>,
    error: RegistryError,
    during: Option<&str>,
) -> PushError {
    let registry = &destination.registry;
    let nothing = "Nothing was recorded as pushed.";
    let message = match (error, during) {
        (RegistryError::Unreachable(detail), None) => format!(
            "Cannot reach the registry {registry} ({detail}). Check that the address is right and the registry is running. {nothing}"
        ),
        (RegistryError::Unreachable(detail), Some(what)) => format!(
            "The connection to {registry} broke while sending {what} ({detail}). {nothing} Run the push again once the registry is back: what it already has is not sent again."
        ),
        (RegistryError::Tls(detail), _) => format!(
            "A secure (TLS) connection to {registry} failed ({detail}). If the registry uses a private CA, add it to the host's CA bundle or put it in /etc/docker/certs.d/{registry}/ca.crt; if it speaks plain HTTP, mark it insecure with `--insecure` or ARCA_INSECURE_REGISTRIES={registry}. {nothing}"
        ),
        (RegistryError::Unauthorized(detail), _) => match credential {
            Some(
                credential @ Credential {
                    login: Login::Identity(_),
                    ..
                },
            ) => format!(
                "{registry} refused the identity token from {} ({detail}). An identity token is an OAuth refresh token that expires or is revoked: log in again with `docker login {registry}` (or `az acr login` for Azure), or put a username and password or access token in the auth file. {nothing}",
                credential.source
            ),
            Some(credential) => format!(
                "{registry} refused the login{} from {} ({detail}). Check the username and password, or log in again with `docker login {registry}` or `podman login {registry}`. {nothing}",
                credential
                    .username()
                    .map(|user| format!(" of `{user}`"))
                    .unwrap_or_default(),
                credential.source
            ),
            None => format!(
                "{registry} needs a login to push to {} ({detail}), and no credentials for it were found in REGISTRY_AUTH_FILE, podman's auth.json or ~/.docker/config.json. Log in with `docker login {registry}` or `podman login {registry}`. {nothing}",
                destination.repository
            ),
        },
        (RegistryError::Refused(detail), during) => format!(
            "{registry} refused {}: {detail}. {nothing}",
            during.unwrap_or("the push")
        ),
        (RegistryError::Untrusted(detail), during) => format!(
            "{registry} sent an answer Arca does not trust during {}: {detail}. {nothing}",
            during.unwrap_or("the push")
        ),
    };
    PushError::Failed(message)
}
