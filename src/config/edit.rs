//! Comment-preserving writes of `.arca/config.toml`: `--set-default` and
//! `arca.setDefaults` put settings into `[rust]` through `toml_edit`, so the
//! user's comments, key order and formatting survive.

use anyhow::{Result, bail};
use toml_edit::{Array, DocumentMut, Item, TableLike, Value};

use super::schema::{self, RUST_TABLE};
use super::settings::RustConfig;

/// Writes the `Some` fields of `updates` into the `[rust]` table of `text`
/// and returns the new text. Existing keys keep their place and their
/// comments; new keys go after the table's last setting; a missing `[rust]`
/// table is created (at the end). `features = []` saves an empty set.
///
/// Refuses a text that is not valid TOML, or whose `rust` is not a table,
/// since rewriting either would lose what the user wrote.
pub fn set_defaults(text: &str, updates: &RustConfig) -> Result<String> {
    let mut document: DocumentMut = match text.parse() {
        Ok(document) => document,
        Err(error) => {
            let error: toml_edit::TomlError = error;
            let (line, column) = error
                .span()
                .map(|span| super::finding::line_col(text, span.start))
                .unwrap_or((0, 0));
            bail!(
                ".arca/config.toml is not valid TOML (line {}, column {}: {}). Fix the file, then save the defaults again.",
                line + 1,
                column + 1,
                error.message().trim().trim_end_matches('.')
            );
        }
    };
    let updates_any = updates.profile.is_some()
        || updates.features.is_some()
        || updates.bin.is_some()
        || updates.base_image.is_some();
    if !updates_any {
        return Ok(text.to_owned());
    }
    if !document.contains_key(RUST_TABLE) {
        // The new table goes at the end, after the comments that end the
        // file (which toml_edit would otherwise print after it), separated
        // by a blank line.
        let trailing = document.trailing().as_str().unwrap_or_default().to_owned();
        let separator = if text.trim().is_empty() || trailing.ends_with("\n\n") {
            ""
        } else {
            "\n"
        };
        let mut table = toml_edit::Table::new();
        let prefix = if text.trim().is_empty() {
            String::new()
        } else {
            format!("{trailing}{separator}")
        };
        table.decor_mut().set_prefix(prefix);
        document.set_trailing("");
        document.insert(RUST_TABLE, Item::Table(table));
    }
    let root = document.as_table_mut();
    let inline = matches!(
        root.get(RUST_TABLE),
        Some(Item::Value(Value::InlineTable(_)))
    );
    let Some(rust) = root.get_mut(RUST_TABLE).and_then(Item::as_table_like_mut) else {
        bail!(
            "`rust` in .arca/config.toml is not a table, so the defaults cannot be saved. Replace it with a `[rust]` table, then save again."
        );
    };
    let string_updates = [
        (schema::PROFILE.name, &updates.profile),
        (schema::BIN.name, &updates.bin),
        (schema::BASE_IMAGE.name, &updates.base_image),
    ];
    for (key, update) in string_updates {
        if let Some(update) = update {
            set_value(rust, inline, key, Value::from(update.as_str()));
        }
    }
    if let Some(features) = &updates.features {
        let array: Array = features.iter().map(String::as_str).collect();
        set_value(rust, inline, schema::FEATURES.name, Value::Array(array));
    }
    // Values in a table that only existed through `[rust.x]` headers need a
    // header of their own.
    if let Some(Item::Table(table)) = document.as_table_mut().get_mut(RUST_TABLE)
        && table.is_implicit()
        && !table.is_dotted()
    {
        table.set_implicit(false);
    }
    let edited = document.to_string();
    // toml_edit writes `\n` line ends; keep a CRLF file CRLF.
    if text.contains("\r\n") {
        return Ok(edited.replace("\r\n", "\n").replace('\n', "\r\n"));
    }
    Ok(edited)
}

/// Sets `key` to `value`, keeping the comments and spacing around an
/// existing value. In an inline table, a new last entry takes over the
/// spacing before the closing brace.
fn set_value(table: &mut dyn TableLike, inline: bool, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(Item::Value(existing)) => {
            *value.decor_mut() = existing.decor().clone();
            *existing = value;
        }
        Some(item) => *item = Item::Value(value),
        None => {
            if inline && let Some((_, Item::Value(last))) = table.iter_mut().last() {
                let suffix = last.decor().suffix().cloned();
                if let Some(suffix) = suffix {
                    last.decor_mut().set_suffix("");
                    value.decor_mut().set_suffix(suffix);
                }
                value.decor_mut().set_prefix(" ");
            }
            table.insert(key, Item::Value(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(profile: &str, features: &[&str], bin: &str, image: &str) -> RustConfig {
        RustConfig {
            profile: Some(profile.into()),
            features: Some(features.iter().map(|name| (*name).to_owned()).collect()),
            bin: Some(bin.into()),
            base_image: Some(image.into()),
        }
    }

    #[test]
    fn edits_keep_comments_order_and_formatting() {
        let cases: Vec<(&str, RustConfig, &str)> = vec![
            (
                "",
                all("release", &[], "server", "debian:bookworm-slim"),
                "[rust]\nprofile = \"release\"\nbin = \"server\"\nbase_image = \"debian:bookworm-slim\"\nfeatures = []\n",
            ),
            (
                "# Arca settings\n\n[rust] # the table\n# before profile\nprofile   =   \"dev\" # fast builds\nbase_image = \"busybox\"\n# trailing comment\n",
                RustConfig {
                    profile: Some("release".into()),
                    features: Some(vec!["cli".into(), "http".into()]),
                    ..Default::default()
                },
                "# Arca settings\n\n[rust] # the table\n# before profile\nprofile   =   \"release\" # fast builds\nbase_image = \"busybox\"\nfeatures = [\"cli\", \"http\"]\n# trailing comment\n",
            ),
            (
                "[rust]\nfeatures = [ \"a\" ] # keep me\nprofile = \"dev\"\n\n[other]\nx = 1 # unknown but kept\n",
                RustConfig {
                    features: Some(vec![]),
                    bin: Some("b".into()),
                    ..Default::default()
                },
                "[rust]\nfeatures = [] # keep me\nprofile = \"dev\"\nbin = \"b\"\n\n[other]\nx = 1 # unknown but kept\n",
            ),
            (
                "# only a comment\n",
                RustConfig {
                    profile: Some("release".into()),
                    ..Default::default()
                },
                "# only a comment\n\n[rust]\nprofile = \"release\"\n",
            ),
            (
                "rust.profile = \"dev\" # dotted\n",
                RustConfig {
                    profile: Some("release".into()),
                    bin: Some("x".into()),
                    ..Default::default()
                },
                "rust.profile = \"release\" # dotted\nrust.bin = \"x\"\n",
            ),
            (
                "rust = { profile = \"dev\" }\n",
                RustConfig {
                    base_image: Some("ubuntu:24.04".into()),
                    ..Default::default()
                },
                "rust = { profile = \"dev\", base_image = \"ubuntu:24.04\" }\n",
            ),
            (
                "[rust.extra]\nx = 1\n",
                RustConfig {
                    profile: Some("release".into()),
                    ..Default::default()
                },
                "[rust]\nprofile = \"release\"\n[rust.extra]\nx = 1\n",
            ),
            (
                "[rust]\r\nprofile = \"dev\"\r\n",
                RustConfig {
                    bin: Some("a \"quoted\" name".into()),
                    ..Default::default()
                },
                "[rust]\r\nprofile = \"dev\"\r\nbin = 'a \"quoted\" name'\r\n",
            ),
        ];
        for (text, updates, expected) in cases {
            let edited = set_defaults(text, &updates).unwrap();
            assert_eq!(edited, expected, "editing {text:?}");
            let settings = crate::config::settings::parse_settings(&edited);
            for (saved, wanted) in [
                (&settings.profile, &updates.profile),
                (&settings.bin, &updates.bin),
                (&settings.base_image, &updates.base_image),
            ] {
                if wanted.is_some() {
                    assert_eq!(saved, wanted);
                }
            }
            if updates.features.is_some() {
                assert_eq!(settings.features, updates.features);
            }
        }
    }

    #[test]
    fn a_new_table_goes_after_everything_with_a_blank_line() {
        let updates = RustConfig {
            profile: Some("dev".into()),
            ..Default::default()
        };
        for (text, expected) in [
            (
                "[other]\nx = 1\n",
                "[other]\nx = 1\n\n[rust]\nprofile = \"dev\"\n",
            ),
            (
                "[other]\nx = 1",
                "[other]\nx = 1\n\n[rust]\nprofile = \"dev\"\n",
            ),
            (
                "x = 1\n# end\n\n",
                "x = 1\n# end\n\n[rust]\nprofile = \"dev\"\n",
            ),
            ("\n", "[rust]\nprofile = \"dev\"\n"),
        ] {
            assert_eq!(set_defaults(text, &updates).unwrap(), expected, "{text:?}");
        }
    }

    #[test]
    fn no_updates_leave_the_text_untouched() {
        let text = "# hi\n[rust]\nprofile =\"dev\"\n";
        assert_eq!(set_defaults(text, &RustConfig::default()).unwrap(), text);
    }

    #[test]
    fn broken_files_and_non_table_rust_are_refused_with_the_reason() {
        let updates = all("release", &[], "a", "busybox");
        let error = set_defaults("[rust]\nprofile = \"dev\n", &updates)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not valid TOML (line 2, column"), "{error}");
        assert!(error.contains("Fix the file"), "{error}");
        for text in ["rust = 1\n", "rust = [1]\n", "[[rust]]\n"] {
            let error = set_defaults(text, &updates).unwrap_err().to_string();
            assert!(
                error.contains("`rust` in .arca/config.toml is not a table"),
                "{text}: {error}"
            );
        }
    }
}
