//! The VS Code extension's JSON schema for `.arca/config.toml`
//! (editors/vscode/schemas) must describe exactly the keys and types of
//! `config::schema`, the table the checker, completion and hover use (and
//! offer exactly the platforms `platform` knows).

use arca::config::schema::{RUST_KEYS, RUST_TABLE, ValueKind};
use serde_json::Value;

fn vscode_schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/editors/vscode/schemas/arca-config.schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the schema"))
        .expect("the schema is JSON")
}

#[test]
fn the_vscode_schema_matches_config_schema() {
    let schema = vscode_schema();
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown tables are flagged"
    );
    let table = &schema["properties"][RUST_TABLE];
    assert_eq!(table["type"], "object");
    assert_eq!(
        table["additionalProperties"], false,
        "unknown keys are flagged"
    );
    let properties = table["properties"].as_object().expect("[rust] properties");
    let mut in_json: Vec<&str> = properties.keys().map(String::as_str).collect();
    let mut in_rust: Vec<&str> = RUST_KEYS.iter().map(|spec| spec.name).collect();
    in_json.sort_unstable();
    in_rust.sort_unstable();
    assert_eq!(in_json, in_rust, "the same [rust] keys");
    for spec in RUST_KEYS {
        let property = &properties[spec.name];
        match spec.kind {
            ValueKind::String => {
                assert_eq!(property["type"], "string", "{}", spec.name);
                // `empty-value`: the checker refuses empty and blank values.
                assert_eq!(property["minLength"], 1, "{}", spec.name);
            }
            ValueKind::StringArray => {
                assert_eq!(property["type"], "array", "{}", spec.name);
                assert_eq!(property["items"]["type"], "string", "{}", spec.name);
            }
            ValueKind::Bool => assert_eq!(property["type"], "boolean", "{}", spec.name),
            ValueKind::StringTable => {
                assert_eq!(property["type"], "object", "{}", spec.name);
                assert_eq!(
                    property["additionalProperties"]["type"], "string",
                    "{}",
                    spec.name
                );
            }
        }
        assert!(
            property["description"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "{} is documented",
            spec.name
        );
    }
}

#[test]
fn the_vscode_schema_offers_exactly_the_platforms_arca_builds_for() {
    let schema = vscode_schema();
    let platforms = &schema["properties"][RUST_TABLE]["properties"]["platforms"];
    let names: Vec<&str> = platforms["items"]["enum"]
        .as_array()
        .expect("an enum of platform names")
        .iter()
        .map(|name| name.as_str().expect("a name"))
        .collect();
    assert_eq!(names, arca::platform::Platform::names());
    assert_eq!(platforms["uniqueItems"], true);
    assert_eq!(
        platforms["items"]["enum"],
        arca::config::schema::json_schema()["properties"][RUST_TABLE]["properties"]["platforms"]["items"]
            ["enum"]
    );
}
