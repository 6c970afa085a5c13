//! End-to-end containerized builds against a real Docker engine (issue 3):
//! the example crate built into an image that runs, carries its labels and
//! loads back from its archive; reuse; rebuild after a change; compile
//! errors; cancellation; missing images; unreachable and remote engines;
//! one build per crate at a time.
//!
//! Needs `.ci/docker-up.sh` and `.ci/fixtures.sh`; without an engine each
//! test prints a note and passes, unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;

use std::sync::Mutex;

use arca::pipeline::{self, BuildEnv, BuildError, BuildEvent, BuildRequest};
use arca::plan::SettingsOverrides;
use docker::{DockerTest, Engine, RUNTIME_BASE, artifact_id, text};
use tokio_util::sync::CancellationToken;

fn request(test: &DockerTest) -> BuildRequest {
    BuildRequest {
        path: test.crate_dir.clone(),
        overrides: SettingsOverrides {
            profile: Some("release".into()),
            features: Some(vec![]),
            bin: None,
            base_image: Some(RUNTIME_BASE.into()),
            platforms: None,
        },
        host_build: false,
        force: false,
    }
}

fn the_example_builds_into_an_image_that_runs_carries_labels_and_loads_back(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let output = test.build_cli(&["--archive"], None);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for stage in [
        "==> Ensuring builder base image",
        "builder nvidia/cuda:12.8.1-devel-ubuntu24.04 · runtime nvidia/cuda:12.8.1-runtime-ubuntu24.04",
        "==> Preparing cached builder image",
        "==> Building crate inside the builder container",
        "==> Preparing runtime base image",
        "==> Assembling runtime image",
        "==> Loading image into the engine",
        "==> Saving artifact archive",
    ] {
        assert!(
            stderr.contains(stage),
            "missing `{stage}` in\n{}",
            text(&output)
        );
    }
    let id = artifact_id(&output);
    let artifact = test.store().select(&id).expect("record")[0].clone();
    let metadata = &artifact.metadata;
    assert_eq!(metadata.local_tag, format!("arca-local:hello-{id}"));
    assert_eq!(metadata.base_image, RUNTIME_BASE);
    assert_eq!(metadata.runtime, engine.name());
    assert!(artifact.dir.join("inputs.json").is_file());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&metadata.local_tag), "{stdout}");
    assert!(
        stdout.contains(&artifact.archive_path().display().to_string()),
        "{stdout}"
    );

    let (printed, code) = test.run_image(&metadata.local_tag);
    assert_eq!((printed.as_str(), code), ("Hello from hello 0.1.0!", 0));
    // The engine's own CLI runs it too (`podman run` under podman).
    // The status names the engine the image was built with.
    let status = test
        .arca()
        .args(["status", "--json"])
        .arg(&test.crate_dir)
        .output()
        .expect("arca status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["engine"], engine.name(), "{status}");
    assert!(
        stderr.contains(&format!(" · {} at ", engine.name())),
        "the first stage names the engine: {stderr}"
    );
    let (printed, code) = test.run_with_cli(&metadata.local_tag);
    assert_eq!(
        (printed.as_str(), code),
        ("Hello from hello 0.1.0!", Some(0))
    );

    let image = test
        .runtime
        .block_on(test.engine.inspect_image(&metadata.local_tag))
        .expect("inspect")
        .expect("image exists");
    let labels: std::collections::HashMap<_, _> = image.labels.into_iter().collect();
    for (key, value) in metadata.image_labels() {
        assert_eq!(labels.get(&key), Some(&value), "label {key}");
    }
    assert_eq!(labels["io.khoek.arca.artifact-id"], id);
    assert_eq!(labels["io.khoek.arca.crate-name"], "hello");

    // The archive (asked for with --archive) is a complete image: remove
    // the image, load it back, run it.
    test.runtime
        .block_on(test.engine.remove_image(&metadata.local_tag))
        .expect("remove image");
    assert!(
        test.runtime
            .block_on(test.engine.inspect_image(&metadata.local_tag))
            .expect("inspect")
            .is_none()
    );
    test.runtime
        .block_on(test.engine.load_image(&artifact.archive_path()))
        .expect("load archive");
    let (printed, _) = test.run_image(&metadata.local_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");
    assert!(test.leftover_build_containers().is_empty());
}

fn an_unchanged_crate_is_reused_and_a_one_line_change_rebuilds_with_the_cached_builder(
    engine: Engine,
) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let first = test.build_cli(&[], None);
    assert!(first.status.success(), "{}", text(&first));
    let first_id = artifact_id(&first);

    // Up to date: answered without the engine at all (an unreachable engine
    // proves that no container ran).
    let again = test.build_cli(&[], Some("tcp://127.0.0.1:1"));
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("is up to date"),
        "{}",
        text(&again)
    );
    assert_eq!(artifact_id(&again), first_id);
    assert_eq!(test.store().list().artifacts.len(), 1);

    let main_rs = test.crate_dir.join("src/main.rs");
    let source = std::fs::read_to_string(&main_rs).expect("main.rs");
    std::fs::write(&main_rs, source.replace("Hello from", "Goodbye from")).expect("edit");
    let rebuilt = test.build_cli(&[], None);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    let stderr = String::from_utf8_lossy(&rebuilt.stderr);
    assert!(stderr.contains("Builder image cache hit."), "{stderr}");
    assert!(stderr.contains("Builder base image cache hit."), "{stderr}");
    let rebuilt_id = artifact_id(&rebuilt);
    assert_ne!(rebuilt_id, first_id);
    let newest = test
        .store()
        .newest_for_crate(&test.crate_dir)
        .expect("newest");
    assert_eq!(newest.metadata.artifact_id, rebuilt_id);
    let (printed, _) = test.run_image(&newest.metadata.local_tag);
    assert_eq!(printed, "Goodbye from hello 0.1.0!");

    // --force rebuilds although nothing changed.
    let forced = test.build_cli(&["--force"], None);
    assert!(forced.status.success(), "{}", text(&forced));
    assert_ne!(artifact_id(&forced), rebuilt_id);
    // All those builds ran in one warm session container.
    assert_eq!(test.sessions().len(), 1);
    assert!(test.leftover_build_containers().is_empty());
}

fn a_compile_error_shows_the_compiler_message_and_stores_nothing(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let main_rs = test.crate_dir.join("src/main.rs");
    let source = std::fs::read_to_string(&main_rs).expect("main.rs");
    std::fs::write(
        &main_rs,
        source.replace(
            "fn main() {",
            "fn main() {\n    let broken: u32 = \"text\";",
        ),
    )
    .expect("edit");
    let output = test.build_cli(&[], None);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error[E0308]: mismatched types"),
        "{stderr}"
    );
    assert!(stderr.contains("src/main.rs:4:"), "{stderr}");
    assert!(
        stderr.contains("Cargo could not build `hello`: mismatched types"),
        "{stderr}"
    );
    assert!(test.store().list().artifacts.is_empty());

    // The library keeps the diagnostics structured, on host paths.
    let env = BuildEnv::at(test.home.path()).with_engine(test.engine.clone());
    let result = test.runtime.block_on(pipeline::package(
        &env,
        &request(&test),
        &|_| {},
        &CancellationToken::new(),
    ));
    let Err(BuildError::Compile { diagnostics, .. }) = result else {
        panic!("expected a compile error, got {result:?}");
    };
    let error = diagnostics
        .iter()
        .find(|diagnostic| diagnostic.level == "error")
        .expect("an error diagnostic");
    assert_eq!(error.code.as_deref(), Some("E0308"));
    let span = error
        .spans
        .iter()
        .find(|span| span.is_primary)
        .expect("span");
    assert_eq!(span.file, main_rs);
    assert_eq!(span.line_start, 4);
    assert!(test.store().list().artifacts.is_empty());
    assert!(test.leftover_build_containers().is_empty());
}

fn cancelling_mid_build_leaves_no_container_record_or_staging_dir(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    // A build script that takes a minute keeps the cargo container busy.
    std::fs::write(
        test.crate_dir.join("build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(60)); }\n",
    )
    .expect("build.rs");
    let env = BuildEnv::at(test.home.path()).with_engine(test.engine.clone());
    let cancel = CancellationToken::new();
    let seen = Mutex::new(Vec::new());
    let events = |event: BuildEvent| {
        if let BuildEvent::Output { line } = &event
            && line.contains("Compiling hello")
        {
            cancel.cancel();
        }
        seen.lock().expect("events").push(event);
    };
    let started = std::time::Instant::now();
    let result = test
        .runtime
        .block_on(pipeline::package(&env, &request(&test), &events, &cancel));
    assert!(
        matches!(result, Err(BuildError::Cancelled)),
        "expected cancellation, got {result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(45));
    assert!(seen.lock().expect("events").iter().any(|event| matches!(
        event,
        BuildEvent::Stage { title, .. } if title == "Building crate inside the builder container"
    )));
    assert!(test.leftover_containers().is_empty(), "containers left");
    let store_root = test.home.path().join("containers");
    let entries: Vec<_> = std::fs::read_dir(&store_root)
        .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "store has {entries:?}");
}

fn a_missing_base_image_is_a_clear_pull_error_naming_it(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let output = test
        .arca()
        .args(["build", "rust"])
        .arg(&test.crate_dir)
        .args([
            "--profile",
            "release",
            "--features",
            "",
            "--base-image",
            "arca-test/does-not-exist:1",
        ])
        .output()
        .expect("run arca");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Cannot pull image `arca-test/does-not-exist:1`"),
        "{stderr}"
    );
    assert!(test.store().list().artifacts.is_empty());
    assert!(test.leftover_build_containers().is_empty());
}

#[test]
fn an_unreachable_engine_is_one_clear_message() {
    let home = tempfile::tempdir().expect("home");
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["build", "rust"])
        .arg(&crate_dir)
        .args([
            "--profile",
            "release",
            "--features",
            "",
            "--base-image",
            RUNTIME_BASE,
        ])
        .env("ARCA_HOME", home.path())
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .expect("run arca");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Cannot reach the Docker engine at tcp://127.0.0.1:1: Connection refused"),
        "{stderr}"
    );
    assert!(stderr.contains("set DOCKER_HOST"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
}

#[test]
fn with_no_engine_found_the_message_names_each_socket_and_how_to_start_podman() {
    if std::path::Path::new("/run/podman/podman.sock").exists() {
        eprintln!("note: skipping: a rootful podman socket exists on this machine");
        return;
    }
    let home = tempfile::tempdir().expect("home");
    let runtime_dir = tempfile::tempdir().expect("runtime dir");
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["build", "rust"])
        .arg(&crate_dir)
        .args(["--profile", "release", "--features", "", "--base-image"])
        .arg(RUNTIME_BASE)
        .args(["--engine", "podman"])
        .env("ARCA_HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime_dir.path())
        .env_remove("DOCKER_HOST")
        .env_remove("CONTAINER_HOST")
        .output()
        .expect("run arca");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rootless = format!(
        "unix://{}/podman/podman.sock (podman's rootless socket): no socket",
        runtime_dir.path().display()
    );
    for expected in [
        "Cannot reach a podman engine; tried unix:///run/podman/podman.sock (podman's rootful socket): no socket; ",
        rootless.as_str(),
        "`systemctl --user start podman.socket`",
        "`podman system service --time=0 &`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in {stderr}"
        );
    }
    // --engine podman never falls back to the Docker socket.
    assert!(!stderr.contains("docker.sock"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["build", "rust"])
        .arg(&crate_dir)
        .env("ARCA_HOME", home.path())
        .env("ARCA_ENGINE", "containerd")
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run arca");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "ARCA_ENGINE is `containerd`, which is not an engine: use `docker` or `podman`"
        ),
        "{}",
        text(&output)
    );
}

fn an_engine_of_another_kind_than_asked_for_is_refused_naming_both(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let (asked, asked_display, found_display) = match engine {
        Engine::Docker => ("podman", "podman", "Docker"),
        Engine::Podman => ("docker", "Docker", "podman"),
    };
    let endpoint = test.engine.endpoint().to_owned();
    let output = test.build_cli(&["--engine", asked], Some(&endpoint));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected =
        format!("The engine at {endpoint} is {found_display}, but {asked_display} was asked for");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(test.store().list().artifacts.is_empty());
}

fn a_thin_archive_loads_exactly_when_the_engine_says_it_accepts_them(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    // A one-file layer on the busybox fixture, which the engine holds.
    let tag = format!("arca-test/thin:{}", test.store().new_artifact_id());
    let mut context = arca::engine::tar_context::TarContext::new();
    context
        .add_file(
            "Containerfile",
            b"FROM arca-test/busybox:latest\nCOPY marker /marker\n",
            0o644,
        )
        .expect("containerfile");
    context
        .add_file("marker", b"thin\n", 0o644)
        .expect("marker");
    let context = context.finish().expect("context");
    struct RemoveImage<'a>(&'a DockerTest, String);
    impl Drop for RemoveImage<'_> {
        fn drop(&mut self) {
            let _ = self.0.runtime.block_on(self.0.engine.remove_image(&self.1));
        }
    }
    let _remove = RemoveImage(&test, tag.clone());
    test.runtime
        .block_on(test.engine.build_image(&tag, context, &|_| {}))
        .expect("build the two-layer image");
    let full = test.work.path().join("full.tar");
    test.runtime
        .block_on(test.engine.export_image(&tag, &full, &|_| {}))
        .expect("export");

    // The same archive without the base layer's tar.
    let mut archive = tar::Archive::new(std::fs::File::open(&full).expect("open"));
    let entries: Vec<(tar::Header, Vec<u8>)> = archive
        .entries()
        .expect("entries")
        .map(|entry| {
            let mut entry = entry.expect("entry");
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).expect("read");
            (entry.header().clone(), data)
        })
        .collect();
    let manifest = entries
        .iter()
        .find(|(header, _)| header.path().expect("path").to_str() == Some("manifest.json"))
        .expect("manifest.json");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.1).expect("manifest");
    let layers = manifest[0]["Layers"].as_array().expect("layers");
    assert!(layers.len() >= 2, "{manifest}");
    let base_layer = layers[0].as_str().expect("layer path").to_owned();
    let thin = test.work.path().join("thin.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&thin).expect("thin"));
    let mut omitted = false;
    for (header, data) in &entries {
        if header.path().expect("path").to_str() == Some(base_layer.as_str()) {
            omitted = true;
            continue;
        }
        builder
            .append(header, data.as_slice())
            .expect("append entry");
    }
    builder.into_inner().expect("finish thin archive");
    assert!(omitted, "{base_layer} not in the archive");

    test.runtime
        .block_on(test.engine.remove_image(&tag))
        .expect("remove");
    let loaded = test.runtime.block_on(test.engine.load_image(&thin));
    assert_eq!(
        loaded.is_ok(),
        test.engine.accepts_thin_archives(),
        "{} says accepts_thin_archives = {}, but loading a thin archive gave {loaded:?}",
        engine.name(),
        test.engine.accepts_thin_archives()
    );
    assert_eq!(
        test.engine.accepts_thin_archives(),
        engine == Engine::Docker
    );
    if loaded.is_ok() {
        assert!(
            test.runtime
                .block_on(test.engine.inspect_image(&tag))
                .expect("inspect")
                .is_some(),
            "the thin archive loaded as {tag}"
        );
    }
}

fn a_remote_engine_over_tcp_builds_with_shipped_source_and_volume_caches(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let Some(remote) = test.remote_host() else {
        assert!(
            std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "ARCA_REQUIRE_DOCKER=1 but the engine does not listen on {}",
            docker::TCP_HOST
        );
        eprintln!(
            "note: skipping: the engine does not listen on {}",
            docker::TCP_HOST
        );
        return;
    };
    let output = test.build_cli(&[], Some(&remote));
    assert!(output.status.success(), "{}", text(&output));
    let id = artifact_id(&output);
    let artifact = test.store().select(&id).expect("record")[0].clone();
    let (printed, _) = test.run_image(&artifact.metadata.local_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");
    let volumes = test
        .runtime
        .block_on(test.engine.volumes_with_label(&format!(
            "{}={}",
            pipeline::CRATE_DIR_LABEL,
            test.crate_dir.display()
        )))
        .expect("volumes");
    assert_eq!(volumes.len(), 1, "one target-cache volume: {volumes:?}");
    assert!(test.sessions().is_empty(), "remote builds use no session");
    // The remote build records its inputs too, so it is reused.
    let again = test.build_cli(&[], Some(&remote));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("is up to date"),
        "{}",
        text(&again)
    );
    assert!(test.leftover_build_containers().is_empty());
}

fn a_host_build_is_packaged_the_same_way(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let output = test.build_cli(&["--host-build"], None);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("==> Building crate on the host"),
        "{stderr}"
    );
    assert!(!stderr.contains("builder container"), "{stderr}");
    let id = artifact_id(&output);
    let artifact = test.store().select(&id).expect("record")[0].clone();
    let (printed, _) = test.run_image(&artifact.metadata.local_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");
}

fn a_host_build_reports_cargos_progress(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    // A build script that takes a while: cargo draws its progress line
    // only after half a second, however fast this machine compiles.
    std::fs::write(
        test.crate_dir.join("build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_millis(1500)); }\n",
    )
    .expect("write build.rs");
    let env = BuildEnv::at(test.home.path()).with_engine(test.engine.clone());
    let request = BuildRequest {
        host_build: true,
        ..request(&test)
    };
    let cancel = CancellationToken::new();
    let compiled = Mutex::new(Vec::new());
    let output = Mutex::new(Vec::new());
    let events = |event: BuildEvent| match event {
        BuildEvent::Progress {
            task: pipeline::ProgressTask::Compile { crate_name },
            current,
            total,
            ..
        } => compiled
            .lock()
            .expect("progress")
            .push((crate_name, current, total)),
        BuildEvent::Output { line } => output.lock().expect("output").push(line),
        _ => {}
    };
    let outcome = test
        .runtime
        .block_on(pipeline::package(&env, &request, &events, &cancel))
        .expect("host build");
    assert!(!outcome.up_to_date);
    let compiled = compiled.into_inner().expect("progress");
    let output = output.into_inner().expect("output");
    // Cargo's own counts (`Building [==> ] 1/2`), as for container builds;
    // its redrawn progress line never shows as output.
    assert!(
        compiled.iter().any(|(name, current, total)| name == "hello"
            && total.is_some_and(|total| total >= 1 && *current <= total)),
        "no compile progress: {compiled:?}\noutput: {output:#?}"
    );
    assert!(
        !output.iter().any(|line| line.contains("Building [")),
        "{output:#?}"
    );
}

fn a_base_without_a_ca_bundle_gets_a_certificates_layer_before_the_binary(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    // A runtime base without /etc/ssl/certs/ca-certificates.crt, made
    // through the engine from the busybox fixture. Its "package manager"
    // (an `apk` script; no network here) writes a bundle, as a real
    // `apk add ca-certificates` would.
    let tag = format!("arca-test/no-ca:{}", test.store().new_artifact_id());
    let mut context = arca::engine::tar_context::TarContext::new();
    context
        .add_file(
            "Containerfile",
            format!(
                "FROM {RUNTIME_BASE}\nRUN rm /etc/ssl/certs/ca-certificates.crt && printf '#!/bin/sh\\necho arca-test-bundle > /etc/ssl/certs/ca-certificates.crt\\n' > /bin/apk && chmod 0755 /bin/apk\n"
            )
            .as_bytes(),
            0o644,
        )
        .expect("containerfile");
    let context = context.finish().expect("context");
    test.runtime
        .block_on(test.engine.build_image(&tag, context, &|_| {}))
        .expect("build the no-CA base");
    struct RemoveImage<'a>(&'a DockerTest, String);
    impl Drop for RemoveImage<'_> {
        fn drop(&mut self) {
            let _ = self.0.runtime.block_on(self.0.engine.remove_image(&self.1));
        }
    }
    let _remove = RemoveImage(&test, tag.clone());

    let build = |base: &str| {
        test.host_build_command(base)
            .arg("--force")
            .output()
            .expect("run arca")
    };
    let output = build(&tag);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("installing ca-certificates (once per base)"),
        "{}",
        text(&output)
    );
    let artifact = test.store().select(&artifact_id(&output)).expect("record")[0].clone();
    let (image, _) = arca::image::layout::read(&artifact.dir.join("image")).expect("layout");
    let base_layers = 2; // the fixture's layer and the RUN above
    assert_eq!(image.layers.len(), base_layers + 2, "CA layer, then binary");
    let layer = std::fs::read(
        artifact
            .dir
            .join("image/blobs/sha256")
            .join(image.layers[base_layers].digest.hex()),
    )
    .expect("CA layer");
    let mut entries = tar::Archive::new(layer.as_slice());
    let bundle = entries
        .entries()
        .expect("tar")
        .flatten()
        .find(|entry| {
            entry.path().expect("path").to_string_lossy() == "etc/ssl/certs/ca-certificates.crt"
        })
        .map(|mut entry| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).expect("read");
            text
        });
    assert_eq!(bundle.as_deref(), Some("arca-test-bundle\n"));
    let (printed, _) = test.run_image(&artifact.metadata.local_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");

    // Cached per base: the next build installs nothing and reuses the layer.
    let again = build(&tag);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !text(&again).contains("installing ca-certificates"),
        "{}",
        text(&again)
    );
    let artifact = test.store().select(&artifact_id(&again)).expect("record")[0].clone();
    let (second, _) = arca::image::layout::read(&artifact.dir.join("image")).expect("layout");
    assert_eq!(second.layers[base_layers], image.layers[base_layers]);

    // The fixture base has the bundle: no CA layer at all.
    let output = build(RUNTIME_BASE);
    assert!(output.status.success(), "{}", text(&output));
    let artifact = test.store().select(&artifact_id(&output)).expect("record")[0].clone();
    let (image, _) = arca::image::layout::read(&artifact.dir.join("image")).expect("layout");
    assert_eq!(image.layers.len(), 2, "base layer and binary layer only");
}

fn two_builds_of_one_crate_run_one_at_a_time(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let env = BuildEnv::at(test.home.path()).with_engine(test.engine.clone());
    let request = request(&test);
    let cancel = CancellationToken::new();
    let waited = Mutex::new(false);
    let second_events = |event: BuildEvent| {
        if let BuildEvent::Notice { message } = &event
            && message.contains("waiting for it to finish")
        {
            *waited.lock().expect("flag") = true;
        }
    };
    let exported = Mutex::new(Vec::new());
    let first_events = |event: BuildEvent| {
        if let BuildEvent::Progress {
            task: pipeline::ProgressTask::Export { .. },
            ..
        } = &event
        {
            exported.lock().expect("progress").push(event.percent());
        }
    };
    let archive = pipeline::PackageOptions { archive: true };
    let (first, second) = test.runtime.block_on(async {
        let first = pipeline::package_with(&env, &request, archive, &first_events, &cancel);
        let second = async {
            // Let the first build take the crate's lock.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            pipeline::package(&env, &request, &second_events, &cancel).await
        };
        tokio::join!(first, second)
    });
    let first = first.expect("first build");
    let second = second.expect("second build");
    assert!(!first.up_to_date);
    assert!(
        second.up_to_date,
        "the second build reuses the first's artifact"
    );
    assert_eq!(
        first.artifact.metadata.artifact_id,
        second.artifact.metadata.artifact_id
    );
    assert!(*waited.lock().expect("flag"));
    let exported = exported.into_inner().expect("progress");
    assert_eq!(exported.last(), Some(&Some(100.0)), "{exported:?}");
    assert!(exported.len() <= 202, "throttled: {}", exported.len());
}

fn cancelling_at_every_stage_leaves_nothing(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let env = BuildEnv::at(test.home.path()).with_engine(test.engine.clone());
    let blobs_dir = test.home.path().join("blobs/sha256");
    let blobs_before = |_: &str| -> std::collections::BTreeSet<std::ffi::OsString> {
        std::fs::read_dir(&blobs_dir)
            .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
            .unwrap_or_default()
    };
    for stage in [
        "Ensuring builder base image",
        "Preparing cached builder image",
        "Building crate inside the builder container",
        "Preparing runtime base image",
        "Assembling runtime image",
        "Loading image into the engine",
        "Saving artifact archive",
    ] {
        let before = blobs_before(stage);
        let cancel = CancellationToken::new();
        let runtime_tag = Mutex::new(None::<String>);
        let events = |event: BuildEvent| {
            if let BuildEvent::Stage { title, detail } = &event {
                if let Some(tag) = detail.strip_prefix("tag ") {
                    *runtime_tag.lock().expect("tag") = Some(tag.to_owned());
                }
                if title == stage {
                    cancel.cancel();
                }
            }
        };
        let options = pipeline::PackageOptions { archive: true };
        let result = test.runtime.block_on(pipeline::package_with(
            &env,
            &request(&test),
            options,
            &events,
            &cancel,
        ));
        assert!(
            matches!(result, Err(BuildError::Cancelled)),
            "cancel at `{stage}`: {result:?}"
        );
        // No blob of the cancelled build stays (a base imported before the
        // cancel is kept: it is a complete, verified cache entry).
        let after = blobs_before(stage);
        let base_blobs: std::collections::BTreeSet<_> =
            std::fs::read_dir(test.home.path().join("bases"))
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|entry| std::fs::read(entry.path()).ok())
                        .filter_map(|bytes| {
                            serde_json::from_slice::<arca::image::base::BaseRecord>(&bytes).ok()
                        })
                        .flat_map(|record| {
                            record
                                .blobs()
                                .into_iter()
                                .map(|blob| std::ffi::OsString::from(blob.digest.hex()))
                                .collect::<Vec<_>>()
                        })
                        .collect()
                })
                .unwrap_or_default();
        let new: Vec<_> = after
            .difference(&before)
            .filter(|name| !base_blobs.contains(*name))
            .collect();
        assert!(new.is_empty(), "blobs left after `{stage}`: {new:?}");
        let tmp: Vec<_> = std::fs::read_dir(test.home.path().join("blobs/tmp"))
            .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
            .unwrap_or_default();
        assert!(tmp.is_empty(), "temporary blobs after `{stage}`: {tmp:?}");
        assert!(
            test.leftover_containers().is_empty(),
            "containers after `{stage}`"
        );
        let store_root = test.home.path().join("containers");
        let entries: Vec<_> = std::fs::read_dir(&store_root)
            .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
            .unwrap_or_default();
        assert!(entries.is_empty(), "store after `{stage}`: {entries:?}");
        if let Some(tag) = runtime_tag.into_inner().expect("tag") {
            let image = test
                .runtime
                .block_on(test.engine.inspect_image(&tag))
                .expect("inspect");
            assert!(image.is_none(), "runtime image {tag} left after `{stage}`");
        }
    }
}

fn without_sessions_nothing_outlives_a_build(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let output = test.build_cli_env(&[], None, &[("ARCA_BUILD_SESSIONS", "0")]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        test.leftover_containers().is_empty(),
        "{:?}",
        test.leftover_containers()
    );
    let artifact = test.store().select(&artifact_id(&output)).expect("record")[0].clone();
    let (printed, _) = test.run_image(&artifact.metadata.local_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");
}

#[test]
fn a_malformed_base_image_is_refused_before_anything_runs() {
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    let crate_dir = work.path().join("hello");
    docker::copy_tree(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &crate_dir,
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["build", "rust"])
        .arg(&crate_dir)
        .args([
            "--profile",
            "release",
            "--features",
            "",
            "--base-image",
            "busybox\nRUN touch /pwned",
        ])
        .env("ARCA_HOME", home.path())
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .expect("run arca");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a valid image reference"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Cannot reach"),
        "refused before connecting: {stderr}"
    );
}

fn a_builder_base_without_cargo_or_package_manager_fails_clearly(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    // The busybox fixture has neither cargo nor a package manager: the
    // builder recipe must fail and say so, and leave no builder image.
    let base = "arca-test/busybox:latest";
    let output = test
        .arca()
        .args(["build", "rust"])
        .arg(&test.crate_dir)
        .args([
            "--profile",
            "release",
            "--features",
            "",
            "--base-image",
            base,
        ])
        .output()
        .expect("run arca");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the builder base image has no known package manager"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "The builder recipe for `{base}` failed at step: install build tools (the base image has no cargo)"
        )) && stderr.contains("no builder image was tagged"),
        "{stderr}"
    );
    let builder = arca::plan::shaped_builder_image_tag(base, &Default::default());
    assert!(
        test.runtime
            .block_on(test.engine.inspect_image(&builder))
            .expect("inspect")
            .is_none(),
        "no half-made builder image"
    );
    assert!(test.store().list().artifacts.is_empty());
    assert!(test.leftover_containers().is_empty());
}

fn pruning_old_artifacts_removes_their_records_and_images(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let output = test.build_cli(&[], None);
    assert!(output.status.success(), "{}", text(&output));
    let id = artifact_id(&output);
    let artifact = test.store().select(&id).expect("record")[0].clone();
    let tag = artifact.metadata.local_tag.clone();
    let arca = |args: &[&str]| test.arca().args(args).output().expect("run arca");

    // Younger than the cutoff: kept.
    let output = arca(&["prune", "local", "--hours", "1"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(test.store().list().artifacts.len(), 1);

    // Made old: its record and its image go.
    let record = artifact.dir.join("metadata.toml");
    let aged = std::fs::read_to_string(&record).expect("record").replace(
        &format!(
            "created_at_epoch_ms = {}",
            artifact.metadata.created_at_epoch_ms
        ),
        "created_at_epoch_ms = 1000",
    );
    std::fs::write(&record, aged).expect("age the record");
    // Old but the crate's current artifact: kept unless asked.
    let output = arca(&["prune", "local", "--days", "1"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(test.store().list().artifacts.len(), 1);
    let output = arca(&["prune", "local", "--days", "1", "--include-current"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains(&format!("Removed {id}")),
        "{}",
        text(&output)
    );
    assert!(test.store().list().artifacts.is_empty());
    let image = test
        .runtime
        .block_on(test.engine.inspect_image(&tag))
        .expect("inspect");
    assert!(image.is_none(), "image {tag} is still there");
}

docker::engine_tests! {
    the_example_builds_into_an_image_that_runs_carries_labels_and_loads_back: [docker, podman];
    an_unchanged_crate_is_reused_and_a_one_line_change_rebuilds_with_the_cached_builder: [docker, podman];
    a_compile_error_shows_the_compiler_message_and_stores_nothing: [docker];
    cancelling_mid_build_leaves_no_container_record_or_staging_dir: [docker, podman];
    a_missing_base_image_is_a_clear_pull_error_naming_it: [docker, podman];
    a_remote_engine_over_tcp_builds_with_shipped_source_and_volume_caches: [docker, podman];
    a_host_build_is_packaged_the_same_way: [docker];
    a_host_build_reports_cargos_progress: [docker];
    a_base_without_a_ca_bundle_gets_a_certificates_layer_before_the_binary: [docker];
    two_builds_of_one_crate_run_one_at_a_time: [docker];
    cancelling_at_every_stage_leaves_nothing: [docker, podman];
    without_sessions_nothing_outlives_a_build: [docker];
    the_source_is_mounted_read_only_and_only_caches_are_writable: [docker];
    a_builder_base_without_cargo_or_package_manager_fails_clearly: [docker, podman];
    pruning_old_artifacts_removes_their_records_and_images: [docker, podman];
    an_engine_of_another_kind_than_asked_for_is_refused_naming_both: [docker, podman];
    a_thin_archive_loads_exactly_when_the_engine_says_it_accepts_them: [docker, podman];
}

/// The build container (the warm session, which outlives the build) sees
/// the crate's source read-only, and may write only to Arca's caches (the
/// ARCHITECTURE.md invariant), read from the engine's own account of its
/// mounts.
fn the_source_is_mounted_read_only_and_only_caches_are_writable(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let output = test.build_cli(&[], None);
    assert!(output.status.success(), "{}", text(&output));
    let docker = docker::docker_cli;
    let crate_label = format!(
        "label={}={}",
        pipeline::CRATE_DIR_LABEL,
        test.crate_dir.display()
    );
    let session = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label={}", pipeline::session::SESSION_LABEL),
        "--filter",
        &crate_label,
    ]);
    assert!(!session.is_empty(), "the warm session runs after the build");
    let mounts = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}}|{{.Source}}|{{.Destination}}|{{.RW}}\n{{end}}",
        &session,
    ]);
    let mounts: Vec<Vec<&str>> = mounts
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.trim().split('|').collect())
        .collect();
    let source = mounts
        .iter()
        .find(|mount| mount[0] == "bind" && test.crate_dir.starts_with(mount[1]))
        .unwrap_or_else(|| panic!("no mount of the crate's source in {mounts:?}"));
    assert_eq!(source[3], "false", "the source is read-only: {source:?}");
    let home = test.home.path().canonicalize().unwrap();
    for mount in mounts.iter().filter(|mount| mount[3] == "true") {
        assert!(
            mount[0] == "volume" || std::path::Path::new(mount[1]).starts_with(&home),
            "a writable mount outside ARCA_HOME's caches: {mount:?} (all: {mounts:?})"
        );
    }
}
