//! `arca status [PATH] [--json]`: the status object of PROTOCOL.md for the
//! crate at PATH, or for every binary crate below it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use crate::status::{CrateStatus, State};
use crate::store::Store;

#[derive(Args)]
pub struct StatusArgs {
    /// A crate directory (or its Cargo.toml), or a folder to search for crates.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Print the status as JSON: one object for a crate, an array for a folder.
    #[arg(long)]
    json: bool,
}

pub fn run(args: StatusArgs) -> Result<ExitCode> {
    let store = Store::open_default()?;
    let (single, crates) = crates_at(&args.path)?;
    let statuses: Vec<CrateStatus> = crates
        .iter()
        .map(|crate_dir| crate::status::evaluate(crate_dir, &store))
        .collect();
    if args.json {
        let text = match (single, statuses.as_slice()) {
            (true, [status]) => serde_json::to_string_pretty(status)?,
            _ => serde_json::to_string_pretty(&statuses)?,
        };
        println!("{text}");
    } else {
        for status in &statuses {
            print!("{}", render(status));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The crate at `path`, or the crates below it; `true` when `path` names one
/// crate.
fn crates_at(path: &Path) -> Result<(bool, Vec<PathBuf>)> {
    if path.file_name().is_some_and(|name| name == "Cargo.toml") || names_a_package(path) {
        let manifest = crate::workspace::resolve_manifest_path(path)?;
        let dir = manifest.parent().unwrap_or(Path::new("/")).to_path_buf();
        return Ok((true, vec![dir]));
    }
    if !path.is_dir() {
        bail!("`{}` is neither a crate nor a folder.", path.display());
    }
    let crates = crate::workspace::discover_crates(&path.canonicalize()?);
    if crates.is_empty() {
        bail!(
            "No binary crates found under `{}`. Point `arca status` at a crate directory.",
            path.display()
        );
    }
    Ok((false, crates))
}

/// A directory whose Cargo.toml declares a package (or is too broken to tell).
fn names_a_package(dir: &Path) -> bool {
    let Ok(text) =
        crate::fsread::read_to_string(&dir.join("Cargo.toml"), crate::fsread::Kind::CargoManifest)
    else {
        return false;
    };
    match text.parse::<toml::Table>() {
        Ok(table) => table.contains_key("package"),
        Err(_) => true,
    }
}

fn render(status: &CrateStatus) -> String {
    let state = match status.state {
        State::Fresh => "fresh",
        State::Stale => "stale",
        State::Missing => "missing",
        State::Building => "building",
        State::Unconfigured => "unconfigured",
        State::Error => "error",
    };
    let mut out = format!("{}: {state}\n  {}\n", status.name, status.message);
    for reason in &status.reasons {
        out.push_str(&format!("  - {reason}\n"));
    }
    if let Some(fingerprint) = &status.fingerprint {
        out.push_str(&format!("  fingerprint {fingerprint}\n"));
    }
    if !status.platforms.is_empty() {
        out.push_str(&format!("  platforms {}\n", status.platforms.join(", ")));
    }
    out
}
