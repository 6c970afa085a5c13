//! Issue 6's cost figure: recording the input manifest after a build, as a
//! fraction of the build it follows. Builds a copy of examples/hello on the
//! host (release profile, cold target directory: the reference), then
//! records its manifest 21 times and reports the median.
//!
//! Run: `cargo bench --bench manifest`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use arca::manifest::{BuildOutputs, record};
use arca::plan::{SettingsOverrides, resolve_settings};

fn main() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let crate_dir = work.path().join("hello");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &crate_dir,
    )?;
    let facts = arca::workspace::load_crate_facts(&crate_dir)?;
    let config = arca::config::load(&facts.crate_dir)?;
    let settings = resolve_settings(&SettingsOverrides::default(), &config, &facts)?;
    let target = work.path().join("target");

    let started = Instant::now();
    let status = Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "--locked",
            "--release",
            "--manifest-path",
        ])
        .arg(facts.manifest_path.as_os_str())
        .env("CARGO_TARGET_DIR", &target)
        .status()?;
    anyhow::ensure!(status.success(), "cargo build failed");
    let build = started.elapsed();

    let outputs = BuildOutputs {
        target_dir: &target,
        path_map: Vec::new(),
        record_env: true,
    };
    let mut samples: Vec<Duration> = (0..21)
        .map(|_| {
            let started = Instant::now();
            record(
                &facts,
                &settings,
                "host:bench".into(),
                &outputs,
                dirs::home_dir().as_deref(),
            )
            .map(|_| started.elapsed())
        })
        .collect::<anyhow::Result<_>>()?;
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "| host `cargo build --release` of examples/hello, cold (reference) | {:.0} ms |",
        build.as_secs_f64() * 1e3
    );
    println!(
        "| `manifest::record` after it (median of 21) | {:.2} ms |",
        median.as_secs_f64() * 1e3
    );
    println!(
        "| recording / build | {:.3}% (goal: under 5%) |",
        100.0 * median.as_secs_f64() / build.as_secs_f64()
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == "target" {
            continue;
        }
        let destination = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &destination)?;
        } else {
            std::fs::copy(entry.path(), destination)?;
        }
    }
    Ok(())
}
