//! `.arca/config.toml`: the settings model, loading, the checker that turns
//! a config text into findings, and comment-preserving edits.
//!
//! **Pure where it can be:** [`checker::check`] takes text and crate facts and
//! returns findings with byte spans; it does no IO. The CLI prints findings,
//! the server turns them into diagnostics: one source of every message.

pub mod assist;
pub mod builder_values;
pub mod checker;
pub mod edit;
pub mod image_ref;
pub mod live;
pub mod run;
pub mod schema;

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The `[rust]` table: every leaf optional, so command arguments and the file
/// merge (argument first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RustConfig {
    pub profile: Option<String>,
    pub features: Option<Vec<String>>,
    pub bin: Option<String>,
    pub base_image: Option<String>,
}

/// The builder-shaping keys of `[rust]`: read by builds only, never saved
/// by `--set-default`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderConfig {
    /// Extra system packages for the builder image.
    pub packages: Vec<String>,
    /// A pinned Rust toolchain (overrides `rust-toolchain.toml`).
    pub toolchain: Option<String>,
    /// Extra environment variables of the cargo build, in file order.
    pub env: Vec<(String, String)>,
    /// Pass the host's proxy variables (default true).
    pub proxy: Option<bool>,
    /// A static init in the image (default false).
    pub init: Option<bool>,
}

/// `<crate_dir>/.arca/config.toml`.
pub fn config_path(crate_dir: &Path) -> PathBuf {
    crate_dir.join(".arca").join("config.toml")
}

/// Reads the crate's config: a missing file is an empty config; a file with
/// errors is refused with the first error, located, and what to do.
pub fn load(crate_dir: &Path) -> Result<RustConfig> {
    Ok(load_all(crate_dir)?.0)
}

/// [`load`] with the builder-shaping keys.
pub fn load_all(crate_dir: &Path) -> Result<(RustConfig, BuilderConfig)> {
    let path = config_path(crate_dir);
    let bytes = match crate::fsread::read(&path, crate::fsread::Kind::Config) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Default::default());
        }
        Err(error) => {
            return Err(error).with_context(|| format!("Failed to read {}", path.display()));
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        bail!(
            "{} is not valid UTF-8. Save it as UTF-8 text.",
            path.display()
        );
    };
    let findings = checker::check(&text, None);
    if let Some(error) = findings
        .iter()
        .find(|finding| finding.severity == Severity::Error)
    {
        bail!(
            "{}: {}\nRun `arca check {}` to see every problem.",
            error.location(&path, &text),
            error.message,
            crate_dir.display()
        );
    }
    Ok((
        checker::parse_settings(&text),
        checker::parse_builder_settings(&text),
    ))
}

/// The crate's `push_to` destination (`REGISTRY/REPOSITORY[:TAG]`), if set;
/// a config with errors is refused like [`load`].
pub fn load_push_to(crate_dir: &Path) -> Result<Option<String>> {
    load(crate_dir)?;
    match crate::fsread::read_to_string(&config_path(crate_dir), crate::fsread::Kind::Config) {
        Ok(text) => Ok(checker::parse_push_to(&text)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error)
            .with_context(|| format!("Failed to read {}", config_path(crate_dir).display())),
    }
}

/// The first error of a crate's config, checked against the crate's facts
/// (so undeclared features and unknown binaries count), as a message that
/// says where it is and what to do; `None` when the config has no error.
/// `text` is the config's text when the caller has it (an editor's open
/// document); otherwise the saved file is read. Errors about a `[rust]`
/// setting named in `overridden` are skipped: the command gives that
/// setting itself (`--bin first` settles an `ambiguous-binary`).
pub fn first_error(
    crate_dir: &Path,
    facts: Option<&crate::workspace::CrateFacts>,
    text: Option<&str>,
    overridden: &[&str],
) -> Option<String> {
    let path = config_path(crate_dir);
    let owned;
    let text = match text {
        Some(text) => text,
        None => {
            // Only a regular file, bounded: a pipe or device here is
            // reported by the caller's load, never read.
            owned = crate::fsread::read_to_string(&path, crate::fsread::Kind::Config).ok()?;
            &owned
        }
    };
    let findings = checker::check(text, facts);
    let error = findings.iter().find(|finding| {
        finding.severity == Severity::Error
            && !finding_setting(finding, text).is_some_and(|key| overridden.contains(&key))
    })?;
    let (line, _) = line_col(text, error.span.start);
    Some(format!(
        "{} has an error, so nothing was built: {} (line {}). Fix it and try again.",
        path.display(),
        error.message,
        line + 1
    ))
}

/// The `[rust]` setting a finding is about: by its code where the code
/// names one, else the key that starts the finding's line.
fn finding_setting<'a>(finding: &Finding, text: &'a str) -> Option<&'a str> {
    match finding.code {
        Code::AmbiguousBinary | Code::UnknownBinary => return Some("bin"),
        Code::UnknownFeature => return Some("features"),
        Code::UnknownProfile => return Some("profile"),
        _ => {}
    }
    let line_start = text
        .get(..finding.span.start)?
        .rfind('\n')
        .map_or(0, |at| at + 1);
    let line = text.get(line_start..)?.trim_start();
    let key = line
        .split(|ch: char| ch == '=' || ch.is_whitespace())
        .next()?
        .trim_start_matches("rust.");
    (!key.is_empty()).then_some(key)
}

/// Writes the `Some` settings into the crate's config through
/// [`edit::set_defaults`] (keeping the user's comments and ordering),
/// replacing the file atomically. Returns the config's path.
pub fn save_defaults(crate_dir: &Path, updates: &RustConfig) -> Result<PathBuf> {
    let path = config_path(crate_dir);
    let text = match crate::fsread::read_to_string(&path, crate::fsread::Kind::Config) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(error).with_context(|| format!("Failed to read {}", path.display()));
        }
    };
    let updated = edit::set_defaults(&text, updates)
        .with_context(|| format!("Cannot save the settings into {}", path.display()))?;
    let dir = path.parent().unwrap_or(crate_dir);
    std::fs::create_dir_all(dir).with_context(|| format!("Failed to create {}", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("Failed to write in {}", dir.display()))?;
    std::io::Write::write_all(&mut file, updated.as_bytes())
        .with_context(|| format!("Failed to write {}", path.display()))?;
    // A temporary file is created 0600: keep the config's own mode (or the
    // usual 0644 for a new one).
    let mode = std::fs::metadata(&path).map_or(0o644, |metadata| {
        std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o7777
    });
    file.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("Failed to write {}", path.display()))?;
    file.persist(&path)
        .with_context(|| format!("Failed to write {}", path.display()))?;
    Ok(path)
}

/// Splits feature values on commas and whitespace, drops empties and
/// duplicates, keeps first-seen order.
pub fn normalize_features<S: AsRef<str>>(values: &[S]) -> Vec<String> {
    let mut features: Vec<String> = Vec::new();
    for value in values {
        for feature in value
            .as_ref()
            .split(|ch: char| ch == ',' || ch.is_whitespace())
            .filter(|feature| !feature.is_empty())
        {
            if !features.iter().any(|known| known == feature) {
                features.push(feature.to_owned());
            }
        }
    }
    features
}

/// How serious a finding is (the LSP severities Arca uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "info",
        }
    }
}

/// The diagnostic codes of PROTOCOL.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Code {
    TomlSyntax,
    InvalidType,
    UnknownKey,
    EmptyValue,
    UnknownProfile,
    UnknownFeature,
    UnknownBinary,
    AmbiguousBinary,
    InvalidImage,
    /// A builder setting (`packages`, `toolchain`, `env`) with a value
    /// Arca refuses (additive to PROTOCOL.md).
    InvalidValue,
    MissingSetting,
    CudaBuilder,
}

impl Code {
    /// The wire name, e.g. `unknown-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::TomlSyntax => "toml-syntax",
            Code::InvalidType => "invalid-type",
            Code::UnknownKey => "unknown-key",
            Code::EmptyValue => "empty-value",
            Code::UnknownProfile => "unknown-profile",
            Code::UnknownFeature => "unknown-feature",
            Code::UnknownBinary => "unknown-binary",
            Code::AmbiguousBinary => "ambiguous-binary",
            Code::InvalidImage => "invalid-image",
            Code::InvalidValue => "invalid-value",
            Code::MissingSetting => "missing-setting",
            Code::CudaBuilder => "cuda-builder",
        }
    }
}

/// One replacement of a byte range of the config text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextEdit {
    pub span: Range<usize>,
    pub new_text: String,
}

/// A quick fix: a title for the menu and the edits that apply it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<TextEdit>,
}

/// One problem (or note) in a config text, located by byte span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// Byte range of the offending key, value or token in the text.
    pub span: Range<usize>,
    pub message: String,
    /// Quick fixes, best first.
    pub fixes: Vec<Fix>,
}

impl Finding {
    /// `path:line:col` (1-based, columns in characters) of the finding's start.
    pub fn location(&self, path: &Path, text: &str) -> String {
        let (line, col) = line_col(text, self.span.start);
        format!("{}:{}:{}", path.display(), line + 1, col + 1)
    }

    /// The CLI's one-line form: `file:line:col: severity[code]: message`.
    pub fn render(&self, path: &Path, text: &str) -> String {
        format!(
            "{}: {}[{}]: {}",
            self.location(path, text),
            self.severity.as_str(),
            self.code.as_str(),
            self.message
        )
    }
}

/// Zero-based line and character column of a byte offset (clamped to the
/// text, and to a character boundary).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    (line, before[line_start..].chars().count())
}

#[cfg(test)]
mod save_tests {
    use super::*;

    #[test]
    fn saving_defaults_keeps_comments_and_creates_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let updates = RustConfig {
            profile: Some("release".into()),
            features: Some(vec![]),
            bin: None,
            base_image: Some("debian:12".into()),
        };
        let path = save_defaults(dir.path(), &updates).unwrap();
        assert_eq!(load(dir.path()).unwrap(), updates);

        std::fs::write(
            &path,
            "# my settings\n[rust]\nprofile = \"dev\" # fast\n\n# trailing note\n",
        )
        .unwrap();
        save_defaults(dir.path(), &updates).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# my settings\n[rust]\nprofile = \"release\""),
            "{text}"
        );
        assert!(
            text.contains("# fast") && text.contains("# trailing note"),
            "{text}"
        );
        assert_eq!(load(dir.path()).unwrap(), updates);
    }
}

#[cfg(test)]
mod first_error_tests {
    use super::first_error;

    const CONFIG: &str =
        "[rust]\nprofile = \"release\"\nfeatures = [\"nope\"]\nbase_image = \"debian:12\"\n";

    #[test]
    fn errors_about_settings_the_command_gives_are_skipped() {
        let facts = crate::workspace::test_facts(&["first", "second"], &[]);
        let dir = std::path::Path::new("/w/demo");
        let first = first_error(dir, Some(&facts), Some(CONFIG), &[]).expect("an error");
        assert!(first.contains("several binaries"), "{first}");
        // `--bin` given: the missing `bin` no longer matters, the undeclared
        // feature still does.
        let next = first_error(dir, Some(&facts), Some(CONFIG), &["bin"]).expect("feature");
        assert!(next.contains("nope"), "{next}");
        // `-F` and `--bin` given: nothing left to refuse.
        assert_eq!(
            first_error(dir, Some(&facts), Some(CONFIG), &["features", "bin"]),
            None
        );
        // An invalid value is attributed to the key on its line.
        let bad_image = "[rust]\nprofile = \"release\"\nfeatures = []\nbin = \"first\"\nbase_image = \"Not Valid\"\n";
        assert!(first_error(dir, Some(&facts), Some(bad_image), &[]).is_some());
        assert_eq!(
            first_error(dir, Some(&facts), Some(bad_image), &["base_image"]),
            None
        );
    }
}
