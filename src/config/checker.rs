//! The config checker: `.arca/config.toml` text (plus, when known, the
//! crate's facts) in, located findings out. Pure: no IO, no panics, fast on
//! any input.
//!
//! Layered like taplo: **syntax** first (an unparsable file gets one
//! `toml-syntax` finding at the parser's span and nothing else), then
//! **structure** (unknown keys and tables, wrong types), then **values**
//! (empty values, profiles, features, binaries, image references, builder
//! settings, platforms, missing settings, the CUDA builder note). Checks
//! that need the crate's Cargo facts (custom profiles, features, binaries)
//! run only when facts are given.
//!
//! Spans come from `toml_edit`'s parsed [`Document`], so dotted keys
//! (`rust.profile = "x"`) and inline tables (`rust = { profile = "x" }`) are
//! located as precisely as a `[rust]` table.

use std::collections::HashSet;
use std::ops::Range;

use toml_edit::{Document, Item, Key, TableLike, Value};

use super::finding::{Code, Finding, Fix, Severity, TextEdit};
use super::image_ref;
use super::schema::{self, KeySpec, RUST_TABLE, ValueKind};
use super::suggest::{nearest, ranked};
use crate::builder_image;
use crate::platform::Platform;
use crate::workspace::{BUILT_IN_PROFILES, CrateFacts};

/// At most this many findings are reported: a pathological file (a million
/// unknown keys) must not flood an editor.
pub const MAX_FINDINGS: usize = 500;
/// Longest binary target or profile name there can be (a file name).
const MAX_NAME_LEN: usize = 255;
/// Values longer than this are shortened in messages.
const MAX_SHOWN_VALUE: usize = 80;
/// Lists longer than this are shortened in messages.
const MAX_LISTED: usize = 20;
/// At most this many "use X instead" fixes per finding.
const MAX_FIXES: usize = 5;

/// The likely meant names, at most [`MAX_FIXES`].
fn likely_choices<'c>(wrong: &str, candidates: impl IntoIterator<Item = &'c str>) -> Vec<&'c str> {
    super::suggest::likely_choices(wrong, candidates, MAX_FIXES)
}

/// Checks a config text. `facts` enables the checks that need the crate's
/// Cargo facts; without them only what the text alone proves is reported.
/// Findings are ordered by position.
pub fn check(text: &str, facts: Option<&CrateFacts>) -> Vec<Finding> {
    let document = match Document::parse(text) {
        Ok(document) => document,
        Err(error) => return vec![syntax_finding(text, &error)],
    };
    let mut checker = Checker {
        text,
        facts,
        rust: RustForm::of(document.as_table(), text),
        newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
        findings: Vec::new(),
    };
    checker.check_root(document.as_table());
    let mut findings = checker.findings;
    findings.sort_by_key(|finding| (finding.span.start, finding.span.end));
    findings
}

/// The `toml-syntax` finding for a parse error.
fn syntax_finding(text: &str, error: &toml_edit::TomlError) -> Finding {
    let span = error
        .span()
        .map_or_else(|| first_token(text), |span| widen_empty(text, span));
    let message = error.message().trim().trim_end_matches('.');
    let spanned = &text[span.clone()];
    let mut fixes = Vec::new();
    let detail = if message.starts_with("duplicate key") {
        format!("`{}` is defined twice (duplicate key)", shown(spanned))
    } else if message.contains("must be quoted") && is_bare_word(spanned) {
        let quoted = toml_edit::Value::from(spanned).to_string();
        let quoted = quoted.trim();
        fixes.push(Fix {
            title: format!("Quote it: {quoted}"),
            edits: vec![TextEdit {
                span: span.clone(),
                new_text: quoted.to_owned(),
            }],
        });
        format!("string values must be quoted: write {quoted}")
    } else {
        message.to_owned()
    };
    Finding {
        code: Code::TomlSyntax,
        severity: Severity::Error,
        span,
        message: format!(
            "Invalid TOML: {detail}. Fix the syntax; other checks run once the file parses."
        ),
        fixes,
    }
}

/// A word a user may have meant as a string (`release`, `ubuntu:24.04`).
fn is_bare_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_SHOWN_VALUE
        && text
            .chars()
            .all(|ch| ch.is_alphanumeric() || matches!(ch, '-' | '_' | '.' | ':' | '/' | '@'))
}

/// Where the `[rust]` table's settings live, which decides both the anchor of
/// table-level findings and how a quick fix inserts a key.
enum RustForm<'a> {
    /// No `rust` key at all.
    Absent,
    /// A `[rust]` header; the span is the header.
    Header(&'a dyn TableLike, Range<usize>),
    /// `rust.key = ...` lines at top level, or only `[rust.sub]` tables
    /// (`implicit`); the span is the first `rust` key.
    Dotted {
        table: &'a dyn TableLike,
        key_span: Range<usize>,
        implicit: bool,
    },
    /// `rust = { ... }`; the span is the `rust` key, `value_span` the braces.
    Inline {
        table: &'a dyn TableLike,
        key_span: Range<usize>,
        value_span: Range<usize>,
    },
    /// `rust` is not a table (reported as `invalid-type`).
    NotATable,
}

impl<'a> RustForm<'a> {
    fn of(root: &'a toml_edit::Table, text: &str) -> Self {
        let Some((key, item)) = root.get_key_value(RUST_TABLE) else {
            return RustForm::Absent;
        };
        let key_span = key_span(key, text);
        match item {
            Item::Table(table) if table.is_dotted() || table.is_implicit() => RustForm::Dotted {
                table,
                key_span,
                implicit: !table.is_dotted(),
            },
            Item::Table(table) => {
                let header = table.span().map_or(key_span, |span| clamp_span(text, span));
                RustForm::Header(table, header)
            }
            Item::Value(Value::InlineTable(table)) => RustForm::Inline {
                table,
                value_span: table
                    .span()
                    .map_or_else(|| key_span.clone(), |span| clamp_span(text, span)),
                key_span,
            },
            _ => RustForm::NotATable,
        }
    }

    fn table(&self) -> Option<&'a dyn TableLike> {
        match self {
            RustForm::Header(table, _)
            | RustForm::Dotted { table, .. }
            | RustForm::Inline { table, .. } => Some(*table),
            RustForm::Absent | RustForm::NotATable => None,
        }
    }
}

struct Checker<'a> {
    text: &'a str,
    facts: Option<&'a CrateFacts>,
    rust: RustForm<'a>,
    newline: &'static str,
    findings: Vec<Finding>,
}

impl<'a> Checker<'a> {
    fn full(&self) -> bool {
        self.findings.len() >= MAX_FINDINGS
    }

    fn push(
        &mut self,
        code: Code,
        severity: Severity,
        span: Range<usize>,
        message: String,
        fixes: Vec<Fix>,
    ) {
        if !self.full() {
            self.findings.push(Finding {
                code,
                severity,
                span,
                message,
                fixes,
            });
        }
    }

    fn check_root(&mut self, root: &'a toml_edit::Table) {
        for (name, item) in root.iter() {
            if self.full() {
                return;
            }
            let Some((key, _)) = root.get_key_value(name) else {
                continue;
            };
            if name == RUST_TABLE {
                self.check_rust_item(key, item);
            } else if name == super::run::RUN_TABLE {
                let room = MAX_FINDINGS.saturating_sub(self.findings.len());
                let found = super::run::check(self.text, key, item);
                self.findings.extend(found.into_iter().take(room));
            } else if name == super::live::LIVE_TABLE {
                let room = MAX_FINDINGS.saturating_sub(self.findings.len());
                let found = super::live::check(self.text, key, item);
                self.findings.extend(found.into_iter().take(room));
            } else if name == super::push::PUSH_TABLE {
                let room = MAX_FINDINGS.saturating_sub(self.findings.len());
                let found = super::push::check(self.text, key, item);
                self.findings.extend(found.into_iter().take(room));
            } else {
                self.unknown_top_level(name, key, item);
            }
        }
        let Some(rust) = self.rust.table() else {
            if matches!(self.rust, RustForm::Absent) {
                self.check_missing(None);
            }
            return;
        };
        self.check_rust_table(rust);
        self.check_missing(Some(rust));
    }

    fn check_rust_item(&mut self, key: &Key, item: &Item) {
        if matches!(self.rust, RustForm::NotATable) {
            let span = item_span(item, self.text).unwrap_or_else(|| key_span(key, self.text));
            self.push(
                Code::InvalidType,
                Severity::Error,
                span,
                format!(
                    "`rust` must be a table, but it is {}. Write a `[rust]` header and put the settings below it.",
                    describe_item(item)
                ),
                Vec::new(),
            );
        }
    }

    fn unknown_top_level(&mut self, name: &str, key: &Key, item: &Item) {
        let span = key_span(key, self.text);
        let shown_name = shown(name);
        if let (Some(spec), Item::Value(value)) = (schema::key(name), item) {
            let fixes = self.move_into_rust_fix(spec, &span, value);
            self.push(
                Code::UnknownKey,
                Severity::Warning,
                span,
                format!(
                    "`{shown_name}` belongs in the [rust] table; Arca ignores top-level keys. Move it below `[rust]` or write `rust.{shown_name}`."
                ),
                fixes,
            );
            return;
        }
        let what = if item.is_table_like() || item.is_array_of_tables() {
            "table"
        } else {
            "top-level key"
        };
        let rust_taken = !matches!(self.rust, RustForm::Absent);
        let suggestion = (!rust_taken && item.is_table_like())
            .then(|| nearest(name, [RUST_TABLE]))
            .flatten();
        let (message, fixes) = match suggestion {
            Some(suggestion) => (
                format!(
                    "Unknown {what} `{shown_name}`: Arca reads only the [rust] table. Did you mean `{suggestion}`?"
                ),
                vec![rename_fix(&span, suggestion)],
            ),
            None => (
                format!(
                    "Unknown {what} `{shown_name}`: Arca reads only the [rust] table. Remove it, or move its settings into [rust]."
                ),
                Vec::new(),
            ),
        };
        let fixes = fixes
            .into_iter()
            .chain(self.remove_line_fix(name, &span, item))
            .collect();
        self.push(Code::UnknownKey, Severity::Warning, span, message, fixes);
    }

    /// A top-level `profile = ...` moved into the `[rust]` table.
    fn move_into_rust_fix(&self, spec: &KeySpec, span: &Range<usize>, value: &Value) -> Vec<Fix> {
        let title = format!("Move `{}` into [rust]", spec.name);
        if self
            .rust
            .table()
            .is_some_and(|table| table.contains_key(spec.name))
        {
            // Moving it would define the key twice.
            return Vec::new();
        }
        match &self.rust {
            RustForm::Absent | RustForm::Dotted { .. } => vec![Fix {
                title,
                edits: vec![TextEdit {
                    span: span.clone(),
                    new_text: format!("{RUST_TABLE}.{}", spec.name),
                }],
            }],
            RustForm::Header(..) => {
                let Some(value_span) = value.span() else {
                    return Vec::new();
                };
                let value_span = clamp_span(self.text, value_span);
                let line =
                    line_start(self.text, span.start)..after_line_end(self.text, value_span.end);
                let Some(insert) = self.insert_setting_edit(spec.name, &self.text[value_span])
                else {
                    return Vec::new();
                };
                vec![Fix {
                    title,
                    edits: vec![
                        TextEdit {
                            span: line,
                            new_text: String::new(),
                        },
                        insert,
                    ],
                }]
            }
            RustForm::Inline { .. } | RustForm::NotATable => Vec::new(),
        }
    }

    fn check_rust_table(&mut self, rust: &'a dyn TableLike) {
        for (name, item) in rust.iter() {
            if self.full() {
                return;
            }
            let Some((key, _)) = rust.get_key_value(name) else {
                continue;
            };
            match schema::key(name) {
                Some(spec) => self.check_setting(spec, key, item),
                None => self.unknown_rust_key(rust, name, key, item),
            }
        }
    }

    /// Deletes the line(s) of a `key = value` that stands alone on its line.
    fn remove_line_fix(&self, name: &str, key_span: &Range<usize>, item: &Item) -> Option<Fix> {
        let Item::Value(value) = item else {
            return None;
        };
        let value_end = clamp_span(self.text, value.span()?).end;
        let start = line_start(self.text, key_span.start);
        if !self.text[start..key_span.start].trim().is_empty() {
            return None;
        }
        let end = after_line_end(self.text, value_end);
        let rest = &self.text[value_end..end];
        if !rest.trim().is_empty() && !rest.trim_start().starts_with('#') {
            return None;
        }
        Some(Fix {
            title: format!("Remove `{}`", shown(name)),
            edits: vec![TextEdit {
                span: start..end,
                new_text: String::new(),
            }],
        })
    }

    fn unknown_rust_key(&mut self, rust: &dyn TableLike, name: &str, key: &Key, item: &Item) {
        let span = key_span(key, self.text);
        let free = schema::RUST_KEYS
            .iter()
            .map(|spec| spec.name)
            .filter(|known| !rust.contains_key(known));
        let shown_name = shown(name);
        let (message, fixes) = match nearest(name, free) {
            Some(suggestion) => (
                format!("Unknown key `{shown_name}` in [rust]. Did you mean `{suggestion}`?"),
                vec![rename_fix(&span, suggestion)],
            ),
            None => (
                format!(
                    "Unknown key `{shown_name}` in [rust]. Known keys: {}.",
                    known_keys()
                ),
                Vec::new(),
            ),
        };
        let fixes = fixes
            .into_iter()
            .chain(self.remove_line_fix(name, &span, item))
            .collect();
        self.push(Code::UnknownKey, Severity::Warning, span, message, fixes);
    }

    fn check_setting(&mut self, spec: &KeySpec, key: &Key, item: &Item) {
        if spec.kind == ValueKind::StringTable
            && let Some(table) = item.as_table_like()
        {
            self.check_env(table);
            return;
        }
        let Item::Value(value) = item else {
            let span = key_span(key, self.text);
            self.invalid_type(spec, span, describe_item(item), Vec::new());
            return;
        };
        let span = value.span().map_or_else(
            || key_span(key, self.text),
            |span| clamp_span(self.text, span),
        );
        match (spec.kind, value) {
            (ValueKind::String, Value::String(string)) => {
                let string = string.value();
                match spec.name {
                    "profile" => self.check_profile(string, span),
                    "bin" => self.check_bin(string, span),
                    "base_image" => self.check_base_image(string, span),
                    "toolchain" => self.check_toolchain(string, span),
                    "push_to" => self.check_push_to(string, span),
                    _ => {}
                }
            }
            (ValueKind::Bool, Value::Boolean(_)) => {}
            (ValueKind::StringArray, Value::Array(array)) if spec.name == "packages" => {
                self.check_packages(array)
            }
            (ValueKind::StringArray, Value::Array(array)) if spec.name == "platforms" => {
                self.check_platforms(key, item, array, span)
            }
            (ValueKind::StringArray, Value::Array(array)) => self.check_features(array),
            (ValueKind::StringArray, Value::String(_)) => {
                let fix = Fix {
                    title: format!(
                        "Wrap in an array: {} = [{}]",
                        spec.name,
                        shown(&self.text[span.clone()])
                    ),
                    edits: vec![TextEdit {
                        span: span.clone(),
                        new_text: format!("[{}]", &self.text[span.clone()]),
                    }],
                };
                self.invalid_type(spec, span, describe_value(value), vec![fix]);
            }
            _ => self.invalid_type(spec, span, describe_value(value), Vec::new()),
        }
    }

    fn invalid_type(&mut self, spec: &KeySpec, span: Range<usize>, found: &str, fixes: Vec<Fix>) {
        self.push(
            Code::InvalidType,
            Severity::Error,
            span,
            format!(
                "`{}` must be {}, e.g. `{}`, but it is {found}.",
                spec.name,
                spec.kind.describe(),
                example(spec)
            ),
            fixes,
        );
    }

    fn empty_value(&mut self, spec: &KeySpec, span: Range<usize>) {
        self.push(
            Code::EmptyValue,
            Severity::Error,
            span,
            format!(
                "`{}` is empty. Set it, e.g. `{}`, or remove the line.",
                spec.name, spec.example
            ),
            Vec::new(),
        );
    }

    fn check_profile(&mut self, profile: &str, span: Range<usize>) {
        let trimmed = profile.trim();
        if trimmed.is_empty() {
            self.empty_value(&schema::PROFILE, span);
            return;
        }
        if BUILT_IN_PROFILES.contains(&trimmed) {
            return;
        }
        let Some(facts) = self.facts else {
            // A custom profile cannot be judged without the workspace.
            return;
        };
        if facts.has_profile(trimmed) {
            return;
        }
        let profiles = facts.all_profiles();
        let suggestion = nearest(trimmed, profiles.iter().map(String::as_str));
        let message = format!(
            "Profile `{}` is not defined for crate `{}`.{} Use one of: {}, or add `[profile.{}]` to the workspace Cargo.toml.",
            shown(trimmed),
            facts.name,
            did_you_mean(suggestion),
            listed(&profiles),
            shown(trimmed)
        );
        let fixes = likely_choices(trimmed, profiles.iter().map(String::as_str))
            .into_iter()
            .map(|name| replace_fix(&span, name, "Use profile"))
            .collect();
        self.push(Code::UnknownProfile, Severity::Error, span, message, fixes);
    }

    fn check_bin(&mut self, bin: &str, span: Range<usize>) {
        if bin.trim().is_empty() {
            self.empty_value(&schema::BIN, span);
            return;
        }
        let bins = self.facts.map(|facts| facts.bins.as_slice());
        if bin.len() > MAX_NAME_LEN {
            self.push(
                Code::UnknownBinary,
                Severity::Error,
                span,
                format!(
                    "`bin` is {} bytes long; a binary target name is a file name of at most {MAX_NAME_LEN} bytes.",
                    bin.len()
                ),
                Vec::new(),
            );
            return;
        }
        if bin.contains(['/', '\\']) || bin.contains("..") {
            let stem = bin
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or(bin)
                .trim_end_matches(".rs");
            let fixes = bins
                .into_iter()
                .flatten()
                .filter(|name| name.as_str() == stem)
                .map(|name| replace_fix(&span, name, "Use binary"))
                .collect();
            self.push(
                Code::UnknownBinary,
                Severity::Error,
                span,
                format!(
                    "`bin` must be a plain binary target name, not a path: `{}`. Write the target's name, e.g. `bin = \"server\"` for src/bin/server.rs.",
                    shown(bin)
                ),
                fixes,
            );
            return;
        }
        let (Some(facts), Some(bins)) = (self.facts, bins) else {
            return;
        };
        if bins.iter().any(|name| name == bin) {
            return;
        }
        let suggestion = nearest(bin, bins.iter().map(String::as_str));
        let message = format!(
            "Binary `{}` is not a bin target of crate `{}`.{} Available binaries: {}.",
            shown(bin),
            facts.name,
            did_you_mean(suggestion),
            listed(bins)
        );
        let fixes = replace_fixes(&span, bin, bins, "Use binary");
        self.push(Code::UnknownBinary, Severity::Error, span, message, fixes);
    }

    fn check_base_image(&mut self, image: &str, span: Range<usize>) {
        let trimmed = image.trim();
        if trimmed.is_empty() {
            self.empty_value(&schema::BASE_IMAGE, span);
            return;
        }
        if let Err(reason) = image_ref::parse(trimmed) {
            self.push(
                Code::InvalidImage,
                Severity::Error,
                span,
                format!(
                    "`{}` is not a valid image reference: {reason}.",
                    shown(trimmed)
                ),
                Vec::new(),
            );
            return;
        }
        let builder = builder_image::builder_base_image(trimmed);
        if builder != trimmed {
            let flavour = if trimmed.contains("-base-") {
                "base"
            } else {
                "runtime"
            };
            self.push(
                Code::CudaBuilder,
                Severity::Information,
                span,
                format!(
                    "`{trimmed}` is a CUDA {flavour} image, which lacks the CUDA toolkit: the binary is built in `{builder}` and runs on `{trimmed}`."
                ),
                Vec::new(),
            );
        }
    }

    fn check_toolchain(&mut self, toolchain: &str, span: Range<usize>) {
        if let Err(reason) = super::builder_values::validate_toolchain(toolchain) {
            self.push(
                Code::InvalidValue,
                Severity::Error,
                span,
                format!("{reason} Use e.g. `toolchain = \"1.96\"`."),
                Vec::new(),
            );
        }
    }

    fn check_push_to(&mut self, destination: &str, span: Range<usize>) {
        let trimmed = destination.trim();
        if trimmed.is_empty() {
            self.empty_value(&schema::PUSH_TO, span);
            return;
        }
        let problem = match image_ref::parse(trimmed) {
            Err(reason) => Some(reason),
            Ok(reference) if reference.digest.is_some() => Some(
                "a push destination names a tag, not a digest (the digest is what the push produces); remove the `@…` part".to_owned(),
            ),
            Ok(_) => None,
        };
        if let Some(reason) = problem {
            self.push(
                Code::InvalidImage,
                Severity::Error,
                span,
                format!(
                    "`{}` is not a valid push destination: {reason}. Write it as REGISTRY/REPOSITORY[:TAG], e.g. `registry.example.com/team/demo`.",
                    shown(trimmed)
                ),
                Vec::new(),
            );
        }
    }

    fn check_packages(&mut self, array: &toml_edit::Array) {
        for element in array.iter() {
            if self.full() {
                return;
            }
            let Some(span) = element.span().map(|span| clamp_span(self.text, span)) else {
                continue;
            };
            let problem = match element {
                Value::String(name) => super::builder_values::validate_package(name.value()).err(),
                other => Some(format!(
                    "Each entry of `packages` must be a string naming a system package, but this one is {}.",
                    describe_value(other)
                )),
            };
            if let Some(message) = problem {
                let code = if element.is_str() {
                    Code::InvalidValue
                } else {
                    Code::InvalidType
                };
                let fix = Fix {
                    title: "Remove this entry".to_owned(),
                    edits: vec![TextEdit {
                        span: array_element_removal(self.text, &span),
                        new_text: String::new(),
                    }],
                };
                self.push(code, Severity::Error, span, message, vec![fix]);
            }
        }
    }

    /// Each entry of `platforms` names platforms as `arca build` reads
    /// them ([`crate::platform::parse_list`]: several may share an entry,
    /// split by commas): an unknown one is an error with the closest name
    /// as a fix, a platform named again (after normalization, as
    /// `linux/arm64/v8` is `linux/arm64`) a warning with its removal.
    fn check_platforms(
        &mut self,
        key: &Key,
        item: &Item,
        array: &toml_edit::Array,
        span: Range<usize>,
    ) {
        if array.is_empty() {
            // A warning, not an error: the build reads `[]` as no list at
            // all and builds for the engine's platform, so nothing fails;
            // but a list written empty reads as "build for nothing", which
            // is never what it does.
            let key_range = key_span(key, self.text);
            let fixes = self
                .remove_line_fix(schema::PLATFORMS.name, &key_range, item)
                .into_iter()
                .collect();
            self.push(
                Code::EmptyValue,
                Severity::Warning,
                span,
                format!(
                    "`platforms = []` names no platform, so the image is built for the engine's platform, as without the key. Remove the line, or list the platforms, e.g. `{}`.",
                    schema::PLATFORMS.example
                ),
                fixes,
            );
            return;
        }
        // Each platform listed so far, with how its first entry spells it.
        let mut seen: Vec<(Platform, String)> = Vec::new();
        for element in array.iter() {
            if self.full() {
                return;
            }
            let Some(span) = element.span().map(|span| clamp_span(self.text, span)) else {
                continue;
            };
            let remove = |what: &str| Fix {
                title: format!("Remove `{}` from platforms", shown(what)),
                edits: vec![TextEdit {
                    span: array_element_removal(self.text, &span),
                    new_text: String::new(),
                }],
            };
            let Value::String(entry) = element else {
                self.push(
                    Code::InvalidType,
                    Severity::Error,
                    span.clone(),
                    format!(
                        "Each entry of `platforms` must be a string naming a platform, e.g. `\"linux/arm64\"`, but this one is {}.",
                        describe_value(element)
                    ),
                    vec![remove(&self.text[span.clone()])],
                );
                continue;
            };
            let entry = entry.value();
            let parts: Vec<&str> = entry
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .collect();
            if parts.is_empty() {
                self.push(
                    Code::EmptyValue,
                    Severity::Warning,
                    span.clone(),
                    "This entry of `platforms` is empty and names no platform. Remove it."
                        .to_owned(),
                    vec![remove(entry)],
                );
                continue;
            }
            let single = parts.len() == 1;
            for part in parts {
                match Platform::parse(part) {
                    Err(error) => {
                        let message = if part.chars().count() > MAX_SHOWN_VALUE {
                            // Say it with the value shortened (which is no
                            // platform either, and classified the same).
                            Platform::parse(&shown(part))
                                .err()
                                .map_or(error.message, |short| short.message)
                        } else {
                            error.message
                        };
                        let mut fixes: Vec<Fix> = error
                            .suggestion
                            .filter(|_| single)
                            .map(|name| replace_fix(&span, name, "Use platform"))
                            .into_iter()
                            .collect();
                        fixes.push(remove(entry));
                        self.push(
                            Code::InvalidValue,
                            Severity::Error,
                            span.clone(),
                            message,
                            fixes,
                        );
                    }
                    Ok(platform) => match seen.iter().find(|(known, _)| *known == platform) {
                        Some((_, first)) => {
                            let what = if first.eq_ignore_ascii_case(part) {
                                format!("`{}` is already listed", shown(part))
                            } else {
                                format!(
                                    "`{}` is `{platform}`, already listed as `{}`",
                                    shown(part),
                                    shown(first)
                                )
                            };
                            let (fixes, what_to_do) = if single {
                                (vec![remove(entry)], "Remove this entry.")
                            } else {
                                (Vec::new(), "Remove it from this entry.")
                            };
                            self.push(
                                Code::InvalidValue,
                                Severity::Warning,
                                span.clone(),
                                format!("{what}: each platform is built once. {what_to_do}"),
                                fixes,
                            );
                        }
                        None => seen.push((platform, part.to_owned())),
                    },
                }
            }
        }
    }

    fn check_env(&mut self, table: &dyn TableLike) {
        for (name, item) in table.iter() {
            if self.full() {
                return;
            }
            let Some((key, _)) = table.get_key_value(name) else {
                continue;
            };
            let key_range = key_span(key, self.text);
            if let Err(reason) = super::builder_values::validate_env_name(name) {
                self.push(
                    Code::InvalidValue,
                    Severity::Error,
                    key_range,
                    reason,
                    Vec::new(),
                );
                continue;
            }
            if item.as_str().is_none() {
                let span = item_span(item, self.text).unwrap_or(key_range);
                self.push(
                    Code::InvalidType,
                    Severity::Error,
                    span,
                    format!(
                        "`env.{name}` must be a string, but it is {}. Quote the value: {name} = \"...\".",
                        describe_item(item)
                    ),
                    Vec::new(),
                );
            }
        }
    }

    fn check_features(&mut self, array: &toml_edit::Array) {
        let facts = self.facts;
        // The features already listed, computed once (not per finding).
        let mut listed_names: Option<HashSet<&str>> = None;
        for element in array.iter() {
            if self.full() {
                return;
            }
            let Some(span) = element.span().map(|span| clamp_span(self.text, span)) else {
                continue;
            };
            let Value::String(feature) = element else {
                self.push(
                    Code::InvalidType,
                    Severity::Error,
                    span,
                    format!(
                        "Each entry of `features` must be a string naming a feature, but this one is {}.",
                        describe_value(element)
                    ),
                    Vec::new(),
                );
                continue;
            };
            let Some(facts) = facts else {
                continue;
            };
            let feature = feature.value();
            if facts.features.contains(feature) {
                continue;
            }
            let listed = listed_names
                .get_or_insert_with(|| array.iter().filter_map(Value::as_str).collect());
            self.check_feature(facts, listed, feature, span);
        }
    }

    fn check_feature(
        &mut self,
        facts: &CrateFacts,
        listed_names: &HashSet<&str>,
        feature: &str,
        span: Range<usize>,
    ) {
        // As on the command line, one entry may hold several features; a
        // `dependency/feature` names a dependency's feature, which the facts
        // cannot confirm, so it is accepted.
        let unknown: Vec<&str> = if feature.len() > MAX_NAME_LEN {
            vec![feature]
        } else {
            super::settings::normalize_features(&[feature])
                .into_iter()
                .filter(|name| !name.contains('/') && !facts.features.contains(name))
                .map(|name| {
                    let start = feature.find(name.as_str()).unwrap_or(0);
                    &feature[start..start + name.len()]
                })
                .collect()
        };
        let Some(first) = unknown.first().copied() else {
            return;
        };
        let declared: Vec<String> = facts
            .features
            .iter()
            .filter(|name| !listed_names.contains(&name.as_str()))
            .cloned()
            .collect();
        let suggestion = nearest(first, declared.iter().map(String::as_str));
        let names = unknown
            .iter()
            .map(|name| format!("`{}`", shown(name)))
            .collect::<Vec<_>>()
            .join(", ");
        let (subject, verb) = if unknown.len() == 1 {
            ("Feature", "is")
        } else {
            ("Features", "are")
        };
        let message = if facts.features.is_empty() {
            format!(
                "{subject} {names} {verb} not declared by crate `{}`, which declares no features. Remove it, or add it to [features] in Cargo.toml.",
                facts.name
            )
        } else {
            let all: Vec<String> = facts.features.iter().cloned().collect();
            format!(
                "{subject} {names} {verb} not declared by crate `{}`.{} Declared features: {}.",
                facts.name,
                did_you_mean(suggestion),
                listed(&all)
            )
        };
        let mut fixes = if unknown.len() == 1 && feature.trim() == first {
            likely_choices(first, declared.iter().map(String::as_str))
                .into_iter()
                .map(|name| replace_fix(&span, name, "Use feature"))
                .collect()
        } else {
            Vec::new()
        };
        fixes.push(Fix {
            title: format!("Remove `{}` from features", shown(feature)),
            edits: vec![TextEdit {
                span: array_element_removal(self.text, &span),
                new_text: String::new(),
            }],
        });
        self.push(Code::UnknownFeature, Severity::Error, span, message, fixes);
    }

    /// `missing-setting` for each required key that is absent, and
    /// `ambiguous-binary` when no `bin` is set but the crate has several.
    fn check_missing(&mut self, rust: Option<&dyn TableLike>) {
        let anchor = self.anchor();
        let present = |name: &str| rust.is_some_and(|table| table.contains_key(name));
        for spec in schema::RUST_KEYS.iter().filter(|spec| spec.required) {
            if present(spec.name) {
                continue;
            }
            let message = match spec.name {
                "profile" => {
                    "Missing `profile`: a build needs a Cargo profile. Add `profile = \"release\"` to [rust], or run `arca build rust --profile release --set-default`."
                }
                "features" => {
                    "Missing `features`: a build needs the feature set. Add `features = []` (or the features to enable) to [rust], or run `arca build rust --features '' --set-default`."
                }
                _ => {
                    "Missing `base_image`: a build needs a runtime base image. Add e.g. `base_image = \"debian:bookworm-slim\"` to [rust], or run `arca build rust --base-image IMAGE --set-default`."
                }
            };
            let value = match spec.name {
                "profile" => Some("\"release\""),
                "features" => Some("[]"),
                _ => None,
            };
            let fixes = value
                .and_then(|value| {
                    let edit = self.insert_setting_edit(spec.name, value)?;
                    Some(Fix {
                        title: format!("Add {} = {value}", spec.name),
                        edits: vec![edit],
                    })
                })
                .into_iter()
                .collect();
            self.push(
                Code::MissingSetting,
                Severity::Warning,
                anchor.clone(),
                message.to_owned(),
                fixes,
            );
        }
        let Some(facts) = self.facts else {
            return;
        };
        if facts.bins.len() < 2 || present(schema::BIN.name) {
            return;
        }
        let fixes = facts
            .bins
            .iter()
            .filter_map(|bin| {
                let value = toml_edit::Value::from(bin.as_str()).to_string();
                let value = value.trim();
                let edit = self.insert_setting_edit(schema::BIN.name, value)?;
                Some(Fix {
                    title: format!("Set bin = {value}"),
                    edits: vec![edit],
                })
            })
            .take(MAX_LISTED)
            .collect();
        self.push(
            Code::AmbiguousBinary,
            Severity::Error,
            anchor,
            format!(
                "Crate `{}` has several binaries ({}): set `bin` to the one to package, e.g. `bin = \"{}\"`, or run `arca build rust --bin NAME --set-default`.",
                facts.name,
                listed(&facts.bins),
                facts.bins.first().map_or("", String::as_str)
            ),
            fixes,
        );
    }

    /// Where table-level findings go: the `[rust]` header (or the `rust`
    /// key), else the file's first token.
    fn anchor(&self) -> Range<usize> {
        match &self.rust {
            RustForm::Header(_, span) => span.clone(),
            RustForm::Dotted { key_span, .. } | RustForm::Inline { key_span, .. } => {
                key_span.clone()
            }
            RustForm::Absent | RustForm::NotATable => first_token(self.text),
        }
    }

    /// An edit that adds `name = value` to the `[rust]` settings, in the form
    /// they already have (creating `[rust]` at the end when missing).
    fn insert_setting_edit(&self, name: &str, value: &str) -> Option<TextEdit> {
        insert_setting(self.text, &self.rust, self.newline, name, value)
    }
}

/// See [`Checker::insert_setting_edit`].
fn insert_setting(
    text: &str,
    rust: &RustForm<'_>,
    newline: &str,
    name: &str,
    value: &str,
) -> Option<TextEdit> {
    let line_edit = |after: usize, line: String| {
        let position = after_line_end(text, after);
        let ends_with_newline = text[..position].ends_with('\n');
        TextEdit {
            span: position..position,
            new_text: if ends_with_newline {
                format!("{line}{newline}")
            } else {
                format!("{newline}{line}")
            },
        }
    };
    match rust {
        RustForm::Header(table, header) => {
            let end = last_value_end(*table).map_or(header.end, |end| end.max(header.end));
            Some(line_edit(end, format!("{name} = {value}")))
        }
        RustForm::Dotted {
            table,
            key_span,
            implicit: false,
        } => {
            let end = last_value_end(*table).unwrap_or(key_span.end);
            Some(line_edit(end, format!("{RUST_TABLE}.{name} = {value}")))
        }
        RustForm::Dotted { implicit: true, .. } | RustForm::Absent => {
            let separator = if text.trim().is_empty() {
                String::new()
            } else if text.ends_with('\n') {
                newline.to_owned()
            } else {
                format!("{newline}{newline}")
            };
            let start = if text.trim().is_empty() {
                0
            } else {
                text.len()
            };
            Some(TextEdit {
                span: start..text.len(),
                new_text: format!("{separator}[{RUST_TABLE}]{newline}{name} = {value}{newline}"),
            })
        }
        RustForm::Inline {
            table, value_span, ..
        } => match last_value_end(*table) {
            Some(end) => Some(TextEdit {
                span: end..end,
                new_text: format!(", {name} = {value}"),
            }),
            None => Some(TextEdit {
                span: value_span.clone(),
                new_text: format!("{{ {name} = {value} }}"),
            }),
        },
        RustForm::NotATable => None,
    }
}

/// The end of the last value written in a table's own body (through dotted
/// keys, not into sub-tables with their own header).
fn last_value_end(table: &dyn TableLike) -> Option<usize> {
    table
        .iter()
        .filter_map(|(_, item)| match item {
            Item::Value(Value::InlineTable(inline)) if inline.is_dotted() => last_value_end(inline),
            Item::Value(value) => value.span().map(|span| span.end),
            Item::Table(sub) if sub.is_dotted() => last_value_end(sub),
            _ => None,
        })
        .max()
}

/// The span to delete to remove one element of an array, with its comma.
fn array_element_removal(text: &str, span: &Range<usize>) -> Range<usize> {
    let after = &text[span.end..];
    let trimmed = after.trim_start_matches([' ', '\t']);
    if let Some(rest) = trimmed.strip_prefix(',') {
        let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        return span.start..text.len() - rest.len() + spaces;
    }
    let before = &text[..span.start];
    let trimmed = before.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(',') {
        Some(rest) => rest.len()..span.end,
        None => span.clone(),
    }
}

fn rename_fix(span: &Range<usize>, name: &str) -> Fix {
    Fix {
        title: format!("Rename to `{name}`"),
        edits: vec![TextEdit {
            span: span.clone(),
            new_text: name.to_owned(),
        }],
    }
}

/// Replaces a string value (quotes included) by `name`, as a basic string.
fn replace_fix(span: &Range<usize>, name: &str, verb: &str) -> Fix {
    let quoted = toml_edit::Value::from(name).to_string();
    Fix {
        title: format!("{verb} `{name}`"),
        edits: vec![TextEdit {
            span: span.clone(),
            new_text: quoted.trim().to_owned(),
        }],
    }
}

/// "Use X" fixes for every candidate, most similar first.
fn replace_fixes(span: &Range<usize>, wrong: &str, candidates: &[String], verb: &str) -> Vec<Fix> {
    ranked(wrong, candidates.iter().map(String::as_str))
        .into_iter()
        .take(MAX_FIXES)
        .map(|name| replace_fix(span, name, verb))
        .collect()
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |name| format!(" Did you mean `{name}`?"))
}

fn known_keys() -> String {
    schema::RUST_KEYS
        .iter()
        .map(|spec| spec.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn example(spec: &KeySpec) -> &'static str {
    match spec.kind {
        ValueKind::StringArray if spec.name == "features" => "features = [\"cli\"]",
        _ => spec.example,
    }
}

/// `a, b, c` (shortened after [`MAX_LISTED`] names).
fn listed(names: &[String]) -> String {
    let shown_names: Vec<&str> = names.iter().take(MAX_LISTED).map(String::as_str).collect();
    let mut list = shown_names.join(", ");
    if names.len() > MAX_LISTED {
        list.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    list
}

/// A user value for a message, shortened when long.
fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN_VALUE {
        return value.to_owned();
    }
    let head: String = value.chars().take(MAX_SHOWN_VALUE).collect();
    format!("{head}…")
}

fn describe_item(item: &Item) -> &'static str {
    match item {
        Item::Value(value) => describe_value(value),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::None => "nothing",
    }
}

fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "an inline table",
    }
}

fn key_span(key: &Key, text: &str) -> Range<usize> {
    key.span()
        .map_or_else(|| first_token(text), |span| clamp_span(text, span))
}

fn item_span(item: &Item, text: &str) -> Option<Range<usize>> {
    let span = match item {
        Item::Value(value) => value.span(),
        Item::Table(table) => table.span(),
        Item::ArrayOfTables(array) => array.span(),
        Item::None => None,
    }?;
    Some(clamp_span(text, span))
}

/// A span inside the text, on character boundaries.
fn clamp_span(text: &str, span: Range<usize>) -> Range<usize> {
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end.clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// Parsers report some errors as an empty span (e.g. at the end of a line);
/// an editor shows a one-character range better: the character there, or
/// the one before when at a line end.
fn widen_empty(text: &str, span: Range<usize>) -> Range<usize> {
    let span = clamp_span(text, span);
    if !span.is_empty() {
        return span;
    }
    let at = span.start;
    if let Some(next) = text[at..].chars().next()
        && next != '\n'
        && next != '\r'
    {
        return at..at + next.len_utf8();
    }
    match text[..at].char_indices().next_back() {
        Some((index, previous)) if previous != '\n' => index..at,
        _ => span,
    }
}

/// The first whitespace-delimited token of the text (empty at 0 for a blank
/// text): the anchor of table-level findings when there is no table.
fn first_token(text: &str) -> Range<usize> {
    let Some(start) = text.find(|ch: char| !ch.is_whitespace()) else {
        return 0..0;
    };
    let end = text[start..]
        .find(char::is_whitespace)
        .map_or(text.len(), |length| start + length);
    start..end
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |index| index + 1)
}

/// The offset just after the newline ending the line that holds `offset`
/// (the text's end for the last line).
fn after_line_end(text: &str, offset: usize) -> usize {
    text[offset..]
        .find('\n')
        .map_or(text.len(), |index| offset + index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::{RustConfig, parse_builder_settings, parse_settings};

    fn facts(bins: &[&str], features: &[&str]) -> CrateFacts {
        crate::workspace::test_facts(bins, features)
    }

    const COMPLETE: &str = "[rust]\nprofile = \"release\"\nfeatures = [\"cli\"]\nbase_image = \"debian:bookworm-slim\"\n";

    /// `(code, spanned text)` of every finding.
    fn spans(text: &str, facts: Option<&CrateFacts>) -> Vec<(&'static str, String)> {
        check(text, facts)
            .into_iter()
            .map(|finding| (finding.code.as_str(), text[finding.span].to_owned()))
            .collect()
    }

    fn apply(text: &str, fix: &Fix) -> String {
        let mut edits = fix.edits.clone();
        edits.sort_by_key(|edit| std::cmp::Reverse(edit.span.start));
        let mut out = text.to_owned();
        for edit in edits {
            out.replace_range(edit.span, &edit.new_text);
        }
        out
    }

    #[test]
    fn a_complete_config_is_clean_with_and_without_facts() {
        let demo = facts(&["demo"], &["cli", "http"]);
        assert_eq!(spans(COMPLETE, None), vec![]);
        assert_eq!(spans(COMPLETE, Some(&demo)), vec![]);
        let dotted = "rust.profile = \"release-lto\"\nrust.features = []\nrust.base_image = \"ubuntu:24.04\"\n";
        assert_eq!(spans(dotted, Some(&demo)), vec![]);
        let inline =
            "rust = { profile = \"dev\", features = [\"http\"], base_image = \"busybox\" }\n";
        assert_eq!(spans(inline, Some(&demo)), vec![]);
    }

    /// Every code, with the exact text its span covers.
    #[test]
    fn each_code_covers_exactly_the_offending_text() {
        let one = facts(&["demo"], &["cli", "http"]);
        let two = facts(&["client", "server"], &["cli", "http"]);
        type Case<'a> = (String, Option<&'a CrateFacts>, Vec<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            (
                "[rust\nprofile = 1\n".into(),
                None,
                vec![("toml-syntax", "t")],
            ),
            (
                "[rust]\nfeatures = [\n".into(),
                None,
                vec![("toml-syntax", "[")],
            ),
            (
                "[rust]\nprofile = release\n".into(),
                None,
                vec![("toml-syntax", "release")],
            ),
            (
                "[rust]\nprofile = \"release\"\nprofile = \"dev\"\n".into(),
                None,
                vec![("toml-syntax", "profile")],
            ),
            (
                COMPLETE.replace("features = [\"cli\"]", "features = \"cli\""),
                None,
                vec![("invalid-type", "\"cli\"")],
            ),
            (
                COMPLETE.replace("profile = \"release\"", "profile = 3"),
                None,
                vec![("invalid-type", "3")],
            ),
            (
                COMPLETE.replace("[\"cli\"]", "[1, \"cli\"]"),
                None,
                vec![("invalid-type", "1")],
            ),
            (
                format!("{COMPLETE}[rust.bin]\nx = 1\n"),
                None,
                vec![("invalid-type", "bin")],
            ),
            ("rust = 5\n".into(), None, vec![("invalid-type", "5")]),
            (
                "[[rust]]\nprofile = \"dev\"\n".into(),
                None,
                vec![("invalid-type", "[[rust]]")],
            ),
            (
                COMPLETE.replace("profile", "profle"),
                None,
                vec![("missing-setting", "[rust]"), ("unknown-key", "profle")],
            ),
            (
                format!("[rsut]\n{}", &COMPLETE[7..]),
                None,
                vec![
                    ("missing-setting", "[rsut]"),
                    ("missing-setting", "[rsut]"),
                    ("missing-setting", "[rsut]"),
                    ("unknown-key", "rsut"),
                ],
            ),
            (
                format!("{COMPLETE}[extra]\nx = 1\n"),
                None,
                vec![("unknown-key", "extra")],
            ),
            (
                COMPLETE.replace("\"release\"", "\"  \""),
                None,
                vec![("empty-value", "\"  \"")],
            ),
            (
                COMPLETE.replace("\"debian:bookworm-slim\"", "''"),
                None,
                vec![("empty-value", "''")],
            ),
            (
                format!("{COMPLETE}bin = \"\"\n"),
                None,
                vec![("empty-value", "\"\"")],
            ),
            (
                COMPLETE.replace("\"release\"", "\"relase\""),
                Some(&one),
                vec![("unknown-profile", "\"relase\"")],
            ),
            (COMPLETE.replace("\"release\"", "\"relase\""), None, vec![]),
            (
                COMPLETE.replace("[\"cli\"]", "[\"cli\", \"htp\"]"),
                Some(&one),
                vec![("unknown-feature", "\"htp\"")],
            ),
            (
                COMPLETE.replace("[\"cli\"]", "[\"cli\", \"htp\"]"),
                None,
                vec![],
            ),
            (
                format!("{COMPLETE}bin = \"srv\"\n"),
                Some(&two),
                vec![("unknown-binary", "\"srv\"")],
            ),
            (
                format!("{COMPLETE}bin = \"src/bin/server.rs\"\n"),
                None,
                vec![("unknown-binary", "\"src/bin/server.rs\"")],
            ),
            (
                format!("{COMPLETE}bin = '..'\n"),
                None,
                vec![("unknown-binary", "'..'")],
            ),
            (
                format!("{COMPLETE}bin = 'a\\b'\n"),
                None,
                vec![("unknown-binary", "'a\\b'")],
            ),
            (
                COMPLETE.into(),
                Some(&two),
                vec![("ambiguous-binary", "[rust]")],
            ),
            (
                COMPLETE.replace("debian", "Debian"),
                None,
                vec![("invalid-image", "\"Debian:bookworm-slim\"")],
            ),
            (
                "[rust]\n".into(),
                None,
                vec![
                    ("missing-setting", "[rust]"),
                    ("missing-setting", "[rust]"),
                    ("missing-setting", "[rust]"),
                ],
            ),
            (
                COMPLETE.replace(
                    "debian:bookworm-slim",
                    "nvidia/cuda:12.8.1-runtime-ubuntu24.04",
                ),
                None,
                vec![("cuda-builder", "\"nvidia/cuda:12.8.1-runtime-ubuntu24.04\"")],
            ),
        ];
        let mut failures = Vec::new();
        for (text, facts, expected) in cases {
            let found = spans(&text, facts);
            let expected: Vec<(&str, String)> = expected
                .into_iter()
                .map(|(code, spanned)| (code, spanned.to_owned()))
                .collect();
            if found != expected {
                failures.push(format!(
                    "{text:?}\n  found    {found:?}\n  expected {expected:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Applies the first fix of the one finding with `code`, and returns the
    /// fixed text.
    fn fix_first(text: &str, facts: Option<&CrateFacts>, code: Code, title: &str) -> String {
        let findings = check(text, facts);
        let finding = findings
            .iter()
            .find(|finding| finding.code == code)
            .unwrap_or_else(|| panic!("no {code:?} in {text:?}: {findings:?}"));
        let fix = finding
            .fixes
            .iter()
            .find(|fix| fix.title == title)
            .unwrap_or_else(|| panic!("no fix {title:?} in {:?}", finding.fixes));
        apply(text, fix)
    }

    #[test]
    fn quick_fixes_leave_a_clean_config() {
        let one = facts(&["demo"], &["cli", "http"]);
        let two = facts(&["client", "server"], &["cli", "http"]);
        let with_bin = format!("{COMPLETE}bin = \"server\"\n");
        let mut cases: Vec<(String, &CrateFacts, Code, &str, String)> = vec![
            (COMPLETE.replace("profile", "profle"), &one, Code::UnknownKey, "Rename to `profile`", COMPLETE.into()),
            (COMPLETE.replace("[rust]", "[rsut]"), &one, Code::UnknownKey, "Rename to `rust`", COMPLETE.into()),
            (COMPLETE.replace("[rust]\n", "[rust]\ncolour = 1 # mine\n"), &one, Code::UnknownKey, "Remove `colour`", COMPLETE.into()),
            (format!("colour = [\n  1,\n]\n{COMPLETE}"), &one, Code::UnknownKey, "Remove `colour`", COMPLETE.into()),
            (COMPLETE.replace("[\"cli\"]", "[\"htp\"]"), &one, Code::UnknownFeature, "Use feature `http`", COMPLETE.replace("[\"cli\"]", "[\"http\"]")),
            (COMPLETE.replace("[\"cli\"]", "[\"cli\", \"htp\"]"), &one, Code::UnknownFeature, "Remove `htp` from features", COMPLETE.into()),
            (COMPLETE.replace("[\"cli\"]", "[\"htp\", \"cli\"]"), &one, Code::UnknownFeature, "Remove `htp` from features", COMPLETE.into()),
            (COMPLETE.replace("[\"cli\"]", "[\"htp\"]"), &one, Code::UnknownFeature, "Remove `htp` from features", COMPLETE.replace("[\"cli\"]", "[]")),
            (with_bin.replace("\"server\"", "\"srv\""), &two, Code::UnknownBinary, "Use binary `server`", with_bin.clone()),
            (with_bin.replace("\"server\"", "\"src/bin/server.rs\""), &two, Code::UnknownBinary, "Use binary `server`", with_bin.clone()),
            (COMPLETE.replace("\"release\"", "\"relase\""), &one, Code::UnknownProfile, "Use profile `release`", COMPLETE.into()),
            (COMPLETE.replace("[\"cli\"]", "\"cli\""), &one, Code::InvalidType, "Wrap in an array: features = [\"cli\"]", COMPLETE.into()),
            (COMPLETE.into(), &two, Code::AmbiguousBinary, "Set bin = \"server\"", with_bin.clone()),
            (
                "# build settings\n[rust] # the table\nprofile = \"release\" # ship it\nfeatures = [\n  \"cli\",\n]\nbase_image = \"debian:bookworm-slim\"\n\n# end\n".into(),
                &two,
                Code::AmbiguousBinary,
                "Set bin = \"client\"",
                "# build settings\n[rust] # the table\nprofile = \"release\" # ship it\nfeatures = [\n  \"cli\",\n]\nbase_image = \"debian:bookworm-slim\"\nbin = \"client\"\n\n# end\n".into(),
            ),
            (
                "rust.profile = \"dev\"\nrust.features = []\nrust.base_image = \"busybox\"".into(),
                &two,
                Code::AmbiguousBinary,
                "Set bin = \"client\"",
                "rust.profile = \"dev\"\nrust.features = []\nrust.base_image = \"busybox\"\nrust.bin = \"client\"".into(),
            ),
            (
                "rust = { profile = \"dev\", features = [], base_image = \"busybox\" }\n".into(),
                &two,
                Code::AmbiguousBinary,
                "Set bin = \"client\"",
                "rust = { profile = \"dev\", features = [], base_image = \"busybox\", bin = \"client\" }\n".into(),
            ),
            ("[rust]\r\nprofile = \"dev\"\r\nbase_image = \"busybox\"\r\n".into(), &one, Code::MissingSetting, "Add features = []", "[rust]\r\nprofile = \"dev\"\r\nbase_image = \"busybox\"\r\nfeatures = []\r\n".into()),
            (
                "profile = \"release\"\n\n[rust]\nfeatures = []\nbase_image = \"busybox\"\n".into(),
                &one,
                Code::UnknownKey,
                "Move `profile` into [rust]",
                "\n[rust]\nfeatures = []\nbase_image = \"busybox\"\nprofile = \"release\"\n".into(),
            ),
            (
                "profile = \"release\"\nrust.features = []\nrust.base_image = \"busybox\"\n".into(),
                &one,
                Code::UnknownKey,
                "Move `profile` into [rust]",
                "rust.profile = \"release\"\nrust.features = []\nrust.base_image = \"busybox\"\n".into(),
            ),
        ];
        cases.push((
            "[rust]\nprofile = release\nfeatures = []\nbase_image = \"busybox\"\n".into(),
            &one,
            Code::TomlSyntax,
            "Quote it: \"release\"",
            "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"busybox\"\n".into(),
        ));
        for (text, facts, code, title, expected) in cases {
            let fixed = fix_first(&text, Some(facts), code, title);
            assert_eq!(fixed, expected, "fixing {code:?} in {text:?}");
            assert_eq!(spans(&fixed, Some(facts)), vec![], "after fixing {text:?}");
        }
    }

    #[test]
    fn a_top_level_setting_already_set_in_rust_gets_no_move_fix() {
        for text in [
            "profile = \"dev\"\nrust.profile = \"release\"\n",
            "profile = \"dev\"\n[rust]\nprofile = \"release\"\n",
        ] {
            let findings = check(text, None);
            let unknown = findings
                .iter()
                .find(|finding| finding.code == Code::UnknownKey)
                .expect("unknown-key");
            assert_eq!(&text[unknown.span.clone()], "profile");
            assert!(unknown.fixes.is_empty(), "{:?}", unknown.fixes);
        }
    }

    #[test]
    fn missing_settings_in_an_empty_or_tableless_file_create_the_table() {
        let one = facts(&["demo"], &[]);
        for (text, expected) in [
            ("", "[rust]\nprofile = \"release\"\n"),
            ("\n\n", "[rust]\nprofile = \"release\"\n"),
            (
                "# settings",
                "# settings\n\n[rust]\nprofile = \"release\"\n",
            ),
            (
                "# settings\n",
                "# settings\n\n[rust]\nprofile = \"release\"\n",
            ),
            ("[rust.x]\n", "[rust.x]\n\n[rust]\nprofile = \"release\"\n"),
            ("rust = {}\n", "rust = { profile = \"release\" }\n"),
            ("rust = { }", "rust = { profile = \"release\" }"),
        ] {
            let fixed = fix_first(
                text,
                Some(&one),
                Code::MissingSetting,
                "Add profile = \"release\"",
            );
            assert_eq!(fixed, expected, "{text:?}");
            assert!(
                !spans(&fixed, Some(&one))
                    .iter()
                    .any(|(code, _)| *code == "toml-syntax")
            );
        }
        // The anchor is the first token, never the whole file.
        assert_eq!(spans("", None)[0], ("missing-setting", String::new()));
        assert_eq!(
            spans("  # a comment\n", None)[0],
            ("missing-setting", "#".into())
        );
        let ambiguous = spans("rust.profile = \"dev\"\n", Some(&facts(&["a", "b"], &[])));
        assert!(
            ambiguous.contains(&("ambiguous-binary", "rust".into())),
            "{ambiguous:?}"
        );
    }

    #[test]
    fn without_facts_only_what_the_text_proves_is_reported() {
        for profile in ["dev", "release", "test", "bench", "my-custom"] {
            let text = COMPLETE.replace("\"release\"", &format!("\"{profile}\""));
            assert_eq!(spans(&text, None), vec![], "{profile}");
        }
        let text = format!("{COMPLETE}bin = \"anything\"\n");
        assert_eq!(spans(&text, None), vec![]);
        let text = COMPLETE.replace("[\"cli\"]", "[\"anything\", \"serde/derive\", \"a, b\"]");
        assert_eq!(spans(&text, None), vec![]);
    }

    #[test]
    fn dependency_features_and_comma_lists_are_checked_like_the_command_line() {
        let one = facts(&["demo"], &["cli", "http"]);
        let text = COMPLETE.replace("[\"cli\"]", "[\"serde/derive\", \"cli,http\", \"cli htp\"]");
        let findings = check(&text, Some(&one));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(&text[findings[0].span.clone()], "\"cli htp\"");
        assert!(
            findings[0]
                .message
                .starts_with("Feature `htp` is not declared")
        );
    }

    #[test]
    fn messages_are_precise_and_actionable() {
        let one = facts(&["demo"], &["cli", "http"]);
        let two = facts(&["client", "server"], &[]);
        let corpus: Vec<(&str, String, Option<&CrateFacts>)> = vec![
            (
                "syntax",
                "[rust]\nprofile = \"release\nfeatures = []\n".into(),
                None,
            ),
            (
                "duplicate key",
                "[rust]\nbin = \"a\"\nbin = \"b\"\n".into(),
                None,
            ),
            (
                "unquoted string",
                "[rust]\nbase_image = ubuntu:24.04\n".into(),
                None,
            ),
            ("unknown key", COMPLETE.replace("profile", "profle"), None),
            (
                "unknown key, none near",
                format!("{COMPLETE}colour = 1\n"),
                None,
            ),
            ("unknown table", COMPLETE.replace("[rust]", "[rsut]"), None),
            (
                "top-level setting",
                format!(
                    "profile = \"release\"\n{}",
                    &COMPLETE.replace("profile = \"release\"\n", "")
                ),
                None,
            ),
            (
                "invalid type",
                COMPLETE.replace("[\"cli\"]", "\"cli\""),
                None,
            ),
            (
                "invalid element",
                COMPLETE.replace("[\"cli\"]", "[true]"),
                None,
            ),
            ("rust not a table", "rust = \"release\"\n".into(), None),
            ("empty", COMPLETE.replace("\"release\"", "\"\""), None),
            (
                "unknown profile",
                COMPLETE.replace("\"release\"", "\"relase\""),
                Some(&one),
            ),
            (
                "unknown feature",
                COMPLETE.replace("[\"cli\"]", "[\"htp\"]"),
                Some(&one),
            ),
            (
                "unknown feature, none declared",
                COMPLETE.into(),
                Some(&two),
            ),
            (
                "unknown binary",
                format!("{COMPLETE}bin = \"srv\"\n"),
                Some(&two),
            ),
            (
                "path binary",
                format!("{COMPLETE}bin = \"src/bin/server.rs\"\n"),
                None,
            ),
            ("ambiguous binary", COMPLETE.into(), Some(&two)),
            ("invalid image", COMPLETE.replace("debian", "Debian"), None),
            ("missing settings", "".into(), None),
            (
                "cuda base",
                COMPLETE.replace(
                    "debian:bookworm-slim",
                    "nvidia/cuda:12.8.1-base-ubuntu24.04",
                ),
                None,
            ),
            (
                "unknown platforms",
                format!("{COMPLETE}platforms = [\"linux/amr64\", \"windows/amd64\", \"arm64\"]\n"),
                None,
            ),
            (
                "repeated platform",
                format!("{COMPLETE}platforms = [\"linux/arm64\", \"linux/aarch64\"]\n"),
                None,
            ),
            (
                "empty platforms",
                format!("{COMPLETE}platforms = []\n"),
                None,
            ),
            (
                "platforms not an array",
                format!("{COMPLETE}platforms = \"linux/arm64\"\n"),
                None,
            ),
        ];
        let mut rendered = String::new();
        for (title, text, facts) in corpus {
            rendered.push_str(&format!("## {title}\n"));
            for finding in check(&text, facts) {
                rendered.push_str(&format!(
                    "{}[{}] {:?}: {}\n",
                    finding.severity.as_str(),
                    finding.code.as_str(),
                    &text[finding.span.clone()],
                    finding.message
                ));
                for fix in finding.fixes {
                    rendered.push_str(&format!("  fix: {}\n", fix.title));
                }
            }
        }
        insta::assert_snapshot!(rendered);
    }
    fn assert_spans_valid(text: &str, findings: &[Finding]) {
        for finding in findings {
            let span = &finding.span;
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "{span:?} in {text:?}"
            );
            assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
            if text.trim().len() > 12 {
                assert!(
                    span.len() < text.len(),
                    "whole-file span for {finding:?} in {text:?}"
                );
            }
        }
    }

    #[test]
    fn hostile_inputs_never_panic_and_spans_stay_on_char_boundaries() {
        let two = facts(&["client", "server"], &["cli", "http"]);
        let mut texts: Vec<String> = vec![
            format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000)),
            format!("[rust]\nfeatures = {}", "[".repeat(100_000)),
            format!("rust = {}", "{ a = ".repeat(50_000)),
            format!("{} = 1", vec!["rust"; 50_000].join(".")),
            "[rust]\nprofile = \"a\u{0}b\"\n".into(),
            "[rust]\nprofile = \"\u{7}\"\n".into(),
            "[rust]\u{0}\n".into(),
            "\u{feff}[rust]\nprofile = \"dev\"\n".into(),
            "[rust]\r\n\"profíle\" = \"réléase\"\r\nbase_image = \"ubüntu\"\r\nbin = \"sérveur\"\r\nfeatures = [\"ça\", \"日本\"]\r\n".into(),
            "[\"日本\"]\n\"clé\" = \"値\"\n".into(),
            "[rust]\nbase_image = \"nvidia/cuda:12.8.1-runtime-ubuntu24.04@sha256:0123\"\n".into(),
            "[rust]\nprofile = '''\nmulti\n'''\n".into(),
            "[[rust]]\n[[rust]]\n".into(),
            "rust.profile.x = 1\n".into(),
            "rust = { profile = { x = 1 }, features = [[]], bin = 1.5, base_image = 1979-05-27 }\n".into(),
            "[rust]\nfeatures = [\"cli\",\n  # comment\n  \"htp\", # more\n]\n".into(),
        ];
        // Every prefix and suffix of a realistic config, as while typing.
        let full = "# Arca\n[rust] # table\nprofile = \"réléase\" # c\nfeatures = [\"cli\", \"htp\"]\nbin = \"srv\"\nbase_image = \"nvidia/cuda:12.8.1-runtime-ubuntu24.04\"\n[extra]\nx = { y = [1, 2] }\n";
        texts.extend(
            full.char_indices()
                .map(|(index, _)| full[..index].to_owned()),
        );
        texts.extend(
            full.char_indices()
                .map(|(index, _)| full[index..].to_owned()),
        );
        for text in &texts {
            for facts in [None, Some(&two)] {
                let findings = check(text, facts);
                assert_spans_valid(text, &findings);
                let _ = parse_settings(text);
            }
        }
        let non_ascii = &texts[8];
        let found = spans(non_ascii, None);
        assert!(
            found.contains(&("unknown-key", "\"profíle\"".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("invalid-image", "\"ubüntu\"".into())),
            "{found:?}"
        );
        assert_eq!(spans(&texts[0], None)[0].0, "toml-syntax");
    }

    #[test]
    fn a_ten_megabyte_config_checks_in_well_under_a_second() {
        let declared: Vec<String> = (0..100).map(|index| format!("feature-{index}")).collect();
        let declared_refs: Vec<&str> = declared.iter().map(String::as_str).collect();
        let many = facts(&["client", "server"], &declared_refs);
        let element = "\"feature-42\", ";
        let big_array = format!(
            "[rust]\nprofile = \"release\"\nbin = \"server\"\nbase_image = \"busybox\"\nfeatures = [{}\"feature-1\"]\n",
            element.repeat(10_000_000 / element.len())
        );
        // 100,000 unknown keys: parsing costs per entry, not per byte, so
        // this is the slowest realistic shape (a 600,000-key file takes
        // about half a second in release builds, all of it in the parser).
        let unknown_keys: String = (0..100_000)
            .map(|index| format!("key{index} = \"{}\"\n", "v".repeat(80)))
            .collect();
        let unknown_features = format!(
            "[rust]\nfeatures = [{}]\n",
            "\"nope\", ".repeat(10_000_000 / 8)
        );
        let huge_value = format!(
            "[rust]\nbase_image = \"{}\"\nbin = \"{}\"\n",
            "a".repeat(5_000_000),
            "b".repeat(5_000_000)
        );
        let comment = format!("# {}\n{COMPLETE}", "x".repeat(10_000_000));
        for text in [
            big_array,
            unknown_keys,
            unknown_features,
            huge_value,
            comment,
        ] {
            assert!(text.len() >= 9_000_000, "{}", text.len());
            // The parser (optimized even in test builds) is the floor; the
            // checker's own work must stay small beside it. Release builds
            // check these in well under a second; this debug test allows for
            // a loaded machine.
            let started = std::time::Instant::now();
            let parsed = Document::parse(text.as_str()).is_ok();
            let parse_time = started.elapsed();
            let started = std::time::Instant::now();
            let findings = check(&text, Some(&many));
            let elapsed = started.elapsed();
            assert!(parsed && findings.len() <= MAX_FINDINGS);
            eprintln!(
                "{} bytes, {} findings: check {elapsed:?}, parse alone {parse_time:?}",
                text.len(),
                findings.len()
            );
            assert!(
                elapsed < parse_time * 3 + std::time::Duration::from_millis(500)
                    && elapsed < std::time::Duration::from_secs(5),
                "{} bytes took {elapsed:?} (parsing alone {parse_time:?})",
                text.len()
            );
        }
    }

    #[test]
    fn builder_keys_are_checked_with_precise_spans() {
        let text = format!(
            "{COMPLETE}packages = [\"make\", \"a b\", 3]\ntoolchain = \"1.96;x\"\nproxy = \"no\"\ninit = true\n\n[rust.env]\nRUSTFLAGS = \"-Copt-level=1\"\nCARGO_HOME = \"/x\"\nLEVEL = 3\n"
        );
        let found = spans(&text, None);
        assert_eq!(
            found,
            [
                ("invalid-value", "\"a b\"".to_owned()),
                ("invalid-type", "3".to_owned()),
                ("invalid-value", "\"1.96;x\"".to_owned()),
                ("invalid-type", "\"no\"".to_owned()),
                ("invalid-value", "CARGO_HOME".to_owned()),
                ("invalid-type", "3".to_owned()),
            ],
            "{text}"
        );
        let messages: Vec<String> = check(&text, None)
            .into_iter()
            .map(|finding| finding.message)
            .collect();
        assert!(
            messages[0].contains("not a system package name"),
            "{messages:?}"
        );
        assert!(
            messages[4].contains("set by Arca for every build"),
            "{messages:?}"
        );
        let clean = format!(
            "{COMPLETE}packages = [\"make\"]\ntoolchain = \"1.96\"\nproxy = false\nenv = {{ RUSTFLAGS = \"-g\" }}\n"
        );
        assert!(check(&clean, None).is_empty(), "{:?}", check(&clean, None));
        let builder = parse_builder_settings(&clean);
        assert_eq!(builder.packages, ["make"]);
        assert_eq!(builder.toolchain.as_deref(), Some("1.96"));
        assert_eq!(builder.env, [("RUSTFLAGS".to_owned(), "-g".to_owned())]);
        assert_eq!((builder.proxy, builder.init), (Some(false), None));
    }

    #[test]
    fn parse_settings_extracts_only_well_typed_values() {
        let text = "rust = { profile = \"dev\", features = [\"a\", \"b\"], bin = 3, base_image = \"busybox\" }";
        assert_eq!(
            parse_settings(text),
            RustConfig {
                profile: Some("dev".into()),
                features: Some(vec!["a".into(), "b".into()]),
                bin: None,
                base_image: Some("busybox".into()),
            }
        );
        assert_eq!(
            parse_settings("[rust]\nfeatures = []\n").features,
            Some(vec![])
        );
        assert_eq!(
            parse_settings("[rust]\nfeatures = [\"a\", 1]\n").features,
            None
        );
        assert_eq!(
            parse_settings("rust.profile = \"x\"").profile.as_deref(),
            Some("x")
        );
        assert_eq!(
            parse_settings("[rust\nprofile = \"x\""),
            RustConfig::default()
        );
        assert_eq!(parse_settings("rust = 1"), RustConfig::default());
    }
}

#[cfg(test)]
mod push_to_tests {
    use super::*;
    use crate::config::settings::parse_push_to;

    const BASE: &str = "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"busybox\"\n";

    #[test]
    fn push_to_is_checked_with_a_range_on_its_value() {
        let clean = format!("{BASE}push_to = \"localhost:5000/team/demo\"\n");
        assert_eq!(check(&clean, None), Vec::new());
        assert_eq!(
            parse_push_to(&clean).as_deref(),
            Some("localhost:5000/team/demo")
        );
        let digest = format!("localhost:5000/demo@sha256:{}", "a".repeat(64));
        for (value, code, says) in [
            (
                "localhost:5000/Demo",
                Code::InvalidImage,
                "not a valid push destination",
            ),
            ("localhost:5000/demo:-x", Code::InvalidImage, "tag"),
            (digest.as_str(), Code::InvalidImage, "not a digest"),
            ("  ", Code::EmptyValue, "push_to"),
        ] {
            let text = format!("{BASE}push_to = \"{value}\"\n");
            let findings = check(&text, None);
            assert_eq!(findings.len(), 1, "{value}: {findings:?}");
            assert_eq!(findings[0].code, code, "{value}");
            assert_eq!(findings[0].severity, Severity::Error);
            assert!(
                findings[0].message.contains(says),
                "{}",
                findings[0].message
            );
            assert!(
                text[findings[0].span.clone()].contains(value),
                "{value}: {:?}",
                findings[0].span
            );
        }
        let wrong_type = format!("{BASE}push_to = 5000\n");
        assert_eq!(check(&wrong_type, None)[0].code, Code::InvalidType);
        assert_eq!(parse_push_to(&wrong_type), None);
    }
}

#[cfg(test)]
mod platforms_tests {
    use super::*;
    use crate::config::settings::parse_builder_settings;
    use crate::platform::parse_list;

    const BASE: &str = "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"busybox\"\n";

    fn with(platforms: &str) -> String {
        format!("{BASE}platforms = {platforms}\n")
    }

    fn apply(text: &str, fix: &Fix) -> String {
        let mut edits = fix.edits.clone();
        edits.sort_by_key(|edit| std::cmp::Reverse(edit.span.start));
        let mut out = text.to_owned();
        for edit in edits {
            out.replace_range(edit.span, &edit.new_text);
        }
        out
    }

    /// The fix titled `title` of the only finding, applied.
    fn fixed(text: &str, title: &str) -> String {
        let findings = check(text, None);
        assert_eq!(findings.len(), 1, "{text}: {findings:?}");
        let fix = findings[0]
            .fixes
            .iter()
            .find(|fix| fix.title == title)
            .unwrap_or_else(|| panic!("no fix {title:?} in {:?}", findings[0].fixes));
        apply(text, fix)
    }

    #[test]
    fn platform_lists_the_build_accepts_are_clean() {
        let all: Vec<String> = Platform::names()
            .iter()
            .map(|name| format!("\"{name}\""))
            .collect();
        let every = format!("[{}]", all.join(", "));
        for list in [
            "[\"linux/amd64\", \"linux/arm64\"]",
            "[\"linux/arm/v7\"]",
            "['linux/amd64,linux/arm64']",
            "[ \"LINUX/AMD64\" , \" linux/arm \" ]",
            "[\n  \"linux/amd64\", # here\n  \"linux/riscv64\",\n]",
            every.as_str(),
        ] {
            let text = with(list);
            assert_eq!(check(&text, None), Vec::new(), "{text}");
            let written = parse_builder_settings(&text).platforms.expect("a list");
            assert!(parse_list(&written).is_ok_and(|p| !p.is_empty()), "{list}");
        }
        // Dotted keys are read (and located) the same.
        let dotted = "rust.profile = \"dev\"\nrust.features = []\nrust.base_image = \"busybox\"\nrust.platforms = [\"linux/arm64\", \"linux/amr64\"]\n";
        let findings = check(dotted, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(&dotted[findings[0].span.clone()], "\"linux/amr64\"");
    }

    #[test]
    fn an_unknown_platform_is_an_error_on_its_entry_with_the_closest_as_a_fix() {
        let text = with("[\"linux/amd64\", \"linux/amr64\"]");
        let findings = check(&text, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(
            (finding.code, finding.severity),
            (Code::InvalidValue, Severity::Error)
        );
        assert_eq!(&text[finding.span.clone()], "\"linux/amr64\"");
        let error = Platform::parse("linux/amr64").unwrap_err();
        assert_eq!(finding.message, error.message);
        assert!(
            finding
                .message
                .contains("Valid platforms: linux/amd64, linux/arm64"),
            "{}",
            finding.message
        );
        let titles: Vec<&str> = finding.fixes.iter().map(|fix| fix.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Use platform `linux/arm64`",
                "Remove `linux/amr64` from platforms"
            ]
        );
        let used = fixed(&text, "Use platform `linux/arm64`");
        assert_eq!(used, with("[\"linux/amd64\", \"linux/arm64\"]"));
        assert_eq!(check(&used, None), Vec::new());
        let removed = fixed(&text, "Remove `linux/amr64` from platforms");
        assert_eq!(removed, with("[\"linux/amd64\"]"));
        assert_eq!(check(&removed, None), Vec::new());

        // Nothing close: the message still lists the valid platforms, and
        // removal is the only fix.
        let text = with("[\"plan9/amd64\"]");
        let finding = &check(&text, None)[0];
        assert!(finding.message.contains("Linux images only"), "{finding:?}");
        assert!(finding.message.contains("linux/riscv64"), "{finding:?}");
        assert_eq!(finding.fixes.len(), 1, "{finding:?}");
        assert_eq!(
            fixed(&text, "Remove `plan9/amd64` from platforms"),
            with("[]")
        );
        // Several platforms in one entry (as `--platform a,b`): the bad one
        // is named, and the entry is not replaced by one platform.
        let text = with("[\"linux/amd64,linux/amr64\"]");
        let finding = &check(&text, None)[0];
        assert!(finding.message.contains("`linux/amr64`"), "{finding:?}");
        assert_eq!(&text[finding.span.clone()], "\"linux/amd64,linux/amr64\"");
        assert!(
            finding
                .fixes
                .iter()
                .all(|fix| !fix.title.starts_with("Use")),
            "{finding:?}"
        );
    }

    #[test]
    fn a_platform_named_twice_is_a_warning_whose_fix_removes_it() {
        let text = with("[\"linux/arm64\", \"linux/amd64\", \"linux/arm64/v8\"]");
        let findings = check(&text, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(
            (finding.code, finding.severity),
            (Code::InvalidValue, Severity::Warning)
        );
        assert_eq!(&text[finding.span.clone()], "\"linux/arm64/v8\"");
        assert_eq!(
            finding.message,
            "`linux/arm64/v8` is `linux/arm64`, already listed as `linux/arm64`: each platform is built once. Remove this entry."
        );
        let removed = fixed(&text, "Remove `linux/arm64/v8` from platforms");
        assert_eq!(removed, with("[\"linux/arm64\", \"linux/amd64\"]"));
        assert_eq!(check(&removed, None), Vec::new());

        let text = with("[\"linux/amd64\", \"linux/amd64\", \"linux/386\"]");
        let finding = &check(&text, None)[0];
        assert_eq!(
            finding.message,
            "`linux/amd64` is already listed: each platform is built once. Remove this entry."
        );
        assert_eq!(finding.span.start, text.rfind("\"linux/amd64\"").unwrap());
        assert_eq!(
            fixed(&text, "Remove `linux/amd64` from platforms"),
            with("[\"linux/amd64\", \"linux/386\"]")
        );
        // Inside one entry: a warning, with no fix that would drop the
        // entry's other platform.
        let text = with("[\"linux/amd64\", \"linux/arm64,linux/x86_64\"]");
        let findings = check(&text, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0].fixes.is_empty(), "{findings:?}");
        assert!(
            findings[0].message.ends_with("Remove it from this entry."),
            "{findings:?}"
        );
    }

    #[test]
    fn an_empty_list_warns_that_it_builds_for_the_engines_platform() {
        let text = with("[]");
        let findings = check(&text, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(
            (finding.code, finding.severity),
            (Code::EmptyValue, Severity::Warning)
        );
        assert_eq!(&text[finding.span.clone()], "[]");
        assert!(
            finding
                .message
                .contains("built for the engine's platform, as without the key"),
            "{}",
            finding.message
        );
        // What the message claims: the build reads `[]` as no list.
        let written = parse_builder_settings(&text).platforms.unwrap();
        assert_eq!(parse_list(&written), Ok(Vec::new()));
        let removed = fixed(&text, "Remove `platforms`");
        assert_eq!(removed, BASE);
        assert_eq!(check(&removed, None), Vec::new());
        // An empty entry names nothing either.
        let text = with("[\"linux/amd64\", \" \"]");
        let finding = &check(&text, None)[0];
        assert_eq!(
            (finding.code, finding.severity),
            (Code::EmptyValue, Severity::Warning)
        );
        assert_eq!(&text[finding.span.clone()], "\" \"");
        assert_eq!(
            fixed(&text, "Remove ` ` from platforms"),
            with("[\"linux/amd64\"]")
        );
        // Inline: no line to remove, still the warning.
        let inline = "rust = { profile = \"dev\", features = [], base_image = \"busybox\", platforms = [] }\n";
        let findings = check(inline, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, Code::EmptyValue);
        assert!(findings[0].fixes.is_empty());
    }

    #[test]
    fn wrong_types_are_located_errors() {
        let text = with("\"linux/arm64\"");
        let finding = &check(&text, None)[0];
        assert_eq!(finding.code, Code::InvalidType);
        assert!(
            finding
                .message
                .contains("`platforms` must be an array of strings"),
            "{}",
            finding.message
        );
        let wrapped = fixed(&text, "Wrap in an array: platforms = [\"linux/arm64\"]");
        assert_eq!(wrapped, with("[\"linux/arm64\"]"));
        assert_eq!(check(&wrapped, None), Vec::new());

        let text = with("[\"linux/arm64\", 64]");
        let findings = check(&text, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, Code::InvalidType);
        assert_eq!(&text[findings[0].span.clone()], "64");
        assert_eq!(
            fixed(&text, "Remove `64` from platforms"),
            with("[\"linux/arm64\"]")
        );
        let table = format!("{BASE}[rust.platforms]\namd64 = true\n");
        let findings = check(&table, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, Code::InvalidType);
        assert_eq!(&table[findings[0].span.clone()], "platforms");
    }

    #[test]
    fn huge_values_and_lists_give_short_messages_and_bounded_findings() {
        let long = format!("linux/{}", "a".repeat(5_000_000));
        let text = with(&format!("[\"{long}\"]"));
        let findings = check(&text, None);
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].message.len() < 400,
            "{}",
            findings[0].message.len()
        );
        assert!(
            findings[0].message.contains("linux/aaa"),
            "{}",
            findings[0].message
        );
        let many = with(&format!("[{}]", "\"linux/amd64\", ".repeat(100_000)));
        let started = std::time::Instant::now();
        let findings = check(&many, None);
        assert_eq!(findings.len(), MAX_FINDINGS);
        assert!(findings.iter().all(|f| f.severity == Severity::Warning));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
