//! `arca/status` driven only by writes on disk: the server's own watcher,
//! never a client notification (Neovim on Linux sends none).

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::lsp_client::{
    COMPLETE_CONFIG, Server, Workspace, crate_uri, neovim_capabilities, vscode_capabilities,
};

/// Asserts no `arca/status` for `uri` arrives within `window`.
fn quiet(server: &mut Server, uri: &str, window: Duration) {
    if let Some(status) = server.wait_for("arca/status", window, |params| params["crate"] == uri) {
        panic!("unexpected status change: {status}");
    }
}

fn reasons(status: &Value) -> Vec<String> {
    status["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_artifact_written_by_the_cli_turns_missing_into_fresh() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let fingerprint = workspace.cli_fingerprint(&demo);
    let uri = crate_uri(&demo);
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], neovim_capabilities());
    let missing = server.status(&uri, "missing");
    assert_eq!(missing["fingerprint"], fingerprint.as_str());
    assert_eq!(missing["name"], "demo");
    assert_eq!(missing["artifact"], Value::Null);

    workspace.store_artifact(&demo, "ab12cd34", &fingerprint);
    let fresh = server.status(&uri, "fresh");
    assert_eq!(fresh["artifact"]["id"], "ab12cd34");
    assert_eq!(fresh["artifact"]["tag"], "arca-local:demo-ab12cd34");
    assert_eq!(fresh["artifact"]["fingerprint"], fingerprint.as_str());
    assert!(fresh["artifact"]["createdAt"].as_u64().unwrap() > 0);

    // Removing the record (arca prune in a terminal) makes it missing again.
    std::fs::remove_dir_all(workspace.home.join("containers/ab12cd34")).unwrap();
    server.status(&uri, "missing");
}

#[test]
fn edits_on_disk_turn_fresh_to_stale_and_reverting_turns_it_back() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let fingerprint = workspace.cli_fingerprint(&demo);
    workspace.store_artifact(&demo, "ab12cd34", &fingerprint);
    let uri = crate_uri(&demo);
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());
    server.status(&uri, "fresh");

    let main = demo.join("src/main.rs");
    let original = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, "fn main() { println!(\"changed\"); }\n").unwrap();
    let stale = server.status(&uri, "stale");
    assert_eq!(reasons(&stale), vec!["src/main.rs changed"], "{stale}");
    assert!(stale["message"].as_str().unwrap().contains("src/main.rs"));

    std::fs::write(&main, &original).unwrap();
    let fresh = server.status(&uri, "fresh");
    assert_eq!(fresh["fingerprint"], fingerprint.as_str());

    // Build output and VCS data are not inputs.
    std::fs::create_dir_all(demo.join("target/release")).unwrap();
    std::fs::write(demo.join("target/release/demo"), "binary").unwrap();
    std::fs::create_dir_all(demo.join(".git")).unwrap();
    std::fs::write(demo.join(".git/index"), "x").unwrap();
    quiet(&mut server, &uri, Duration::from_millis(600));

    // Added and removed files are named too, new directories included.
    std::fs::create_dir_all(demo.join("src/extra")).unwrap();
    std::fs::write(demo.join("src/extra/mod.rs"), "pub fn f() {}\n").unwrap();
    let stale = server.status(&uri, "stale");
    // The new directory is an input entry of its own (the stream hashes it).
    assert!(
        reasons(&stale).contains(&"src/extra/mod.rs added".to_owned()),
        "{stale}"
    );
    std::fs::remove_dir_all(demo.join("src/extra")).unwrap();
    server.status(&uri, "fresh");

    // An atomic save (write elsewhere, rename over) counts.
    std::fs::write(demo.join("src/.main.rs.tmp"), "fn main() {}\n").unwrap();
    std::fs::rename(demo.join("src/.main.rs.tmp"), &main).unwrap();
    let stale = server.status(&uri, "stale");
    assert_eq!(reasons(&stale), vec!["src/main.rs changed"], "{stale}");
    std::fs::write(&main, &original).unwrap();
    server.status(&uri, "fresh");
}

#[test]
fn config_and_manifest_changes_are_reflected() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let fingerprint = workspace.cli_fingerprint(&demo);
    workspace.store_artifact(&demo, "ab12cd34", &fingerprint);
    let uri = crate_uri(&demo);
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], neovim_capabilities());
    server.status(&uri, "fresh");

    let config = demo.join(".arca/config.toml");
    std::fs::write(
        &config,
        COMPLETE_CONFIG.replace("[\"cli\"]", "[\"cli\", \"http\"]"),
    )
    .unwrap();
    let stale = server.status(&uri, "stale");
    assert!(
        reasons(&stale).contains(&"features changed".to_owned()),
        "{stale}"
    );
    std::fs::write(&config, COMPLETE_CONFIG).unwrap();
    server.status(&uri, "fresh");

    // A config missing settings a build needs: the newest artifact's
    // settings fill them in (as `arca status` does), the message says so.
    std::fs::write(&config, "[rust]\nprofile = \"dev\"\n").unwrap();
    let stale = server.status(&uri, "stale");
    assert!(
        reasons(&stale).contains(&"profile changed".to_owned())
            && stale["message"]
                .as_str()
                .unwrap()
                .contains("Judged with the settings of the newest artifact ab12cd34"),
        "{stale}"
    );
    std::fs::write(&config, COMPLETE_CONFIG).unwrap();
    server.status(&uri, "fresh");

    // A broken Cargo.toml: the fingerprint cannot be computed.
    let manifest = demo.join("Cargo.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        original.replace("version = \"0.1.0\"", "version = "),
    )
    .unwrap();
    let error = server.status(&uri, "error");
    assert_eq!(error["fingerprint"], Value::Null);
    assert!(!error["message"].as_str().unwrap().is_empty());
    std::fs::write(&manifest, &original).unwrap();
    server.status(&uri, "fresh");
}

#[test]
fn crates_come_and_go_while_the_server_runs() {
    let workspace = Workspace::new();
    let first = workspace.demo_crate("first", "first", Some(COMPLETE_CONFIG));
    let other_folder = workspace.root.parent().unwrap().join("other");
    std::fs::create_dir_all(&other_folder).unwrap();
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], neovim_capabilities());
    server.status(&crate_uri(&first), "missing");

    let second = workspace.demo_crate("second", "second", None);
    server.status(&crate_uri(&second), "unconfigured");

    std::fs::remove_dir_all(&first).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = server.request("arca/status", json!({})).unwrap();
        let uris: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|status| status["crate"].as_str().unwrap())
            .collect();
        if uris == [crate_uri(&second).as_str()] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deleted crate still listed: {uris:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A folder added to the workspace brings its crates.
    let third = other_folder.join("third");
    std::fs::create_dir_all(third.join("src")).unwrap();
    std::fs::write(
        third.join("Cargo.toml"),
        "[package]\nname = \"third\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(third.join("src/main.rs"), "fn main() {}\n").unwrap();
    server.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({"event": {"added": [{"uri": support::lsp_client::file_uri(&other_folder), "name": "other"}], "removed": []}}),
    );
    server.status(&crate_uri(&third), "unconfigured");
}

#[test]
fn at_the_watch_limit_the_server_polls_and_says_so() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let fingerprint = workspace.cli_fingerprint(&demo);
    workspace.store_artifact(&demo, "ab12cd34", &fingerprint);
    let uri = crate_uri(&demo);
    // Two native watches: the rest of the tree must be polled.
    let mut server = Server::start(support::lsp_client::Options {
        arca_home: &workspace.home,
        env: vec![("ARCA_MAX_WATCHES", "2".to_owned())],
    });
    server.initialize(&[&workspace.root], neovim_capabilities());
    let notice = server.expect("window/logMessage", "polling notice", |params| {
        params["message"]
            .as_str()
            .is_some_and(|message| message.contains("inotify") && message.contains("poll"))
    });
    assert_eq!(notice["type"], 2, "a warning: {notice}");
    server.status(&uri, "fresh");
    std::fs::write(
        demo.join("src/main.rs"),
        "fn main() { println!(\"polled\"); }\n",
    )
    .unwrap();
    let stale = server.status(&uri, "stale");
    assert_eq!(reasons(&stale), vec!["src/main.rs changed"], "{stale}");
}

/// A crate built with its settings given as flags (no saved config) is
/// judged against its newest artifact's settings, as `arca status` judges
/// it, and the message says so; never `unconfigured` meanwhile.
#[test]
fn without_saved_settings_the_newest_artifact_settings_judge_the_crate() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let fingerprint = workspace.cli_fingerprint(&demo);
    workspace.store_artifact(&demo, "ab12cd34", &fingerprint);
    std::fs::remove_file(demo.join(".arca/config.toml")).unwrap();
    let cli = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["status", "--json"])
        .arg(&demo)
        .env("ARCA_HOME", &workspace.home)
        .output()
        .expect("arca status");
    let cli: Value = serde_json::from_slice(&cli.stdout).expect("status json");
    assert_eq!(cli["state"], "fresh", "{cli}");

    let uri = crate_uri(&demo);
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], neovim_capabilities());
    let first = server.expect("arca/status", "the first status", |params| {
        params["crate"] == uri.as_str()
    });
    assert_eq!(first["state"], "fresh", "{first}");
    assert_eq!(first["fingerprint"], fingerprint.as_str());
    assert_eq!(first["artifact"]["id"], "ab12cd34");
    let message = first["message"].as_str().unwrap();
    assert!(
        message.contains("Judged with the settings of the newest artifact ab12cd34"),
        "{message}"
    );
    assert_eq!(message, cli["message"].as_str().unwrap());

    std::fs::write(
        demo.join("src/main.rs"),
        "fn main() { println!(\"changed\"); }\n",
    )
    .unwrap();
    let stale = server.status(&uri, "stale");
    assert_eq!(reasons(&stale), vec!["src/main.rs changed"], "{stale}");
}

/// The startup hash runs before the watches are set up (inotify would see
/// every open it makes): what changes in between is found by the catch-up
/// once they are. The test hook widens the window to 1.5 s.
#[test]
fn changes_before_the_first_watches_are_caught_up() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let other = workspace.demo_crate("other", "other", Some(COMPLETE_CONFIG));
    let demo_fingerprint = workspace.cli_fingerprint(&demo);
    let other_fingerprint = workspace.cli_fingerprint(&other);
    workspace.store_artifact(&demo, "ab12cd34", &demo_fingerprint);
    support::lsp_client::store_artifact(
        &workspace.home,
        &other,
        "other",
        &["cli"],
        "ef56ab78",
        &other_fingerprint,
    );
    let (demo_uri, other_uri) = (crate_uri(&demo), crate_uri(&other));
    let mut server = Server::start(support::lsp_client::Options {
        arca_home: &workspace.home,
        env: vec![("ARCA_TEST_WATCH_DELAY_MS", "1500".to_owned())],
    });
    server.initialize(&[&workspace.root], neovim_capabilities());
    server.status(&demo_uri, "fresh");
    server.status(&other_uri, "fresh");

    // Both hashed, no watch in place yet: a source edit and a config edit.
    std::fs::write(demo.join("src/main.rs"), "fn main() { println!(\"x\"); }\n").unwrap();
    std::fs::write(
        other.join(".arca/config.toml"),
        COMPLETE_CONFIG.replace("[\"cli\"]", "[]"),
    )
    .unwrap();
    let stale = server.status(&demo_uri, "stale");
    assert_eq!(reasons(&stale), vec!["src/main.rs changed"], "{stale}");
    let stale = server.status(&other_uri, "stale");
    assert!(
        reasons(&stale).contains(&"features changed".to_owned()),
        "{stale}"
    );
    // And the watches work from then on.
    std::fs::write(other.join(".arca/config.toml"), COMPLETE_CONFIG).unwrap();
    server.status(&other_uri, "fresh");
}
