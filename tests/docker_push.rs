//! End to end: `arca build rust` the example crate with the real Docker
//! engine, `arca push` the artifact to a loopback registry, then pull it back
//! through the engine and run it. Skipped with a note without an engine or
//! the registry tools; failed when `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;
#[path = "common/registry.rs"]
mod registry;

use std::process::Command;

/// Removes the pulled reference even when the test fails (only that name:
/// an image that is also a fixture keeps its other tags).
struct PulledImage(String);

impl Drop for PulledImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

#[test]
fn a_built_artifact_pushed_to_a_registry_pulls_and_runs() {
    if !registry::tools_present() {
        return;
    }
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    let built = test.build_cli(&[], None);
    assert!(
        built.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let registry = registry::Registry::start(None, None);
    let artifact = test
        .store()
        .newest_for_crate(&test.crate_dir)
        .expect("an artifact");
    let destination = format!("{}/e2e/hello", registry.address);
    let pushed = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args([
            "push",
            &artifact.metadata.artifact_id,
            "--to",
            &destination,
            "--json",
        ])
        .env("ARCA_HOME", test.home.path())
        .env("HOME", test.work.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "push failed: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&pushed.stdout).unwrap();
    let reference = result["ref"].as_str().unwrap().to_owned();

    // Docker pulls it by digest from the loopback registry and runs it.
    let image = PulledImage(reference.clone());
    let pull = Command::new("docker")
        .args(["pull", &image.0])
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "docker pull {reference}: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let run = Command::new("docker")
        .args(["run", "--rm", &image.0])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "Hello from hello 0.1.0!"
    );
    let record = test.store().newest_for_crate(&test.crate_dir).unwrap();
    assert_eq!(
        record.metadata.uploaded_ref.as_deref(),
        Some(reference.as_str())
    );
}

#[test]
fn a_layout_written_by_skopeo_pushes_and_runs() {
    if !registry::tools_present() {
        return;
    }
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    // Another tool's OCI layout (gzip layers) as an artifact's image.
    let store = test.store();
    let artifact = arca::registry::fixture::write_artifact(
        &store,
        "skopeo01",
        &test.crate_dir,
        &[arca::registry::fixture::layer_tar(&[("placeholder", b"x")])],
        arca::registry::fixture::Form::Layout,
    )
    .unwrap();
    let layout = artifact.dir.join("image");
    std::fs::remove_dir_all(&layout).unwrap();
    let copied = Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("docker-daemon:{}", docker::RUNTIME_BASE))
        .arg(format!("oci:{}:base", layout.display()))
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );

    let registry = registry::Registry::start(None, None);
    let pushed = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args([
            "push",
            "skopeo01",
            "--to",
            &format!("{}/e2e/base", registry.address),
            "--json",
        ])
        .env("ARCA_HOME", test.home.path())
        .env("HOME", test.work.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&pushed.stdout).unwrap();
    let image = PulledImage(result["ref"].as_str().unwrap().to_owned());
    let pull = Command::new("docker")
        .args(["pull", &image.0])
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let run = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--entrypoint",
            "/bin/echo",
            &image.0,
            "pushed-ok",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "pushed-ok",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
