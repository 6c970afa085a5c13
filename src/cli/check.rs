//! `arca check [PATH]`: prints every finding of the crate's
//! `.arca/config.toml` as `file:line:col: severity[code]: message`; exits 1
//! when any is an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::config::{self, Severity};

#[derive(Args)]
pub struct CheckArgs {
    /// A crate directory, its Cargo.toml, or the config file itself.
    #[arg(default_value = ".")]
    path: PathBuf,
}

pub fn run(args: CheckArgs) -> Result<ExitCode> {
    if !args.path.exists() {
        anyhow::bail!(
            "No such file or directory: `{}`. Point `arca check` at a crate directory, its Cargo.toml or its .arca/config.toml.",
            crate::paths::terminal_safe(&args.path.display().to_string())
        );
    }
    let (crate_dir, config_file) = locate(&args.path);
    let bytes = match crate::fsread::read(&config_file, crate::fsread::Kind::Config) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "note: {} does not exist; create it or run `arca build rust {} --set-default` with the settings.",
                config_file.display(),
                crate_dir.display()
            );
            Vec::new()
        }
        Err(error) => {
            return Err(error).with_context(|| format!("Failed to read {}", config_file.display()));
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let valid = error.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&error.as_bytes()[..valid]).into_owned();
            let (line, col) = config::line_col(&prefix, valid);
            println!(
                "{}:{}:{}: error[toml-syntax]: the file is not valid UTF-8 (invalid byte at offset {valid}). Save it as UTF-8 text.",
                config_file.display(),
                line + 1,
                col + 1
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let facts = match crate::workspace::load_crate_facts(&crate_dir) {
        Ok(facts) => Some(facts),
        Err(error) => {
            eprintln!("warning: checks that need the crate's facts were skipped: {error:#}");
            None
        }
    };
    let findings = config::checker::check(&text, facts.as_ref());
    for finding in &findings {
        // Messages quote the file: never let it drive the terminal.
        println!(
            "{}",
            crate::paths::terminal_safe(&finding.render(&config_file, &text))
        );
    }
    let errors = findings
        .iter()
        .filter(|finding| finding.severity == Severity::Error)
        .count();
    if errors > 0 {
        eprintln!("{errors} error(s) in {}", config_file.display());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The crate directory and its config file for a user-given path.
fn locate(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_file() && path.file_name().is_some_and(|name| name != "Cargo.toml") {
        let crate_dir = path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .to_path_buf();
        return (crate_dir, path.to_path_buf());
    }
    let crate_dir = if path.is_file() {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        path.to_path_buf()
    };
    let config_file = config::config_path(&crate_dir);
    (crate_dir, config_file)
}
