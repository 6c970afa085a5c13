//! `arca lsp` as a process: capabilities, lifecycle, and never crashing or
//! hanging on what a client sends (PROTOCOL.md, issue 4).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::lsp_client::{
    COMPLETE_CONFIG, Workspace, crate_uri, neovim_capabilities, vscode_capabilities,
};

#[test]
fn initialize_advertises_the_protocol_capabilities() {
    let workspace = Workspace::new();
    let mut server = workspace.start();
    let result = server.initialize(&[&workspace.root], vscode_capabilities());
    let capabilities = &result["capabilities"];
    assert_eq!(result["serverInfo"]["name"], "arca");
    let sync = &capabilities["textDocumentSync"];
    assert_eq!(sync["openClose"], true);
    assert_eq!(sync["change"], 1, "full sync");
    assert!(sync["save"].is_object());
    let triggers: Vec<&str> = capabilities["completionProvider"]["triggerCharacters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_str().unwrap())
        .collect();
    for trigger in ["\"", "=", "[", " ", ","] {
        assert!(triggers.contains(&trigger), "trigger {trigger:?}");
    }
    assert_eq!(capabilities["hoverProvider"], true);
    assert_eq!(
        capabilities["codeActionProvider"]["codeActionKinds"],
        json!(["quickfix"])
    );
    assert_eq!(
        capabilities["executeCommandProvider"]["commands"],
        json!([
            "arca.build",
            "arca.package",
            "arca.cancel",
            "arca.setDefaults",
            "arca.push",
            "arca.run",
            "arca.stop",
            "arca.buildLog",
            "arca.sbom"
        ])
    );
    assert_eq!(
        capabilities["workspace"]["workspaceFolders"],
        json!({"supported": true, "changeNotifications": true})
    );
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn exit_without_shutdown_ends_with_code_one_and_stdin_eof_ends_the_process() {
    let workspace = Workspace::new();
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], neovim_capabilities());
    server.notify("exit", Value::Null);
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(1));

    let mut server = workspace.start();
    server.initialize(&[&workspace.root], neovim_capabilities());
    server.close_stdin();
    assert!(
        server.wait_exit(Duration::from_secs(5)).is_some(),
        "the server ends when its client goes away"
    );
}

#[test]
fn unknown_methods_and_malformed_params_get_errors_and_the_server_lives_on() {
    let workspace = Workspace::new();
    workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());

    let error = server.request("arca/nonsense", json!({})).unwrap_err();
    assert_eq!(error["code"], -32601, "MethodNotFound: {error}");

    let error = server
        .request("textDocument/hover", json!({"textDocument": 7}))
        .unwrap_err();
    assert_eq!(error["code"], -32602, "InvalidParams: {error}");

    let error = server
        .request("arca/status", json!({"crate": 12}))
        .unwrap_err();
    assert_eq!(error["code"], -32602, "InvalidParams: {error}");

    let error = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.cancel", "arguments": [{"crate": 1, "bogus": true}]}),
        )
        .unwrap_err();
    assert_eq!(error["code"], -32602, "InvalidParams: {error}");

    let error = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.explode", "arguments": []}),
        )
        .unwrap_err();
    assert_eq!(error["code"], -32602, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("arca.build"),
        "{error}"
    );

    // Garbage notifications are dropped without a word.
    server.notify("textDocument/didOpen", json!({"textDocument": "nope"}));
    server.notify("textDocument/didChange", json!(null));

    // Properties the contract does not name are ignored, not refused: a
    // client may extend its arguments.
    let uri = support::lsp_client::crate_uri(&workspace.root.join("demo"));
    let answer = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.cancel", "arguments": [{"crate": uri, "origin": "statusBar"}]}),
        )
        .unwrap();
    assert_eq!(answer, json!(null));

    // Still alive and answering.
    let statuses = server.request("arca/status", json!({})).unwrap();
    assert_eq!(statuses.as_array().unwrap().len(), 1, "{statuses}");
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn status_request_answers_all_crates_one_crate_or_invalid_params() {
    let workspace = Workspace::new();
    let a = workspace.demo_crate("a", "alpha", Some(COMPLETE_CONFIG));
    let b = workspace.demo_crate("nested/b", "beta", None);
    workspace.write(
        "lib/Cargo.toml",
        "[package]\nname = \"lib\"\nversion = \"0.1.0\"\n[workspace]\n",
    );
    workspace.write("lib/src/lib.rs", "");
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());

    let all = server.request("arca/status", json!({})).unwrap();
    let mut uris: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status["crate"].as_str().unwrap())
        .collect();
    uris.sort();
    let (a_uri, b_uri) = (crate_uri(&a), crate_uri(&b));
    assert_eq!(uris, vec![a_uri.as_str(), b_uri.as_str()]);

    let one = server
        .request("arca/status", json!({"crate": b_uri}))
        .unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["crate"], b_uri);

    let missing = crate_uri(&workspace.root.join("nope"));
    let error = server
        .request("arca/status", json!({"crate": missing}))
        .unwrap_err();
    assert_eq!(error["code"], -32602, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("nope"),
        "{error}"
    );
}

#[test]
fn build_and_package_with_no_engine_fail_clearly_and_the_server_lives_on() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());
    for command in ["arca.build", "arca.package"] {
        let error = server
            .request(
                "workspace/executeCommand",
                json!({"command": command, "arguments": [{"crate": crate_uri(&demo)}]}),
            )
            .unwrap_err();
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("Cannot reach the Docker engine") && message.contains("DOCKER_HOST"),
            "{command}: {message}"
        );
        // The failed build still opened and closed its progress.
        let begin = server.expect("$/progress", "progress begin", |params| {
            params["value"]["kind"] == "begin"
        });
        let token = begin["token"].clone();
        assert!(
            server
                .server_requests
                .iter()
                .any(
                    |request| request["method"] == "window/workDoneProgress/create"
                        && request["params"]["token"] == token
                ),
            "the token was created by the server first"
        );
        server.expect("$/progress", "progress end", |params| {
            params["token"] == token && params["value"]["kind"] == "end"
        });
    }
    // The crate is not left `building`.
    let status = server
        .request("arca/status", json!({"crate": crate_uri(&demo)}))
        .unwrap();
    assert_ne!(status[0]["state"], "building", "{status}");
    // Cancelling when nothing runs is not an error; the crate may be omitted
    // in a one-crate workspace.
    let result = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.cancel", "arguments": [{}]}),
        )
        .unwrap();
    assert_eq!(result, Value::Null);
    assert!(server.request("arca/status", json!({})).is_ok());
}

#[test]
fn a_panic_in_a_handler_is_reported_and_the_server_keeps_serving() {
    let workspace = Workspace::new();
    workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let mut server = support::lsp_client::Server::start(support::lsp_client::Options {
        arca_home: &workspace.home,
        env: vec![("ARCA_LSP_PANIC_ON", "textDocument/hover".to_owned())],
    });
    server.initialize(&[&workspace.root], vscode_capabilities());
    let config = support::lsp_client::file_uri(&workspace.root.join("demo/.arca/config.toml"));
    let error = server
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": config}, "position": {"line": 0, "character": 0}}),
        )
        .unwrap_err();
    assert_eq!(error["code"], -32603, "InternalError: {error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("internal error"),
        "{error}"
    );
    server.expect("window/logMessage", "the panic reported", |params| {
        params["type"] == 1 && params["message"].as_str().unwrap_or("").contains("hover")
    });
    // Still serving.
    assert!(server.request("arca/status", json!({})).is_ok());
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn a_client_without_workspace_folders_is_served_from_root_uri() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let mut server = workspace.start();
    server
        .request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": support::lsp_client::file_uri(&workspace.root),
                "workspaceFolders": null,
                "capabilities": {}
            }),
        )
        .unwrap();
    server.notify("initialized", json!({}));
    // A client without window.workDoneProgress still gets statuses.
    server.status(&crate_uri(&demo), "missing");
}
