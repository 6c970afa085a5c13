//! The command line: `arca build rust`, `run`, `status`, `check`, `list`, `export`,
//! `sbom`, `prune`, `push` and `lsp`. Each subcommand lives in its own file; this one parses the
//! arguments, sets up logging and maps errors to exit codes.

mod build;
mod check;
mod export;
mod list;
mod prune;
mod prune_blobs;
mod push;
mod run;
mod run_live;
mod sbom;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "arca",
    version,
    about = "Turn a Rust crate into a runnable container image",
    propagate_version = true
)]
struct Cli {
    /// The engine to build with: `docker` or `podman` (default: `ARCA_ENGINE`,
    /// else whichever answers first; `DOCKER_HOST` still names the socket).
    #[arg(long, global = true, value_name = "docker|podman")]
    engine: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a crate's binary and package it into a container image.
    #[command(subcommand)]
    Build(build::BuildKind),
    /// Show whether each crate's newest image is fresh or stale, and why.
    Status(status::StatusArgs),
    /// Check a crate's `.arca/config.toml` and print every problem.
    Check(check::CheckArgs),
    /// List the artifacts in the store, newest first.
    List(list::ListArgs),
    /// Write an artifact's standalone image archive (from the layer store).
    Export(export::ExportArgs),
    /// Print or write an artifact's SBOM (SPDX or CycloneDX) or provenance.
    Sbom(sbom::SbomArgs),
    /// Remove old artifacts.
    #[command(subcommand)]
    Prune(prune::PruneKind),
    /// Push an artifact to a registry, sending only the layers it lacks.
    Push(push::PushArgs),
    /// Build the crate's image if it is stale, then run it (`-- ARGS` for
    /// the program); Ctrl-C stops it and the container is removed.
    Run(run::RunArgs),
    /// Run the language server on stdin/stdout.
    Lsp,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    if let Some(engine) = &cli.engine {
        match crate::engine::discovery::EngineKind::parse(engine, "--engine") {
            Ok(kind) => crate::engine::discovery::choose(kind),
            Err(error) => {
                eprintln!("error: {error:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let result = match cli.command {
        Command::Build(kind) => build::run(kind),
        Command::Status(args) => status::run(args),
        Command::Check(args) => check::run(args),
        Command::List(args) => list::run(args),
        Command::Export(args) => export::run(args),
        Command::Sbom(args) => sbom::run(args),
        Command::Prune(kind) => prune::run(kind),
        Command::Push(args) => push::run(args),
        Command::Run(args) => run::run(args),
        Command::Lsp => crate::server::run().map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (never stdout: it carries the LSP protocol), filtered
/// by `RUST_LOG` (default: warnings).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // The TLS verifier logs each rejected certificate as an error; the
        // push reports it, with what to do, once.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("warn,rustls_platform_verifier=off")
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never in an editor's log panel.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
