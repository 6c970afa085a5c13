//! Fetching a base image from its registry into the layer store, as ko
//! does, for when the engine cannot provide it: the manifest (an index or
//! manifest list resolved to the host's platform, else linux/amd64), the
//! config and the layers, over the same [`client`](super::client) seam,
//! credentials and TLS / loopback rules as a push.
//!
//! **Every blob is verified before it enters the store:** a layer's
//! compressed bytes against the manifest's digest while it streams, its
//! uncompressed bytes against the config's diff id; the config against
//! the manifest; a manifest fetched by digest against that digest. A blob
//! that does not match is never moved into the store (its temporary file
//! is deleted, a warning logged). Layers are stored uncompressed, as an
//! engine import stores them, so the record of a fetched base is the same
//! as that of an exported one; a gzip layer may unpack to at most 100
//! times its compressed size (`ARCA_LAYER_MAX_RATIO`), and 1 GiB whatever
//! its size, so a decompression bomb is cut off before it fills the disk.
//!
//! [`FetchError::Unavailable`] means the registry could not be used at all
//! (unreachable, TLS, login, a layer format Arca does not read): the
//! caller may then ask the engine to pull. [`FetchError::Invalid`] means
//! the registry sent wrong bytes: no fallback hides that.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::client::RegistryClient;
use super::credentials;
use super::destination::{Destination, insecure_from_env};
use super::error::RegistryError;
use crate::blobs::{BlobStore, Digest, Written};
use crate::config::image_ref;
use crate::image::BlobRef;
use crate::platform::Platform;

/// The largest config Arca reads from a registry.
const CONFIG_MAX: usize = 16 << 20;
/// The most entries an image index may list (real ones list a few dozen,
/// attestations included).
const INDEX_ENTRIES_MAX: usize = 1024;
/// Bytes read per step while a layer streams into the store.
const STEP: usize = 1 << 20;
/// How many times its compressed size a gzip layer may unpack to, unless
/// `ARCA_LAYER_MAX_RATIO` says otherwise (real layers compress 2–10x).
const LAYER_RATIO_DEFAULT: u64 = 100;
/// What a gzip layer may always unpack to, however small it is compressed.
const LAYER_UNPACKED_FLOOR: u64 = 1 << 30;
/// The environment variable that overrides [`LAYER_RATIO_DEFAULT`].
const LAYER_RATIO_VARIABLE: &str = "ARCA_LAYER_MAX_RATIO";

/// Why a base could not be fetched.
#[derive(Debug)]
pub enum FetchError {
    /// The registry could not be used (network, TLS, login, an
    /// unsupported format): the engine's own pull may still succeed.
    Unavailable(String),
    /// The registry sent bytes that do not match their digest, or a
    /// manifest that makes no sense: a clear error, nothing stored.
    Invalid(String),
    /// Writing into the store failed (disk full, unwritable directory).
    Store(anyhow::Error),
    Cancelled,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Unavailable(text) | FetchError::Invalid(text) => formatter.write_str(text),
            FetchError::Store(error) => write!(formatter, "{error:#}"),
            FetchError::Cancelled => formatter.write_str("cancelled"),
        }
    }
}

/// How a layer is compressed in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// A layer named by the manifest.
#[derive(Debug, Clone)]
pub struct RemoteLayer {
    /// The digest of the bytes as the registry holds them.
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
}

/// A base image's manifest, read from its registry, and the connection to
/// fetch its blobs.
pub struct RemoteBase {
    client: RegistryClient,
    /// `registry/repository` (for messages).
    pub name: String,
    pub config: BlobRef,
    pub layers: Vec<RemoteLayer>,
}

/// The registry, repository and tag (or digest) of `reference` when it
/// names a registry explicitly (`127.0.0.1:5000/base:1`,
/// `ghcr.io/me/base@sha256:…`); `None` for Docker Hub short names
/// (`debian:12`), which are left to the engine (it may have mirrors).
pub fn registry_of(reference: &str) -> Option<(Destination, String)> {
    let parsed = image_ref::parse(reference).ok()?;
    let registry = parsed.registry?;
    let wanted = parsed
        .digest
        .clone()
        .or_else(|| parsed.tag.clone())
        .unwrap_or_else(|| "latest".to_owned());
    Some((
        Destination {
            registry,
            repository: parsed.repository,
            tag: parsed.tag.unwrap_or_else(|| "latest".to_owned()),
        },
        wanted,
    ))
}

/// Connects (credentials as for a push, pull rights only) and reads the
/// manifest of `reference`, resolving an index to this platform.
pub async fn open(reference: &str) -> Result<RemoteBase, FetchError> {
    open_for(reference, None).await
}

/// [`open`] for `platform` (`None`: this machine's, else linux/amd64): an
/// index without it is refused naming the platforms it has. For a platform,
/// a Docker Hub name (`debian:12`) is read from Docker Hub's mirrors
/// ([`super::mirrors`]) then Docker Hub itself, the first that answers.
pub async fn open_for(
    reference: &str,
    platform: Option<Platform>,
) -> Result<RemoteBase, FetchError> {
    let sources = match (registry_of(reference), platform) {
        (Some(source), _) => vec![source],
        (None, Some(_)) => super::mirrors::docker_hub_sources(reference),
        (None, None) => Vec::new(),
    };
    if sources.is_empty() {
        return Err(FetchError::Unavailable(format!(
            "`{reference}` names no registry"
        )));
    }
    let mut reasons = Vec::new();
    for (destination, wanted) in sources {
        match open_at(reference, destination, wanted, platform).await {
            Err(FetchError::Unavailable(reason)) => reasons.push(reason),
            other => return other,
        }
    }
    Err(FetchError::Unavailable(reasons.join("; ")))
}

async fn open_at(
    reference: &str,
    destination: Destination,
    wanted: String,
    platform: Option<Platform>,
) -> Result<RemoteBase, FetchError> {
    let registry = destination.registry.clone();
    let credential = tokio::task::spawn_blocking(move || credentials::lookup(&registry))
        .await
        .map_err(|error| FetchError::Unavailable(error.to_string()))?
        .map_err(FetchError::Unavailable)?;
    let insecure = insecure_from_env(&destination.registry);
    let registry = &destination.registry;
    let unavailable = |error: RegistryError| match error {
        RegistryError::Unreachable(detail) => {
            FetchError::Unavailable(format!("cannot reach {registry}: {detail}"))
        }
        RegistryError::Tls(detail) => FetchError::Unavailable(format!(
            "a secure (TLS) connection to {registry} failed: {detail} (a private CA goes in /etc/docker/certs.d/{registry}/ca.crt; a plain-HTTP registry beyond loopback needs ARCA_INSECURE_REGISTRIES={registry})"
        )),
        RegistryError::Unauthorized(detail) => FetchError::Unavailable(format!(
            "{registry} refused {} ({detail}); log in with `docker login {registry}` or `podman login {registry}`",
            match &credential {
                Some(credential) => format!("the login from {}", credential.source),
                None => "an anonymous pull (no credentials for it were found)".to_owned(),
            }
        )),
        RegistryError::Refused(detail) => {
            FetchError::Unavailable(format!("{registry} refused the request: {detail}"))
        }
        // A lying registry is not a reason to ask another puller.
        RegistryError::Untrusted(detail) => FetchError::Invalid(format!(
            "{registry} cannot be trusted for {reference}: {detail}. The registry (or something between it and this machine) is broken or hostile."
        )),
    };
    let client = RegistryClient::connect_pull(&destination, credential.as_ref(), insecure)
        .await
        .map_err(unavailable)?;
    let name = destination.name();
    let mut bytes = client.manifest(&wanted).await.map_err(unavailable)?;
    if wanted.contains(':') {
        check_manifest(&name, &wanted, &bytes)?;
    }
    let mut manifest = parse_json(&name, &bytes)?;
    if manifest.get("manifests").is_some() {
        let chosen = match platform {
            Some(platform) => choose_exactly(&name, &manifest, platform)?,
            None => choose_platform(&name, &manifest)?,
        };
        bytes = client.manifest(&chosen).await.map_err(unavailable)?;
        check_manifest(&name, &chosen, &bytes)?;
        manifest = parse_json(&name, &bytes)?;
        if manifest.get("manifests").is_some() {
            return Err(FetchError::Invalid(format!(
                "The index of {name} names another index ({chosen}) for this platform, not an image manifest; Arca follows one level. Push the image as a plain index of image manifests."
            )));
        }
    }
    let descriptor = |value: &serde_json::Value| -> Result<(Digest, u64), FetchError> {
        let digest = value["digest"]
            .as_str()
            .and_then(|digest| Digest::parse(digest).ok());
        let size = value["size"].as_u64();
        match (digest, size) {
            (Some(digest), Some(size)) => Ok((digest, size)),
            _ => Err(FetchError::Invalid(format!(
                "The manifest of {name} has a descriptor without a sha256 digest or size."
            ))),
        }
    };
    let (config_digest, config_size) = descriptor(&manifest["config"])?;
    let mut layers = Vec::new();
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let (digest, size) = descriptor(layer)?;
        let media_type = layer["mediaType"].as_str().unwrap_or_default();
        let compression = match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Compression::Gzip,
            other => {
                return Err(FetchError::Unavailable(format!(
                    "{name} has a layer of type `{other}`, which Arca does not read (gzip or plain tar only)"
                )));
            }
        };
        layers.push(RemoteLayer {
            digest,
            size,
            compression,
        });
    }
    Ok(RemoteBase {
        client,
        name,
        config: BlobRef {
            digest: config_digest,
            size: config_size,
        },
        layers,
    })
}

fn check_manifest(name: &str, digest: &str, bytes: &[u8]) -> Result<(), FetchError> {
    let actual = Digest::of(bytes);
    if actual.to_string() != digest {
        return Err(FetchError::Invalid(format!(
            "The registry sent a manifest of {name} whose digest is {actual}, not the requested {digest}; nothing was stored."
        )));
    }
    Ok(())
}

fn parse_json(name: &str, bytes: &[u8]) -> Result<serde_json::Value, FetchError> {
    serde_json::from_slice(bytes).map_err(|error| {
        FetchError::Invalid(format!("The manifest of {name} is not JSON: {error}"))
    })
}

/// The platform names of this machine, as image indexes spell them.
fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    ("linux", arch)
}

/// The digest of the index entry for exactly `platform`; without one, the
/// error names the platforms the index has.
fn choose_exactly(
    name: &str,
    index: &serde_json::Value,
    platform: Platform,
) -> Result<String, FetchError> {
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    if entries.len() > INDEX_ENTRIES_MAX {
        return Err(FetchError::Invalid(format!(
            "The index of {name} lists {} manifests, more than the {INDEX_ENTRIES_MAX} Arca reads; nothing was stored.",
            entries.len()
        )));
    }
    let mut listed = Vec::new();
    for entry in &entries {
        let oci = &entry["platform"];
        let (Some(os), Some(architecture)) = (oci["os"].as_str(), oci["architecture"].as_str())
        else {
            continue;
        };
        let variant = oci["variant"].as_str();
        if Platform::from_oci(os, architecture, variant) == Some(platform)
            && let Some(digest) = entry["digest"].as_str()
        {
            return Ok(digest.to_owned());
        }
        let shown = match variant {
            Some(variant) => format!("{os}/{architecture}/{variant}"),
            None => format!("{os}/{architecture}"),
        }
        .escape_debug()
        .to_string();
        // Attestation entries (`unknown/unknown`) are not platforms.
        if os != "unknown" && !listed.contains(&shown) {
            listed.push(shown);
        }
    }
    Err(FetchError::Invalid(format!(
        "{name} has no image for {platform}: its index lists {}. Choose a base published for {platform}, or drop {platform} from `[rust] platforms`.",
        if listed.is_empty() {
            "no platforms".to_owned()
        } else {
            listed.join(", ")
        }
    )))
}

/// The digest of the index entry for this machine's platform, else
/// linux/amd64.
fn choose_platform(name: &str, index: &serde_json::Value) -> Result<String, FetchError> {
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    if entries.len() > INDEX_ENTRIES_MAX {
        return Err(FetchError::Invalid(format!(
            "The index of {name} lists {} manifests, more than the {INDEX_ENTRIES_MAX} Arca reads; nothing was stored.",
            entries.len()
        )));
    }
    let find = |os: &str, arch: &str| {
        entries.iter().find_map(|entry| {
            let platform = &entry["platform"];
            (platform["os"] == os && platform["architecture"] == arch)
                .then(|| entry["digest"].as_str().map(str::to_owned))
                .flatten()
        })
    };
    let (os, arch) = host_platform();
    find(os, arch)
        .or_else(|| find("linux", "amd64"))
        .ok_or_else(|| {
            FetchError::Unavailable(format!(
                "{name} is an index without an image for {os}/{arch} or linux/amd64"
            ))
        })
}

impl RemoteBase {
    /// Fetches the config, checks it against the manifest and stores it;
    /// returns it and its bytes.
    pub async fn fetch_config(&self, blobs: &BlobStore) -> Result<(Written, Vec<u8>), FetchError> {
        let digest = self.config.digest.to_string();
        let (_, mut stream) = self
            .client
            .blob_stream(&digest)
            .await
            .map_err(|error| self.unavailable("the config", error))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| self.read_error("the config", &error))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() > CONFIG_MAX {
                return Err(FetchError::Invalid(format!(
                    "The config of {} is larger than {CONFIG_MAX} bytes; nothing was stored.",
                    self.name
                )));
            }
        }
        if Digest::of(&bytes) != self.config.digest {
            tracing::warn!(
                "discarding the config of {}: its bytes do not match {}",
                self.name,
                self.config.digest
            );
            return Err(self.mismatch("the config", &self.config.digest));
        }
        let blobs = blobs.clone();
        let stored = bytes.clone();
        let written = tokio::task::spawn_blocking(move || blobs.put_bytes(&stored))
            .await
            .map_err(|error| FetchError::Store(anyhow::anyhow!("A store task failed: {error}")))?
            .map_err(FetchError::Store)?;
        Ok((written, bytes))
    }

    /// Streams one layer into the store, uncompressed, checking the
    /// compressed bytes against the manifest and the uncompressed ones
    /// against `diff_id`; `received` counts the bytes read from the
    /// registry so far.
    pub async fn fetch_layer(
        &self,
        blobs: &BlobStore,
        layer: &RemoteLayer,
        diff_id: &Digest,
        received: Arc<AtomicU64>,
        cancel: &CancellationToken,
    ) -> Result<Written, FetchError> {
        let what = format!("layer {}", layer.digest);
        let (_, stream) = self
            .client
            .blob_stream(&layer.digest.to_string())
            .await
            .map_err(|error| self.unavailable(&what, error))?;
        // A cancellation ends the stream early; the copy then stops.
        let stream = stream.take_until(Box::pin(cancel.clone().cancelled_owned()));
        let reader = tokio_util::io::StreamReader::new(stream);
        let blobs = blobs.clone();
        let layer_copy = layer.clone();
        let expected = diff_id.clone();
        let ratio = layer_ratio();
        let limit = unpacked_limit(layer.size, ratio);
        let copied = tokio::task::spawn_blocking(move || {
            let source = tokio_util::io::SyncIoBridge::new(reader);
            copy_layer(&blobs, source, &layer_copy, &expected, &received, limit)
        })
        .await
        .map_err(|error| FetchError::Store(anyhow::anyhow!("A store task failed: {error}")))?;
        if cancel.is_cancelled() {
            return Err(FetchError::Cancelled);
        }
        match copied {
            Ok(written) => Ok(written),
            Err(Copy::Source(error)) => Err(self.read_error(&what, &error)),
            Err(Copy::Decode(error)) => Err(FetchError::Invalid(format!(
                "{what} of {} is not a valid gzip stream ({error}); nothing was stored.",
                self.name
            ))),
            Err(Copy::Compressed) => Err(self.mismatch(&what, &layer.digest)),
            Err(Copy::DiffId(actual)) => Err(FetchError::Invalid(format!(
                "{what} of {} unpacks to {actual}, but the image config names {diff_id}; it was discarded and nothing was stored. The image in the registry is broken: push it again.",
                self.name
            ))),
            Err(Copy::Store(error)) => Err(FetchError::Store(error)),
            Err(Copy::Oversize) => Err(FetchError::Invalid(format!(
                "The registry sent more of {what} of {} than the {} bytes its manifest declares; it was discarded at that point and nothing was stored. The registry (or something between it and this machine) is broken or hostile.",
                self.name, layer.size
            ))),
            Err(Copy::Expands) => Err(expands(&self.name, layer, limit, ratio)),
        }
    }

    fn unavailable(&self, what: &str, error: RegistryError) -> FetchError {
        let detail = match error {
            RegistryError::Unreachable(detail)
            | RegistryError::Tls(detail)
            | RegistryError::Unauthorized(detail)
            | RegistryError::Refused(detail) => detail,
            RegistryError::Untrusted(detail) => {
                return FetchError::Invalid(format!(
                    "fetching {what} of {} failed: {detail}",
                    self.name
                ));
            }
        };
        FetchError::Unavailable(format!("fetching {what} of {} failed: {detail}", self.name))
    }

    fn read_error(&self, what: &str, error: &io::Error) -> FetchError {
        if error.kind() == io::ErrorKind::InvalidData {
            tracing::warn!("discarding {what} of {}: {error}", self.name);
            FetchError::Invalid(format!(
                "The registry sent {what} of {} whose bytes do not match its digest ({error}); it was discarded and nothing was stored. The registry's copy is corrupt: push the image again.",
                self.name
            ))
        } else {
            FetchError::Unavailable(format!(
                "the connection broke while fetching {what} of {}: {error}",
                self.name
            ))
        }
    }

    fn mismatch(&self, what: &str, digest: &Digest) -> FetchError {
        tracing::warn!(
            "discarding {what} of {}: bytes do not match {digest}",
            self.name
        );
        FetchError::Invalid(format!(
            "The registry sent {what} of {} whose bytes do not match its digest {digest}; it was discarded and nothing was stored. The registry's copy is corrupt: push the image again.",
            self.name
        ))
    }
}

/// How copying a layer failed.
enum Copy {
    /// Reading from the registry failed.
    Source(io::Error),
    /// The bytes are not gzip.
    Decode(io::Error),
    /// The compressed bytes do not match the manifest's digest.
    Compressed,
    /// The uncompressed bytes do not match the config's diff id.
    DiffId(Digest),
    /// Writing into the store failed.
    Store(anyhow::Error),
    /// The registry sent more bytes than the manifest declares.
    Oversize,
    /// The layer unpacks to more than its limit (a decompression bomb).
    Expands,
}

/// The refusal of `layer` of the image `name`, which unpacks to more than
/// `limit` bytes (`ratio` times its compressed size, or the floor).
fn expands(name: &str, layer: &RemoteLayer, limit: u64, ratio: u64) -> FetchError {
    let digest = &layer.digest;
    tracing::warn!("discarding layer {digest} of {name}: it unpacks to more than {limit} bytes");
    FetchError::Invalid(format!(
        "The layer {digest} of {name} unpacks to more than {limit} bytes, over {ratio} times its compressed size of {} bytes, as a decompression bomb would; it was stopped there and nothing was stored. If the image really holds such a layer, set {LAYER_RATIO_VARIABLE} to a larger ratio.",
        layer.size
    ))
}

/// The ratio from `ARCA_LAYER_MAX_RATIO`, else [`LAYER_RATIO_DEFAULT`];
/// read once (an invalid value is warned about once).
fn layer_ratio() -> u64 {
    static RATIO: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *RATIO.get_or_init(|| {
        let value = std::env::var_os(LAYER_RATIO_VARIABLE);
        ratio_from(
            value
                .as_ref()
                .map(|value| value.to_string_lossy())
                .as_deref(),
        )
    })
}

/// A ratio read from `value` (a positive integer); anything else is
/// ignored, with a warning, for [`LAYER_RATIO_DEFAULT`].
fn ratio_from(value: Option<&str>) -> u64 {
    let Some(value) = value else {
        return LAYER_RATIO_DEFAULT;
    };
    match value.trim().parse::<u64>() {
        Ok(ratio) if ratio > 0 => ratio,
        _ => {
            tracing::warn!(
                "ignoring {LAYER_RATIO_VARIABLE}={value:?}: it is not a positive integer; layers may unpack to {LAYER_RATIO_DEFAULT} times their compressed size"
            );
            LAYER_RATIO_DEFAULT
        }
    }
}

/// The most bytes a gzip layer of `compressed` bytes may unpack to:
/// `ratio` times that, and at least [`LAYER_UNPACKED_FLOOR`].
fn unpacked_limit(compressed: u64, ratio: u64) -> u64 {
    compressed.saturating_mul(ratio).max(LAYER_UNPACKED_FLOOR)
}

/// A reader that hashes and counts what passes, and remembers whether an
/// error came from below it (the registry) rather than from a decoder.
/// More than `declared` bytes is an error at once (nothing beyond is read
/// or written).
struct Counted<R> {
    inner: R,
    hasher: Sha256,
    received: Arc<AtomicU64>,
    failed: Option<io::ErrorKind>,
    declared: u64,
    total: u64,
}

impl<R> Counted<R> {
    /// Whether the registry sent more than the manifest declares.
    fn oversize(&self) -> bool {
        self.total > self.declared
    }
}

/// Reads the rest of `counted` (its digest covers it all).
fn drain<R: Read>(counted: &mut Counted<R>) -> Result<(), Copy> {
    match io::copy(counted, &mut io::sink()) {
        Ok(_) => Ok(()),
        Err(_) if counted.oversize() => Err(Copy::Oversize),
        Err(error) => Err(Copy::Source(error)),
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(count) => {
                self.total += count as u64;
                if self.oversize() {
                    self.failed = Some(io::ErrorKind::InvalidData);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "more bytes than the manifest declares",
                    ));
                }
                self.hasher.update(&buf[..count]);
                self.received.fetch_add(count as u64, Ordering::Relaxed);
                Ok(count)
            }
            Err(error) => {
                self.failed = Some(error.kind());
                Err(error)
            }
        }
    }
}

/// Streams `source` (the layer's bytes as the registry holds them) into
/// the store uncompressed, checking both digests. A gzip layer that
/// unpacks to more than `limit` bytes is stopped there ([`Copy::Expands`]);
/// a plain one is bounded by its declared size already.
fn copy_layer(
    blobs: &BlobStore,
    source: impl Read,
    layer: &RemoteLayer,
    diff_id: &Digest,
    received: &Arc<AtomicU64>,
    limit: u64,
) -> Result<Written, Copy> {
    let mut counted = Counted {
        inner: io::BufReader::with_capacity(STEP, source),
        hasher: Sha256::new(),
        received: received.clone(),
        failed: None,
        declared: layer.size,
        total: 0,
    };
    let mut writer = blobs.writer().map_err(Copy::Store)?;
    let mut buffer = vec![0u8; STEP];
    let limit = match layer.compression {
        // Its uncompressed bytes are the ones `counted` bounds.
        Compression::None => u64::MAX,
        Compression::Gzip => limit,
    };
    {
        let mut reader: Box<dyn Read + '_> = match layer.compression {
            Compression::None => Box::new(&mut counted),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut counted)),
        };
        loop {
            let count = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    drop(reader);
                    if counted.oversize() {
                        return Err(Copy::Oversize);
                    }
                    if counted.failed.is_some() {
                        return Err(Copy::Source(error));
                    }
                    // Undecodable: most likely the bytes are not the ones
                    // the digest names, which is the clearer thing to say.
                    drain(&mut counted)?;
                    let compressed = format!("sha256:{:x}", counted.hasher.finalize());
                    return Err(if compressed != layer.digest.to_string() {
                        Copy::Compressed
                    } else {
                        Copy::Decode(error)
                    });
                }
            };
            if writer.written().saturating_add(count as u64) > limit {
                // Dropping the writer deletes its temporary file.
                return Err(Copy::Expands);
            }
            io::Write::write_all(&mut writer, &buffer[..count])
                .map_err(|error| Copy::Store(writer.explain(error)))?;
        }
    }
    // Whatever follows the compressed stream counts for its digest too.
    drain(&mut counted)?;
    let compressed =
        Digest::parse(&format!("sha256:{:x}", counted.hasher.finalize())).map_err(Copy::Store)?;
    if compressed != layer.digest {
        // Dropping the writer deletes its temporary file.
        return Err(Copy::Compressed);
    }
    let uncompressed = writer.digest();
    if uncompressed != *diff_id {
        tracing::warn!(
            "discarding layer {}: it unpacks to {uncompressed}, the config names {diff_id}",
            layer.digest
        );
        return Err(Copy::DiffId(uncompressed));
    }
    writer.commit().map_err(Copy::Store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_references_naming_a_registry_are_fetched() {
        let (destination, wanted) = registry_of("127.0.0.1:5000/base:1").unwrap();
        assert_eq!(destination.registry, "127.0.0.1:5000");
        assert_eq!(destination.repository, "base");
        assert_eq!(wanted, "1");
        let digest = format!("sha256:{}", "a".repeat(64));
        let (_, wanted) = registry_of(&format!("ghcr.io/me/base@{digest}")).unwrap();
        assert_eq!(wanted, digest);
        let (_, wanted) = registry_of("localhost:5000/base").unwrap();
        assert_eq!(wanted, "latest");
        assert!(registry_of("debian:bookworm-slim").is_none());
        assert!(registry_of("nvidia/cuda:12.8.1-runtime-ubuntu24.04").is_none());
    }

    #[test]
    fn a_wanted_platform_is_taken_exactly_or_refused_naming_what_the_index_has() {
        let index = serde_json::json!({"manifests": [
            {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]});
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(choose_exactly("x", &index, arm64).unwrap(), "sha256:arm");
        let only_amd = serde_json::json!({"manifests": [
            {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]});
        match choose_exactly("reg/x", &only_amd, arm64) {
            Err(FetchError::Invalid(message)) => {
                assert!(
                    message.contains(
                        "reg/x has no image for linux/arm64: its index lists linux/amd64."
                    ),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_index_resolves_to_this_platform_or_amd64() {
        let (os, arch) = host_platform();
        let index = serde_json::json!({"manifests": [
            {"digest": "sha256:other", "platform": {"os": "linux", "architecture": "s390x"}},
            {"digest": "sha256:host", "platform": {"os": os, "architecture": arch}},
            {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        assert_eq!(choose_platform("x", &index).unwrap(), "sha256:host");
        let only_amd = serde_json::json!({"manifests": [
            {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        assert_eq!(choose_platform("x", &only_amd).unwrap(), "sha256:amd");
        let none = serde_json::json!({"manifests": [
            {"digest": "sha256:w", "platform": {"os": "windows", "architecture": "amd64"}},
        ]});
        assert!(matches!(
            choose_platform("x", &none),
            Err(FetchError::Unavailable(_))
        ));
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_layer_is_stored_uncompressed_only_when_both_digests_match() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        let tar = vec![5u8; 3 * STEP + 17];
        let compressed = gzip(&tar);
        let layer = RemoteLayer {
            digest: Digest::of(&compressed),
            size: compressed.len() as u64,
            compression: Compression::Gzip,
        };
        let received = Arc::new(AtomicU64::new(0));
        let written = copy_layer(
            &blobs,
            compressed.as_slice(),
            &layer,
            &Digest::of(&tar),
            &received,
            LAYER_UNPACKED_FLOOR,
        )
        .unwrap_or_else(|_| panic!("copy"));
        assert_eq!(written.digest, Digest::of(&tar));
        assert_eq!(received.load(Ordering::Relaxed), compressed.len() as u64);
        assert!(blobs.has(&Digest::of(&tar)));

        // One flipped byte: refused, nothing stored, no temporary file.
        let other = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(other.path());
        let mut corrupt = compressed.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let result = copy_layer(
            &blobs,
            corrupt.as_slice(),
            &layer,
            &Digest::of(&tar),
            &received,
            LAYER_UNPACKED_FLOOR,
        );
        assert!(matches!(result, Err(Copy::Compressed)));
        // A right compressed digest but the wrong diff id.
        let result = copy_layer(
            &blobs,
            compressed.as_slice(),
            &layer,
            &Digest::of(b"other"),
            &received,
            LAYER_UNPACKED_FLOOR,
        );
        assert!(matches!(result, Err(Copy::DiffId(_))));
        assert!(blobs.list().unwrap().is_empty());
        let tmp: Vec<_> = std::fs::read_dir(other.path().join("tmp"))
            .unwrap()
            .collect();
        assert!(tmp.is_empty(), "{tmp:?}");
    }

    /// The files in the store's temporary directory.
    fn temporary_files(root: &std::path::Path) -> Vec<std::fs::DirEntry> {
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_gzip_bomb_is_stopped_at_its_limit_and_nothing_is_stored() {
        use std::io::Write;
        const UNPACKED: usize = 64 << 20;
        const LIMIT: u64 = 8 << 20;
        // 64 MiB of zeros, compressed while it is written (about 64 KiB).
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let zeros = vec![0u8; STEP];
        let mut hasher = Sha256::new();
        for _ in 0..UNPACKED / STEP {
            encoder.write_all(&zeros).unwrap();
            hasher.update(&zeros);
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let diff_id = Digest::parse(&format!("sha256:{:x}", hasher.finalize())).unwrap();
        let layer = RemoteLayer {
            digest: Digest::of(&bomb),
            size: bomb.len() as u64,
            compression: Compression::Gzip,
        };
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        let received = Arc::new(AtomicU64::new(0));
        let result = copy_layer(&blobs, bomb.as_slice(), &layer, &diff_id, &received, LIMIT);
        assert!(matches!(result, Err(Copy::Expands)));
        assert!(blobs.list().unwrap().is_empty());
        let tmp = temporary_files(root.path());
        assert!(tmp.is_empty(), "{tmp:?}");
        // With room for it, the same layer is stored.
        let result = copy_layer(
            &blobs,
            bomb.as_slice(),
            &layer,
            &diff_id,
            &received,
            UNPACKED as u64,
        );
        assert!(matches!(result, Ok(ref written) if written.digest == diff_id));
    }

    #[test]
    fn a_plain_layer_is_bounded_by_its_declared_size_not_the_ratio() {
        let root = tempfile::tempdir().unwrap();
        let blobs = BlobStore::at(root.path());
        let tar = vec![7u8; 3 * STEP];
        let layer = RemoteLayer {
            digest: Digest::of(&tar),
            size: tar.len() as u64,
            compression: Compression::None,
        };
        let received = Arc::new(AtomicU64::new(0));
        let written = copy_layer(
            &blobs,
            tar.as_slice(),
            &layer,
            &Digest::of(&tar),
            &received,
            STEP as u64,
        )
        .unwrap_or_else(|_| panic!("copy"));
        assert_eq!(written.size, tar.len() as u64);
        assert!(blobs.has(&Digest::of(&tar)));
    }

    #[test]
    fn the_unpacked_limit_is_a_ratio_of_the_compressed_size_with_a_floor() {
        assert_eq!(ratio_from(None), LAYER_RATIO_DEFAULT);
        assert_eq!(ratio_from(Some("250")), 250);
        assert_eq!(ratio_from(Some(" 7 ")), 7);
        for invalid in ["0", "-3", "1.5", "many", ""] {
            assert_eq!(ratio_from(Some(invalid)), LAYER_RATIO_DEFAULT, "{invalid}");
        }
        assert_eq!(unpacked_limit(1 << 20, 100), LAYER_UNPACKED_FLOOR);
        assert_eq!(unpacked_limit(100 << 20, 100), 10_000 << 20);
        assert_eq!(unpacked_limit(u64::MAX / 2, 100), u64::MAX);
    }

    #[test]
    fn a_layer_that_expands_is_refused_saying_what_to_do() {
        let layer = RemoteLayer {
            digest: Digest::of(b"bomb"),
            size: 4096,
            compression: Compression::Gzip,
        };
        let FetchError::Invalid(message) = expands("reg/base", &layer, 1 << 30, 100) else {
            panic!("not Invalid");
        };
        for part in [
            &format!("The layer {} of reg/base", layer.digest),
            "more than 1073741824 bytes, over 100 times its compressed size of 4096 bytes",
            "decompression bomb",
            "nothing was stored",
            "set ARCA_LAYER_MAX_RATIO",
        ] {
            assert!(message.contains(part), "{message}");
        }
    }
}
