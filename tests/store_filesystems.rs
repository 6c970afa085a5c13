//! The layer store on real file systems that refuse writes (issue 9's bad
//! input): an `ARCA_HOME` on a small tmpfs that fills up while a base is
//! imported (from the engine, and fetched from a registry), and an
//! `ARCA_HOME` (or just its blob store) on a read-only mount. Each build
//! fails with an error naming the path and the cause, and leaves no
//! record, no blob, no temporary file and no container.
//!
//! Mounting needs root (CI runs as root). Where mounting is not permitted
//! the tests say so and pass, or fail under `ARCA_REQUIRE_DOCKER=1`. Every
//! mount is undone by a guard, also when a test panics. Also needs
//! `.ci/docker-up.sh`, `.ci/fixtures.sh` and `.ci/registry-setup.sh`.

#[path = "common/docker.rs"]
mod docker;
#[path = "common/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use docker::{DockerTest, RUNTIME_BASE, files_under, text};

/// A tmpfs mounted for one test; unmounted when dropped (a panic too).
struct Mount {
    path: PathBuf,
}

impl Mount {
    /// A tmpfs of `size` (`8m`) at `path`, or `None` with a note when this
    /// process may not mount (fails under `ARCA_REQUIRE_DOCKER=1`).
    fn tmpfs(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).expect("mount point");
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .output();
        match output {
            Ok(output) if output.status.success() => Some(Self {
                path: path.to_owned(),
            }),
            other => {
                let why = match other {
                    Ok(output) => text(&output),
                    Err(error) => error.to_string(),
                };
                assert!(
                    std::env::var("ARCA_REQUIRE_DOCKER").as_deref() != Ok("1"),
                    "ARCA_REQUIRE_DOCKER=1 but mounting a tmpfs is not permitted here (run the tests as root): {why}"
                );
                eprintln!(
                    "note: skipping: mounting a tmpfs is not permitted here (needs root): {why}"
                );
                None
            }
        }
    }

    fn remount_read_only(&self) {
        let output = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.path)
            .output()
            .expect("mount");
        assert!(output.status.success(), "remount ro: {}", text(&output));
        assert!(
            std::fs::write(self.path.join("probe"), b"x").is_err(),
            "the mount is still writable"
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Busy (a process still in it): detach it now, freed later.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// A base image of this test's own: the fixture plus `megabytes` of
/// random (incompressible) bytes. Removed when dropped.
struct BigBase<'a> {
    test: &'a DockerTest,
    tag: String,
}

impl<'a> BigBase<'a> {
    fn new(test: &'a DockerTest, megabytes: u32) -> Self {
        let unique = test.store().new_artifact_id();
        let tag = format!("arca-test/full-disk-base:{unique}");
        let mut context = arca::engine::tar_context::TarContext::new();
        context
            .add_file(
                "Containerfile",
                format!(
                    "FROM {RUNTIME_BASE}\nRUN dd if=/dev/urandom of=/filler bs=1048576 count={megabytes} 2>/dev/null && echo {unique} > /unique\n"
                )
                .as_bytes(),
                0o644,
            )
            .expect("containerfile");
        let context = context.finish().expect("context");
        test.watchdog.step(format!("building the base {tag}"));
        test.runtime
            .block_on(test.engine.build_image(&tag, context, &|_| {}))
            .expect("build the test base");
        Self { test, tag }
    }
}

impl Drop for BigBase<'_> {
    fn drop(&mut self) {
        let _ = self
            .test
            .runtime
            .block_on(self.test.engine.remove_image(&self.tag));
    }
}

/// [`DockerTest::host_build_command`] on `base` with `ARCA_HOME` at `home`
/// (a host build: cargo's own files stay out of it).
fn build(test: &DockerTest, home: &Path, base: &str) -> Output {
    test.host_build_command(base)
        .env("ARCA_HOME", home)
        .output()
        .expect("run arca")
}

/// No record, no blob, no temporary file, no base record, no container.
fn assert_nothing_left(test: &DockerTest, home: &Path) {
    let none: [String; 0] = [];
    let records: Vec<String> = files_under(&home.join("containers"))
        .into_iter()
        .filter(|path| !path.ends_with(".lock"))
        .collect();
    assert_eq!(records, none, "a record or staging file was left");
    assert_eq!(files_under(&home.join("blobs/sha256")), none, "blobs left");
    assert_eq!(
        files_under(&home.join("blobs/tmp")),
        none,
        "temp files left"
    );
    let bases: Vec<String> = files_under(&home.join("bases"))
        .into_iter()
        .filter(|path| !path.ends_with(".lock"))
        .collect();
    assert_eq!(bases, none, "a base record or its temp file was left");
    assert_eq!(test.leftover_containers(), none);
}

fn assert_disk_full(output: &Output, home: &Path) {
    assert!(!output.status.success(), "{}", text(output));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("the disk is full"), "{log}");
    assert!(
        log.contains(&home.join("blobs").display().to_string()),
        "the error names the path: {log}"
    );
    assert!(log.contains("No space left on device"), "{log}");
}

#[test]
fn a_disk_that_fills_up_during_the_base_import_fails_cleanly() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let home = test.work.path().join("small-home");
    let Some(mount) = Mount::tmpfs(&home, "16m") else {
        return;
    };
    let base = BigBase::new(&test, 40);

    // From the engine: its export of a 40 MB layer does not fit.
    let output = build(&test, &mount.path, &base.tag);
    assert_disk_full(&output, &mount.path);
    assert_nothing_left(&test, &mount.path);

    // From a registry (the engine lacks that reference): the same.
    if !registry::tools_present() {
        return;
    }
    let registry = registry::Registry::start(None, None);
    let remote = registry.put_image(&format!("docker-daemon:{}", base.tag), "full-disk:1");
    let output = build(&test, &mount.path, &remote);
    assert_disk_full(&output, &mount.path);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&remote),
        "{}",
        text(&output)
    );
    assert_nothing_left(&test, &mount.path);
}

#[test]
fn a_read_only_store_gives_a_clear_error() {
    let Some(test) = DockerTest::new() else {
        return;
    };

    // All of ARCA_HOME read-only: refused before anything runs.
    let home = test.work.path().join("ro-home");
    let Some(mount) = Mount::tmpfs(&home, "4m") else {
        return;
    };
    mount.remount_read_only();
    let output = build(&test, &mount.path, RUNTIME_BASE);
    assert!(!output.status.success(), "{}", text(&output));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("is on a read-only file system"), "{log}");
    assert!(log.contains(&mount.path.display().to_string()), "{log}");
    assert_eq!(test.leftover_containers(), [] as [String; 0]);
    drop(mount);

    // Only the blob store read-only: the base import says so, and no
    // record is written.
    let home = test.work.path().join("home-ro-blobs");
    let Some(blobs) = Mount::tmpfs(&home.join("blobs"), "4m") else {
        return;
    };
    blobs.remount_read_only();
    let output = build(&test, &home, RUNTIME_BASE);
    assert!(!output.status.success(), "{}", text(&output));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains(&format!(
            "{} is on a read-only file system",
            home.join("blobs/sha256").display()
        )),
        "{log}"
    );
    assert_nothing_left(&test, &home);
}
