//! The `[live]` table of `.arca/config.toml`: what a live run
//! (`arca run --watch`, the editors' Run Image (Live)) does with the image
//! when it ends. One key, `image`: `"on-exit"` records the image of the
//! binary the container ran (cargo finds the live build fresh, so only the
//! image is assembled); `"never"`, the default, leaves that to a build.
//!
//! The checks (located findings, like [`super::checker`]) and the parsed
//! [`LiveConfig`]. Pure: no IO.

use toml_edit::{Document, Item, Key};

use super::finding::{Code, Finding, Severity, invalid_type, span_or_key};

/// The table's name.
pub const LIVE_TABLE: &str = "live";
/// The values of `image`.
pub const IMAGE_VALUES: [&str; 2] = ["on-exit", "never"];

/// The parsed `[live]` table (defaults when absent, not TOML or invalid).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveConfig {
    /// `image = "on-exit"`.
    pub image_on_exit: bool,
}

/// Reads the `[live]` table of a config text.
pub fn parse(text: &str) -> LiveConfig {
    let Ok(document) = text.parse::<Document<String>>() else {
        return LiveConfig::default();
    };
    let image = document
        .get(LIVE_TABLE)
        .and_then(Item::as_table_like)
        .and_then(|table| table.get("image"))
        .and_then(Item::as_str);
    LiveConfig {
        image_on_exit: image == Some("on-exit"),
    }
}

/// Findings for the `[live]` item `item` (whose key is `key`) of `text`.
pub fn check(text: &str, key: &Key, item: &Item) -> Vec<Finding> {
    let Some(table) = item.as_table_like() else {
        return vec![invalid_type(
            span_or_key(item.span(), key, text),
            "`live` must be a table. Write a `[live]` header and put `image = \"on-exit\"` below it."
                .to_owned(),
        )];
    };
    let mut findings = Vec::new();
    for (name, value) in table.iter() {
        let Some((key, _)) = table.get_key_value(name) else {
            continue;
        };
        if name != "image" {
            findings.push(Finding {
                code: Code::UnknownKey,
                severity: Severity::Warning,
                span: span_or_key(key.span(), key, text),
                message: format!(
                    "Unknown key `{}` in [live]; Arca ignores it. The key is image.",
                    name.escape_debug()
                ),
                fixes: Vec::new(),
            });
            continue;
        }
        if !value
            .as_str()
            .is_some_and(|image| IMAGE_VALUES.contains(&image))
        {
            findings.push(invalid_type(
                span_or_key(value.span(), key, text),
                "`image` must be \"on-exit\" (record the image when a live run ends) or \"never\"."
                    .to_owned(),
            ));
        }
    }
    findings
}
