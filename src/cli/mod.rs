//! The command line: `arca build rust`, `status`, `check`, `list`, `prune`,
//! `push` and `lsp`. Each subcommand lives in its own file; this one parses the
//! arguments, sets up logging and maps errors to exit codes.

mod build;
mod check;
mod list;
mod prune;
mod push;
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
    /// Remove old artifacts.
    #[command(subcommand)]
    Prune(prune::PruneKind),
    /// Push an artifact to a registry, sending only the layers it lacks.
    Push(push::PushArgs),
    /// Run the language server on stdin/stdout.
    Lsp,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(kind) => build::run(kind),
        Command::Status(args) => status::run(args),
        Command::Check(args) => check::run(args),
        Command::List(args) => list::run(args),
        Command::Prune(kind) => prune::run(kind),
        Command::Push(args) => push::run(args),
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
        .with_target(false)
        .try_init();
}
