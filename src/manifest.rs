//! Precise input manifests: exactly what went into a built binary.
//!
//! After a build, cargo's dep-info for the binary (`<profile>/<bin>.d`)
//! lists every file rustc and the build scripts declared: the crate's and its
//! local path dependencies' sources, `include_str!`/`include_bytes!` files,
//! build scripts and their `rerun-if-changed` paths. To that the manifest
//! adds every local package's `Cargo.toml`, the workspace `Cargo.toml` and
//! `Cargo.lock`, `.cargo/config*`, the whole directory of any local package
//! whose build script declares no `rerun-if-changed` (as cargo does), `env!`
//! variables of host builds (rustc's `# env-dep:` lines), and the settings.
//! Registry and git sources are covered by `Cargo.lock`.
//!
//! The artifact's `build_fingerprint` is [`Manifest::digest`]; the live
//! fingerprint is the digest of the same manifest over today's contents of
//! the same paths ([`Manifest::relive`]), so a README, a test, a bench or an
//! editor swap file never makes an image stale, and every real input does.
//!
//! **Knows neither Docker nor LSP;** it reads files the build left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::{BuildSettings, profile_output_dir};
use crate::workspace::{CrateFacts, SKIPPED_DIR_NAMES};

/// The manifest's file name beside `metadata.toml`.
pub const INPUTS_FILE: &str = "inputs.json";
const FORMAT_VERSION: u32 = 1;
/// The mode prefix of host builds (`host:<rustc -Vv>`).
pub const HOST_MODE_PREFIX: &str = "host:";

/// The recorded mode of a build in the builder container for a base image.
pub fn container_mode(base_image: &str) -> String {
    format!(
        "container:{}",
        crate::plan::builder_fingerprint_key(base_image)
    )
}

/// The recorded mode of a host build with this `rustc -Vv` text.
pub fn host_mode(rustc_version: &str) -> String {
    format!("{HOST_MODE_PREFIX}{rustc_version}")
}

/// The host build mode of this process's `rustc` (asked once).
pub fn current_host_mode() -> Option<String> {
    static MODE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    MODE.get_or_init(|| {
        let output = std::process::Command::new("rustc")
            .arg("-Vv")
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| host_mode(&String::from_utf8_lossy(&output.stdout)))
    })
    .clone()
}

/// Digest recorded for a path that does not exist.
const ABSENT: &str = "absent";

/// How the binary was built, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSettings {
    pub profile: String,
    /// Sorted, without duplicates.
    pub features: Vec<String>,
    pub bin: String,
    pub base_image: String,
    /// `container:<builder key>` or `host:<rustc -Vv>`.
    pub mode: String,
}

impl ManifestSettings {
    pub fn new(settings: &BuildSettings, mode: String) -> Self {
        let mut features = settings.features.clone();
        features.sort();
        features.dedup();
        Self {
            profile: settings.profile.clone(),
            features,
            bin: settings.bin.clone(),
            base_image: settings.base_image.clone(),
            mode,
        }
    }
}

/// The recorded inputs of one artifact (`inputs.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: u32,
    /// The crate directory: reasons name paths relative to it.
    pub crate_dir: PathBuf,
    pub settings: ManifestSettings,
    /// Every input file (host path) with its SHA-256, or `absent`.
    pub files: BTreeMap<PathBuf, String>,
    /// Directories whose every file is an input (files added there count).
    pub whole_dirs: BTreeSet<PathBuf>,
    /// Those of `whole_dirs` that are local packages whose build script
    /// declares no `rerun-if-changed`: their files are the package's files
    /// by cargo's rules ([`package_files`]: `include`/`exclude`,
    /// `.gitignore` in a git checkout, no nested packages), not every file.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub whole_packages: BTreeSet<PathBuf>,
    /// The files cargo's dep-info named (the rest of `files` are manifests,
    /// the lock file, cargo config, and whole-package files).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub declared: BTreeSet<PathBuf>,
    /// `env!`/`option_env!` variables with their values (`None`: unset).
    pub env: BTreeMap<String, Option<String>>,
}

/// Where the build left its outputs, and how its paths map to the host.
pub struct BuildOutputs<'a> {
    /// The cargo target directory, as a host path holding at least
    /// `<profile>/<bin>.d`, `<profile>/deps/*.d` and
    /// `<profile>/build/*/output`.
    pub target_dir: &'a Path,
    /// Path prefixes as the build saw them, and the host paths they stand for
    /// (e.g. `/work/source` → the mounted source root).
    pub path_map: Vec<(PathBuf, PathBuf)>,
    /// Whether `env!` variables are recorded (host builds: the server's
    /// environment is the build's; container builds have Arca's own).
    pub record_env: bool,
}

/// Records the manifest of a finished build.
pub fn record(
    facts: &CrateFacts,
    settings: &BuildSettings,
    mode: String,
    outputs: &BuildOutputs,
    home_dir: Option<&Path>,
) -> Result<Manifest> {
    let profile_dir = outputs
        .target_dir
        .join(profile_output_dir(&settings.profile));
    let dep_info = profile_dir.join(format!("{}.d", settings.bin));
    let text = crate::fsread::read_to_string(&dep_info, crate::fsread::Kind::BuildOutput)
        .with_context(|| {
            format!(
                "Failed to read cargo's dep-info {} after the build",
                dep_info.display()
            )
        })?;
    let local_roots: Vec<PathBuf> = facts
        .local_package_dirs
        .iter()
        .cloned()
        .chain([facts.workspace_root.clone()])
        .collect();
    let mut paths = BTreeSet::new();
    let mut whole_dirs = BTreeSet::new();
    let mut whole_packages = BTreeSet::new();
    let mut declared = BTreeSet::new();
    for dependency in parse_dep_info(&text) {
        let path = map_path(&dependency, &outputs.path_map);
        if !local_roots.iter().any(|root| path.starts_with(root)) {
            continue; // registry, git or toolchain source: covered by Cargo.lock
        }
        if path.is_dir() {
            whole_dirs.insert(path);
        } else {
            declared.insert(path.clone());
            paths.insert(path);
        }
    }
    for package_dir in &facts.local_package_dirs {
        paths.insert(package_dir.join("Cargo.toml"));
        // Recorded absent: a build script added later makes cargo rebuild.
        paths.extend(absent_build_script(package_dir));
        if let Some(name) = build_script_package(package_dir)
            && !declares_rerun_if_changed(&profile_dir, &name)
        {
            whole_dirs.insert(package_dir.clone());
            whole_packages.insert(package_dir.clone());
        }
    }
    paths.insert(facts.workspace_root.join("Cargo.toml"));
    paths.insert(facts.workspace_root.join("Cargo.lock"));
    paths.extend(
        crate::fingerprint::input_roots(facts, home_dir)
            .into_iter()
            .filter(|path| !path.is_dir()),
    );
    for dir in &whole_dirs {
        paths.extend(dir_inputs(dir, &whole_packages));
    }
    let env = if outputs.record_env {
        env_dependencies(&profile_dir, facts, settings)
    } else {
        BTreeMap::new()
    };
    let files = paths
        .into_iter()
        .map(|path| {
            let digest = if in_whole_package(&path, &whole_packages) {
                raw_file_digest(&path)?
            } else {
                file_digest(&path)?
            };
            Ok((path, digest))
        })
        .collect::<Result<_>>()?;
    Ok(Manifest {
        version: FORMAT_VERSION,
        crate_dir: facts.crate_dir.clone(),
        settings: ManifestSettings::new(settings, mode),
        files,
        whole_dirs,
        whole_packages,
        declared,
        env,
    })
}

/// The files of a whole-directory input: a package's files by cargo's
/// rules, or every file of a `rerun-if-changed` directory.
fn dir_inputs(dir: &Path, whole_packages: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    if whole_packages.contains(dir) {
        package_files(dir)
    } else {
        files_below(dir)
    }
}

/// What differs between a recorded manifest and today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relived {
    /// The digest of the manifest over today's inputs.
    pub digest: String,
    /// Changed inputs, as reasons: `src/main.rs changed`, `env MY_VAR changed`.
    pub changes: Vec<String>,
}

impl Manifest {
    /// The artifact's fingerprint: SHA-256 over a canonical form of the
    /// manifest (length-prefixed fields, paths sorted).
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        let mut text = |value: &str| {
            hasher.update((value.len() as u64).to_le_bytes());
            hasher.update(value.as_bytes());
        };
        text("arca-inputs-v1");
        let settings = &self.settings;
        for value in [
            &settings.profile,
            &settings.bin,
            &settings.base_image,
            &settings.mode,
        ] {
            text(value);
        }
        text(&settings.features.len().to_string());
        for feature in &settings.features {
            text(feature);
        }
        for (path, digest) in &self.files {
            text("file");
            text(&path.to_string_lossy());
            text(digest);
        }
        for dir in &self.whole_dirs {
            text("dir");
            text(&dir.to_string_lossy());
        }
        for (name, value) in &self.env {
            text("env");
            text(name);
            text(value.as_deref().unwrap_or("\0unset"));
        }
        format!("{:x}", hasher.finalize())
    }

    /// The same manifest over today's contents of the same paths, today's
    /// settings and environment, with what changed. `digest_of` gives a
    /// file's current digest (callers with a warm index pass a cached one;
    /// [`file_digest`] reads the file).
    pub fn relive(
        &self,
        settings: &ManifestSettings,
        env: impl Fn(&str) -> Option<String>,
        digest_of: impl Fn(&Path) -> Result<String>,
    ) -> Result<Relived> {
        let mut today = self.clone();
        today.settings = settings.clone();
        let mut changes = Vec::new();
        let mut current_paths: BTreeSet<PathBuf> = self.files.keys().cloned().collect();
        for dir in &self.whole_dirs {
            current_paths.extend(dir_inputs(dir, &self.whole_packages));
        }
        today.files = BTreeMap::new();
        for path in current_paths {
            let digest = if in_whole_package(&path, &self.whole_packages) {
                raw_file_digest(&path)?
            } else {
                digest_of(&path)?
            };
            match self.files.get(&path) {
                None => changes.push(format!(
                    "{} added{}",
                    self.display(&path),
                    self.why_an_input(&path)
                )),
                Some(recorded) if *recorded != digest => {
                    let what = if digest == ABSENT {
                        "removed"
                    } else if recorded == ABSENT {
                        "added"
                    } else {
                        "changed"
                    };
                    changes.push(format!(
                        "{} {what}{}",
                        self.display(&path),
                        self.why_an_input(&path)
                    ));
                }
                Some(_) => {}
            }
            let recorded_inside_whole_dir = self.files.contains_key(&path);
            if digest != ABSENT || recorded_inside_whole_dir {
                today.files.insert(path, digest);
            }
        }
        for (name, recorded) in &self.env {
            let value = env(name);
            if value != *recorded {
                changes.push(format!("env {name} changed"));
            }
            today.env.insert(name.clone(), value);
        }
        Ok(Relived {
            digest: today.digest(),
            changes,
        })
    }

    /// Why a file that is not a source is an input, when the reason is
    /// cargo's whole-package rule: ` (build.rs declares no
    /// rerun-if-changed, so cargo rebuilds on any file of the package)`.
    fn why_an_input(&self, path: &Path) -> String {
        if self.declared.contains(path) || path.file_name().is_some_and(|name| name == "Cargo.toml")
        {
            return String::new();
        }
        let Some(package) = self
            .whole_packages
            .iter()
            .find(|package| path.starts_with(package))
        else {
            return String::new();
        };
        let script = build_script_path(package)
            .map(|script| self.display(&script))
            .unwrap_or_else(|| "its build script".to_owned());
        format!(
            " ({script} declares no rerun-if-changed, so cargo rebuilds on any file of the package)"
        )
    }

    /// A path as reasons show it: relative to the crate when inside it.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.crate_dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// Writes `inputs.json` into an artifact directory.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        let path = dir.join(INPUTS_FILE);
        let text = self.to_bytes()?;
        fs::write(&path, text).with_context(|| format!("Failed to write {}", path.display()))
    }

    /// The bytes of `inputs.json`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).context("Failed to serialize the inputs")
    }

    /// Reads an artifact's `inputs.json`: `Ok(None)` when it has none (made
    /// by the original CLI), an error when it exists but cannot be used.
    pub fn read_from(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(INPUTS_FILE);
        let bytes = match crate::fsread::read(&path, crate::fsread::Kind::InputManifest) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("Failed to read {}", path.display()));
            }
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid input manifest", path.display()))?;
        if manifest.version != FORMAT_VERSION {
            bail!(
                "{} has format version {}, this arca reads {FORMAT_VERSION}",
                path.display(),
                manifest.version
            );
        }
        Ok(Some(manifest))
    }
}

/// A file's SHA-256 as the manifest records it (`absent` when missing).
///
/// `Cargo.lock` is digested by its meaning, not its bytes: cargo reads the
/// resolve from it, so a blank line or a comment changes nothing cargo
/// builds (a lock file that is not valid TOML is digested by its bytes).
pub fn file_digest(path: &Path) -> Result<String> {
    match fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(ABSENT.to_owned()),
        Ok(metadata) if metadata.is_dir() => return Ok("directory".to_owned()),
        _ => {}
    }
    if path.file_name().is_some_and(|name| name == "Cargo.lock") {
        let digest = crate::fsread::read(path, crate::fsread::Kind::CargoManifest)
            .map(|bytes| lock_file_digest(&bytes));
        return digest
            .with_context(|| format!("Failed to read build input file: {}", path.display()));
    }
    match stream_digest(path) {
        Ok(digest) => Ok(digest),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(ABSENT.to_owned()),
        Err(error) => Err(error)
            .with_context(|| format!("Failed to read build input file: {}", path.display())),
    }
}

/// Whether a lock file is a file of a whole-package input: cargo then
/// reruns the build script when its bytes change (mtime, in fact), so its
/// bytes count, not its meaning.
fn in_whole_package(path: &Path, whole_packages: &BTreeSet<PathBuf>) -> bool {
    path.file_name().is_some_and(|name| name == "Cargo.lock")
        && whole_packages
            .iter()
            .any(|package| path.starts_with(package))
}

/// SHA-256 of a regular file's bytes, streamed: a named pipe or device
/// among the inputs is an error, never a hang.
fn stream_digest(path: &Path) -> std::io::Result<String> {
    let mut file = crate::fsread::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// A file's SHA-256 over its bytes (`absent` when missing).
fn raw_file_digest(path: &Path) -> Result<String> {
    match stream_digest(path) {
        Ok(digest) => Ok(digest),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(ABSENT.to_owned()),
        Err(error) => Err(error)
            .with_context(|| format!("Failed to read build input file: {}", path.display())),
    }
}

/// SHA-256 of a canonical form of a lock file's TOML (keys sorted, no
/// formatting), or of its bytes when it does not parse.
fn lock_file_digest(bytes: &[u8]) -> String {
    let parsed = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok());
    let Some(table) = parsed else {
        return format!("{:x}", Sha256::digest(bytes));
    };
    let mut hasher = Sha256::new();
    hasher.update(b"arca-lock-v1\0");
    canonical_toml(&toml::Value::Table(table), &mut hasher);
    format!("{:x}", hasher.finalize())
}

fn canonical_toml(value: &toml::Value, hasher: &mut Sha256) {
    fn text(hasher: &mut Sha256, tag: &str, body: &str) {
        hasher.update(tag.as_bytes());
        hasher.update((body.len() as u64).to_le_bytes());
        hasher.update(body.as_bytes());
    }
    match value {
        toml::Value::Table(table) => {
            let mut keys: Vec<&String> = table.keys().collect();
            keys.sort();
            text(hasher, "{", &keys.len().to_string());
            for key in keys {
                text(hasher, "k", key);
                canonical_toml(&table[key.as_str()], hasher);
            }
        }
        toml::Value::Array(items) => {
            text(hasher, "[", &items.len().to_string());
            for item in items {
                canonical_toml(item, hasher);
            }
        }
        other => text(hasher, "v", &other.to_string()),
    }
}

/// The dependencies of a Makefile-style dep-info file (`target: a b\ c`).
fn parse_dep_info(text: &str) -> Vec<PathBuf> {
    let mut dependencies = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(rest) = split_rule(line) else {
            continue;
        };
        let mut current = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '\\' if chars
                    .peek()
                    .is_some_and(|next| *next == ' ' || *next == '\\') =>
                {
                    current.extend(chars.next());
                }
                ' ' => {
                    if !current.is_empty() {
                        dependencies.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                _ => current.push(ch),
            }
        }
        if !current.is_empty() {
            dependencies.push(PathBuf::from(current));
        }
    }
    dependencies
}

/// The part after the rule's unescaped `: `.
fn split_rule(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    (0..bytes.len()).find_map(|index| {
        let escaped = index > 0 && bytes[index - 1] == b'\\';
        (bytes[index] == b':' && !escaped && bytes.get(index + 1).is_none_or(|next| *next == b' '))
            .then(|| &line[index + 1..])
    })
}

fn map_path(path: &Path, path_map: &[(PathBuf, PathBuf)]) -> PathBuf {
    for (seen, host) in path_map {
        if let Ok(rest) = path.strip_prefix(seen) {
            return host.join(rest);
        }
    }
    path.to_path_buf()
}

/// The package name of a local package that has a build script.
fn build_script_package(package_dir: &Path) -> Option<String> {
    build_script_path(package_dir)?;
    let text = crate::fsread::read_to_string(
        &package_dir.join("Cargo.toml"),
        crate::fsread::Kind::CargoManifest,
    )
    .ok()?;
    let table: toml::Table = text.parse().ok()?;
    let package = table.get("package")?.as_table()?;
    package.get("name")?.as_str().map(str::to_owned)
}

/// Where cargo would find a build script that a package does not have
/// (`build.rs` beside its Cargo.toml, unless the manifest names one or
/// sets `build = false`: changing that is a Cargo.toml change). Recorded
/// as an absent input, so a `build.rs` added later counts as a change.
fn absent_build_script(package_dir: &Path) -> Option<PathBuf> {
    if build_script_path(package_dir).is_some() {
        return None;
    }
    let text = fs::read_to_string(package_dir.join("Cargo.toml")).ok()?;
    let table: toml::Table = text.parse().ok()?;
    let package = table.get("package")?.as_table()?;
    (!package.contains_key("build")).then(|| package_dir.join("build.rs"))
}

/// The build script of a local package, if it has one.
fn build_script_path(package_dir: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(package_dir.join("Cargo.toml")).ok()?;
    let table: toml::Table = text.parse().ok()?;
    let package = table.get("package")?.as_table()?;
    let script = match package.get("build") {
        Some(toml::Value::Boolean(false)) => return None,
        Some(toml::Value::String(path)) => package_dir.join(path),
        _ => package_dir.join("build.rs"),
    };
    script.is_file().then_some(script)
}

/// The files cargo counts as a package's own (`cargo package --list`
/// rules, which its fingerprint of a build script without
/// `rerun-if-changed` uses): with `package.include`, only files it
/// matches; else all files except `package.exclude` matches; in a git
/// checkout, without files `.gitignore` ignores; never `.git`, the root
/// `target`, or nested packages (directories with their own
/// `Cargo.toml`); outside git, no dot-directories. Patterns follow
/// gitignore syntax, as cargo's do.
pub fn package_files(package_dir: &Path) -> Vec<PathBuf> {
    let (include, exclude) = package_patterns(package_dir);
    let matcher = |patterns: &[String]| {
        let mut builder = ignore::gitignore::GitignoreBuilder::new(package_dir);
        for pattern in patterns {
            let _ = builder.add_line(None, pattern);
        }
        builder.build().ok()
    };
    let include_matcher = (!include.is_empty()).then(|| matcher(&include)).flatten();
    let exclude_matcher = matcher(&exclude);
    let in_git = package_dir.ancestors().any(|dir| dir.join(".git").exists());
    let root = package_dir.to_path_buf();
    let walker = ignore::WalkBuilder::new(package_dir)
        .standard_filters(false)
        .git_ignore(in_git && include.is_empty())
        .git_exclude(in_git && include.is_empty())
        .parents(true)
        .require_git(true)
        .filter_entry(move |entry| {
            let path = entry.path();
            if path == root {
                return true;
            }
            let name = entry.file_name().to_string_lossy();
            let is_dir = entry.file_type().is_some_and(|kind| kind.is_dir());
            if !is_dir {
                return true;
            }
            let at_root = path.parent() == Some(root.as_path());
            !(name == ".git"
                || (at_root && name == "target")
                || (!in_git && name.starts_with('.'))
                || path.join("Cargo.toml").exists())
        })
        .build();
    let mut files: Vec<PathBuf> = walker
        .flatten()
        .filter(|entry| entry.file_type().is_some_and(|kind| !kind.is_dir()))
        .map(|entry| entry.into_path())
        .filter(|path| {
            let Ok(relative) = path.strip_prefix(package_dir) else {
                return false;
            };
            match &include_matcher {
                Some(include) => include
                    .matched_path_or_any_parents(relative, false)
                    .is_ignore(),
                None => !exclude_matcher.as_ref().is_some_and(|exclude| {
                    exclude
                        .matched_path_or_any_parents(relative, false)
                        .is_ignore()
                }),
            }
        })
        .collect();
    files.sort();
    files
}

/// `package.include` and `package.exclude` of a package's manifest.
fn package_patterns(package_dir: &Path) -> (Vec<String>, Vec<String>) {
    let table: Option<toml::Table> = fs::read_to_string(package_dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse().ok());
    let list = |key: &str| -> Vec<String> {
        table
            .as_ref()
            .and_then(|table| table.get("package")?.get(key)?.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect()
    };
    (list("include"), list("exclude"))
}

/// Whether the newest run of `package`'s build script printed a
/// `rerun-if-changed` line.
fn declares_rerun_if_changed(profile_dir: &Path, package: &str) -> bool {
    let Some(output) = newest_matching(&profile_dir.join("build"), package, |dir| {
        let output = dir.join("output");
        output.is_file().then_some(output)
    }) else {
        return false;
    };
    crate::fsread::read_to_string(&output, crate::fsread::Kind::BuildOutput).is_ok_and(|text| {
        text.lines().any(|line| {
            line.starts_with("cargo:rerun-if-changed=")
                || line.starts_with("cargo::rerun-if-changed=")
        })
    })
}

/// Among `<dir>/<name>-<hash>` entries, the newest one `pick` accepts.
fn newest_matching<T>(dir: &Path, name: &str, pick: impl Fn(&Path) -> Option<T>) -> Option<T> {
    let prefix = format!("{name}-");
    let mut candidates: Vec<(std::time::SystemTime, T)> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|file| file.strip_prefix(&prefix))
                .is_some_and(|hash| hash.split('.').next().is_some_and(is_cargo_hash))
        })
        .filter_map(|entry| {
            let picked = pick(&entry.path())?;
            let modified = entry.metadata().and_then(|meta| meta.modified()).ok()?;
            Some((modified, picked))
        })
        .collect();
    candidates.sort_by_key(|(modified, _)| *modified);
    candidates.pop().map(|(_, picked)| picked)
}

fn is_cargo_hash(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// `# env-dep:NAME=value` lines of the newest rustc dep-info of the binary
/// and of each local package, except Cargo's own variables (they follow
/// from the manifests).
fn env_dependencies(
    profile_dir: &Path,
    facts: &CrateFacts,
    settings: &BuildSettings,
) -> BTreeMap<String, Option<String>> {
    let mut crate_names: BTreeSet<String> = facts
        .local_package_dirs
        .iter()
        .filter_map(|dir| {
            let text = crate::fsread::read_to_string(
                &dir.join("Cargo.toml"),
                crate::fsread::Kind::CargoManifest,
            )
            .ok()?;
            let table: toml::Table = text.parse().ok()?;
            Some(table.get("package")?.get("name")?.as_str()?.to_owned())
        })
        .collect();
    crate_names.insert(settings.bin.clone());
    let deps_dir = profile_dir.join("deps");
    let mut env = BTreeMap::new();
    for name in crate_names {
        let underscored = name.replace('-', "_");
        let Some(text) = newest_matching(&deps_dir, &underscored, |path| {
            (path.extension().is_some_and(|ext| ext == "d"))
                .then(|| crate::fsread::read_to_string(path, crate::fsread::Kind::BuildOutput).ok())
                .flatten()
        }) else {
            continue;
        };
        for line in text.lines() {
            let Some(dependency) = line.strip_prefix("# env-dep:") else {
                continue;
            };
            let (key, value) = match dependency.split_once('=') {
                Some((key, value)) => (key, Some(unescape_env_value(value))),
                None => (dependency, None),
            };
            if key.starts_with("CARGO_") || key == "OUT_DIR" {
                continue;
            }
            env.insert(key.to_owned(), value);
        }
    }
    env
}

/// rustc escapes `\` and newlines in env-dep values.
fn unescape_env_value(value: &str) -> String {
    value.replace("\\n", "\n").replace("\\\\", "\\")
}

/// Every file below `dir` (skipping target, .git, .arca), sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if SKIPPED_DIR_NAMES.iter().any(|skipped| name == *skipped) {
                continue;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(_) => files.push(entry.path()),
                Err(_) => {}
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_is_digested_by_its_meaning() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("Cargo.lock");
        let text = "# This file is automatically @generated by Cargo.\nversion = 4\n\n[[package]]\nname = \"a\"\nversion = \"0.1.0\"\n";
        fs::write(&lock, text).unwrap();
        let before = file_digest(&lock).unwrap();
        fs::write(&lock, format!("{text}\n\n")).unwrap();
        assert_eq!(
            file_digest(&lock).unwrap(),
            before,
            "a blank line changes nothing"
        );
        fs::write(&lock, text.replace("0.1.0", "0.1.1")).unwrap();
        assert_ne!(file_digest(&lock).unwrap(), before);
        fs::write(&lock, "not [ toml").unwrap();
        assert_eq!(
            file_digest(&lock).unwrap(),
            format!("{:x}", Sha256::digest(b"not [ toml"))
        );
    }

    #[test]
    fn package_files_follow_include_exclude_and_skip_nested_packages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pkg");
        let write = |name: &str| {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        };
        for name in [
            "build.rs",
            "src/main.rs",
            "README.md",
            "benches/data/big.txt",
            "target/debug/x",
            "nested/Cargo.toml",
            "nested/src/lib.rs",
            ".hidden/file",
        ] {
            write(name);
        }
        fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"pkg\"\nversion = \"0.1.0\"\nexclude = [\"benches/\"]\n",
        )
        .unwrap();
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files
                .iter()
                .map(|path| path.strip_prefix(&root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            names(package_files(&root)),
            ["Cargo.toml", "README.md", "build.rs", "src/main.rs"]
        );
        fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"pkg\"\nversion = \"0.1.0\"\ninclude = [\"src/**\", \"build.rs\"]\n",
        )
        .unwrap();
        assert_eq!(names(package_files(&root)), ["build.rs", "src/main.rs"]);
    }

    #[test]
    fn whole_package_reasons_say_why_a_non_source_file_counts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        fs::write(root.join("build.rs"), "fn main() {}").unwrap();
        fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(root.join("README.md"), "hi").unwrap();
        let mut manifest = manifest_over(root);
        manifest.whole_dirs = BTreeSet::from([root.to_path_buf()]);
        manifest.whole_packages = BTreeSet::from([root.to_path_buf()]);
        manifest.declared = BTreeSet::from([root.join("src/main.rs")]);
        manifest.env.clear();
        for path in package_files(root) {
            manifest
                .files
                .insert(path.clone(), file_digest(&path).unwrap());
        }
        let today = manifest.settings.clone();
        let relive = |manifest: &Manifest| {
            manifest
                .relive(&today, |_| None, file_digest)
                .unwrap()
                .changes
        };
        assert!(relive(&manifest).is_empty());
        fs::write(root.join("README.md"), "hello").unwrap();
        fs::write(root.join("src/main.rs"), "fn main() { }").unwrap();
        assert_eq!(
            relive(&manifest),
            [
                "README.md changed (build.rs declares no rerun-if-changed, so cargo rebuilds on any file of the package)",
                "src/main.rs changed"
            ]
        );
    }

    #[test]
    fn dep_info_paths_keep_escaped_spaces() {
        let text = "/t/debug/app: /w/app/src/main.rs /w/my\\ dir/lib.rs /w/app/build.rs\n\n/w/app/src/main.rs:\n";
        assert_eq!(
            parse_dep_info(text),
            [
                PathBuf::from("/w/app/src/main.rs"),
                PathBuf::from("/w/my dir/lib.rs"),
                PathBuf::from("/w/app/build.rs"),
            ]
        );
    }

    #[test]
    fn container_paths_map_to_host_paths() {
        let map = vec![(PathBuf::from("/work/source"), PathBuf::from("/home/u/ws"))];
        assert_eq!(
            map_path(Path::new("/work/source/app/src/main.rs"), &map),
            PathBuf::from("/home/u/ws/app/src/main.rs")
        );
        assert_eq!(
            map_path(Path::new("/work/cargo-home/registry/x.rs"), &map),
            PathBuf::from("/work/cargo-home/registry/x.rs")
        );
    }

    fn manifest_over(dir: &Path) -> Manifest {
        let mut files = BTreeMap::new();
        for name in ["src/main.rs", "Cargo.toml"] {
            let path = dir.join(name);
            files.insert(path.clone(), file_digest(&path).unwrap());
        }
        Manifest {
            version: FORMAT_VERSION,
            crate_dir: dir.to_path_buf(),
            settings: ManifestSettings {
                profile: "release".into(),
                features: vec![],
                bin: "demo".into(),
                base_image: "debian:12".into(),
                mode: "container:k".into(),
            },
            files,
            whole_dirs: BTreeSet::from([dir.join("assets")]),
            whole_packages: BTreeSet::new(),
            declared: BTreeSet::new(),
            env: BTreeMap::from([("MY_VAR".to_owned(), Some("x".to_owned()))]),
        }
    }

    #[test]
    fn reliving_finds_exactly_the_changed_inputs_and_reverting_restores_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::create_dir_all(dir.join("assets")).unwrap();
        fs::write(dir.join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(dir.join("Cargo.toml"), "[package]").unwrap();
        fs::write(dir.join("README.md"), "readme").unwrap();
        let manifest = manifest_over(dir);
        let env_now = |name: &str| (name == "MY_VAR").then(|| "x".to_owned());
        let relive = |env: &dyn Fn(&str) -> Option<String>| {
            manifest
                .relive(&manifest.settings, env, file_digest)
                .unwrap()
        };
        let same = relive(&env_now);
        assert_eq!(same.digest, manifest.digest());
        assert!(same.changes.is_empty());

        fs::write(dir.join("README.md"), "edited").unwrap();
        fs::write(dir.join(".main.rs.swp"), "swap").unwrap();
        assert_eq!(relive(&env_now).digest, manifest.digest());

        fs::write(dir.join("src/main.rs"), "fn main() { }").unwrap();
        fs::write(dir.join("assets/logo.txt"), "new").unwrap();
        let changed = relive(&|_: &str| None);
        assert_ne!(changed.digest, manifest.digest());
        assert_eq!(
            changed.changes,
            [
                "assets/logo.txt added",
                "src/main.rs changed",
                "env MY_VAR changed"
            ]
        );

        fs::write(dir.join("src/main.rs"), "fn main() {}").unwrap();
        fs::remove_file(dir.join("assets/logo.txt")).unwrap();
        assert_eq!(relive(&env_now).digest, manifest.digest());
    }

    #[test]
    fn settings_are_part_of_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("src/main.rs"), "").unwrap();
        fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        let manifest = manifest_over(dir.path());
        let mut settings = manifest.settings.clone();
        settings.features = vec!["cli".into()];
        let relived = manifest
            .relive(&settings, |_| Some("x".into()), file_digest)
            .unwrap();
        assert_ne!(relived.digest, manifest.digest());
    }

    #[test]
    fn manifests_round_trip_through_inputs_json() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("src/main.rs"), "").unwrap();
        fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        let manifest = manifest_over(dir.path());
        manifest.write_to(dir.path()).unwrap();
        assert_eq!(Manifest::read_from(dir.path()).unwrap(), Some(manifest));
        fs::write(dir.path().join(INPUTS_FILE), "{").unwrap();
        assert!(Manifest::read_from(dir.path()).is_err());
        fs::remove_file(dir.path().join(INPUTS_FILE)).unwrap();
        assert_eq!(Manifest::read_from(dir.path()).unwrap(), None);
    }

    /// A real host build of a crate with a path dependency, a build script
    /// with `rerun-if-changed`, `include_str!` and `option_env!`.
    #[test]
    fn recording_a_real_host_build_lists_exactly_its_inputs() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        let write = |relative: &str, text: &str| {
            let path = root.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\ndep = { path = \"../dep\" }\n[workspace]\n",
        );
        write(
            "app/build.rs",
            "fn main() { println!(\"cargo:rerun-if-changed=data/schema.txt\"); }\n",
        );
        write("app/data/schema.txt", "schema\n");
        write("app/data/unused.txt", "unused\n");
        write("app/README.md", "readme\n");
        write("app/tests/it.rs", "#[test] fn t() {}\n");
        write("app/src/greeting.txt", "hi\n");
        write("app/src/util.rs", "pub fn g() -> i32 { 1 }\n");
        write(
            "app/src/main.rs",
            "mod util;\nfn main() { println!(\"{} {:?} {}\", include_str!(\"greeting.txt\"), option_env!(\"ARCA_TEST_MANIFEST_VAR\"), dep::f() + util::g()); }\n",
        );
        write(
            "dep/Cargo.toml",
            "[package]\nname = \"dep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        );
        write("dep/src/lib.rs", "pub fn f() -> i32 { 2 }\n");
        let target = root.join("target");
        let status = std::process::Command::new("cargo")
            .args(["build", "--quiet", "--offline", "--manifest-path"])
            .arg(root.join("app/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .env("ARCA_TEST_MANIFEST_VAR", "on")
            .status()
            .unwrap();
        assert!(status.success());
        let facts = CrateFacts {
            crate_dir: root.join("app"),
            manifest_path: root.join("app/Cargo.toml"),
            workspace_root: root.join("app"),
            target_directory: target.clone(),
            package_id: "app".into(),
            name: "app".into(),
            version: "0.1.0".into(),
            bins: vec!["app".into()],
            features: BTreeSet::new(),
            custom_profiles: BTreeSet::new(),
            local_package_dirs: vec![root.join("app"), root.join("dep")],
        };
        let settings = BuildSettings {
            profile: "dev".into(),
            features: vec![],
            bin: "app".into(),
            base_image: "debian:12".into(),
        };
        let outputs = BuildOutputs {
            target_dir: &target,
            path_map: vec![],
            record_env: true,
        };
        let manifest = record(&facts, &settings, "host:test".into(), &outputs, None).unwrap();
        let listed: Vec<String> = manifest
            .files
            .keys()
            .map(|path| {
                path.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            listed,
            [
                "app/Cargo.lock",
                "app/Cargo.toml",
                "app/build.rs",
                "app/data/schema.txt",
                "app/src/greeting.txt",
                "app/src/main.rs",
                "app/src/util.rs",
                "dep/Cargo.toml",
                "dep/build.rs",
                "dep/src/lib.rs",
            ]
        );
        // The build script `dep` lacks is recorded absent: adding one counts.
        assert_eq!(manifest.files[&root.join("dep/build.rs")], ABSENT);
        write("dep/build.rs", "fn main() {}\n");
        let relived = manifest
            .relive(&manifest.settings, |_| Some("on".into()), file_digest)
            .unwrap();
        assert_eq!(relived.changes.len(), 1, "{:?}", relived.changes);
        assert!(
            relived.changes[0].ends_with("dep/build.rs added"),
            "{:?}",
            relived.changes
        );
        fs::remove_file(root.join("dep/build.rs")).unwrap();
        assert!(manifest.whole_dirs.is_empty());
        assert_eq!(
            manifest.env,
            BTreeMap::from([("ARCA_TEST_MANIFEST_VAR".to_owned(), Some("on".to_owned()))])
        );

        // A build script without rerun-if-changed makes its package an input.
        write("app/build.rs", "fn main() {}\n");
        let status = std::process::Command::new("cargo")
            .args(["build", "--quiet", "--offline", "--manifest-path"])
            .arg(root.join("app/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
        assert!(status.success());
        let manifest = record(&facts, &settings, "host:test".into(), &outputs, None).unwrap();
        assert_eq!(manifest.whole_dirs, BTreeSet::from([root.join("app")]));
        assert!(manifest.files.contains_key(&root.join("app/README.md")));
    }
}
