//! `arca run [PATH] [-- ARGS]`: build the crate's image if it is stale
//! (through the same pipeline and console as `arca build rust`), then run
//! the newest image with the engine's init, the `[run]` settings of
//! `.arca/config.toml` and ARGS (which replace the configured `args`).
//! The program's stdout and stderr stream to ours; Ctrl-C (or `docker
//! stop` from elsewhere) stops it, and the container is removed when it
//! exits. The exit code is the program's.
//!
//! `arca run --watch` runs it live ([`crate::runner::live`]): every change
//! that makes the crate stale rebuilds the binary and restarts it in the
//! same container, with a separator line naming the change; Ctrl-C ends
//! the watch and removes the container (exit code 130).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::build::Console;
use crate::engine::{OutputLine, Stream};
use crate::pipeline::{self, BuildEnv, BuildError, BuildEvent, BuildRequest};
use crate::runner;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The crate directory or its Cargo.toml (default: the current directory).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Arguments for the program (after `--`); they replace `[run] args`.
    #[arg(last = true)]
    pub args: Vec<String>,
    /// Keep running: on every change that makes the crate stale, rebuild
    /// the binary and restart it in the same container.
    #[arg(long)]
    pub watch: bool,
    /// Run the image of this platform (`linux/arm64`): built with the
    /// others, loaded under a tag of its own, run through the engine's
    /// emulation (QEMU registered with binfmt_misc).
    #[arg(long)]
    pub platform: Option<String>,
}

/// Runs `arca run`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Failed to start the async runtime")?;
    if args.watch {
        if args.platform.is_some() {
            anyhow::bail!(
                "`--watch` runs the engine's own platform only; drop `--platform` (or run the other platform's image without `--watch`)."
            );
        }
        let request = crate::runner::live::LiveRequest {
            path: args.path.clone(),
            program_args: (!args.args.is_empty()).then(|| args.args.clone()),
        };
        return runtime.block_on(super::run_live::run_live(request));
    }
    runtime.block_on(run_image(args))
}

async fn run_image(args: RunArgs) -> Result<ExitCode> {
    let env = BuildEnv::from_arca_home()?;
    let interrupted = CancellationToken::new();
    let on_signal = interrupted.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let platform = crate::platform::Platform::parse_option(args.platform.as_deref(), "--platform")?
        .filter(|platform| *platform != crate::platform::Platform::host());
    let mut request = BuildRequest {
        path: args.path.clone(),
        ..Default::default()
    };
    if let Some(platform) = platform {
        // The build covers the configured platforms and this one.
        let crate_dir = crate::workspace::resolve_manifest_path(&args.path)?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| args.path.clone());
        let configured = crate::config::load_all(&crate_dir)?
            .1
            .platforms
            .unwrap_or_default();
        let mut platforms = configured;
        platforms.push(platform.name().to_owned());
        request.overrides.platforms = Some(platforms);
        runner::check_emulation(platform)?;
    }
    let console = Console::new();
    let events = |event: BuildEvent| console.show(event);
    let outcome = pipeline::package(&env, &request, &events, &interrupted).await;
    console.finish();
    let artifact = match outcome {
        Ok(outcome) => outcome.artifact,
        Err(BuildError::Cancelled) => {
            eprintln!("Build cancelled; nothing was stored or run.");
            return Ok(ExitCode::from(130));
        }
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let crate_dir = std::fs::canonicalize(&args.path)
        .ok()
        .map(|path| {
            if path.is_file() {
                path.parent().map(PathBuf::from).unwrap_or(path)
            } else {
                path
            }
        })
        .unwrap_or_else(|| args.path.clone());
    let config = runner::run_config(&crate_dir)?;
    let program_args = (!args.args.is_empty()).then(|| args.args.clone());
    let mut spec = runner::run_spec(&artifact, &crate_dir, &config, program_args);
    let engine = env.engine().await?;
    let platform_tag = match platform {
        Some(platform) => {
            let tag = runner::load_platform_image(&engine, &env, &artifact, platform).await?;
            spec.container.image = tag.clone();
            Some(tag)
        }
        None => {
            runner::ensure_image(&engine, &artifact).await?;
            None
        }
    };
    let started = runner::start(&engine, &spec).await?;
    eprintln!(
        "==> Running {} (container {}); Ctrl-C stops it",
        started.image,
        &started.container[..started.container.len().min(12)]
    );
    let stopper = {
        let engine = engine.clone();
        let container = started.container.clone();
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            interrupted.cancelled().await;
            eprintln!("\nStopping the container...");
            let _ = runner::stop(&engine, &container).await;
        })
    };
    let print = |line: OutputLine| {
        let _ = match line.stream {
            Stream::Stdout => writeln!(std::io::stdout().lock(), "{}", line.text),
            Stream::Stderr => writeln!(std::io::stderr().lock(), "{}", line.text),
        };
    };
    let exit = runner::follow(&engine, &started.container, &print).await;
    stopper.abort();
    if let Some(tag) = platform_tag {
        // The other platform's tag lives for the run only.
        let _ = engine.remove_image(&tag).await;
    }
    let code = exit?;
    if code != 0 {
        eprintln!("The program exited with code {code}.");
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
