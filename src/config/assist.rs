//! Editor assists on `.arca/config.toml`: completion and hover, as plain
//! data the language server turns into LSP types (no `lsp-types` here).
//!
//! Both work on text that is mid-edit and not valid TOML (`profile = "`,
//! `features = ["`, `bin = `): a small tolerant scanner walks the text once,
//! tracking headers, keys, strings, comments and bracket nesting, and records
//! every key and value token with its absolute key path. Completion reads the
//! scanner's context at the cursor; hover looks up the token under it.

use std::ops::Range;

use super::scan::{Context, Partial, Scan, TokenKind, extend_word, floor_char_boundary};
use super::schema::{self, KeySpec, RUST_TABLE};
use crate::builder_image;
use crate::platform::Platform;
use crate::workspace::CrateFacts;

/// What a completion item completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    Key,
    Value,
    Table,
}

/// One completion item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    /// One line shown beside the label.
    pub detail: String,
    /// Markdown.
    pub documentation: String,
    /// Plain text to insert (no snippet syntax).
    pub insert_text: String,
    /// The same with a `$1` tab stop, for clients that support snippets.
    pub snippet: Option<String>,
    /// Byte range the insertion replaces (the partial word typed so far);
    /// `None` inserts at the cursor.
    pub replace_span: Option<Range<usize>>,
}

/// Hover content for the token under the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hover {
    /// Byte range of the hovered key or value.
    pub span: Range<usize>,
    pub markdown: String,
}

/// Completion items for the cursor at byte `offset` of `text`.
pub fn completions(text: &str, offset: usize, facts: Option<&CrateFacts>) -> Vec<Completion> {
    let offset = floor_char_boundary(text, offset);
    let scan = Scan::run(text, offset);
    let Some(context) = scan.context.clone() else {
        return Vec::new();
    };
    match context {
        Context::Header { partial } => header_completions(text, &scan, partial, offset),
        Context::Key { table, partial } => key_completions(text, &scan, &table, partial, offset),
        Context::Value {
            path,
            in_array,
            partial,
        } => value_completions(text, &scan, &path, in_array, partial, offset, facts),
    }
}

/// Hover for the key or value under byte `offset` of `text`.
pub fn hover(text: &str, offset: usize, facts: Option<&CrateFacts>) -> Option<Hover> {
    let offset = floor_char_boundary(text, offset);
    let scan = Scan::run(text, offset);
    let token = scan
        .tokens
        .iter()
        .find(|token| token.span.start <= offset && offset < token.span.end)
        .or_else(|| {
            scan.tokens
                .iter()
                .find(|token| token.span.end == offset && !token.span.is_empty())
        })?;
    let path: Vec<&str> = token.path.iter().map(String::as_str).collect();
    let markdown = match (&token.kind, path.as_slice()) {
        (TokenKind::Key | TokenKind::HeaderKey, [RUST_TABLE]) => schema::RUST_TABLE_DOC.to_owned(),
        (TokenKind::Key | TokenKind::HeaderKey, [RUST_TABLE, key]) => {
            key_hover(schema::key(key)?, facts)
        }
        (TokenKind::Value(value), [RUST_TABLE, key]) => {
            value_hover(schema::key(key)?, value.as_deref(), facts)
        }
        (TokenKind::Key | TokenKind::HeaderKey, [super::run::RUN_TABLE]) => {
            super::run::RUN_TABLE_DOC.to_owned()
        }
        (
            TokenKind::Key | TokenKind::HeaderKey | TokenKind::Value(_),
            [super::run::RUN_TABLE, key],
        ) => super::run::key(key)?.doc.to_owned(),
        _ => return None,
    };
    Some(Hover {
        span: token.span.clone(),
        markdown,
    })
}

fn key_hover(spec: &KeySpec, facts: Option<&CrateFacts>) -> String {
    let mut markdown = spec.doc.to_owned();
    if let Some(facts) = facts {
        let listed = match spec.name {
            "profile" => Some(format!("Profiles: {}", code_list(&facts.all_profiles()))),
            "features" => Some(if facts.features.is_empty() {
                format!("Crate `{}` declares no features.", facts.name)
            } else {
                let features: Vec<String> = facts.features.iter().cloned().collect();
                format!("Features of `{}`: {}", facts.name, code_list(&features))
            }),
            "bin" => Some(format!(
                "Binaries of `{}`: {}",
                facts.name,
                code_list(&facts.bins)
            )),
            _ => None,
        };
        if let Some(listed) = listed {
            markdown.push_str("\n\n");
            markdown.push_str(&listed);
        }
    }
    markdown
}

fn value_hover(spec: &KeySpec, value: Option<&str>, facts: Option<&CrateFacts>) -> String {
    let value = value.map(str::trim).unwrap_or_default();
    let detail = match spec.name {
        "base_image" if !value.is_empty() => {
            let builder = builder_image::builder_base_image(value);
            let tag = builder_image::builder_image_tag_for_runtime(value);
            if builder == value {
                format!(
                    "Runtime base `{value}`; the binary is built in the same image.\n\nBuilder image: `{tag}`"
                )
            } else {
                format!(
                    "Runtime base `{value}`; the binary is built in `{builder}` (the matching CUDA devel image).\n\nBuilder image: `{tag}`"
                )
            }
        }
        "profile" => match schema::built_in_profile(value) {
            Some(profile) => format!("Built-in profile `{}`: {}", profile.name, profile.doc),
            None if facts.is_some_and(|facts| facts.custom_profiles.contains(value)) => {
                format!(
                    "Custom profile `{value}`, declared as `[profile.{value}]` in the workspace Cargo.toml."
                )
            }
            None => format!("Profile `{value}`."),
        },
        "bin" => match facts {
            Some(facts) => format!("Binary target `{value}` of crate `{}`.", facts.name),
            None => format!("Binary target `{value}`."),
        },
        "features" => match facts {
            Some(facts) => format!("Feature `{value}` of crate `{}`.", facts.name),
            None => format!("Feature `{value}`."),
        },
        "platforms" if !value.is_empty() => match crate::platform::parse_list(&[value]) {
            Ok(platforms) => platforms
                .into_iter()
                .map(platform_doc)
                .collect::<Vec<_>>()
                .join("\n\n"),
            Err(error) => error.message,
        },
        _ => String::new(),
    };
    if detail.is_empty() {
        key_hover(spec, facts)
    } else {
        format!("{detail}\n\n---\n\n{}", key_hover(spec, facts))
    }
}

/// What building for `platform` takes, for completion and hover.
fn platform_doc(platform: Platform) -> String {
    let [gcc, libc] = platform.debian_cross_packages();
    let how = if platform == Platform::host() {
        "The platform of this machine: built without cross-compiling.".to_owned()
    } else {
        format!(
            "Cross-compiled in the builder: the Rust target and `{}` (Debian's `{gcc}` and `{libc}`) are added to it.",
            platform.gnu_compiler()
        )
    };
    format!(
        "Platform `{}` (OCI architecture `{}`{}): `cargo build --target {}`. {how}",
        platform.name(),
        platform.architecture(),
        platform
            .variant()
            .map_or_else(String::new, |variant| format!(", variant `{variant}`")),
        platform.rust_target()
    )
}

fn code_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the text already has a `rust` table in any form.
fn has_rust_table(scan: &Scan) -> bool {
    scan.tokens.iter().any(|token| {
        matches!(token.kind, TokenKind::Key | TokenKind::HeaderKey)
            && token.path.first().is_some_and(|first| first == RUST_TABLE)
    })
}

/// Keys already assigned directly in `table`.
fn present_keys<'s>(scan: &'s Scan, table: &[String]) -> Vec<&'s str> {
    scan.tokens
        .iter()
        .filter(|token| {
            matches!(token.kind, TokenKind::Key | TokenKind::HeaderKey)
                && token.path.len() == table.len() + 1
                && token.path.starts_with(table)
        })
        .filter_map(|token| token.path.last().map(String::as_str))
        .collect()
}

fn header_completions(
    text: &str,
    scan: &Scan,
    partial: Range<usize>,
    offset: usize,
) -> Vec<Completion> {
    let end = extend_word(text, offset);
    let typed = text[partial.clone()].trim();
    let mut items = Vec::new();
    if !has_table(scan, super::run::RUN_TABLE) || typed == super::run::RUN_TABLE {
        let closed = text[end..].trim_start().starts_with(']');
        items.push(Completion {
            label: super::run::RUN_TABLE.to_owned(),
            kind: CompletionKind::Table,
            detail: "How arca run starts the image".to_owned(),
            documentation: super::run::RUN_TABLE_DOC.to_owned(),
            insert_text: if closed {
                super::run::RUN_TABLE.to_owned()
            } else {
                format!("{}]", super::run::RUN_TABLE)
            },
            snippet: None,
            replace_span: Some(partial.start..end),
        });
    }
    if has_rust_table(scan) && !typed.eq(RUST_TABLE) {
        return items;
    }
    let closed = text[end..].trim_start().starts_with(']');
    let insert = if closed {
        RUST_TABLE.to_owned()
    } else {
        format!("{RUST_TABLE}]")
    };
    items.insert(
        0,
        Completion {
            label: RUST_TABLE.to_owned(),
            kind: CompletionKind::Table,
            detail: "Arca build settings".to_owned(),
            documentation: schema::RUST_TABLE_DOC.to_owned(),
            insert_text: insert,
            snippet: None,
            replace_span: Some(partial.start..end),
        },
    );
    items
}

fn has_table(scan: &Scan, name: &str) -> bool {
    scan.tokens.iter().any(|token| {
        matches!(token.kind, TokenKind::HeaderKey)
            && token.path.first().is_some_and(|first| first == name)
    })
}

/// Keys of `[run]` not yet present.
fn run_key_completions(
    scan: &Scan,
    table: &[String],
    replace: Range<usize>,
    editing: &str,
) -> Vec<Completion> {
    let present = present_keys(scan, table);
    super::run::RUN_KEYS
        .iter()
        .filter(|spec| !present.contains(&spec.name) || spec.name == editing)
        .map(|spec| Completion {
            label: spec.name.to_owned(),
            kind: CompletionKind::Key,
            detail: spec.summary.to_owned(),
            documentation: spec.doc.to_owned(),
            insert_text: spec.snippet.to_owned(),
            snippet: None,
            replace_span: Some(replace.clone()),
        })
        .collect()
}

fn key_completions(
    text: &str,
    scan: &Scan,
    table: &[String],
    partial: Range<usize>,
    offset: usize,
) -> Vec<Completion> {
    let end = extend_word(text, offset);
    let replace = Some(partial.start..end);
    if table.is_empty() {
        if has_rust_table(scan) {
            return Vec::new();
        }
        let template = format!(
            "[{RUST_TABLE}]\n{}\n{}\n{}\n",
            schema::PROFILE.example,
            schema::FEATURES.example,
            schema::BASE_IMAGE.example
        );
        return vec![
            Completion {
                label: format!("[{RUST_TABLE}]"),
                kind: CompletionKind::Table,
                detail: "Arca build settings".to_owned(),
                documentation: schema::RUST_TABLE_DOC.to_owned(),
                insert_text: format!("[{RUST_TABLE}]\n"),
                snippet: Some(format!("[{RUST_TABLE}]\n$0")),
                replace_span: replace.clone(),
            },
            Completion {
                label: format!("[{RUST_TABLE}] with every setting"),
                kind: CompletionKind::Table,
                detail: "profile, features and base_image".to_owned(),
                documentation: format!("{}\n\n```toml\n{template}```", schema::RUST_TABLE_DOC),
                insert_text: template,
                snippet: None,
                replace_span: replace,
            },
        ];
    }
    if table == [super::run::RUN_TABLE] {
        return run_key_completions(scan, table, partial.start..end, &text[partial.start..end]);
    }
    if table != [RUST_TABLE] {
        return Vec::new();
    }
    let present = present_keys(scan, table);
    // Editing the name of an existing `key = value`: insert the name only.
    let line_rest = &text[end..text[end..]
        .find('\n')
        .map_or(text.len(), |index| end + index)];
    let has_equals = line_rest.trim_start().starts_with('=');
    // The key under the cursor counts as absent: it is being rewritten.
    let editing = &text[partial.start..end];
    schema::RUST_KEYS
        .iter()
        .filter(|spec| !present.contains(&spec.name) || spec.name == editing)
        .map(|spec| {
            let (insert_text, snippet) = if has_equals {
                (spec.name.to_owned(), None)
            } else {
                match spec.kind {
                    schema::ValueKind::String => (
                        format!("{} = ", spec.name),
                        Some(format!("{} = \"$1\"", spec.name)),
                    ),
                    schema::ValueKind::StringArray => (
                        format!("{} = ", spec.name),
                        Some(format!("{} = [$1]", spec.name)),
                    ),
                    schema::ValueKind::Bool => (
                        format!("{} = ", spec.name),
                        Some(format!("{} = ${{1|true,false|}}", spec.name)),
                    ),
                    schema::ValueKind::StringTable => (
                        format!("{} = ", spec.name),
                        Some(format!("{} = {{ $1 }}", spec.name)),
                    ),
                }
            };
            Completion {
                label: spec.name.to_owned(),
                kind: CompletionKind::Key,
                detail: spec.summary.to_owned(),
                documentation: spec.doc.to_owned(),
                insert_text,
                snippet,
                replace_span: Some(partial.start..end),
            }
        })
        .collect()
}

fn value_completions(
    text: &str,
    scan: &Scan,
    path: &[String],
    in_array: bool,
    partial: Partial,
    offset: usize,
    facts: Option<&CrateFacts>,
) -> Vec<Completion> {
    let [table, key] = path else {
        return Vec::new();
    };
    if table == super::run::RUN_TABLE && key == "gpus" && !in_array {
        return vec![Completion {
            label: "\"all\"".to_owned(),
            kind: CompletionKind::Value,
            detail: "every GPU of the engine's host".to_owned(),
            documentation: super::run::key("gpus")
                .map(|spec| spec.doc.to_owned())
                .unwrap_or_default(),
            insert_text: "\"all\"".to_owned(),
            snippet: None,
            replace_span: None,
        }];
    }
    if table != RUST_TABLE {
        return Vec::new();
    }
    let Some(spec) = schema::key(key) else {
        return Vec::new();
    };
    // (label, detail, documentation)
    let choices: Vec<(String, String, String)> = match spec.name {
        "profile" if !in_array => {
            let mut choices: Vec<(String, String, String)> = schema::BUILT_IN_PROFILES
                .iter()
                .map(|profile| {
                    (
                        profile.name.to_owned(),
                        "built-in profile".to_owned(),
                        profile.doc.to_owned(),
                    )
                })
                .collect();
            if let Some(facts) = facts {
                choices.extend(facts.custom_profiles.iter().map(|name| {
                    (
                        name.clone(),
                        "custom profile".to_owned(),
                        format!("`[profile.{name}]` of the workspace Cargo.toml."),
                    )
                }));
            }
            choices
        }
        "bin" if !in_array => facts
            .map(|facts| {
                facts
                    .bins
                    .iter()
                    .map(|bin| {
                        (
                            bin.clone(),
                            format!("binary of {}", facts.name),
                            format!("Binary target `{bin}` of crate `{}`.", facts.name),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "push_to" if !in_array => {
            let name = facts.map_or_else(|| "demo".to_owned(), |f| f.name.to_ascii_lowercase());
            [
                (
                    format!("localhost:5000/{name}"),
                    "registry on this machine",
                    "A registry on loopback (plain HTTP is allowed there).",
                ),
                (
                    format!("ghcr.io/OWNER/{name}"),
                    "GitHub Container Registry",
                    "Replace OWNER; log in with `docker login ghcr.io`.",
                ),
                (
                    format!("docker.io/OWNER/{name}"),
                    "Docker Hub",
                    "Replace OWNER; log in with `docker login`.",
                ),
            ]
            .into_iter()
            .map(|(value, detail, doc)| (value, detail.to_owned(), doc.to_owned()))
            .collect()
        }
        "base_image" if !in_array => schema::well_known_images()
            .into_iter()
            .map(|image| {
                let builder = builder_image::builder_base_image(&image.reference);
                let detail = if builder == image.reference {
                    "base image".to_owned()
                } else {
                    format!("builds in {builder}")
                };
                (image.reference, detail, image.doc)
            })
            .collect(),
        "features" if in_array => {
            let listed: Vec<&str> = scan
                .tokens
                .iter()
                .filter(|token| token.path == path && !token.span.contains(&offset))
                .filter_map(|token| match &token.kind {
                    TokenKind::Value(Some(value)) => Some(value.as_str()),
                    _ => None,
                })
                .collect();
            facts
                .map(|facts| {
                    facts
                        .features
                        .iter()
                        .filter(|feature| !listed.contains(&feature.as_str()))
                        .map(|feature| {
                            (
                                feature.clone(),
                                format!("feature of {}", facts.name),
                                format!("Feature `{feature}` declared by crate `{}`.", facts.name),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
        "platforms" if in_array => {
            // The platforms not listed yet (by meaning: `linux/arm64/v8`
            // lists `linux/arm64`), besides the entry being edited.
            let listed: Vec<Platform> = scan
                .tokens
                .iter()
                .filter(|token| token.path == path && !token.span.contains(&offset))
                .filter_map(|token| match &token.kind {
                    TokenKind::Value(Some(value)) => crate::platform::parse_list(&[value]).ok(),
                    _ => None,
                })
                .flatten()
                .collect();
            Platform::all()
                .filter(|platform| !listed.contains(platform))
                .map(|platform| {
                    (
                        platform.name().to_owned(),
                        platform.rust_target().to_owned(),
                        platform_doc(platform),
                    )
                })
                .collect()
        }
        "platforms" => {
            // `platforms = ` before the bracket: the usual pair.
            let pair = "[\"linux/amd64\", \"linux/arm64\"]";
            return vec![Completion {
                label: pair.to_owned(),
                kind: CompletionKind::Value,
                detail: "an image index for amd64 and arm64".to_owned(),
                documentation: spec.doc.to_owned(),
                insert_text: pair.to_owned(),
                snippet: None,
                replace_span: Some(partial.span(text, offset)),
            }];
        }
        "features" => {
            // `features = ` before the bracket: offer the empty set.
            return vec![Completion {
                label: "[]".to_owned(),
                kind: CompletionKind::Value,
                detail: "no features".to_owned(),
                documentation: spec.doc.to_owned(),
                insert_text: "[]".to_owned(),
                snippet: Some("[$1]".to_owned()),
                replace_span: Some(partial.span(text, offset)),
            }];
        }
        _ => Vec::new(),
    };
    let replace = partial.span(text, offset);
    choices
        .into_iter()
        .map(|(label, detail, documentation)| Completion {
            insert_text: partial.insert_text(&label),
            label,
            kind: CompletionKind::Value,
            detail,
            documentation,
            snippet: None,
            replace_span: Some(replace.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> CrateFacts {
        crate::workspace::test_facts(&["client", "server"], &["cli", "http"])
    }

    /// Splits `text` at the `|` cursor marker.
    fn at_cursor(marked: &str) -> (String, usize) {
        let offset = marked.find('|').expect("a | cursor marker");
        (marked.replacen('|', "", 1), offset)
    }

    fn labels(marked: &str) -> Vec<String> {
        let (text, offset) = at_cursor(marked);
        completions(&text, offset, Some(&facts()))
            .into_iter()
            .map(|completion| completion.label)
            .collect()
    }

    /// Applies the completion labelled `label`.
    fn complete(marked: &str, label: &str) -> String {
        let (text, offset) = at_cursor(marked);
        let items = completions(&text, offset, Some(&facts()));
        let item = items
            .iter()
            .find(|item| item.label == label)
            .unwrap_or_else(|| panic!("no {label:?} in {items:?} for {marked:?}"));
        let span = item.replace_span.clone().unwrap_or(offset..offset);
        let mut out = text.clone();
        out.replace_range(span, &item.insert_text);
        out
    }

    #[test]
    fn completion_offers_what_fits_the_cursor() {
        let rest = vec![
            "features",
            "bin",
            "base_image",
            "packages",
            "toolchain",
            "env",
            "proxy",
            "init",
            "platforms",
            "push_to",
        ];
        let all_keys = vec![
            "profile",
            "features",
            "bin",
            "base_image",
            "packages",
            "toolchain",
            "env",
            "proxy",
            "init",
            "platforms",
            "push_to",
        ];
        let profiles = vec!["dev", "release", "test", "bench", "release-lto"];
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("|", vec!["[rust]", "[rust] with every setting"]),
            ("# notes\n|", vec!["[rust]", "[rust] with every setting"]),
            ("[rust]\n|", all_keys.clone()),
            ("[rust]\n|\n[other]\n", all_keys.clone()),
            ("[rust]\nprofile = \"release\"\n|", rest.clone()),
            ("[rust]\npro|", all_keys.clone()),
            ("[rust]\n  fe|atures = []", all_keys.clone()),
            ("[rust]\nprofile = \"|", profiles.clone()),
            ("[rust]\nprofile = \"re|lease\"\n", profiles.clone()),
            ("[rust]\nprofile = |", profiles.clone()),
            ("[rust]\nprofile = '|'", profiles.clone()),
            ("[rust]\nbin = |", vec!["client", "server"]),
            ("[rust]\nbin = \"s|", vec!["client", "server"]),
            ("[rust]\nfeatures = [\"cli\", \"|", vec!["http"]),
            ("[rust]\nfeatures = [\"|\"]", vec!["cli", "http"]),
            ("[rust]\nfeatures = [\n  \"cli\",\n  |\n]\n", vec!["http"]),
            ("[rust]\nfeatures = |", vec!["[]"]),
            ("[ru|", vec!["rust", "run"]),
            ("[|]", vec!["rust", "run"]),
            ("rust.|", all_keys.clone()),
            ("rust.profile = \"dev\"\nrust.|", rest.clone()),
            ("rust.bin = \"|\"", vec!["client", "server"]),
            ("rust = { profile = \"dev\", |", rest.clone()),
            ("rust = { bin = \"|\" }", vec!["client", "server"]),
            ("# comment |", vec![]),
            ("[rust]\nprofile = \"release\" # |", vec![]),
            ("[rust]\nprofile = \"release\" |", vec![]),
            ("[other]\n|", vec![]),
            ("[rust]\nprofile = \"dev\"\n[other]\nprofile = \"|", vec![]),
            ("[rust]\nunknown = \"|", vec![]),
        ];
        let mut failures = Vec::new();
        for (marked, expected) in cases {
            let found = labels(marked);
            if found != expected {
                failures.push(format!(
                    "{marked:?}\n  found    {found:?}\n  expected {expected:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let images = labels("[rust]\nbase_image = \"nvidia/|\"");
        assert!(
            images.contains(&"nvidia/cuda:12.8.1-runtime-ubuntu24.04".to_owned()),
            "{images:?}"
        );
        assert!(
            images.contains(&"debian:bookworm-slim".to_owned()),
            "{images:?}"
        );
    }

    #[test]
    fn applying_a_completion_gives_the_expected_text() {
        let cases: Vec<(&str, &str, &str)> = vec![
            ("[rust]\npro|", "profile", "[rust]\nprofile = "),
            ("[rust]\n|", "features", "[rust]\nfeatures = "),
            (
                "[rust]\nprofle| = \"dev\"",
                "profile",
                "[rust]\nprofile = \"dev\"",
            ),
            (
                "[rust]\nprofile = \"|",
                "release",
                "[rust]\nprofile = \"release\"",
            ),
            (
                "[rust]\nprofile = \"re|lease\"\n",
                "release-lto",
                "[rust]\nprofile = \"release-lto\"\n",
            ),
            ("[rust]\nprofile = 're|'", "dev", "[rust]\nprofile = 'dev'"),
            (
                "[rust]\nprofile = rel|",
                "release",
                "[rust]\nprofile = \"release\"",
            ),
            ("[rust]\nbin = |", "server", "[rust]\nbin = \"server\""),
            (
                "[rust]\nfeatures = [\"cli\", \"h|",
                "http",
                "[rust]\nfeatures = [\"cli\", \"http\"",
            ),
            (
                "[rust]\nfeatures = [\"cli\", |]",
                "http",
                "[rust]\nfeatures = [\"cli\", \"http\"]",
            ),
            ("[rust]\nfeatures = |", "[]", "[rust]\nfeatures = []"),
            (
                "[rust]\nbase_image = \"nvidia/|\"",
                "nvidia/cuda:12.8.1-runtime-ubuntu24.04",
                "[rust]\nbase_image = \"nvidia/cuda:12.8.1-runtime-ubuntu24.04\"",
            ),
            ("[ru|", "rust", "[rust]"),
            ("[ru|]\n", "rust", "[rust]\n"),
            ("|", "[rust]", "[rust]\n"),
            ("rust.b|", "bin", "rust.bin = "),
        ];
        for (marked, label, expected) in cases {
            assert_eq!(
                complete(marked, label),
                expected,
                "{marked:?} with {label:?}"
            );
        }
    }

    #[test]
    fn key_items_carry_docs_and_snippets() {
        let (text, offset) = at_cursor("[rust]\n|");
        let items = completions(&text, offset, None);
        let profile = items.iter().find(|item| item.label == "profile").unwrap();
        assert_eq!(profile.kind, CompletionKind::Key);
        assert_eq!(profile.snippet.as_deref(), Some("profile = \"$1\""));
        assert!(profile.documentation.contains("cargo build --profile"));
        let features = items.iter().find(|item| item.label == "features").unwrap();
        assert_eq!(features.snippet.as_deref(), Some("features = [$1]"));
        // Without facts there are no binaries or features to offer, but
        // built-in profiles and images are still known.
        let (text, offset) = at_cursor("[rust]\nbin = \"|\"");
        assert!(completions(&text, offset, None).is_empty());
        let (text, offset) = at_cursor("[rust]\nprofile = \"|\"");
        assert_eq!(completions(&text, offset, None).len(), 4);
        let (text, offset) = at_cursor("[rust]\nbase_image = \"nvidia/cuda:12.8.1-r|\"");
        let cuda = completions(&text, offset, None)
            .into_iter()
            .find(|item| item.label == "nvidia/cuda:12.8.1-runtime-ubuntu24.04")
            .unwrap();
        assert_eq!(
            cuda.detail,
            "builds in nvidia/cuda:12.8.1-devel-ubuntu24.04"
        );
        assert_eq!(cuda.kind, CompletionKind::Value);
    }

    fn hover_at(marked: &str) -> Option<(String, String)> {
        let (text, offset) = at_cursor(marked);
        hover(&text, offset, Some(&facts()))
            .map(|hover| (text[hover.span].to_owned(), hover.markdown))
    }

    #[test]
    fn hover_documents_keys_and_values() {
        let cases: Vec<(&str, &str, &str)> = vec![
            ("[ru|st]\n", "rust", "**[rust]**"),
            ("[rust]\npro|file = \"release\"", "profile", "**profile**"),
            (
                "[rust]\nprofile| = \"release\"",
                "profile",
                "Profiles: `dev`, `release`, `test`, `bench`, `release-lto`",
            ),
            (
                "[rust]\nprofile = \"rel|ease\"",
                "\"release\"",
                "Built-in profile `release`",
            ),
            (
                "[rust]\nprofile = \"release-l|to\"",
                "\"release-lto\"",
                "Custom profile `release-lto`",
            ),
            (
                "[rust]\nfeatures = [\"cli\", \"ht|tp\"]",
                "\"http\"",
                "Feature `http` of crate `demo`",
            ),
            (
                "[rust]\nfeat|ures = []",
                "features",
                "Features of `demo`: `cli`, `http`",
            ),
            (
                "[rust]\nb|in = \"x\"",
                "bin",
                "Binaries of `demo`: `client`, `server`",
            ),
            (
                "rust.bin = \"ser|ver\"",
                "\"server\"",
                "Binary target `server` of crate `demo`",
            ),
            (
                "rust = { base|_image = \"busybox\" }",
                "base_image",
                "**base_image**",
            ),
            (
                "[rust]\nbase_image = \"nvidia/cuda:12.8.1-runt|ime-ubuntu24.04\"\nprofile = ",
                "\"nvidia/cuda:12.8.1-runtime-ubuntu24.04\"",
                "built in `nvidia/cuda:12.8.1-devel-ubuntu24.04`",
            ),
        ];
        for (marked, spanned, contains) in cases {
            let (found_span, markdown) =
                hover_at(marked).unwrap_or_else(|| panic!("no hover for {marked:?}"));
            assert_eq!(found_span, spanned, "{marked:?}");
            assert!(markdown.contains(contains), "{marked:?}: {markdown}");
        }
        let (_, markdown) =
            hover_at("[rust]\nbase_image = \"nvidia/cuda:12.8.1-runtime-ubuntu24.04|\"").unwrap();
        let tag =
            builder_image::builder_image_tag_for_runtime("nvidia/cuda:12.8.1-runtime-ubuntu24.04");
        assert!(markdown.contains(&tag), "{markdown}");
        let (_, markdown) = hover_at("[rust]\nbase_image = 'debian:bookworm-sl|im'").unwrap();
        assert!(markdown.contains("built in the same image"), "{markdown}");
        for nothing in [
            "[rust]\nunknown| = 1",
            "[oth|er]",
            "# comm|ent",
            "[rust]\nprofile = \"dev\" |",
        ] {
            assert_eq!(hover_at(nothing), None, "{nothing:?}");
        }
    }

    #[test]
    fn any_offset_of_any_text_is_safe() {
        let texts = [
            "# Arca\n[rust] # table\nprofile = \"réléase\" # c\nfeatures = [\"cli\", 'htp', \"\"\"x\"\"\", '''y''']\nbin = \"s\\\"rv\"\nbase_image = \"nvidia/cuda:12.8.1-runtime-ubuntu24.04\"\n[[extra]]\nx = { y = [1, { z = 2 }], \"日本\" = 3 }\n",
            "[rust]\r\nprofile = \"dev\r\nfeatures = [\"a\",\r\n]\r\n",
            "rust = { profile = \"x\", features = [\"a\" , ",
            "[\"rust\".'a b']\n\"k\".l = 1\n]]]}}}===\"\"\"'''",
            "é = \"日本\"\n[日本]\n= \"\"\n[\n\"",
            "a = \"\\",
            "a = '''x\\",
        ];
        for text in texts {
            for offset in 0..=text.len() + 1 {
                for completion in completions(text, offset, Some(&facts())) {
                    if let Some(span) = completion.replace_span {
                        assert!(
                            span.start <= span.end && span.end <= text.len(),
                            "{text:?} {offset}"
                        );
                        assert!(
                            text.is_char_boundary(span.start) && text.is_char_boundary(span.end)
                        );
                    }
                }
                if let Some(hover) = hover(text, offset, Some(&facts())) {
                    assert!(
                        text.is_char_boundary(hover.span.start)
                            && text.is_char_boundary(hover.span.end)
                    );
                }
            }
        }
    }

    #[test]
    fn a_ten_megabyte_config_is_scanned_quickly() {
        let mut text: String = (0..400_000)
            .map(|index| format!("key{index} = \"{index}\"\n"))
            .collect();
        text.push_str("# ");
        text.push_str(&"x".repeat(10_000_000_usize.saturating_sub(text.len())));
        text.push_str("\n[rust]\nfeatures = [\"cli\", \"\"]\n");
        assert!(text.len() >= 10_000_000);
        let offset = text.len() - 3;
        let started = std::time::Instant::now();
        let items = completions(&text, offset, Some(&facts()));
        let hovered = hover(&text, offset - 3, Some(&facts()));
        let elapsed = started.elapsed();
        assert_eq!(
            items
                .iter()
                .map(|item| item.label.as_str())
                .collect::<Vec<_>>(),
            ["http"]
        );
        assert!(hovered.is_some());
        eprintln!("completion and hover on {} bytes: {elapsed:?}", text.len());
        assert!(elapsed < std::time::Duration::from_secs(3), "{elapsed:?}");
    }
}

#[cfg(test)]
mod platforms_tests {
    use super::*;

    fn at(marked: &str) -> (String, usize) {
        let offset = marked.find('|').expect("a | cursor marker");
        (marked.replacen('|', "", 1), offset)
    }

    fn items(marked: &str) -> Vec<Completion> {
        let (text, offset) = at(marked);
        completions(&text, offset, None)
    }

    fn labels(marked: &str) -> Vec<String> {
        items(marked).into_iter().map(|item| item.label).collect()
    }

    #[test]
    fn the_key_completes_from_the_schema_with_an_array_snippet() {
        let found = items("[rust]\nprofile = \"release\"\nplat|");
        let key = found
            .iter()
            .find(|item| item.label == "platforms")
            .expect("platforms offered");
        assert_eq!(key.kind, CompletionKind::Key);
        assert_eq!(key.detail, schema::PLATFORMS.summary);
        assert_eq!(key.documentation, schema::PLATFORMS.doc);
        assert_eq!(key.snippet.as_deref(), Some("platforms = [$1]"));
        // Once set, it is not offered again.
        assert!(!labels("[rust]\nplatforms = []\n|").contains(&"platforms".to_owned()));
    }

    #[test]
    fn entries_complete_with_every_platform_not_yet_listed() {
        let names: Vec<String> = Platform::names().into_iter().map(str::to_owned).collect();
        assert_eq!(labels("[rust]\nplatforms = [\"|\"]"), names);
        assert_eq!(labels("[rust]\nplatforms = [|]"), names);
        let rest: Vec<String> = names
            .iter()
            .filter(|name| *name != "linux/amd64" && *name != "linux/arm64")
            .cloned()
            .collect();
        // Listed by another spelling still counts as listed.
        assert_eq!(
            labels("[rust]\nplatforms = [\"linux/x86_64\", \"linux/arm64/v8\", \"|"),
            rest
        );
        assert_eq!(
            labels("[rust]\nplatforms = [\n  \"linux/amd64,linux/arm64\",\n  |\n]\n"),
            rest
        );
        // The entry being edited does not hide its own platform.
        assert!(
            labels("[rust]\nplatforms = [\"linux/arm|64\"]").contains(&"linux/arm64".to_owned())
        );
        let arm = items("[rust]\nplatforms = [\"|\"]")
            .into_iter()
            .find(|item| item.label == "linux/arm/v7")
            .unwrap();
        assert_eq!(arm.kind, CompletionKind::Value);
        assert_eq!(arm.detail, "armv7-unknown-linux-gnueabihf");
        assert!(
            arm.documentation.contains("variant `v7`"),
            "{}",
            arm.documentation
        );
        let host = Platform::host();
        let native = items("[rust]\nplatforms = [\"|\"]")
            .into_iter()
            .find(|item| item.label == host.name())
            .unwrap();
        assert!(
            native.documentation.contains("without cross-compiling"),
            "{}",
            native.documentation
        );
    }

    #[test]
    fn applying_an_entry_completion_writes_the_quoted_name() {
        for (marked, label, expected) in [
            (
                "[rust]\nplatforms = [\"linux/amd64\", \"linux/ar|",
                "linux/arm64",
                "[rust]\nplatforms = [\"linux/amd64\", \"linux/arm64\"",
            ),
            (
                "[rust]\nplatforms = [|]",
                "linux/s390x",
                "[rust]\nplatforms = [\"linux/s390x\"]",
            ),
            (
                "[rust]\nplatforms = |",
                "[\"linux/amd64\", \"linux/arm64\"]",
                "[rust]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]",
            ),
        ] {
            let (text, offset) = at(marked);
            let found = completions(&text, offset, None);
            let item = found
                .iter()
                .find(|item| item.label == label)
                .unwrap_or_else(|| panic!("no {label} in {found:?}"));
            let mut out = text.clone();
            out.replace_range(
                item.replace_span.clone().unwrap_or(offset..offset),
                &item.insert_text,
            );
            assert_eq!(out, expected, "{marked:?}");
        }
        let done = "[rust]\nprofile = \"dev\"\nfeatures = []\nbase_image = \"busybox\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n";
        assert!(crate::config::checker::check(done, None).is_empty());
    }

    #[test]
    fn hover_shows_the_key_doc_and_what_an_entry_builds_with() {
        let text = "[rust]\nplatforms = [\"linux/arm64\", \"linux/amr64\"]\n";
        let key = hover(text, text.find("platforms").unwrap() + 3, None).expect("key hover");
        assert_eq!(&text[key.span.clone()], "platforms");
        assert_eq!(key.markdown, schema::PLATFORMS.doc);
        let arm = hover(text, text.find("arm64").unwrap(), None).expect("value hover");
        assert_eq!(&text[arm.span.clone()], "\"linux/arm64\"");
        assert!(
            arm.markdown
                .contains("`cargo build --target aarch64-unknown-linux-gnu`"),
            "{}",
            arm.markdown
        );
        assert!(
            arm.markdown.ends_with(schema::PLATFORMS.doc),
            "{}",
            arm.markdown
        );
        let typo = hover(text, text.find("amr64").unwrap(), None).expect("value hover");
        assert!(
            typo.markdown.contains("Did you mean `linux/arm64`?"),
            "{}",
            typo.markdown
        );
    }
}

#[cfg(test)]
mod push_to_tests {
    use super::*;

    #[test]
    fn push_to_has_completion_and_hover() {
        let facts = crate::workspace::test_facts(&["server"], &[]);
        let text = "[rust]\npush_to = \"\"\n";
        let offset = text.find("\"\"").unwrap() + 1;
        let labels: Vec<String> = completions(text, offset, Some(&facts))
            .into_iter()
            .map(|completion| completion.label)
            .collect();
        assert!(
            labels
                .iter()
                .any(|label| label.starts_with("localhost:5000/")),
            "{labels:?}"
        );
        let hover = hover(text, text.find("push_to").unwrap() + 2, Some(&facts)).unwrap();
        assert!(hover.markdown.contains("arca push"), "{}", hover.markdown);
    }
}
