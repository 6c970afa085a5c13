//! The server never dies, never stalls, and knows each crate's state: the
//! real `arca lsp` binary over stdio, fed malformed frames, hostile files,
//! large workspaces, panicking jobs and crates that break or vanish; and
//! the CLI commands on the same hostile files. Every wait is bounded.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::lsp_client::{
    COMPLETE_CONFIG, Options, Server, Workspace, crate_uri, file_uri, vscode_capabilities,
};

const ANSWER: Duration = Duration::from_secs(10);

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn started(workspace: &Workspace) -> Server {
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());
    server
}

/// A valid request after the bad input is answered: the session goes on.
fn still_serving(server: &mut Server) {
    let answer = server.request("arca/status", json!({}));
    assert!(answer.is_ok(), "arca/status after bad input: {answer:?}");
}

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

fn link_dev_zero(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    std::os::unix::fs::symlink("/dev/zero", path).unwrap();
}

/// Peak resident memory of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

#[test]
fn every_malformed_frame_is_answered_and_the_session_goes_on() {
    let workspace = Workspace::new();
    workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let mut server = started(&workspace);
    // (bytes, expected code, expected id)
    let cases: Vec<(Vec<u8>, i64, Value)> = vec![
        (
            frame(b"{\"jsonrpc\":\"2.0\",\"id\":1,"),
            -32700,
            Value::Null,
        ),
        (frame(b"\xff\xfe\xfd"), -32700, Value::Null),
        (frame(b"[1, 2, 3]"), -32600, Value::Null),
        (frame(b"\"text\""), -32600, Value::Null),
        (frame(b"null"), -32600, Value::Null),
        (
            frame(br#"{"jsonrpc":"1.0","id":41,"method":"arca/status"}"#),
            -32600,
            json!(41),
        ),
        (
            frame(br#"{"id":42,"method":"arca/status"}"#),
            -32600,
            json!(42),
        ),
        (
            frame(br#"{"jsonrpc":"2.0","id":{"nested":1},"method":"arca/status"}"#),
            -32600,
            Value::Null,
        ),
        (
            frame(br#"{"jsonrpc":"2.0","id":[1],"method":"arca/status"}"#),
            -32600,
            Value::Null,
        ),
        (
            frame(br#"{"jsonrpc":"2.0","id":2.5,"method":"arca/status"}"#),
            -32600,
            Value::Null,
        ),
        (
            frame(br#"{"jsonrpc":"2.0","id":43,"method":17}"#),
            -32600,
            json!(43),
        ),
        (
            frame(br#"{"jsonrpc":"2.0","id":44,"method":"arca/status","params":"x"}"#),
            -32600,
            json!(44),
        ),
        (frame(br#"{"jsonrpc":"2.0","id":45}"#), -32600, json!(45)),
        (frame(b""), -32700, Value::Null),
        (
            b"Content-Length: twelve\r\n\r\n{\"a\":1}".to_vec(),
            -32700,
            Value::Null,
        ),
        (
            b"Content-Type: application/json\r\n\r\n{}".to_vec(),
            -32700,
            Value::Null,
        ),
        (b"this is not a frame at all".to_vec(), -32700, Value::Null),
        // Bodies the decoder refuses for their content (issue 21): a lone
        // UTF-16 surrogate, nesting beyond the decoder's limit, a number
        // out of range. Each is one Parse error; the session goes on.
        (
            frame(br#"{"jsonrpc":"2.0","id":50,"method":"arca/status","params":{"a":"\ud800"}}"#),
            -32700,
            Value::Null,
        ),
        (
            frame(
                format!(
                    r#"{{"jsonrpc":"2.0","id":51,"method":"arca/status","params":{{"a":{}1{}}}}}"#,
                    "[".repeat(200),
                    "]".repeat(200)
                )
                .as_bytes(),
            ),
            -32700,
            Value::Null,
        ),
        (
            frame(br#"{"jsonrpc":"2.0","id":52,"method":"arca/status","params":{"a":1e400}}"#),
            -32700,
            Value::Null,
        ),
    ];
    for (bytes, code, id) in cases {
        server.send_raw(&bytes);
        let answer = server.response_with_id(&id, ANSWER).unwrap_or_else(|| {
            panic!(
                "no answer to {:?}\nstderr:\n{}",
                String::from_utf8_lossy(&bytes),
                server.stderr()
            )
        });
        let error = answer.expect_err("an error answer");
        assert_eq!(
            error["code"],
            code,
            "{:?}: {error}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(!error["message"].as_str().unwrap_or("").is_empty());
        still_serving(&mut server);
    }

    // A malformed notification is never answered (JSON-RPC 2.0): only
    // logged, and the session goes on.
    server.send_raw(&frame(
        br#"{"jsonrpc":"2.0","method":"textDocument/didSave","params":7}"#,
    ));
    let answered = server.response_with_id(&Value::Null, Duration::from_millis(700));
    assert!(
        answered.is_none(),
        "a notification got an answer: {answered:?}"
    );
    still_serving(&mut server);

    // A Content-Length longer than the body: the next frame follows at
    // once; the bad one is answered and the next one still served.
    let body = br#"{"jsonrpc":"2.0","id":46,"method":"arca/status","params":{}}"#;
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len() + 40).into_bytes();
    bytes.extend_from_slice(body);
    bytes.extend(frame(
        br#"{"jsonrpc":"2.0","id":47,"method":"arca/status","params":{}}"#,
    ));
    server.send_raw(&bytes);
    let answered = server.response_with_id(&json!(47), ANSWER);
    assert!(
        matches!(answered, Some(Ok(_))),
        "the frame after a too-long one is served: {answered:?}\n{}",
        server.stderr()
    );

    // A Content-Length shorter than the body.
    let body = br#"{"jsonrpc":"2.0","id":48,"method":"arca/status","params":{}}"#;
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len() - 10).into_bytes();
    bytes.extend_from_slice(body);
    server.send_raw(&bytes);
    let error = server
        .response_with_id(&Value::Null, ANSWER)
        .expect("answered")
        .unwrap_err();
    assert_eq!(error["code"], -32700);
    still_serving(&mut server);

    // An unknown `$/` request gets MethodNotFound; an unknown `$/`
    // notification is ignored.
    server.notify("$/arca/unknownNotification", json!({}));
    let error = server
        .request("$/arca/unknownRequest", json!({}))
        .expect_err("MethodNotFound");
    assert_eq!(error["code"], -32601, "{error}");
    still_serving(&mut server);
    assert!(
        !server.stderr().contains('\u{1b}'),
        "no colour codes in a piped log"
    );
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn an_oversized_frame_is_refused_without_being_buffered() {
    let workspace = Workspace::new();
    workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let mut server = started(&workspace);
    let size = 64 * 1024 * 1024 + 1;
    server.send_raw(format!("Content-Length: {size}\r\n\r\n").as_bytes());
    let error = server
        .response_with_id(&Value::Null, ANSWER)
        .expect("refused at once, before the body")
        .unwrap_err();
    assert_eq!(error["code"], -32600, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("64 MiB"),
        "{error}"
    );
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..64 {
        server.send_raw(&chunk);
    }
    server.send_raw(b"x");
    still_serving(&mut server);
    let peak = peak_rss_mib(server.pid());
    assert!(peak < 60, "the body was not held: peak RSS {peak} MiB");
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn hostile_files_never_hang_or_flood_the_server() {
    let workspace = Workspace::new();
    let fifo_config = workspace.demo_crate("fifo-config", "fifo-config", None);
    mkfifo(&fifo_config.join(".arca/config.toml"));
    let zero_config = workspace.demo_crate("zero-config", "zero-config", None);
    link_dev_zero(&zero_config.join(".arca/config.toml"));
    let big_config = workspace.demo_crate("big-config", "big-config", None);
    workspace.write(
        "big-config/.arca/config.toml",
        format!("[rust]\n{}", "#".repeat(20 << 20)),
    );
    let fifo_manifest = workspace.demo_crate("fifo-manifest", "fifo-manifest", None);
    mkfifo(&fifo_manifest.join("Cargo.toml"));
    let zero_manifest = workspace.demo_crate("zero-manifest", "zero-manifest", None);
    link_dev_zero(&zero_manifest.join("Cargo.toml"));
    // Cargo would read these (and block on a pipe) before any manifest.
    let fifo_cargo_config = workspace.demo_crate("fifo-cargo-config", "fifo-cargo-config", None);
    mkfifo(&fifo_cargo_config.join(".cargo/config.toml"));
    let fifo_lock = workspace.demo_crate("fifo-lock", "fifo-lock", None);
    mkfifo(&fifo_lock.join("Cargo.lock"));
    let good = workspace.demo_crate("good", "good", Some(COMPLETE_CONFIG));
    // Store records that are a pipe and /dev/zero.
    mkfifo(&workspace.home.join("containers/aaaaaaaa/metadata.toml"));
    link_dev_zero(&workspace.home.join("containers/bbbbbbbb/metadata.toml"));

    let started_at = Instant::now();
    let mut server = started(&workspace);
    server.status(&crate_uri(&good), "missing");
    for (dir, word) in [
        (&fifo_config, "named pipe"),
        (&zero_config, "character device"),
        (&big_config, "MiB"),
        (&fifo_manifest, "named pipe"),
        (&zero_manifest, "character device"),
        (&fifo_cargo_config, "named pipe"),
        (&fifo_lock, "named pipe"),
    ] {
        let status = server.status(&crate_uri(dir), "error");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains(word), "{}: {message}", dir.display());
        assert!(
            message.contains("regular files") || word == "MiB",
            "{message}"
        );
    }
    assert!(started_at.elapsed() < Duration::from_secs(60));
    // Opening the piped config in the editor still works from the buffer.
    let config_uri = file_uri(&fifo_config.join(".arca/config.toml"));
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": config_uri, "languageId": "toml", "version": 1, "text": "[rust]\nprofil = 1\n"}}),
    );
    server.diagnostics(&config_uri, |list| {
        list.iter()
            .any(|diagnostic| diagnostic["code"] == "unknown-key")
    });
    still_serving(&mut server);
    let peak = peak_rss_mib(server.pid());
    assert!(peak < 150, "peak RSS {peak} MiB");
    assert_eq!(server.shutdown(), Some(0));
}

/// Runs an `arca` command with a time bound; returns (exit code, stdout,
/// stderr).
fn arca(home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(args)
        .env("ARCA_HOME", home)
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "arca {args:?} still running after 30 s\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_cli_command_refuses_hostile_files_promptly() {
    type Plant = fn(&Path);
    let plants: [(&str, Plant, &str); 3] = [
        ("named pipe", mkfifo, "named pipe"),
        ("/dev/zero", link_dev_zero, "character device"),
        (
            "oversized",
            |path: &Path| {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, vec![b'#'; 70 << 20]).unwrap();
            },
            "MiB",
        ),
    ];
    for (what, plant, word) in plants {
        // As the config.
        let workspace = Workspace::new();
        let demo = workspace.demo_crate("demo", "demo", None);
        plant(&demo.join(".arca/config.toml"));
        let demo_arg = demo.to_str().unwrap();
        for args in [
            vec!["check", demo_arg],
            vec!["status", demo_arg],
            vec!["status", "--json", demo_arg],
            vec![
                "build",
                "rust",
                demo_arg,
                "--profile",
                "release",
                "-F",
                "",
                "--base-image",
                "debian:bookworm-slim",
            ],
        ] {
            let (code, stdout, stderr) = arca(&workspace.home, &args);
            // `status` reports the crate as `error` (and succeeds).
            if args[0] != "status" {
                assert_ne!(code, Some(0), "config {what}: arca {args:?}");
            }
            let all = format!("{stdout}{stderr}");
            assert!(all.contains(word), "config {what}: arca {args:?}: {all}");
        }

        // As the manifest.
        let workspace = Workspace::new();
        let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
        plant(&demo.join("Cargo.toml"));
        let demo_arg = demo.to_str().unwrap();
        for args in [
            vec!["check", demo_arg],
            vec!["status", demo_arg],
            vec!["build", "rust", demo_arg],
        ] {
            let (_, stdout, stderr) = arca(&workspace.home, &args);
            let all = format!("{stdout}{stderr}");
            assert!(all.contains(word), "manifest {what}: arca {args:?}: {all}");
        }

        // As a store record: skipped with a warning, the rest listed.
        let workspace = Workspace::new();
        let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
        workspace.store_artifact(&demo, "cafe0001", "f".repeat(64).as_str());
        plant(&workspace.home.join("containers/dead0001/metadata.toml"));
        for args in [
            vec!["list"],
            vec!["status", demo.to_str().unwrap()],
            vec!["prune", "local", "--days", "1"],
        ] {
            let (code, stdout, stderr) = arca(&workspace.home, &args);
            let all = format!("{stdout}{stderr}");
            assert!(
                all.contains(word) || args[0] == "status",
                "store record {what}: arca {args:?}: {all}"
            );
            assert!(code.is_some(), "store record {what}: arca {args:?}");
        }
        let (_, stdout, _) = arca(&workspace.home, &["list"]);
        assert!(stdout.contains("cafe0001"), "{stdout}");
    }
}

#[test]
fn cli_input_faults_are_refused_clearly() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", None);
    // A missing path is an error, not a pass.
    let (code, _, stderr) = arca(&workspace.home, &["check", "/nonexistent/crate"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    // Control sequences from the config are shown escaped.
    workspace.write(
        "demo/.arca/config.toml",
        "[rust]\nprofile = \"\\u001b[2J\\u001b]0;owned\\u0007\"\n",
    );
    let (_, stdout, stderr) = arca(&workspace.home, &["check", demo.to_str().unwrap()]);
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout}"
    );
    assert!(stdout.contains("\\u{1b}"), "{stdout}");
    // An unknown feature is refused before any engine is asked.
    workspace.write("demo/.arca/config.toml", COMPLETE_CONFIG);
    let (code, _, stderr) = arca(
        &workspace.home,
        &["build", "rust", demo.to_str().unwrap(), "-F", "nope"],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no feature `nope`"), "{stderr}");
    assert!(!stderr.contains("engine"), "{stderr}");
    // A --bin with a newline is echoed escaped.
    let (_, _, stderr) = arca(
        &workspace.home,
        &["build", "rust", demo.to_str().unwrap(), "--bin", "x\ny"],
    );
    assert!(stderr.contains("x\\ny"), "{stderr}");
    // -u keeps the config's mode.
    use std::os::unix::fs::PermissionsExt;
    let config = demo.join(".arca/config.toml");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let _ = arca(
        &workspace.home,
        &[
            "build",
            "rust",
            demo.to_str().unwrap(),
            "--profile",
            "dev",
            "-u",
        ],
    );
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("\"dev\"")
    );
    // A huge --days keeps everything.
    workspace.store_artifact(&demo, "cafe0002", "f".repeat(64).as_str());
    let (code, _, _) = arca(
        &workspace.home,
        &["prune", "local", "--days", "2305843009213693952"],
    );
    assert_eq!(code, Some(0));
    let (_, stdout, _) = arca(&workspace.home, &["list"]);
    assert!(stdout.contains("cafe0002"), "{stdout}");
}

/// cargo processes whose parent is `pid`.
fn cargo_children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = &stat[stat.find('(').unwrap_or(0) + 1..close];
        let ppid: u32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|field| field.parse().ok())
            .unwrap_or(0);
        if ppid == pid && comm == "cargo" {
            found.push(child);
        }
    }
    found
}

#[test]
fn a_200_member_workspace_runs_few_cargo_processes_and_stays_small() {
    let workspace = Workspace::new();
    let members: Vec<String> = (0..200).map(|index| format!("m{index:03}")).collect();
    workspace.write(
        "big/Cargo.toml",
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            members
                .iter()
                .map(|member| format!("\"{member}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    for member in &members {
        workspace.write(
            &format!("big/{member}/Cargo.toml"),
            format!("[package]\nname = \"{member}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        );
        workspace.write(&format!("big/{member}/src/main.rs"), "fn main() {}\n");
    }
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());
    let pid = server.pid();
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let mut peak = 0;
    let mut seen = std::collections::BTreeSet::new();
    let mut told = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while told.len() < members.len() && Instant::now() < deadline {
        let running = cargo_children(pid);
        peak = peak.max(running.len());
        seen.extend(running);
        server.drain(Duration::from_millis(5));
        for status in server.take_all("arca/status") {
            told.insert(status["crate"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(told.len(), members.len(), "a status for every member");
    eprintln!(
        "200 members: {} cargo processes ran, at most {peak} at once",
        seen.len()
    );
    assert!(
        peak <= cores,
        "{peak} cargo processes at once on {cores} cores"
    );
    assert!(
        seen.len() <= 10,
        "one cargo metadata answers the workspace: {} ran",
        seen.len()
    );
    let rss = peak_rss_mib(pid);
    assert!(rss < 150, "peak RSS {rss} MiB");
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn a_panicking_job_leaves_the_crate_usable() {
    for job in ["facts", "index", "store", "discover"] {
        let workspace = Workspace::new();
        let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
        let mut server = Server::start(Options {
            arca_home: &workspace.home,
            env: vec![("ARCA_TEST_FAULT", job.to_owned())],
        });
        server.initialize(&[&workspace.root], vscode_capabilities());
        let uri = crate_uri(&demo);
        // The panic is reported as an error status (unless a newer run
        // already replaced the job); the next change retries.
        let first = server.expect("arca/status", "a first status", |params| {
            params["crate"] == uri.as_str()
        });
        if first["state"] == "error" {
            assert!(
                first["message"]
                    .as_str()
                    .unwrap()
                    .contains("internal error"),
                "{job}: {first}"
            );
            let touched = if job == "facts" {
                "Cargo.toml"
            } else {
                "src/main.rs"
            };
            let path = demo.join(touched);
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{text}\n")).unwrap();
        } else {
            assert_eq!(first["state"], "missing", "{job}: {first}");
        }
        if first["state"] == "error" {
            server.status(&uri, "missing");
        }
        still_serving(&mut server);
        assert!(
            server.stderr().contains("ARCA_TEST_FAULT"),
            "{job}: the fault fired"
        );
        assert_eq!(server.shutdown(), Some(0), "{job}");
    }
}

#[test]
fn a_broken_cargo_toml_is_an_error_until_fixed_from_startup_or_save() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", Some(COMPLETE_CONFIG));
    let manifest = demo.join("Cargo.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    let uri = crate_uri(&demo);

    // Broken at startup.
    std::fs::write(&manifest, "[package\nname = \"demo\"\n").unwrap();
    let mut server = started(&workspace);
    let status = server.status(&uri, "error");
    assert!(
        status["message"].as_str().unwrap().contains("Cargo.toml"),
        "{status}"
    );
    std::fs::write(&manifest, &good).unwrap();
    server.status(&uri, "missing");

    // Saved broken while running, then fixed.
    std::fs::write(&manifest, "this is = = not toml").unwrap();
    let status = server.status(&uri, "error");
    assert!(
        status["message"].as_str().unwrap().contains("Cargo.toml"),
        "{status}"
    );
    let all = server.request("arca/status", json!({})).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "still a crate: {all}");
    std::fs::write(&manifest, &good).unwrap();
    server.status(&uri, "missing");
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn a_deleted_crate_is_removed_and_its_diagnostics_cleared() {
    let workspace = Workspace::new();
    let keep = workspace.demo_crate("keep", "keep", Some(COMPLETE_CONFIG));
    let gone = workspace.demo_crate("gone", "gone", Some("[rust]\nprofil = \"release\"\n"));
    let mut server = started(&workspace);
    let config_uri = file_uri(&gone.join(".arca/config.toml"));
    server.diagnostics(&config_uri, |list| !list.is_empty());
    server.status(&crate_uri(&keep), "missing");
    server.status(&crate_uri(&gone), "unconfigured");
    std::fs::remove_dir_all(&gone).unwrap();
    let removed = server.expect("arca/removed", "the deleted crate", |params| {
        params["crate"] == crate_uri(&gone)
    });
    assert_eq!(removed["crate"], crate_uri(&gone));
    server.diagnostics(&config_uri, <[Value]>::is_empty);
    let all = server.request("arca/status", json!({})).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    // Only its Cargo.toml deleted: removed too.
    std::fs::remove_file(keep.join("Cargo.toml")).unwrap();
    server.expect("arca/removed", "the crate without Cargo.toml", |params| {
        params["crate"] == crate_uri(&keep)
    });
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn completion_right_after_did_open_waits_for_the_crate_facts() {
    let workspace = Workspace::new();
    let demo = workspace.demo_crate("demo", "demo", None);
    let config = demo.join(".arca/config.toml");
    let uri = file_uri(&config);
    let text = "[rust]\nfeatures = [\"\"]\nbin = \"\"\nprofile = \"\"\n";
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, text).unwrap();
    let mut server = workspace.start();
    server.initialize(&[&workspace.root], vscode_capabilities());
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "toml", "version": 1, "text": text}}),
    );
    let labels = |server: &mut Server, line: u32, character: u32| -> Vec<String> {
        let result = server
            .request(
                "textDocument/completion",
                json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
            )
            .unwrap();
        let items = result
            .get("items")
            .or(Some(&result))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        items
            .iter()
            .map(|item| item["label"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let features = labels(&mut server, 1, 13);
    assert!(features.contains(&"cli".to_owned()), "{features:?}");
    let bins = labels(&mut server, 2, 7);
    assert!(bins.contains(&"demo".to_owned()), "{bins:?}");
    let profiles = labels(&mut server, 3, 11);
    assert!(profiles.contains(&"fast".to_owned()), "{profiles:?}");
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn set_defaults_without_apply_edit_is_a_clear_error() {
    let workspace = Workspace::new();
    workspace.demo_crate("demo", "demo", None);
    let mut server = workspace.start();
    let mut capabilities = vscode_capabilities();
    capabilities["workspace"]["applyEdit"] = json!(false);
    server.initialize(&[&workspace.root], capabilities);
    let error = server
        .request(
            "workspace/executeCommand",
            json!({"command": "arca.setDefaults", "arguments": [{"profile": "release"}]}),
        )
        .unwrap_err();
    assert!(
        error["message"].as_str().unwrap().contains("applyEdit"),
        "{error}"
    );
    assert!(
        !server
            .server_requests
            .iter()
            .any(|request| request["method"] == "workspace/applyEdit")
    );
    assert_eq!(server.shutdown(), Some(0));
}

#[test]
fn the_filesystem_root_and_home_are_refused_as_folders() {
    let workspace = Workspace::new();
    let mut server = workspace.start();
    let started = Instant::now();
    server
        .request(
            "initialize",
            json!({"processId": null, "rootUri": "file:///", "capabilities": vscode_capabilities(),
                   "workspaceFolders": [{"uri": "file:///", "name": "root"}]}),
        )
        .unwrap();
    server.notify("initialized", json!({}));
    let notice = server.expect("window/logMessage", "the refusal", |params| {
        params["message"]
            .as_str()
            .is_some_and(|message| message.contains("does not search /"))
    });
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("Open the crate's folder")
    );
    let all = server.request("arca/status", json!({})).unwrap();
    assert_eq!(all, json!([]));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.shutdown(), Some(0));
}
