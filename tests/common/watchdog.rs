//! A per-test time limit for the end-to-end engine tests. A test that hangs
//! (an engine that never answers, a child `arca` that never exits) would
//! otherwise hold its test binary, and CI, until CI's own limit ends the
//! whole run with nothing said. When a test outlives its limit
//! (`ARCA_TEST_TIMEOUT_SECS`, default 600) the watchdog prints the test,
//! the step it was in, the engines' containers and the podman service's
//! last log lines, kills the test process's children and exits the test
//! binary with a failure.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `eprintln!` straight to the process's stderr: the test harness captures
/// `eprintln!` of test threads (and of threads they spawn) and would never
/// show a report printed just before the process exits.
macro_rules! say {
    ($($arg:tt)*) => {
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    };
}

/// The limit when `ARCA_TEST_TIMEOUT_SECS` is unset.
const DEFAULT_LIMIT: Duration = Duration::from_secs(600);

/// Armed while it lives; dropping it (the test ended) disarms it.
pub struct Watchdog {
    step: Arc<Mutex<String>>,
    done: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    /// Arms a watchdog for the current test (named after its thread).
    pub fn arm() -> Self {
        let limit = std::env::var("ARCA_TEST_TIMEOUT_SECS")
            .ok()
            .and_then(|secs| secs.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIMIT);
        let test = std::thread::current()
            .name()
            .unwrap_or("an unnamed test")
            .to_owned();
        let step = Arc::new(Mutex::new(String::from("setting up")));
        let (done, ended) = mpsc::channel::<()>();
        let watched_step = step.clone();
        let started = Instant::now();
        std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = ended.recv_timeout(limit) {
                let step = watched_step.lock().map(|s| s.clone()).unwrap_or_default();
                give_up(&test, &step, started.elapsed());
            }
        });
        Self {
            step,
            done: Some(done),
        }
    }

    /// Records what the test is doing now, for the report on a timeout.
    pub fn step(&self, what: impl Into<String>) {
        if let Ok(mut step) = self.step.lock() {
            *step = what.into();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

/// Reports the hung test and ends the test binary.
fn give_up(test: &str, step: &str, elapsed: Duration) -> ! {
    say!(
        "\nwatchdog: test {test} timed out after {} s while: {step}",
        elapsed.as_secs()
    );
    for (what, program, args) in [
        ("docker containers", "docker", &["ps", "-a"][..]),
        ("podman containers", "podman", &["ps", "-a"][..]),
    ] {
        say!("watchdog: {what}:\n{}", run_briefly(program, args));
    }
    let log = Path::new("/var/log/arca-podman.log");
    if let Ok(text) = std::fs::read_to_string(log) {
        // Image copy chatter says nothing about a hang; warnings and errors do.
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| {
                ![
                    "Copying ",
                    "Writing manifest",
                    "Storing signatures",
                    "Getting image",
                ]
                .iter()
                .any(|chatter| line.starts_with(chatter))
            })
            .collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        say!(
            "watchdog: last lines of {}:\n{}",
            log.display(),
            tail.join("\n")
        );
    }
    kill_children();
    say!("watchdog: test {test} ... FAILED (timed out); 1 failed");
    std::process::exit(101);
}

/// A command's output, or why there is none; never waits more than 20 s.
fn run_briefly(program: &str, args: &[&str]) -> String {
    match Command::new("timeout")
        .arg("20")
        .arg(program)
        .args(args)
        .output()
    {
        Ok(output) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => format!("(could not run {program}: {error})"),
    }
}

/// SIGKILLs every process whose parent is this one (the `arca` and engine
/// CLI children a hung step left running).
fn kill_children() {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The parent pid is the second field after the `(comm)` one.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if parent == Some(me) {
            // SAFETY: kill(2) on a pid read from /proc; no memory is shared.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}
