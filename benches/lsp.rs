//! Language server benchmark (issue 4, "Numbers"): run with
//! `cargo bench --bench lsp` (after `cargo bench --bench fingerprint` has
//! generated the trees under `$ARCA_BENCH_DIR`, default `/tmp/arca-bench`).
//!
//! Drives the real `arca lsp` binary over stdio with the tests' client.
//! The fingerprint bench's 50,000-file tree and 50-file crate are copied as
//! hard links (no extra disk; edits here are atomic saves, which break the
//! link, and are reverted) and given a `src/main.rs` and a config. Measures,
//! with a warm page cache:
//! - startup to the first `arca/status` on the big tree, against the
//!   whole-tree fingerprint of the same tree computed in this process;
//! - save-to-status: a file written on disk until the `stale` notification
//!   is read, on both trees (median of 20);
//! - diagnostics after `didChange` on a typical config (median of 50);
//! - the server's resident memory while watching the big tree.

#[path = "../tests/support/lsp_client.rs"]
mod lsp_client;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use lsp_client::{Options, Server, crate_uri, file_uri, store_artifact, vscode_capabilities};

const CONFIG: &str = "# Arca settings for the benchmark crate.\n[rust]\nprofile = \"release\"\nfeatures = []\nbase_image = \"debian:bookworm-slim\"\n";

fn main() -> Result<()> {
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

    // Reference: the byte-exact whole-tree fingerprint of the big tree, in
    // this process, warm page cache (the server's startup also runs warm).
    let whole_tree = reference_fingerprint_time(&big)?;

    let startup = median(3, || startup_time(&home, &big))?;
    let (big_latency, rss_kb) = save_latency(&home, &big, "bench", "src/m7/s3/f42.rs", 20)?;
    let (small_latency, _) = save_latency(&home, &small, "small", "src/f7.rs", 20)?;
    let diagnostics = diagnostics_latency(&home, &small, 50)?;

    let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
    println!();
    println!("| measurement | median | ratio | goal |");
    println!("|---|---:|---:|---|");
    println!(
        "| whole-tree fingerprint, 50k tree (reference, in process) | {:.0} ms | 1.00x | - |",
        ms(whole_tree)
    );
    println!(
        "| startup to first arca/status, 50k tree | {:.0} ms | {:.2}x fingerprint | <= 1.3x |",
        ms(startup),
        startup.as_secs_f64() / whole_tree.as_secs_f64()
    );
    println!(
        "| save-to-status (stale), 50-file crate | {:.1} ms | 1.00x | - |",
        ms(small_latency)
    );
    println!(
        "| save-to-status (stale), 50k tree | {:.1} ms | {:.2}x small | < 100 ms, <= 1.5x |",
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
    Ok(())
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

fn reference_fingerprint_time(crate_dir: &Path) -> Result<Duration> {
    let facts = arca::workspace::load_crate_facts(crate_dir)?;
    let settings = arca::plan::BuildSettings {
        profile: "release".into(),
        features: Vec::new(),
        bin: facts.bins[0].clone(),
        base_image: "debian:bookworm-slim".into(),
    };
    let fingerprint_settings = arca::plan::container_fingerprint_settings(&facts, &settings);
    let roots = arca::fingerprint::input_roots(&facts, dirs::home_dir().as_deref());
    median(3, || {
        let started = Instant::now();
        arca::fingerprint::stream::whole_tree_fingerprint(&fingerprint_settings, &roots)?;
        Ok(started.elapsed())
    })
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

/// Process spawn until the first `arca/status` of the crate is read.
fn startup_time(home: &Path, crate_dir: &Path) -> Result<Duration> {
    let started = Instant::now();
    let mut server = start(home);
    server.initialize(&[crate_dir], vscode_capabilities());
    let uri = crate_uri(crate_dir);
    server
        .wait_for("arca/status", Duration::from_secs(120), |params| {
            params["crate"] == uri.as_str()
        })
        .context("no arca/status")?;
    let elapsed = started.elapsed();
    server.shutdown();
    Ok(elapsed)
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

fn median(runs: usize, mut run: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        samples.push(run()?);
    }
    Ok(median_of(samples))
}

fn median_of(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
