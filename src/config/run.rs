//! The `[run]` table of `.arca/config.toml`: how `arca run` (and the
//! editors' Run Image) starts the crate's image — program arguments,
//! environment, published ports and GPU access.
//!
//! One place for the keys (with documentation for hover and completion),
//! the checks (located findings, like [`super::checker`]) and the parsed
//! [`RunConfig`]. Pure: no IO.

use std::ops::Range;

use toml_edit::{Document, Item, Key, TableLike, Value};

use super::finding::{Code, Finding, Severity};
use crate::engine::{GpuRequest, PortSpec};

/// The table's name.
pub const RUN_TABLE: &str = "run";

/// One key of `[run]`, documented for hover and completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunKey {
    pub name: &'static str,
    pub summary: &'static str,
    /// Markdown.
    pub doc: &'static str,
    /// The value completion inserts.
    pub snippet: &'static str,
}

/// Every key of `[run]`.
pub const RUN_KEYS: [RunKey; 4] = [
    RunKey {
        name: "args",
        summary: "Arguments passed to the program",
        doc: "**args** — arguments passed to the program when the image runs \
              (`arca run`, Run Image). Arguments after `arca run PATH --` replace them.\n\n\
              ```toml\n[run]\nargs = [\"--port\", \"8080\"]\n```",
        snippet: "args = []",
    },
    RunKey {
        name: "env",
        summary: "Environment variables of the running container",
        doc: "**env** — environment variables set in the running container, as a table \
              of strings.\n\n```toml\n[run]\nenv = { RUST_LOG = \"info\" }\n```",
        snippet: "env = {}",
    },
    RunKey {
        name: "ports",
        summary: "Ports published on the engine's host",
        doc: "**ports** — container ports published on the engine's host, like \
              `docker run -p`: `\"HOST:CONTAINER\"`, `\"CONTAINER\"` (the engine picks the \
              host port), with an optional `/tcp` or `/udp`.\n\n\
              ```toml\n[run]\nports = [\"8080:80\", \"5353:53/udp\"]\n```",
        snippet: "ports = []",
    },
    RunKey {
        name: "gpus",
        summary: "GPU access: \"all\" or a number of GPUs",
        doc: "**gpus** — GPU access for CUDA images, like `docker run --gpus`: `\"all\"` or a \
              number of GPUs. The engine's host needs the NVIDIA Container Toolkit.\n\n\
              ```toml\n[run]\ngpus = \"all\"\n```",
        snippet: "gpus = \"all\"",
    },
];

/// Markdown for the `[run]` table itself.
pub const RUN_TABLE_DOC: &str = "**[run]** — how `arca run` and the editors' Run Image start \
     this crate's newest image: `args`, `env`, `ports`, `gpus`. The container runs with the \
     engine's init (so Ctrl-C and `docker stop` work) and is removed when it exits.";

/// The spec of a `[run]` key.
pub fn key(name: &str) -> Option<&'static RunKey> {
    RUN_KEYS.iter().find(|spec| spec.name == name)
}

/// The parsed `[run]` table (empty when absent or not TOML; only
/// well-formed values are taken).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<PortSpec>,
    pub gpus: Option<GpuRequest>,
}

/// Reads the `[run]` table of a config text.
pub fn parse(text: &str) -> RunConfig {
    let Ok(document) = Document::parse(text) else {
        return RunConfig::default();
    };
    let Some(run) = document
        .as_table()
        .get(RUN_TABLE)
        .and_then(Item::as_table_like)
    else {
        return RunConfig::default();
    };
    let mut config = RunConfig::default();
    if let Some(args) = run.get("args").and_then(Item::as_array) {
        config.args = args
            .iter()
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect();
    }
    if let Some(env) = run.get("env").and_then(Item::as_table_like) {
        config.env = env
            .iter()
            .filter(|(name, _)| valid_env_name(name))
            .filter_map(|(name, value)| Some((name.to_owned(), value.as_str()?.to_owned())))
            .collect();
    }
    if let Some(ports) = run.get("ports").and_then(Item::as_array) {
        config.ports = ports
            .iter()
            .filter_map(|value| parse_port(value.as_str()?).ok())
            .collect();
    }
    if let Some(gpus) = run.get("gpus").and_then(Item::as_value) {
        config.gpus = parse_gpus(gpus).ok();
    }
    config
}

/// Parses one `ports` entry: `HOST:CONTAINER[/PROTO]` or `CONTAINER[/PROTO]`.
pub fn parse_port(text: &str) -> Result<PortSpec, String> {
    let (ports, protocol) = match text.split_once('/') {
        Some((ports, protocol)) => (ports, protocol),
        None => (text, "tcp"),
    };
    if protocol != "tcp" && protocol != "udp" {
        return Err(format!(
            "the protocol must be `tcp` or `udp`, not `{}`",
            protocol.escape_debug()
        ));
    }
    let number = |part: &str, what: &str| -> Result<u16, String> {
        match part.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(format!(
                "the {what} port `{}` is not a number from 1 to 65535",
                part.escape_debug()
            )),
        }
    };
    let (host, container) = match ports.split_once(':') {
        Some((host, container)) => (Some(number(host, "host")?), number(container, "container")?),
        None => (None, number(ports, "container")?),
    };
    Ok(PortSpec {
        host,
        container,
        protocol: protocol.to_owned(),
    })
}

fn parse_gpus(value: &Value) -> Result<GpuRequest, String> {
    match value {
        Value::String(text) if text.value() == "all" => Ok(GpuRequest::All),
        Value::String(text) => Err(format!(
            "`gpus` is \"{}\"; write \"all\" or a number of GPUs, e.g. gpus = 1",
            text.value().escape_debug()
        )),
        Value::Integer(count) => match u32::try_from(*count.value()) {
            Ok(count) if count > 0 => Ok(GpuRequest::Count(count)),
            _ => Err(format!(
                "`gpus` = {} is not a positive number of GPUs; write \"all\" or a count like 1, or remove the key for none",
                count.value()
            )),
        },
        _ => Err("`gpus` must be \"all\" or a number of GPUs, e.g. gpus = \"all\"".to_owned()),
    }
}

/// A name the engine passes as `NAME=value` unchanged: not empty, not
/// starting with a digit, without `=` (where the engine splits), spaces or
/// control characters (a newline or NUL). Dots and dashes are allowed
/// (`spring.profiles.active` is a real one).
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('=')
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
        && !name.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Findings for the `[run]` item `item` (whose key is `key`) of `text`.
pub fn check(text: &str, key: &Key, item: &Item) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(table) = item.as_table_like() else {
        findings.push(error(
            Code::InvalidType,
            span_of_item(item, text).unwrap_or_else(|| span_of_key(key, text)),
            "`run` must be a table. Write a `[run]` header and put args, env, ports or gpus below it.".to_owned(),
        ));
        return findings;
    };
    check_table(text, table, &mut findings);
    findings
}

/// A NUL cannot reach a program: the kernel ends an argument or variable
/// there, so the engine would run something other than what is written.
const NUL_MESSAGE: &str = "{what} contains a NUL character (\\u0000), which no program can receive (the kernel ends the text there); remove it.";

fn check_table(text: &str, table: &dyn TableLike, findings: &mut Vec<Finding>) {
    for (name, item) in table.iter() {
        let Some((key, _)) = table.get_key_value(name) else {
            continue;
        };
        let key_span = span_of_key(key, text);
        let span = span_of_item(item, text).unwrap_or_else(|| key_span.clone());
        match name {
            "args" => match item.as_array() {
                Some(array) => {
                    for value in array.iter() {
                        let value_span = value_span(value, text).unwrap_or_else(|| span.clone());
                        match value.as_str() {
                            None => findings.push(error(
                                Code::InvalidType,
                                value_span,
                                "Each of `args` must be a string, e.g. args = [\"--port\", \"8080\"]."
                                    .to_owned(),
                            )),
                            Some(arg) if arg.contains('\0') => findings.push(error(
                                Code::InvalidType,
                                value_span,
                                NUL_MESSAGE.replace("{what}", "This argument"),
                            )),
                            Some(_) => {}
                        }
                    }
                }
                None => findings.push(error(
                    Code::InvalidType,
                    span,
                    "`args` must be an array of strings, e.g. args = [\"--port\", \"8080\"]."
                        .to_owned(),
                )),
            },
            "env" => match item.as_table_like() {
                Some(env) => {
                    for (var, value) in env.iter() {
                        let var_span = env
                            .get_key_value(var)
                            .map(|(key, _)| span_of_key(key, text))
                            .unwrap_or_else(|| span.clone());
                        if !valid_env_name(var) {
                            findings.push(error(
                                Code::InvalidType,
                                var_span,
                                format!(
                                    "`{}` is not a valid environment variable name: it may not be empty, start with a digit, or hold `=`, spaces or control characters (the engine would pass another variable). Use letters, digits and underscores.",
                                    var.escape_debug()
                                ),
                            ));
                        } else if !value.is_str() {
                            findings.push(error(
                                Code::InvalidType,
                                span_of_item(value, text).unwrap_or(var_span),
                                format!(
                                    "The value of `{var}` must be a string; quote it, e.g. {var} = \"1\"."
                                ),
                            ));
                        } else if value.as_str().is_some_and(|value| value.contains('\0')) {
                            findings.push(error(
                                Code::InvalidType,
                                span_of_item(value, text).unwrap_or(var_span),
                                NUL_MESSAGE.replace("{what}", &format!("The value of `{var}`")),
                            ));
                        }
                    }
                }
                None => findings.push(error(
                    Code::InvalidType,
                    span,
                    "`env` must be a table of strings, e.g. env = { RUST_LOG = \"info\" }."
                        .to_owned(),
                )),
            },
            "ports" => match item.as_array() {
                Some(array) => {
                    for value in array.iter() {
                        let value_span = value_span(value, text).unwrap_or_else(|| span.clone());
                        match value.as_str() {
                            Some(port) => {
                                if let Err(reason) = parse_port(port) {
                                    findings.push(error(
                                        Code::InvalidType,
                                        value_span,
                                        format!(
                                            "Port \"{}\": {reason}. Write \"HOST:CONTAINER\" like \"8080:80\", or \"CONTAINER\".",
                                            port.escape_debug()
                                        ),
                                    ));
                                }
                            }
                            None => findings.push(error(
                                Code::InvalidType,
                                value_span,
                                "Each port must be a string like \"8080:80\".".to_owned(),
                            )),
                        }
                    }
                }
                None => findings.push(error(
                    Code::InvalidType,
                    span,
                    "`ports` must be an array of strings, e.g. ports = [\"8080:80\"].".to_owned(),
                )),
            },
            "gpus" => {
                let result = item
                    .as_value()
                    .map(parse_gpus)
                    .unwrap_or_else(|| Err("`gpus` must be \"all\" or a number of GPUs".into()));
                if let Err(reason) = result {
                    findings.push(error(Code::InvalidType, span, format!("{reason}.")));
                }
            }
            other => findings.push(Finding {
                code: Code::UnknownKey,
                severity: Severity::Warning,
                span: key_span,
                message: format!(
                    "Unknown key `{}` in [run]; Arca ignores it. The keys are args, env, ports and gpus.",
                    other.escape_debug()
                ),
                fixes: Vec::new(),
            }),
        }
    }
}

fn error(code: Code, span: Range<usize>, message: String) -> Finding {
    Finding {
        code,
        severity: Severity::Error,
        span,
        message,
        fixes: Vec::new(),
    }
}

fn span_of_key(key: &Key, text: &str) -> Range<usize> {
    clamp(text, key.span().unwrap_or(0..0))
}

fn span_of_item(item: &Item, text: &str) -> Option<Range<usize>> {
    let span = match item {
        Item::Value(value) => value.span(),
        Item::Table(table) => table.span(),
        Item::ArrayOfTables(array) => array.span(),
        Item::None => None,
    }?;
    Some(clamp(text, span))
}

fn value_span(value: &Value, text: &str) -> Option<Range<usize>> {
    value.span().map(|span| clamp(text, span))
}

fn clamp(text: &str, span: Range<usize>) -> Range<usize> {
    let mut start = span.start.min(text.len());
    let mut end = span.end.min(text.len()).max(start);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}
