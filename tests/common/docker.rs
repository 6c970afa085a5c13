//! Shared setup for the end-to-end engine tests: a real engine, Docker or
//! podman (skipped with a note when none answers, failed when
//! `ARCA_REQUIRE_DOCKER=1`), a private `ARCA_HOME` and copy of
//! `examples/hello` per test, and a guard that removes everything the test
//! made (by label and by the store's records) even when the test panics.
//!
//! [`engine_tests!`] runs one test body per engine (`NAME::docker`,
//! `NAME::podman`): the same body, parameterized by [`Engine`]. Under
//! podman the CLI finds the engine by discovery (`ARCA_ENGINE=podman`, no
//! `DOCKER_HOST`, podman's rootless socket path under a private
//! `XDG_RUNTIME_DIR` linked to the CI service, `.ci/podman-setup.sh`).

#![allow(dead_code)]

// Also loaded by the other shared module: each test file may use either or both.
#[allow(clippy::duplicate_mod)]
#[path = "watchdog.rs"]
pub mod watchdog;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use arca::engine::{self, ContainerEngine, ContainerSpec, OutputLine};
use arca::pipeline::CRATE_DIR_LABEL;
use arca::store::Store;

/// The runtime base the example builds on (a local fixture image).
pub const RUNTIME_BASE: &str = "nvidia/cuda:12.8.1-runtime-ubuntu24.04";
/// The builder base it is promoted to.
pub const BUILDER_BASE: &str = "nvidia/cuda:12.8.1-devel-ubuntu24.04";
/// The loopback TCP port of the test engine (`.ci/docker-up.sh`).
pub const TCP_HOST: &str = "tcp://127.0.0.1:23750";

/// podman's compatible API socket in CI (`.ci/podman-setup.sh`);
/// `ARCA_TEST_PODMAN_SOCKET` overrides it.
pub const PODMAN_SOCKET: &str = "/run/arca-podman.sock";

/// The engines the end-to-end tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// `docker` or `podman`: the recorded `runtime`, the engine's CLI.
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }

    /// From a test name's last part ([`engine_tests!`]).
    pub fn from_name(name: &str) -> Self {
        match name {
            "docker" => Self::Docker,
            "podman" => Self::Podman,
            other => panic!("no engine named {other}"),
        }
    }

    fn podman_socket() -> PathBuf {
        std::env::var_os("ARCA_TEST_PODMAN_SOCKET")
            .map(PathBuf::from)
            .unwrap_or_else(|| PODMAN_SOCKET.into())
    }
}

/// Runs each test body once per listed engine, as `NAME::docker` and
/// `NAME::podman` (`cargo test podman` runs every podman variant). Each
/// body is a `fn NAME(engine: Engine)` in the test file.
///
/// ```ignore
/// docker::engine_tests! {
///     the_example_builds: [docker, podman];
///     a_host_build_is_packaged: [docker];
/// }
/// ```
#[allow(unused_macros)]
macro_rules! engine_tests {
    ($($name:ident: [$($engine:ident),+ $(,)?];)+) => {
        $(
            mod $name {
                $(
                    #[test]
                    fn $engine() {
                        super::$name(crate::docker::Engine::from_name(stringify!($engine)));
                    }
                )+
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use engine_tests;

/// One test's world. Dropping it removes the test's containers, volumes and
/// runtime images.
pub struct DockerTest {
    pub runtime: tokio::runtime::Runtime,
    pub engine: Arc<dyn ContainerEngine>,
    /// Which engine this world runs against.
    pub kind: Engine,
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
    /// The test's copy of examples/hello (canonical path).
    pub crate_dir: PathBuf,
    /// Ends the test binary with a report if the test hangs.
    pub watchdog: watchdog::Watchdog,
}

/// What to do without an engine: skip (print why) or fail when required.
fn unavailable(kind: Engine, why: &str) -> Option<DockerTest> {
    let setup = match kind {
        Engine::Docker => ".ci/docker-up.sh and .ci/fixtures.sh",
        Engine::Podman => ".ci/docker-up.sh, .ci/fixtures.sh and .ci/podman-setup.sh",
    };
    if std::env::var("ARCA_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("ARCA_REQUIRE_DOCKER=1 but {why}. Run {setup}.");
    }
    eprintln!("note: skipping {} test: {why} (run {setup})", kind.name());
    None
}

impl DockerTest {
    /// A fresh world on Docker, or `None` (test skipped) when no engine or
    /// fixture images are available.
    pub fn new() -> Option<Self> {
        Self::on(Engine::Docker)
    }

    /// A fresh world on `kind` around a copy of examples/hello, or `None`
    /// (test skipped) when that engine or the fixture images are not
    /// available. The example is configured for `debian:bookworm-slim`; the
    /// tests' copy builds on the small CUDA runtime fixture (as
    /// examples/hello-cuda).
    pub fn on(kind: Engine) -> Option<Self> {
        let test = Self::with_crate_on(
            kind,
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
            "hello",
            "",
        )?;
        std::fs::write(
            test.crate_dir.join(".arca/config.toml"),
            format!(
                "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"{RUNTIME_BASE}\"\n"
            ),
        )
        .expect("write the test config");
        Some(test)
    }

    /// [`Self::with_crate_on`] on Docker.
    pub fn with_crate(source: &Path, name: &str, member: &str) -> Option<Self> {
        Self::with_crate_on(Engine::Docker, source, name, member)
    }

    /// A fresh world on `kind` around a copy of `source` (a crate or
    /// workspace directory) at `<work>/<name>`; the crate is
    /// `<work>/<name>/<member>` (`member` empty: the copy itself).
    pub fn with_crate_on(kind: Engine, source: &Path, name: &str, member: &str) -> Option<Self> {
        let watchdog = watchdog::Watchdog::arm();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let connected = match kind {
            Engine::Docker => runtime.block_on(engine::connect()),
            Engine::Podman => runtime.block_on(engine::connect_at(&format!(
                "unix://{}",
                Engine::podman_socket().display()
            ))),
        };
        let engine = match connected {
            Ok(engine) => engine,
            Err(error) => return unavailable(kind, &format!("{error:#}")),
        };
        if engine.runtime_name() != kind.name() {
            return unavailable(
                kind,
                &format!(
                    "the engine at {} is {}, not {}",
                    engine.endpoint(),
                    engine.runtime_name(),
                    kind.name()
                ),
            );
        }
        for image in [RUNTIME_BASE, BUILDER_BASE] {
            match runtime.block_on(engine.inspect_image(image)) {
                Ok(Some(_)) => {}
                _ => {
                    return unavailable(kind, &format!("the fixture image {image} is missing"));
                }
            }
        }
        let home = tempfile::tempdir().expect("home tempdir");
        let work = tempfile::tempdir().expect("work tempdir");
        copy_tree(source, &work.path().join(name));
        let crate_dir = work.path().join(name).join(member);
        let crate_dir = crate_dir.canonicalize().expect("canonical crate dir");
        Some(Self {
            runtime,
            engine,
            kind,
            home,
            work,
            crate_dir,
            watchdog,
        })
    }

    pub fn store(&self) -> Store {
        Store::at(self.home.path().join("containers"))
    }

    /// `arca build rust <crate> --profile release --features '' --base-image <runtime base>`
    /// plus `extra`, with this test's ARCA_HOME.
    pub fn build_cli(&self, extra: &[&str], docker_host: Option<&str>) -> Output {
        self.build_cli_env(extra, docker_host, &[])
    }

    /// `arca` with this test's ARCA_HOME, finding this test's engine by
    /// itself: the default socket for Docker; for podman, discovery
    /// (`ARCA_ENGINE=podman`, no `DOCKER_HOST`, the rootless socket path
    /// under a private `XDG_RUNTIME_DIR`).
    pub fn arca(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_arca"));
        command
            .env("ARCA_HOME", self.home.path())
            .env_remove("DOCKER_HOST")
            .env_remove("CONTAINER_HOST")
            .env_remove("ARCA_ENGINE");
        if self.kind == Engine::Podman {
            command
                .env("ARCA_ENGINE", "podman")
                .env("XDG_RUNTIME_DIR", self.podman_runtime_dir());
        }
        command
    }

    /// A private `XDG_RUNTIME_DIR` whose `podman/podman.sock` is the CI
    /// service's socket, as a rootless user's would be.
    fn podman_runtime_dir(&self) -> PathBuf {
        let dir = self.work.path().join("xdg-runtime");
        let link = dir.join("podman/podman.sock");
        if !link.exists() {
            std::fs::create_dir_all(link.parent().expect("parent")).expect("runtime dir");
            std::os::unix::fs::symlink(Engine::podman_socket(), &link).expect("socket link");
        }
        dir
    }

    /// A `tcp://` endpoint of this test's engine, so builds take the remote
    /// path (source shipped as a tar, caches in volumes), or `None` when
    /// there is none: Docker's loopback port (`.ci/docker-up.sh`); for
    /// podman, a plain TCP relay to its socket, started here.
    pub fn remote_host(&self) -> Option<String> {
        match self.kind {
            Engine::Docker => std::net::TcpStream::connect("127.0.0.1:23750")
                .is_ok()
                .then(|| TCP_HOST.to_owned()),
            Engine::Podman => Some(tcp_relay(Engine::podman_socket())),
        }
    }

    /// Runs an image with the engine's own CLI (`docker run --rm` or
    /// `podman run --rm`); returns its stdout and exit code.
    pub fn run_with_cli(&self, image: &str) -> (String, Option<i32>) {
        self.watchdog
            .step(format!("{} run --rm {image}", self.kind.name()));
        let label = format!("{CRATE_DIR_LABEL}={}", self.crate_dir.display());
        let output = Command::new(self.kind.name())
            .args(["run", "--rm", "--label", &label, image])
            .output()
            .unwrap_or_else(|error| panic!("run {}: {error}", self.kind.name()));
        assert!(
            output.status.success(),
            "{} run {image}: {}",
            self.kind.name(),
            text(&output)
        );
        (
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            output.status.code(),
        )
    }

    /// `arca build rust <crate> --profile release --features '' --host-build
    /// --base-image <base>` with this test's ARCA_HOME, not yet run: a host
    /// build, so the runtime base is needed by nothing but the image. Add
    /// arguments and environment, then run it.
    pub fn host_build_command(&self, base: &str) -> Command {
        self.watchdog
            .step(format!("arca build rust --host-build on {base}"));
        let mut command = self.arca();
        command.args(["build", "rust"]).arg(&self.crate_dir).args([
            "--profile",
            "release",
            "--features",
            "",
            "--host-build",
            "--base-image",
            base,
        ]);
        command
    }

    /// [`Self::build_cli`] with extra environment variables.
    pub fn build_cli_env(
        &self,
        extra: &[&str],
        docker_host: Option<&str>,
        env: &[(&str, &str)],
    ) -> Output {
        self.watchdog.step(format!("arca build rust {extra:?}"));
        let mut command = self.arca();
        command
            .args(["build", "rust"])
            .arg(&self.crate_dir)
            .args([
                "--profile",
                "release",
                "--features",
                "",
                "--base-image",
                RUNTIME_BASE,
            ])
            .args(extra)
            .envs(env.iter().copied());
        if let Some(host) = docker_host {
            command.env("DOCKER_HOST", host);
        }
        command.output().expect("run arca")
    }

    /// Every container of the test's crate (build containers and the warm
    /// build session).
    pub fn leftover_containers(&self) -> Vec<String> {
        self.containers_with(&[])
    }

    /// The test crate's per-build containers (not its warm session).
    pub fn leftover_build_containers(&self) -> Vec<String> {
        self.containers_with(&[arca::engine::BUILD_LABEL])
    }

    /// The test crate's warm build sessions.
    pub fn sessions(&self) -> Vec<String> {
        self.containers_with(&[arca::pipeline::session::SESSION_LABEL])
    }

    fn containers_with(&self, extra: &[&str]) -> Vec<String> {
        let label = format!("{CRATE_DIR_LABEL}={}", self.crate_dir.display());
        let mut labels = vec![label.as_str()];
        labels.extend_from_slice(extra);
        self.runtime
            .block_on(self.engine.containers_with_labels(&labels))
            .expect("list containers")
    }

    /// Runs an image (its entrypoint, no arguments) and returns its stdout
    /// and exit code. The container is removed afterwards.
    pub fn run_image(&self, image: &str) -> (String, i64) {
        let spec = ContainerSpec {
            image: image.to_owned(),
            labels: vec![(
                CRATE_DIR_LABEL.to_owned(),
                self.crate_dir.display().to_string(),
            )],
            ..Default::default()
        };
        self.watchdog
            .step(format!("running {image} through the API"));
        self.runtime.block_on(async {
            let id = self.engine.create_container(&spec).await.expect("create");
            self.engine.start_container(&id).await.expect("start");
            let lines = std::sync::Mutex::new(Vec::new());
            let sink = |line: OutputLine| lines.lock().expect("lines").push(line.text);
            let code = engine::output_until_exit(self.engine.as_ref(), &id, &sink)
                .await
                .expect("output and exit code");
            self.engine.remove_container(&id).await.expect("remove");
            (lines.into_inner().expect("lines").join("\n"), code)
        })
    }
}

impl Drop for DockerTest {
    fn drop(&mut self) {
        let engine = self.engine.clone();
        let crate_label = format!("{CRATE_DIR_LABEL}={}", self.crate_dir.display());
        let tags: Vec<String> = self
            .store()
            .list()
            .artifacts
            .into_iter()
            .map(|artifact| artifact.metadata.local_tag)
            .collect();
        // Runs on the test's runtime from a plain thread, so it also works
        // while a panic unwinds out of `block_on`.
        let handle = self.runtime.handle().clone();
        let cleanup = std::thread::spawn(move || {
            handle.block_on(async {
                engine::remove_labelled_containers(engine.as_ref(), &crate_label).await;
                for tag in tags {
                    let _ = engine.remove_image(&tag).await;
                }
                if let Ok(volumes) = engine.volumes_with_label(&crate_label).await {
                    for volume in volumes {
                        let _ = engine.remove_volume(&volume).await;
                    }
                }
            })
        });
        let _ = cleanup.join();
    }
}

/// A loopback TCP port relaying each connection to the unix socket at
/// `socket` (a stand-in for a remote engine: the engine is real, only the
/// transport is TCP). One relay per socket per test process; its threads
/// live as long as the process.
pub fn tcp_relay(socket: PathBuf) -> String {
    static RELAY: OnceLock<String> = OnceLock::new();
    RELAY
        .get_or_init(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("relay port");
            let port = listener.local_addr().expect("relay address").port();
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let Ok(engine) = std::os::unix::net::UnixStream::connect(&socket) else {
                        continue;
                    };
                    relay_both_ways(client, engine);
                }
            });
            format!("tcp://127.0.0.1:{port}")
        })
        .clone()
}

/// Copies bytes between a TCP client and the engine's socket, each way on
/// its own thread, until either side ends.
pub fn relay_both_ways(client: std::net::TcpStream, engine: std::os::unix::net::UnixStream) {
    let (mut client_in, mut engine_in) = (
        client.try_clone().expect("clone"),
        engine.try_clone().expect("clone"),
    );
    let (mut client_out, mut engine_out) = (client, engine);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut engine_out);
        let _ = engine_out.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut engine_in, &mut client_out);
        let _ = client_out.shutdown(std::net::Shutdown::Write);
    });
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy file");
        }
    }
}

/// Regular files below `dir` (recursively), as paths relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                found.push(
                    path.strip_prefix(root)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                );
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found
}

pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The one artifact id a successful build printed (`... artifact <id>`).
pub fn artifact_id(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.contains("artifact "))
        .unwrap_or_else(|| panic!("no artifact line in\n{}", text(output)));
    let after = &line[line.find("artifact ").expect("artifact") + "artifact ".len()..];
    after
        .chars()
        .take_while(|ch| ch.is_ascii_alphanumeric())
        .collect()
}

/// Runs the `docker` CLI (tests that read what only it shows, such as a
/// container's mounts); its trimmed stdout. Fails the test on an error.
#[allow(dead_code)]
pub fn docker_cli(args: &[&str]) -> String {
    let output = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The cargo home shared by the tests that build crates with crates.io
/// dependencies (`ARCA_TEST_CARGO_CACHE`, default
/// `/var/cache/arca-crates/cargo-home` when writable, else one under the
/// temp dir): downloads are cached across tests and runs.
pub fn shared_cargo_home() -> PathBuf {
    let dir = std::env::var_os("ARCA_TEST_CARGO_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/arca-crates/cargo-home"));
    if std::fs::create_dir_all(&dir).is_ok() {
        return dir;
    }
    let fallback = std::env::temp_dir().join("arca-crates-cargo-home");
    std::fs::create_dir_all(&fallback).expect("cargo cache dir");
    fallback
}
