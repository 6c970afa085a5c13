//! Multi-platform images (issue 19), judged by outside tools: a crate with
//! a crates.io dependency and a build script compiling C (`c-build`) is
//! built for linux/amd64 and linux/arm64 in one build, cross-compiled (no
//! emulation) in the builder and on the host; the artifact's OCI layout is
//! an image index that skopeo reads with both platforms; the arm64 binary
//! is an aarch64 ELF (`file`) that prints its greeting under
//! `qemu-aarch64-static` over the arm64 base's own files; the push sends
//! an index skopeo sees with both platforms, and a second push sends no
//! byte. A base without arm64 is refused naming what it has, leaving no
//! record.
//!
//! The two-platform base is the test registry's copy of the fixture index
//! (`.ci/fixtures.sh`), reached as a Docker Hub mirror
//! (`ARCA_REGISTRY_MIRRORS`) for the engine's `nvidia/cuda` fixture name,
//! or by its own reference. Needs `.ci/docker-up.sh`, `.ci/fixtures.sh`,
//! `.ci/registry-setup.sh`, `.ci/cross-setup.sh`; without them each test
//! prints a note and passes, unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;
#[path = "common/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use docker::{DockerTest, RUNTIME_BASE, artifact_id, text};
use registry::{Registry, tools_present};

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-crates")
}

/// Everything the tests need beyond the engine: the registry tools, the
/// cross toolchain and qemu-user.
fn cross_tools_present() -> bool {
    let present = tools_present()
        && ["qemu-aarch64-static", "aarch64-linux-gnu-gcc", "file"]
            .iter()
            .all(|tool| {
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .output()
                    .is_ok_and(|output| output.status.success())
            });
    if !present {
        assert!(
            std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "the cross tools are missing: run .ci/cross-setup.sh and .ci/registry-setup.sh"
        );
        eprintln!("note: cross tools missing; skipping");
    }
    present
}

/// The `c-build` crate in a test home whose cargo home is the shared one.
fn c_build() -> Option<DockerTest> {
    if !cross_tools_present() {
        return None;
    }
    let test = DockerTest::with_crate(&fixture_root().join("c-build"), "c-build", "")?;
    let rust_cache = test.home.path().join("cache/rust");
    std::fs::create_dir_all(&rust_cache).expect("rust cache");
    std::os::unix::fs::symlink(docker::shared_cargo_home(), rust_cache.join("cargo-home"))
        .expect("link the shared cargo home");
    Some(test)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `skopeo inspect --raw` of a transport reference, parsed.
fn skopeo_raw(reference: &str) -> serde_json::Value {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", reference])
        .output()
        .expect("skopeo");
    assert!(
        output.status.success(),
        "skopeo {reference}: {}",
        text(&output)
    );
    serde_json::from_slice(&output.stdout).expect("skopeo JSON")
}

/// The platforms an index lists, as `os/architecture`, sorted.
fn index_platforms(index: &serde_json::Value) -> Vec<String> {
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|entry| {
            format!(
                "{}/{}",
                entry["platform"]["os"].as_str().unwrap_or("?"),
                entry["platform"]["architecture"].as_str().unwrap_or("?")
            )
        })
        .collect();
    platforms.sort();
    platforms
}

/// Copies the layout's `linux/arm64` image with skopeo (an outside reader)
/// into a plain directory and unpacks its layers into a root file system.
fn arm64_rootfs(layout: &Path, tag: &str, into: &Path) -> PathBuf {
    let copied = into.join("arm64-image");
    let output = Command::new("skopeo")
        .args(["copy", "--override-arch", "arm64"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("dir:{}", copied.display()))
        .output()
        .expect("skopeo copy");
    assert!(output.status.success(), "{}", text(&output));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copied.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let config_digest = manifest["config"]["digest"].as_str().expect("config");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(copied.join(config_digest.trim_start_matches("sha256:"))).expect("config"),
    )
    .expect("config JSON");
    assert_eq!(config["architecture"], "arm64", "{config}");
    let rootfs = into.join("arm64-rootfs");
    std::fs::create_dir_all(&rootfs).expect("rootfs");
    for layer in manifest["layers"].as_array().expect("layers") {
        let blob = copied.join(
            layer["digest"]
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:"),
        );
        let output = Command::new("tar")
            .arg("-xf")
            .arg(&blob)
            .arg("-C")
            .arg(&rootfs)
            .output()
            .expect("tar");
        assert!(output.status.success(), "{}", text(&output));
    }
    rootfs
}

/// Checks an artifact's two-platform layout with outside tools: skopeo
/// reads an index of linux/amd64 and linux/arm64; the arm64 binary is an
/// aarch64 ELF and prints `expected` under qemu-user over the arm64 base.
fn check_two_platform_layout(test: &DockerTest, id: &str, expected: &str) {
    let artifact = test.store().select(id).expect("record")[0].clone();
    let layout = artifact.dir.join("image");
    let tag = &artifact.metadata.remote_tag;
    let index = skopeo_raw(&format!("oci:{}:{tag}", layout.display()));
    assert_eq!(index_platforms(&index), ["linux/amd64", "linux/arm64"]);
    let rootfs = arm64_rootfs(&layout, tag, test.work.path());
    let binary = rootfs.join("usr/local/bin/c-build");
    let described = Command::new("file").arg(&binary).output().expect("file");
    let described = String::from_utf8_lossy(&described.stdout).into_owned();
    assert!(described.contains("ARM aarch64"), "{described}");
    let ran = Command::new("qemu-aarch64-static")
        .arg("-L")
        .arg(&rootfs)
        .arg(&binary)
        .output()
        .expect("qemu-aarch64-static");
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout).trim(),
        expected,
        "{}",
        text(&ran)
    );
}

/// The digest of `platform`'s manifest in an index, as skopeo read it.
fn platform_manifest(index: &serde_json::Value, architecture: &str) -> String {
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|entry| entry["platform"]["architecture"] == architecture)
        .and_then(|entry| entry["digest"].as_str())
        .unwrap_or_else(|| panic!("no {architecture} manifest in {index}"))
        .to_owned()
}

/// Each platform's image carries its own SBOM: `arca sbom --platform`
/// gives a document per platform, the SPDX project's validator accepts
/// both (when `.ci/sbom-setup.sh` installed it), each one's digest is the
/// `io.khoek.arca.sbom` label of that platform's image config (read by
/// skopeo from the layout), and each names that platform's base image.
/// Returns the arm64 image's manifest digest.
fn check_sbom_per_platform(test: &DockerTest, id: &str) -> String {
    let artifact = test.store().select(id).expect("record")[0].clone();
    let layout = artifact.dir.join("image");
    let tag = &artifact.metadata.remote_tag;
    let index = skopeo_raw(&format!("oci:{}:{tag}", layout.display()));
    let venv = std::env::var_os("ARCA_SBOM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/arca-sbom/venv"));
    let mut documents = Vec::new();
    for (platform, architecture) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let file = test
            .work
            .path()
            .join(format!("sbom-{architecture}.spdx.json"));
        let written = test
            .arca()
            .args(["sbom", id, "--platform", platform, "-o"])
            .arg(&file)
            .output()
            .expect("arca sbom");
        assert!(written.status.success(), "{}", text(&written));
        let bytes = std::fs::read(&file).expect("SBOM file");
        let digest = format!("sha256:{}", sha256_hex(&bytes));
        let manifest = platform_manifest(&index, architecture);
        let hex = manifest.trim_start_matches("sha256:");
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(layout.join("blobs/sha256").join(hex)).expect("manifest blob"),
        )
        .expect("manifest JSON");
        let config = manifest["config"]["digest"]
            .as_str()
            .expect("config digest");
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                layout
                    .join("blobs/sha256")
                    .join(config.trim_start_matches("sha256:")),
            )
            .expect("config blob"),
        )
        .expect("config JSON");
        assert_eq!(config["architecture"], architecture, "{config}");
        assert_eq!(
            config["config"]["Labels"]["io.khoek.arca.sbom"], digest,
            "the {platform} image's label names its own SBOM"
        );
        if venv.join("bin/pyspdxtools").is_file() {
            let checked = Command::new(venv.join("bin/pyspdxtools"))
                .arg("-i")
                .arg(&file)
                .output()
                .expect("pyspdxtools");
            let report = text(&checked);
            assert!(
                checked.status.success(),
                "pyspdxtools ({platform}): {report}"
            );
            assert!(
                !report.contains("invalid"),
                "pyspdxtools ({platform}): {report}"
            );
        }
        documents.push(bytes);
    }
    assert_ne!(documents[0], documents[1], "one SBOM per platform image");
    let lacking = test
        .arca()
        .args(["sbom", id, "--platform", "linux/s390x"])
        .output()
        .expect("arca sbom");
    assert!(!lacking.status.success());
    assert!(
        stderr(&lacking).contains("no image for linux/s390x"),
        "{}",
        text(&lacking)
    );
    platform_manifest(&index, "arm64")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// `arca push ID --to DESTINATION --json` in the test's home.
fn push_json(test: &DockerTest, id: &str, destination: &str) -> serde_json::Value {
    let pushed = test
        .arca()
        .args(["push", id, "--to", destination, "--json"])
        .env("HOME", test.work.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .expect("arca push");
    assert!(pushed.status.success(), "{}", text(&pushed));
    serde_json::from_slice(&pushed.stdout).expect("push JSON")
}

#[test]
fn one_build_cross_compiles_c_for_arm64_in_the_builder_and_pushes_one_index() {
    let Some(test) = c_build() else {
        return;
    };
    let registry = Registry::start(None, None);
    // The engine holds the amd64 fixture under RUNTIME_BASE; its arm64
    // image comes from the test registry acting as Docker Hub's mirror.
    registry.put_multi_platform_base(RUNTIME_BASE);
    let mirror = [("ARCA_REGISTRY_MIRRORS", registry.address.as_str())];
    let built = test.build_cli_env(&["--platform", "linux/amd64,linux/arm64"], None, &mirror);
    assert!(built.status.success(), "{}", text(&built));
    let log = stderr(&built);
    assert!(
        log.contains("arca: cross-compiling for linux/arm64 (aarch64-unknown-linux-gnu)"),
        "{log}"
    );
    assert!(log.contains("Fetching the linux/arm64 image of"), "{log}");
    let id = artifact_id(&built);
    let artifact = test.store().select(&id).expect("record")[0].clone();
    // The engine got its own platform's image, which runs.
    let (printed, code) = test.run_image(&artifact.metadata.local_tag);
    assert_eq!((printed.as_str(), code), ("c-build says 42", 0));
    check_two_platform_layout(&test, &id, "c-build says 42");
    let arm64_manifest = check_sbom_per_platform(&test, &id);
    let status = test
        .arca()
        .args(["status", "--json"])
        .arg(&test.crate_dir)
        .output()
        .expect("arca status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(
        status["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"]),
        "{status}"
    );

    // A registry refusing image indexes: a clear error, nothing recorded,
    // and the platform manifests it took are said to stay untagged.
    let (_proxy, port) = registry::registry_proxy(&registry.address, "refuse-index");
    let refused = test
        .arca()
        .args([
            "push",
            &id,
            "--to",
            &format!("127.0.0.1:{port}/c-build:refused"),
        ])
        .env("HOME", test.work.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .expect("arca push");
    assert!(!refused.status.success(), "{}", text(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("image indexes are not supported"),
        "{message}"
    );
    assert!(message.contains("the image index"), "{message}");
    assert!(message.contains("untagged"), "{message}");
    assert!(
        message.contains("nothing was recorded as pushed"),
        "{message}"
    );
    let record = test.store().select(&id).expect("record")[0].clone();
    assert_eq!(record.metadata.uploaded_ref, None);

    // The push sends one index naming both platforms; again, nothing.
    let destination = format!("{}/c-build:multi", registry.address);
    let first = push_json(&test, &id, &destination);
    assert!(first["bytesSent"].as_u64().unwrap_or(0) > 0, "{first}");
    let pushed = skopeo_raw(&format!("docker://{destination}"));
    assert_eq!(index_platforms(&pushed), ["linux/amd64", "linux/arm64"]);
    // The arm64 image's SBOM and provenance went along, referring to it:
    // this registry has no referrers API, so skopeo reads them under the
    // fallback tag of the arm64 manifest's digest.
    let fallback = skopeo_raw(&format!(
        "docker://{}/c-build:{}",
        registry.address,
        arm64_manifest.replace(':', "-")
    ));
    let mut types: Vec<&str> = fallback["manifests"]
        .as_array()
        .expect("fallback manifests")
        .iter()
        .filter_map(|entry| entry["artifactType"].as_str())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"],
        "{fallback}"
    );
    let again = push_json(&test, &id, &destination);
    assert_eq!(again["bytesSent"], 0, "{again}");
    assert_eq!(again["uploaded"], 0, "{again}");

    // One platform alone goes as a plain image of that platform.
    let arm64_only = format!("{}/c-build:arm64", registry.address);
    let pushed = test
        .arca()
        .args([
            "push",
            &id,
            "--to",
            &arm64_only,
            "--platform",
            "linux/arm64",
            "--json",
        ])
        .env("HOME", test.work.path())
        .output()
        .expect("arca push");
    assert!(pushed.status.success(), "{}", text(&pushed));
    let manifest = skopeo_raw(&format!("docker://{arm64_only}"));
    assert_eq!(
        manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{manifest}"
    );
    let inspected = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{arm64_only}"))
        .output()
        .expect("skopeo inspect");
    let inspected: serde_json::Value =
        serde_json::from_slice(&inspected.stdout).expect("inspect JSON");
    assert_eq!(inspected["Architecture"], "arm64", "{inspected}");
    let lacking = test
        .arca()
        .args([
            "push",
            &id,
            "--to",
            &arm64_only,
            "--platform",
            "linux/s390x",
        ])
        .output()
        .expect("arca push");
    assert!(!lacking.status.success());
    assert!(
        stderr(&lacking)
            .contains("no image for linux/s390x: it was built for linux/amd64, linux/arm64"),
        "{}",
        text(&lacking)
    );

    // Up to date for the same platforms; another platform list is stale.
    let rebuilt = test.build_cli_env(&["--platform", "linux/amd64,linux/arm64"], None, &mirror);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    assert_eq!(artifact_id(&rebuilt), id, "{}", text(&rebuilt));
}

#[test]
fn a_host_build_cross_compiles_over_a_registry_index_base() {
    let Some(test) = c_build() else {
        return;
    };
    let registry = Registry::start(None, None);
    let base = registry.put_multi_platform_base("arca-test/multi:1");
    let built = test
        .host_build_command(&base)
        .args(["--platform", "linux/arm64,linux/amd64"])
        .output()
        .expect("arca build");
    assert!(built.status.success(), "{}", text(&built));
    let id = artifact_id(&built);
    let artifact = test.store().select(&id).expect("record")[0].clone();
    let (printed, code) = test.run_image(&artifact.metadata.local_tag);
    assert_eq!((printed.as_str(), code), ("c-build says 42", 0));
    check_two_platform_layout(&test, &id, "c-build says 42");
}

#[test]
fn a_base_without_the_platform_is_refused_naming_what_it_has_and_leaves_no_record() {
    let Some(test) = c_build() else {
        return;
    };
    let registry = Registry::start(None, None);
    // A single amd64 image, not an index.
    let single = registry.put_image(&format!("docker-daemon:{RUNTIME_BASE}"), "single:1");
    let refused = test
        .host_build_command(&single)
        .args(["--platform", "linux/amd64,linux/arm64"])
        .output()
        .expect("arca build");
    assert!(!refused.status.success(), "{}", text(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("is an image for linux/amd64, not linux/arm64"),
        "{message}"
    );
    // Refused before anything compiled.
    assert!(!message.contains("Compiling"), "{message}");
    assert!(test.store().list().artifacts.is_empty());

    // An unknown platform is refused before anything runs, with the
    // valid values and the closest one.
    let typo = test
        .host_build_command(&single)
        .args(["--platform", "linux/amr64"])
        .output()
        .expect("arca build");
    assert!(!typo.status.success());
    let message = stderr(&typo);
    assert!(message.contains("Did you mean `linux/arm64`?"), "{message}");
    assert!(message.contains("linux/amd64, linux/arm64"), "{message}");
}

#[test]
fn a_builder_without_the_targets_standard_library_names_it_and_tags_nothing() {
    let Some(test) = c_build() else {
        return;
    };
    // The fixture builder has arm64's standard library (Debian's rustc),
    // not s390x's, and no rustup to add it. The base has an s390x image
    // (a one-file layer: it is never run), so the build gets that far.
    let registry = Registry::start(None, None);
    let dir = test.work.path().join("s390x-base");
    let saved = dir.join("amd64.tar");
    std::fs::create_dir_all(dir.join("rootfs/etc")).expect("rootfs");
    std::fs::write(dir.join("rootfs/etc/s390x"), "s390x\n").expect("file");
    let run = |command: &mut Command| {
        let output = command.output().expect("run");
        assert!(output.status.success(), "{command:?}: {}", text(&output));
    };
    run(Command::new("docker")
        .args(["save", "-o"])
        .arg(&saved)
        .arg(RUNTIME_BASE));
    run(Command::new("tar")
        .arg("-cf")
        .arg(dir.join("s390x.tar"))
        .arg("-C")
        .arg(dir.join("rootfs"))
        .arg("."));
    run(Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/oci-layout.py"))
        .arg(dir.join("layout"))
        .args(["--ref", "latest"])
        .arg(format!("linux/amd64=docker-archive:{}", saved.display()))
        .arg(format!(
            "linux/s390x=layer:{}",
            dir.join("s390x.tar").display()
        )));
    registry.put_image_with(
        &format!("oci:{}:latest", dir.join("layout").display()),
        RUNTIME_BASE,
        &["--all", "--dest-tls-verify=false"],
    );
    let refused = test.build_cli_env(
        &["--platform", "linux/amd64,linux/s390x"],
        None,
        &[("ARCA_REGISTRY_MIRRORS", registry.address.as_str())],
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("failed at step: the Rust standard library for s390x-unknown-linux-gnu"),
        "{message}"
    );
    assert!(
        message.contains("rustup target add s390x-unknown-linux-gnu"),
        "{message}"
    );
    assert!(message.contains("no builder image was tagged"), "{message}");
    assert!(test.store().list().artifacts.is_empty());
}

#[test]
fn a_build_script_refusing_cross_compilation_is_named_as_such() {
    if !cross_tools_present() {
        return;
    }
    let source = tempfile::tempdir().expect("tempdir");
    let root = source.path().join("no-cross");
    std::fs::create_dir_all(root.join("src")).expect("src");
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"no-cross\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n\n[workspace]\n",
    )
    .expect("Cargo.toml");
    std::fs::write(
        root.join("build.rs"),
        "fn main() {\n    if std::env::var(\"TARGET\") != std::env::var(\"HOST\") {\n        panic!(\"no-cross cannot be cross-compiled\");\n    }\n}\n",
    )
    .expect("build.rs");
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() { println!(\"native\"); }\n",
    )
    .expect("main.rs");
    let Some(test) = DockerTest::with_crate(&root, "no-cross", "") else {
        return;
    };
    let registry = Registry::start(None, None);
    registry.put_multi_platform_base(RUNTIME_BASE);
    let refused = test
        .host_build_command(RUNTIME_BASE)
        .args(["--platform", "linux/amd64,linux/arm64"])
        .env("ARCA_REGISTRY_MIRRORS", &registry.address)
        .output()
        .expect("arca build");
    assert!(!refused.status.success(), "{}", text(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("(cross-compiling for linux/arm64, target aarch64-unknown-linux-gnu; the build for the host's own platform succeeded)"),
        "{message}"
    );
    assert!(
        message.contains("failed to run custom build command"),
        "{message}"
    );
    assert!(test.store().list().artifacts.is_empty());
}

#[test]
fn the_arm64_image_runs_through_the_engines_emulation_and_builds_reproducibly() {
    let Some(test) = c_build() else {
        return;
    };
    let registry = Registry::start(None, None);
    registry.put_multi_platform_base(RUNTIME_BASE);
    let mirror = ("ARCA_REGISTRY_MIRRORS", registry.address.as_str());
    let config = test.crate_dir.join(".arca/config.toml");
    std::fs::create_dir_all(config.parent().expect("dir")).expect(".arca");
    std::fs::write(
        &config,
        format!("[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"{RUNTIME_BASE}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n"),
    )
    .expect("config");
    let emulated = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64")
        .is_ok_and(|text| text.starts_with("enabled"));
    let ran = test
        .arca()
        .args(["run", "--platform", "linux/arm64"])
        .arg(&test.crate_dir)
        .env(mirror.0, mirror.1)
        .output()
        .expect("arca run");
    if emulated {
        assert!(ran.status.success(), "{}", text(&ran));
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout).trim(),
            "c-build says 42"
        );
        assert!(stderr(&ran).contains("-linux-arm64"), "{}", text(&ran));
    } else {
        assert!(
            std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "QEMU is not registered for aarch64: run .ci/cross-setup.sh"
        );
        assert!(!ran.status.success());
        assert!(stderr(&ran).contains("binfmt_misc"), "{}", text(&ran));
        return;
    }
    // The run's own tag is gone; the artifact's tag is the engine's platform.
    let artifact = test.store().list().artifacts[0].clone();
    let arm64_tag = format!("{}-linux-arm64", artifact.metadata.local_tag);
    assert!(
        test.runtime
            .block_on(test.engine.inspect_image(&arm64_tag))
            .expect("inspect")
            .is_none(),
        "{arm64_tag} was left in the engine"
    );

    // Another home, the same source: the same arm64 binary layer.
    let layer_of = |home: &Path, id: &str| -> String {
        let layout = home.join("containers").join(id).join("image");
        let images = arca::image::layout::read_platforms(&layout).expect("layout");
        let (_, image) = images
            .iter()
            .find(|(platform, _)| platform.map(|p| p.name()) == Some("linux/arm64"))
            .expect("an arm64 image");
        image
            .layers
            .last()
            .expect("binary layer")
            .digest
            .to_string()
    };
    let first = layer_of(test.home.path(), &artifact.metadata.artifact_id);
    let other_home = tempfile::tempdir().expect("home");
    let rust_cache = other_home.path().join("cache/rust");
    std::fs::create_dir_all(&rust_cache).expect("rust cache");
    std::os::unix::fs::symlink(docker::shared_cargo_home(), rust_cache.join("cargo-home"))
        .expect("link the shared cargo home");
    let again = test
        .arca()
        .args(["build", "rust"])
        .arg(&test.crate_dir)
        .env("ARCA_HOME", other_home.path())
        .env(mirror.0, mirror.1)
        .output()
        .expect("arca build");
    assert!(again.status.success(), "{}", text(&again));
    let second = layer_of(other_home.path(), &artifact_id(&again));
    assert_eq!(
        first, second,
        "the arm64 binary layer differs between homes"
    );
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f"])
        .arg(
            arca::store::Store::at(other_home.path().join("containers"))
                .list()
                .artifacts[0]
                .metadata
                .local_tag
                .clone(),
        )
        .output();
}
