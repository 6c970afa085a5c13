//! The Docker Engine API implementation of [`ContainerEngine`], over bollard.
//!
//! **The only module that imports bollard.** Engine errors are matched on
//! their structured status codes (404 missing, 304/409 already in that
//! state), never on message text.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, DeviceRequest, ExecConfig, HostConfig, Mount, MountType, PortBinding,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, BuildImageOptionsBuilder, BuilderVersion,
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, ImportImageOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, RemoveVolumeOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use bollard::{body_full, container::LogOutput};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::contract::{
    BytesSink, ContainerEngine, ContainerSpec, ExecSpec, GpuRequest, ImageFacts, LineSink,
    MountSource, OutputLine, PullProgress, PullSink, RunSpec, Stream,
};
use super::discovery::{self, EngineKind};

/// Long operations (a cargo build, an export) are bounded by cancellation,
/// not by a request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// How long one endpoint gets to answer while connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a running exec is asked whether it ended (a guard against an
/// output stream that outlives its command).
const EXEC_POLL: Duration = Duration::from_secs(1);

/// A connection to an engine that speaks the Docker Engine API: Docker
/// itself, or podman's compatible service.
pub struct DockerEngine {
    docker: Docker,
    endpoint: String,
    kind: EngineKind,
    rootless: bool,
    /// The platform the engine runs containers of natively (its `/version`
    /// `Arch`; a local podman's is this machine's).
    platform: crate::platform::Platform,
}

impl DockerEngine {
    /// Connects to the first engine that answers among
    /// [`discovery::candidates`] (`DOCKER_HOST` alone when set: unix socket,
    /// `tcp://`, `https://`; TLS with `DOCKER_TLS_VERIFY` and
    /// `DOCKER_CERT_PATH`), of the kind asked for by `--engine` or
    /// `ARCA_ENGINE` if any; negotiates the API version and learns whether
    /// it is podman. Fails with one message naming every place tried and
    /// how to start an engine.
    pub async fn connect() -> Result<Self> {
        let chosen = discovery::chosen()?;
        let env = discovery::Environment::current();
        let mut tried = Vec::new();
        for candidate in discovery::candidates(&env, chosen) {
            if !candidate.explicit
                && let Some(path) = candidate.socket_path()
                && !path.exists()
            {
                tried.push((candidate, "no socket".to_owned()));
                continue;
            }
            match Self::connect_to(&candidate.endpoint).await {
                Ok(engine) => match chosen {
                    Some(kind) if kind != engine.kind => {
                        if candidate.explicit {
                            bail!(discovery::wrong_kind(&engine.endpoint, engine.kind, kind));
                        }
                        let detail = format!("{} answered there", engine.kind.display());
                        tried.push((candidate, detail));
                    }
                    _ => {
                        tracing::debug!(
                            "using the {} engine at {} ({})",
                            engine.kind.name(),
                            engine.endpoint,
                            candidate.origin
                        );
                        return Ok(engine);
                    }
                },
                Err(detail) => tried.push((candidate, detail)),
            }
        }
        bail!(discovery::nothing_answered(&tried, chosen))
    }

    /// Connects to the engine at `endpoint`, as if `DOCKER_HOST` named it
    /// (whatever `--engine`/`ARCA_ENGINE` say).
    pub async fn connect_at(endpoint: &str) -> Result<Self> {
        Self::connect_to(endpoint).await.map_err(|detail| {
            let candidate = discovery::Candidate {
                endpoint: endpoint.to_owned(),
                origin: "DOCKER_HOST",
                explicit: true,
            };
            anyhow!(discovery::nothing_answered(&[(candidate, detail)], None))
        })
    }

    /// Connects to one endpoint; the error is why it did not answer.
    ///
    /// On a unix socket, `/_ping`'s headers tell a podman engine and its API
    /// version ([`super::ping`]); nothing more is asked of it, because it
    /// answers `/version` slowly (0.74 s here; it queries its packages).
    /// Otherwise this costs one `/version` and one `/info`, asked at once;
    /// an engine that refuses bollard's API version (Docker older than it)
    /// is negotiated with and asked again (Docker answers in milliseconds).
    async fn connect_to(endpoint: &str) -> std::result::Result<Self, String> {
        if let Some(path) = endpoint.strip_prefix("unix://") {
            let identity = super::ping::identify_unix(Path::new(path), CONNECT_TIMEOUT).await;
            if let Some(identity) = identity.filter(|identity| identity.kind == EngineKind::Podman)
            {
                return Self::connect_to_podman(endpoint, identity.api_version);
            }
        }
        let within = |what: &'static str| {
            move |_| format!("no answer to {what} within {} s", CONNECT_TIMEOUT.as_secs())
        };
        let probe = Docker::connect_with_host(endpoint)
            .map_err(|error| describe_connect_error(&error))?
            .with_timeout(REQUEST_TIMEOUT);
        let (version, info) = tokio::join!(
            tokio::time::timeout(CONNECT_TIMEOUT, probe.version()),
            tokio::time::timeout(CONNECT_TIMEOUT, probe.info())
        );
        let (docker, version, info) = match version.map_err(within("/version"))? {
            Ok(version) => {
                let docker = match server_api_version(&version) {
                    // A unix socket takes the server's version as it is.
                    Some(server)
                        if server < *API_DEFAULT_VERSION && endpoint.starts_with("unix://") =>
                    {
                        Docker::connect_with_unix(endpoint, REQUEST_TIMEOUT.as_secs(), &server)
                            .map_err(|error| describe_connect_error(&error))?
                    }
                    Some(server) if server < *API_DEFAULT_VERSION => {
                        tokio::time::timeout(CONNECT_TIMEOUT, probe.negotiate_version())
                            .await
                            .map_err(within("/version"))?
                            .map_err(|error| describe_connect_error(&error))?
                    }
                    _ => probe,
                };
                (docker, version, info.ok().and_then(Result::ok))
            }
            Err(_) => {
                let docker = tokio::time::timeout(CONNECT_TIMEOUT, probe.negotiate_version())
                    .await
                    .map_err(within("/version"))?
                    .map_err(|error| describe_connect_error(&error))?;
                let (version, info) = tokio::join!(
                    tokio::time::timeout(CONNECT_TIMEOUT, docker.version()),
                    tokio::time::timeout(CONNECT_TIMEOUT, docker.info())
                );
                let version = version
                    .map_err(within("/version"))?
                    .map_err(|error| describe_connect_error(&error))?;
                (docker, version, info.ok().and_then(Result::ok))
            }
        };
        let kind = discovery::kind_from_version(
            version
                .platform
                .as_ref()
                .map(|platform| platform.name.as_str()),
            version
                .components
                .iter()
                .flatten()
                .map(|component| component.name.as_str()),
        );
        if info.is_none() {
            tracing::warn!("{endpoint} did not describe itself (/info)");
        }
        let platform = engine_platform(version.arch.as_deref(), endpoint);
        Ok(Self::identified(endpoint, docker, kind, info, platform))
    }

    /// The connected engine, with whether it runs rootless. Rootless Docker
    /// says so among its security options; podman's compatible /info does
    /// not (only its own `Rootless` field, which the Docker API model
    /// drops), but its socket belongs to the user it runs as (root for a
    /// rootful service, also when reached through a link). On a rootless
    /// engine the build runs as the container's root, which is the
    /// invoking user on the host.
    fn identified(
        endpoint: &str,
        docker: Docker,
        kind: EngineKind,
        info: Option<bollard::models::SystemInfo>,
        platform: crate::platform::Platform,
    ) -> Self {
        let says_rootless = info.as_ref().is_some_and(|info| {
            info.security_options
                .iter()
                .flatten()
                .any(|option| option.split(',').any(|part| part == "name=rootless"))
        });
        let rootless = says_rootless
            || (kind == EngineKind::Podman
                && socket_owner(endpoint).is_some_and(|owner| owner != 0));
        Self {
            docker,
            endpoint: endpoint.to_owned(),
            kind,
            rootless,
            platform,
        }
    }

    /// Connects to the podman engine on the unix socket `endpoint`, whose
    /// API version `/_ping` stated. Nothing more is asked: podman's `/info`
    /// (0.24 s here) would not say whether it runs rootless (the socket's
    /// owner does, see [`Self::identified`]).
    fn connect_to_podman(
        endpoint: &str,
        (major_version, minor_version): (usize, usize),
    ) -> std::result::Result<Self, String> {
        let version = ClientVersion {
            major_version,
            minor_version,
        };
        let docker = Docker::connect_with_unix(endpoint, REQUEST_TIMEOUT.as_secs(), &version)
            .map_err(|error| describe_connect_error(&error))?;
        // A podman socket is on this machine: its platform is the host's.
        let platform = crate::platform::Platform::host();
        Ok(Self::identified(
            endpoint,
            docker,
            EngineKind::Podman,
            None,
            platform,
        ))
    }

    /// Resolves once the engine reports the exec no longer running
    /// (polled each second); never, while it runs or cannot be inspected.
    async fn exec_exited(&self, exec: &str) {
        loop {
            tokio::time::sleep(EXEC_POLL).await;
            if let Ok(inspected) = self.docker.inspect_exec(exec).await
                && inspected.running == Some(false)
            {
                return;
            }
        }
    }

    /// The engine's own command line, for hints (`docker`, `podman`).
    fn cli(&self) -> &'static str {
        self.kind.name()
    }
}

/// The platform of an engine whose `/version` says `arch` (Go's names:
/// `amd64`, `arm64`); this machine's when it says nothing Arca knows (a
/// warning, for a remote engine).
fn engine_platform(arch: Option<&str>, endpoint: &str) -> crate::platform::Platform {
    let host = crate::platform::Platform::host();
    match arch.and_then(|arch| crate::platform::Platform::from_oci("linux", arch, None)) {
        Some(platform) => platform,
        None => {
            tracing::warn!(
                endpoint,
                arch = arch.unwrap_or("?"),
                "the engine names an architecture Arca does not build for; taking it to be {host}"
            );
            host
        }
    }
}

/// The uid owning a `unix://` endpoint's socket (following links).
fn socket_owner(endpoint: &str) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let path = endpoint.strip_prefix("unix://")?;
    std::fs::metadata(path).ok().map(|metadata| metadata.uid())
}

/// The API version an engine's `/version` states (`1.41`).
fn server_api_version(version: &bollard::models::SystemVersion) -> Option<ClientVersion> {
    let (major, minor) = version.api_version.as_deref()?.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

fn describe_connect_error(error: &BollardError) -> String {
    match error {
        BollardError::SocketNotFoundError(path) => format!("no socket at {path}"),
        other => {
            // hyper's errors nest the cause (connection refused, ...) several
            // levels deep; the innermost one says what happened.
            let mut cause: &dyn std::error::Error = other;
            while let Some(source) = cause.source() {
                cause = source;
            }
            cause.to_string()
        }
    }
}

fn status_of(error: &BollardError) -> Option<u16> {
    match error {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn server_message(error: &BollardError) -> String {
    match error {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => describe_connect_error(other),
    }
}

/// Splits chunks into lines per stream, keeping partial lines until their
/// end arrives.
#[derive(Default)]
struct LineSplitter {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Per stream: the last line ended in `\r`, so a `\n` right after it
    /// closes nothing new.
    after_cr: [bool; 2],
}

impl LineSplitter {
    /// Splits on `\n`, and on a lone `\r` too (progress lines that redraw
    /// themselves, like cargo's, arrive as they are drawn).
    fn push(&mut self, stream: Stream, bytes: &[u8], sink: LineSink<'_>) {
        let (buffer, after_cr) = match stream {
            Stream::Stdout => (&mut self.stdout, &mut self.after_cr[0]),
            Stream::Stderr => (&mut self.stderr, &mut self.after_cr[1]),
        };
        buffer.extend_from_slice(bytes);
        while let Some(end) = buffer
            .iter()
            .position(|byte| *byte == b'\n' || *byte == b'\r')
        {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let ends_in_cr = line[end] == b'\r';
            if !ends_in_cr && end == 0 && *after_cr {
                *after_cr = false;
                continue;
            }
            *after_cr = ends_in_cr;
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            sink(OutputLine { stream, text });
        }
    }

    fn finish(&mut self, sink: LineSink<'_>) {
        for (stream, buffer) in [
            (Stream::Stdout, &mut self.stdout),
            (Stream::Stderr, &mut self.stderr),
        ] {
            if !buffer.is_empty() {
                let text = String::from_utf8_lossy(buffer).into_owned();
                buffer.clear();
                sink(OutputLine { stream, text });
            }
        }
    }
}

/// Drops ANSI escape sequences (the classic builder colours RUN's stderr).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(ch);
    }
    out
}

fn label_filter(labels: &[&str]) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        labels.iter().map(|label| (*label).to_owned()).collect(),
    )])
}

#[async_trait]
impl ContainerEngine for DockerEngine {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn runtime_name(&self) -> &'static str {
        self.kind.name()
    }

    fn accepts_thin_archives(&self) -> bool {
        self.kind == EngineKind::Docker
    }

    fn is_rootless(&self) -> bool {
        self.rootless
    }

    fn is_remote(&self) -> bool {
        !self.endpoint.starts_with("unix://")
    }

    fn platform(&self) -> crate::platform::Platform {
        self.platform
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageFacts>> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(ImageFacts {
                id: image.id.unwrap_or_default(),
                size: image.size.and_then(|size| u64::try_from(size).ok()),
                labels: image
                    .config
                    .and_then(|config| config.labels)
                    .map(|labels| labels.into_iter().collect())
                    .unwrap_or_default(),
            })),
            Err(error) if status_of(&error) == Some(404) => Ok(None),
            Err(error) => Err(anyhow!(
                "Failed to inspect image `{reference}` on {}: {}",
                self.endpoint,
                server_message(&error)
            )),
        }
    }

    async fn pull_image(&self, reference: &str, progress: PullSink<'_>) -> Result<()> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => progress(PullProgress {
                    layer: info.id.unwrap_or_default(),
                    status: info.status.unwrap_or_default(),
                    current: info
                        .progress_detail
                        .as_ref()
                        .and_then(|detail| detail.current)
                        .and_then(|value| u64::try_from(value).ok()),
                    total: info
                        .progress_detail
                        .as_ref()
                        .and_then(|detail| detail.total)
                        .and_then(|value| u64::try_from(value).ok()),
                }),
                Err(error) => bail!(
                    "Cannot pull image `{reference}`: {}. Check the image name and that the engine at {} can reach its registry (and is logged in), or make the image available locally (`{cli} pull`, `{cli} load` or `{cli} tag`).",
                    server_message(&error).trim_end_matches('.'),
                    self.endpoint,
                    cli = self.cli(),
                ),
            }
        }
        Ok(())
    }

    async fn build_image(&self, tag: &str, context: Vec<u8>, output: LineSink<'_>) -> Result<()> {
        self.build_image_with_args(tag, context, &[], output).await
    }

    async fn build_image_with_args(
        &self,
        tag: &str,
        context: Vec<u8>,
        build_args: &[(String, String)],
        output: LineSink<'_>,
    ) -> Result<()> {
        let build_args: HashMap<String, String> = build_args.iter().cloned().collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Containerfile")
            .buildargs(&build_args)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .version(BuilderVersion::BuilderV1)
            .build();
        let mut stream = self
            .docker
            .build_image(options, None, Some(body_full(context.into())));
        let mut lines = LineSplitter::default();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        lines.push(Stream::Stdout, strip_ansi(&text).as_bytes(), output);
                    }
                }
                Err(error) => {
                    lines.finish(output);
                    bail!(
                        "Building image `{tag}` failed: {}",
                        server_message(&error).trim_end()
                    );
                }
            }
        }
        lines.finish(output);
        Ok(())
    }

    async fn remove_image(&self, reference: &str) -> Result<()> {
        let options = RemoveImageOptionsBuilder::default().force(true).build();
        match self
            .docker
            .remove_image(reference, Some(options), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if status_of(&error) == Some(404) => Ok(()),
            Err(error) => Err(anyhow!(
                "Failed to remove image `{reference}`: {}",
                server_message(&error)
            )),
        }
    }

    async fn export_image(
        &self,
        reference: &str,
        dest: &Path,
        progress: BytesSink<'_>,
    ) -> Result<u64> {
        let file = tokio::fs::File::create(dest)
            .await
            .with_context(|| format!("Failed to create the image archive {}", dest.display()))?;
        let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut stream = self.docker.export_image(reference);
        let mut written: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| {
                anyhow!(
                    "Exporting image `{reference}` failed: {}",
                    server_message(&error)
                )
            })?;
            writer.write_all(&chunk).await.with_context(|| {
                format!(
                    "Failed to write the image archive {} (is the disk full?)",
                    dest.display()
                )
            })?;
            written += chunk.len() as u64;
            progress(written);
        }
        writer.flush().await.with_context(|| {
            format!(
                "Failed to write the image archive {} (is the disk full?)",
                dest.display()
            )
        })?;
        writer
            .into_inner()
            .sync_all()
            .await
            .with_context(|| format!("Failed to sync the image archive {}", dest.display()))?;
        if written == 0 {
            bail!("The engine returned an empty archive for image `{reference}`.");
        }
        Ok(written)
    }

    async fn export_image_to(
        &self,
        reference: &str,
        sink: &mut (dyn tokio::io::AsyncWrite + Send + Unpin),
        progress: BytesSink<'_>,
    ) -> Result<u64> {
        let mut stream = self.docker.export_image(reference);
        let mut written: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| {
                anyhow!(
                    "Exporting image `{reference}` failed: {}",
                    server_message(&error)
                )
            })?;
            sink.write_all(&chunk)
                .await
                .context("The image archive's reader stopped")?;
            written += chunk.len() as u64;
            progress(written);
        }
        sink.shutdown()
            .await
            .context("The image archive's reader stopped")?;
        if written == 0 {
            bail!("The engine returned an empty archive for image `{reference}`.");
        }
        Ok(written)
    }

    async fn load_image(&self, archive: &Path) -> Result<()> {
        let file = tokio::fs::File::open(archive)
            .await
            .with_context(|| format!("Failed to open {}", archive.display()))?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        let mut stream = self.docker.import_image_stream(
            ImportImageOptionsBuilder::default().build(),
            body,
            None,
        );
        while let Some(item) = stream.next().await {
            item.map_err(|error| {
                anyhow!(
                    "Loading {} into the engine failed: {}",
                    archive.display(),
                    server_message(&error)
                )
            })?;
        }
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        self.create(spec, container_body(spec)).await
    }

    async fn create_run_container(&self, spec: &RunSpec) -> Result<String> {
        let mut body = container_body(&spec.container);
        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for port in &spec.ports {
            let key = format!("{}/{}", port.container, port.protocol);
            exposed.push(key.clone());
            bindings
                .entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: None,
                    host_port: Some(port.host.map(|host| host.to_string()).unwrap_or_default()),
                });
        }
        body.exposed_ports = (!exposed.is_empty()).then_some(exposed);
        if let Some(host) = body.host_config.as_mut() {
            host.init = Some(spec.init);
            host.port_bindings = (!bindings.is_empty()).then_some(bindings);
            host.device_requests = spec.gpus.map(|gpus| {
                vec![DeviceRequest {
                    count: Some(match gpus {
                        GpuRequest::All => -1,
                        GpuRequest::Count(count) => i64::from(count),
                    }),
                    capabilities: Some(vec![vec!["gpu".to_owned()]]),
                    ..Default::default()
                }]
            });
        }
        self.create(&spec.container, body).await
    }

    async fn stop_container(&self, container: &str, grace_seconds: i32) -> Result<()> {
        let options = StopContainerOptionsBuilder::default()
            .t(grace_seconds)
            .build();
        match self.docker.stop_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if matches!(status_of(&error), Some(304 | 404 | 409)) => Ok(()),
            Err(error) => Err(anyhow!(
                "Failed to stop container {container}: {}",
                server_message(&error)
            )),
        }
    }

    async fn upload_tar(&self, container: &str, dest: &str, tar: Vec<u8>) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default()
            .path(dest)
            .build();
        self.docker
            .upload_to_container(container, Some(options), body_full(tar.into()))
            .await
            .map_err(|error| {
                anyhow!(
                    "Failed to copy files into container {container} at {dest}: {}",
                    server_message(&error)
                )
            })
    }

    async fn start_container(&self, container: &str) -> Result<()> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(|error| {
                let message = server_message(&error);
                self.gpu_error(&message)
                    .unwrap_or_else(|| anyhow!("Failed to start the container: {message}"))
            })
    }

    async fn start_attached(&self, container: &str, output: LineSink<'_>) -> Result<i64> {
        let options = AttachContainerOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        // Podman refuses to attach while a stopped container is still being
        // cleaned up ("container state improper"); that lasts moments.
        let mut attempts = 0;
        let attached = loop {
            match self
                .docker
                .attach_container(container, Some(options.clone()))
                .await
            {
                Ok(attached) => break attached,
                Err(error)
                    if attempts < 40 && server_message(&error).contains("state improper") =>
                {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => {
                    bail!(
                        "Failed to attach to container {container}: {}",
                        server_message(&error)
                    )
                }
            }
        };
        let mut stream = attached.output;
        self.start_container(container).await?;
        let attached_lines = std::sync::atomic::AtomicUsize::new(0);
        let counted = |line: OutputLine| {
            attached_lines.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            output(line)
        };
        let follow = forward_output(&mut stream, &counted, "the container's output");
        let wait = self.wait_container(container);
        tokio::pin!(follow, wait);
        tokio::select! {
            followed = &mut follow => {
                followed?;
                // Podman has been seen to end the attach stream at once when
                // it attached just as the previous run was being cleaned
                // up: this run's output then comes from its log.
                if self.container_running(container).await? == Some(true) {
                    let already = attached_lines.load(std::sync::atomic::Ordering::SeqCst);
                    let follow_log = self.follow_current_run(container, already, output);
                    tokio::pin!(follow_log);
                    tokio::select! {
                        followed = &mut follow_log => {
                            followed?;
                            return wait.await;
                        }
                        exit = &mut wait => {
                            let exit = exit?;
                            let _ = tokio::time::timeout(super::contract::LOG_DRAIN_AFTER_EXIT, follow_log).await;
                            return Ok(exit);
                        }
                    }
                }
                wait.await
            }
            exit = &mut wait => {
                let exit = exit?;
                if tokio::time::timeout(super::contract::LOG_DRAIN_AFTER_EXIT, follow).await.is_err() {
                    tracing::warn!(container, "the attached output went on after the container exited; stopped following it");
                }
                Ok(exit)
            }
        }
    }

    async fn follow_output(&self, container: &str, output: LineSink<'_>) -> Result<()> {
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(container, Some(options));
        forward_output(&mut stream, output, "the container's output").await
    }

    async fn wait_container(&self, container: &str) -> Result<i64> {
        let mut stream = self.docker.wait_container(container, None);
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(error)) => Err(anyhow!(
                "Failed waiting for the container: {}",
                server_message(&error)
            )),
            None => bail!("The engine ended the wait without an exit code."),
        }
    }

    async fn kill_container(&self, container: &str) -> Result<()> {
        let options = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        match self.docker.kill_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if matches!(status_of(&error), Some(404 | 409)) => Ok(()),
            Err(error) => Err(anyhow!(
                "Failed to kill container {container}: {}",
                server_message(&error)
            )),
        }
    }

    async fn signal_container(&self, container: &str, signal: &str) -> Result<()> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker
            .kill_container(container, Some(options))
            .await
            .map_err(|error| {
                anyhow!(
                    "Failed to send {signal} to container {container}: {}",
                    server_message(&error)
                )
            })
    }

    async fn remove_container(&self, container: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if status_of(&error) == Some(404) => Ok(()),
            // 409: removal already in progress.
            Err(error) if status_of(&error) == Some(409) => Ok(()),
            Err(error) => Err(anyhow!(
                "Failed to remove container {container}: {}",
                server_message(&error)
            )),
        }
    }

    async fn download_archive(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self
            .docker
            .download_from_container(container, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(error) if status_of(&error) == Some(404) => return Ok(None),
                Err(error) => bail!(
                    "Failed to copy {path} out of the container: {}",
                    server_message(&error)
                ),
            }
        }
        Ok(Some(archive))
    }

    async fn read_file(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(archive) = self.download_archive(container, path).await? else {
            return Ok(None);
        };
        let unreadable = || format!("The engine sent an unreadable archive for {path}");
        let mut archive = tar::Archive::new(archive.as_slice());
        let mut entries = archive.entries().with_context(unreadable)?;
        let Some(entry) = entries.next() else {
            return Ok(None);
        };
        let mut entry = entry.with_context(unreadable)?;
        if !entry.header().entry_type().is_file() {
            return Ok(None);
        }
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).with_context(unreadable)?;
        Ok(Some(contents))
    }

    async fn path_exists(&self, container: &str, path: &str) -> Result<bool> {
        let options = ContainerArchiveInfoOptionsBuilder::default()
            .path(path)
            .build();
        match self
            .docker
            .get_container_archive_info(container, Some(options))
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if status_of(&error) == Some(404) => Ok(false),
            Err(error) => Err(anyhow!(
                "Failed to look for {path} in the container: {}",
                server_message(&error)
            )),
        }
    }

    async fn containers_with_labels(&self, labels: &[&str]) -> Result<Vec<String>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filter(labels))
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| anyhow!("Failed to list containers: {}", server_message(&error)))?;
        Ok(containers
            .into_iter()
            .filter_map(|container| container.id)
            .collect())
    }

    async fn container_running(&self, container: &str) -> Result<Option<bool>> {
        match self.docker.inspect_container(container, None).await {
            Ok(inspected) => Ok(Some(
                inspected
                    .state
                    .and_then(|state| state.running)
                    .unwrap_or(false),
            )),
            Err(error) if status_of(&error) == Some(404) => Ok(None),
            // Podman reports states Docker's API does not have (`stopped`
            // between a program's exit and its cleanup, `configured`); a
            // running container always reads as `running`.
            Err(BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. }) => {
                Ok(Some(false))
            }
            Err(error) => Err(anyhow!(
                "Failed to inspect container {container}: {}",
                server_message(&error)
            )),
        }
    }

    async fn exec(&self, container: &str, spec: &ExecSpec, output: LineSink<'_>) -> Result<i64> {
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(spec.cmd.clone()),
            env: Some(
                spec.env
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect(),
            ),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            ..Default::default()
        };
        let created = self
            .docker
            .create_exec(container, config)
            .await
            .map_err(|error| {
                anyhow!(
                    "Failed to run a command in the container: {}",
                    server_message(&error)
                )
            })?;
        let started = self
            .docker
            .start_exec(&created.id, None::<StartExecOptions>)
            .await
            .map_err(|error| {
                anyhow!(
                    "Failed to run a command in the container: {}",
                    server_message(&error)
                )
            })?;
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = started
        {
            let forwarding = forward_output(&mut stream, output, "the command's output");
            let exited = self.exec_exited(&created.id);
            tokio::pin!(forwarding, exited);
            tokio::select! {
                forwarded = &mut forwarding => forwarded?,
                () = &mut exited => {
                    // The command ended: the rest of its output is given
                    // the same grace as a container's (see
                    // `super::contract::LOG_DRAIN_AFTER_EXIT`), then the stream is
                    // dropped rather than waited on forever.
                    match tokio::time::timeout(super::contract::LOG_DRAIN_AFTER_EXIT, forwarding).await {
                        Ok(forwarded) => forwarded?,
                        Err(_) => tracing::warn!(
                            exec = created.id.as_str(),
                            "the engine's output stream went on {} s after the command ended; stopped reading it",
                            super::contract::LOG_DRAIN_AFTER_EXIT.as_secs()
                        ),
                    }
                }
            }
        }
        let inspected = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|error| {
                anyhow!(
                    "Failed to read the command's exit code: {}",
                    server_message(&error)
                )
            })?;
        inspected
            .exit_code
            .ok_or_else(|| anyhow!("The engine reported no exit code for the command."))
    }

    async fn ensure_volume(&self, name: &str, labels: &[(String, String)]) -> Result<()> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels.iter().cloned().collect()),
            ..Default::default()
        };
        // Creating an existing volume with the same name returns it.
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|error| {
                anyhow!(
                    "Failed to create volume `{name}`: {}",
                    server_message(&error)
                )
            })
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match self.docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if status_of(&error) == Some(404) => Ok(()),
            Err(error) => Err(anyhow!(
                "Failed to remove volume `{name}`: {}",
                server_message(&error)
            )),
        }
    }

    async fn volumes_with_label(&self, label: &str) -> Result<Vec<String>> {
        let options = ListVolumesOptionsBuilder::default()
            .filters(&label_filter(&[label]))
            .build();
        let response = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|error| anyhow!("Failed to list volumes: {}", server_message(&error)))?;
        Ok(response
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| volume.name)
            .collect())
    }
}

impl DockerEngine {
    /// Creates a container from `body`, named as `spec` asks.
    async fn create(&self, spec: &ContainerSpec, mut body: ContainerCreateBody) -> Result<String> {
        let options = spec
            .name
            .as_deref()
            .map(|name| CreateContainerOptionsBuilder::default().name(name).build());
        let mut created = self
            .docker
            .create_container(options.clone(), body.clone())
            .await;
        // Podman without its init binary (Debian's `catatonit` is only
        // recommended) refuses `init`: run without it rather than fail, and
        // say how to get prompt stops back.
        if let Err(error) = &created
            && server_message(error).contains("container-init binary not found")
            && let Some(host) = body.host_config.as_mut()
        {
            tracing::warn!(
                "the engine has no init binary ({}); running without an init. Install podman's init (Debian: `apt-get install catatonit`) so stops are prompt.",
                server_message(error)
            );
            host.init = Some(false);
            created = self.docker.create_container(options, body).await;
        }
        let created = created.map_err(|error| {
            let message = server_message(&error);
            self.gpu_error(&message).unwrap_or_else(|| {
                anyhow!(
                    "Failed to create a container from `{}`: {message}",
                    spec.image
                )
            })
        })?;
        Ok(created.id)
    }

    /// Docker's answer to a GPU request without the NVIDIA runtime
    /// (`could not select device driver "" with capabilities: [[gpu]]`),
    /// turned into what to do.
    fn gpu_error(&self, message: &str) -> Option<anyhow::Error> {
        (message.contains("could not select device driver") && message.contains("gpu")).then(|| {
            anyhow!(
                "The engine at {} cannot give containers GPUs ({message}). Install the NVIDIA Container Toolkit on the engine's host (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/) and restart the engine, or remove `gpus` from the [run] table of .arca/config.toml.",
                self.endpoint
            )
        })
    }
}

/// The engine's create body for a plain container.
fn container_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mounts = spec
        .mounts
        .iter()
        .map(|mount| {
            let (typ, source) = match &mount.source {
                MountSource::HostPath(path) => (MountType::BIND, path.display().to_string()),
                MountSource::Volume(name) => (MountType::VOLUME, name.clone()),
            };
            Mount {
                target: Some(mount.target.clone()),
                source: Some(source),
                typ: Some(typ),
                read_only: Some(mount.read_only),
                ..Default::default()
            }
        })
        .collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: Some(spec.cmd.clone()),
        env: Some(
            spec.env
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
        ),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        labels: Some(spec.labels.iter().cloned().collect()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            auto_remove: Some(spec.auto_remove),
            // The engine's init as PID 1: signals reach the command and
            // a stop is prompt (no 10 s wait for a `sleep` session).
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Splits a container's or exec's output stream into lines for `output`
/// (stderr apart from the rest) until it ends.
async fn forward_output<S>(stream: &mut S, output: LineSink<'_>, what: &str) -> Result<()>
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut lines = LineSplitter::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdErr { message }) => lines.push(Stream::Stderr, &message, output),
            Ok(
                LogOutput::StdOut { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message },
            ) => lines.push(Stream::Stdout, &message, output),
            Err(error) => {
                lines.finish(output);
                bail!("Lost {what}: {}", server_message(&error));
            }
        }
    }
    lines.finish(output);
    Ok(())
}

impl DockerEngine {
    /// Follows the log of the container's current run only (lines stamped
    /// at or after its `StartedAt`), skipping the first `already` lines
    /// (those an attach stream forwarded before it ended).
    async fn follow_current_run(
        &self,
        container: &str,
        already: usize,
        output: LineSink<'_>,
    ) -> Result<()> {
        let started = self
            .docker
            .inspect_container(container, None)
            .await
            .ok()
            .and_then(|inspected| inspected.state)
            .and_then(|state| state.started_at)
            .as_deref()
            .and_then(super::run_log::parse_timestamp);
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(started.map_or(0, |(seconds, _)| seconds) as i32)
            .build();
        let mut stream = self.docker.logs(container, Some(options));
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let this_run = |line: OutputLine| {
            let (stamp, text) = super::run_log::split_timestamp(&line.text);
            if let (Some(started), Some(stamp)) = (started, stamp)
                && stamp < started
            {
                return;
            }
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < already {
                return;
            }
            output(OutputLine {
                stream: line.stream,
                text: text.to_owned(),
            });
        };
        forward_output(&mut stream, &this_run, "the container's output").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn the_engines_platform_is_its_versions_arch_and_the_hosts_when_unknown() {
        let platform = |arch| engine_platform(arch, "tcp://engine:2375").name();
        assert_eq!(platform(Some("arm64")), "linux/arm64");
        assert_eq!(platform(Some("amd64")), "linux/amd64");
        assert_eq!(platform(Some("arm")), "linux/arm/v7");
        let host = crate::platform::Platform::host().name();
        assert_eq!(platform(Some("mips64le")), host);
        assert_eq!(platform(None), host);
    }

    #[test]
    fn ansi_colours_are_dropped() {
        assert_eq!(strip_ansi("\u{1b}[91moops\n\u{1b}[0mdone"), "oops\ndone");
        assert_eq!(strip_ansi("plain · text"), "plain · text");
    }

    #[test]
    fn lines_are_split_across_chunks_and_streams() {
        let seen = Mutex::new(Vec::new());
        let sink = |line: OutputLine| seen.lock().unwrap().push(line);
        let mut splitter = LineSplitter::default();
        splitter.push(Stream::Stdout, b"hel", &sink);
        splitter.push(Stream::Stderr, b"warn\r\n", &sink);
        splitter.push(Stream::Stdout, b"lo\nwor", &sink);
        splitter.finish(&sink);
        let seen = seen.into_inner().unwrap();
        let texts: Vec<_> = seen
            .iter()
            .map(|line| (line.stream, line.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (Stream::Stderr, "warn"),
                (Stream::Stdout, "hello"),
                (Stream::Stdout, "wor")
            ]
        );
    }

    #[test]
    fn a_lone_carriage_return_ends_a_redrawn_line_at_once() {
        let seen = Mutex::new(Vec::new());
        let sink = |line: OutputLine| seen.lock().unwrap().push(line.text);
        let mut splitter = LineSplitter::default();
        splitter.push(Stream::Stderr, b"Building 1/2\r", &sink);
        assert_eq!(seen.lock().unwrap().as_slice(), ["Building 1/2"]);
        splitter.push(Stream::Stderr, b"Building 2/2\r   Finished\n\n", &sink);
        splitter.finish(&sink);
        assert_eq!(
            seen.into_inner().unwrap(),
            ["Building 1/2", "Building 2/2", "   Finished", ""]
        );
    }
}
