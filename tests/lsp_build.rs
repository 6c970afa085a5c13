//! `arca.package` and cancellation through the language server against the
//! real Docker engine (skipped with a note when none answers; failed when
//! `ARCA_REQUIRE_DOCKER=1`), on a copy of examples/hello.

#[path = "common/docker.rs"]
mod docker;
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::lsp_client::{Options, Server, crate_uri, file_uri, vscode_capabilities};

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

#[test]
fn package_reports_progress_and_output_and_turns_the_crate_fresh() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    let mut server = start(&test);
    let uri = crate_uri(&test.crate_dir);
    server.status(&uri, "missing");

    let id = server.send_request(
        "workspace/executeCommand",
        json!({"command": "arca.package", "arguments": [{"crate": uri, "archive": true}]}),
    );
    let result = server
        .response(id)
        .unwrap_or_else(|error| panic!("arca.package failed: {error}\n{}", server.stderr()));
    assert!(
        result["imageId"].as_str().unwrap().starts_with("sha256:"),
        "{result}"
    );
    let artifact_id = result["artifactId"]
        .as_str()
        .expect("artifactId")
        .to_owned();
    assert_eq!(result["upToDate"], false);
    assert!(
        result["localTag"]
            .as_str()
            .unwrap()
            .starts_with("arca-local:hello-")
    );
    assert!(std::path::Path::new(result["archivePath"].as_str().unwrap()).is_file());
    assert_eq!(result["fingerprint"].as_str().unwrap().len(), 64);

    // Progress on a token the server created: begin, stage reports, end.
    let created = server
        .server_requests
        .iter()
        .find(|request| request["method"] == "window/workDoneProgress/create")
        .expect("a progress token was created")
        .clone();
    let token = created["params"]["token"].clone();
    // The end may arrive just after the answer.
    let end = server.expect("$/progress", "progress end", |params| {
        params["token"] == token && params["value"]["kind"] == "end"
    });
    let mut progress: Vec<Value> = server
        .take_all("$/progress")
        .into_iter()
        .filter(|params| params["token"] == token)
        .collect();
    progress.push(end);
    let kinds: Vec<&str> = progress
        .iter()
        .map(|params| params["value"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"begin"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    let stages: Vec<&str> = progress
        .iter()
        .filter(|params| params["value"]["kind"] == "report")
        .filter_map(|params| params["value"]["message"].as_str())
        .collect();
    for expected in [
        "builder container",
        "Assembling runtime image",
        "Loading image into the engine",
    ] {
        assert!(
            stages.iter().any(|stage| stage.contains(expected)),
            "{expected}: {stages:?}"
        );
    }
    assert!(
        progress
            .iter()
            .any(|params| params["value"]["percentage"].is_u64()),
        "an export percentage was reported: {progress:#?}"
    );
    // The build's output as window/logMessage of type Log.
    let logs = server.take_all("window/logMessage");
    assert!(
        logs.iter().any(|params| params["type"] == 4
            && params["message"]
                .as_str()
                .unwrap_or("")
                .contains("Compiling hello")),
        "{logs:#?}"
    );
    let fresh = server.status(&uri, "fresh");
    assert_eq!(fresh["artifact"]["id"], artifact_id.as_str());

    // The image's SBOM (additive): counted in the status, served by
    // `arca.sbom` as the CLI stores it, and as CycloneDX.
    let sbom = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.sbom", "arguments": [{"crate": uri}]}),
        )
        .unwrap_or_else(|error| panic!("arca.sbom failed: {error}"));
    let document = sbom["document"].as_str().unwrap();
    let spdx: Value = serde_json::from_str(document).unwrap();
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(sbom["artifact"], artifact_id.as_str());
    assert_eq!(
        fresh["sbom"]["packages"],
        spdx["packages"].as_array().unwrap().len(),
        "{fresh}"
    );
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["sbom", &artifact_id])
        .env("ARCA_HOME", test.home.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim_end(), document);
    assert_eq!(
        fresh["sbom"]["digest"],
        format!("sha256:{}", sha256_hex(document.as_bytes())).as_str()
    );
    let cyclonedx = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.sbom", "arguments": [{"crate": uri, "format": "cyclonedx"}]}),
        )
        .unwrap();
    let bom: Value = serde_json::from_str(cyclonedx["document"].as_str().unwrap()).unwrap();
    assert_eq!(bom["specVersion"], "1.5");
    let wrong = server.request(
        "workspace/executeCommand",
        json!({"command": "arca.sbom", "arguments": [{"crate": uri, "format": "xml"}]}),
    );
    assert!(
        wrong.is_err_and(|error| {
            error["message"]
                .as_str()
                .is_some_and(|message| message.contains("\"spdx\" or \"cyclonedx\""))
        }),
        "a wrong format is refused with the valid ones"
    );
    // `platform` (additive): the engine's platform's image is this one; a
    // platform the artifact lacks is refused naming the one it has, and a
    // malformed one is refused as such.
    let host = arca::platform::Platform::host().to_string();
    let own = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.sbom", "arguments": [{"crate": uri, "platform": host}]}),
        )
        .unwrap_or_else(|error| panic!("arca.sbom for {host} failed: {error}"));
    assert_eq!(own["document"].as_str(), Some(document));
    for (platform, wanted) in [
        (
            "linux/s390x",
            format!("The artifact has no image for linux/s390x: it was built for {host}."),
        ),
        ("windows", "(in `platform`)".to_owned()),
    ] {
        let refused = server.request(
            "workspace/executeCommand",
            json!({"command": "arca.sbom", "arguments": [{"crate": uri, "platform": platform}]}),
        );
        assert!(
            refused.as_ref().is_err_and(|error| error["message"]
                .as_str()
                .is_some_and(|message| message.contains(&wanted))),
            "{platform}: {refused:?}"
        );
    }

    // Packaging a fresh crate answers at once.
    let again = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.package", "arguments": [{}]}),
        )
        .unwrap();
    assert_eq!(again["upToDate"], true);
    assert_eq!(again["artifactId"], artifact_id.as_str());

    // Without `archive`, no standalone archive is written.
    let forced = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.package", "arguments": [{"force": true}]}),
        )
        .unwrap();
    assert_eq!(forced["upToDate"], false);
    assert!(forced["archivePath"].is_null(), "{forced}");
    assert!(forced["imageId"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn compiler_errors_are_published_on_the_sources_and_cleared_by_the_next_build() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    let main = test.crate_dir.join("src/main.rs");
    let original = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        original.replacen(
            "fn main() {",
            "fn main() {\n    let broken: u32 = \"text\";",
            1,
        ),
    )
    .unwrap();
    let mut server = start(&test);
    let main_uri = file_uri(&main);
    let error = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.build", "arguments": [{}]}),
        )
        .unwrap_err();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Cargo could not build"),
        "{error}"
    );
    let diagnostics = server.diagnostics(&main_uri, |list| !list.is_empty());
    let mismatch = diagnostics
        .iter()
        .find(|diagnostic| diagnostic["severity"] == 1)
        .expect("an error diagnostic");
    let broken_line = std::fs::read_to_string(&main)
        .unwrap()
        .lines()
        .position(|line| line.contains("let broken"))
        .unwrap();
    assert_eq!(
        mismatch["range"]["start"]["line"], broken_line,
        "{mismatch}"
    );
    // The range covers `"text"` (columns in UTF-16 units).
    assert_eq!(mismatch["range"]["start"]["character"], 22, "{mismatch}");
    assert_eq!(mismatch["range"]["end"]["character"], 28, "{mismatch}");
    assert_eq!(mismatch["code"], "E0308");

    std::fs::write(&main, &original).unwrap();
    let built = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.build", "arguments": [{}]}),
        )
        .unwrap_or_else(|error| panic!("{error}\n{}", server.stderr()));
    assert!(
        built["binary"].as_str().unwrap().ends_with("hello"),
        "{built}"
    );
    server.diagnostics(&main_uri, <[Value]>::is_empty);
}

#[test]
fn cancelling_from_the_client_stops_the_build_and_stores_nothing() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    // A build script that takes a minute keeps the cargo container busy.
    std::fs::write(
        test.crate_dir.join("build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(60)); }\n",
    )
    .unwrap();
    let mut server = start(&test);
    let uri = crate_uri(&test.crate_dir);
    let started = std::time::Instant::now();
    let id = server.send_request(
        "workspace/executeCommand",
        json!({"command": "arca.package", "arguments": [{"crate": uri, "force": true}]}),
    );
    server.status(&uri, "building");
    server.expect("window/logMessage", "cargo compiling", |params| {
        params["message"]
            .as_str()
            .is_some_and(|message| message.contains("Compiling hello"))
    });
    let begin = server.expect("$/progress", "progress begin", |params| {
        params["value"]["kind"] == "begin"
    });
    server.notify(
        "window/workDoneProgress/cancel",
        json!({"token": begin["token"]}),
    );
    let error = server.response(id).unwrap_err();
    assert_eq!(error["code"], -32800, "RequestCancelled: {error}");
    assert!(started.elapsed() < Duration::from_secs(45));
    let status = server
        .request("arca/status", json!({"crate": uri}))
        .unwrap();
    assert_ne!(status[0]["state"], "building", "{status}");
    assert!(test.leftover_containers().is_empty(), "containers left");
    assert!(test.store().list().artifacts.is_empty());

    // arca.cancel does the same for a build started again.
    let id = server.send_request(
        "workspace/executeCommand",
        json!({"command": "arca.package", "arguments": [{"crate": uri, "force": true}]}),
    );
    server.status(&uri, "building");
    server.expect("window/logMessage", "cargo compiling", |params| {
        params["message"]
            .as_str()
            .is_some_and(|message| message.contains("Compiling hello"))
    });
    let cancelled = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.cancel", "arguments": [{"crate": uri}]}),
        )
        .unwrap();
    assert_eq!(cancelled, Value::Null);
    let error = server.response(id).unwrap_err();
    assert_eq!(error["code"], -32800, "{error}");
    assert!(test.leftover_containers().is_empty(), "containers left");
}

/// Precise staleness live in the editor: after a real build, only a change
/// to something that went into the binary turns the crate stale.
#[test]
fn only_real_inputs_turn_a_built_crate_stale_in_the_editor() {
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    let mut server = start(&test);
    let uri = crate_uri(&test.crate_dir);
    server.status(&uri, "missing");
    server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.package", "arguments": [{"crate": uri}]}),
        )
        .unwrap_or_else(|error| panic!("arca.package failed: {error}"));
    server.status(&uri, "fresh");
    server.drain(Duration::from_millis(300));
    server.discard("arca/status");

    // Not inputs: a README, a test, an editor's swap file.
    std::fs::write(test.crate_dir.join("README.md"), "# hello\n").unwrap();
    std::fs::create_dir_all(test.crate_dir.join("tests")).unwrap();
    std::fs::write(test.crate_dir.join("tests/smoke.rs"), "#[test] fn t() {}\n").unwrap();
    std::fs::write(test.crate_dir.join("src/.main.rs.swp"), "swap").unwrap();
    let not_fresh = server.wait_for("arca/status", Duration::from_secs(2), |params| {
        params["crate"] == uri.as_str() && params["state"] != "fresh"
    });
    assert!(not_fresh.is_none(), "a non-input made it {not_fresh:?}");

    // An input: the source. Reverting returns to fresh.
    let main = test.crate_dir.join("src/main.rs");
    let original = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{original}// edited\n")).unwrap();
    let stale = server.status(&uri, "stale");
    assert_eq!(stale["reasons"], json!(["src/main.rs changed"]), "{stale}");
    std::fs::write(&main, original).unwrap();
    server.status(&uri, "fresh");

    // A build script appearing: cargo would compile and run it.
    let script = test.crate_dir.join("build.rs");
    std::fs::write(&script, "fn main() {}\n").unwrap();
    let stale = server.status(&uri, "stale");
    assert_eq!(stale["reasons"], json!(["build.rs added"]), "{stale}");
    std::fs::remove_file(&script).unwrap();
    server.status(&uri, "fresh");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}
