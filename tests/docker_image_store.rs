//! The layer store against a real Docker engine (issue 9): images on a
//! 1 GiB base cost only the binary layer per artifact; thin loads, full
//! loads when the engine lacks the base (also over TCP); `arca export`
//! from the store; corrupt and deleted blobs; `arca prune` collecting
//! unreferenced blobs without racing a build; `SOURCE_DATE_EPOCH`.
//!
//! Needs `.ci/docker-up.sh`, `.ci/fixtures.sh` and `.ci/store-setup.sh`
//! (the 1 GiB base); without them each test prints a note and passes,
//! unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arca::blobs::{BlobStore, Digest, VERIFIED_MTIME};
use arca::image::StoredImage;
use docker::{DockerTest, RUNTIME_BASE, TCP_HOST, artifact_id, text};

/// The ≥ 1 GB runtime base (`.ci/store-setup.sh`).
const BIG_BASE: &str = "arca-test/big-base:latest";

fn arca(test: &DockerTest, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arca"));
    command
        .args(args)
        .env("ARCA_HOME", test.home.path())
        .env_remove("DOCKER_HOST")
        .env_remove("SOURCE_DATE_EPOCH")
        .envs(env.iter().copied());
    command.output().expect("run arca")
}

/// `arca build rust <crate> --host-build` on `base`, plus `extra`.
fn build(test: &DockerTest, base: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let crate_dir = test.crate_dir.display().to_string();
    let mut args = vec![
        "build",
        "rust",
        crate_dir.as_str(),
        "--profile",
        "release",
        "--features",
        "",
        "--host-build",
        "--base-image",
        base,
    ];
    args.extend_from_slice(extra);
    arca(test, &args, env)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn image_of(test: &DockerTest, id: &str) -> StoredImage {
    let artifact = test.store().select(id).expect("record")[0].clone();
    arca::image::layout::read(&artifact.dir.join("image"))
        .expect("layout")
        .0
}

fn referrers_of(test: &DockerTest, id: &str) -> Vec<arca::image::referrer::Referrer> {
    let artifact = test.store().select(id).expect("record")[0].clone();
    arca::image::layout::read_referrers(&artifact.dir.join("image")).expect("referrers")
}

fn blobs(test: &DockerTest) -> BlobStore {
    BlobStore::at(test.home.path().join("blobs"))
}

/// Bytes under `$ARCA_HOME`, each file counted once however many hard
/// links it has (what the disk really holds).
fn home_bytes(home: &Path) -> u64 {
    fn walk(dir: &Path, seen: &mut HashSet<(u64, u64)>, total: &mut u64) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let metadata = entry.metadata().expect("metadata");
            if metadata.is_dir() {
                walk(&entry.path(), seen, total);
            } else if seen.insert((metadata.dev(), metadata.ino())) {
                *total += metadata.len();
            }
        }
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    walk(home, &mut seen, &mut total);
    total
}

fn edit_main(test: &DockerTest, from: &str, to: &str) {
    let main_rs = test.crate_dir.join("src/main.rs");
    let source = std::fs::read_to_string(&main_rs).expect("main.rs");
    assert!(source.contains(from));
    std::fs::write(&main_rs, source.replace(from, to)).expect("edit");
}

/// A runtime base of this test's own, removable: the fixture plus a tiny
/// unique layer.
struct OwnBase<'a> {
    test: &'a DockerTest,
    tag: String,
}

impl<'a> OwnBase<'a> {
    fn new(test: &'a DockerTest) -> Self {
        let unique = test.store().new_artifact_id();
        let tag = format!("arca-test/store-base:{unique}");
        let mut context = arca::engine::tar_context::TarContext::new();
        context
            .add_file(
                "Containerfile",
                format!("FROM {RUNTIME_BASE}\nRUN echo {unique} > /unique-base\n").as_bytes(),
                0o644,
            )
            .expect("containerfile");
        let context = context.finish().expect("context");
        test.runtime
            .block_on(test.engine.build_image(&tag, context, &|_| {}))
            .expect("build the test base");
        Self { test, tag }
    }

    fn remove(&self) {
        self.test
            .runtime
            .block_on(self.test.engine.remove_image(&self.tag))
            .expect("remove base");
    }
}

impl Drop for OwnBase<'_> {
    fn drop(&mut self) {
        let _ = self
            .test
            .runtime
            .block_on(self.test.engine.remove_image(&self.tag));
    }
}

fn remove_image(test: &DockerTest, tag: &str) {
    test.runtime
        .block_on(test.engine.remove_image(tag))
        .expect("remove image");
    assert!(
        test.runtime
            .block_on(test.engine.inspect_image(tag))
            .expect("inspect")
            .is_none()
    );
}

fn load(test: &DockerTest, archive: &Path) {
    test.runtime
        .block_on(test.engine.load_image(archive))
        .expect("load archive");
}

fn big_base_available(test: &DockerTest) -> bool {
    if test
        .runtime
        .block_on(test.engine.inspect_image(BIG_BASE))
        .ok()
        .flatten()
        .is_some()
    {
        return true;
    }
    assert!(
        std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
        "ARCA_REQUIRE_DOCKER=1 but {BIG_BASE} is missing: run .ci/store-setup.sh"
    );
    eprintln!("note: skipping: {BIG_BASE} is missing (run .ci/store-setup.sh)");
    false
}

#[test]
fn on_a_one_gigabyte_base_each_artifact_costs_its_binary_layer() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    if !big_base_available(&test) {
        return;
    }
    let first = build(&test, BIG_BASE, &[], &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        stderr(&first).contains("Base image imported into the store"),
        "{}",
        text(&first)
    );
    let first_id = artifact_id(&first);
    let artifact = test.store().select(&first_id).expect("record")[0].clone();
    let metadata = &artifact.metadata;
    let (printed, code) = test.run_image(&metadata.local_tag);
    assert_eq!((printed.as_str(), code), ("Hello from hello 0.1.0!", 0));
    let facts = test
        .runtime
        .block_on(test.engine.inspect_image(&metadata.local_tag))
        .expect("inspect")
        .expect("image");
    let labels: std::collections::HashMap<_, _> = facts.labels.into_iter().collect();
    for (key, value) in metadata.image_labels() {
        assert_eq!(labels.get(&key), Some(&value), "label {key}");
    }
    // The engine's image id is the assembled config's digest.
    assert_eq!(
        facts.id,
        image_of(&test, &first_id).config.digest.to_string()
    );
    assert!(!artifact.archive_path().exists(), "no archive unless asked");
    let after_first = home_bytes(test.home.path());
    assert!(
        after_first > 1 << 30,
        "the base is in the store: {after_first}"
    );

    // One-line change: the store grows by the new binary layer only.
    edit_main(&test, "Hello from", "Goodbye from");
    let second = build(&test, BIG_BASE, &[], &[]);
    assert!(second.status.success(), "{}", text(&second));
    let log = stderr(&second);
    assert!(log.contains("Base image in the store"), "{log}");
    assert!(
        log.contains("Loaded into the engine: 1 new layer(s)"),
        "{log}"
    );
    assert!(!log.contains("Base image imported"), "{log}");
    let second_id = artifact_id(&second);
    let second_image = image_of(&test, &second_id);
    let binary_layer = second_image.layers.last().expect("binary layer").clone();
    let grown = home_bytes(test.home.path()) - after_first;
    assert!(
        grown <= binary_layer.size + (1 << 20),
        "the store grew by {grown} bytes for a {}-byte binary layer",
        binary_layer.size
    );
    let second_tag = test.store().select(&second_id).expect("record")[0]
        .metadata
        .local_tag
        .clone();
    let (printed, _) = test.run_image(&second_tag);
    assert_eq!(printed, "Goodbye from hello 0.1.0!");

    // --force of the unchanged crate: the same binary layer, byte for byte.
    let forced = build(&test, BIG_BASE, &["--force"], &[]);
    assert!(forced.status.success(), "{}", text(&forced));
    let forced_image = image_of(&test, &artifact_id(&forced));
    assert_eq!(forced_image.layers.last(), Some(&binary_layer));
    assert_eq!(forced_image.layers, second_image.layers);
    assert_ne!(
        forced_image.config, second_image.config,
        "per-artifact labels"
    );

    // `arca export` writes a full archive from the store; it loads back.
    let archive = test.work.path().join("second.tar");
    let exported = arca(
        &test,
        &["export", &second_id, "-o", &archive.display().to_string()],
        &[],
    );
    assert!(exported.status.success(), "{}", text(&exported));
    assert!(std::fs::metadata(&archive).expect("archive").len() > 1 << 30);
    remove_image(&test, &second_tag);
    load(&test, &archive);
    let (printed, _) = test.run_image(&second_tag);
    assert_eq!(printed, "Goodbye from hello 0.1.0!");
    assert!(test.leftover_containers().is_empty());
}

#[test]
fn an_engine_lacking_the_base_gets_a_full_load_also_over_tcp() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let base = OwnBase::new(&test);
    let first = build(&test, &base.tag, &[], &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        stderr(&first).contains("Loaded into the engine: 1 new layer(s)"),
        "{}",
        text(&first)
    );
    let id = artifact_id(&first);
    let tag = test.store().select(&id).expect("record")[0]
        .metadata
        .local_tag
        .clone();

    // The export loads into an engine that has neither image nor base.
    let archive = test.work.path().join("image.tar");
    let exported = arca(
        &test,
        &["export", &id, "-o", &archive.display().to_string()],
        &[],
    );
    assert!(exported.status.success(), "{}", text(&exported));
    remove_image(&test, &tag);
    base.remove();
    load(&test, &archive);
    let (printed, _) = test.run_image(&tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");
    remove_image(&test, &tag);

    // The base is gone from the engine (and cannot be pulled): the stored
    // base is used and the whole image is sent, here over TCP.
    if std::net::TcpStream::connect("127.0.0.1:23750").is_err() {
        assert!(
            std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "ARCA_REQUIRE_DOCKER=1 but the engine does not listen on {TCP_HOST}"
        );
        eprintln!("note: skipping the TCP half: the engine does not listen on {TCP_HOST}");
        return;
    }
    let remote = build(&test, &base.tag, &["--force"], &[("DOCKER_HOST", TCP_HOST)]);
    assert!(remote.status.success(), "{}", text(&remote));
    let log = stderr(&remote);
    assert!(log.contains("using the stored base"), "{log}");
    assert!(
        log.contains("Loaded the full image into the engine"),
        "{log}"
    );
    let remote_id = artifact_id(&remote);
    let remote_tag = test.store().select(&remote_id).expect("record")[0]
        .metadata
        .local_tag
        .clone();
    let (printed, _) = test.run_image(&remote_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");
}

#[test]
fn a_corrupt_blob_is_detected_and_replaced_and_a_deleted_one_restored() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let first = build(&test, RUNTIME_BASE, &[], &[]);
    assert!(first.status.success(), "{}", text(&first));
    let first_id = artifact_id(&first);
    let first_image = image_of(&test, &first_id);
    let store = blobs(&test);

    // Flip bytes of the base layer in the store, keeping its size.
    let base_layer = first_image.layers[0].clone();
    let path = store.path(&base_layer.digest);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open blob");
        file.seek(SeekFrom::Start(600)).expect("seek");
        file.write_all(b"CORRUPT").expect("corrupt");
    }
    let second = build(&test, RUNTIME_BASE, &["--force"], &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        stderr(&second).contains("importing it again"),
        "{}",
        text(&second)
    );
    let bytes = std::fs::read(&path).expect("reimported blob");
    assert_eq!(
        Digest::of(&bytes),
        base_layer.digest,
        "replaced by good bytes"
    );
    // The first artifact's layout links the good copy again.
    let first_dir = test.store().select(&first_id).expect("record")[0]
        .dir
        .clone();
    let linked = std::fs::read(
        first_dir
            .join("image/blobs/sha256")
            .join(base_layer.digest.hex()),
    )
    .expect("layout blob");
    assert_eq!(Digest::of(&linked), base_layer.digest, "layout relinked");
    assert_eq!(
        std::fs::metadata(&path).expect("blob").mtime(),
        VERIFIED_MTIME
    );
    let second_id = artifact_id(&second);
    let second_tag = test.store().select(&second_id).expect("record")[0]
        .metadata
        .local_tag
        .clone();
    let (printed, _) = test.run_image(&second_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");

    // A blob deleted by hand from the store comes back from the
    // artifact's own layout when exporting.
    let binary_layer = image_of(&test, &second_id).layers[1].clone();
    std::fs::remove_file(store.path(&binary_layer.digest)).expect("delete blob");
    let archive = test.work.path().join("second.tar");
    let exported = arca(
        &test,
        &["export", &second_id, "-o", &archive.display().to_string()],
        &[],
    );
    assert!(exported.status.success(), "{}", text(&exported));
    assert!(store.has(&binary_layer.digest));
    remove_image(&test, &second_tag);
    load(&test, &archive);
    let (printed, _) = test.run_image(&second_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");

    // A corrupt blob that no copy can repair: a clear error naming the way
    // back, and no archive left behind.
    let config = image_of(&test, &second_id).config;
    for path in [
        store.path(&config.digest),
        test.store().select(&second_id).expect("record")[0]
            .dir
            .join("image/blobs/sha256")
            .join(config.digest.hex()),
    ] {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        let mut bytes = std::fs::read(&path).expect("config");
        bytes[0] = b' ';
        std::fs::write(&path, bytes).expect("corrupt config");
    }
    let broken = test.work.path().join("broken.tar");
    let failed = arca(
        &test,
        &["export", &second_id, "-o", &broken.display().to_string()],
        &[],
    );
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(stderr(&failed).contains("--force"), "{}", text(&failed));
    assert!(!broken.exists());
    let leftovers: Vec<PathBuf> = std::fs::read_dir(test.work.path())
        .expect("work dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().contains(".arca-export-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn prune_frees_unreferenced_blobs_keeps_referenced_ones_and_waits_for_builds() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let first = build(&test, RUNTIME_BASE, &[], &[]);
    assert!(first.status.success(), "{}", text(&first));
    let first_id = artifact_id(&first);
    edit_main(&test, "Hello from", "Goodbye from");
    let second = build(&test, RUNTIME_BASE, &[], &[]);
    assert!(second.status.success(), "{}", text(&second));
    let second_id = artifact_id(&second);
    let first_image = image_of(&test, &first_id);
    let second_image = image_of(&test, &second_id);
    let first_referrers = referrers_of(&test, &first_id);
    let second_referrers = referrers_of(&test, &second_id);

    // Age the first record so `prune local --days 1` removes it.
    let first_dir = test.store().select(&first_id).expect("record")[0]
        .dir
        .clone();
    let record = first_dir.join("metadata.toml");
    let text_record = std::fs::read_to_string(&record).expect("record");
    let aged = text_record
        .lines()
        .map(|line| {
            if line.starts_with("created_at_epoch_ms") {
                "created_at_epoch_ms = 1000".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&record, aged).expect("age");

    // A build holds the store: prune waits for it.
    let store = blobs(&test);
    let held = store.lock_shared().expect("lock");
    let mut prune = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["prune", "local", "--days", "1"])
        .env("ARCA_HOME", test.home.path())
        .env_remove("DOCKER_HOST")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn prune");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        prune.try_wait().expect("poll").is_none(),
        "prune must wait while a build holds the store"
    );
    for blob in first_image.blobs() {
        assert!(store.has(&blob.digest), "nothing collected while held");
    }
    drop(held);
    let output = prune.wait_with_output().expect("prune");
    assert!(output.status.success(), "{}", text(&output));
    assert!(stderr(&output).contains("waiting"), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let freed: u64 = stdout
        .split("Freed ")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|bytes| bytes.split(' ').next())
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or_else(|| panic!("no freed bytes in {stdout}"));
    // The first artifact's SBOM and provenance go with it; the second's stay.
    let second_blobs: Vec<_> = second_image
        .blobs()
        .chain(
            second_referrers
                .iter()
                .flat_map(|referrer| referrer.blobs()),
        )
        .collect();
    let first_only: Vec<_> = first_image
        .blobs()
        .chain(first_referrers.iter().flat_map(|referrer| referrer.blobs()))
        .filter(|blob| !second_blobs.contains(blob))
        .collect();
    assert!(
        !first_referrers.is_empty(),
        "the first artifact has its SBOM"
    );
    let expected: u64 = first_only.iter().map(|blob| blob.size).sum();
    assert_eq!(freed, expected, "{stdout}");
    for blob in first_only {
        assert!(!store.has(&blob.digest), "{} collected", blob.digest);
    }
    for blob in second_blobs {
        assert!(store.has(&blob.digest), "{} kept", blob.digest);
    }
    // What remains still exports, and the base in use stays imported.
    let archive = test.work.path().join("second.tar");
    let exported = arca(
        &test,
        &["export", &second_id, "-o", &archive.display().to_string()],
        &[],
    );
    assert!(exported.status.success(), "{}", text(&exported));
    let third = build(&test, RUNTIME_BASE, &["--force"], &[]);
    assert!(third.status.success(), "{}", text(&third));
    assert!(
        stderr(&third).contains("Base image in the store"),
        "{}",
        text(&third)
    );
}

#[test]
fn source_date_epoch_sets_layer_times_and_a_malformed_one_is_refused() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let refused = build(
        &test,
        RUNTIME_BASE,
        &[],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        stderr(&refused).contains("SOURCE_DATE_EPOCH `yesterday` is not a whole number"),
        "{}",
        text(&refused)
    );
    assert!(test.store().list().artifacts.is_empty());

    let built = build(
        &test,
        RUNTIME_BASE,
        &[],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    assert!(built.status.success(), "{}", text(&built));
    let image = image_of(&test, &artifact_id(&built));
    let layer = blobs(&test)
        .read(&image.layers.last().expect("layer").digest)
        .expect("layer");
    let mut archive = tar::Archive::new(layer.as_slice());
    let times: Vec<u64> = archive
        .entries()
        .expect("tar")
        .map(|entry| entry.expect("entry").header().mtime().expect("mtime"))
        .collect();
    assert_eq!(times, vec![1_700_000_000; 4]);
}

/// The real Docker engine, told to refuse thin archives as Podman does.
struct NoThinArchives(std::sync::Arc<dyn arca::engine::ContainerEngine>);

#[async_trait::async_trait]
impl arca::engine::ContainerEngine for NoThinArchives {
    fn endpoint(&self) -> &str {
        self.0.endpoint()
    }
    fn runtime_name(&self) -> &'static str {
        self.0.runtime_name()
    }
    fn is_remote(&self) -> bool {
        self.0.is_remote()
    }
    fn is_rootless(&self) -> bool {
        self.0.is_rootless()
    }
    fn accepts_thin_archives(&self) -> bool {
        false
    }
    async fn inspect_image(
        &self,
        reference: &str,
    ) -> anyhow::Result<Option<arca::engine::ImageFacts>> {
        self.0.inspect_image(reference).await
    }
    async fn pull_image(
        &self,
        reference: &str,
        progress: arca::engine::PullSink<'_>,
    ) -> anyhow::Result<()> {
        self.0.pull_image(reference, progress).await
    }
    async fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        output: arca::engine::LineSink<'_>,
    ) -> anyhow::Result<()> {
        self.0.build_image(tag, context, output).await
    }
    async fn remove_image(&self, reference: &str) -> anyhow::Result<()> {
        self.0.remove_image(reference).await
    }
    async fn export_image(
        &self,
        reference: &str,
        dest: &Path,
        progress: arca::engine::BytesSink<'_>,
    ) -> anyhow::Result<u64> {
        self.0.export_image(reference, dest, progress).await
    }
    async fn load_image(&self, archive: &Path) -> anyhow::Result<()> {
        // A thin archive would fail here on Podman; refuse it the same way.
        let file = std::fs::File::open(archive)?;
        let mut tar = tar::Archive::new(file);
        let mut layers = 0;
        let mut named = 0;
        for entry in tar.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.to_string_lossy().into_owned();
            if path.ends_with("/layer.tar") {
                layers += 1;
            } else if path == "manifest.json" {
                let manifest: serde_json::Value = serde_json::from_reader(&mut entry)?;
                named = manifest[0]["Layers"].as_array().map_or(0, Vec::len);
            }
        }
        anyhow::ensure!(
            layers == named,
            "Some layer tarfiles are missing in the tarball"
        );
        self.0.load_image(archive).await
    }
    async fn export_image_to(
        &self,
        reference: &str,
        sink: &mut (dyn tokio::io::AsyncWrite + Send + Unpin),
        progress: arca::engine::BytesSink<'_>,
    ) -> anyhow::Result<u64> {
        self.0.export_image_to(reference, sink, progress).await
    }
    async fn create_container(&self, spec: &arca::engine::ContainerSpec) -> anyhow::Result<String> {
        self.0.create_container(spec).await
    }
    async fn upload_tar(&self, container: &str, dest: &str, tar: Vec<u8>) -> anyhow::Result<()> {
        self.0.upload_tar(container, dest, tar).await
    }
    async fn start_container(&self, container: &str) -> anyhow::Result<()> {
        self.0.start_container(container).await
    }
    async fn follow_output(
        &self,
        container: &str,
        output: arca::engine::LineSink<'_>,
    ) -> anyhow::Result<()> {
        self.0.follow_output(container, output).await
    }
    async fn wait_container(&self, container: &str) -> anyhow::Result<i64> {
        self.0.wait_container(container).await
    }
    async fn kill_container(&self, container: &str) -> anyhow::Result<()> {
        self.0.kill_container(container).await
    }
    async fn remove_container(&self, container: &str) -> anyhow::Result<()> {
        self.0.remove_container(container).await
    }
    async fn read_file(&self, container: &str, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.0.read_file(container, path).await
    }
    async fn download_archive(
        &self,
        container: &str,
        path: &str,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        self.0.download_archive(container, path).await
    }
    async fn path_exists(&self, container: &str, path: &str) -> anyhow::Result<bool> {
        self.0.path_exists(container, path).await
    }
    async fn containers_with_labels(&self, labels: &[&str]) -> anyhow::Result<Vec<String>> {
        self.0.containers_with_labels(labels).await
    }
    async fn container_running(&self, container: &str) -> anyhow::Result<Option<bool>> {
        self.0.container_running(container).await
    }
    async fn exec(
        &self,
        container: &str,
        spec: &arca::engine::ExecSpec,
        output: arca::engine::LineSink<'_>,
    ) -> anyhow::Result<i64> {
        self.0.exec(container, spec, output).await
    }
    async fn ensure_volume(&self, name: &str, labels: &[(String, String)]) -> anyhow::Result<()> {
        self.0.ensure_volume(name, labels).await
    }
    async fn remove_volume(&self, name: &str) -> anyhow::Result<()> {
        self.0.remove_volume(name).await
    }
    async fn volumes_with_label(&self, label: &str) -> anyhow::Result<Vec<String>> {
        self.0.volumes_with_label(label).await
    }
}

#[test]
fn an_engine_refusing_thin_archives_gets_a_build_over_the_base_or_a_full_load() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let engine: std::sync::Arc<dyn arca::engine::ContainerEngine> =
        std::sync::Arc::new(NoThinArchives(test.engine.clone()));
    let env = arca::pipeline::BuildEnv::at(test.home.path()).with_engine(engine);
    let base = OwnBase::new(&test);
    let request = arca::pipeline::BuildRequest {
        path: test.crate_dir.clone(),
        overrides: arca::plan::SettingsOverrides {
            profile: Some("release".into()),
            features: Some(vec![]),
            bin: None,
            base_image: Some(base.tag.clone()),
            platforms: None,
        },
        host_build: true,
        force: true,
    };
    let messages = std::sync::Mutex::new(Vec::new());
    let events = |event: arca::pipeline::BuildEvent| {
        if let arca::pipeline::BuildEvent::StageDone { message } = event {
            messages.lock().expect("messages").push(message);
        }
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let outcome = test
        .runtime
        .block_on(arca::pipeline::package(&env, &request, &events, &cancel))
        .expect("package");
    let done = messages.lock().expect("messages").join("\n");
    assert!(done.contains("Built over the base in the engine"), "{done}");
    let tag = outcome.artifact.metadata.local_tag.clone();
    let (printed, _) = test.run_image(&tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");
    let facts = test
        .runtime
        .block_on(test.engine.inspect_image(&tag))
        .expect("inspect")
        .expect("image");
    let labels: std::collections::HashMap<_, _> = facts.labels.into_iter().collect();
    assert_eq!(
        labels.get("io.khoek.arca.artifact-id"),
        Some(&outcome.artifact.metadata.artifact_id)
    );
    // The image built over the base names its SBOM as the assembled one does.
    let sbom = arca::sbom::stored::summary(&outcome.artifact.dir).expect("an SBOM");
    assert_eq!(labels.get("io.khoek.arca.sbom"), Some(&sbom.digest));

    // Without the base, the full archive goes in (no thin one is tried).
    remove_image(&test, &tag);
    base.remove();
    messages.lock().expect("messages").clear();
    let outcome = test
        .runtime
        .block_on(arca::pipeline::package(&env, &request, &events, &cancel))
        .expect("package without the base");
    let done = messages.lock().expect("messages").join("\n");
    assert!(
        done.contains("Loaded the full image into the engine"),
        "{done}"
    );
    let (printed, _) = test.run_image(&outcome.artifact.metadata.local_tag);
    assert_eq!(printed, "Hello from hello 0.1.0!");
}

#[test]
fn two_builds_sharing_a_new_base_import_it_once() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let base = OwnBase::new(&test);
    let other = test.work.path().join("other/hello");
    docker::copy_tree(&test.crate_dir, &other);
    let other = other.canonicalize().expect("other crate");
    let env = arca::pipeline::BuildEnv::at(test.home.path()).with_engine(test.engine.clone());
    let request = |path: &Path| arca::pipeline::BuildRequest {
        path: path.to_path_buf(),
        overrides: arca::plan::SettingsOverrides {
            profile: Some("release".into()),
            features: Some(vec![]),
            bin: None,
            base_image: Some(base.tag.clone()),
            platforms: None,
        },
        host_build: true,
        force: true,
    };
    let imports = std::sync::Mutex::new(0);
    let events = |event: arca::pipeline::BuildEvent| {
        if let arca::pipeline::BuildEvent::StageDone { message } = event
            && message.contains("imported into the store")
        {
            *imports.lock().expect("count") += 1;
        }
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let (first_request, second_request) = (request(&test.crate_dir), request(&other));
    let (first, second) = test.runtime.block_on(async {
        tokio::join!(
            arca::pipeline::package(&env, &first_request, &events, &cancel),
            arca::pipeline::package(&env, &second_request, &events, &cancel)
        )
    });
    let first = first.expect("first build");
    let second = second.expect("second build");
    assert_eq!(
        *imports.lock().expect("count"),
        1,
        "the base is imported once"
    );
    for outcome in [&first, &second] {
        let (printed, _) = test.run_image(&outcome.artifact.metadata.local_tag);
        assert_eq!(printed, "Hello from hello 0.1.0!");
    }
    let first_image = image_of(&test, &first.artifact.metadata.artifact_id);
    let second_image = image_of(&test, &second.artifact.metadata.artifact_id);
    assert_eq!(
        first_image.layers, second_image.layers,
        "same base, same binary"
    );
    // The second crate's images are not under the test crate's label.
    let _ = test.runtime.block_on(
        test.engine
            .remove_image(&second.artifact.metadata.local_tag),
    );
}
