//! A base image the engine lacks enters the layer store from its registry,
//! fetched by Arca itself (issue 9): a real loopback `docker-registry`
//! holding a fixture base put there by skopeo, a real engine that never
//! sees the base's reference. The image runs and carries its labels; the
//! registry's own access log shows Arca's blob GETs (and nobody else's); a
//! second build contacts the registry not at all; a blob corrupted in the
//! registry's storage is refused with a clear error and leaves nothing;
//! an unreachable registry falls back to the engine's pull and, when that
//! fails too, the error names both causes.
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

use arca::blobs::BlobStore;
use docker::{DockerTest, Engine, RUNTIME_BASE, artifact_id, text};
use registry::{Registry, tools_present};

/// `arca build rust <crate> --host-build --base-image <base>` (a host
/// build: the runtime base is then needed by nothing but the image).
fn build(test: &DockerTest, base: &str, extra: &[&str]) -> Output {
    test.watchdog.step(format!("arca build rust on {base}"));
    test.arca()
        .args(["build", "rust"])
        .arg(&test.crate_dir)
        .args([
            "--profile",
            "release",
            "--features",
            "",
            "--host-build",
            "--base-image",
            base,
        ])
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

/// Files under `dir` (recursively), as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
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
    let image = arca::image::layout::read(&artifact.dir.join("image"))
        .expect("layout")
        .0;
    assert_eq!(image.layers[..layer_count], record.layers[..]);

    // A one-line change builds without contacting the registry at all.
    let seen = registry.requests().len();
    edit_main(&test);
    let second = build(&test, &base, &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        stderr(&second).contains("using the stored base"),
        "{}",
        text(&second)
    );
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

docker::engine_tests! {
    a_base_only_in_a_registry_is_fetched_by_arca: [docker, podman];
}
