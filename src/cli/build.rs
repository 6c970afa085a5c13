//! `arca build rust PATH`: TEMPORARY until the containerized build lands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum BuildKind {
    /// Build a Rust crate.
    Rust(BuildArgs),
}

#[derive(Args)]
pub struct BuildArgs {
    /// The crate directory or its Cargo.toml.
    pub path: PathBuf,
}

pub fn run(kind: BuildKind) -> anyhow::Result<ExitCode> {
    let BuildKind::Rust(args) = kind;
    bail!(
        "`arca build rust {}` is not available in this build of arca: containerized builds are not implemented yet.",
        args.path.display()
    )
}
