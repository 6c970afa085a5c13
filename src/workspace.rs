//! Crates and what Cargo knows about them.
//!
//! [`load_crate_facts`] asks `cargo metadata --no-deps` for one crate's facts
//! (names, bin targets, features, profiles, local path dependencies) and
//! caches the answer under `$ARCA_HOME/cache/metadata`, keyed by the
//! contents of every manifest it depends on (not Cargo.lock: see
//! `ancestor_files`). **It never writes into the user's crate:** `--no-deps`
//! resolves nothing, so Cargo neither creates nor rewrites `Cargo.lock`, and
//! needs no network; local path dependencies are followed through the
//! manifests' `path` entries instead of the resolve graph.
//! [`discover_crates`] finds the binary crates below a folder without
//! running Cargo.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Directory names that are never crate inputs nor places to look for crates.
pub const SKIPPED_DIR_NAMES: [&str; 3] = ["target", ".git", ".arca"];

/// Everything Arca needs to know about one binary crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateFacts {
    /// The crate's directory, canonical.
    pub crate_dir: PathBuf,
    /// `<crate_dir>/Cargo.toml`, canonical.
    pub manifest_path: PathBuf,
    pub workspace_root: PathBuf,
    pub target_directory: PathBuf,
    pub package_id: String,
    pub name: String,
    pub version: String,
    /// Bin target names, in Cargo's order.
    pub bins: Vec<String>,
    /// Declared features, explicit and optional dependencies' implicit ones.
    pub features: BTreeSet<String>,
    /// Custom `[profile.X]` names of the workspace manifest.
    pub custom_profiles: BTreeSet<String>,
    /// Directories of every local (path) package the crate depends on,
    /// itself included, sorted: the original CLI's input directories.
    pub local_package_dirs: Vec<PathBuf>,
}

/// The profiles Cargo knows without a `[profile.X]` table.
pub const BUILT_IN_PROFILES: [&str; 4] = ["dev", "release", "test", "bench"];

impl CrateFacts {
    /// Whether `profile` is built in or declared by the workspace.
    pub fn has_profile(&self, profile: &str) -> bool {
        BUILT_IN_PROFILES.contains(&profile) || self.custom_profiles.contains(profile)
    }

    /// Every profile a build could use, built-in ones first.
    pub fn all_profiles(&self) -> Vec<String> {
        BUILT_IN_PROFILES
            .iter()
            .map(|name| (*name).to_owned())
            .chain(self.custom_profiles.iter().cloned())
            .collect()
    }
}

/// Facts of a fictional crate `demo` at `/w/demo` for unit tests: the given
/// bins and features, and one custom profile `release-lto`.
#[cfg(test)]
pub fn test_facts(bins: &[&str], features: &[&str]) -> CrateFacts {
    CrateFacts {
        crate_dir: PathBuf::from("/w/demo"),
        manifest_path: PathBuf::from("/w/demo/Cargo.toml"),
        workspace_root: PathBuf::from("/w/demo"),
        target_directory: PathBuf::from("/w/demo/target"),
        package_id: "path+file:///w/demo#0.1.0".into(),
        name: "demo".into(),
        version: "0.1.0".into(),
        bins: bins.iter().map(|bin| (*bin).to_owned()).collect(),
        features: features.iter().map(|name| (*name).to_owned()).collect(),
        custom_profiles: BTreeSet::from(["release-lto".to_owned()]),
        local_package_dirs: vec![PathBuf::from("/w/demo")],
    }
}

/// Resolves a user-given crate path (a directory or its `Cargo.toml`) to the
/// canonical manifest path, with the original CLI's messages.
pub fn resolve_manifest_path(path: &Path) -> Result<PathBuf> {
    let manifest = if path.is_dir() {
        path.join("Cargo.toml")
    } else if path.file_name().is_some_and(|name| name == "Cargo.toml") {
        path.to_path_buf()
    } else if !path.exists() {
        bail!("No such file or directory: `{}`.", path.display());
    } else {
        bail!(
            "Expected a crate directory or Cargo.toml path, but got `{}`.",
            path.display()
        );
    };
    if !manifest.exists() {
        bail!(
            "No Cargo.toml found at `{}`. Point Arca at a crate directory.",
            manifest.display()
        );
    }
    // A named pipe or device would hang or flood cargo: refuse it here.
    crate::fsread::check(&manifest, crate::fsread::Kind::CargoManifest)
        .map_err(|error| anyhow!("{error}"))?;
    manifest.canonicalize().with_context(|| {
        format!(
            "Failed to canonicalize manifest path: {}",
            manifest.display()
        )
    })
}

/// Loads the facts of the crate at `path` (directory or `Cargo.toml`),
/// from the metadata cache when no manifest or lock file changed.
pub fn load_crate_facts(path: &Path) -> Result<CrateFacts> {
    let manifest_path = resolve_manifest_path(path)?;
    let cache = MetadataCache::open();
    if let Some(facts) = cache
        .as_ref()
        .and_then(|cache| cache.lookup(&manifest_path))
    {
        return Ok(facts);
    }
    let (facts, dependencies) = facts_from_cargo(&manifest_path)?;
    if let Some(cache) = cache {
        // A cache that cannot be written only costs speed next time.
        if let Err(error) = cache.store(&manifest_path, &facts, &dependencies) {
            tracing::debug!("metadata cache not written: {error:#}");
        }
    }
    Ok(facts)
}

#[derive(Deserialize)]
struct CargoMetadata {
    workspace_root: PathBuf,
    target_directory: PathBuf,
    packages: Vec<CargoPackage>,
    #[serde(default)]
    workspace_members: Vec<String>,
}

#[derive(Deserialize)]
struct CargoPackage {
    id: String,
    name: String,
    version: String,
    manifest_path: PathBuf,
    targets: Vec<CargoTarget>,
    #[serde(default)]
    features: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    dependencies: Vec<CargoDependency>,
}

#[derive(Deserialize)]
struct CargoTarget {
    name: String,
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct CargoDependency {
    /// `"dev"`, `"build"` or null (normal).
    kind: Option<String>,
    /// The dependency's directory, for path dependencies.
    path: Option<PathBuf>,
}

/// `cargo metadata --no-deps` of one manifest, through [`crate::cargo_run`].
fn run_metadata(manifest_path: &Path) -> Result<CargoMetadata> {
    let answer = crate::cargo_run::metadata(manifest_path)?;
    serde_json::from_slice(&answer.stdout).context("Failed to parse cargo metadata JSON")
}

/// Runs `cargo metadata --no-deps` (through [`crate::cargo_run`]: bounded
/// and coalesced) and extracts the facts, plus the files the answer depends
/// on (for the cache). `--no-deps` resolves nothing, so Cargo writes no
/// `Cargo.lock` and needs no network.
fn facts_from_cargo(manifest_path: &Path) -> Result<(CrateFacts, Vec<PathBuf>)> {
    let crate_dir = manifest_path
        .parent()
        .ok_or_else(|| anyhow!("Cargo.toml has no parent directory"))?;
    let metadata = run_metadata(manifest_path)?;
    let package = metadata
        .packages
        .iter()
        .find(|package| crate::paths::same_path(&package.manifest_path, manifest_path))
        .ok_or_else(|| {
            anyhow!(
                "`{}` is not a crate manifest: it has no [package]. It may be a virtual workspace manifest; point Arca at one of its member crates instead.",
                manifest_path.display()
            )
        })?;
    let bins: Vec<String> = package
        .targets
        .iter()
        .filter(|target| target.kind.iter().any(|kind| kind == "bin"))
        .map(|target| target.name.clone())
        .collect();
    if bins.is_empty() {
        bail!(
            "Crate `{}` has no binary targets. Arca packages a runnable binary: add src/main.rs or a [[bin]] target.",
            package.name
        );
    }
    let local_package_dirs = local_package_dirs(&metadata, manifest_path)?;
    let workspace_manifest = metadata.workspace_root.join("Cargo.toml");
    let custom_profiles = custom_profiles(&workspace_manifest)?;
    let mut dependencies: Vec<PathBuf> = local_package_dirs
        .iter()
        .map(|dir| dir.join("Cargo.toml"))
        .collect();
    dependencies.push(workspace_manifest);
    let facts = CrateFacts {
        crate_dir: crate_dir.to_path_buf(),
        manifest_path: manifest_path.to_path_buf(),
        workspace_root: metadata.workspace_root.clone(),
        target_directory: metadata.target_directory.clone(),
        package_id: package.id.clone(),
        name: package.name.clone(),
        version: package.version.clone(),
        bins,
        features: package.features.keys().cloned().collect(),
        custom_profiles,
        local_package_dirs,
    };
    Ok((facts, dependencies))
}

/// The `[profile.X]` names of the workspace manifest that are not built in.
fn custom_profiles(workspace_manifest: &Path) -> Result<BTreeSet<String>> {
    let text =
        crate::fsread::read_to_string(workspace_manifest, crate::fsread::Kind::CargoManifest)
            .with_context(|| format!("Failed to read {}", workspace_manifest.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("Failed to parse {}", workspace_manifest.display()))?;
    let Some(profiles) = table.get("profile").and_then(|value| value.as_table()) else {
        return Ok(BTreeSet::new());
    };
    Ok(profiles
        .keys()
        .filter(|name| !BUILT_IN_PROFILES.contains(&name.as_str()))
        .cloned()
        .collect())
}

/// The original CLI's local dependency walk: every package reachable from
/// the crate through path dependencies (normal, build, and, for workspace
/// members, dev dependencies, as Cargo's resolve has them), as its
/// manifest's directory. Path packages outside the workspace are read with
/// their own `cargo metadata --no-deps`. Optional path dependencies count
/// whether or not a feature enables them (a superset of the resolve graph:
/// more inputs watched, never fewer).
fn local_package_dirs(metadata: &CargoMetadata, manifest_path: &Path) -> Result<Vec<PathBuf>> {
    let mut packages: HashMap<PathBuf, (bool, Vec<PathBuf>)> = HashMap::new();
    // Dev-dependencies count for members of the crate's own workspace only
    // (a path package outside it is a plain dependency).
    let remember = |metadata: &CargoMetadata,
                    primary: bool,
                    packages: &mut HashMap<PathBuf, (bool, Vec<PathBuf>)>| {
        for package in &metadata.packages {
            let member = primary && metadata.workspace_members.contains(&package.id);
            let deps = package
                .dependencies
                .iter()
                .filter(|dep| member || dep.kind.as_deref() != Some("dev"))
                .filter_map(|dep| dep.path.clone())
                .collect();
            packages
                .entry(normalized(&package.manifest_path))
                .or_insert((member, deps));
        }
    };
    remember(metadata, true, &mut packages);
    let mut directories = BTreeSet::new();
    let mut visited = HashSet::new();
    let mut queue = VecDeque::from([normalized(manifest_path)]);
    while let Some(manifest) = queue.pop_front() {
        if !visited.insert(manifest.clone()) {
            continue;
        }
        if !packages.contains_key(&manifest) {
            let other = run_metadata(&manifest)?;
            remember(&other, false, &mut packages);
        }
        let Some((_, deps)) = packages.get(&manifest) else {
            bail!(
                "Cargo metadata of `{}` does not describe its package.",
                manifest.display()
            );
        };
        if let Some(directory) = manifest.parent() {
            directories.insert(directory.to_path_buf());
        }
        queue.extend(deps.iter().map(|dir| normalized(&dir.join("Cargo.toml"))));
    }
    Ok(directories.into_iter().collect())
}

/// A path made canonical when possible (cargo reports canonical-ish paths,
/// `path = "../x"` entries are relative to the manifest).
fn normalized(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// The `cargo metadata` cache: one JSON record per manifest path, valid while
/// every file it names still has the recorded digest.
struct MetadataCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CacheRecord {
    /// Files whose contents the facts depend on, with their SHA-256 (`None`
    /// for a file that did not exist).
    dependencies: Vec<(PathBuf, Option<String>)>,
    facts: CrateFacts,
}

impl MetadataCache {
    fn open() -> Option<Self> {
        let dir = crate::paths::cache_dir().ok()?.join("metadata");
        Some(Self { dir })
    }

    fn record_path(&self, manifest_path: &Path) -> PathBuf {
        let key = Sha256::digest(manifest_path.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{key:x}.json"))
    }

    /// Files that always matter: every `Cargo.toml` from the crate up to the
    /// root (a workspace root may appear or vanish there). `Cargo.lock` is
    /// deliberately not one: the facts do not depend on it, and running
    /// `cargo metadata` after a lock-only edit would let Cargo rewrite the
    /// user's lock file.
    fn ancestor_files(manifest_path: &Path) -> Vec<PathBuf> {
        manifest_path
            .parent()
            .into_iter()
            .flat_map(Path::ancestors)
            .map(|dir| dir.join("Cargo.toml"))
            .collect()
    }

    fn lookup(&self, manifest_path: &Path) -> Option<CrateFacts> {
        let bytes = crate::fsread::read(
            &self.record_path(manifest_path),
            crate::fsread::Kind::CacheRecord,
        )
        .ok()?;
        let record: CacheRecord = serde_json::from_slice(&bytes).ok()?;
        let still_valid = record
            .dependencies
            .iter()
            .all(|(path, digest)| file_digest(path) == *digest);
        let covers_ancestors = Self::ancestor_files(manifest_path)
            .iter()
            .all(|path| record.dependencies.iter().any(|(known, _)| known == path));
        (still_valid && covers_ancestors && record.facts.manifest_path == manifest_path)
            .then_some(record.facts)
    }

    fn store(&self, manifest_path: &Path, facts: &CrateFacts, extra: &[PathBuf]) -> Result<()> {
        let mut paths: BTreeSet<PathBuf> =
            Self::ancestor_files(manifest_path).into_iter().collect();
        paths.extend(extra.iter().cloned());
        let record = CacheRecord {
            dependencies: paths
                .into_iter()
                .map(|path| {
                    let digest = file_digest(&path);
                    (path, digest)
                })
                .collect(),
            facts: facts.clone(),
        };
        fs::create_dir_all(&self.dir)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer(&mut file, &record)?;
        file.persist(self.record_path(manifest_path))?;
        Ok(())
    }
}

fn file_digest(path: &Path) -> Option<String> {
    crate::fsread::read(path, crate::fsread::Kind::CargoManifest)
        .ok()
        .map(|bytes| format!("{:x}", Sha256::digest(bytes)))
}

/// The most directories one discovery walk visits.
pub const MAX_DISCOVERY_DIRS: usize = 20_000;
/// The most crates one workspace folder may hold.
pub const MAX_FOLDER_CRATES: usize = 300;

/// What a bounded discovery walk found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Crate directories, sorted.
    pub crates: Vec<PathBuf>,
    /// Why the walk was refused or stopped early, for the user.
    pub notice: Option<String>,
    /// The walk was refused or stopped early: `crates` may be incomplete.
    pub capped: bool,
}

/// Whether `root` is a folder Arca refuses to walk: the filesystem root or
/// the user's home directory.
pub fn refused_folder(root: &Path) -> Option<String> {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let home = dirs::home_dir().map(|home| home.canonicalize().unwrap_or(home));
    let what = if canonical.parent().is_none() {
        "the filesystem root"
    } else if home.as_deref() == Some(canonical.as_path()) {
        "your home directory"
    } else {
        return None;
    };
    Some(format!(
        "Arca does not search {} ({what}) for crates: it would walk far too much. Open the crate's folder (or a folder of a few crates) instead.",
        root.display()
    ))
}

/// Finds the binary crates at or below `root` without running Cargo: every
/// `Cargo.toml` with a `[package]` and a bin target (`[[bin]]`,
/// `src/main.rs` or `src/bin/*.rs`). Skips target, .git, .arca, hidden
/// directories and node_modules; follows no symlinks. Refuses `/` and the
/// home directory, and stops after [`MAX_DISCOVERY_DIRS`] directories or
/// [`MAX_FOLDER_CRATES`] crates, saying so in `notice`.
pub fn discover(root: &Path) -> Discovery {
    if let Some(notice) = refused_folder(root) {
        return Discovery {
            crates: Vec::new(),
            notice: Some(notice),
            capped: true,
        };
    }
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    let mut visited = 0usize;
    let mut notice = None;
    while let Some(dir) = pending.pop() {
        visited += 1;
        if visited > MAX_DISCOVERY_DIRS {
            notice = Some(format!(
                "{} holds more than {MAX_DISCOVERY_DIRS} directories; Arca stopped searching it for crates after {} found. Open a smaller folder to see every crate.",
                root.display(),
                found.len()
            ));
            break;
        }
        let manifest = dir.join("Cargo.toml");
        if manifest.exists() && manifest_declares_binary(&manifest) {
            found.push(dir.clone());
            if found.len() >= MAX_FOLDER_CRATES {
                notice = Some(format!(
                    "{} holds {MAX_FOLDER_CRATES} crates or more; Arca follows the first {MAX_FOLDER_CRATES} it found. Open a smaller folder to see the others.",
                    root.display()
                ));
                break;
            }
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if file_type.is_dir()
                && !name.starts_with('.')
                && name != "node_modules"
                && !SKIPPED_DIR_NAMES.contains(&name.as_ref())
            {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    Discovery {
        crates: found,
        capped: notice.is_some(),
        notice,
    }
}

/// The crates [`discover`] finds, its notice logged.
pub fn discover_crates(root: &Path) -> Vec<PathBuf> {
    let discovery = discover(root);
    if let Some(notice) = &discovery.notice {
        tracing::warn!("{notice}");
    }
    discovery.crates
}

/// Whether a manifest declares a package with at least one binary, judged
/// from the manifest and the conventional file layout.
pub fn manifest_declares_binary(manifest: &Path) -> bool {
    let Ok(text) = crate::fsread::read_to_string(manifest, crate::fsread::Kind::CargoManifest)
    else {
        // Unreadable (not a regular file, too large): still a crate the
        // user works on when it is a file beside sources; its status says
        // what is wrong.
        return manifest.exists();
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        // A broken manifest (saved half-written, broken by hand) still
        // names a crate the user works on: report it; its status says what
        // is wrong (PROTOCOL.md, additions).
        return true;
    };
    let Some(package) = table.get("package").and_then(|value| value.as_table()) else {
        return false;
    };
    if table
        .get("bin")
        .and_then(|value| value.as_array())
        .is_some_and(|bins| !bins.is_empty())
    {
        return true;
    }
    if package.get("autobins").and_then(|value| value.as_bool()) == Some(false) {
        return false;
    }
    let dir = manifest.parent().unwrap_or(Path::new("."));
    dir.join("src/main.rs").is_file()
        || fs::read_dir(dir.join("src/bin")).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                let path = entry.path();
                path.extension().is_some_and(|ext| ext == "rs") || path.join("main.rs").is_file()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn discovery_finds_binary_crates_and_skips_libraries_and_targets() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(
            &root.join("app/Cargo.toml"),
            "[package]\nname='app'\nversion='0.1.0'\n",
        );
        write(&root.join("app/src/main.rs"), "fn main(){}");
        write(
            &root.join("lib/Cargo.toml"),
            "[package]\nname='lib'\nversion='0.1.0'\n",
        );
        write(&root.join("lib/src/lib.rs"), "");
        write(
            &root.join("multi/Cargo.toml"),
            "[package]\nname='m'\nversion='0.1.0'\n",
        );
        write(&root.join("multi/src/bin/a.rs"), "fn main(){}");
        write(
            &root.join("app/target/x/Cargo.toml"),
            "[package]\nname='x'\n",
        );
        write(&root.join("app/target/x/src/main.rs"), "fn main(){}");
        write(&root.join("ws/Cargo.toml"), "[workspace]\nmembers=[]\n");
        let found = discover_crates(root);
        assert_eq!(found, vec![root.join("app"), root.join("multi")]);
    }

    /// `cargo metadata` for facts never creates or rewrites Cargo.lock, and
    /// still follows path dependencies (inside and outside the workspace).
    #[test]
    fn facts_leave_the_crate_untouched_and_find_path_dependencies() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        write(
            &root.join("ws/Cargo.toml"),
            "[workspace]\nmembers = [\"app\", \"inner\"]\nresolver = \"2\"\n",
        );
        write(
            &root.join("ws/app/Cargo.toml"),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\ninner = { path = \"../inner\" }\nitoa = \"1\"\n[[bin]]\nname = \"one\"\npath = \"src/main.rs\"\n[[bin]]\nname = \"two\"\npath = \"src/two.rs\"\n",
        );
        write(&root.join("ws/app/src/main.rs"), "fn main(){}");
        write(&root.join("ws/app/src/two.rs"), "fn main(){}");
        write(
            &root.join("ws/inner/Cargo.toml"),
            "[package]\nname = \"inner\"\nversion = \"0.1.0\"\n[dependencies]\nouter = { path = \"../../outer\" }\n",
        );
        write(&root.join("ws/inner/src/lib.rs"), "");
        write(
            &root.join("outer/Cargo.toml"),
            "[package]\nname = \"outer\"\nversion = \"0.1.0\"\n[dev-dependencies]\nnever = { path = \"../never\" }\n",
        );
        write(&root.join("outer/src/lib.rs"), "");
        let (facts, _) = facts_from_cargo(&root.join("ws/app/Cargo.toml")).unwrap();
        assert_eq!(facts.bins, ["one", "two"]);
        assert_eq!(
            facts.local_package_dirs,
            [
                root.join("outer"),
                root.join("ws/app"),
                root.join("ws/inner")
            ]
        );
        assert!(!root.join("ws/Cargo.lock").exists(), "no lock file written");
        assert!(!root.join("outer/Cargo.lock").exists());
    }

    #[test]
    fn a_missing_manifest_is_named() {
        let root = tempfile::tempdir().unwrap();
        let error = resolve_manifest_path(root.path()).unwrap_err().to_string();
        assert!(error.contains("No Cargo.toml found"), "{error}");
        let error = resolve_manifest_path(&root.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("No such file or directory"), "{error}");
    }
}
