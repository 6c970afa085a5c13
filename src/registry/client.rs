//! The seam to the OCI distribution API: one repository of one registry,
//! spoken to over Arca's own HTTP client (reqwest). HTTPS with the host's
//! CA bundle (plus `certs.d/<host>/*.crt` as Docker and podman keep them);
//! plain HTTP only for loopback registries or registries the user marked
//! insecure, and only when HTTPS is not answered.
//!
//! Every request is bounded, because a registry and its token service may
//! lie: redirects as [`super::token::redirect_policy`] allows (at most 5,
//! never from `https` to `http`; credentials only to the registry's host),
//! a read timeout per read ([`read_timeout`]), bodies read up to a limit
//! (manifests [`MANIFEST_MAX`], error answers [`REFUSAL_MAX`], token
//! answers in `token`). `oci-client` was this seam until it could not be
//! given a redirect policy or bounded reads; its wire behaviour (scopes,
//! `Accept` lists, the referrers fallback tag) is what this module keeps.
//!
//! Logins: a token registry (`WWW-Authenticate: Bearer`) gets a token from
//! its service for this repository (`pull` or `pull,push`) with the user's
//! password, identity token or nothing (anonymous), renewed before it
//! expires; a registry asking for basic auth gets the password on each
//! request; a registry token from an auth file is sent as it is. Blob
//! reads and uploads are in `transfer`.

use std::path::PathBuf;
use std::sync::Mutex;

use super::credentials::{Credential, Login};
use super::destination::Destination;
use super::error::{RegistryError, classify_request};
use super::token::{self, Challenge, Grant};

/// The manifest media types Arca reads (OCI and Docker, image and index).
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The largest manifest or index read from a registry (real ones are a
/// few KiB; Docker's registry itself refuses more than 4 MiB).
pub const MANIFEST_MAX: usize = 4 << 20;
/// The most of an error answer's body read (envelopes are a few hundred
/// bytes).
pub const REFUSAL_MAX: usize = 64 << 10;

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// How long a registry may send nothing before a request fails, unless
/// `ARCA_REGISTRY_READ_TIMEOUT` (seconds) says otherwise.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
const USER_AGENT: &str = concat!("arca/", env!("CARGO_PKG_VERSION"));
/// A token is renewed when it expires within this many seconds.
const RENEW_BEFORE: u64 = 30;

/// The read timeout: `ARCA_REGISTRY_READ_TIMEOUT` seconds when it is a
/// positive number, else [`READ_TIMEOUT`].
pub fn read_timeout() -> std::time::Duration {
    std::env::var("ARCA_REGISTRY_READ_TIMEOUT")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .filter(|seconds| *seconds > 0)
        .map_or(READ_TIMEOUT, std::time::Duration::from_secs)
}

/// Arca's HTTP client for one registry: its `certs.d` CAs on top of the
/// host's, the timeouts, the user agent and the redirect policy.
fn http_client(registry: &str) -> Result<reqwest::Client, RegistryError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let roots = certs_d(registry)
        .iter()
        .filter_map(|pem| reqwest::Certificate::from_pem(pem).ok())
        .collect::<Vec<_>>();
    reqwest::Client::builder()
        .tls_certs_merge(roots)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout())
        .user_agent(USER_AGENT)
        .redirect(token::redirect_policy())
        .build()
        .map_err(|error| RegistryError::Tls(error.to_string()))
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
        _ => body.trim().chars().take(500).collect(),
    }
}

/// A URL without its query (upload URLs carry session state).
pub(super) fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// `response` when its status is `status`, else the registry's refusal.
pub(super) async fn expect(
    response: reqwest::Response,
    status: u16,
) -> Result<reqwest::Response, RegistryError> {
    if response.status().as_u16() == status {
        Ok(response)
    } else {
        Err(refusal(response).await)
    }
}

/// An error answer as [`RegistryError`]: `HTTP <status> from <url>: <the
/// registry's error envelope>`, `Unauthorized` for 401 and 403.
pub(super) async fn refusal(mut response: reqwest::Response) -> RegistryError {
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

/// The body of `response`, at most `max` bytes ([`super::bounded`]);
/// `what` names it in the error.
async fn bounded_body(
    response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    super::bounded::read(response, max)
        .await
        .map_err(|error| match error {
            super::bounded::Bounded::TooLarge(length) => RegistryError::Untrusted(format!(
                "{what} is {}, more than the {} KiB Arca reads; nothing was stored",
                length.map_or("larger".to_owned(), |length| format!("{length} bytes")),
                max >> 10
            )),
            super::bounded::Bounded::Failed(error) => error,
        })
}

/// What authorizes this connection's requests.
enum Authorization {
    /// Nothing (an open registry).
    Anonymous,
    /// The password on every request (a registry without a token service).
    Basic,
    /// A bearer token: from the token service (renewable, `expires_at` in
    /// seconds since 1970) or one the user gave (`expires_at` `None`).
    Bearer {
        token: String,
        expires_at: Option<u64>,
    },
}

/// A connection to one repository, authenticated for push (or, from
/// [`RegistryClient::connect_pull`], for pull). Has no `Debug`: it holds
/// the login.
pub struct RegistryClient {
    pub(super) http: reqwest::Client,
    /// `https` or `http`: what the registry answered on.
    pub scheme: &'static str,
    /// The registry as the user wrote it (`ghcr.io`, `127.0.0.1:5000`).
    pub(super) registry: String,
    /// Where its API is (`docker.io` is `index.docker.io`).
    host: String,
    pub(super) repository: String,
    tag: String,
    /// `pull` or `pull,push`.
    actions: &'static str,
    login: Option<Login>,
    /// The registry's token service (`None`: not a token registry).
    challenge: Option<Challenge>,
    authorization: Mutex<Authorization>,
    /// The source repository the current token may also read (after a
    /// mount token was fetched for it).
    mount_source: tokio::sync::Mutex<Option<String>>,
}

impl RegistryClient {
    /// Connects and authenticates: HTTPS first; for a loopback or
    /// `insecure` registry that does not answer HTTPS, plain HTTP.
    pub async fn connect(
        destination: &Destination,
        credential: Option<&Credential>,
        insecure: bool,
    ) -> Result<Self, RegistryError> {
        Self::connect_for(destination, credential, insecure, "pull,push").await
    }

    /// [`Self::connect`] for reading only (a base image): asks for pull
    /// rights alone, so a read-only login works.
    pub async fn connect_pull(
        destination: &Destination,
        credential: Option<&Credential>,
        insecure: bool,
    ) -> Result<Self, RegistryError> {
        Self::connect_for(destination, credential, insecure, "pull").await
    }

    async fn connect_for(
        destination: &Destination,
        credential: Option<&Credential>,
        insecure: bool,
        actions: &'static str,
    ) -> Result<Self, RegistryError> {
        let https_error = match Self::attempt("https", destination, credential, actions).await {
            Ok(client) => return Ok(client),
            Err(error) => error,
        };
        let may_use_http = destination.is_loopback() || insecure;
        if !may_use_http
            || matches!(
                https_error,
                RegistryError::Unauthorized(_) | RegistryError::Untrusted(_)
            )
        {
            return Err(https_error);
        }
        match Self::attempt("http", destination, credential, actions).await {
            Ok(client) => Ok(client),
            // A plain-HTTP registry that wants a login, or lies.
            Err(error @ (RegistryError::Unauthorized(_) | RegistryError::Untrusted(_))) => {
                Err(error)
            }
            // HTTP is not what it speaks either (an HTTPS server answers
            // plain HTTP with 400): the HTTPS reason is the useful one.
            Err(_) => Err(https_error),
        }
    }

    /// One connection attempt over `scheme`: `GET /v2/` says how the
    /// registry wants to be logged in to, the login is made ready (a token
    /// from its token service), then a request that needs it checks it.
    async fn attempt(
        scheme: &'static str,
        destination: &Destination,
        credential: Option<&Credential>,
        actions: &'static str,
    ) -> Result<Self, RegistryError> {
        let host = api_host(&destination.registry);
        let http = http_client(&destination.registry)?;
        let challenge = match token::challenge(&http, &format!("{scheme}://{host}")).await {
            Ok(challenge) => challenge,
            // Basic auth, or not a token registry at all: the probe below
            // says whether the login works.
            Err(RegistryError::Unauthorized(_)) => None,
            Err(error) => return Err(error),
        };
        let login = credential.map(|credential| credential.login.clone());
        let client = Self {
            http,
            scheme,
            registry: destination.registry.clone(),
            host,
            repository: destination.repository.clone(),
            tag: destination.tag.clone(),
            actions,
            login,
            challenge,
            authorization: Mutex::new(Authorization::Anonymous),
            mount_source: tokio::sync::Mutex::new(None),
        };
        let authorization = client.first_authorization().await?;
        if let Ok(mut current) = client.authorization.lock() {
            *current = authorization;
        }
        // A basic-auth registry only says no on a real request.
        let probe = format!("sha256:{}", "0".repeat(64));
        client.blob_exists(&probe).await?;
        Ok(client)
    }

    /// How requests are authorized, from the login and the registry's
    /// token service.
    async fn first_authorization(&self) -> Result<Authorization, RegistryError> {
        if let Some(Login::Token(token)) = &self.login {
            return Ok(Authorization::Bearer {
                token: token.expose().to_owned(),
                expires_at: None,
            });
        }
        match (&self.challenge, &self.login) {
            (Some(_), _) => self.token_for(&self.scopes(None)).await,
            (None, Some(Login::Password { .. })) => Ok(Authorization::Basic),
            (None, Some(Login::Identity(_))) => Err(RegistryError::Unauthorized(
                "the login is an identity token, but the registry has no token service (it does not answer `WWW-Authenticate: Bearer`); log in with a username and password or access token instead".to_owned(),
            )),
            (None, _) => Ok(Authorization::Anonymous),
        }
    }

    /// A token from the registry's token service for `scopes`, with the
    /// login's grant (anonymous without one).
    async fn token_for(&self, scopes: &[String]) -> Result<Authorization, RegistryError> {
        let Some(challenge) = &self.challenge else {
            return Ok(Authorization::Anonymous);
        };
        let grant = match &self.login {
            Some(Login::Password { username, password }) => Grant::Password {
                username,
                password: password.expose(),
            },
            Some(Login::Identity(refresh)) => Grant::Refresh(refresh.expose()),
            _ => Grant::Anonymous,
        };
        let access = token::request(&self.http, challenge, &grant, scopes).await?;
        Ok(Authorization::Bearer {
            token: access.token,
            expires_at: Some(access.expires_at),
        })
    }

    /// This repository's scope, plus `pull` on `mount_source`.
    fn scopes(&self, mount_source: Option<&str>) -> Vec<String> {
        let mut scopes = vec![format!("repository:{}:{}", self.repository, self.actions)];
        if let Some(source) = mount_source {
            scopes.push(format!("repository:{source}:pull"));
        }
        scopes
    }

    /// Renews a token from the token service that expires within 30 s
    /// (Docker Hub's last 5 minutes; a long push or pull outlives them).
    /// Reads (a blob, a manifest, the referrers) call it themselves; a push
    /// calls it before each blob and the manifest.
    pub async fn refresh_login(&self) -> Result<(), RegistryError> {
        let due = self.authorization.lock().is_ok_and(|current| {
            matches!(
                *current,
                Authorization::Bearer { expires_at: Some(at), .. }
                    if at < token::now_secs() + RENEW_BEFORE
            )
        });
        if !due {
            return Ok(());
        }
        let covered = self.mount_source.lock().await;
        let renewed = self.token_for(&self.scopes(covered.as_deref())).await?;
        if let Ok(mut current) = self.authorization.lock() {
            *current = renewed;
        }
        Ok(())
    }

    /// A request to this registry with this connection's login. Only for
    /// URLs of this registry: reqwest drops the credentials itself on a
    /// redirect to another host.
    pub(super) fn authorized(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        let Ok(current) = self.authorization.lock() else {
            return request;
        };
        match (&*current, &self.login) {
            (Authorization::Bearer { token, .. }, _) => request.bearer_auth(token),
            (Authorization::Basic, Some(Login::Password { username, password })) => {
                request.basic_auth(username, Some(password.expose()))
            }
            _ => request,
        }
    }

    /// `https://host` of the registry's API, with `path` (from `/v2/`).
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.host)
    }

    fn manifest_url(&self, tag_or_digest: &str) -> String {
        self.url(&format!(
            "/v2/{}/manifests/{tag_or_digest}",
            self.repository
        ))
    }

    /// Sends `request`, a failure to get any answer sorted as
    /// [`classify_request`] does.
    pub(super) async fn send(
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RegistryError> {
        request
            .send()
            .await
            .map_err(|error| classify_request(&error))
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{}/blobs/{digest}", self.repository));
        let response = Self::send(self.authorized(reqwest::Method::HEAD, &url)).await?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(refusal(response).await),
        }
    }

    /// Cross-repository mount from `from` (a repository of the same
    /// registry); `false` when the registry did not mount it (the upload
    /// it opened instead is left to expire, as the docker CLI leaves it).
    pub async fn mount(&self, from: &str, digest: &str) -> bool {
        self.allow_mount_from(from).await;
        let mut url = match reqwest::Url::parse(
            &self.url(&format!("/v2/{}/blobs/uploads/", self.repository)),
        ) {
            Ok(url) => url,
            Err(_) => return false,
        };
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let request = self
            .authorized(reqwest::Method::POST, url.as_str())
            .header(reqwest::header::CONTENT_LENGTH, 0);
        matches!(Self::send(request).await, Ok(response) if response.status().as_u16() == 201)
    }

    /// On a token registry, a token that may also read `from` (the
    /// registry checks both for a mount), as the docker CLI asks for it.
    /// Best effort: without it the mount is refused and the blob uploaded.
    async fn allow_mount_from(&self, from: &str) {
        let mut covered = self.mount_source.lock().await;
        if covered.as_deref() == Some(from) || self.challenge.is_none() {
            return;
        }
        if !matches!(
            self.login,
            Some(Login::Password { .. } | Login::Identity(_))
        ) {
            return;
        }
        let Ok(widened) = self.token_for(&self.scopes(Some(from))).await else {
            return;
        };
        if let Ok(mut current) = self.authorization.lock() {
            *current = widened;
        }
        *covered = Some(from.to_owned());
    }

    /// `PUT /v2/<repo>/manifests/<tag>` with the manifest's exact bytes.
    pub async fn put_manifest(
        &self,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        self.put_manifest_as(&self.tag.clone(), manifest, media_type)
            .await
    }

    /// `PUT /v2/<repo>/manifests/<tag or digest>` of this repository.
    pub async fn put_manifest_as(
        &self,
        tag_or_digest: &str,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let request = self
            .authorized(reqwest::Method::PUT, &self.manifest_url(tag_or_digest))
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(manifest.to_vec());
        let response = Self::send(request).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(refusal(response).await)
        }
    }

    /// The manifests referring to `subject` (`sha256:…`), as index
    /// entries: from the registry's referrers API, else (the API answers
    /// 404) from the `sha256-<hex>` tag of the distribution spec's fallback
    /// (empty when neither has any).
    pub async fn referrers(&self, subject: &str) -> Result<Vec<serde_json::Value>, RegistryError> {
        self.refresh_login().await?;
        let url = self.url(&format!("/v2/{}/referrers/{subject}", self.repository));
        let request = self
            .authorized(reqwest::Method::GET, &url)
            .header(reqwest::header::ACCEPT, OCI_INDEX);
        let response = Self::send(request).await?;
        let index = match response.status().as_u16() {
            200 => bounded_body(response, MANIFEST_MAX, "the referrers index").await?,
            404 => match self.manifest(&subject.replace(':', "-")).await {
                Ok(bytes) => bytes.to_vec(),
                Err(RegistryError::Refused(reason)) if reason.starts_with("manifest unknown") => {
                    return Ok(Vec::new());
                }
                Err(error) => return Err(error),
            },
            _ => return Err(refusal(response).await),
        };
        let index: serde_json::Value = serde_json::from_slice(&index).map_err(|error| {
            RegistryError::Refused(format!("the referrers index is not JSON: {error}"))
        })?;
        Ok(index["manifests"].as_array().cloned().unwrap_or_default())
    }

    /// `GET /v2/<repo>/manifests/<tag or digest>`: the manifest's exact
    /// bytes (an image manifest or an index / manifest list, OCI or
    /// Docker), for the caller to check against a digest. At most
    /// [`MANIFEST_MAX`] bytes. Fetched by tag, the bytes must match a
    /// `Docker-Content-Digest` the registry sends.
    pub async fn manifest(&self, tag_or_digest: &str) -> Result<bytes::Bytes, RegistryError> {
        self.refresh_login().await?;
        let request = self
            .authorized(reqwest::Method::GET, &self.manifest_url(tag_or_digest))
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES.join(", "));
        let response = Self::send(request).await?;
        match response.status().as_u16() {
            200..=299 => {}
            404 => {
                return Err(RegistryError::Refused(format!(
                    "manifest unknown: the repository has no `{tag_or_digest}`"
                )));
            }
            _ => return Err(refusal(response).await),
        }
        let announced = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = bounded_body(
            response,
            MANIFEST_MAX,
            &format!("the manifest `{tag_or_digest}`"),
        )
        .await?;
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
        let request = self
            .authorized(method.clone(), &self.manifest_url(digest))
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES.join(", "));
        let response = Self::send(request).await?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            status if no.contains(&status) => Ok(false),
            status => Err(RegistryError::Refused(format!(
                "{method} of the manifest {digest} answered {status}"
            ))),
        }
    }
}

/// The host of a registry's API: Docker Hub's (`docker.io`) is
/// `index.docker.io`, every other registry's is its name.
fn api_host(registry: &str) -> String {
    if registry == super::destination::DOCKER_HUB {
        "index.docker.io".to_owned()
    } else {
        registry.to_owned()
    }
}

/// CA certificates (PEM) kept for one registry the way Docker and podman
/// do: `/etc/docker/certs.d/<host:port>/*.crt`, `/etc/containers/certs.d/…`,
/// `~/.config/containers/certs.d/…`.
fn certs_d(registry: &str) -> Vec<Vec<u8>> {
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
                certificates.push(data);
            }
        }
    }
    certificates
}
