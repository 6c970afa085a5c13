//! Diagnostics, quick fixes, completion and hover on `.arca/config.toml`
//! through the real server (PROTOCOL.md "Diagnostics").

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::lsp_client::{
    COMPLETE_CONFIG, Server, Workspace, file_uri, neovim_capabilities, vscode_capabilities,
};

/// The text an LSP range covers, converting UTF-16 columns back to bytes
/// independently of the server.
fn covered<'a>(text: &'a str, range: &Value) -> &'a str {
    let offset = |position: &Value| {
        let line = position["line"].as_u64().unwrap() as usize;
        let character = position["character"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        let mut units = 0;
        for (index, ch) in text[start..].char_indices() {
            if units >= character || ch == '\n' {
                return start + index;
            }
            units += ch.len_utf16();
        }
        text.len()
    };
    &text[offset(&range["start"])..offset(&range["end"])]
}

fn codes(diagnostics: &[Value]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|diagnostic| diagnostic["code"].as_str().unwrap().to_owned())
        .collect()
}

fn find<'a>(diagnostics: &'a [Value], code: &str) -> &'a Value {
    diagnostics
        .iter()
        .find(|diagnostic| diagnostic["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {diagnostics:#?}"))
}

struct Fixture {
    workspace: Workspace,
    server: Server,
    uri: String,
    version: i64,
}

impl Fixture {
    /// A crate with two binaries (`demo`, `tool`) when `two_bins`, with
    /// features cli/http and a `fast` profile; the config on disk as given.
    fn new(config: &str, two_bins: bool) -> Self {
        let workspace = Workspace::new();
        let demo = workspace.demo_crate("demo", "demo", Some(config));
        if two_bins {
            workspace.write("demo/src/bin/tool.rs", "fn main() {}\n");
        }
        let mut server = workspace.start();
        server.initialize(&[&workspace.root], vscode_capabilities());
        let uri = file_uri(&demo.join(".arca/config.toml"));
        // The crate's facts are known once its first status is out.
        let crate_uri = support::lsp_client::crate_uri(&demo);
        server.expect("arca/status", "first status", |params| {
            params["crate"] == crate_uri.as_str()
        });
        server.discard("textDocument/publishDiagnostics");
        Self {
            workspace,
            server,
            uri,
            version: 0,
        }
    }

    /// didOpen (first call) or didChange with `text`; the diagnostics
    /// published for that version.
    fn edit(&mut self, text: &str) -> Vec<Value> {
        self.version += 1;
        let version = self.version;
        if version == 1 {
            self.server.notify(
                "textDocument/didOpen",
                json!({"textDocument": {"uri": self.uri, "languageId": "toml", "version": 1, "text": text}}),
            );
        } else {
            self.server.notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": self.uri, "version": version}, "contentChanges": [{"text": text}]}),
            );
        }
        let params = self.server.expect(
            "textDocument/publishDiagnostics",
            &format!("version {version}"),
            |params| params["uri"] == self.uri.as_str() && params["version"] == version,
        );
        let diagnostics = params["diagnostics"].as_array().unwrap().clone();
        for diagnostic in &diagnostics {
            assert_eq!(diagnostic["source"], "arca", "{diagnostic}");
        }
        diagnostics
    }

    fn code_actions(&mut self, diagnostic: &Value) -> Vec<Value> {
        self.server
            .request(
                "textDocument/codeAction",
                json!({
                    "textDocument": {"uri": self.uri},
                    "range": diagnostic["range"],
                    "context": {"diagnostics": [diagnostic], "only": ["quickfix"]}
                }),
            )
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Applies a quick fix's edits (one document) to `text`.
fn apply(text: &str, action: &Value, uri: &str) -> String {
    let edits = action["edit"]["changes"][uri].as_array().expect("edits");
    let mut result = text.to_owned();
    let mut sorted: Vec<&Value> = edits.iter().collect();
    sorted.sort_by_key(|edit| {
        std::cmp::Reverse((
            edit["range"]["start"]["line"].as_u64(),
            edit["range"]["start"]["character"].as_u64(),
        ))
    });
    for edit in sorted {
        let replaced = covered(&result, &edit["range"]);
        let start = replaced.as_ptr() as usize - result.as_ptr() as usize;
        let end = start + replaced.len();
        result.replace_range(start..end, edit["newText"].as_str().unwrap());
    }
    result
}

#[test]
fn every_code_with_a_narrow_range_in_utf16() {
    let mut fixture = Fixture::new(COMPLETE_CONFIG, false);
    let clean = fixture.edit(COMPLETE_CONFIG);
    assert!(clean.is_empty(), "{clean:#?}");

    let cases: [(&str, &str, &[&str]); 10] = [
        ("[rust\nprofile = \"release\"\n", "toml-syntax", &[]),
        (
            "[rust]\nprofile = \"release\"\nfeatures = \"cli\"\nbase_image = \"debian:bookworm-slim\"\n",
            "invalid-type",
            &["\"cli\"", "cli"],
        ),
        (
            "[rust]\nprofle = \"release\"\nprofile = \"release\"\nfeatures = []\nbase_image = \"debian:bookworm-slim\"\n",
            "unknown-key",
            &["profle"],
        ),
        (
            "[rust]\nprofile = \"  \"\nfeatures = []\nbase_image = \"debian:bookworm-slim\"\n",
            "empty-value",
            &["\"  \"", "  "],
        ),
        (
            "[rust]\nprofile = \"nope\"\nfeatures = []\nbase_image = \"debian:bookworm-slim\"\n",
            "unknown-profile",
            &["\"nope\"", "nope"],
        ),
        (
            "[rust]\nprofile = \"release\"\nfeatures = [\"clii\"]\nbase_image = \"debian:bookworm-slim\"\n",
            "unknown-feature",
            &["\"clii\"", "clii"],
        ),
        (
            "[rust]\nprofile = \"release\"\nfeatures = []\nbin = \"dem\"\nbase_image = \"debian:bookworm-slim\"\n",
            "unknown-binary",
            &["\"dem\"", "dem"],
        ),
        (
            "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"Not A Valid::Image\"\n",
            "invalid-image",
            &["\"Not A Valid::Image\"", "Not A Valid::Image"],
        ),
        (
            "[rust]\nprofile = \"release\"\nfeatures = []\n",
            "missing-setting",
            &[],
        ),
        (
            "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"nvidia/cuda:12.8.1-runtime-ubuntu24.04\"\n",
            "cuda-builder",
            &[
                "\"nvidia/cuda:12.8.1-runtime-ubuntu24.04\"",
                "nvidia/cuda:12.8.1-runtime-ubuntu24.04",
            ],
        ),
    ];
    for (text, code, tokens) in cases {
        let diagnostics = fixture.edit(text);
        let diagnostic = find(&diagnostics, code);
        let range_text = covered(text, &diagnostic["range"]);
        if !tokens.is_empty() {
            assert!(
                tokens.contains(&range_text),
                "{code}: range covers {range_text:?}, text {text:?}"
            );
        }
        assert_ne!(range_text, text, "{code}: a whole-file range");
        let severity = diagnostic["severity"].as_u64().unwrap();
        let expected = match code {
            "unknown-key" | "missing-setting" => 2,
            "cuda-builder" => 3,
            _ => 1,
        };
        assert_eq!(severity, expected, "{code}: {diagnostic}");
        if code == "unknown-key" {
            assert!(
                diagnostic["message"].as_str().unwrap().contains("profile"),
                "{diagnostic}"
            );
        }
        if code == "cuda-builder" {
            assert!(
                diagnostic["message"]
                    .as_str()
                    .unwrap()
                    .contains("12.8.1-devel-ubuntu24.04"),
                "{diagnostic}"
            );
        }
    }

    // Non-ASCII text before the error on the same line: columns in UTF-16.
    let text = "# é😀\n[rust]\nprofile = \"release\" \nfeatures = [\"é😀\", \"clii\"]\nbase_image = \"debian:bookworm-slim\"\n";
    let diagnostics = fixture.edit(text);
    let unknown: Vec<&Value> = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic["code"] == "unknown-feature")
        .collect();
    let covered_texts: Vec<&str> = unknown
        .iter()
        .map(|diagnostic| covered(text, &diagnostic["range"]))
        .collect();
    assert!(
        covered_texts.contains(&"\"clii\"") || covered_texts.contains(&"clii"),
        "{covered_texts:?}"
    );

    // Ambiguous binary: a crate with two bins and no `bin`.
    let mut fixture = Fixture::new(COMPLETE_CONFIG, true);
    let diagnostics = fixture.edit(COMPLETE_CONFIG);
    assert_eq!(
        codes(&diagnostics),
        vec!["ambiguous-binary"],
        "{diagnostics:#?}"
    );
}

#[test]
fn did_change_follows_the_buffer_and_fixing_clears() {
    let mut fixture = Fixture::new(COMPLETE_CONFIG, false);
    assert!(fixture.edit(COMPLETE_CONFIG).is_empty());
    let broken = COMPLETE_CONFIG.replace("release", "relase");
    let diagnostics = fixture.edit(&broken);
    assert_eq!(codes(&diagnostics), vec!["unknown-profile"]);
    assert!(fixture.edit(COMPLETE_CONFIG).is_empty(), "fixing clears");

    // Closing the buffer goes back to the file on disk (which is clean).
    fixture.server.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": fixture.uri}}),
    );
    let uri = fixture.uri.clone();
    fixture.server.diagnostics(&uri, <[Value]>::is_empty);
}

#[test]
fn files_never_opened_are_checked_on_startup_and_on_disk_changes() {
    let broken = COMPLETE_CONFIG.replace("\"cli\"", "\"clii\"");
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(&broken));
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], neovim_capabilities());
    let uri = file_uri(&demo.join(".arca/config.toml"));
    let diagnostics = server.diagnostics(&uri, |list| !list.is_empty());
    assert_eq!(codes(&diagnostics), vec!["unknown-feature"]);

    // The crate's Cargo.toml gains the feature: the diagnostic goes.
    let manifest = demo.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("http = []", "http = []\nclii = []")).unwrap();
    server.diagnostics(&uri, <[Value]>::is_empty);

    // The config changes on disk: checked again.
    std::fs::write(
        demo.join(".arca/config.toml"),
        COMPLETE_CONFIG.replace("release", "nope"),
    )
    .unwrap();
    let diagnostics = server.diagnostics(&uri, |list| !list.is_empty());
    assert_eq!(codes(&diagnostics), vec!["unknown-profile"]);

    // Saved from an editor: didSave re-checks too.
    server.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri}}),
    );
    let diagnostics = server.diagnostics(&uri, |list| !list.is_empty());
    assert_eq!(codes(&diagnostics), vec!["unknown-profile"]);
    let _ = Duration::ZERO;
}

#[test]
fn quick_fixes_repair_the_fixable_codes() {
    let cases: [(&str, bool, &str, &str); 4] = [
        (
            "[rust]\nprofile = \"release\"\nfeatures = [\"clii\"]\nbase_image = \"debian:bookworm-slim\"\n",
            false,
            "unknown-feature",
            "\"cli\"",
        ),
        (
            "[rust]\nprofile = \"release\"\nfeatures = []\nbin = \"dem\"\nbase_image = \"debian:bookworm-slim\"\n",
            false,
            "unknown-binary",
            "\"demo\"",
        ),
        (
            "[rust]\nprofle = \"release\"\nfeatures = []\nbase_image = \"debian:bookworm-slim\"\n",
            false,
            "unknown-key",
            "profile",
        ),
        (COMPLETE_CONFIG, true, "ambiguous-binary", "bin"),
    ];
    for (text, two_bins, code, expected) in cases {
        let mut fixture = Fixture::new(text, two_bins);
        let diagnostics = fixture.edit(text);
        let diagnostic = find(&diagnostics, code).clone();
        let actions = fixture.code_actions(&diagnostic);
        let action = actions
            .first()
            .unwrap_or_else(|| panic!("{code}: no quick fix"));
        assert_eq!(action["kind"], "quickfix");
        assert_eq!(action["isPreferred"], true);
        assert_eq!(action["diagnostics"][0]["code"], code);
        let uri = fixture.uri.clone();
        let fixed = apply(text, action, &uri);
        assert!(fixed.contains(expected), "{code}: {fixed}");
        let after = fixture.edit(&fixed);
        assert!(
            !codes(&after).contains(&code.to_owned()),
            "{code} still reported after the fix: {fixed}\n{after:#?}"
        );
    }
}

fn labels(result: &Value) -> Vec<String> {
    let items = match result {
        Value::Array(items) => items.clone(),
        other => other["items"].as_array().cloned().unwrap_or_default(),
    };
    items
        .iter()
        .map(|item| item["label"].as_str().unwrap().to_owned())
        .collect()
}

/// Line/character (UTF-16) of the end of `needle`'s first occurrence.
fn position_after(text: &str, needle: &str) -> Value {
    let end = text.find(needle).unwrap() + needle.len();
    let line = text[..end].matches('\n').count();
    let line_start = text[..end].rfind('\n').map_or(0, |index| index + 1);
    let character: usize = text[line_start..end].chars().map(char::len_utf16).sum();
    json!({"line": line, "character": character})
}

#[test]
fn completion_offers_keys_profiles_features_binaries_and_images() {
    let mut fixture = Fixture::new(COMPLETE_CONFIG, true);
    let text = "[rust]\nprofile = \"\"\nfeatures = [\"\"]\nbin = \"\"\nbase_image = \"\"\n\n";
    fixture.edit(text);
    let uri = fixture.uri.clone();
    let mut complete = |position: Value| {
        fixture
            .server
            .request(
                "textDocument/completion",
                json!({"textDocument": {"uri": uri}, "position": position}),
            )
            .unwrap()
    };
    let profiles = labels(&complete(position_after(text, "profile = \"")));
    for profile in ["dev", "release", "fast"] {
        assert!(profiles.contains(&profile.to_owned()), "{profiles:?}");
    }
    let features = labels(&complete(position_after(text, "features = [\"")));
    assert!(
        features.contains(&"cli".to_owned()) && features.contains(&"http".to_owned()),
        "{features:?}"
    );
    let bins = labels(&complete(position_after(text, "bin = \"")));
    assert!(
        bins.contains(&"demo".to_owned()) && bins.contains(&"tool".to_owned()),
        "{bins:?}"
    );
    let images = labels(&complete(position_after(text, "base_image = \"")));
    assert!(
        images
            .iter()
            .any(|image| image.starts_with("nvidia/cuda:") && image.contains("-runtime-")),
        "{images:?}"
    );
    // Keys not yet set, at the start of a line in [rust].
    fixture.edit("[rust]\nprofile = \"release\"\n\n");
    let keys = labels(
        &fixture
            .server
            .request(
                "textDocument/completion",
                json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": 0}}),
            )
            .unwrap(),
    );
    assert!(keys.contains(&"features".to_owned()), "{keys:?}");
    assert!(keys.contains(&"base_image".to_owned()), "{keys:?}");
}

#[test]
fn hover_documents_keys_and_the_builder_image() {
    let text = "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"nvidia/cuda:12.8.1-runtime-ubuntu24.04\"\n";
    let mut fixture = Fixture::new(text, false);
    fixture.edit(text);
    let uri = fixture.uri.clone();
    let hover = fixture
        .server
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 2}}),
        )
        .unwrap();
    assert_eq!(hover["contents"]["kind"], "markdown");
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("profile"),
        "{hover}"
    );
    assert_eq!(covered(text, &hover["range"]), "profile");
    let hover = fixture
        .server
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": position_after(text, "base_image = \"nvidia")}),
        )
        .unwrap();
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("nvidia/cuda:12.8.1-devel-ubuntu24.04"),
        "{hover}"
    );
}

#[test]
fn set_defaults_edits_the_config_through_apply_edit_keeping_comments() {
    let text = "# Team defaults: keep the release profile.\n[rust]\nprofile = \"release\" # fast enough\nfeatures = [\"cli\"]\nbase_image = \"debian:bookworm-slim\"\n";
    let mut fixture = Fixture::new(text, false);
    let crate_dir = fixture.workspace.root.join("demo");
    let result = fixture
        .server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.setDefaults", "arguments": [{
                "crate": support::lsp_client::crate_uri(&crate_dir),
                "features": ["cli", "http"],
                "baseImage": "nvidia/cuda:12.8.1-runtime-ubuntu24.04"
            }]}),
        )
        .unwrap();
    assert_eq!(result, Value::Null);
    let request = fixture
        .server
        .server_requests
        .iter()
        .find(|request| request["method"] == "workspace/applyEdit")
        .expect("workspace/applyEdit sent")
        .clone();
    let changes = request["params"]["edit"]["documentChanges"]
        .as_array()
        .unwrap();
    let edit = changes
        .iter()
        .find(|change| change.get("edits").is_some())
        .expect("a text document edit");
    assert_eq!(edit["textDocument"]["uri"], fixture.uri.as_str());
    let new_text = edit["edits"][0]["newText"].as_str().unwrap();
    assert_eq!(
        covered(text, &edit["edits"][0]["range"]),
        text,
        "replaces the file"
    );
    assert!(new_text.contains("# Team defaults"), "{new_text}");
    assert!(new_text.contains("# fast enough"), "{new_text}");
    assert!(new_text.contains("\"http\""), "{new_text}");
    assert!(
        new_text.contains("nvidia/cuda:12.8.1-runtime-ubuntu24.04"),
        "{new_text}"
    );

    // Nothing to set is an InvalidParams error.
    let error = fixture
        .server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.setDefaults", "arguments": [{}]}),
        )
        .unwrap_err();
    assert_eq!(error["code"], -32602, "{error}");
}

#[test]
fn set_defaults_creates_a_missing_config() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", None);
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());
    let result = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.setDefaults", "arguments": [{"profile": "release", "features": []}]}),
        )
        .unwrap();
    assert_eq!(result, Value::Null);
    let request = server
        .server_requests
        .iter()
        .find(|request| request["method"] == "workspace/applyEdit")
        .expect("workspace/applyEdit sent")
        .clone();
    let changes = request["params"]["edit"]["documentChanges"]
        .as_array()
        .unwrap();
    assert_eq!(changes[0]["kind"], "create");
    assert_eq!(
        changes[0]["uri"],
        file_uri(&demo.join(".arca/config.toml")).as_str()
    );
    let new_text = changes[1]["edits"][0]["newText"].as_str().unwrap();
    assert!(new_text.contains("profile = \"release\""), "{new_text}");
    assert!(new_text.contains("features = []"), "{new_text}");
}

#[test]
fn platforms_are_checked_fixed_completed_and_hovered_through_the_server() {
    let mut fixture = Fixture::new(COMPLETE_CONFIG, false);
    let text = format!(
        "{COMPLETE_CONFIG}platforms = [\"linux/amd64\", \"linux/amr64\", \"linux/arm64/v8\"]\n"
    );
    let uri = fixture.uri.clone();
    let diagnostics = fixture.edit(&text);
    assert_eq!(codes(&diagnostics), ["invalid-value"], "{diagnostics:#?}");
    let unknown = &diagnostics[0];
    assert_eq!(covered(&text, &unknown["range"]), "\"linux/amr64\"");
    assert_eq!(unknown["severity"], 1);
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("Valid platforms: linux/amd64, linux/arm64"),
        "{unknown}"
    );
    let actions = fixture.code_actions(unknown);
    assert_eq!(actions[0]["title"], "Use platform `linux/arm64`");
    assert_eq!(actions[0]["isPreferred"], true);
    let fixed = apply(&text, &actions[0], &uri);
    // Now `linux/arm64/v8` names `linux/arm64` again: a warning whose fix
    // removes it.
    let diagnostics = fixture.edit(&fixed);
    assert_eq!(codes(&diagnostics), ["invalid-value"], "{diagnostics:#?}");
    let repeated = &diagnostics[0];
    assert_eq!(covered(&fixed, &repeated["range"]), "\"linux/arm64/v8\"");
    assert_eq!(repeated["severity"], 2);
    let actions = fixture.code_actions(repeated);
    let clean = apply(&fixed, &actions[0], &uri);
    assert_eq!(
        clean,
        format!("{COMPLETE_CONFIG}platforms = [\"linux/amd64\", \"linux/arm64\"]\n")
    );
    assert!(fixture.edit(&clean).is_empty());

    let typing = format!("{COMPLETE_CONFIG}platforms = [\"linux/amd64\", \"\"]\n");
    fixture.edit(&typing);
    let entries = labels(
        &fixture
            .server
            .request(
                "textDocument/completion",
                json!({"textDocument": {"uri": uri}, "position": position_after(&typing, "\"linux/amd64\", \"")}),
            )
            .unwrap(),
    );
    assert!(entries.contains(&"linux/arm64".to_owned()), "{entries:?}");
    assert!(!entries.contains(&"linux/amd64".to_owned()), "{entries:?}");
    let hover = fixture
        .server
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": position_after(&typing, "platf")}),
        )
        .unwrap();
    assert_eq!(covered(&typing, &hover["range"]), "platforms");
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .starts_with("**platforms**"),
        "{hover}"
    );
}
