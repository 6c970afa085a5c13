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

/// The example crate built for real, or `None` (skipped with a note) without
/// the registry tools or an engine.
fn built_example() -> Option<docker::DockerTest> {
    if !registry::tools_present() {
        return None;
    }
    let test = docker::DockerTest::new()?;
    let built = test.build_cli(&[], None);
    assert!(
        built.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(test)
}

#[test]
fn a_built_artifact_pushed_to_a_registry_pulls_and_runs() {
    let Some(test) = built_example() else {
        return;
    };
    let registry = registry::Registry::start(None, None);
    let artifact = test
        .store()
        .newest_for_crate(&test.crate_dir)
        .expect("an artifact");
    let destination = format!("{}/e2e/hello", registry.address);
    let result = push_json(&test, &artifact.metadata.artifact_id, &destination, &[]);
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
    let result = push_json(
        &test,
        "skopeo01",
        &format!("{}/e2e/base", registry.address),
        &[],
    );
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

/// `arca push SELECTOR --to DESTINATION --json EXTRA...` in the test's
/// home; the parsed answer (the push must succeed).
fn push_json(
    test: &docker::DockerTest,
    selector: &str,
    destination: &str,
    extra: &[&str],
) -> serde_json::Value {
    let pushed = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["push", selector, "--to", destination, "--json"])
        .args(extra)
        .env("ARCA_HOME", test.home.path())
        .env("HOME", test.work.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "push to {destination} failed: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    serde_json::from_slice(&pushed.stdout).unwrap()
}

/// `skopeo inspect --raw` of a reference, parsed; `None` when skopeo finds
/// nothing there.
fn skopeo_raw(reference: &str) -> Option<serde_json::Value> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).expect("skopeo prints JSON"))
}

/// The one file an artifact at `reference` holds, pulled by oras (the
/// oras-py client of `.ci/sbom-setup.sh`'s venv); `None`, with a note, when
/// the venv is missing (a failure under `ARCA_REQUIRE_DOCKER=1`).
fn oras_pull(reference: &str) -> Option<Vec<u8>> {
    let venv = std::env::var_os("ARCA_SBOM_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/cache/arca-sbom/venv"));
    let python = venv.join("bin/python");
    if !python.is_file() {
        assert!(
            std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "ARCA_REQUIRE_DOCKER=1 but the venv {} with oras is missing: run .ci/sbom-setup.sh",
            venv.display()
        );
        eprintln!(
            "note: no oras venv at {}; skipping the oras read-back",
            venv.display()
        );
        return None;
    }
    let out = tempfile::tempdir().unwrap();
    let pulled = Command::new(python)
        .args([
            "-c",
            "import sys, oras.client; print('\\n'.join(oras.client.OrasClient(insecure=True).pull(target=sys.argv[1], outdir=sys.argv[2])))",
            reference,
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        pulled.status.success(),
        "oras pull {reference}: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let files: Vec<_> = String::from_utf8_lossy(&pulled.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(files.len(), 1, "oras pulled {files:?}");
    Some(std::fs::read(&files[0]).unwrap())
}

/// `arca sbom` (or `--provenance`) of the test's crate: the stored bytes.
fn stored_document(test: &docker::DockerTest, provenance: bool) -> Vec<u8> {
    let file = test.work.path().join("document.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_arca"));
    command
        .arg("sbom")
        .arg(&test.crate_dir)
        .arg("-o")
        .arg(&file)
        .env("ARCA_HOME", test.home.path());
    if provenance {
        command.arg("--provenance");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "arca sbom: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&file).unwrap()
}

/// The SBOM and provenance go with the image (issue 20): on Debian's
/// registry, which has no referrers API, they are listed under the
/// distribution spec's `sha256-<hex>` fallback tag, as skopeo reads it; the
/// documents in the registry's own storage are the stored ones byte for
/// byte, and oras reads them back; a second push sends nothing;
/// `--no-attest` pushes the image alone; before a registry with the OCI 1.1
/// referrers API (`tests/support/registry_proxy.py referrers-api` in front
/// of the real one, which lacks it) no fallback tag is written; a registry
/// that refuses manifests with a `subject` still gets the image, with one
/// warning.
#[test]
fn the_sbom_and_provenance_attach_to_the_pushed_image() {
    let Some(test) = built_example() else {
        return;
    };
    let registry = registry::Registry::start(None, None);
    let crate_dir = &test.crate_dir.display().to_string();
    let destination = format!("{}/attest/hello", registry.address);
    let first = push_json(&test, crate_dir, &destination, &[]);
    assert_eq!(
        first["attached"],
        serde_json::json!(["application/spdx+json", "application/vnd.in-toto+json"]),
        "{first}"
    );
    let reference = first["ref"].as_str().unwrap();
    let (_, digest) = reference.split_once('@').unwrap();
    let fallback_tag = digest.replace(':', "-");
    assert_eq!(first["referrersTag"], fallback_tag.as_str());

    let index = skopeo_raw(&format!("{destination}:{fallback_tag}"))
        .expect("the fallback tag holds the referrers index");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    for (artifact_type, provenance) in [
        ("application/spdx+json", false),
        ("application/vnd.in-toto+json", true),
    ] {
        let entry = entries
            .iter()
            .find(|entry| entry["artifactType"] == artifact_type)
            .unwrap_or_else(|| panic!("no {artifact_type} in {index}"));
        let manifest = skopeo_raw(&format!(
            "{destination}@{}",
            entry["digest"].as_str().unwrap()
        ))
        .expect("the artifact manifest is in the registry");
        assert_eq!(manifest["subject"]["digest"], digest, "{manifest}");
        assert_eq!(manifest["artifactType"], artifact_type);
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let in_registry = std::fs::read(registry.blob_data(layer)).unwrap();
        let stored = stored_document(&test, provenance);
        assert_eq!(
            in_registry, stored,
            "the registry holds the stored {artifact_type} byte for byte"
        );
        if let Some(pulled) = oras_pull(&format!(
            "{destination}@{}",
            entry["digest"].as_str().unwrap()
        )) {
            assert_eq!(pulled, stored, "oras reads back the stored {artifact_type}");
        }
    }

    // Again: every blob is there, the index already lists both.
    let again = push_json(&test, crate_dir, &destination, &[]);
    assert_eq!(again["bytesSent"], 0, "{again}");
    assert!(again["referrersTag"].is_null(), "{again}");
    assert_eq!(
        skopeo_raw(&format!("{destination}:{fallback_tag}")).unwrap(),
        index
    );

    // `--no-attest`: the image alone.
    let alone = format!("{}/attest/alone", registry.address);
    let pushed = push_json(&test, crate_dir, &alone, &["--no-attest"]);
    assert!(pushed["attached"].is_null(), "{pushed}");
    assert!(skopeo_raw(&format!("{alone}:{fallback_tag}")).is_none());

    // A registry with the referrers API lists them itself: no fallback tag.
    let (proxy, port) = registry::registry_proxy(&registry.address, "referrers-api");
    let native = format!("127.0.0.1:{port}/attest/native");
    let listed_natively = push_json(&test, crate_dir, &native, &[]);
    let referrers = Command::new("curl")
        .args(["-fsS"])
        .arg(format!(
            "http://127.0.0.1:{port}/v2/attest/native/referrers/{digest}"
        ))
        .output()
        .unwrap();
    drop(proxy);
    assert_eq!(
        listed_natively["attached"], first["attached"],
        "{listed_natively}"
    );
    assert!(
        listed_natively["referrersTag"].is_null(),
        "no fallback tag where the API lists them: {listed_natively}"
    );
    let listed: serde_json::Value = serde_json::from_slice(&referrers.stdout).unwrap();
    assert_eq!(
        listed["manifests"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert!(
        skopeo_raw(&format!(
            "{}/attest/native:{fallback_tag}",
            registry.address
        ))
        .is_none()
    );

    // A registry without OCI 1.1 manifests: the image lands, one warning.
    let (proxy, port) = registry::registry_proxy(&registry.address, "refuse-subject");
    let refusing = format!("127.0.0.1:{port}/attest/refused");
    let refused = push_json(&test, crate_dir, &refusing, &[]);
    drop(proxy);
    assert_eq!(
        refused["ref"].as_str().unwrap().split_once('@').unwrap().1,
        digest
    );
    let warnings = refused["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{refused}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.contains("refused its SBOM and provenance") && warning.contains("--no-attest"),
        "{warning}"
    );
    assert!(
        skopeo_raw(&format!("{}/attest/refused@{digest}", registry.address)).is_some(),
        "the image itself is in the registry"
    );
}
