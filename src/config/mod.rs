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
pub mod finding;
pub mod image_ref;
pub mod live;
pub mod push;
pub mod run;
pub mod scan;
pub mod schema;
pub mod settings;
pub mod suggest;
#[cfg(test)]
mod table_tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use finding::{Code, Finding, Fix, Severity, TextEdit, line_col};
pub use settings::{BuilderConfig, RustConfig, normalize_features};

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
        settings::parse_settings(&text),
        settings::parse_builder_settings(&text),
    ))
}

/// The crate's `push_to` destination (`REGISTRY/REPOSITORY[:TAG]`), if set;
/// a config with errors is refused like [`load`].
pub fn load_push_to(crate_dir: &Path) -> Result<Option<String>> {
    load(crate_dir)?;
    match crate::fsread::read_to_string(&config_path(crate_dir), crate::fsread::Kind::Config) {
        Ok(text) => Ok(settings::parse_push_to(&text)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error)
            .with_context(|| format!("Failed to read {}", config_path(crate_dir).display())),
    }
}

/// The crate's `[push]` settings (defaults without a config).
pub fn load_push(crate_dir: &Path) -> Result<push::PushConfig> {
    match crate::fsread::read_to_string(&config_path(crate_dir), crate::fsread::Kind::Config) {
        Ok(text) => Ok(push::parse(&text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(push::PushConfig::default())
        }
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
/// names one, else the `[rust]` key whose value holds it (an entry of an
/// array written over several lines), else the key that starts the
/// finding's line.
fn finding_setting<'a>(finding: &Finding, text: &'a str) -> Option<&'a str> {
    match finding.code {
        Code::AmbiguousBinary | Code::UnknownBinary => return Some("bin"),
        Code::UnknownFeature => return Some("features"),
        Code::UnknownProfile => return Some("profile"),
        _ => {}
    }
    if let Ok(document) = toml_edit::Document::parse(text)
        && let Some(rust) = document
            .as_table()
            .get(schema::RUST_TABLE)
            .and_then(toml_edit::Item::as_table_like)
    {
        let holder = rust.iter().find(|(_, item)| {
            item.as_value()
                .and_then(toml_edit::Value::span)
                .is_some_and(|span| span.contains(&finding.span.start))
        });
        if let Some(spec) = holder.and_then(|(name, _)| schema::key(name)) {
            return Some(spec.name);
        }
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

    #[test]
    fn a_bad_platform_refuses_a_build_and_an_empty_or_repeated_list_does_not() {
        let facts = crate::workspace::test_facts(&["demo"], &[]);
        let dir = std::path::Path::new("/w/demo");
        let base = "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"debian:12\"\n";
        let bad = format!("{base}platforms = [\"linux/amd64\", \"linux/amr64\"]\n");
        let error = first_error(dir, Some(&facts), Some(&bad), &[]).expect("an error");
        assert!(error.contains("Did you mean `linux/arm64`?"), "{error}");
        assert!(error.contains("(line 5)"), "{error}");
        // A `--platform` given for the build settles the config's list,
        // also when the list is written over several lines.
        assert_eq!(
            first_error(dir, Some(&facts), Some(&bad), &["platforms"]),
            None
        );
        let lines = format!("{base}platforms = [\n  \"linux/amd64\",\n  \"linux/amr64\",\n]\n");
        assert!(first_error(dir, Some(&facts), Some(&lines), &[]).is_some());
        assert_eq!(
            first_error(dir, Some(&facts), Some(&lines), &["platforms"]),
            None
        );
        for warned in ["[]", "[\"linux/arm64\", \"linux/arm64/v8\"]"] {
            let text = format!("{base}platforms = {warned}\n");
            assert_eq!(
                first_error(dir, Some(&facts), Some(&text), &[]),
                None,
                "{warned}"
            );
        }
    }
}
