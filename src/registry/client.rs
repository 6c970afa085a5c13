//! The seam to the OCI distribution API: a small wrapper over `oci-client`
//! that speaks to one repository of one registry. **The only module that
//! imports `oci_client`.** HTTPS with the host's CA bundle (plus
//! `certs.d/<host>/*.crt` as Docker and podman keep them); plain HTTP only
//! for loopback registries or registries the user marked insecure, and only
//! when HTTPS is not answered.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::Stream;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::token_cache::{RegistryToken, RegistryTokenType};
use oci_client::{Reference, RegistryOperation};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::credentials::{Credential, Login};
use super::destination::Destination;
use super::error::{RegistryError, classify_request};
use super::source::Blob;

/// Bytes read per upload request (`oci-client` sends one chunk per PATCH).
const CHUNK: usize = 4 * 1024 * 1024;
/// The manifest media types Arca reads (OCI and Docker, image and index).
const MANIFEST_TYPES: [&str; 4] = [
    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
    oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];
/// The largest manifest or index read from a registry (real ones are a
/// few KiB; Docker's registry itself refuses more than 4 MiB).
pub const MANIFEST_MAX: usize = 4 << 20;

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// How long a registry may send nothing before a request fails, unless
/// `ARCA_REGISTRY_READ_TIMEOUT` (seconds) says otherwise.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The read timeout: `ARCA_REGISTRY_READ_TIMEOUT` seconds when it is a
/// positive number, else [`READ_TIMEOUT`].
fn read_timeout() -> std::time::Duration {
    std::env::var("ARCA_REGISTRY_READ_TIMEOUT")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .filter(|seconds| *seconds > 0)
        .map_or(READ_TIMEOUT, std::time::Duration::from_secs)
}
const USER_AGENT: &str = concat!("arca/", env!("CARGO_PKG_VERSION"));

fn scheme(protocol: &ClientProtocol) -> &'static str {
    match protocol {
        ClientProtocol::Http => "http",
        _ => "https",
    }
}

/// A plain HTTP client with the same trust, timeouts and user agent as the
/// `oci-client` one, for the token exchange `oci-client` lacks.
fn http_client(destination: &Destination) -> Result<reqwest::Client, RegistryError> {
    let roots = certs_d(&destination.registry)
        .iter()
        .filter_map(|cert| reqwest::Certificate::from_pem(&cert.data).ok())
        .collect::<Vec<_>>();
    reqwest::Client::builder()
        .tls_certs_merge(roots)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout())
        .user_agent(USER_AGENT)
        .redirect(super::token::redirect_policy())
        .build()
        .map_err(|error| RegistryError::Tls(error.to_string()))
}

impl RegistryError {
    fn from_oci(error: OciDistributionError) -> Self {
        match error {
            OciDistributionError::AuthenticationFailure(reason) => {
                RegistryError::Unauthorized(reason.trim().to_owned())
            }
            OciDistributionError::UnauthorizedError { url } => RegistryError::Unauthorized(url),
            OciDistributionError::ServerError { code, url, message }
                if code == 401 || code == 403 =>
            {
                RegistryError::Unauthorized(format!(
                    "HTTP {code} from {}: {}",
                    strip_query(&url),
                    envelope_text(&message)
                ))
            }
            OciDistributionError::RequestError(error) => classify_request(&error),
            OciDistributionError::ServerError { code, url, message } => {
                RegistryError::Refused(format!(
                    "HTTP {code} from {}: {}",
                    strip_query(&url),
                    envelope_text(&message)
                ))
            }
            OciDistributionError::RegistryError { envelope, url } => {
                RegistryError::Refused(format!(
                    "{url}: {}",
                    envelope
                        .errors
                        .iter()
                        .map(|error| error.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            }
            OciDistributionError::IoError(error) => RegistryError::Unreachable(error.to_string()),
            other => RegistryError::Refused(other.to_string()),
        }
    }
}

/// A registry's error body (`{"errors":[{"code":…,"message":…}]}`, the
/// distribution spec's envelope) as `CODE: message; …`; other bodies trimmed.
fn envelope_text(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Envelope>(body) {
        Ok(envelope) if !envelope.errors.is_empty() => envelope
            .errors
            .iter()
            .map(
                |entry| match (entry.code.is_empty(), entry.message.is_empty()) {
                    (false, false) => format!("{}: {}", entry.code, entry.message),
                    (true, _) => entry.message.clone(),
                    (false, true) => entry.code.clone(),
                },
            )
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.trim().to_owned(),
    }
}

/// A URL without its query (upload URLs carry session state).
fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// A connection to one repository, authenticated for push (or, from
/// [`RegistryClient::connect_pull`], for pull).
pub struct RegistryClient {
    client: oci_client::Client,
    reference: Reference,
    /// The login, for the calls of `oci-client` that take it again. Never
    /// printed: `RegistryClient` has no `Debug`.
    auth: RegistryAuth,
    /// `https` or `http`: what the registry answered on.
    pub scheme: &'static str,
    /// The user's login, for the multi-scope tokens of mounts.
    login: Option<Login>,
    /// Arca's own HTTP client (same trust as `client`, redirects under
    /// [`super::token::redirect_policy`]): the token service, manifests,
    /// blob reads and uploads.
    http: reqwest::Client,
    /// The source repository the cached push token may also read (after a
    /// mount token was fetched for it).
    mount_source: tokio::sync::Mutex<Option<String>>,
    /// The registry's token service, asked once (`None`: not a token
    /// registry, mounts need no special token).
    challenge: tokio::sync::OnceCell<Option<super::token::Challenge>>,
    /// For an identity-token login: when the access token it was exchanged
    /// for expires (seconds since 1970).
    access_expires_at: std::sync::Mutex<Option<u64>>,
    /// The bearer token the registry's token service gave for the widest
    /// operation authenticated (for Arca's own requests).
    bearer: std::sync::Mutex<Option<String>>,
}

impl RegistryClient {
    /// Connects and authenticates: HTTPS first; for a loopback or
    /// `insecure` registry that does not answer HTTPS, plain HTTP.
    pub async fn connect(
        destination: &Destination,
        credential: Option<&Credential>,
        insecure: bool,
    ) -> Result<Self, RegistryError> {
        Self::connect_for(
            destination,
            credential,
            insecure,
            &[RegistryOperation::Push, RegistryOperation::Pull],
        )
        .await
    }

    /// [`Self::connect`] for reading only (a base image): asks for pull
    /// rights alone, so a read-only login works.
    pub async fn connect_pull(
        destination: &Destination,
        credential: Option<&Credential>,
        insecure: bool,
    ) -> Result<Self, RegistryError> {
        Self::connect_for(
            destination,
            credential,
            insecure,
            &[RegistryOperation::Pull],
        )
        .await
    }

    async fn connect_for(
        destination: &Destination,
        credential: Option<&Credential>,
        insecure: bool,
        operations: &[RegistryOperation],
    ) -> Result<Self, RegistryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let reference = Reference::with_tag(
            destination.registry.clone(),
            destination.repository.clone(),
            destination.tag.clone(),
        );
        let https_error = match Self::attempt(
            &reference,
            ClientProtocol::Https,
            destination,
            credential,
            operations,
        )
        .await
        {
            Ok(client) => return Ok(client),
            Err(error) => error,
        };
        let may_use_http = destination.is_loopback() || insecure;
        if !may_use_http || matches!(https_error, RegistryError::Unauthorized(_)) {
            return Err(https_error);
        }
        match Self::attempt(
            &reference,
            ClientProtocol::Http,
            destination,
            credential,
            operations,
        )
        .await
        {
            Ok(client) => Ok(client),
            // A plain-HTTP registry that wants a login.
            Err(error @ RegistryError::Unauthorized(_)) => Err(error),
            // HTTP is not what it speaks either (an HTTPS server answers
            // plain HTTP with 400): the HTTPS reason is the useful one.
            Err(_) => Err(https_error),
        }
    }

    /// One connection attempt over `protocol`: the login made ready (an
    /// identity token exchanged for an access token at the registry's token
    /// service), then [`Self::authenticate`].
    async fn attempt(
        reference: &Reference,
        protocol: ClientProtocol,
        destination: &Destination,
        credential: Option<&Credential>,
        operations: &[RegistryOperation],
    ) -> Result<Self, RegistryError> {
        let mut expires_at = None;
        // The token service a password login was checked against.
        let mut challenge = None;
        let auth = match credential.map(|c| &c.login) {
            None => RegistryAuth::Anonymous,
            Some(Login::Password { username, password }) => {
                // `oci-client` sends these to the token service the registry
                // names: refuse one that would carry them unencrypted first.
                let base = format!("{}://{}", scheme(&protocol), reference.resolve_registry());
                challenge =
                    super::token::refuse_unsafe_realm(&http_client(destination)?, &base).await?;
                RegistryAuth::Basic(username.clone(), password.expose().to_owned())
            }
            Some(Login::Token(token)) => RegistryAuth::Bearer(token.expose().to_owned()),
            Some(Login::Identity(refresh)) => {
                let actions = if operations.contains(&RegistryOperation::Push) {
                    "pull,push"
                } else {
                    "pull"
                };
                let scopes = [format!("repository:{}:{actions}", reference.repository())];
                let base = format!("{}://{}", scheme(&protocol), reference.resolve_registry());
                let http = http_client(destination)?;
                match super::token::exchange(&http, &base, refresh.expose(), &scopes).await? {
                    Some(access) => {
                        expires_at = Some(access.expires_at);
                        RegistryAuth::Bearer(access.token)
                    }
                    None => RegistryAuth::Anonymous,
                }
            }
        };
        let mut client = Self::with_protocol(reference, protocol, destination, &auth)?;
        client.authenticate(&auth, operations).await?;
        client.login = credential.map(|credential| credential.login.clone());
        client.access_expires_at = std::sync::Mutex::new(expires_at);
        if let Some(challenge) = challenge {
            // Mounts ask the same service: no second `GET /v2/`.
            let _ = client.challenge.set(Some(challenge));
        }
        Ok(client)
    }

    fn with_protocol(
        reference: &Reference,
        protocol: ClientProtocol,
        destination: &Destination,
        auth: &RegistryAuth,
    ) -> Result<Self, RegistryError> {
        let scheme = scheme(&protocol);
        let config = ClientConfig {
            protocol,
            extra_root_certificates: certs_d(&destination.registry),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(read_timeout()),
            user_agent: USER_AGENT,
            platform_resolver: None,
            ..ClientConfig::default()
        };
        let client = oci_client::Client::try_from(config)
            .map_err(|error| RegistryError::Tls(error.to_string()))?;
        Ok(Self {
            client,
            reference: reference.clone(),
            auth: auth.clone(),
            scheme,
            login: None,
            http: http_client(destination)?,
            mount_source: tokio::sync::Mutex::new(None),
            challenge: tokio::sync::OnceCell::new(),
            access_expires_at: std::sync::Mutex::new(None),
            bearer: std::sync::Mutex::new(None),
        })
    }

    /// Sends the `/v2/` handshake (and a token request when the registry
    /// asks for one), then checks the credentials with a request that needs
    /// them.
    async fn authenticate(
        &self,
        auth: &RegistryAuth,
        operations: &[RegistryOperation],
    ) -> Result<(), RegistryError> {
        for operation in operations {
            let token = self
                .client
                .auth(&self.reference, auth, *operation)
                .await
                .map_err(RegistryError::from_oci)?;
            // The first operation's token is kept: push's scope
            // (`pull,push`) covers the reads too.
            if let (Some(token), Ok(mut bearer)) = (token, self.bearer.lock())
                && bearer.is_none()
            {
                *bearer = Some(token);
            }
        }
        // A basic-auth registry only says no on a real request.
        let probe = format!("sha256:{}", "0".repeat(64));
        self.blob_exists(&probe).await.map(|_| ())
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        self.client
            .blob_exists(&self.reference, digest)
            .await
            .map_err(RegistryError::from_oci)
    }

    /// Cross-repository mount from `from` (a repository of the same
    /// registry); `false` when the registry did not mount it.
    pub async fn mount(&self, from: &str, digest: &str) -> bool {
        self.allow_mount_from(from).await;
        let source = Reference::with_tag(
            self.reference.registry().to_owned(),
            from.to_owned(),
            "latest".to_owned(),
        );
        self.client
            .mount_blob(&self.reference, &source, digest)
            .await
            .is_ok()
    }

    /// For an identity-token login whose access token expires within 30 s,
    /// a fresh one from the refresh-token grant (`oci-client` would keep
    /// sending the old one: it cannot renew a bearer token it was given).
    /// Called before each blob and the manifest.
    pub async fn refresh_login(&self) -> Result<(), RegistryError> {
        let due = self
            .access_expires_at
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at < super::token::now_secs() + 30);
        let (Some(Login::Identity(refresh)), true) = (&self.login, due) else {
            return Ok(());
        };
        let http = &self.http;
        let mut covered = self.mount_source.lock().await;
        let base = format!("{}://{}", self.scheme, self.reference.resolve_registry());
        let scopes = [format!(
            "repository:{}:pull,push",
            self.reference.repository()
        )];
        let Some(access) = super::token::exchange(http, &base, refresh.expose(), &scopes).await?
        else {
            return Ok(());
        };
        for operation in [RegistryOperation::Pull, RegistryOperation::Push] {
            self.client
                .tokens
                .insert(
                    &self.reference,
                    operation,
                    RegistryTokenType::Bearer(RegistryToken::Token {
                        token: access.token.clone(),
                    }),
                )
                .await;
        }
        if let Ok(mut at) = self.access_expires_at.lock() {
            *at = Some(access.expires_at);
        }
        if let Ok(mut bearer) = self.bearer.lock() {
            *bearer = Some(access.token.clone());
        }
        *covered = None;
        Ok(())
    }

    /// On a token registry, replaces the cached push token with one that
    /// may also read `from` (the registry checks both for a mount), as the
    /// docker CLI asks for it. Best effort: without it the mount is refused
    /// and the blob uploaded.
    async fn allow_mount_from(&self, from: &str) {
        let mut covered = self.mount_source.lock().await;
        if covered.as_deref() == Some(from) {
            return;
        }
        let http = &self.http;
        let base = format!("{}://{}", self.scheme, self.reference.resolve_registry());
        let challenge = self
            .challenge
            .get_or_init(|| async { super::token::challenge(http, &base).await.ok().flatten() })
            .await;
        let Some(challenge) = challenge else {
            return;
        };
        let grant = match &self.login {
            Some(Login::Password { username, password }) => super::token::Grant::Password {
                username,
                password: password.expose(),
            },
            Some(Login::Identity(refresh)) => super::token::Grant::Refresh(refresh.expose()),
            _ => return,
        };
        let scopes = [
            format!("repository:{}:pull,push", self.reference.repository()),
            format!("repository:{from}:pull"),
        ];
        let Ok(access) = super::token::request(http, challenge, &grant, &scopes).await else {
            return;
        };
        self.client
            .tokens
            .insert(
                &self.reference,
                RegistryOperation::Push,
                RegistryTokenType::Bearer(RegistryToken::Token {
                    token: access.token,
                }),
            )
            .await;
        *covered = Some(from.to_owned());
    }

    /// `PUT /v2/<repo>/manifests/<tag>` with the manifest's exact bytes.
    pub async fn put_manifest(
        &self,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        self.put_manifest_at(&self.reference, manifest, media_type)
            .await
    }

    /// `PUT /v2/<repo>/manifests/<tag or digest>` of this repository.
    pub async fn put_manifest_as(
        &self,
        tag_or_digest: &str,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let reference = self.reference_to(tag_or_digest);
        self.put_manifest_at(&reference, manifest, media_type).await
    }

    async fn put_manifest_at(
        &self,
        reference: &Reference,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let content_type = media_type
            .parse()
            .map_err(|_| RegistryError::Refused(format!("bad media type `{media_type}`")))?;
        self.client
            .push_manifest_raw(reference, manifest.to_vec(), content_type)
            .await
            .map(|_| ())
            .map_err(RegistryError::from_oci)
    }

    fn reference_to(&self, tag_or_digest: &str) -> Reference {
        let registry = self.reference.registry().to_owned();
        let repository = self.reference.repository().to_owned();
        if tag_or_digest.contains(':') {
            Reference::with_digest(registry, repository, tag_or_digest.to_owned())
        } else {
            Reference::with_tag(registry, repository, tag_or_digest.to_owned())
        }
    }

    /// The manifests referring to `subject` (`sha256:…`), as index
    /// entries: from the registry's referrers API, else from the
    /// `sha256-<hex>` tag of the distribution spec's fallback (empty when
    /// neither has any).
    pub async fn referrers(&self, subject: &str) -> Result<Vec<serde_json::Value>, RegistryError> {
        let index = self
            .client
            .pull_referrers(&self.reference_to(subject), None)
            .await
            .map_err(RegistryError::from_oci)?;
        index
            .manifests
            .iter()
            .map(|entry| {
                serde_json::to_value(entry).map_err(|error| {
                    RegistryError::Refused(format!("bad referrers index: {error}"))
                })
            })
            .collect()
    }
}

impl RegistryClient {
    /// `GET /v2/<repo>/manifests/<tag or digest>`: the manifest's exact
    /// bytes (an image manifest or an index / manifest list, OCI or
    /// Docker), for the caller to check against a digest. Read by Arca's
    /// own client, not `oci-client` (which reads a body whole): at most
    /// [`MANIFEST_MAX`] bytes (refused from `Content-Length`, else cut while
    /// streaming), redirects as [`super::token::redirect_policy`] allows.
    /// Fetched by tag, the bytes must match a `Docker-Content-Digest` the
    /// registry sends.
    pub async fn manifest(&self, tag_or_digest: &str) -> Result<bytes::Bytes, RegistryError> {
        let accepted = MANIFEST_TYPES.join(", ");
        let request = self
            .authorized(reqwest::Method::GET, &self.manifest_url(tag_or_digest))
            .header(reqwest::header::ACCEPT, accepted);
        let mut response = request
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| match error.status().map(|status| status.as_u16()) {
                Some(404) => RegistryError::Refused(format!(
                    "manifest unknown: the repository has no `{tag_or_digest}`"
                )),
                _ => super::error::classify_request(&error),
            })?;
        if let Some(length) = response.content_length()
            && length > MANIFEST_MAX as u64
        {
            return Err(RegistryError::Untrusted(format!(
                "the manifest `{tag_or_digest}` is {length} bytes, more than the {} KiB Arca reads; nothing was stored",
                MANIFEST_MAX >> 10
            )));
        }
        let announced = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| super::error::classify_request(&error))?
        {
            if body.len() + chunk.len() > MANIFEST_MAX {
                return Err(RegistryError::Untrusted(format!(
                    "the manifest `{tag_or_digest}` is more than the {} KiB Arca reads; nothing was stored",
                    MANIFEST_MAX >> 10
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !tag_or_digest.contains(':')
            && let Some(announced) = announced
            && announced.starts_with("sha256:")
        {
            let actual = crate::blobs::Digest::of(&body).to_string();
            if actual != announced {
                return Err(RegistryError::Untrusted(format!(
                    "the manifest `{tag_or_digest}` hashes to {actual}, not the {announced} the registry announced; nothing was stored"
                )));
            }
        }
        Ok(bytes::Bytes::from(body))
    }

    /// Whether the repository holds the manifest `digest` (`HEAD`).
    pub async fn manifest_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        self.manifest_request(reqwest::Method::HEAD, digest, &[404])
            .await
    }

    /// Deletes the manifest `digest` (`DELETE`); `Ok(false)` when the
    /// registry does not allow deleting (distribution's default).
    pub async fn delete_manifest(&self, digest: &str) -> Result<bool, RegistryError> {
        self.manifest_request(reqwest::Method::DELETE, digest, &[404, 405])
            .await
    }

    /// `method` on the manifest `digest`: `Ok(true)` on success, `Ok(false)`
    /// on one of the `no` statuses, else an error naming the status.
    async fn manifest_request(
        &self,
        method: reqwest::Method,
        digest: &str,
        no: &[u16],
    ) -> Result<bool, RegistryError> {
        let response = self
            .authorized(method.clone(), &self.manifest_url(digest))
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES.join(", "))
            .send()
            .await
            .map_err(|error| super::error::classify_request(&error))?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            status if no.contains(&status) => Ok(false),
            status => Err(RegistryError::Refused(format!(
                "{method} of the manifest {digest} answered {status}"
            ))),
        }
    }

    fn manifest_url(&self, tag_or_digest: &str) -> String {
        format!(
            "{}://{}/v2/{}/manifests/{tag_or_digest}",
            self.scheme,
            self.reference.resolve_registry(),
            self.reference.repository()
        )
    }

    /// A request with this connection's login (the bearer token the token
    /// service gave, else the login itself), on Arca's HTTP client. Only
    /// for URLs of this registry: reqwest drops the credentials itself on a
    /// redirect to another host.
    fn authorized(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        let bearer = self.bearer.lock().ok().and_then(|bearer| bearer.clone());
        match (bearer.as_ref(), &self.auth) {
            (Some(token), _) | (None, RegistryAuth::Bearer(token)) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(username, password)) => {
                request.basic_auth(username, Some(password))
            }
            _ => request,
        }
    }

    /// `GET /v2/<repo>/blobs/<digest>` as a stream, with the length the
    /// registry announced. Read by Arca's own client: redirects as
    /// [`super::token::redirect_policy`] allows (blobs are often served by
    /// another host, which gets no credentials), each read bounded by the
    /// read timeout. Bytes that do not match the digest end the stream with
    /// an [`std::io::ErrorKind::InvalidData`] error, a registry silent for
    /// the read timeout with [`std::io::ErrorKind::TimedOut`].
    pub async fn blob_stream(
        &self,
        digest: &str,
    ) -> Result<
        (
            Option<u64>,
            futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
        ),
        RegistryError,
    > {
        use futures_util::StreamExt;
        use sha2::Digest as _;
        let expected = crate::blobs::Digest::parse(digest)
            .map_err(|_| {
                RegistryError::Untrusted(format!(
                    "`{}` is not a sha256 digest",
                    digest.escape_debug()
                ))
            })?
            .to_string();
        let response = self
            .authorized(reqwest::Method::GET, &self.blob_url(digest))
            .send()
            .await
            .map_err(|error| super::error::classify_request(&error))?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let length = response.content_length();
        let body = Box::pin(response.bytes_stream());
        let verified = futures_util::stream::unfold(
            Some((body, sha2::Sha256::new(), expected)),
            |state| async move {
                let (mut body, mut hasher, expected) = state?;
                match body.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        Some((Ok(chunk), Some((body, hasher, expected))))
                    }
                    Some(Err(error)) => Some((Err(read_failure(&error)), None)),
                    None => {
                        let actual = format!("sha256:{:x}", hasher.finalize());
                        (actual != expected).then(|| {
                            let error = std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                format!("the bytes hash to {actual}, not {expected}"),
                            );
                            (Err(error), None)
                        })
                    }
                }
            },
        )
        .boxed();
        Ok((length, verified))
    }

    /// Uploads a blob as `docker push` does: `POST` opens an upload, one
    /// `PATCH` streams the blob from disk (calling `sent` with the bytes
    /// handed to the connection so far), `PUT ?digest=` closes it. Every
    /// `Location` the registry answers must stay in this repository's
    /// uploads on this registry ([`Self::upload_location`]): the login is
    /// never sent elsewhere.
    pub async fn upload(
        &self,
        blob: &Blob,
        sent: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), RegistryError> {
        use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
        let opened = self
            .authorized(reqwest::Method::POST, &self.uploads_url())
            .header(CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(|error| super::error::classify_request(&error))?;
        let location = self.upload_location(expect(opened, 202).await?)?;
        let patched = self
            .authorized(reqwest::Method::PATCH, location.as_str())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, blob.size)
            .body(reqwest::Body::wrap_stream(file_chunks(blob.clone(), sent)))
            .send()
            .await
            .map_err(|error| super::error::classify_request(&error))?;
        let mut location = self.upload_location(expect(patched, 202).await?)?;
        location
            .query_pairs_mut()
            .append_pair("digest", &blob.digest);
        let closed = self
            .authorized(reqwest::Method::PUT, location.as_str())
            .header(CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(|error| super::error::classify_request(&error))?;
        expect(closed, 201).await.map(|_| ())
    }

    /// The `Location` of an upload answer, resolved against the request:
    /// refused ([`RegistryError::Untrusted`]) unless it is on this
    /// registry (same scheme, host and port) and under
    /// `/v2/<repository>/blobs/uploads/`.
    fn upload_location(&self, response: reqwest::Response) -> Result<reqwest::Url, RegistryError> {
        let registry = self.reference.registry();
        let header = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                RegistryError::Refused(format!(
                    "the registry answered an upload without a `Location` to send it to (HTTP {})",
                    response.status().as_u16()
                ))
            })?;
        let shown = strip_query(header).escape_debug().to_string();
        let location = response.url().join(header).map_err(|_| {
            RegistryError::Untrusted(format!("the upload `Location` `{shown}` is not a URL"))
        })?;
        let origin = reqwest::Url::parse(&format!(
            "{}://{}/",
            self.scheme,
            self.reference.resolve_registry()
        ))
        .map_err(|error| RegistryError::Refused(format!("bad registry address: {error}")))?
        .origin();
        if location.origin() != origin {
            return Err(RegistryError::Untrusted(format!(
                "the upload `Location` `{shown}` points away from {registry}; Arca sends the blob and the login to {registry} only"
            )));
        }
        let uploads = format!("/v2/{}/blobs/uploads/", self.reference.repository());
        if !location.path().starts_with(&uploads) {
            return Err(RegistryError::Untrusted(format!(
                "the upload `Location` `{shown}` is outside the repository's uploads ({uploads}); Arca sends blobs there only"
            )));
        }
        Ok(location)
    }

    fn blob_url(&self, digest: &str) -> String {
        format!(
            "{}://{}/v2/{}/blobs/{digest}",
            self.scheme,
            self.reference.resolve_registry(),
            self.reference.repository()
        )
    }

    fn uploads_url(&self) -> String {
        format!(
            "{}://{}/v2/{}/blobs/uploads/",
            self.scheme,
            self.reference.resolve_registry(),
            self.reference.repository()
        )
    }
}

/// `response` when its status is `status`, else the registry's refusal.
async fn expect(
    response: reqwest::Response,
    status: u16,
) -> Result<reqwest::Response, RegistryError> {
    if response.status().as_u16() == status {
        Ok(response)
    } else {
        Err(refusal(response).await)
    }
}

/// The most of an error answer's body read (envelopes are a few hundred
/// bytes).
const REFUSAL_MAX: usize = 64 << 10;

/// An error answer as [`RegistryError`]: `HTTP <status> from <url>: <the
/// registry's error envelope>`, `Unauthorized` for 401 and 403.
async fn refusal(mut response: reqwest::Response) -> RegistryError {
    let status = response.status().as_u16();
    let url = strip_query(response.url().as_str()).to_owned();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= REFUSAL_MAX {
            body.truncate(REFUSAL_MAX);
            break;
        }
    }
    let text = format!(
        "HTTP {status} from {url}: {}",
        envelope_text(&String::from_utf8_lossy(&body))
    );
    if status == 401 || status == 403 {
        RegistryError::Unauthorized(text)
    } else {
        RegistryError::Refused(text)
    }
}

/// A failed read of a response body as an I/O error: a registry silent
/// for the read timeout is [`std::io::ErrorKind::TimedOut`], saying so.
fn read_failure(error: &reqwest::Error) -> std::io::Error {
    if error.is_timeout() {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the registry sent nothing for {} s (ARCA_REGISTRY_READ_TIMEOUT sets this)",
                read_timeout().as_secs()
            ),
        )
    } else {
        std::io::Error::other(super::error::classify_request(error).to_string())
    }
}

/// The blob's bytes as a stream of 4 MiB chunks read from its file.
fn file_chunks(
    blob: Blob,
    sent: Arc<dyn Fn(u64) + Send + Sync>,
) -> impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    struct Reader {
        file: Option<tokio::io::Take<tokio::fs::File>>,
        blob: Blob,
        done: u64,
    }
    let start = Reader {
        file: None,
        blob,
        done: 0,
    };
    futures_util::stream::try_unfold(start, move |mut reader| {
        let sent = sent.clone();
        async move {
            if reader.file.is_none() {
                let mut file = tokio::fs::File::open(&reader.blob.data.path).await?;
                file.seek(std::io::SeekFrom::Start(reader.blob.data.offset))
                    .await?;
                reader.file = Some(file.take(reader.blob.data.len));
            }
            let Some(file) = reader.file.as_mut() else {
                return Ok(None);
            };
            let mut buffer = BytesMut::with_capacity(CHUNK);
            while buffer.len() < CHUNK {
                if file.read_buf(&mut buffer).await? == 0 {
                    break;
                }
            }
            if buffer.is_empty() {
                if reader.done != reader.blob.size {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ended after {} of {} bytes",
                            reader.blob.data.path.display(),
                            reader.done,
                            reader.blob.size
                        ),
                    ));
                }
                return Ok(None);
            }
            reader.done += buffer.len() as u64;
            sent(reader.done);
            Ok(Some((buffer.freeze(), reader)))
        }
    })
}

/// CA certificates kept for one registry the way Docker and podman do:
/// `/etc/docker/certs.d/<host:port>/*.crt`, `/etc/containers/certs.d/…`,
/// `~/.config/containers/certs.d/…`.
fn certs_d(registry: &str) -> Vec<Certificate> {
    if registry.contains(['/', '\\']) || registry.starts_with('.') {
        return Vec::new();
    }
    let mut dirs = vec![
        PathBuf::from("/etc/docker/certs.d"),
        PathBuf::from("/etc/containers/certs.d"),
    ];
    if let Some(config) = dirs::config_dir() {
        dirs.push(config.join("containers").join("certs.d"));
    }
    let mut certificates = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join(registry)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "crt")
                && let Ok(data) = std::fs::read(&path)
            {
                certificates.push(Certificate {
                    encoding: CertificateEncoding::Pem,
                    data,
                });
            }
        }
    }
    certificates
}
