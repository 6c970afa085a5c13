//! Running `cargo metadata`, bounded and shared.
//!
//! - **Bounded:** at most [`max_concurrent`] cargo processes at once (the
//!   core count); further callers queue.
//! - **Coalesced per workspace:** one answer covers every member of the
//!   workspace it describes. A caller that got its turn first looks for a
//!   recent answer (under [`MEMO_TTL`]) that lists its manifest and whose
//!   manifests have not changed since (size and mtime); only without one
//!   does it run cargo. So a 200-member workspace costs one run, not 200.
//! - **Timed:** a run over [`TIMEOUT`] is killed and reported.
//!
//! Before cargo is started, the manifest and every `Cargo.toml` above it
//! must be regular files ([`crate::fsread`]): cargo would block forever on
//! a named pipe.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

/// How long a `cargo metadata` run may take.
pub const TIMEOUT: Duration = Duration::from_secs(180);
/// How long an answer is reused for other members of its workspace.
pub const MEMO_TTL: Duration = Duration::from_secs(10);

/// The most cargo processes Arca runs at once: the core count.
pub fn max_concurrent() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// One `cargo metadata` answer: the JSON, and which manifests it lists.
pub struct Answer {
    pub stdout: Vec<u8>,
    /// Manifests of the workspace members it answers for.
    members: Vec<PathBuf>,
    /// Every local manifest it depends on, with its stamp when read.
    manifests: Vec<(PathBuf, Option<Stamp>)>,
    at: Instant,
}

type Stamp = (u64, SystemTime);

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

impl Answer {
    fn answers(&self, manifest_path: &Path) -> bool {
        self.at.elapsed() < MEMO_TTL
            && self.members.iter().any(|path| path == manifest_path)
            && self
                .manifests
                .iter()
                .all(|(path, recorded)| stamp(path) == *recorded)
    }
}

struct Limiter {
    running: Mutex<usize>,
    freed: Condvar,
    memo: Mutex<Vec<Arc<Answer>>>,
}

static LIMITER: Limiter = Limiter {
    running: Mutex::new(0),
    freed: Condvar::new(),
    memo: Mutex::new(Vec::new()),
};

/// Test hook: the most cargo runs seen at once by this process.
static PEAK: Mutex<usize> = Mutex::new(0);

/// The most `cargo metadata` processes this process ran at once.
pub fn peak_concurrency() -> usize {
    *PEAK.lock().unwrap_or_else(|poison| poison.into_inner())
}

struct Permit;

impl Permit {
    fn acquire() -> Self {
        let limit = max_concurrent();
        let mut running = LIMITER
            .running
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        while *running >= limit {
            running = LIMITER
                .freed
                .wait(running)
                .unwrap_or_else(|poison| poison.into_inner());
        }
        *running += 1;
        let mut peak = PEAK.lock().unwrap_or_else(|poison| poison.into_inner());
        *peak = (*peak).max(*running);
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut running = LIMITER
            .running
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *running -= 1;
        LIMITER.freed.notify_one();
    }
}

fn recent_answer(manifest_path: &Path) -> Option<Arc<Answer>> {
    let mut memo = LIMITER
        .memo
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    memo.retain(|answer| answer.at.elapsed() < MEMO_TTL);
    memo.iter()
        .find(|answer| answer.answers(manifest_path))
        .cloned()
}

/// `cargo metadata --format-version 1` for the crate at `manifest_path`
/// (canonical), bounded, shared and timed as the module says.
pub fn metadata(manifest_path: &Path) -> Result<Arc<Answer>> {
    check_manifests(manifest_path)?;
    if let Some(answer) = recent_answer(manifest_path) {
        return Ok(answer);
    }
    let _permit = Permit::acquire();
    // Another member's run may have answered while this one queued.
    if let Some(answer) = recent_answer(manifest_path) {
        return Ok(answer);
    }
    let started = Instant::now();
    let stdout = run(manifest_path)?;
    let (members, manifests) = listed_manifests(&stdout, manifest_path);
    let answer = Arc::new(Answer {
        stdout,
        members,
        manifests,
        at: started,
    });
    LIMITER
        .memo
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .push(answer.clone());
    Ok(answer)
}

/// The workspace members' manifests an answer lists, and every local
/// manifest it depends on, stamped.
fn listed_manifests(
    stdout: &[u8],
    manifest_path: &Path,
) -> (Vec<PathBuf>, Vec<(PathBuf, Option<Stamp>)>) {
    #[derive(serde::Deserialize)]
    struct Listing {
        workspace_root: PathBuf,
        workspace_members: Vec<String>,
        packages: Vec<Package>,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        id: String,
        manifest_path: PathBuf,
        source: Option<String>,
    }
    let mut members = vec![manifest_path.to_path_buf()];
    let mut paths = vec![manifest_path.to_path_buf()];
    if let Ok(listing) = serde_json::from_slice::<Listing>(stdout) {
        paths.push(listing.workspace_root.join("Cargo.toml"));
        paths.push(listing.workspace_root.join("Cargo.lock"));
        for package in listing.packages {
            if listing.workspace_members.contains(&package.id) {
                members.push(package.manifest_path.clone());
            }
            if package.source.is_none() {
                paths.push(package.manifest_path);
            }
        }
    }
    paths.sort();
    paths.dedup();
    let stamped = paths
        .into_iter()
        .map(|path| {
            let stamp = stamp(&path);
            (path, stamp)
        })
        .collect();
    (members, stamped)
}

/// Files cargo (and rustup's proxy) read in a directory and its ancestors:
/// each must be a regular file within bounds when it exists, else cargo
/// would block on a pipe or read a device.
const READ_BY_CARGO: [(&str, crate::fsread::Kind); 6] = [
    ("Cargo.toml", crate::fsread::Kind::CargoManifest),
    ("Cargo.lock", crate::fsread::Kind::CargoSupport),
    (".cargo/config", crate::fsread::Kind::CargoSupport),
    (".cargo/config.toml", crate::fsread::Kind::CargoSupport),
    ("rust-toolchain", crate::fsread::Kind::CargoSupport),
    ("rust-toolchain.toml", crate::fsread::Kind::CargoSupport),
];

/// The manifest, and what cargo reads in the crate's directory and every
/// directory above it, must be regular files when they exist.
fn check_manifests(manifest_path: &Path) -> Result<()> {
    crate::fsread::check(manifest_path, crate::fsread::Kind::CargoManifest)
        .with_context(|| format!("Cannot read the crate manifest {}", manifest_path.display()))?;
    for dir in manifest_path.parent().into_iter().flat_map(Path::ancestors) {
        for (name, kind) in READ_BY_CARGO {
            let candidate = dir.join(name);
            if std::fs::symlink_metadata(&candidate).is_err() {
                continue;
            }
            if let Err(error) = crate::fsread::check(&candidate, kind)
                && error.kind() != std::io::ErrorKind::NotFound
                && error.kind() != std::io::ErrorKind::PermissionDenied
            {
                bail!("Cargo would read {}: {error}", candidate.display());
            }
        }
    }
    Ok(())
}

fn run(manifest_path: &Path) -> Result<Vec<u8>> {
    run_cargo(
        manifest_path,
        &["metadata", "--no-deps", "--format-version", "1"],
        None,
    )
}

/// How to ask cargo for a crate's linked packages ([`normal_tree`]).
#[derive(Debug, Clone, Default)]
pub struct TreeOptions {
    /// The target triple whose dependencies count (`--target`).
    pub target: String,
    /// `--features`, as the build passed them.
    pub features: Vec<String>,
    /// The cargo home the build used (its registry cache), instead of the
    /// user's own.
    pub cargo_home: Option<PathBuf>,
    /// `--offline`: the build downloaded everything the tree names.
    pub offline: bool,
}

/// The line format [`normal_tree`] asks for: the package, then its license.
pub const TREE_FORMAT: &str = "{p}|{l}";

/// `cargo tree --locked -e normal --target T --prefix depth` of the crate
/// at `manifest_path`: its normal dependencies, resolved as `cargo build`
/// resolves them (no dev-dependency features), one
/// `<depth><package>|<license>` line each. Bounded and timed like
/// [`metadata`], never memoized (its callers cache by the lock file).
pub fn normal_tree(manifest_path: &Path, options: &TreeOptions) -> Result<Vec<u8>> {
    check_manifests(manifest_path)?;
    let mut args: Vec<String> = [
        "tree",
        "--locked",
        "--edges",
        "normal",
        "--prefix",
        "depth",
        "--charset",
        "ascii",
        "--format",
        TREE_FORMAT,
        "--target",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.push(options.target.clone());
    if options.offline {
        args.push("--offline".into());
    }
    if !options.features.is_empty() {
        args.extend(["--features".to_owned(), options.features.join(",")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _permit = Permit::acquire();
    run_cargo(manifest_path, &args, options.cargo_home.as_deref())
}

/// Runs `cargo <args> --manifest-path <manifest>` in the crate's
/// directory, killed after [`TIMEOUT`]; stdout on success, cargo's error
/// otherwise.
fn run_cargo(manifest_path: &Path, args: &[&str], cargo_home: Option<&Path>) -> Result<Vec<u8>> {
    let crate_dir = manifest_path.parent().unwrap_or(Path::new("."));
    let mut command = Command::new("cargo");
    command
        .current_dir(crate_dir)
        .args(args)
        .arg("--manifest-path")
        .arg(manifest_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(home) = cargo_home {
        command.env("CARGO_HOME", home);
    }
    let child = command.spawn().with_context(|| {
        format!(
            "Failed to run `cargo {}`: is cargo installed and on PATH?",
            args[0]
        )
    })?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(TIMEOUT) {
        Ok(output) => output.with_context(|| format!("Failed to run `cargo {}`", args[0]))?,
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, not yet reaped
            // (its waiter thread is still blocked on it).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            bail!(
                "`cargo {}` for {} took longer than {} s and was stopped. Check the manifest and that cargo can reach its registry (or use an offline cargo config).",
                args[0],
                manifest_path.display(),
                TIMEOUT.as_secs()
            );
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        bail!(
            "Cargo could not read `{}`:\n{detail}\nFix the manifest and try again.",
            manifest_path.display()
        );
    }
    Ok(output.stdout)
}
