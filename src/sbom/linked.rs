//! The packages linked into a built binary, from cargo's own resolution.
//!
//! `cargo tree -e normal --target <triple>` (with the build's features and
//! the cargo home the build used, offline first) resolves features exactly
//! as `cargo build` does (no dev-dependency unification under resolver 2)
//! and lists only normal dependencies: no dev-, no build-only, no
//! unselected optional ones. Its `--prefix depth` lines give the edges, its
//! `{l}` the declared licenses; `Cargo.lock` adds each package's source and
//! checksum (the tree names crates.io packages without one).
//!
//! The answer depends only on the lock file, the local manifests, the
//! target and the features, so it is cached under
//! `$ARCA_HOME/cache/rust/sbom/<key>.json` and a rebuild after a source
//! edit runs no cargo at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Package, Source};
use crate::cargo_run::{self, TreeOptions};

/// What a build knows that decides its linked packages.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub manifest_path: &'a Path,
    pub workspace_root: &'a Path,
    pub target: &'a str,
    pub features: &'a [String],
    /// The cargo home the build used, when it is on this host.
    pub cargo_home: Option<&'a Path>,
    /// Local manifests the graph depends on (besides `Cargo.lock`).
    pub manifests: &'a [PathBuf],
}

/// The linked packages (root first) and the edges between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    pub packages: Vec<Package>,
    pub depends_on: Vec<(usize, usize)>,
}

/// The linked packages, from the cache when the inputs are unchanged.
pub fn resolve(request: &Request<'_>, cache_dir: Option<&Path>) -> Result<Linked> {
    let lock = std::fs::read(request.workspace_root.join("Cargo.lock")).with_context(|| {
        format!(
            "Cannot read {}",
            request.workspace_root.join("Cargo.lock").display()
        )
    })?;
    let key = cache_key(request, &lock);
    let cached = cache_dir.map(|dir| dir.join(format!("{key}.json")));
    if let Some(path) = &cached
        && let Ok(bytes) = std::fs::read(path)
        && let Ok(linked) = serde_json::from_slice::<Linked>(&bytes)
    {
        return Ok(linked);
    }
    let tree = run_tree(request)?;
    let locked = lock_packages(&lock)?;
    let linked = from_tree(
        &String::from_utf8_lossy(&tree),
        request.workspace_root,
        &locked,
    )?;
    if let Some(path) = &cached
        && let Err(error) = write_cache(path, &linked)
    {
        tracing::debug!("SBOM cache not written: {error:#}");
    }
    Ok(linked)
}

fn cache_key(request: &Request<'_>, lock: &[u8]) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"arca-sbom-linked-v2");
    field(request.manifest_path.as_os_str().as_encoded_bytes());
    field(request.target.as_bytes());
    field(request.features.join(",").as_bytes());
    field(lock);
    let mut manifests = request.manifests.to_vec();
    manifests.sort();
    for manifest in manifests {
        field(manifest.as_os_str().as_encoded_bytes());
        field(&std::fs::read(&manifest).unwrap_or_default());
    }
    format!("{:x}", hasher.finalize())
}

fn write_cache(path: &Path, linked: &Linked) -> Result<()> {
    let dir = path.parent().ok_or_else(|| anyhow!("no cache directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, &serde_json::to_vec(linked)?)?;
    file.persist(path)?;
    Ok(())
}

/// `cargo tree` with the build's cargo home, offline; online when the
/// offline run lacks something (a cargo of another version keeps its
/// index cache elsewhere).
fn run_tree(request: &Request<'_>) -> Result<Vec<u8>> {
    let mut options = TreeOptions {
        target: request.target.to_owned(),
        features: request.features.to_vec(),
        cargo_home: request.cargo_home.map(Path::to_path_buf),
        offline: true,
    };
    match cargo_run::normal_tree(request.manifest_path, &options) {
        Ok(stdout) => Ok(stdout),
        Err(offline_error) => {
            tracing::debug!("offline cargo tree failed: {offline_error:#}");
            options.offline = false;
            cargo_run::normal_tree(request.manifest_path, &options)
                .context("Cargo could not resolve the crate's dependency graph for its SBOM")
        }
    }
}

/// A `Cargo.lock` package: its source (`None`: a local package) and
/// checksum.
#[derive(Debug, Clone, Default)]
struct Locked {
    source: Option<String>,
    checksum: Option<String>,
}

/// `Cargo.lock`'s packages by `(name, version)`.
fn lock_packages(lock: &[u8]) -> Result<HashMap<(String, String), Locked>> {
    #[derive(Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<LockPackage>,
    }
    #[derive(Deserialize)]
    struct LockPackage {
        name: String,
        version: String,
        source: Option<String>,
        checksum: Option<String>,
    }
    let text = std::str::from_utf8(lock).context("Cargo.lock is not UTF-8")?;
    let parsed: Lock = toml::from_str(text).context("Cargo.lock is not valid TOML")?;
    Ok(parsed
        .package
        .into_iter()
        .map(|package| {
            (
                (package.name, package.version),
                Locked {
                    source: package.source,
                    checksum: package.checksum,
                },
            )
        })
        .collect())
}

/// One line of the tree: depth, name, version, the parenthesized notes
/// (a local package's path first), the license.
#[derive(Debug, PartialEq, Eq)]
struct TreeLine<'a> {
    depth: usize,
    name: &'a str,
    version: &'a str,
    path: Option<&'a str>,
    license: &'a str,
}

fn parse_line(line: &str) -> Option<TreeLine<'_>> {
    // Repeated subtrees end in ` (*)`, after the formatted text.
    let line = line.strip_suffix(" (*)").unwrap_or(line);
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let depth = line[..digits].parse().ok()?;
    let (package, license) = line[digits..].rsplit_once('|')?;
    let (name, rest) = package.split_once(" v")?;
    let (version, notes) = rest.split_once(' ').unwrap_or((rest, ""));
    let path = notes
        .strip_prefix('(')
        .and_then(|notes| notes.split(") (").next())
        .map(|note| note.trim_end_matches(')'))
        .filter(|note| note.starts_with('/'));
    Some(TreeLine {
        depth,
        name,
        version,
        path,
        license: license.trim(),
    })
}

fn from_tree(
    tree: &str,
    workspace_root: &Path,
    locked: &HashMap<(String, String), Locked>,
) -> Result<Linked> {
    let mut packages: BTreeMap<(String, String), Package> = BTreeMap::new();
    let mut edges: BTreeSet<((String, String), (String, String))> = BTreeSet::new();
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut root = None;
    for line in tree.lines().filter(|line| !line.trim().is_empty()) {
        let parsed = parse_line(line)
            .ok_or_else(|| anyhow!("unexpected `cargo tree` line: {}", line.escape_debug()))?;
        let key = (parsed.name.to_owned(), parsed.version.to_owned());
        if parsed.depth == 0 {
            if root.is_some() {
                // Another root: a second package of the same manifest.
                break;
            }
            root = Some(key.clone());
        }
        stack.truncate(parsed.depth);
        if let Some(parent) = stack.last() {
            edges.insert((parent.clone(), key.clone()));
        }
        stack.push(key.clone());
        packages
            .entry(key)
            .or_insert_with(|| describe(&parsed, workspace_root, locked));
    }
    let root = root.ok_or_else(|| anyhow!("`cargo tree` listed no package"))?;
    let mut ordered: Vec<(String, String)> = packages.keys().cloned().collect();
    ordered.sort_by_key(|key| (*key != root, packages[key].clone()));
    let index: HashMap<&(String, String), usize> = ordered
        .iter()
        .enumerate()
        .map(|(position, key)| (key, position))
        .collect();
    let mut depends_on: Vec<(usize, usize)> = edges
        .iter()
        .map(|(from, to)| (index[from], index[to]))
        .collect();
    depends_on.sort();
    Ok(Linked {
        packages: ordered.iter().map(|key| packages[key].clone()).collect(),
        depends_on,
    })
}

fn describe(
    line: &TreeLine<'_>,
    workspace_root: &Path,
    locked: &HashMap<(String, String), Locked>,
) -> Package {
    let entry = locked
        .get(&(line.name.to_owned(), line.version.to_owned()))
        .cloned()
        .unwrap_or_default();
    let source = match (&entry.source, line.path) {
        (Some(source), _) => parse_source(source),
        (None, Some(path)) => Source::Path {
            relative: relative_dir(Path::new(path), workspace_root),
        },
        (None, None) => Source::Path {
            relative: ".".to_owned(),
        },
    };
    Package {
        name: line.name.to_owned(),
        version: line.version.to_owned(),
        source,
        checksum: entry.checksum.filter(|checksum| is_sha256_hex(checksum)),
        license: spdx_expression(line.license),
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The license when it is a valid SPDX expression (strictly: the old
/// `MIT/Apache-2.0` form is not), never a guess.
pub fn spdx_expression(license: &str) -> Option<String> {
    if license.trim().is_empty() {
        return None;
    }
    spdx::Expression::parse(license.trim())
        .ok()
        .map(|_| license.trim().to_owned())
}

/// A local package's directory relative to the workspace root (`.` for the
/// root itself, `../shared/core` outside it): never an absolute host path.
fn relative_dir(dir: &Path, workspace_root: &Path) -> String {
    let relative = pathdiff::diff_paths(dir, workspace_root)
        .filter(|path| path.is_relative())
        .unwrap_or_else(|| PathBuf::from(dir.file_name().unwrap_or_default()));
    let text = relative.to_string_lossy().into_owned();
    if text.is_empty() {
        ".".to_owned()
    } else {
        text
    }
}

/// A package id's source (`registry+…`, `sparse+…`, `git+…#commit`).
fn parse_source(source: &str) -> Source {
    const CRATES_IO: [&str; 2] = [
        "registry+https://github.com/rust-lang/crates.io-index",
        "sparse+https://index.crates.io/",
    ];
    if CRATES_IO.contains(&source) {
        return Source::CratesIo;
    }
    if let Some(rest) = source.strip_prefix("git+") {
        let (url, commit) = rest.split_once('#').unwrap_or((rest, ""));
        return Source::Git {
            url: without_credentials(url, true),
            commit: commit.to_owned(),
        };
    }
    let url = source
        .split_once('+')
        .map_or(source, |(_, url)| url)
        .to_owned();
    Source::Registry {
        url: without_credentials(&url, false),
    }
}

/// The URL without user, password (and query, when asked): what may be
/// written into a document others read.
fn without_credentials(url: &str, drop_query: bool) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            if drop_query {
                parsed.set_query(None);
            }
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "NOASSERTION".to_owned(),
    }
}

/// The host triple in `rustc -vV` output (`host: x86_64-unknown-linux-gnu`).
fn host_line(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|triple| triple.trim().to_owned())
        .filter(|triple| !triple.is_empty())
}

/// The triple the builder's rustc targets, from the `rustc -vV` answer
/// cargo caches in the target directory (`.rustc_info.json`).
pub fn target_of(target_dir: &Path) -> Option<String> {
    let bytes = std::fs::read(target_dir.join(".rustc_info.json")).ok()?;
    let info: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    info.get("outputs")?
        .as_object()?
        .values()
        .filter_map(|output| output.get("stdout")?.as_str())
        .find_map(host_line)
}

/// This host's triple (`rustc -vV`), else its architecture's GNU/Linux one.
pub fn host_target() -> String {
    crate::manifest::current_host_mode()
        .as_deref()
        .and_then(host_line)
        .unwrap_or_else(|| format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lines_give_depth_package_path_and_license() {
        assert_eq!(
            parse_line("0sbom-app v0.1.0 (/w/ws/app)|MIT OR Apache-2.0"),
            Some(TreeLine {
                depth: 0,
                name: "sbom-app",
                version: "0.1.0",
                path: Some("/w/ws/app"),
                license: "MIT OR Apache-2.0"
            })
        );
        assert_eq!(
            parse_line("2serde_derive v1.0.229 (proc-macro)|MIT OR Apache-2.0 (*)"),
            Some(TreeLine {
                depth: 2,
                name: "serde_derive",
                version: "1.0.229",
                path: None,
                license: "MIT OR Apache-2.0"
            })
        );
        assert_eq!(
            parse_line("1dep v0.2.0 (https://example.com/r?branch=main#0123abcd)|"),
            Some(TreeLine {
                depth: 1,
                name: "dep",
                version: "0.2.0",
                path: None,
                license: ""
            })
        );
    }

    #[test]
    fn a_tree_becomes_packages_and_edges_with_lock_sources() {
        let tree = "0app v0.1.0 (/w/ws/app)|MIT\n1core v0.1.0 (/w/ws/core)|\n2itoa v1.0.0|MIT\n1itoa v1.0.0|MIT\n1serde v1.0.0|MIT\n2serde_core v1.0.0|MIT\n";
        let mut locked = HashMap::new();
        for name in ["itoa", "serde", "serde_core"] {
            locked.insert(
                (name.to_owned(), "1.0.0".to_owned()),
                Locked {
                    source: Some("registry+https://github.com/rust-lang/crates.io-index".into()),
                    checksum: Some("ab".repeat(32)),
                },
            );
        }
        let linked = from_tree(tree, Path::new("/w/ws"), &locked).unwrap();
        let names: Vec<&str> = linked.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["app", "core", "itoa", "serde", "serde_core"]);
        assert_eq!(linked.depends_on, [(0, 1), (0, 2), (0, 3), (1, 2), (3, 4)]);
        assert_eq!(
            linked.packages[1].source,
            Source::Path {
                relative: "core".into()
            }
        );
        assert_eq!(linked.packages[2].source, Source::CratesIo);
        assert_eq!(linked.packages[1].license, None);
    }

    #[test]
    fn git_sources_lose_credentials_and_query_but_keep_the_commit() {
        assert_eq!(
            parse_source("git+https://user:secret@example.com/team/repo.git?branch=main#0123abcd"),
            Source::Git {
                url: "https://example.com/team/repo.git".into(),
                commit: "0123abcd".into()
            }
        );
        assert_eq!(
            parse_source("registry+https://github.com/rust-lang/crates.io-index"),
            Source::CratesIo
        );
        assert_eq!(
            parse_source("sparse+https://token@my.registry/index/"),
            Source::Registry {
                url: "https://my.registry/index/".into()
            }
        );
    }

    #[test]
    fn licenses_are_kept_only_when_they_are_spdx_expressions() {
        assert_eq!(
            spdx_expression("MIT OR Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(spdx_expression("MIT/Apache-2.0"), None);
        assert_eq!(spdx_expression("my own license"), None);
    }

    #[test]
    fn local_packages_are_named_by_paths_relative_to_the_workspace() {
        let root = Path::new("/home/someone/ws");
        assert_eq!(relative_dir(root, root), ".");
        assert_eq!(relative_dir(&root.join("core"), root), "core");
        assert_eq!(
            relative_dir(Path::new("/home/someone/shared/lib"), root),
            "../shared/lib"
        );
    }
}
