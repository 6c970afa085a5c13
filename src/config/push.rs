//! The `[push]` table of `.arca/config.toml`: what `arca push` (and the
//! editors' Push Image) sends besides the image. One key, `attestations`:
//! `true`, the default, attaches the image's SBOM and provenance as OCI
//! referrers; `false` pushes the image alone (as `--no-attest` does).
//!
//! The checks (located findings, like [`super::checker`]) and the parsed
//! [`PushConfig`]. Pure: no IO.

use toml_edit::{Document, Item, Key};

use super::finding::{Code, Finding, Severity, invalid_type, span_or_key};

/// The table's name.
pub const PUSH_TABLE: &str = "push";

/// The parsed `[push]` table (defaults when absent, not TOML or invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushConfig {
    /// `attestations = true`: attach the SBOM and provenance.
    pub attestations: bool,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self { attestations: true }
    }
}

/// Reads the `[push]` table of a config text.
pub fn parse(text: &str) -> PushConfig {
    let Ok(document) = text.parse::<Document<String>>() else {
        return PushConfig::default();
    };
    let attestations = document
        .get(PUSH_TABLE)
        .and_then(Item::as_table_like)
        .and_then(|table| table.get("attestations"))
        .and_then(Item::as_bool);
    PushConfig {
        attestations: attestations.unwrap_or(true),
    }
}

/// Findings for the `[push]` item `item` (whose key is `key`) of `text`.
pub fn check(text: &str, key: &Key, item: &Item) -> Vec<Finding> {
    let Some(table) = item.as_table_like() else {
        return vec![invalid_type(
            span_or_key(item.span(), key, text),
            "`push` must be a table. Write a `[push]` header and put `attestations = false` below it."
                .to_owned(),
        )];
    };
    let mut findings = Vec::new();
    for (name, value) in table.iter() {
        let Some((key, _)) = table.get_key_value(name) else {
            continue;
        };
        if name != "attestations" {
            findings.push(Finding {
                code: Code::UnknownKey,
                severity: Severity::Warning,
                span: span_or_key(key.span(), key, text),
                message: format!(
                    "Unknown key `{}` in [push]; Arca ignores it. The key is attestations.",
                    crate::paths::terminal_safe(name)
                ),
                fixes: Vec::new(),
            });
            continue;
        }
        if value.as_bool().is_none() {
            findings.push(invalid_type(
                span_or_key(value.span(), key, text),
                "`attestations` must be true (attach the SBOM and provenance when pushing) or false."
                    .to_owned(),
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(text: &str) -> Vec<Finding> {
        let document = text.parse::<Document<String>>().unwrap();
        let (key, item) = document.get_key_value(PUSH_TABLE).unwrap();
        check(text, key, item)
    }

    #[test]
    fn attestations_default_on_and_only_a_boolean_turns_them_off() {
        assert!(parse("").attestations);
        assert!(parse("[push]\n").attestations);
        assert!(!parse("[push]\nattestations = false\n").attestations);
        assert!(parse("[push]\nattestations = \"no\"\n").attestations);
        assert!(findings("[push]\nattestations = false\n").is_empty());
        let wrong = findings("[push]\nattestations = \"no\"\n");
        assert_eq!(wrong.len(), 1);
        assert_eq!(wrong[0].severity, Severity::Error);
        let text = "[push]\nattestation = false\n";
        let unknown = findings(text);
        assert_eq!(unknown[0].code, Code::UnknownKey);
        assert_eq!(&text[unknown[0].span.clone()], "attestation");
        assert_eq!(findings("push = 3\n")[0].code, Code::InvalidType);
    }
}
