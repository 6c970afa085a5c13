//! `arca run --watch` against a real engine (issue 17; Docker, and Podman
//! for the main path): a change on
//! disk rebuilds the binary and the new program runs in the same container
//! (same id, a published port keeps answering), a compile error keeps the
//! old program, a `[run]` change replaces the container, a burst of 50
//! files is one rebuild, a second watch of the crate refuses naming the
//! first, a container removed by hand ends the watch, an engine that goes
//! away ends it with one clear error (the next watch removes what it left),
//! and Ctrl-C leaves no container.
//!
//! Needs `.ci/docker-up.sh` and `.ci/fixtures.sh`; without an engine each
//! test prints a note and passes, unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use docker::{DockerTest, Engine, RUNTIME_BASE};

/// Prints its version line, then serves it on port 8080 (when `serve` is
/// among its arguments) or sleeps.
fn program(version: &str) -> String {
    format!(
        r#"
fn main() {{
    let version = "{version}";
    println!("version: {{version}}");
    if std::env::args().any(|arg| arg == "serve") {{
        let listener = std::net::TcpListener::bind("0.0.0.0:8080").unwrap();
        for stream in listener.incoming() {{
            use std::io::Write;
            let _ = stream.unwrap().write_all(format!("{{version}}\n").as_bytes());
        }}
    }}
    loop {{
        std::thread::sleep(std::time::Duration::from_secs(1));
    }}
}}
"#
    )
}

fn configure(test: &DockerTest, run_table: &str) {
    std::fs::write(test.crate_dir.join("src/main.rs"), program("one")).expect("write main.rs");
    write_config(test, run_table);
}

fn write_config(test: &DockerTest, run_table: &str) {
    let config = format!(
        "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"{RUNTIME_BASE}\"\n\n{run_table}"
    );
    std::fs::write(test.crate_dir.join(".arca/config.toml"), config).expect("write config");
}

/// A running `arca run --watch` and its output lines as they come.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Everything read so far, for failure messages.
    seen: Vec<String>,
}

impl Watch {
    fn start(test: &DockerTest) -> Self {
        Self::spawn(test.arca(), test)
    }

    /// `arca run --watch` talking to the engine at `docker_host`.
    fn start_on(test: &DockerTest, docker_host: &str) -> Self {
        let mut arca = test.arca();
        arca.env("DOCKER_HOST", docker_host);
        Self::spawn(arca, test)
    }

    fn spawn(mut arca: Command, test: &DockerTest) -> Self {
        let child = arca
            .args(["run", "--watch"])
            .arg(&test.crate_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn arca run --watch");
        Self::adopt(child)
    }

    /// Follows a spawned `arca` with piped stdout and stderr.
    fn adopt(mut child: Child) -> Self {
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (stream, prefix) in [
            (Box::new(stdout) as Box<dyn Read + Send>, "out"),
            (Box::new(stderr), "err"),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(format!("{prefix}: {line}"));
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one contains `needle`; panics with the output after
    /// `timeout`. Returns the lines read before it.
    fn until(&mut self, needle: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return before;
                    }
                    before.push(line);
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; output:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Lines arriving within `wait`.
    fn quiet_for(&mut self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            lines.push(line);
        }
        lines
    }

    /// Ctrl-C; returns the exit code.
    fn interrupt(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.exit_code("after Ctrl-C")
    }

    /// Waits (at most a minute) for arca to end; its exit code. `after`
    /// says what should have ended it, for the failure message.
    fn exit_code(&mut self, after: &str) -> Option<i32> {
        let waited = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // What it printed on the way out.
                self.quiet_for(Duration::from_millis(300));
                return status.code();
            }
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "arca did not end {after}:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn live_containers(test: &DockerTest) -> Vec<String> {
    let label = format!(
        "{}={}",
        arca::pipeline::CRATE_DIR_LABEL,
        test.crate_dir.display()
    );
    test.runtime
        .block_on(
            test.engine
                .containers_with_labels(&[arca::runner::live::LIVE_LABEL, label.as_str()]),
        )
        .expect("list containers")
}

const FIRST_BUILD: Duration = Duration::from_secs(300);
const UPDATE: Duration = Duration::from_secs(120);

docker::engine_tests! {
    a_change_runs_in_the_same_container_and_a_compile_error_keeps_the_old_program: [docker, podman];
}

/// When the engine last started the container (`State.StartedAt`): the
/// same across a live update, which restarts the program, not the
/// container.
fn started_at(test: &DockerTest, container: &str) -> String {
    let output = Command::new(test.kind.name())
        .args(["inspect", "--format", "{{.State.StartedAt}}", container])
        .output()
        .expect("inspect");
    assert!(output.status.success(), "{}", docker::text(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn a_change_runs_in_the_same_container_and_a_compile_error_keeps_the_old_program(engine: Engine) {
    let Some(test) = DockerTest::on(engine) else {
        return;
    };
    configure(&test, "");
    let mut watch = Watch::start(&test);
    watch.until("out: version: one", FIRST_BUILD);
    let containers = live_containers(&test);
    assert_eq!(containers.len(), 1, "one live container");
    let first_start = started_at(&test, &containers[0]);

    std::fs::write(test.crate_dir.join("src/main.rs"), program("two")).expect("edit");
    let before = watch.until("out: version: two", UPDATE);
    assert_eq!(
        started_at(&test, &containers[0]),
        first_start,
        "the program was restarted, not the container"
    );
    // The separator (arca's stderr) and the new line (its stdout) come
    // microseconds apart; this test reads the two pipes apart, so it may
    // see them in either order.
    let mut around = before.clone();
    around.extend(watch.quiet_for(Duration::from_millis(500)));
    let separators: Vec<&String> = around
        .iter()
        .filter(|line| line.contains("── rebuilt after src/main.rs changed ("))
        .collect();
    assert_eq!(separators.len(), 1, "{around:#?}");
    assert_eq!(live_containers(&test), containers, "the same container");
    assert!(
        !before.iter().any(|line| line.contains("version: one")),
        "the old run's output is not replayed: {before:#?}"
    );

    // A compile error: the old program keeps running, the error is shown.
    std::fs::write(test.crate_dir.join("src/main.rs"), "fn main() { nope }\n").expect("break");
    watch.until("── the change does not build ──", UPDATE);
    watch.until("The old program keeps running.", UPDATE);
    assert_eq!(live_containers(&test), containers);
    let running = test
        .runtime
        .block_on(test.engine.container_running(&containers[0]))
        .expect("inspect");
    assert_eq!(running, Some(true), "the old program still runs");

    // Deleting src/main.rs, or breaking Cargo.toml: a clear error, the old
    // program kept.
    std::fs::remove_file(test.crate_dir.join("src/main.rs")).expect("delete main.rs");
    watch.until("── the change does not build ──", UPDATE);
    watch.until("The old program keeps running.", UPDATE);
    let cargo_toml = test.crate_dir.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&cargo_toml).expect("read Cargo.toml");
    std::fs::write(&cargo_toml, format!("{manifest}\n[dependencies\n")).expect("break");
    let failure = watch.until("The old program keeps running.", UPDATE);
    assert!(
        failure.iter().any(|line| line.contains("Cargo.toml")),
        "the error names Cargo.toml: {failure:#?}"
    );
    assert_eq!(live_containers(&test), containers);
    std::fs::write(&cargo_toml, manifest).expect("restore Cargo.toml");

    // The next good save updates it.
    std::fs::write(test.crate_dir.join("src/main.rs"), program("three")).expect("fix");
    watch.until("out: version: three", UPDATE);
    assert_eq!(live_containers(&test), containers);

    // A binary that exits at once is reported with its code; the watch goes
    // on, and the next save starts the stopped container again.
    std::fs::write(
        test.crate_dir.join("src/main.rs"),
        "fn main() { println!(\"crashing\"); std::process::exit(3) }\n",
    )
    .expect("crash");
    watch.until(
        "── the program exited with code 3; watching for changes ──",
        UPDATE,
    );
    std::fs::write(test.crate_dir.join("src/main.rs"), program("three")).expect("fix");
    watch.until("out: version: three", UPDATE);
    assert_eq!(live_containers(&test), containers);

    // A second watch of the crate refuses, naming the first.
    let second = test
        .arca()
        .args(["run", "--watch"])
        .arg(&test.crate_dir)
        .output()
        .expect("second watch");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "already runs live in process {}",
            watch.child.id()
        )),
        "{stderr}"
    );

    assert_eq!(watch.interrupt(), Some(130));
    assert_eq!(live_containers(&test), Vec::<String>::new());
    assert!(test.leftover_build_containers().is_empty());

    // The image of what ran live: cargo finds the live build fresh, so
    // `arca build rust` only packages.
    let build = test.build_cli(&[], None);
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "{stderr}");
    assert!(
        !stderr.contains("Compiling hello"),
        "compiled again: {stderr}"
    );
    let status = test
        .arca()
        .args(["status", "--json"])
        .arg(&test.crate_dir)
        .output()
        .expect("arca status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["state"], "fresh", "{status}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn ask(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer.trim().to_owned()).filter(|answer| !answer.is_empty())
}

fn answer_within(port: u16, wanted: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = ask(port);
        if answer.as_deref() == Some(wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port} answered {answer:?}, not {wanted:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_published_port_answers_across_the_swap_and_a_run_change_replaces_the_container() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let port = free_port();
    let run = format!("[run]\nargs = [\"serve\"]\nports = [\"{port}:8080\"]\n");
    configure(&test, &run);
    let mut watch = Watch::start(&test);
    watch.until("out: version: one", FIRST_BUILD);
    answer_within(port, "one", Duration::from_secs(10));
    let containers = live_containers(&test);

    // 50 files touched at once: one rebuild.
    for n in 0..50 {
        std::fs::write(test.crate_dir.join(format!("src/extra{n}.rs")), "// new\n").expect("write");
    }
    std::fs::write(test.crate_dir.join("src/main.rs"), program("two")).expect("edit");
    watch.until("out: version: two", UPDATE);
    answer_within(port, "two", Duration::from_secs(10));
    assert_eq!(
        live_containers(&test),
        containers,
        "same container, same port"
    );
    // The separator (arca's stderr) may trail the new program's line (its
    // stdout; the two pipes are read apart), so it is counted over all the
    // output once things have been quiet: one separator, one start of the
    // new program.
    watch.quiet_for(Duration::from_secs(3));
    let count = |needle: &str| {
        watch
            .seen
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    };
    assert_eq!(
        (count("── rebuilt after"), count("out: version: two")),
        (1, 1),
        "one rebuild for the burst, one start of the new program: {:#?}",
        watch.seen
    );

    // A change of `[run]` replaces the container.
    write_config(&test, &format!("{run}env = {{ GREETING = \"changed\" }}\n"));
    let before = watch.until("==> Running", UPDATE);
    assert!(
        before.iter().any(|line| line
            .contains("`.arca/config.toml` changed (run settings): live update cannot apply")),
        "{before:#?}"
    );
    watch.until("out: version: two", UPDATE);
    let replaced = live_containers(&test);
    assert_eq!(replaced.len(), 1);
    assert_ne!(replaced, containers, "a fresh container");
    answer_within(port, "two", Duration::from_secs(10));

    // A build setting (the profile) changes: a full build, a fresh container.
    let dev = format!("{run}env = {{ GREETING = \"changed\" }}\n");
    std::fs::write(
        test.crate_dir.join(".arca/config.toml"),
        format!(
            "[rust]\nprofile = \"dev\"\nfeatures = []\nbase_image = \"{RUNTIME_BASE}\"\n\n{dev}"
        ),
    )
    .expect("write config");
    let before = watch.until("==> Running", UPDATE);
    assert!(
        before
            .iter()
            .any(|line| line
                .contains("`.arca/config.toml` changed (profile): live update cannot apply")),
        "{before:#?}"
    );
    watch.until("out: version: two", UPDATE);
    let replaced = {
        let now = live_containers(&test);
        assert_eq!(now.len(), 1);
        assert_ne!(now, replaced, "a fresh container for the new profile");
        now
    };

    // Removed by hand: the watch says so and ends.
    let status = Command::new("docker")
        .args(["rm", "-f", &replaced[0]])
        .stdout(Stdio::null())
        .status()
        .expect("docker rm");
    assert!(status.success());
    watch.until("was removed outside Arca; the live run ends", UPDATE);
    let waited = Instant::now();
    let code = loop {
        if let Some(status) = watch.child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the watch went on"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(1));
    assert_eq!(live_containers(&test), Vec::<String>::new());
    let _ = std::io::stderr().flush();
}

/// Prints its version, then becomes a shell that ignores SIGTERM.
const STUBBORN: &str = r#"
use std::os::unix::process::CommandExt;
fn main() {
    println!("version: stubborn");
    let error = std::process::Command::new("/bin/sh")
        .args(["-c", "trap '' TERM; while :; do sleep 1; done"])
        .exec();
    panic!("exec failed: {error}");
}
"#;

#[test]
fn a_program_that_ignores_sigterm_is_killed_after_the_grace_time_and_said_so() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    configure(&test, "[live]\nimage = \"on-exit\"\n");
    std::fs::write(test.crate_dir.join("src/main.rs"), STUBBORN).expect("write main.rs");
    let mut watch = Watch::start(&test);
    watch.until("out: version: stubborn", FIRST_BUILD);
    std::thread::sleep(Duration::from_millis(500));
    let containers = live_containers(&test);
    std::fs::write(test.crate_dir.join("src/main.rs"), program("after")).expect("edit");
    let updated = Instant::now();
    let mut before = watch.until("out: version: after", UPDATE);
    // arca's notice (stderr) and the new line (stdout) come microseconds
    // apart and are read from two pipes: either order.
    before.extend(watch.quiet_for(Duration::from_millis(500)));
    assert!(
        before
            .iter()
            .any(|line| line.contains("did not stop on SIGTERM; killed after 10 s")),
        "{before:#?}"
    );
    assert!(
        updated.elapsed() >= Duration::from_secs(9),
        "{:?}",
        updated.elapsed()
    );
    assert_eq!(live_containers(&test), containers);
    assert_eq!(status_of(&test)["state"], "stale");
    // `[live] image = "on-exit"`: ending the run records the image of what
    // ran, without compiling again.
    assert_eq!(watch.interrupt(), Some(130));
    assert_eq!(live_containers(&test), Vec::<String>::new());
    let status = status_of(&test);
    assert_eq!(status["state"], "fresh", "{status}");
    let seen = watch.seen.join("\n");
    assert!(seen.contains("Recording the image of the binary"), "{seen}");
}

fn status_of(test: &DockerTest) -> serde_json::Value {
    let status = test
        .arca()
        .args(["status", "--json"])
        .arg(&test.crate_dir)
        .output()
        .expect("arca status");
    serde_json::from_slice(&status.stdout).expect("status JSON")
}

#[test]
fn a_remote_engine_gets_the_new_binary_built_from_shipped_source() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let Some(remote) = test.remote_host() else {
        eprintln!("note: no tcp endpoint of the engine (.ci/docker-up.sh); skipped");
        return;
    };
    configure(&test, "");
    let mut watch = Watch::start_on(&test, &remote);
    watch.until("out: version: one", FIRST_BUILD);
    let containers = live_containers(&test);
    assert_eq!(containers.len(), 1);
    std::fs::write(test.crate_dir.join("src/main.rs"), program("two")).expect("edit");
    watch.until("out: version: two", UPDATE);
    assert_eq!(live_containers(&test), containers, "the same container");
    assert_eq!(watch.interrupt(), Some(130));
    assert_eq!(live_containers(&test), Vec::<String>::new());
}

/// A relay from a loopback TCP port to the engine's socket that can be cut,
/// as an engine that goes away mid-run (its daemon stopped, the network
/// gone): every open connection is shut and new ones are closed at once.
struct CuttableEngine {
    host: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl CuttableEngine {
    fn to(socket: &'static str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("relay port");
        let host = format!("tcp://{}", listener.local_addr().expect("address"));
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (is_cut, connections) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if is_cut.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(engine) = std::os::unix::net::UnixStream::connect(socket) else {
                    continue;
                };
                connections
                    .lock()
                    .unwrap()
                    .push(client.try_clone().expect("clone"));
                docker::relay_both_ways(client, engine);
            }
        });
        Self { host, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for connection in self.open.lock().unwrap().drain(..) {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The engine goes away during a watch: a clear error and the watch ends
/// (it never loops); the container it could not remove then is removed by
/// the next watch of the crate, which runs in a container of its own.
#[test]
fn an_engine_that_goes_away_ends_the_watch_and_the_next_watch_clears_what_it_left() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    if !std::path::Path::new("/var/run/docker.sock").exists() {
        eprintln!("note: no Docker socket; skipped");
        return;
    }
    configure(&test, "");
    let engine = CuttableEngine::to("/var/run/docker.sock");
    let mut watch = Watch::start_on(&test, &engine.host);
    watch.until("out: version: one", FIRST_BUILD);
    let left = live_containers(&test);
    assert_eq!(left.len(), 1, "one live container");
    engine.cut();
    let code = watch.exit_code("once its engine went away");
    assert_eq!(code, Some(1), "{}", watch.seen.join("\n"));
    let said = watch.seen.join("\n");
    assert!(
        said.contains("err: error:") && said.contains("engine"),
        "a clear error naming the engine: {said}"
    );
    assert!(
        said.matches("err: error:").count() == 1,
        "said once, no loop: {said}"
    );
    // The engine is back (directly): the next watch removes what the
    // first one left and runs its own container.
    assert_eq!(
        live_containers(&test),
        left,
        "left while the engine was away"
    );
    let mut again = Watch::start(&test);
    again.until("out: version: one", FIRST_BUILD);
    let now = live_containers(&test);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, left, "the stale container was removed");
    assert_eq!(again.interrupt(), Some(130));
    assert_eq!(live_containers(&test), Vec::<String>::new());
}

/// Tags made for one test, removed however it ends.
struct Tags(Vec<String>);

impl Drop for Tags {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = Command::new("docker")
                .args(["rmi", "-f", tag])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// An image without `/bin/sh` cannot run the supervisor: the program is
/// the container's command, said once, and an update restarts the
/// container (same id, a new start).
#[test]
fn an_image_without_a_shell_is_updated_by_restarting_the_container() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    // The runtime fixture without its shell (a whiteout over it), under a
    // CUDA runtime name so the builder is the promoted fixture.
    let base = "nvidia/cuda:12.8.1-runtime-noshell";
    let builder = "nvidia/cuda:12.8.1-devel-noshell";
    let maker = format!("arca-test-noshell-{}", std::process::id());
    let _tags = Tags(vec![base.to_owned(), builder.to_owned()]);
    let removed = Command::new("docker")
        .args([
            "run",
            "--name",
            &maker,
            RUNTIME_BASE,
            "/bin/rm",
            "-f",
            "/usr/bin/sh",
            "/usr/bin/dash",
            "/bin/sh",
        ])
        .output()
        .expect("docker run");
    assert!(removed.status.success(), "{}", docker::text(&removed));
    let committed = Command::new("docker")
        .args(["commit", &maker, base])
        .output()
        .expect("docker commit");
    let _ = Command::new("docker").args(["rm", "-f", &maker]).output();
    assert!(committed.status.success(), "{}", docker::text(&committed));
    let tagged = Command::new("docker")
        .args(["tag", "nvidia/cuda:12.8.1-devel-ubuntu24.04", builder])
        .output()
        .expect("docker tag");
    assert!(tagged.status.success(), "{}", docker::text(&tagged));

    std::fs::write(test.crate_dir.join("src/main.rs"), program("one")).expect("write main.rs");
    std::fs::write(
        test.crate_dir.join(".arca/config.toml"),
        format!("[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"{base}\"\n"),
    )
    .expect("write config");
    let mut watch = Watch::start(&test);
    let before = watch.until("out: version: one", FIRST_BUILD);
    assert!(
        before.iter().any(|line| line
            .contains("The image has no /bin/sh, so each update restarts the container.")),
        "{before:#?}"
    );
    let containers = live_containers(&test);
    assert_eq!(containers.len(), 1);
    let first_start = started_at(&test, &containers[0]);
    std::fs::write(test.crate_dir.join("src/main.rs"), program("two")).expect("edit");
    watch.until("out: version: two", UPDATE);
    assert_eq!(live_containers(&test), containers, "the same container");
    assert_ne!(
        started_at(&test, &containers[0]),
        first_start,
        "the container itself was restarted"
    );
    assert_eq!(watch.interrupt(), Some(130));
    assert_eq!(live_containers(&test), Vec::<String>::new());
}
