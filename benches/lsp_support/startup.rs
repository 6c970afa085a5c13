//! Startup of the language server against one `arca status --json` (issue
//! 22): `cargo bench --bench lsp -- startup [--rounds N] [--load THREADS]`.
//!
//! Both are processes timed from spawn, interleaved round by round so the
//! machine's load weighs on both alike. The crate has a record for its
//! current fingerprint, so the server's first verdict is `fresh`; the
//! figure stops at the first `arca/status` that carries it (not a
//! placeholder). The server's `arca::startup` log gives the split by phase
//! (milliseconds since the server's clock started, medians over the rounds).
//! `--load N` keeps N threads spinning for the whole run (a loaded machine);
//! `/proc/loadavg` is printed before and after.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::lsp_client::{
    Options, Server, arca_binary, crate_uri, store_artifact, vscode_capabilities,
};

/// The figures of one run.
pub struct Startup {
    pub rounds: usize,
    pub cli: Duration,
    pub spawn_to_verdict: Duration,
    pub initialize_to_verdict: Duration,
    /// Phase name -> median milliseconds since the server's clock started,
    /// in the order the phases were first reached.
    pub phases: Vec<(String, f64)>,
    pub load_before: String,
    pub load_after: String,
}

/// What the command line asked for.
pub struct Request {
    pub rounds: usize,
    pub spinning_threads: usize,
}

impl Request {
    /// `--rounds N` (default 10) and `--load THREADS` (default 0).
    pub fn from_args(args: &[String]) -> Result<Self> {
        let value = |flag: &str| -> Result<Option<usize>> {
            match args.iter().position(|arg| arg == flag) {
                None => Ok(None),
                Some(index) => {
                    let text = args
                        .get(index + 1)
                        .with_context(|| format!("{flag} needs a number"))?;
                    let number = text
                        .parse()
                        .with_context(|| format!("{flag} {text}: not a number"))?;
                    Ok(Some(number))
                }
            }
        };
        Ok(Self {
            rounds: value("--rounds")?.unwrap_or(10).max(1),
            spinning_threads: value("--load")?.unwrap_or(0),
        })
    }
}

/// Measures `request.rounds` interleaved rounds on `crate_dir` (its
/// package is `name`).
pub fn measure(home: &Path, crate_dir: &Path, name: &str, request: &Request) -> Result<Startup> {
    ensure_fresh_record(home, crate_dir, name)?;
    let load = Load::start(request.spinning_threads);
    let load_before = loadavg();
    let mut cli = Vec::new();
    let mut spawned = Vec::new();
    let mut initialized = Vec::new();
    let mut phases: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    for _ in 0..request.rounds {
        cli.push(cli_status(home, crate_dir)?.0);
        let round = server_round(home, crate_dir)?;
        spawned.push(round.spawn_to_verdict);
        initialized.push(round.initialize_to_verdict);
        for (order, (phase, ms)) in round.phases.into_iter().enumerate() {
            let entry = phases.entry(phase).or_insert((order, Vec::new()));
            entry.1.push(ms);
        }
    }
    let load_after = loadavg();
    drop(load);
    let mut phases: Vec<(usize, String, f64)> = phases
        .into_iter()
        .map(|(phase, (order, mut samples))| {
            samples.sort_by(f64::total_cmp);
            (order, phase, samples[samples.len() / 2])
        })
        .collect();
    phases.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
    Ok(Startup {
        rounds: request.rounds,
        cli: median(cli),
        spawn_to_verdict: median(spawned),
        initialize_to_verdict: median(initialized),
        phases: phases
            .into_iter()
            .map(|(_, phase, ms)| (phase, ms))
            .collect(),
        load_before,
        load_after,
    })
}

impl Startup {
    /// The Markdown table BENCHMARKS.md quotes.
    pub fn print(&self, binary: &Path) {
        let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
        let ratio = |duration: Duration| duration.as_secs_f64() / self.cli.as_secs_f64();
        println!();
        println!("binary: {}", binary.display());
        println!("load average before: {}", self.load_before);
        println!("load average after:  {}", self.load_after);
        println!();
        println!(
            "| measurement (median of {}) | time | ratio | goal |",
            self.rounds
        );
        println!("|---|---:|---:|---|");
        println!(
            "| `arca status --json`, 50k tree (reference, spawn to exit) | {:.0} ms | 1.00x | - |",
            ms(self.cli)
        );
        println!(
            "| `arca lsp` spawn to first verdict (`fresh`) | {:.0} ms | {:.2}x | <= 1.3x |",
            ms(self.spawn_to_verdict),
            ratio(self.spawn_to_verdict)
        );
        println!(
            "| `arca lsp` `initialize` to first verdict | {:.0} ms | {:.2}x | <= 1.3x |",
            ms(self.initialize_to_verdict),
            ratio(self.initialize_to_verdict)
        );
        println!();
        println!("| phase (server clock) | reached at, median |");
        println!("|---|---:|");
        for (phase, at) in &self.phases {
            println!("| {phase} | {at:.1} ms |");
        }
    }
}

/// Stores a record for the crate's current fingerprint unless the store
/// already makes it fresh.
fn ensure_fresh_record(home: &Path, crate_dir: &Path, name: &str) -> Result<()> {
    let (_, status) = cli_status(home, crate_dir)?;
    if status["state"] == "fresh" {
        return Ok(());
    }
    let fingerprint = status["fingerprint"]
        .as_str()
        .with_context(|| format!("arca status gave no fingerprint: {status}"))?;
    let id = arca::store::Store::at(home.join("containers")).new_artifact_id();
    store_artifact(home, crate_dir, name, &[], &id, fingerprint);
    let (_, status) = cli_status(home, crate_dir)?;
    if status["state"] != "fresh" {
        bail!("a record for the current fingerprint did not make the crate fresh: {status}");
    }
    Ok(())
}

/// `arca status --json` of the crate, as a user runs it: time and output.
pub fn cli_status(home: &Path, crate_dir: &Path) -> Result<(Duration, Value)> {
    let started = Instant::now();
    let output = Command::new(arca_binary())
        .args(["status", "--json"])
        .arg(crate_dir)
        .env("ARCA_HOME", home)
        .env_remove("RUST_LOG")
        .output()
        .context("arca status")?;
    let elapsed = started.elapsed();
    let status: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| String::from_utf8_lossy(&output.stderr).into_owned())?;
    if status["fingerprint"].is_null() {
        bail!("arca status gave no fingerprint: {status}");
    }
    Ok((elapsed, status))
}

struct Round {
    spawn_to_verdict: Duration,
    initialize_to_verdict: Duration,
    phases: Vec<(String, f64)>,
}

fn server_round(home: &Path, crate_dir: &Path) -> Result<Round> {
    let spawned = Instant::now();
    let mut server = Server::start(Options {
        arca_home: home,
        env: vec![
            ("ARCA_TEST_LOG", "warn,arca::startup=debug".into()),
            ("RUST_LOG", "warn,arca::startup=debug".into()),
        ],
    });
    let initializing = Instant::now();
    server.initialize(&[crate_dir], vscode_capabilities());
    let uri = crate_uri(crate_dir);
    let verdict = server
        .wait_for("arca/status", Duration::from_secs(120), |params| {
            params["crate"] == uri.as_str()
                && (params["state"] == "fresh" || params["state"] == "stale")
        })
        .context("no arca/status with a verdict")?;
    let round = Round {
        spawn_to_verdict: spawned.elapsed(),
        initialize_to_verdict: initializing.elapsed(),
        phases: Vec::new(),
    };
    if verdict["state"] != "fresh" {
        bail!("the first verdict is not fresh: {verdict}");
    }
    server.shutdown();
    let phases = phases(&server.stderr());
    Ok(Round { phases, ..round })
}

/// `PHASE at MS ms` lines of the `arca::startup` log, in order (the only
/// debug lines: the server runs with `warn,arca::startup=debug`).
fn phases(log: &str) -> Vec<(String, f64)> {
    log.lines()
        .filter_map(|line| {
            let (_, message) = line.split_once(" DEBUG ")?;
            let message = message.strip_prefix("arca::startup: ").unwrap_or(message);
            let (phase, at) = message.rsplit_once(" at ")?;
            let ms = at.trim().strip_suffix(" ms")?.parse().ok()?;
            Some((phase.to_owned(), ms))
        })
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Threads spinning until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        // Let the load average climb a little before the first round.
        if count > 0 {
            std::thread::sleep(Duration::from_secs(5));
        }
        Self { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
