//! `arca run` against a real Docker engine (issue 14): builds a stale crate
//! first, runs the image with the `[run]` settings and `-- ARGS`, streams
//! its output, passes on its exit code, stops it on Ctrl-C through the
//! engine's init, removes its container every time, refuses a config with
//! errors at once, and turns Docker's GPU refusal into a message naming
//! the NVIDIA Container Toolkit.
//!
//! Needs `.ci/docker-up.sh` and `.ci/fixtures.sh`; without an engine each
//! test prints a note and passes, unless `ARCA_REQUIRE_DOCKER=1`.

#[path = "common/docker.rs"]
mod docker;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use docker::{DockerTest, RUNTIME_BASE, text};

/// A program that shows what it was given: its arguments, `GREETING`, and
/// `exit=N` to exit with N, `ticks` to print forever.
const PROGRAM: &str = r#"
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("args: {}", args.join(" "));
    println!("greeting: {}", std::env::var("GREETING").unwrap_or_default());
    eprintln!("to stderr");
    if args.iter().any(|arg| arg == "ticks") {
        loop {
            println!("tick");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    let code = args.iter().find_map(|arg| arg.strip_prefix("exit=")).map_or(0, |n| n.parse().unwrap());
    std::process::exit(code);
}
"#;

fn configure(test: &DockerTest, run_table: &str) {
    std::fs::write(test.crate_dir.join("src/main.rs"), PROGRAM).expect("write main.rs");
    let config = format!(
        "[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"{RUNTIME_BASE}\"\n\n{run_table}"
    );
    std::fs::write(test.crate_dir.join(".arca/config.toml"), config).expect("write config");
}

fn arca_run(test: &DockerTest, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arca"))
        .arg("run")
        .arg(&test.crate_dir)
        .args(args)
        .env("ARCA_HOME", test.home.path())
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run arca")
}

fn run_containers(test: &DockerTest) -> Vec<String> {
    let label = format!("{}={}", arca::runner::RUN_LABEL, test.crate_dir.display());
    test.runtime
        .block_on(test.engine.containers_with_labels(&[label.as_str()]))
        .expect("list containers")
}

#[test]
fn run_builds_when_stale_then_runs_with_config_and_args_and_removes_the_container() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    configure(
        &test,
        "[run]\nargs = [\"from\", \"config\", \"exit=3\"]\nenv = { GREETING = \"hi there\" }\n",
    );
    let output = arca_run(&test, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("==> Building crate inside the builder container"),
        "{}",
        text(&output)
    );
    assert!(
        stdout.contains("args: from config exit=3"),
        "{}",
        text(&output)
    );
    assert!(stdout.contains("greeting: hi there"), "{}", text(&output));
    assert!(stderr.contains("to stderr"), "{}", text(&output));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(run_containers(&test), Vec::<String>::new());

    // Fresh now: no build; arguments after `--` replace the configured ones.
    let output = arca_run(&test, &["--", "given", "here"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("==> Building crate"), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("args: given here"),
        "{}",
        text(&output)
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(run_containers(&test), Vec::<String>::new());
}

#[test]
fn ctrl_c_stops_the_program_through_the_init_and_removes_the_container() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    configure(&test, "[run]\nargs = [\"ticks\"]\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arca"))
        .arg("run")
        .arg(&test.crate_dir)
        .env("ARCA_HOME", test.home.path())
        .env_remove("DOCKER_HOST")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn arca run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let started = Instant::now();
    loop {
        let line = lines.next().expect("a line before the end").expect("read");
        if line == "tick" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "no tick");
    }
    assert_eq!(run_containers(&test).len(), 1, "one running container");
    let interrupted = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = child.wait().expect("wait");
    // SIGTERM reached the program through the init (no 10 s kill timeout).
    assert!(
        interrupted.elapsed() < Duration::from_secs(8),
        "stopping took {:?}",
        interrupted.elapsed()
    );
    assert_eq!(status.code(), Some(143), "killed by SIGTERM: {status:?}");
    assert_eq!(run_containers(&test), Vec::<String>::new());
}

#[test]
fn a_config_error_is_refused_at_once_without_building() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    std::fs::write(
        test.crate_dir.join(".arca/config.toml"),
        format!(
            "[rust]\nprofile = \"release\"\nfeatures = [\"no-such-feature\"]\nbase_image = \"{RUNTIME_BASE}\"\n"
        ),
    )
    .expect("write config");
    for args in [&["run"][..], &["build", "rust"][..]] {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .arg(&test.crate_dir)
            .env("ARCA_HOME", test.home.path())
            .output()
            .expect("run arca");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}", text(&output));
        assert!(
            stderr.contains("has an error, so nothing was built")
                && stderr.contains("no-such-feature")
                && stderr.contains("line 3"),
            "{}",
            text(&output)
        );
        assert!(
            !stderr.contains("==> Ensuring builder"),
            "{}",
            text(&output)
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    assert!(test.store().list().artifacts.is_empty());
}

#[test]
fn gpus_without_the_nvidia_runtime_names_the_container_toolkit() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    configure(&test, "[run]\ngpus = \"all\"\n");
    let output = arca_run(&test, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        // This engine has the NVIDIA runtime: the request was honoured.
        assert!(String::from_utf8_lossy(&output.stdout).contains("args:"));
        return;
    }
    assert!(
        stderr.contains("NVIDIA Container Toolkit") && stderr.contains("gpu"),
        "{}",
        text(&output)
    );
    assert_eq!(run_containers(&test), Vec::<String>::new());
}

/// `[rust] init = true` (issue 10): the image carries a static init as its
/// entrypoint wrapper, so a plain `docker run` (no `--init`) of a binary
/// that installs no signal handler still stops at once on `docker stop`
/// (as PID 1 without an init, the kernel drops SIGTERM and Docker waits
/// its 10 s grace before SIGKILL).
#[test]
fn an_image_built_with_init_stops_promptly_under_a_plain_docker_run() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    configure(&test, "");
    let config = test.crate_dir.join(".arca/config.toml");
    let text_before = std::fs::read_to_string(&config).expect("read config");
    std::fs::write(
        &config,
        text_before.replace("[rust]\n", "[rust]\ninit = true\n"),
    )
    .expect("write config");
    let output = test.build_cli(&[], None);
    assert!(output.status.success(), "{}", text(&output));
    let artifact = test
        .store()
        .newest_for_crate(&test.crate_dir)
        .expect("an artifact");
    let tag = artifact.metadata.local_tag.clone();

    let docker = docker::docker_cli;
    let entrypoint = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Entrypoint}}",
        &tag,
    ]);
    assert_eq!(
        entrypoint,
        r#"["/usr/local/bin/arca-init","--","/usr/local/bin/hello"]"#
    );

    // The image runs (through the init), passing on the program's output.
    let (printed, code) = test.run_image(&tag);
    assert_eq!(code, 0, "{printed}");
    assert!(printed.contains("greeting: "), "{printed}");

    let label = format!(
        "{}={}",
        arca::pipeline::CRATE_DIR_LABEL,
        test.crate_dir.display()
    );
    let id = docker(&["run", "-d", "--label", &label, &tag, "ticks"]);
    let started = Instant::now();
    while !docker(&["logs", &id]).contains("tick") {
        assert!(started.elapsed() < Duration::from_secs(60), "no tick");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopping = Instant::now();
    docker(&["stop", &id]);
    let took = stopping.elapsed();
    let exit_code = docker(&["inspect", "--format", "{{.State.ExitCode}}", &id]);
    docker(&["rm", "-f", &id]);
    assert!(took < Duration::from_secs(5), "docker stop took {took:?}");
    // tini passes on the program's death by SIGTERM as 128 + 15.
    assert_eq!(exit_code, "143");
}

/// The live-update primitive (issue 17): one container started many
/// times, a file copied into it between runs, and each run's output
/// alone forwarded (an attach never replays earlier runs' output).
#[test]
fn a_container_restarted_attached_runs_the_file_copied_into_it_and_shows_only_that_run() {
    let Some(test) = DockerTest::new() else {
        return;
    };
    let spec = arca::engine::ContainerSpec {
        image: RUNTIME_BASE.to_owned(),
        cmd: [
            "/bin/sh",
            "-c",
            "cat /greeting 2>/dev/null || echo none; exit 4",
        ]
        .map(String::from)
        .to_vec(),
        labels: vec![(
            arca::pipeline::CRATE_DIR_LABEL.to_owned(),
            test.crate_dir.display().to_string(),
        )],
        ..Default::default()
    };
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(8);
    header.set_mode(0o644);
    header.set_cksum();
    archive
        .append_data(&mut header, "greeting", &b"swapped\n"[..])
        .expect("tar entry");
    let archive = archive.into_inner().expect("tar");
    test.runtime.block_on(async {
        let engine = test.engine.as_ref();
        let id = engine.create_container(&spec).await.expect("create");
        let run = |expected: &'static str| {
            let id = id.clone();
            async move {
                let lines = std::sync::Mutex::new(Vec::new());
                let sink =
                    |line: arca::engine::OutputLine| lines.lock().expect("lines").push(line.text);
                let code = engine
                    .start_attached(&id, &sink)
                    .await
                    .expect("run attached");
                assert_eq!(code, 4);
                assert_eq!(
                    lines.into_inner().expect("lines"),
                    vec![expected.to_owned()]
                );
            }
        };
        run("none").await;
        engine
            .upload_tar(&id, "/", archive)
            .await
            .expect("copy into the stopped container");
        run("swapped").await;
        engine.remove_container(&id).await.expect("remove");
    });
}
