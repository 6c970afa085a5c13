//! A base image the engine lacks enters the layer store from its registry,
//! fetched by Arca itself (issue 9): a real loopback `docker-registry`
//! holding a fixture base put there by skopeo, a real engine that never
//! sees the base's reference. The image runs and carries its labels; the
//! registry's own access log shows Arca's blob GETs (and nobody else's); a
//! second build contacts the registry not at all; a blob corrupted in the
//! registry's storage is refused with a clear error and leaves nothing;
//! an unreachable registry (or a refused login) falls back to the engine's
//! pull and, when that fails too, the error names both causes; over TLS
//! with a login the secret reaches no log, store file or image; the fetch
//! reports bytes per layer, a cancel leaves no artifact, and a layer
//! deleted from the store is fetched again.
//!
//! Needs `.ci/docker-up.sh`, `.ci/fixtures.sh`, `.ci/registry-setup.sh`
//! (and `.ci/podman-setup.sh` for the podman variant); without them each
//! test prints a note and passes, unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;
#[path = "common/registry.rs"]
mod registry;

use std::path::Path;
use std::process::Output;

use std::sync::Mutex;

use arca::blobs::BlobStore;
use arca::pipeline::{self, BuildError, BuildEvent, ProgressTask};
use docker::{DockerTest, Engine, RUNTIME_BASE, artifact_id, files_under, text};
use registry::{Registry, tools_present};
use tokio_util::sync::CancellationToken;

/// [`DockerTest::host_build_command`] on `base` plus `extra`, logging at
/// debug level.
fn build(test: &DockerTest, base: &str, extra: &[&str]) -> Output {
    test.host_build_command(base)
        .args(extra)
        .env("RUST_LOG", "arca=debug")
        .output()
        .expect("run arca")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn in_engine(test: &DockerTest, reference: &str) -> bool {
    test.runtime
        .block_on(test.engine.inspect_image(reference))
        .expect("inspect")
        .is_some()
}

fn labels(test: &DockerTest, tag: &str) -> serde_json::Value {
    let output = std::process::Command::new(test.kind.name())
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            tag,
        ])
        .output()
        .expect("inspect");
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).expect("labels JSON")
}

fn edit_main(test: &DockerTest) {
    let main_rs = test.crate_dir.join("src/main.rs");
    let source = std::fs::read_to_string(&main_rs).expect("main.rs");
    assert!(source.contains("Hello from"));
    std::fs::write(&main_rs, source.replace("Hello from", "Hi from")).expect("edit");
}

/// Blob GETs in the registry's access log, and whether every request came
/// from Arca (its user agent), not from the engine.
fn blob_gets(registry: &Registry) -> usize {
    registry
        .requests()
        .iter()
        .filter(|line| line.contains("\"GET /v2/") && line.contains("/blobs/sha256:"))
        .count()
}

fn a_base_only_in_a_registry_is_fetched_by_arca(engine: Engine) {
    if !tools_present() {
        return;
    }
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    let registry = Registry::start(None, None);
    let base = registry.put_image(&format!("docker-daemon:{RUNTIME_BASE}"), "base:1");
    assert!(!in_engine(&test, &base), "the engine must lack {base}");
    let before = registry.requests().len();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();

    let first = build(&test, &base, &[]);
    assert!(first.status.success(), "{}", text(&first));
    let log = stderr(&first);
    assert!(
        log.contains("fetching it from") && log.contains("Base image fetched from"),
        "{log}"
    );
    assert!(
        log.contains("Loaded the full image into the engine"),
        "{log}"
    );
    let id = artifact_id(&first);
    let artifact = test.store().select(&id).expect("record")[0].clone();
    let tag = artifact.metadata.local_tag.clone();
    let (printed, code) = test.run_image(&tag);
    assert_eq!((printed.as_str(), code), ("Hello from hello 0.1.0!", 0));
    let labels = labels(&test, &tag);
    assert_eq!(labels["io.khoek.arca.artifact-id"], id.as_str(), "{labels}");
    assert_eq!(
        labels["io.khoek.arca.base-image"],
        base.as_str(),
        "{labels}"
    );

    // The registry served the manifest and every blob to Arca; the engine
    // asked it for nothing and holds no image under the base's name.
    let requests: Vec<String> = registry.requests()[before..].to_vec();
    let manifest = skopeo_manifest(&base);
    let layer_count = manifest["layers"].as_array().expect("layers").len();
    assert!(
        blob_gets(&registry) > layer_count,
        "config and {layer_count} layer GETs expected: {requests:#?}"
    );
    for line in &requests {
        assert!(line.contains("arca/"), "a request not from Arca: {line}");
    }
    assert!(!in_engine(&test, &base), "the engine pulled {base}");

    // The store holds the base uncompressed, recorded like an engine
    // import; the artifact's layout links it.
    let blobs = BlobStore::at(test.home.path().join("blobs"));
    let bases = arca::image::base::Bases::at(test.home.path().join("bases"));
    let record = bases.find_by_reference(&base).expect("base record");
    assert_eq!(record.layers.len(), layer_count);
    assert!(record.complete(&blobs).expect("complete"));
    // The fixture base carries a CA bundle: found in its stored layers,
    // without the engine holding the base.
    assert_eq!(
        record.ca_bundle,
        Some(arca::image::base::CaBundle::InBase),
        "{record:?}"
    );
    let image = arca::image::layout::read(&artifact.dir.join("image"))
        .expect("layout")
        .0;
    assert_eq!(image.layers[..layer_count], record.layers[..]);

    // A one-line change builds without contacting the registry at all.
    let seen = registry.requests().len();
    edit_main(&test);
    let second = build(&test, &base, &[]);
    assert!(second.status.success(), "{}", text(&second));
    let log = stderr(&second);
    assert!(log.contains("using the stored base"), "{log}");
    // Docker holds the base's layers through the first image: only the new
    // layer is sent. Podman takes no thin archive: the full one again.
    let expected = match test.kind {
        Engine::Docker => "Loaded into the engine: 1 new layer(s)",
        Engine::Podman => "Loaded the full image into the engine",
    };
    assert!(log.contains(expected), "{log}");
    assert_eq!(
        registry.requests()[seen..],
        [] as [String; 0],
        "the second build contacted the registry"
    );
    let tag = test.store().select(&artifact_id(&second)).expect("record")[0]
        .metadata
        .local_tag
        .clone();
    assert_eq!(test.run_image(&tag).0, "Hi from hello 0.1.0!");
    assert!(!in_engine(&test, &base));
    if test.kind == Engine::Docker {
        // Docker's own event log: no pull of anything in this registry.
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 1;
        let events = std::process::Command::new("docker")
            .args([
                "events",
                "--filter",
                "event=pull",
                "--format",
                "{{.Actor.ID}}",
            ])
            .args([
                "--since",
                &started.to_string(),
                "--until",
                &until.to_string(),
            ])
            .output()
            .expect("docker events");
        assert!(events.status.success(), "{}", text(&events));
        let pulls = String::from_utf8_lossy(&events.stdout);
        assert!(
            !pulls.contains(&registry.address),
            "the engine pulled from the registry: {pulls}"
        );
    }
}

fn skopeo_manifest(reference: &str) -> serde_json::Value {
    let output = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo inspect");
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).expect("manifest JSON")
}

/// Nothing of a failed build: no record, no blob, no base record, no
/// temporary file, no container, no image under the base's name.
fn assert_nothing_left(test: &DockerTest, base: &str) {
    assert!(
        test.store().list().artifacts.is_empty(),
        "a record was left"
    );
    let home = test.home.path();
    assert_eq!(files_under(&home.join("blobs/sha256")), [] as [String; 0]);
    assert_eq!(files_under(&home.join("blobs/tmp")), [] as [String; 0]);
    let records: Vec<String> = files_under(&home.join("bases"))
        .into_iter()
        .filter(|name| name.ends_with(".json"))
        .collect();
    assert_eq!(records, [] as [String; 0], "a base record was left");
    assert_eq!(test.leftover_containers(), [] as [String; 0]);
    assert!(!in_engine(test, base));
}

#[test]
fn a_blob_corrupted_in_the_registry_is_refused_and_leaves_nothing() {
    if !tools_present() {
        return;
    }
    let Some(test) = DockerTest::new() else {
        return;
    };
    let registry = Registry::start(None, None);
    let base = registry.put_image(&format!("docker-daemon:{RUNTIME_BASE}"), "corrupt:1");
    let manifest = skopeo_manifest(&base);
    let largest = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .max_by_key(|layer| layer["size"].as_u64())
        .expect("a layer")["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    // Flip one byte in the middle, keeping the size.
    let data = registry.blob_data(&largest);
    let mut bytes = std::fs::read(&data).expect("blob data");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&data, bytes).expect("corrupt");

    let output = build(&test, &base, &[]);
    assert!(!output.status.success(), "{}", text(&output));
    let log = stderr(&output);
    assert!(log.contains(&base), "the error names the image: {log}");
    assert!(
        log.contains("do not match its digest") || log.contains("not a valid gzip stream"),
        "{log}"
    );
    assert!(log.contains(&largest), "the error names the layer: {log}");
    // No fallback hid it: the engine was not asked to pull.
    assert!(!log.contains("asking the engine to pull"), "{log}");
    assert_nothing_left(&test, &base);
}

#[test]
fn an_unreachable_registry_falls_back_to_the_engine_and_both_causes_are_named() {
    if !tools_present() {
        return;
    }
    let Some(test) = DockerTest::new() else {
        return;
    };
    // A loopback port nothing listens on.
    let port = registry::free_port();
    let base = format!("127.0.0.1:{port}/gone:1");
    let output = build(&test, &base, &[]);
    assert!(!output.status.success(), "{}", text(&output));
    let log = stderr(&output);
    assert!(log.contains("asking the engine to pull it"), "{log}");
    assert!(
        log.contains(&format!("Cannot get the base image `{base}`"))
            && log.contains("Arca's own fetch from its registry failed (cannot reach")
            && log.contains("and so did the engine's pull"),
        "{log}"
    );
    assert_nothing_left(&test, &base);
}

#[test]
fn a_tls_registry_with_a_login_serves_the_base_and_the_secret_goes_nowhere() {
    if !tools_present() {
        return;
    }
    let Some(test) = DockerTest::new() else {
        return;
    };
    let certs = tempfile::tempdir().expect("certs");
    let tls = registry::make_tls(certs.path());
    let password = "correct horse battery";
    let registry = Registry::start(Some(&tls), Some(("alice", password)));
    let skopeo_certs = tempfile::tempdir().expect("skopeo certs");
    std::fs::copy(&tls.ca, skopeo_certs.path().join("ca.crt")).expect("ca");
    let creds = format!("alice:{password}");
    let base = registry.put_image_with(
        &format!("docker-daemon:{RUNTIME_BASE}"),
        "secure/base:1",
        &[
            "--dest-creds",
            &creds,
            "--dest-cert-dir",
            skopeo_certs.path().to_str().expect("utf-8"),
        ],
    );
    let ca = tls.ca.display().to_string();
    let login = |auth_file: Option<&Path>| {
        let mut command = test.arca();
        command
            .args(["build", "rust"])
            .arg(&test.crate_dir)
            .args([
                "--profile",
                "release",
                "--features",
                "",
                "--host-build",
                "--base-image",
                &base,
            ])
            .env("SSL_CERT_FILE", &ca)
            .env("RUST_LOG", "trace")
            .env("DOCKER_CONFIG", test.work.path().join("no-docker-config"));
        match auth_file {
            Some(file) => command.env("REGISTRY_AUTH_FILE", file),
            None => command.env("REGISTRY_AUTH_FILE", test.work.path().join("none.json")),
        };
        test.watchdog.step("arca build rust on a TLS registry");
        command.output().expect("run arca")
    };

    // No login: Arca's fetch is refused, the engine's pull fails too (it
    // trusts neither the CA nor has a login); the error names both.
    let refused = login(None);
    assert!(!refused.status.success(), "{}", text(&refused));
    let log = stderr(&refused);
    assert!(
        log.contains("refused an anonymous pull") && log.contains("and so did the engine's pull"),
        "{log}"
    );
    assert!(test.store().list().artifacts.is_empty());

    // The login from REGISTRY_AUTH_FILE: fetched over TLS, verified.
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&creds);
    let auth_file = test.work.path().join("auth.json");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{encoded}"}}}}}}"#,
            registry.address
        ),
    )
    .expect("auth file");
    let built = login(Some(&auth_file));
    assert!(built.status.success(), "{}", text(&built));
    let log = stderr(&built);
    assert!(log.contains("Base image fetched from"), "{log}");
    assert!(log.len() > 1000, "trace logs were written");
    let id = artifact_id(&built);
    let tag = test.store().select(&id).expect("record")[0]
        .metadata
        .local_tag
        .clone();
    assert_eq!(test.run_image(&tag).0, "Hello from hello 0.1.0!");

    // The secret is in no log, no file of the store, no image config.
    for secret in [password, encoded.as_str()] {
        assert!(!log.contains(secret), "a secret leaked into the logs");
        for file in files_under(test.home.path()) {
            let bytes = std::fs::read(test.home.path().join(&file)).unwrap_or_default();
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "a secret leaked into {file}"
            );
        }
        let inspect = std::process::Command::new("docker")
            .args(["image", "inspect", &tag])
            .output()
            .expect("inspect");
        assert!(!String::from_utf8_lossy(&inspect.stdout).contains(secret));
    }
    assert!(!in_engine(&test, &base));
}

/// A build through the library, with its events.
fn package_with_events(
    test: &DockerTest,
    base: &str,
    on_event: &(dyn Fn(&BuildEvent, &CancellationToken) + Sync),
) -> (
    Result<pipeline::PackageOutcome, BuildError>,
    Vec<BuildEvent>,
) {
    let env = pipeline::BuildEnv::at(test.home.path()).with_engine(test.engine.clone());
    let request = pipeline::BuildRequest {
        path: test.crate_dir.clone(),
        overrides: arca::plan::SettingsOverrides {
            profile: Some("release".into()),
            features: Some(vec![]),
            bin: None,
            base_image: Some(base.to_owned()),
            platforms: None,
        },
        host_build: true,
        force: true,
    };
    let cancel = CancellationToken::new();
    let seen = Mutex::new(Vec::new());
    let events = |event: BuildEvent| {
        on_event(&event, &cancel);
        seen.lock().expect("events").push(event);
    };
    test.watchdog.step(format!("pipeline::package on {base}"));
    let result = test
        .runtime
        .block_on(pipeline::package(&env, &request, &events, &cancel));
    (result, seen.into_inner().expect("events"))
}

#[test]
fn the_fetch_reports_bytes_per_layer_and_a_cancel_leaves_no_artifact() {
    if !tools_present() {
        return;
    }
    let Some(test) = DockerTest::new() else {
        return;
    };
    let registry = Registry::start(None, None);
    let base = registry.put_image(&format!("docker-daemon:{RUNTIME_BASE}"), "progress:1");
    let manifest = skopeo_manifest(&base);
    let sizes: Vec<u64> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|layer| layer["size"].as_u64().expect("size"))
        .collect();

    // Cancelled as soon as the first layer starts: Cancelled, no artifact,
    // no container, no temporary file; only a base whose fetch completed
    // may stay (a verified cache entry, as with an engine import).
    let (result, _) = package_with_events(&test, &base, &|event, cancel| {
        if matches!(
            event,
            BuildEvent::Progress {
                task: ProgressTask::Pull { .. },
                ..
            }
        ) {
            cancel.cancel();
        }
    });
    assert!(
        matches!(result, Err(BuildError::Cancelled)),
        "expected cancellation, got {result:?}"
    );
    assert!(
        test.store().list().artifacts.is_empty(),
        "a record was left"
    );
    assert_eq!(test.leftover_containers(), [] as [String; 0]);
    assert_eq!(
        files_under(&test.home.path().join("blobs/tmp")),
        [] as [String; 0]
    );
    let blobs = BlobStore::at(test.home.path().join("blobs"));
    let bases = arca::image::base::Bases::at(test.home.path().join("bases"));
    let stored: Vec<String> = files_under(&test.home.path().join("blobs/sha256"));
    match bases.find_by_reference(&base) {
        Some(record) => {
            assert!(record.complete(&blobs).expect("complete"));
            assert_eq!(stored.len(), 1 + record.layers.len(), "{stored:?}");
        }
        None => assert_eq!(stored, [] as [String; 0], "blobs of a cancelled fetch"),
    }

    // Uncancelled: each layer reports its bytes up to its size.
    let bases_dir = test.home.path().join("bases");
    let _ = std::fs::remove_dir_all(&bases_dir);
    let (result, events) = package_with_events(&test, &base, &|_, _| {});
    result.expect("build");
    for size in sizes {
        let reported: Vec<u64> = events
            .iter()
            .filter_map(|event| match event {
                BuildEvent::Progress {
                    task: ProgressTask::Pull { image, .. },
                    current,
                    total: Some(total),
                    ..
                } if *image == base && *total == size => Some(*current),
                _ => None,
            })
            .collect();
        assert!(
            reported.first() == Some(&0) && reported.last() == Some(&size),
            "layer of {size} bytes reported {reported:?}"
        );
    }

    // A stored base whose layer was deleted by hand is fetched again.
    let record = bases.find_by_reference(&base).expect("record");
    let layer = blobs.path(&record.layers[0].digest);
    std::fs::remove_file(&layer).expect("delete the layer blob");
    let gets = blob_gets(&registry);
    let (result, _) = package_with_events(&test, &base, &|_, _| {});
    result.expect("build after the blob was deleted");
    assert!(layer.is_file(), "the layer was fetched again");
    assert!(blob_gets(&registry) > gets);
    let again = bases.find_by_reference(&base).expect("record");
    assert_eq!(again.layers, record.layers);
    assert!(again.complete(&blobs).expect("complete"));
}

docker::engine_tests! {
    a_base_only_in_a_registry_is_fetched_by_arca: [docker, podman];
}

/// A registry that lies about manifests (`tests/support/registry_proxy.py`
/// in a hostile mode in front of a real registry holding the base): each
/// lie is refused quickly with an error naming it, the engine is not asked
/// to pull from the liar instead, and nothing is left.
#[test]
fn a_registry_lying_about_manifests_is_refused_and_leaves_nothing() {
    if !tools_present() {
        return;
    }
    let Some(test) = DockerTest::new() else {
        return;
    };
    let registry = Registry::start(None, None);
    registry.put_image(&format!("docker-daemon:{RUNTIME_BASE}"), "hostile:1");
    for (mode, expected) in [
        ("oversize-manifest", "more than the 4096 KiB Arca reads"),
        (
            "huge-length-manifest",
            "is 999999999 bytes, more than the 4096 KiB",
        ),
        ("lying-tag-digest", "the registry announced"),
        ("huge-index", "lists 5000 manifests, more than the 1024"),
        ("nested-index", "names another index"),
        ("oversize-blob", "bytes its manifest declares"),
        ("blob-redirect-loop", "more than 5 redirects"),
    ] {
        let (proxy, port) = registry::registry_proxy(&registry.address, mode);
        let base = format!("127.0.0.1:{port}/hostile:1");
        let started = std::time::Instant::now();
        let (output, peak_mib) = with_peak_rss(test.host_build_command(&base));
        let took = started.elapsed();
        eprintln!("{mode}: refused in {took:?}, peak RSS {peak_mib} MiB");
        assert!(peak_mib < 200, "{mode}: peak RSS {peak_mib} MiB");
        drop(proxy);
        assert!(!output.status.success(), "{mode}: {}", text(&output));
        let log = stderr(&output);
        assert!(log.contains(expected), "{mode}: {log}");
        assert!(
            log.contains(&base),
            "{mode}: the error names the image: {log}"
        );
        assert!(!log.contains("asking the engine to pull"), "{mode}: {log}");
        assert!(
            took < std::time::Duration::from_secs(120),
            "{mode}: took {took:?}"
        );
        assert_nothing_left(&test, &base);
    }
}

/// An HTTPS registry that redirects a blob to plain HTTP: refused before
/// anything is sent in clear (the plain-HTTP listener is never contacted),
/// the engine not asked instead, nothing left.
#[test]
fn a_redirect_from_https_to_http_is_refused_and_nothing_goes_out_in_clear() {
    if !tools_present() {
        return;
    }
    let Some(test) = DockerTest::new() else {
        return;
    };
    let registry = Registry::start(None, None);
    registry.put_image(&format!("docker-daemon:{RUNTIME_BASE}"), "redirected:1");
    let certs = tempfile::tempdir().expect("certs");
    let tls = registry::make_tls(certs.path());
    let clear = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    clear.set_nonblocking(true).expect("nonblocking");
    let clear_port = clear.local_addr().expect("port").port();
    let (proxy, port) = registry::registry_proxy_over(
        &registry.address,
        &format!("blob-redirect-http {clear_port}"),
        Some(&tls),
    );
    let base = format!("127.0.0.1:{port}/redirected:1");
    let output = test
        .host_build_command(&base)
        .env("SSL_CERT_FILE", &tls.ca)
        .output()
        .expect("run arca");
    drop(proxy);
    assert!(!output.status.success(), "{}", text(&output));
    let log = stderr(&output);
    assert!(log.contains("from https to http"), "{log}");
    assert!(log.contains(&base), "the error names the image: {log}");
    assert!(!log.contains("asking the engine to pull"), "{log}");
    assert!(
        clear.accept().is_err(),
        "the plain-HTTP listener was contacted"
    );
    assert_nothing_left(&test, &base);
}

/// A registry that stops sending in the middle of a layer: the fetch ends
/// after the read timeout (`ARCA_REGISTRY_READ_TIMEOUT`, 2 s here) naming
/// it, leaves no temporary file, and the engine's pull (which the proxy no
/// longer stalls) gives the base instead.
#[test]
fn a_registry_that_stalls_mid_layer_times_out_and_the_engine_pulls_instead() {
    if !tools_present() {
        return;
    }
    let Some(test) = DockerTest::new() else {
        return;
    };
    let registry = Registry::start(None, None);
    registry.put_image(&format!("docker-daemon:{RUNTIME_BASE}"), "stall:1");
    let (proxy, port) = registry::registry_proxy(&registry.address, "stall-blob");
    let base = format!("127.0.0.1:{port}/stall:1");
    let started = std::time::Instant::now();
    let output = test
        .host_build_command(&base)
        .env("ARCA_REGISTRY_READ_TIMEOUT", "2")
        .output()
        .expect("run arca");
    let took = started.elapsed();
    drop(proxy);
    let log = stderr(&output);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        log.contains("the registry sent nothing for 2 s"),
        "the stall is named: {log}"
    );
    assert!(log.contains("asking the engine to pull"), "{log}");
    // The stalled proxy would have held the connection for 60 s.
    assert!(
        took < std::time::Duration::from_secs(55),
        "the read timeout ended the stall: {took:?}"
    );
    assert_eq!(
        files_under(&test.home.path().join("blobs/tmp")),
        [] as [String; 0]
    );
    let _ = std::process::Command::new(test.kind.name())
        .args(["rmi", "-f", &base])
        .output();
}

/// Runs `command` to its end; its output and the peak resident size (MiB)
/// of it and whatever it waited for (`wait4`'s `ru_maxrss`: an upper bound
/// on Arca's own).
// The child is reaped by `wait4` (for its rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn with_peak_rss(mut command: std::process::Command) -> (Output, u64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn arca");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waits for our own child, writing into the two locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    };
    (output, usage.ru_maxrss as u64 / 1024)
}
