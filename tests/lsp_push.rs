//! `arca.push` through the language server over stdio, to a real registry
//! (Debian's `docker-registry` on loopback): `$/progress` on a server-created
//! token, the answer `{ref, tag, bytesSent}`, the status object's `pushed`,
//! and a clear error for a bad destination.

#[path = "common/registry.rs"]
mod registry;
mod support;

use std::time::Duration;

use arca::registry::fixture::{self, Form};
use arca::store::Store;
use serde_json::{Value, json};
use support::lsp_client::{COMPLETE_CONFIG, Workspace, crate_uri, vscode_capabilities};

#[test]
fn push_reports_progress_answers_the_reference_and_updates_the_status() {
    if !registry::tools_present() {
        return;
    }
    let registry = registry::Registry::start(None, None);
    let workspace = Workspace::new();
    let config = format!(
        "{COMPLETE_CONFIG}push_to = \"{}/lsp/demo\"\n",
        registry.address
    );
    let demo = workspace.demo_crate("demo", "demo", Some(&config));
    let store = Store::at(workspace.home.join("containers"));
    let layers = vec![
        fixture::layer_tar(&[("base", &[7u8; 300_000][..])]),
        fixture::layer_tar(&[("app", b"binary v1")]),
    ];
    fixture::write_artifact(&store, "lsp00001", &demo, &layers, Form::Layout).unwrap();
    let uri = crate_uri(&demo);
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());
    let before = server.expect("arca/status", "the first status", |p| {
        p["crate"] == uri.as_str()
    });
    assert_eq!(before["pushed"], Value::Null);

    let result = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.push", "arguments": [{"crate": uri}]}),
        )
        .expect("arca.push succeeds");
    let tag = format!("{}/lsp/demo:demo-lsp00001", registry.address);
    assert_eq!(result["tag"], tag.as_str());
    let reference = result["ref"].as_str().unwrap().to_owned();
    assert!(reference.starts_with(&format!("{}/lsp/demo@sha256:", registry.address)));
    assert!(result["bytesSent"].as_u64().unwrap() > 300_000);

    let end = server.expect("$/progress", "progress end", |p| {
        p["value"]["kind"] == "end"
    });
    assert!(
        end["value"]["message"]
            .as_str()
            .unwrap()
            .contains(&reference),
        "{end}"
    );
    let progress = server.take_all("$/progress");
    assert_eq!(
        progress.first().map(|p| p["value"]["kind"].clone()),
        Some(json!("begin"))
    );
    assert!(
        progress.iter().any(|p| p["value"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Uploaded layer"))),
        "{progress:#?}"
    );

    // The record changed on disk: the watcher sends the status with `pushed`.
    let status = server.expect("arca/status", "a status with pushed", |p| {
        p["crate"] == uri.as_str() && !p["pushed"].is_null()
    });
    assert_eq!(status["pushed"]["ref"], reference.as_str());
    assert!(status["pushed"]["at"].as_u64().unwrap() > 0);

    // Pushing again sends nothing.
    let again = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.push", "arguments": [{"crate": uri}]}),
        )
        .unwrap();
    assert_eq!(again["bytesSent"], 0);
    assert_eq!(again["ref"], reference.as_str());

    let error = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.push", "arguments": [{"crate": uri, "to": "localhost:5000/Bad"}]}),
        )
        .expect_err("an invalid destination fails");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a valid push destination"),
        "{error}"
    );
    server.drain(Duration::from_millis(100));
}

#[test]
fn arca_cancel_stops_a_running_push_and_nothing_is_recorded() {
    if !registry::tools_present() {
        return;
    }
    let registry = registry::Registry::start(None, None);
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let store = Store::at(workspace.home.join("containers"));
    let big: Vec<u8> = (0..96u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let layers = vec![fixture::layer_tar(&[("big.bin", &big)])];
    let artifact =
        fixture::write_artifact(&store, "cancel01", &demo, &layers, Form::Layout).unwrap();
    let uri = crate_uri(&demo);
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());
    let to = format!("{}/cancel/demo", registry.address);
    let push = server.send_request(
        "workspace/executeCommand",
        json!({"command": "arca.push", "arguments": [{"crate": uri, "to": to}]}),
    );
    // A second push of the same crate is refused while the first runs.
    let second = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.push", "arguments": [{"crate": uri, "to": to}]}),
        )
        .expect_err("one operation per crate");
    assert!(
        second["message"].as_str().unwrap().contains("is running"),
        "{second}"
    );
    server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.cancel", "arguments": [{"crate": uri}]}),
        )
        .unwrap();
    let error = server.response(push).expect_err("the push was cancelled");
    assert_eq!(error["code"], -32800, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Nothing was recorded")
            || error["message"]
                .as_str()
                .unwrap()
                .contains("nothing was recorded"),
        "{error}"
    );
    let record = store
        .select(&artifact.metadata.artifact_id)
        .unwrap()
        .remove(0);
    assert_eq!(record.metadata.uploaded_ref, None);

    // The crate is free again: the next push completes.
    let done = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.push", "arguments": [{"crate": uri, "to": to}]}),
        )
        .expect("the push after the cancel succeeds");
    assert!(done["ref"].as_str().unwrap().contains("@sha256:"));
    server.drain(Duration::from_millis(100));
}
