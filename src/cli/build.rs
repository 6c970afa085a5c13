//! `arca build rust PATH`: build a crate into a runtime image through the
//! build pipeline ([`crate::pipeline`]) and print what happens.
//!
//! Stage lines, cargo's output and progress go to stderr (progress bars
//! only when stderr is a terminal); the summary (artifact id, tag, archive
//! path and size) goes to stdout. Ctrl-C cancels cleanly: the container is
//! removed and nothing is stored (exit code 130).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{ArgAction, Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::pipeline::{self, BuildEnv, BuildError, BuildEvent, BuildRequest, ProgressTask};
use crate::plan::{BuildSettings, SettingsOverrides};

#[derive(Subcommand)]
pub enum BuildKind {
    /// Build a Rust crate into a container image.
    Rust(BuildArgs),
}

#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The crate directory or its Cargo.toml.
    pub path: PathBuf,
    /// Cargo profile (dev, release or a custom one).
    #[arg(long)]
    pub profile: Option<String>,
    /// Cargo features; repeatable, each value split on commas and spaces.
    /// `--features ''` means none.
    #[arg(short = 'F', long = "features", action = ArgAction::Append)]
    pub features: Option<Vec<String>>,
    /// The binary target, when the crate has several.
    #[arg(long)]
    pub bin: Option<String>,
    /// The runtime base image (e.g. `debian:bookworm-slim`).
    #[arg(long)]
    pub base_image: Option<String>,
    /// Platforms to build for, cross-compiled (`linux/amd64,linux/arm64`;
    /// repeatable); overrides `[rust] platforms`.
    #[arg(long = "platform", action = ArgAction::Append)]
    pub platforms: Option<Vec<String>>,
    /// Save these settings in `.arca/config.toml` as the crate's defaults.
    #[arg(short = 'u', long = "set-default")]
    pub set_default: bool,
    /// Build with the host's cargo instead of in the builder container.
    #[arg(long)]
    pub host_build: bool,
    /// Build even when the newest artifact is up to date.
    #[arg(long)]
    pub force: bool,
    /// Also write the standalone image archive (`image.tar`) beside the
    /// artifact record (otherwise `arca export` writes it on demand).
    #[arg(long)]
    pub archive: bool,
}

impl BuildArgs {
    fn request(&self) -> BuildRequest {
        BuildRequest {
            path: self.path.clone(),
            overrides: SettingsOverrides {
                profile: self.profile.clone(),
                features: self.features.clone(),
                bin: self.bin.clone(),
                base_image: self.base_image.clone(),
                platforms: self.platforms.clone(),
            },
            host_build: self.host_build,
            force: self.force,
        }
    }
}

/// Runs `arca build <kind>`.
pub fn run(kind: BuildKind) -> Result<ExitCode> {
    let BuildKind::Rust(args) = kind;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Failed to start the async runtime")?;
    runtime.block_on(run_rust(args))
}

async fn run_rust(args: BuildArgs) -> Result<ExitCode> {
    let request = args.request();
    if args.set_default {
        let request = request.clone();
        let prepared = tokio::task::spawn_blocking(move || pipeline::prepare(&request))
            .await
            .context("The settings task failed")??;
        let path = save_defaults(&prepared.facts.crate_dir, &prepared.settings)?;
        eprintln!("Saved these settings as defaults in {}", path.display());
    }
    let env = BuildEnv::from_arca_home()?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nCancelling the build (cleaning up)...");
            on_signal.cancel();
        }
    });
    let console = Console::new();
    let events = |event: BuildEvent| console.show(event);
    let options = pipeline::PackageOptions {
        archive: args.archive,
    };
    let result = pipeline::package_with(&env, &request, options, &events, &cancel).await;
    console.finish();
    match result {
        Ok(outcome) => {
            let metadata = &outcome.artifact.metadata;
            if outcome.up_to_date {
                println!(
                    "`{}` is up to date: artifact {} (use --force to rebuild).",
                    metadata.crate_name, metadata.artifact_id
                );
            } else {
                println!(
                    "Built `{}` {} as artifact {}.",
                    metadata.crate_name, metadata.crate_version, metadata.artifact_id
                );
            }
            println!("  tag      {}", metadata.local_tag);
            if let Some(image_id) = &outcome.image_id {
                println!("  image    {image_id}");
            }
            match &outcome.archive_path {
                Some(path) => println!(
                    "  archive  {} ({})",
                    path.display(),
                    human_size(outcome.archive_bytes)
                ),
                None => println!(
                    "  layout   {}",
                    outcome
                        .artifact
                        .dir
                        .join(crate::image::layout::LAYOUT_DIR)
                        .display()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(BuildError::Cancelled) => {
            eprintln!("Build cancelled; nothing was stored.");
            Ok(ExitCode::from(130))
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints events: stage lines and output to stderr, progress bars when
/// stderr is a terminal.
pub(super) struct Console {
    bars: Option<MultiProgress>,
    state: Mutex<ConsoleState>,
}

#[derive(Default)]
struct ConsoleState {
    layers: HashMap<String, ProgressBar>,
    export: Option<ProgressBar>,
    compile: Option<ProgressBar>,
    stage_started: Option<Instant>,
}

impl Console {
    pub(super) fn new() -> Self {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            bars,
            state: Mutex::new(ConsoleState::default()),
        }
    }

    /// Writes a line to stderr; a closed stderr is ignored (the build
    /// goes on and the summary still reaches stdout).
    fn line(&self, text: &str) {
        let write = || {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        };
        match &self.bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }

    pub(super) fn show(&self, event: BuildEvent) {
        match event {
            BuildEvent::Stage { title, detail } => {
                self.clear_bars();
                self.lock_state().stage_started = Some(Instant::now());
                self.line(&format!("==> {title}"));
                if !detail.is_empty() {
                    self.line(&format!("    {detail}"));
                }
            }
            BuildEvent::StageDone { message } => {
                self.clear_bars();
                let elapsed = self
                    .lock_state()
                    .stage_started
                    .take()
                    .map(|started| format!(" ({:.2} s)", started.elapsed().as_secs_f64()))
                    .unwrap_or_default();
                self.line(&format!("    {message}{elapsed}"));
            }
            BuildEvent::Output { line } => self.line(&line),
            BuildEvent::Notice { message } => self.line(&format!("    {message}")),
            BuildEvent::Progress {
                task,
                status,
                current,
                total,
            } => self.progress(task, status, current, total),
            BuildEvent::Finished { .. } => self.clear_bars(),
            BuildEvent::Prepared => {}
        }
    }

    fn progress(&self, task: ProgressTask, status: String, current: u64, total: Option<u64>) {
        let Some(bars) = &self.bars else {
            // Without a terminal, cargo's own `Compiling ...` lines say enough.
            if let ProgressTask::Pull { layer, .. } = &task
                && status == "Pull complete"
            {
                self.line(&format!("    {layer}: {status}"));
            }
            return;
        };
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bar = match &task {
            ProgressTask::Pull { layer, .. } => {
                if layer.is_empty() {
                    return;
                }
                state
                    .layers
                    .entry(layer.clone())
                    .or_insert_with(|| bars.add(new_bar(&format!("{layer:<12}"))))
                    .clone()
            }
            ProgressTask::Export { .. } => state
                .export
                .get_or_insert_with(|| bars.add(new_bar("image.tar   ")))
                .clone(),
            ProgressTask::Import { .. } => state
                .export
                .get_or_insert_with(|| bars.add(new_bar("base import ")))
                .clone(),
            ProgressTask::Compile { .. } => state
                .compile
                .get_or_insert_with(|| bars.add(new_unit_bar("Building    ")))
                .clone(),
        };
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(current);
        bar.set_message(status);
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, ConsoleState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn clear_bars(&self) {
        let mut state = self.lock_state();
        for (_, bar) in state.layers.drain() {
            bar.finish_and_clear();
        }
        if let Some(bar) = state.export.take() {
            bar.finish_and_clear();
        }
        if let Some(bar) = state.compile.take() {
            bar.finish_and_clear();
        }
    }

    pub(super) fn finish(&self) {
        self.clear_bars();
    }
}

/// A bar counted in bytes, in the same decimal units as [`human_size`].
fn new_bar(prefix: &str) -> ProgressBar {
    styled_bar(
        prefix,
        "    {prefix} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {msg}",
    )
}

/// A bar counted in cargo's units (`120/310`), like cargo's own.
fn new_unit_bar(prefix: &str) -> ProgressBar {
    styled_bar(prefix, "    {prefix} [{bar:30}] {pos}/{len}: {wide_msg}")
}

fn styled_bar(prefix: &str, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub(crate) use crate::units::human_size;

/// Writes the settings into `.arca/config.toml` `[rust]`, keeping the rest
/// of the file (comments, other tables) as it is. Returns the file's path.
fn save_defaults(crate_dir: &Path, settings: &BuildSettings) -> Result<PathBuf> {
    crate::config::save_defaults(crate_dir, &settings.to_config())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_saved_into_the_rust_table_keeping_comments() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::config_path(dir.path());
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "# keep me\n[rust]\nprofile = \"dev\"\n").unwrap();
        let settings = BuildSettings {
            profile: "release".into(),
            features: vec!["a".into(), "b".into()],
            bin: "hello".into(),
            base_image: "debian:12".into(),
        };
        save_defaults(dir.path(), &settings).unwrap();
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(text.starts_with("# keep me\n[rust]\n"), "{text}");
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(value["rust"]["profile"].as_str(), Some("release"));
        assert_eq!(value["rust"]["features"].as_array().unwrap().len(), 2);
        assert_eq!(value["rust"]["base_image"].as_str(), Some("debian:12"));
    }

    #[test]
    fn features_repeat_and_empty_means_none() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: BuildArgs,
        }
        let cli = Cli::parse_from(["arca", ".", "-F", "a,b", "--features", "c"]);
        assert_eq!(cli.args.features, Some(vec!["a,b".into(), "c".into()]));
        let cli = Cli::parse_from(["arca", ".", "--features", ""]);
        let request = cli.args.request();
        assert_eq!(
            crate::plan::normalize_features(request.overrides.features.as_deref().unwrap()),
            Vec::<String>::new()
        );
    }
}
