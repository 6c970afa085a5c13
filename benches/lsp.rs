//! Language server benchmark (issues 4 and 13, "Numbers"): run with
//! `cargo bench --bench lsp` (after `cargo bench --bench fingerprint` has
//! generated the trees under `$ARCA_BENCH_DIR`, default `/tmp/arca-bench`).
//!
//! Drives the real `arca lsp` binary over stdio with the tests' client:
//! every figure is measured from outside the process. The fingerprint
//! bench's 50,000-file tree and 50-file crate are copied as hard links (no
//! extra disk; edits here are atomic saves, which break the link, and are
//! reverted) and given a `src/main.rs` and a config. Measures, with a warm
//! page cache:
//! - startup (process spawn, and `initialize`) to the first verdict on the
//!   big tree, against `arca status --json` of the same tree (also a
//!   process), interleaved, with the split by phase (`lsp_support/startup.rs`;
//!   `cargo bench --bench lsp -- startup [--rounds N] [--load THREADS]`
//!   measures only that);
//! - save-to-status: a file written on disk until the `stale` notification
//!   is read, on both trees (median of 20);
//! - diagnostics after `didChange` on a typical config (median of 50);
//! - the server's resident memory while watching the big tree, its peak
//!   after a 20 MB document is opened and changed, and its peak on a
//!   200-crate workspace.

#[path = "../tests/support/lsp_client.rs"]
mod lsp_client;
#[path = "lsp_support/startup.rs"]
mod startup;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use lsp_client::{
    Options, Server, arca_binary, crate_uri, file_uri, store_artifact, vscode_capabilities,
};

const CONFIG: &str = "# Arca settings for the benchmark crate.\n[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"debian:bookworm-slim\"\n";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let startup_only = args.iter().any(|arg| arg == "startup");
    let request = startup::Request::from_args(&args)?;
    let base = std::env::var_os("ARCA_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/arca-bench"));
    for tree in ["big", "small"] {
        if !base.join(tree).join("complete").exists() {
            bail!(
                "{} is missing: run `cargo bench --bench fingerprint` first to generate the trees.",
                base.join(tree).display()
            );
        }
    }
    let big = prepare(&base, "big", "bench")?;
    let small = prepare(&base, "small", "small")?;
    let home = base.join("lsp/arca-home");

    let startup = startup::measure(&home, &big, "bench", &request)?;
    if startup_only {
        startup.print(&arca_binary());
        return Ok(());
    }
    let (big_latency, rss_kb) = save_latency(&home, &big, "bench", "src/m7/s3/f42.rs", 20)?;
    let (small_latency, _) = save_latency(&home, &small, "small", "src/f7.rs", 20)?;
    let diagnostics = diagnostics_latency(&home, &small, 50)?;
    let document_peak_kb = big_document_peak(&home, &small)?;
    let workspace_peak_kb = many_crates_peak(&base.join("lsp/many"), &home)?;

    let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
    startup.print(&arca_binary());
    println!();
    println!("| measurement | median | ratio | goal |");
    println!("|---|---:|---:|---|");
    println!(
        "| save-to-status (stale), 50-file crate | {:.1} ms | 1.00x | - |",
        ms(small_latency)
    );
    println!(
        "| save-to-status (stale), 50k tree | {:.1} ms | {:.2}x small | < 30 ms, <= 1.5x |",
        ms(big_latency),
        big_latency.as_secs_f64() / small_latency.as_secs_f64()
    );
    println!(
        "| diagnostics after didChange | {:.2} ms | - | < 5 ms |",
        ms(diagnostics)
    );
    println!(
        "| server RSS watching the 50k tree | {:.1} MB | - | < 80 MB |",
        rss_kb as f64 / 1024.0
    );
    println!(
        "| server peak RSS after a 20 MB document | {:.1} MB | - | < 150 MB |",
        document_peak_kb as f64 / 1024.0
    );
    println!(
        "| server peak RSS on a 200-crate workspace | {:.1} MB | - | < 150 MB |",
        workspace_peak_kb as f64 / 1024.0
    );
    Ok(())
}

/// The server's peak RSS after a 20 MB config document is opened and
/// changed once (the checker reads it whole).
fn big_document_peak(home: &Path, crate_dir: &Path) -> Result<u64> {
    let mut server = start(home);
    server.initialize(&[crate_dir], vscode_capabilities());
    let uri = file_uri(&crate_dir.join(".arca/config.toml"));
    let mut text = String::from(CONFIG);
    while text.len() < 20 << 20 {
        text.push_str("# a comment line that makes the document large\n");
    }
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "toml", "version": 1, "text": text}}),
    );
    server.diagnostics(&uri, |_| true);
    text.push_str("[rust2]\n");
    server.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": text}]}),
    );
    server
        .wait_for(
            "textDocument/publishDiagnostics",
            Duration::from_secs(60),
            |params: &Value| params["uri"] == uri.as_str() && params["version"] == 2,
        )
        .context("no diagnostics for the 20 MB document")?;
    let peak = peak_kb(server.pid())?;
    server.shutdown();
    Ok(peak)
}

/// The server's peak RSS once every crate of a 200-member workspace has a
/// status.
fn many_crates_peak(root: &Path, home: &Path) -> Result<u64> {
    if !root.join("complete").exists() {
        let _ = std::fs::remove_dir_all(root);
        let members: Vec<String> = (0..200).map(|index| format!("m{index:03}")).collect();
        std::fs::create_dir_all(root)?;
        let list: Vec<String> = members
            .iter()
            .map(|member| format!("\"{member}\""))
            .collect();
        std::fs::write(
            root.join("Cargo.toml"),
            format!(
                "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
                list.join(", ")
            ),
        )?;
        for member in &members {
            std::fs::create_dir_all(root.join(member).join("src"))?;
            std::fs::write(
                root.join(member).join("Cargo.toml"),
                format!(
                    "[package]\nname = \"{member}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"
                ),
            )?;
            std::fs::write(root.join(member).join("src/main.rs"), "fn main() {}\n")?;
            std::fs::create_dir_all(root.join(member).join(".arca"))?;
            std::fs::write(root.join(member).join(".arca/config.toml"), CONFIG)?;
        }
        std::fs::write(root.join("complete"), "")?;
    }
    let mut server = start(home);
    server.initialize(&[root], vscode_capabilities());
    let mut told = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while told.len() < 200 {
        if Instant::now() > deadline {
            bail!("only {} of 200 crates got a status", told.len());
        }
        server.drain(Duration::from_millis(50));
        for status in server.take_all("arca/status") {
            if !status["fingerprint"].is_null() {
                told.insert(status["crate"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    let peak = peak_kb(server.pid())?;
    server.shutdown();
    Ok(peak)
}

fn peak_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")
}

/// `$base/lsp/<tree>`: a hard-linked copy of the fingerprint bench's crate
/// with a binary target and a complete config.
fn prepare(base: &Path, tree: &str, name: &str) -> Result<PathBuf> {
    let target = base.join("lsp").join(tree);
    let crate_dir = target.join("crate");
    if !target.join("complete").exists() {
        let _ = std::fs::remove_dir_all(&target);
        std::fs::create_dir_all(&target)?;
        let status = Command::new("cp")
            .arg("-al")
            .arg(base.join(tree).join("crate"))
            .arg(&crate_dir)
            .status()
            .context("cp -al")?;
        if !status.success() {
            bail!("cp -al failed");
        }
        std::fs::write(crate_dir.join("src/main.rs"), "fn main() {}\n")?;
        std::fs::create_dir_all(crate_dir.join(".arca"))?;
        std::fs::write(crate_dir.join(".arca/config.toml"), CONFIG)?;
        std::fs::write(target.join("complete"), "")?;
    }
    let _ = name;
    Ok(crate_dir)
}

fn start(home: &Path) -> Server {
    Server::start(Options {
        arca_home: home,
        env: vec![
            ("ARCA_TEST_LOG", "warn".into()),
            ("RUST_LOG", "warn".into()),
        ],
    })
}

/// Median time from writing `relative` until the `stale` status is read,
/// with a fresh artifact in the store; and the server's RSS afterwards.
fn save_latency(
    home: &Path,
    crate_dir: &Path,
    name: &str,
    relative: &str,
    runs: usize,
) -> Result<(Duration, u64)> {
    let mut server = start(home);
    server.initialize(&[crate_dir], vscode_capabilities());
    let uri = crate_uri(crate_dir);
    let first = server
        .wait_for("arca/status", Duration::from_secs(120), |params| {
            params["crate"] == uri.as_str() && !params["fingerprint"].is_null()
        })
        .context("no arca/status with a fingerprint")?;
    if first["state"] != "fresh" {
        let fingerprint = first["fingerprint"].as_str().unwrap_or_default().to_owned();
        let id = arca::store::Store::at(home.join("containers")).new_artifact_id();
        store_artifact(home, crate_dir, name, &[], &id, &fingerprint);
        server.status(&uri, "fresh");
    }
    let path = crate_dir.join(relative);
    let original = std::fs::read(&path)?;
    let mut edited = original.clone();
    edited.extend_from_slice(b"\n// edited\n");
    let mut samples = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        atomic_write(&path, &edited)?;
        server.status(&uri, "stale");
        samples.push(started.elapsed());
        atomic_write(&path, &original)?;
        server.status(&uri, "fresh");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss = rss_kb(server.pid())?;
    server.shutdown();
    Ok((median_of(samples), rss))
}

/// Write to a temporary file and rename it over `path`, as editors save
/// (and so a hard-linked source tree is never modified).
fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let temporary = path.with_extension("arca-bench-tmp");
    std::fs::write(&temporary, data)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

/// didChange with a new config text until its publishDiagnostics is read.
fn diagnostics_latency(home: &Path, crate_dir: &Path, runs: usize) -> Result<Duration> {
    let mut server = start(home);
    server.initialize(&[crate_dir], vscode_capabilities());
    let config = crate_dir.join(".arca/config.toml");
    let uri = file_uri(&config);
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "toml", "version": 1, "text": CONFIG}}),
    );
    server.diagnostics(&uri, |_| true);
    std::thread::sleep(Duration::from_millis(500));
    server.drain(Duration::from_millis(200));
    server.discard("textDocument/publishDiagnostics");
    let mut samples = Vec::new();
    for version in 2..(2 + runs as i64) {
        let text = if version % 2 == 0 {
            CONFIG.replace("release", "relase")
        } else {
            CONFIG.to_owned()
        };
        let started = Instant::now();
        server.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
        server
            .wait_for(
                "textDocument/publishDiagnostics",
                Duration::from_secs(10),
                |params: &Value| params["uri"] == uri.as_str() && params["version"] == version,
            )
            .context("no diagnostics")?;
        samples.push(started.elapsed());
    }
    server.shutdown();
    Ok(median_of(samples))
}

fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

fn median_of(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
