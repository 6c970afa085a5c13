//! A build through rootless podman, as most podman users run it (issue 12):
//! the real `arca` binary run by an unprivileged user finds that user's
//! podman socket by itself (`$XDG_RUNTIME_DIR/podman/podman.sock`), builds
//! the example, and everything it wrote (caches, target dir, record) is
//! owned by that user, not by a subordinate id of the user namespace.
//!
//! Needs root (to act as the user) and `.ci/podman-rootless-setup.sh` (run
//! by `.ci/podman-setup.sh`: user `arcapod`, its service, the fixtures, the
//! host toolchain); skipped with a note without them, failed when
//! `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/watchdog.rs"]
mod watchdog;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The user `.ci/podman-setup.sh` runs rootless podman as.
const ROOTLESS_USER: &str = "arcapod";
const RUNTIME_BASE: &str = "nvidia/cuda:12.8.1-runtime-ubuntu24.04";
const LABEL: &str = "io.khoek.arca.crate-dir";
/// The host toolchain as the user sees it (`.ci/podman-setup.sh`): arca
/// runs `cargo metadata` on the host.
const TOOLCHAIN_BIN: &str = "/opt/arca-rootless-rust/bin";

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn unavailable(why: &str) {
    if std::env::var("ARCA_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("ARCA_REQUIRE_DOCKER=1 but {why}. Run .ci/podman-setup.sh.");
    }
    eprintln!("note: skipping the rootless podman test: {why} (run .ci/podman-setup.sh)");
}

/// The user's uid, gid and home.
fn user() -> Option<(u32, u32, PathBuf)> {
    let output = Command::new("getent")
        .args(["passwd", ROOTLESS_USER])
        .output()
        .ok()?;
    let line = String::from_utf8(output.stdout).ok()?;
    let fields: Vec<&str> = line.trim().split(':').collect();
    Some((
        fields.get(2)?.parse().ok()?,
        fields.get(3)?.parse().ok()?,
        PathBuf::from(fields.get(5)?),
    ))
}

/// Runs `args` as the user, with its runtime dir and home, and no engine
/// named in the environment.
fn as_user(uid: u32, home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("runuser");
    command
        .args(["-u", ROOTLESS_USER, "--", "env"])
        .args([
            "-u",
            "DOCKER_HOST",
            "-u",
            "CONTAINER_HOST",
            "-u",
            "ARCA_ENGINE",
        ])
        .arg(format!("XDG_RUNTIME_DIR=/run/user/{uid}"))
        .arg(format!("HOME={}", home.display()))
        .arg(format!("PATH={TOOLCHAIN_BIN}:/usr/bin:/bin"))
        .args(args)
        .current_dir("/");
    command
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_name() == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            chown_tree(&entry.expect("entry").path(), uid, gid);
        }
    }
}

/// Every path under `root` whose owner is not `uid`.
fn not_owned_by(root: &Path, uid: u32, found: &mut Vec<(PathBuf, u32)>) {
    let metadata = std::fs::symlink_metadata(root).expect("metadata");
    if metadata.uid() != uid {
        found.push((root.to_owned(), metadata.uid()));
    }
    if metadata.is_dir() {
        for entry in std::fs::read_dir(root).expect("read dir") {
            not_owned_by(&entry.expect("entry").path(), uid, found);
        }
    }
}

/// Removes the test's containers and image from the user's podman.
struct Cleanup {
    uid: u32,
    home: PathBuf,
    crate_dir: String,
    tag: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label={LABEL}={}", self.crate_dir);
        if let Ok(output) = as_user(
            self.uid,
            &self.home,
            &["podman", "ps", "-aq", "--filter", &filter],
        )
        .output()
        {
            for id in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                let _ = as_user(self.uid, &self.home, &["podman", "rm", "-f", id]).output();
            }
        }
        if let Some(tag) = &self.tag {
            let _ = as_user(self.uid, &self.home, &["podman", "rmi", "-f", tag]).output();
        }
    }
}

#[test]
fn a_rootless_podman_build_runs_as_the_user_and_leaves_only_files_the_user_owns() {
    let _watchdog = watchdog::Watchdog::arm();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return unavailable("the test must run as root to act as the rootless user");
    }
    let Some((uid, gid, home)) = user() else {
        return unavailable(&format!("there is no user {ROOTLESS_USER}"));
    };
    if !Path::new(TOOLCHAIN_BIN).join("cargo").is_file() {
        return unavailable(&format!("{TOOLCHAIN_BIN}/cargo is missing"));
    }
    let socket = format!("/run/user/{uid}/podman/podman.sock");
    if std::os::unix::net::UnixStream::connect(&socket).is_err() {
        return unavailable(&format!("rootless podman does not answer on {socket}"));
    }

    let work = tempfile::Builder::new()
        .prefix("arca-rootless-")
        .tempdir_in("/tmp")
        .expect("work dir");
    let crate_dir = work.path().join("hello");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &crate_dir,
    );
    // A copy of the binary the user can run wherever the checkout lives.
    let arca = work.path().join("arca");
    std::fs::copy(env!("CARGO_BIN_EXE_arca"), &arca).expect("copy arca");
    let arca_home = work.path().join("home");
    std::fs::create_dir(&arca_home).expect("home");
    chown_tree(work.path(), uid, gid);
    let mut cleanup = Cleanup {
        uid,
        home: home.clone(),
        crate_dir: crate_dir.display().to_string(),
        tag: None,
    };

    let arca_home_env = format!("ARCA_HOME={}", arca_home.display());
    let output = as_user(
        uid,
        &home,
        &[
            &arca_home_env,
            arca.to_str().expect("path"),
            "--engine",
            "podman",
            "build",
            "rust",
            crate_dir.to_str().expect("path"),
            "--profile",
            "release",
            "--features",
            "",
            "--base-image",
            RUNTIME_BASE,
        ],
    )
    .output()
    .expect("run arca as the user");
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(" · podman at unix://{socket}")),
        "found the user's socket by itself: {stderr}"
    );

    let store = arca::store::Store::at(arca_home.join("containers"));
    let artifacts = store.list().artifacts;
    assert_eq!(artifacts.len(), 1, "{}", text(&output));
    let metadata = &artifacts[0].metadata;
    cleanup.tag = Some(metadata.local_tag.clone());
    assert_eq!(metadata.runtime, "podman");

    // cargo's output in the bind-mounted caches belongs to the user.
    let binary = arca_home.join("cache/rust/builds");
    let built: Vec<PathBuf> = std::fs::read_dir(&binary)
        .expect("builds")
        .flatten()
        .map(|entry| entry.path().join("target/release/hello"))
        .filter(|path| path.is_file())
        .collect();
    assert_eq!(
        built.len(),
        1,
        "one built binary under {}",
        binary.display()
    );
    let mut foreign = Vec::new();
    not_owned_by(work.path(), uid, &mut foreign);
    assert!(
        foreign.is_empty(),
        "paths not owned by {ROOTLESS_USER} ({uid}): {foreign:?}"
    );

    let run = as_user(
        uid,
        &home,
        &["podman", "run", "--rm", metadata.local_tag.as_str()],
    )
    .output()
    .expect("podman run");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "Hello from hello 0.1.0!",
        "{}",
        text(&run)
    );
}
