//! Fingerprint benchmark (issue 2, "Numbers"): run with
//! `cargo bench --bench fingerprint`.
//!
//! Generates once (cached under `$ARCA_BENCH_DIR`, default `/tmp/arca-bench`)
//! a 50,000-file / ~1 GB crate (small `.rs` files in nested directories,
//! four 150 MB assets, plus a `target/` and `.git/` that must be skipped) and
//! a 50-file crate. Then, with a warm page cache, measures in one run the
//! median of several runs of: a plain single-threaded walk-and-read (same
//! order and skip rules, no hashing), the byte-exact stream, the per-file
//! index build, the stream and index together, and the verdict after one
//! 10 KB file changes, and prints each against its goal.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arca::fingerprint::index::{TreeIndex, stream_and_index};
use arca::fingerprint::stream::whole_tree_fingerprint;
use arca::fingerprint::{BuildModeKey, FingerprintSettings};

/// Bump when the generated trees change shape.
const TREE_VERSION: &str = "arca-bench-tree-v1";
const MODULES: usize = 50;
const SUBDIRS: usize = 10;
const FILES_PER_SUBDIR: usize = 100;
const ASSETS: usize = 4;
const ASSET_SIZE: usize = 150 << 20;
const SMALL_CRATE_FILES: usize = 49;

fn main() -> Result<()> {
    let base = std::env::var_os("ARCA_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/arca-bench"));
    let big = base.join("big");
    let small = base.join("small");
    ensure_tree(&big, generate_big)?;
    ensure_tree(&small, generate_small)?;
    let big_roots = vec![big.join("crate")];
    let small_roots = vec![small.join("crate")];

    // Warm the page cache and report the tree's size.
    let (files, bytes) = walk_and_read(&big_roots)?;
    walk_and_read(&small_roots)?;
    println!(
        "tree: {} files, {:.2} GB of input (target/ and .git/ skipped)",
        files,
        bytes as f64 / 1e9
    );

    // Memory held by the index of the big tree (resident growth while it is
    // alive; measured first, before other runs leave freed memory around).
    let before = resident_bytes();
    let held = TreeIndex::build(&big_roots, &big_roots[0])?;
    println!(
        "index of the big tree: {} entries, about {:.1} MB resident",
        held.len(),
        resident_bytes().saturating_sub(before) as f64 / 1e6
    );
    drop(held);

    let (sha256, xxh3) = hash_speeds();
    println!(
        "in-memory hash speed, per CPU second: SHA-256 {sha256:.0} MB/s, XXH3-128 {xxh3:.0} MB/s"
    );
    if std::env::var_os("ARCA_BENCH_HASH_ONLY").is_some() {
        return Ok(());
    }

    let settings = settings(&big);
    let crate_dir = &big_roots[0];
    println!(
        "stream fingerprint of the tree: {} (check: python3 scripts/fingerprint_reference.py tree \\
         --workspace-root {} --package bench --version 0.1.0 --binary bench --profile release \\
         --base-image debian:bookworm-slim --builder-key arca-rust-builder-v1:arca-builder:bench {})",
        whole_tree_fingerprint(&settings, &big_roots)?,
        crate_dir.display(),
        crate_dir.display()
    );
    let walk = || walk_and_read(&big_roots).map(|_| ());
    let stream = || whole_tree_fingerprint(&settings, &big_roots).map(|_| ());
    let index = || TreeIndex::build(&big_roots, crate_dir).map(|_| ());
    let both = || stream_and_index(&settings, &big_roots, crate_dir).map(|_| ());
    if let Some(only) = std::env::var_os("ARCA_BENCH_PROFILE") {
        // Run one measurement ten times, e.g. under `perf record`.
        let mut run: Box<dyn FnMut() -> Result<()>> = match only.to_str() {
            Some("walk") => Box::new(walk),
            Some("stream") => Box::new(stream),
            Some("index") => Box::new(index),
            _ => Box::new(both),
        };
        for _ in 0..10 {
            run()?;
        }
        return Ok(());
    }

    let [walk, stream, index, both] = interleaved_medians(
        RUNS,
        [
            Box::new(walk),
            Box::new(stream),
            Box::new(index),
            Box::new(both),
        ],
    )?;
    let (verdict_big, verdict_small) = verdicts(
        (&big_roots, "src/m7/s3/f42.rs"),
        (&small_roots, "src/f7.rs"),
    )?;
    let small_settings = self::settings(&small);
    let small_dir = &small_roots[0];
    let [small_stream, small_both] = interleaved_medians(
        21,
        [
            Box::new(|| whole_tree_fingerprint(&small_settings, &small_roots).map(|_| ())),
            Box::new(|| stream_and_index(&small_settings, &small_roots, small_dir).map(|_| ())),
        ],
    )?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let sha_bound = Duration::from_secs_f64(bytes as f64 / 1e6 / sha256);
    println!();
    println!("| measurement | wall (median of 7) | CPU (user+sys) | ratio | goal |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| walk-and-read (reference: 1 thread, same walk, no hashing) | {:.0} ms | {:.0} ms | 1.00x walk | - |",
        ms(walk.wall),
        ms(walk.cpu)
    );
    println!(
        "| SHA-256 of the same bytes in memory, 1 core (lower bound of any byte-exact stream) | {:.0} ms | - | {:.2}x walk | - |",
        ms(sha_bound),
        ratio(sha_bound, walk.wall)
    );
    println!(
        "| byte-exact stream (`whole_tree_fingerprint`) | {:.0} ms | {:.0} ms | {:.2}x walk, {:.2}x SHA-256 bound | <= 1.1x walk |",
        ms(stream.wall),
        ms(stream.cpu),
        ratio(stream.wall, walk.wall),
        ratio(stream.wall, sha_bound)
    );
    println!(
        "| per-file index build (`TreeIndex::build`) | {:.0} ms | {:.0} ms | {:.2}x stream | <= 0.6x stream |",
        ms(index.wall),
        ms(index.cpu),
        ratio(index.wall, stream.wall)
    );
    println!(
        "| stream + index from one read (`stream_and_index`) | {:.0} ms | {:.0} ms | {:.2}x stream | <= 1.3x stream |",
        ms(both.wall),
        ms(both.cpu),
        ratio(both.wall, stream.wall)
    );
    println!(
        "| verdict after one 10 KB change, 50,000 files (median of 401) | {:.3} ms | - | {:.2}x 50-file | < 5 ms, <= 2x 50-file |",
        ms(verdict_big),
        ratio(verdict_big, verdict_small)
    );
    println!(
        "| verdict after one 10 KB change, 50 files (median of 401) | {:.3} ms | - | 1.00x | - |",
        ms(verdict_small)
    );
    println!(
        "| 50-file crate: byte-exact stream / stream + index (median of 21) | {:.2} ms / {:.2} ms | {:.2} ms / {:.2} ms | - | - |",
        ms(small_stream.wall),
        ms(small_both.wall),
        ms(small_stream.cpu),
        ms(small_both.cpu)
    );
    Ok(())
}

/// This thread's CPU time: single-thread speeds that other processes on
/// the machine do not distort.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// SHA-256 and BLAKE3 throughput (MB per second of this thread's CPU time)
/// over 256 MB in memory, in 1 MB updates.
fn hash_speeds() -> (f64, f64) {
    let data: Vec<u8> = (0..256usize << 20).map(|i| (i * 7 % 251) as u8).collect();
    let rate = |elapsed: Duration| data.len() as f64 / 1e6 / elapsed.as_secs_f64();
    let start = thread_cpu_time();
    let mut sha = <sha2::Sha256 as sha2::Digest>::new();
    for chunk in data.chunks(1 << 20) {
        sha2::Digest::update(&mut sha, chunk);
    }
    std::hint::black_box(sha2::Digest::finalize(sha));
    let sha_rate = rate(thread_cpu_time() - start);
    let start = thread_cpu_time();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for chunk in data.chunks(1 << 20) {
        hasher.update(chunk);
    }
    std::hint::black_box(hasher.digest128());
    (sha_rate, rate(thread_cpu_time() - start))
}

fn settings(base: &Path) -> FingerprintSettings {
    FingerprintSettings {
        workspace_root: base.join("crate"),
        package_name: "bench".into(),
        package_version: "0.1.0".into(),
        binary_name: "bench".into(),
        profile: "release".into(),
        features: Vec::new(),
        base_image: "debian:bookworm-slim".into(),
        mode: BuildModeKey::Container {
            fingerprint_key: "arca-rust-builder-v1:arca-builder:bench".into(),
        },
    }
}

/// This process's resident memory, from /proc/self/statm.
fn resident_bytes() -> u64 {
    let pages = fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Wall and CPU time of one measurement.
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// This process's CPU time (user + system, all threads).
fn process_cpu_time() -> Duration {
    // SAFETY: `usage` is a valid rusage for the call to fill.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Runs of each whole-tree measurement.
const RUNS: usize = 7;

/// Medians of the wall and CPU times of `runs` rounds, each round running
/// every measurement once in turn, so that the machine's changing load
/// weighs on all of them alike.
fn interleaved_medians<const N: usize>(
    runs: usize,
    mut measurements: [Box<dyn FnMut() -> Result<()> + '_>; N],
) -> Result<[Timing; N]> {
    let mut walls = vec![Vec::with_capacity(runs); N];
    let mut cpus = vec![Vec::with_capacity(runs); N];
    for _ in 0..runs {
        for (index, run) in measurements.iter_mut().enumerate() {
            let start = Instant::now();
            let cpu = process_cpu_time();
            run()?;
            walls[index].push(start.elapsed());
            cpus[index].push(process_cpu_time() - cpu);
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let timings: Vec<Timing> = walls
        .iter_mut()
        .zip(cpus.iter_mut())
        .map(|(wall, cpu)| Timing {
            wall: median(wall),
            cpu: median(cpu),
        })
        .collect();
    timings
        .try_into()
        .map_err(|_| anyhow::anyhow!("one timing per measurement"))
}

/// One tree for the verdict measurement: its index and the 10 KB file
/// that changes.
struct VerdictCase {
    index: TreeIndex,
    path: PathBuf,
    original: Vec<u8>,
    changed: Vec<u8>,
    times: Vec<Duration>,
}

impl VerdictCase {
    fn new(roots: &[PathBuf], relative: &str) -> Result<VerdictCase> {
        let crate_dir = &roots[0];
        let path = crate_dir.join(relative);
        let original = fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        anyhow::ensure!(
            original.len() == 10 * 1024,
            "{} is not 10 KB",
            path.display()
        );
        let mut changed = original.clone();
        changed[100] ^= 0x20;
        Ok(VerdictCase {
            index: TreeIndex::build(roots, crate_dir)?,
            path,
            original,
            changed,
            times: Vec::new(),
        })
    }

    /// Saves the file (changed or original again) and times the verdict:
    /// refresh that path, then list the changes since the baseline.
    fn round(&mut self, stale: bool) -> Result<()> {
        fs::write(
            &self.path,
            if stale { &self.changed } else { &self.original },
        )?;
        let start = Instant::now();
        self.index.refresh(std::slice::from_ref(&self.path));
        let changes = self.index.changes_since_baseline();
        self.times.push(start.elapsed());
        anyhow::ensure!(
            changes.is_empty() != stale,
            "wrong verdict for {}: {changes:?}",
            self.path.display()
        );
        Ok(())
    }

    fn median(mut self) -> Result<Duration> {
        fs::write(&self.path, &self.original)?;
        self.times.sort();
        Ok(self.times[self.times.len() / 2])
    }
}

/// Median verdict times after one 10 KB file changes, on the big and the
/// small tree, in interleaved rounds (so that the machine's load weighs on
/// both alike). Rounds alternate stale and fresh again.
fn verdicts(big: (&[PathBuf], &str), small: (&[PathBuf], &str)) -> Result<(Duration, Duration)> {
    let mut big = VerdictCase::new(big.0, big.1)?;
    let mut small = VerdictCase::new(small.0, small.1)?;
    for round in 0..401 {
        big.round(round % 2 == 0)?;
        small.round(round % 2 == 0)?;
    }
    Ok((big.median()?, small.median()?))
}

/// The reference: a plain single-threaded walk with the same order and skip
/// rules, reading every input file into one reused buffer, hashing nothing.
/// Returns (files, bytes).
fn walk_and_read(roots: &[PathBuf]) -> Result<(u64, u64)> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut totals = (0, 0);
    for root in roots {
        let metadata = fs::symlink_metadata(root)?;
        if metadata.is_dir() {
            walk_dir(root, &mut buffer, &mut totals)?;
        } else if metadata.is_file() {
            read_file(root, &mut buffer, &mut totals)?;
        }
    }
    Ok(totals)
}

fn walk_dir(dir: &Path, buffer: &mut [u8], totals: &mut (u64, u64)) -> Result<()> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "target" || name == ".git" || name == ".arca" {
            continue;
        }
        entries.push((name, entry.file_type()?));
    }
    entries.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    for (name, file_type) in entries {
        let path = dir.join(&name);
        if file_type.is_dir() {
            walk_dir(&path, buffer, totals)?;
        } else if file_type.is_file() {
            read_file(&path, buffer, totals)?;
        } else if file_type.is_symlink() {
            fs::read_link(&path)?;
        }
    }
    Ok(())
}

fn read_file(path: &Path, buffer: &mut [u8], totals: &mut (u64, u64)) -> Result<()> {
    let mut file = File::open(path)?;
    loop {
        let read = file.read(buffer)?;
        if read == 0 {
            break;
        }
        totals.1 += read as u64;
    }
    totals.0 += 1;
    Ok(())
}

/// Generates the tree with `generate` unless a finished one is there.
fn ensure_tree(dir: &Path, generate: fn(&Path) -> Result<()>) -> Result<()> {
    let marker = dir.join("complete");
    if fs::read_to_string(&marker).is_ok_and(|text| text == TREE_VERSION) {
        return Ok(());
    }
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    eprintln!("generating {} (once) ...", dir.display());
    generate(dir)?;
    fs::write(&marker, TREE_VERSION)?;
    Ok(())
}

/// A small deterministic generator (xorshift) for file sizes and contents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Rust-looking text of about `size` bytes.
fn source_text(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(size + 64);
    while text.len() < size {
        let n = rng.next();
        let line = format!(
            "pub fn f_{:x}(x: u64) -> u64 {{ x.wrapping_mul({}) ^ {} }}\n",
            n & 0xffff_ffff,
            n >> 40,
            n >> 20 & 0xfffff
        );
        text.extend_from_slice(line.as_bytes());
    }
    text.truncate(size);
    text
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, data).with_context(|| format!("write {}", path.display()))
}

fn generate_big(base: &Path) -> Result<()> {
    let root = base.join("crate");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    write_file(
        &root.join("Cargo.toml"),
        b"[package]\nname = \"bench\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )?;
    for module in 0..MODULES {
        for sub in 0..SUBDIRS {
            for file in 0..FILES_PER_SUBDIR {
                let size = if module == 7 && sub == 3 && file == 42 {
                    10 * 1024
                } else {
                    1024 + (rng.next() % 14_000) as usize
                };
                let path = root.join(format!("src/m{module}/s{sub}/f{file}.rs"));
                write_file(&path, &source_text(&mut rng, size))?;
            }
        }
    }
    let mut asset = vec![0u8; ASSET_SIZE];
    for index in 0..ASSETS {
        for word in asset.chunks_mut(8) {
            let bytes = rng.next().to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
        write_file(&root.join(format!("assets/blob{index}.bin")), &asset)?;
    }
    for index in 0..2000 {
        let path = root.join(format!("target/debug/deps/d{}/o{index}.o", index % 20));
        write_file(&path, &source_text(&mut rng, 4096))?;
    }
    write_file(&root.join("target/debug/bench"), &asset[..100 << 20])?;
    for index in 0..1000 {
        let path = root.join(format!(".git/objects/{:02x}/{index:038x}", index % 256));
        write_file(&path, &source_text(&mut rng, 2048))?;
    }
    Ok(())
}

fn generate_small(base: &Path) -> Result<()> {
    let root = base.join("crate");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    write_file(
        &root.join("Cargo.toml"),
        b"[package]\nname = \"small\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )?;
    for file in 0..SMALL_CRATE_FILES {
        let size = if file == 7 {
            10 * 1024
        } else {
            1024 + (rng.next() % 14_000) as usize
        };
        write_file(
            &root.join(format!("src/f{file}.rs")),
            &source_text(&mut rng, size),
        )?;
    }
    Ok(())
}
