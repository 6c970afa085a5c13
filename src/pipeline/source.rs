//! The source hierarchy a containerized build sees: the common ancestor of
//! the workspace root, the crate, its local path dependencies and every
//! project `.cargo/config*` above the crate, and how host paths map to
//! `/work/source` inside the container.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

/// Where the source hierarchy appears inside build containers.
pub const CONTAINER_SOURCE_ROOT: &str = "/work/source";

/// The directory mounted (or shipped) as `/work/source`.
///
/// Unlike the original CLI, the user's own `~/.cargo` is not a reason to
/// widen the root: it is Cargo's home (with credentials), not project
/// configuration, and it never goes into a container.
pub fn source_root(
    workspace_root: &Path,
    crate_dir: &Path,
    local_package_dirs: &[PathBuf],
    home_dir: Option<&Path>,
) -> Result<PathBuf> {
    let mut directories = vec![workspace_root.to_path_buf(), crate_dir.to_path_buf()];
    directories.extend(local_package_dirs.iter().cloned());
    for directory in crate_dir.ancestors() {
        if home_dir.is_some_and(|home| home == directory) {
            continue;
        }
        let cargo_dir = directory.join(".cargo");
        if cargo_dir.join("config.toml").is_file() || cargo_dir.join("config").is_file() {
            directories.push(directory.to_path_buf());
        }
    }
    let canonical = directories
        .iter()
        .map(|path| {
            path.canonicalize()
                .with_context(|| format!("Cannot resolve {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    common_ancestor(&canonical)
}

fn common_ancestor(paths: &[PathBuf]) -> Result<PathBuf> {
    let (first, rest) = paths
        .split_first()
        .ok_or_else(|| anyhow!("No source directories to mount."))?;
    let mut prefix: Vec<Component> = first.components().collect();
    for path in rest {
        let shared = prefix
            .iter()
            .zip(path.components())
            .take_while(|(left, right)| **left == *right)
            .count();
        prefix.truncate(shared);
    }
    if prefix.len() <= 1 {
        bail!(
            "The crate's sources ({}) share no directory below `/`; Arca will not mount the whole filesystem. Move the path dependencies next to the crate.",
            paths
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(prefix.iter().collect())
}

/// `path` (under `root`) as the container sees it.
pub fn container_path(root: &Path, path: &Path) -> Result<String> {
    let relative = path.strip_prefix(root).with_context(|| {
        format!(
            "{} is not under the source root {}",
            path.display(),
            root.display()
        )
    })?;
    let relative = relative
        .to_str()
        .ok_or_else(|| anyhow!("{} is not valid UTF-8", path.display()))?;
    Ok(if relative.is_empty() {
        CONTAINER_SOURCE_ROOT.to_owned()
    } else {
        format!("{CONTAINER_SOURCE_ROOT}/{relative}")
    })
}

/// Maps a path reported from inside the container back to the host: paths
/// under `/work/source` move to `root`; relative paths are relative to the
/// workspace root; anything else (registry sources in the cargo home) is
/// left as it is.
pub fn host_path(root: &Path, workspace_root: &Path, reported: &str) -> PathBuf {
    let path = Path::new(reported);
    if let Ok(rest) = path.strip_prefix(CONTAINER_SOURCE_ROOT) {
        return root.join(rest);
    }
    if path.is_relative() {
        return workspace_root.join(path);
    }
    path.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn the_root_covers_path_dependencies_and_project_cargo_config() {
        let tree = tempfile::tempdir().unwrap();
        let base = tree.path().canonicalize().unwrap();
        for dir in ["ws/app", "ws/libs/util", "ws/.cargo"] {
            fs::create_dir_all(base.join(dir)).unwrap();
        }
        let app = base.join("ws/app");
        let root = source_root(&app, &app, std::slice::from_ref(&app), None).unwrap();
        assert_eq!(root, app);
        let root =
            source_root(&app, &app, &[app.clone(), base.join("ws/libs/util")], None).unwrap();
        assert_eq!(root, base.join("ws"));
        fs::write(base.join("ws/.cargo/config.toml"), "").unwrap();
        let root = source_root(&app, &app, std::slice::from_ref(&app), None).unwrap();
        assert_eq!(root, base.join("ws"));
        let root = source_root(
            &app,
            &app,
            std::slice::from_ref(&app),
            Some(&base.join("ws")),
        )
        .unwrap();
        assert_eq!(
            root, app,
            "the home directory's .cargo never widens the root"
        );
    }

    #[test]
    fn paths_map_both_ways() {
        let root = Path::new("/home/u/ws");
        assert_eq!(
            container_path(root, Path::new("/home/u/ws/app/Cargo.toml")).unwrap(),
            "/work/source/app/Cargo.toml"
        );
        assert_eq!(container_path(root, root).unwrap(), "/work/source");
        assert!(container_path(root, Path::new("/etc")).is_err());
        let workspace = Path::new("/home/u/ws/app");
        assert_eq!(
            host_path(root, workspace, "/work/source/app/src/main.rs"),
            PathBuf::from("/home/u/ws/app/src/main.rs")
        );
        assert_eq!(
            host_path(root, workspace, "src/main.rs"),
            PathBuf::from("/home/u/ws/app/src/main.rs")
        );
        assert_eq!(
            host_path(root, workspace, "/work/cargo-home/registry/x.rs"),
            PathBuf::from("/work/cargo-home/registry/x.rs")
        );
    }

    #[test]
    fn roots_that_share_only_slash_are_refused() {
        let error = common_ancestor(&[PathBuf::from("/a/x"), PathBuf::from("/b/y")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("share no directory"), "{error}");
    }
}
