//! `arca.run` and `arca.stop` through the real `arca lsp` against the real
//! Docker engine (issue 14): packaging first when the crate is missing, the
//! program's lines as `arca/output`, `running` in the status while it runs,
//! `arca.stop` stopping and removing it, a last `arca/output` with the exit
//! code; and `arca.stop`, `arca.package` on a broken config answered at once.

#[path = "common/docker.rs"]
mod docker;
mod support;

use std::time::Duration;

use serde_json::json;
use support::lsp_client::{Options, Server, crate_uri, vscode_capabilities};

const TICKS: &str = r#"
fn main() {
    println!("first line");
    loop {
        println!("tick");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
"#;

fn start(test: &docker::DockerTest) -> Server {
    let docker_host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
    let mut server = Server::start(Options {
        arca_home: test.home.path(),
        env: vec![("DOCKER_HOST", docker_host)],
    });
    server.initialize(&[&test.crate_dir], vscode_capabilities());
    server
}

fn run_containers(test: &docker::DockerTest) -> Vec<String> {
    let label = format!("{}={}", arca::runner::RUN_LABEL, test.crate_dir.display());
    test.runtime
        .block_on(test.engine.containers_with_labels(&[label.as_str()]))
        .expect("list containers")
}

#[test]
fn run_streams_output_shows_running_and_stop_removes_the_container() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    std::fs::write(test.crate_dir.join("src/main.rs"), TICKS).expect("write main.rs");
    let mut server = start(&test);
    let uri = crate_uri(&test.crate_dir);
    server.status(&uri, "missing");

    // Nothing running: stop answers null at once.
    let stopped = server.request(
        "workspace/executeCommand",
        json!({"command": "arca.stop", "arguments": [{"crate": uri}]}),
    );
    assert_eq!(stopped, Ok(serde_json::Value::Null));

    let id = server.send_request(
        "workspace/executeCommand",
        json!({"command": "arca.run", "arguments": [{"crate": uri}]}),
    );
    let result = server
        .response(id)
        .unwrap_or_else(|error| panic!("arca.run failed: {error}\n{}", server.stderr()));
    let container = result["container"].as_str().expect("container").to_owned();
    assert!(
        result["image"]
            .as_str()
            .unwrap()
            .starts_with("arca-local:hello-")
    );
    let first = server.expect("arca/output", "the first line", |params| {
        params["text"] == "first line"
    });
    assert_eq!(first["crate"], uri.as_str());
    assert_eq!(first["container"], container.as_str());
    assert_eq!(first["stream"], "stdout");
    server.expect("arca/output", "a tick", |params| params["text"] == "tick");
    let running = server.expect("arca/status", "running in the status", |params| {
        params["crate"] == uri && params["running"]["container"] == container.as_str()
    });
    assert_eq!(running["state"], "fresh");
    assert_eq!(run_containers(&test), vec![container.clone()]);

    // A second run while one runs is refused with what to do.
    let again = server.request(
        "workspace/executeCommand",
        json!({"command": "arca.run", "arguments": [{"crate": uri}]}),
    );
    let message = again.expect_err("refused")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("already running"), "{message}");

    let stopped = server.request(
        "workspace/executeCommand",
        json!({"command": "arca.stop", "arguments": [{"crate": uri}]}),
    );
    assert_eq!(stopped, Ok(serde_json::Value::Null));
    let exit = server.expect("arca/output", "the exit code", |params| {
        params["exitCode"].is_i64()
    });
    assert_eq!(exit["exitCode"], 143, "SIGTERM through the init: {exit}");
    server.expect("arca/status", "running cleared", |params| {
        params["crate"] == uri && params["running"].is_null()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(run_containers(&test), Vec::<String>::new());

    // The packaging before the run left its full log, reachable by the client.
    let log = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.buildLog", "arguments": [{"crate": uri}]}),
        )
        .expect("arca.buildLog");
    let path = log["path"].as_str().expect("a log path");
    let text = std::fs::read_to_string(path).expect("read the log");
    assert!(text.contains("Compiling hello"), "{text}");
    assert!(text.trim_end().ends_with("Done."), "{text}");
}

#[test]
fn commands_on_a_config_with_errors_fail_at_once_naming_the_error() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    std::fs::write(
        test.crate_dir.join(".arca/config.toml"),
        format!(
            "[rust]\nprofile = \"release\"\nfeatures = [\"no-such-feature\"]\nbase_image = \"{}\"\n",
            docker::RUNTIME_BASE
        ),
    )
    .expect("write config");
    let mut server = start(&test);
    let uri = crate_uri(&test.crate_dir);
    for command in ["arca.package", "arca.run", "arca.build"] {
        let started = std::time::Instant::now();
        let answer = server.request(
            "workspace/executeCommand",
            json!({"command": command, "arguments": [{"crate": uri}]}),
        );
        let error = answer.expect_err("refused");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("has an error, so nothing was built")
                && message.contains("no-such-feature"),
            "{command}: {message}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    // Refused before any state change: the status never said `building`.
    let building = server.wait_for("arca/status", Duration::from_millis(800), |params| {
        params["state"] == "building"
    });
    assert!(building.is_none(), "a refused build flashed {building:?}");
    assert!(test.store().list().artifacts.is_empty());
    assert!(test.leftover_build_containers().is_empty());
}

fn versioned(version: &str) -> String {
    format!(
        "fn main() {{\n    println!(\"version: {version}\");\n    loop {{\n        std::thread::sleep(std::time::Duration::from_secs(1));\n    }}\n}}\n"
    )
}

#[test]
fn a_live_run_follows_edits_in_the_same_container_and_says_the_image_is_stale() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    std::fs::write(test.crate_dir.join("src/main.rs"), versioned("one")).expect("write main.rs");
    let mut server = start(&test);
    let uri = crate_uri(&test.crate_dir);
    server.status(&uri, "missing");
    let result = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.run", "arguments": [{"crate": uri, "live": true}]}),
        )
        .unwrap_or_else(|error| panic!("arca.run live failed: {error}\n{}", server.stderr()));
    let container = result["container"].as_str().expect("container").to_owned();
    assert_eq!(result["live"], true);
    server.expect("arca/output", "the first version", |params| {
        params["text"] == "version: one"
    });
    server.expect("arca/status", "running live", |params| {
        params["crate"] == uri
            && params["running"]["container"] == container.as_str()
            && params["running"]["live"] == true
    });

    std::fs::write(test.crate_dir.join("src/main.rs"), versioned("two")).expect("edit");
    let separator = server.expect("arca/output", "the separator", |params| {
        params["text"]
            .as_str()
            .is_some_and(|text| text.starts_with("── rebuilt after src/main.rs changed ("))
    });
    assert_eq!(separator["container"], container.as_str());
    let second = server.expect("arca/output", "the new version", |params| {
        params["text"] == "version: two"
    });
    assert_eq!(
        second["container"],
        container.as_str(),
        "the same container"
    );
    let stale = server.expect("arca/status", "stale: updated live", |params| {
        params["crate"] == uri
            && params["state"] == "stale"
            && params["reasons"][0] == "running container updated live; image not rebuilt"
    });
    assert_eq!(stale["running"]["container"], container.as_str());

    // A compile error: inline diagnostics, the old program keeps running.
    std::fs::write(test.crate_dir.join("src/main.rs"), "fn main() { nope }\n").expect("break");
    server.expect(
        "textDocument/publishDiagnostics",
        "the compile error",
        |params| {
            params["uri"]
                .as_str()
                .is_some_and(|u| u.ends_with("/src/main.rs"))
                && params["diagnostics"]
                    .as_array()
                    .is_some_and(|list| !list.is_empty())
        },
    );
    server.expect("arca/output", "the failure said once", |params| {
        params["text"] == "── the change does not build ──"
    });
    assert_eq!(run_containers(&test), vec![container.clone()]);

    let stopped = server.request(
        "workspace/executeCommand",
        json!({"command": "arca.stop", "arguments": [{"crate": uri}]}),
    );
    assert_eq!(stopped, Ok(serde_json::Value::Null));
    let exit = server.expect("arca/output", "the exit code", |params| {
        params["exitCode"].is_i64()
    });
    assert_eq!(exit["exitCode"], 143, "{exit}");
    server.expect("arca/status", "running cleared", |params| {
        params["crate"] == uri && params["running"].is_null()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(run_containers(&test), Vec::<String>::new());
}

/// A server with a live run of the crate whose program printed
/// `version: one`, in one container.
fn live_run_printing_one(test: &docker::DockerTest) -> Server {
    std::fs::write(test.crate_dir.join("src/main.rs"), versioned("one")).expect("write main.rs");
    let mut server = start(test);
    let uri = crate_uri(&test.crate_dir);
    server.status(&uri, "missing");
    server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.run", "arguments": [{"crate": uri, "live": true}]}),
        )
        .unwrap_or_else(|error| panic!("arca.run live failed: {error}\n{}", server.stderr()));
    server.expect("arca/output", "the first version", |params| {
        params["text"] == "version: one"
    });
    assert_eq!(run_containers(test).len(), 1);
    server
}

#[test]
fn a_server_that_exits_during_a_live_run_leaves_no_container() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    let mut server = live_run_printing_one(&test);
    // The client leaves at once: shutdown, exit.
    assert_eq!(server.shutdown(), Some(0), "{}", server.stderr());
    assert_eq!(run_containers(&test), Vec::<String>::new());
}

/// A client that vanishes (its pipe closed: no shutdown, no exit) during a
/// live run: nothing cancels the run's task, so only the server's exit-time
/// cleanup of the live containers it made can remove the container.
#[test]
fn a_client_that_vanishes_during_a_live_run_leaves_no_container() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    let mut server = live_run_printing_one(&test);
    server.close_stdin();
    let code = server.wait_exit(Duration::from_secs(30));
    assert!(code.is_some(), "the server ends when its client is gone");
    assert_eq!(run_containers(&test), Vec::<String>::new());
}
