//! Where Arca keeps its state, and the conversions between paths and the
//! `file://` URIs that identify crates on the wire.
//!
//! **Every name that becomes a path component goes through
//! [`validate_component`] first.**

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

/// The state root: `$ARCA_HOME`, else `~/.arca`.
pub fn arca_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("ARCA_HOME").filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    dirs::home_dir()
        .map(|home| home.join(".arca"))
        .ok_or_else(|| anyhow!("Cannot find the home directory. Set ARCA_HOME to choose where Arca keeps its state."))
}

/// The artifact store: `$ARCA_HOME/containers`.
pub fn containers_dir() -> Result<PathBuf> {
    Ok(arca_home()?.join("containers"))
}

/// The build and metadata cache: `$ARCA_HOME/cache`.
pub fn cache_dir() -> Result<PathBuf> {
    Ok(arca_home()?.join("cache"))
}

/// Checks that `name` can safely be used as one path component (or image
/// tag part): non-empty, no separators, not `.` or `..`, no NUL.
pub fn validate_component(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("The {what} is empty.");
    }
    if name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        bail!(
            "The {what} `{name}` is not a plain name: it must not contain path separators or be `.` or `..`."
        );
    }
    Ok(())
}

/// Whether two paths name the same file: equal, or equal once canonical.
pub fn same_path(left: &Path, right: &Path) -> bool {
    left == right
        || left
            .canonicalize()
            .ok()
            .zip(right.canonicalize().ok())
            .is_some_and(|(left, right)| left == right)
}

/// The `file://` URI of a directory, without a trailing slash, as PROTOCOL.md
/// identifies crates.
pub fn dir_uri(path: &Path) -> String {
    let url = url::Url::from_file_path(path).map(|url| url.to_string());
    let text = url.unwrap_or_else(|()| format!("file://{}", path.display()));
    text.trim_end_matches('/').to_owned()
}

/// The local path named by a `file://` URI, if it is one.
pub fn uri_to_path(uri: &str) -> Option<PathBuf> {
    url::Url::parse(uri).ok()?.to_file_path().ok()
}

/// Text safe to print on a terminal: control characters (escape sequences,
/// carriage returns, newlines...) shown escaped, everything else as is.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_uri_has_no_trailing_slash_and_escapes_spaces() {
        assert_eq!(
            dir_uri(Path::new("/tmp/my crate")),
            "file:///tmp/my%20crate"
        );
        assert_eq!(dir_uri(Path::new("/tmp/demo/")), "file:///tmp/demo");
    }

    #[test]
    fn uri_round_trips() {
        let path = Path::new("/tmp/a b/c");
        assert_eq!(uri_to_path(&dir_uri(path)).as_deref(), Some(path));
    }

    #[test]
    fn components_with_separators_are_refused() {
        assert!(validate_component("binary name", "server").is_ok());
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b"] {
            let error = validate_component("binary name", bad)
                .unwrap_err()
                .to_string();
            assert!(error.contains("binary name"), "{error}");
        }
    }
}
