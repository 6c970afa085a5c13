//! Shared setup for the end-to-end Docker tests: a real engine (skipped
//! with a note when none answers, failed when `ARCA_REQUIRE_DOCKER=1`), a
//! private `ARCA_HOME` and copy of `examples/hello` per test, and a guard
//! that removes everything the test made (by label and by the store's
//! records) even when the test panics.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arca::build::CRATE_DIR_LABEL;
use arca::engine::{self, ContainerEngine, ContainerSpec, OutputLine};
use arca::store::Store;

/// The runtime base the example builds on (a local fixture image).
pub const RUNTIME_BASE: &str = "nvidia/cuda:12.8.1-runtime-ubuntu24.04";
/// The builder base it is promoted to.
pub const BUILDER_BASE: &str = "nvidia/cuda:12.8.1-devel-ubuntu24.04";
/// The loopback TCP port of the test engine (`.ci/docker-up.sh`).
pub const TCP_HOST: &str = "tcp://127.0.0.1:23750";

/// One test's world. Dropping it removes the test's containers, volumes and
/// runtime images.
pub struct DockerTest {
    pub runtime: tokio::runtime::Runtime,
    pub engine: Arc<dyn ContainerEngine>,
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
    /// The test's copy of examples/hello (canonical path).
    pub crate_dir: PathBuf,
}

/// What to do without an engine: skip (print why) or fail when required.
fn unavailable(why: &str) -> Option<DockerTest> {
    if std::env::var("ARCA_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("ARCA_REQUIRE_DOCKER=1 but {why}. Run .ci/docker-up.sh and .ci/fixtures.sh.");
    }
    eprintln!("note: skipping Docker test: {why} (run .ci/docker-up.sh and .ci/fixtures.sh)");
    None
}

impl DockerTest {
    /// A fresh world, or `None` (test skipped) when no engine or fixture
    /// images are available.
    /// The example is configured for `debian:bookworm-slim`; the tests'
    /// copy builds on the small CUDA runtime fixture (as examples/hello-cuda).
    pub fn new() -> Option<Self> {
        let test = Self::with_crate(
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

    /// A fresh world around a copy of `source` (a crate or workspace
    /// directory) at `<work>/<name>`; the crate is `<work>/<name>/<member>`
    /// (`member` empty: the copy itself).
    pub fn with_crate(source: &Path, name: &str, member: &str) -> Option<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let engine = match runtime.block_on(engine::connect()) {
            Ok(engine) => engine,
            Err(error) => return unavailable(&format!("{error:#}")),
        };
        for image in [RUNTIME_BASE, BUILDER_BASE] {
            match runtime.block_on(engine.inspect_image(image)) {
                Ok(Some(_)) => {}
                _ => return unavailable(&format!("the fixture image {image} is missing")),
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
            home,
            work,
            crate_dir,
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

    /// [`Self::build_cli`] with extra environment variables.
    pub fn build_cli_env(
        &self,
        extra: &[&str],
        docker_host: Option<&str>,
        env: &[(&str, &str)],
    ) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_arca"));
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
            .envs(env.iter().copied())
            .env("ARCA_HOME", self.home.path());
        match docker_host {
            Some(host) => command.env("DOCKER_HOST", host),
            None => command.env_remove("DOCKER_HOST"),
        };
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
        self.containers_with(&[arca::build::session::SESSION_LABEL])
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
        self.runtime.block_on(async {
            let id = self.engine.create_container(&spec).await.expect("create");
            self.engine.start_container(&id).await.expect("start");
            let lines = std::sync::Mutex::new(Vec::new());
            let sink = |line: OutputLine| lines.lock().expect("lines").push(line.text);
            let (followed, code) = tokio::join!(
                self.engine.follow_output(&id, &sink),
                self.engine.wait_container(&id)
            );
            followed.expect("output");
            let code = code.expect("wait");
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
