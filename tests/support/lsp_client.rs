//! A small JSON-RPC client that drives the real `arca lsp` binary over its
//! stdio, as an editor would: Content-Length framing, requests with ids,
//! notifications collected for the test to await with a timeout, and the
//! server's own requests (progress tokens, workspace edits) answered the way
//! VS Code answers them. Dropping the client sends shutdown and exit and
//! reaps the process; nothing here can hang a test.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a test waits for any one answer before failing.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The client capabilities VS Code 1.9x sends that matter to Arca.
pub fn vscode_capabilities() -> Value {
    json!({
        "workspace": {
            "applyEdit": true,
            "workspaceEdit": {
                "documentChanges": true,
                "resourceOperations": ["create", "rename", "delete"],
                "failureHandling": "textOnlyTransactional"
            },
            "didChangeWatchedFiles": {"dynamicRegistration": true, "relativePatternSupport": true},
            "executeCommand": {"dynamicRegistration": true},
            "workspaceFolders": true,
            "configuration": true
        },
        "textDocument": {
            "synchronization": {"dynamicRegistration": true, "willSave": true, "willSaveWaitUntil": true, "didSave": true},
            "completion": {"completionItem": {"snippetSupport": true, "documentationFormat": ["markdown", "plaintext"]}, "contextSupport": true},
            "hover": {"contentFormat": ["markdown", "plaintext"]},
            "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["", "quickfix", "refactor", "source"]}}, "isPreferredSupport": true},
            "publishDiagnostics": {"relatedInformation": true, "versionSupport": false, "codeDescriptionSupport": true, "dataSupport": true}
        },
        "window": {"workDoneProgress": true, "showMessage": {}, "showDocument": {"support": true}},
        "general": {"positionEncodings": ["utf-16"]}
    })
}

/// The client capabilities Neovim 0.10 sends: no file watching on Linux,
/// progress supported, UTF-16 positions.
pub fn neovim_capabilities() -> Value {
    json!({
        "workspace": {
            "applyEdit": true,
            "workspaceEdit": {"resourceOperations": ["rename", "create", "delete"]},
            "didChangeWatchedFiles": {"dynamicRegistration": false},
            "workspaceFolders": true,
            "configuration": true
        },
        "textDocument": {
            "synchronization": {"didSave": true, "willSave": true, "willSaveWaitUntil": true, "dynamicRegistration": false},
            "completion": {"completionItem": {"snippetSupport": false}},
            "hover": {"contentFormat": ["markdown", "plaintext"]},
            "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["", "quickfix", "refactor", "source"]}}, "isPreferredSupport": true},
            "publishDiagnostics": {"relatedInformation": true, "tagSupport": {"valueSet": [1, 2]}}
        },
        "window": {"workDoneProgress": true, "showDocument": {"support": true}},
        "general": {"positionEncodings": ["utf-16"]}
    })
}

/// One message the server sent.
#[derive(Debug, Clone)]
pub struct Message(pub Value);

impl Message {
    pub fn method(&self) -> Option<&str> {
        self.0.get("method").and_then(Value::as_str)
    }
    pub fn params(&self) -> &Value {
        self.0.get("params").unwrap_or(&Value::Null)
    }
}

pub struct Server {
    child: Child,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    incoming: Receiver<Value>,
    /// Notifications (and server requests) read but not yet consumed.
    pending: VecDeque<Value>,
    /// Every server → client request seen, in order.
    pub server_requests: Vec<Value>,
    next_id: i64,
    stderr: Arc<Mutex<String>>,
    shut_down: bool,
}

pub struct Options<'a> {
    pub arca_home: &'a Path,
    pub env: Vec<(&'a str, String)>,
}

/// The `arca` binary under test: Cargo's build of this package, or
/// `ARCA_BENCH_BIN` (the language-server benchmark's second column times a
/// dev-profile build with it).
pub fn arca_binary() -> PathBuf {
    std::env::var_os("ARCA_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_arca")))
}

impl Server {
    /// Starts `arca lsp` with `ARCA_HOME` set (and the engine pointed at a
    /// closed port unless the test sets DOCKER_HOST itself).
    pub fn start(options: Options<'_>) -> Self {
        let mut command = Command::new(arca_binary());
        command
            .arg("lsp")
            .env("ARCA_HOME", options.arca_home)
            .env(
                "RUST_LOG",
                std::env::var("ARCA_TEST_LOG").unwrap_or_else(|_| "arca=debug".into()),
            )
            .env("DOCKER_HOST", "tcp://127.0.0.1:1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn arca lsp");
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr_pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_sink = stderr.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(stderr_pipe);
            for line in reader.lines().map_while(Result::ok) {
                let mut log = stderr_sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (tx, incoming) = mpsc::channel();
        let responder = stdin.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                // Answer the server's requests at once, as an editor does.
                if message.get("id").is_some() && message.get("method").is_some() {
                    let result = match message["method"].as_str() {
                        Some("workspace/applyEdit") => json!({"applied": true}),
                        _ => Value::Null,
                    };
                    let response = json!({"jsonrpc": "2.0", "id": message["id"], "result": result});
                    if let Some(stdin) = responder.lock().unwrap().as_mut() {
                        let _ = write_message(stdin, &response);
                    }
                }
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            incoming,
            pending: VecDeque::new(),
            server_requests: Vec::new(),
            next_id: 1,
            stderr,
            shut_down: false,
        }
    }

    /// The server's stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `initialize` + `initialized` with these folders and capabilities.
    pub fn initialize(&mut self, folders: &[&Path], capabilities: Value) -> Value {
        let workspace_folders: Vec<Value> = folders
            .iter()
            .map(|folder| json!({"uri": file_uri(folder), "name": folder.file_name().unwrap().to_string_lossy()}))
            .collect();
        let root = folders.first().map(|folder| file_uri(folder));
        let result = self
            .request(
                "initialize",
                json!({
                    "processId": std::process::id(),
                    "rootUri": root,
                    "capabilities": capabilities,
                    "workspaceFolders": workspace_folders,
                    "clientInfo": {"name": "arca-tests"}
                }),
            )
            .expect("initialize succeeds");
        self.notify("initialized", json!({}));
        result
    }

    pub fn send(&mut self, message: &Value) {
        let mut stdin = self.stdin.lock().unwrap();
        let stdin = stdin.as_mut().expect("stdin is open");
        write_message(stdin, message).expect("write to arca lsp");
    }

    /// Writes raw bytes (a malformed frame, a partial one) to the server.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut stdin = self.stdin.lock().unwrap();
        let stdin = stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).expect("write to arca lsp");
        stdin.flush().expect("flush to arca lsp");
    }

    /// Waits for a response whose id is exactly `id` (any JSON value,
    /// `null` included): `Ok(result)` or `Err(error object)`.
    pub fn response_with_id(
        &mut self,
        id: &Value,
        timeout: Duration,
    ) -> Option<Result<Value, Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.read_until(deadline)?;
            if message.get("method").is_none() && message.get("id") == Some(id) {
                if let Some(error) = message.get("error") {
                    return Some(Err(error.clone()));
                }
                return Some(Ok(message.get("result").cloned().unwrap_or(Value::Null)));
            }
            self.keep(message);
        }
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and waits for its response: `Ok(result)` or
    /// `Err(error object)`.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.send_request(method, params);
        self.response(id)
    }

    /// Sends a request without waiting; returns its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Waits for the response to request `id`.
    pub fn response(&mut self, id: i64) -> Result<Value, Value> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let message = self.read_until(deadline).unwrap_or_else(|| {
                panic!(
                    "no response to request {id} within {TIMEOUT:?}\nstderr:\n{}",
                    self.stderr()
                )
            });
            if message.get("method").is_none() && message.get("id") == Some(&json!(id)) {
                if let Some(error) = message.get("error") {
                    return Err(error.clone());
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            self.keep(message);
        }
    }

    fn keep(&mut self, message: Value) {
        if message.get("id").is_some() && message.get("method").is_some() {
            self.server_requests.push(message.clone());
        }
        if message.get("method").is_some() {
            self.pending.push_back(message);
        }
    }

    fn read_until(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.incoming.recv_timeout(left).ok()
    }

    /// Waits for a message with `method` whose params satisfy `accept`;
    /// messages skipped on the way stay available to later waits.
    pub fn wait_for(
        &mut self,
        method: &str,
        timeout: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(index) = self
            .pending
            .iter()
            .position(|message| message["method"] == method && accept(&message["params"]))
        {
            return self
                .pending
                .remove(index)
                .map(|message| message["params"].clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.read_until(deadline)?;
            if message["method"] == method && accept(&message["params"]) {
                if message.get("id").is_some() {
                    self.server_requests.push(message.clone());
                }
                return Some(message["params"].clone());
            }
            self.keep(message);
        }
    }

    /// Like [`wait_for`](Self::wait_for) with the default timeout, failing the
    /// test (with the server's stderr) when nothing comes.
    pub fn expect(&mut self, method: &str, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
        match self.wait_for(method, TIMEOUT, accept) {
            Some(params) => params,
            None => panic!(
                "no {method} ({what}) within {TIMEOUT:?}\nstill pending: {:#?}\nstderr:\n{}",
                self.pending,
                self.stderr()
            ),
        }
    }

    /// Drops every pending message with `method`.
    pub fn discard(&mut self, method: &str) {
        self.pending.retain(|message| message["method"] != method);
    }

    /// Reads everything that arrives within `window` into the pending list.
    pub fn drain(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        while let Some(message) = self.read_until(deadline) {
            self.keep(message);
        }
    }

    /// Pending messages with `method`, oldest first (consumed).
    pub fn take_all(&mut self, method: &str) -> Vec<Value> {
        let (taken, kept): (Vec<_>, Vec<_>) = self
            .pending
            .drain(..)
            .partition(|message| message["method"] == method);
        self.pending = kept.into();
        taken
            .into_iter()
            .map(|message| message["params"].clone())
            .collect()
    }

    /// The latest publishDiagnostics for `uri`, waiting for one that
    /// satisfies `accept`.
    pub fn diagnostics(&mut self, uri: &str, accept: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let params = self.expect(
            "textDocument/publishDiagnostics",
            &format!("diagnostics for {uri}"),
            |params| {
                params["uri"] == uri
                    && params["diagnostics"]
                        .as_array()
                        .is_some_and(|list| accept(list))
            },
        );
        params["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The next `arca/status` for the crate at `crate_uri` with `state`;
    /// earlier statuses of that crate are history and are dropped.
    pub fn status(&mut self, crate_uri: &str, state: &str) -> Value {
        let of_crate = |message: &Value| {
            message["method"] == "arca/status" && message["params"]["crate"] == crate_uri
        };
        if let Some(index) = self
            .pending
            .iter()
            .position(|message| of_crate(message) && message["params"]["state"] == state)
        {
            let found = self.pending.remove(index).expect("index in range");
            let mut position = 0;
            self.pending.retain(|message| {
                position += 1;
                position > index || !of_crate(message)
            });
            return found["params"].clone();
        }
        let status = self.expect("arca/status", &format!("{crate_uri} {state}"), |params| {
            params["crate"] == crate_uri && params["state"] == state
        });
        self.pending.retain(|message| !of_crate(message));
        status
    }

    /// Shutdown + exit; returns the exit code.
    pub fn shutdown(&mut self) -> Option<i32> {
        if self.shut_down {
            return None;
        }
        self.shut_down = true;
        let id = self.send_request("shutdown", Value::Null);
        let answered = self.response(id);
        assert_eq!(answered, Ok(Value::Null), "shutdown answers null");
        self.notify("exit", Value::Null);
        self.wait_exit(Duration::from_secs(10))
    }

    /// Waits for the process to end; kills it after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.shut_down = true;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Closes stdin (as a client that goes away does).
    pub fn close_stdin(&mut self) {
        self.shut_down = true;
        self.stdin.lock().unwrap().take();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.shut_down && !std::thread::panicking() {
            let _ = self.shutdown();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn file_uri(path: &Path) -> String {
    url::Url::from_file_path(path)
        .expect("absolute path")
        .to_string()
}

/// A crate's URI as PROTOCOL.md names crates (no trailing slash).
pub fn crate_uri(path: &Path) -> String {
    file_uri(path).trim_end_matches('/').to_owned()
}

fn write_message(out: &mut impl Write, message: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(message)?;
    write!(out, "Content-Length: {}\r\n\r\n", body.len())?;
    out.write_all(&body)?;
    out.flush()
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length:") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// Fixture crates in a temporary directory, with an ARCA_HOME beside them.
pub struct Workspace {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical tempdir");
        let home = root.join("arca-home");
        std::fs::create_dir_all(root.join("ws")).expect("mkdir ws");
        Self {
            root: root.join("ws"),
            home,
            _dir: dir,
        }
    }

    pub fn write(&self, relative: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    /// A binary crate at `relative` named `name`, with features `cli`,
    /// `http` and an optional dependency-free feature set, and the given
    /// config (none when `None`).
    pub fn demo_crate(&self, relative: &str, name: &str, config: Option<&str>) -> PathBuf {
        self.write(
            &format!("{relative}/Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[features]\ncli = []\nhttp = []\n\n[profile.fast]\ninherits = \"release\"\n\n[workspace]\n"
            ),
        );
        self.write(
            &format!("{relative}/src/main.rs"),
            "fn main() { println!(\"demo\"); }\n",
        );
        if let Some(config) = config {
            self.write(&format!("{relative}/.arca/config.toml"), config);
        }
        self.root.join(relative)
    }

    pub fn start(&self) -> Server {
        Server::start(Options {
            arca_home: &self.home,
            env: Vec::new(),
        })
    }
}

/// A complete config for the demo crate.
pub const COMPLETE_CONFIG: &str =
    "[rust]\nprofile = \"release\"\nfeatures = [\"cli\"]\nbase_image = \"debian:bookworm-slim\"\n";

impl Workspace {
    /// The crate's whole-tree fingerprint as `arca status --json` reports it
    /// (the CLI judges as the server does).
    pub fn cli_fingerprint(&self, crate_dir: &Path) -> String {
        let output = Command::new(arca_binary())
            .args(["status", "--json"])
            .arg(crate_dir)
            .env("ARCA_HOME", &self.home)
            .env_remove("RUST_LOG")
            .output()
            .expect("run arca status");
        let status: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "arca status --json: {error}\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        status["fingerprint"]
            .as_str()
            .unwrap_or_else(|| panic!("no fingerprint in {status}"))
            .to_owned()
    }

    /// Records an artifact of the demo crate (release, features [cli],
    /// debian:bookworm-slim) with this fingerprint, as a build would: staged
    /// and renamed into the store.
    pub fn store_artifact(&self, crate_dir: &Path, id: &str, fingerprint: &str) {
        let name = crate_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        store_artifact(&self.home, crate_dir, &name, &["cli"], id, fingerprint);
    }
}

/// Records an artifact (release, debian:bookworm-slim, binary = package
/// name) of the crate at `crate_dir` in `$arca_home/containers`.
pub fn store_artifact(
    arca_home: &Path,
    crate_dir: &Path,
    name: &str,
    features: &[&str],
    id: &str,
    fingerprint: &str,
) {
    {
        let store = arca::store::Store::at(arca_home.join("containers"));
        let pending = store.create(id).expect("stage artifact");
        std::fs::write(pending.staging_dir().join("image.tar"), b"not a real image")
            .expect("write archive");
        let name = name.to_owned();
        let metadata = arca::store::ArtifactMetadata {
            schema_version: 3,
            artifact_id: id.to_owned(),
            remote_tag: format!("{name}-{id}"),
            build_fingerprint: fingerprint.to_owned(),
            kind: "rust".to_owned(),
            created_at_epoch_ms: arca::store::now_epoch_ms(),
            crate_name: name.clone(),
            crate_version: "0.1.0".to_owned(),
            binary_name: name.clone(),
            source_path: crate_dir.display().to_string(),
            manifest_path: crate_dir.join("Cargo.toml").display().to_string(),
            cargo_profile: "release".to_owned(),
            cargo_features: features
                .iter()
                .map(|feature| (*feature).to_owned())
                .collect(),
            base_image: "debian:bookworm-slim".to_owned(),
            runtime: "docker".to_owned(),
            local_tag: format!("arca-local:{name}-{id}"),
            archive_file: "image.tar".to_owned(),
            uploaded_ref: None,
            uploaded_at_epoch_ms: None,
        };
        pending.commit(&metadata).expect("commit artifact");
    }
}
