//! `arca sbom [SELECTOR] [--format spdx|cyclonedx] [--provenance]
//! [--platform P] [-o FILE]`: prints or writes an artifact's SBOM (the
//! stored SPDX 2.3 document byte for byte, or CycloneDX 1.5 converted from
//! it), or its SLSA provenance statement, of the engine's platform's image
//! or another platform's. SELECTOR as for `arca export`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};

use crate::sbom::stored::{self, Kind};
use crate::sbom::{cyclonedx, spdx};
use crate::store::Store;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// SPDX 2.3 JSON (as stored with the image).
    Spdx,
    /// CycloneDX 1.5 JSON.
    Cyclonedx,
}

#[derive(Args)]
pub struct SbomArgs {
    /// Artifact id, id prefix, crate name, or crate directory (default: the
    /// crate in the current directory).
    selector: Option<String>,
    #[arg(long, value_enum, default_value = "spdx")]
    format: Format,
    /// The SLSA provenance statement (in-toto JSON) instead of the SBOM.
    #[arg(long, conflicts_with = "format")]
    provenance: bool,
    /// Of this platform's image (`linux/arm64`) of a multi-platform
    /// artifact (default: the engine's platform's).
    #[arg(long)]
    platform: Option<String>,
    /// Where to write it (default: standard output).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

pub fn run(args: SbomArgs) -> Result<ExitCode> {
    let home = crate::paths::arca_home()?;
    let store = Store::at(home.join("containers"));
    let artifact = super::push::select_artifact(&store, args.selector.as_deref())?;
    let kind = if args.provenance {
        Kind::Provenance
    } else {
        Kind::Sbom
    };
    let platform = crate::platform::Platform::parse_option(args.platform.as_deref(), "--platform")?;
    let stored = stored::read_for(&artifact.dir, kind, platform)?.ok_or_else(|| {
        anyhow!(
            "Artifact {} has no {}: it was built before Arca recorded them, or cargo could not resolve its graph (see its build log). Rebuild it with `arca build rust --force {}`.",
            artifact.metadata.artifact_id,
            if args.provenance { "provenance statement" } else { "SBOM" },
            crate::paths::terminal_safe(&artifact.metadata.source_path),
        )
    })?;
    let bytes = match (kind, args.format) {
        (Kind::Sbom, Format::Cyclonedx) => cyclonedx::from_spdx(&spdx::parse(&stored)?)?,
        _ => stored,
    };
    match &args.output {
        Some(path) => {
            write_atomically(path, &bytes)?;
            eprintln!(
                "Wrote the {} of {} to {}.",
                if args.provenance {
                    "provenance"
                } else {
                    "SBOM"
                },
                artifact.metadata.artifact_id,
                path.display()
            );
        }
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.write_all(b"\n")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("Cannot write into {}", dir.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("Cannot write {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("Cannot write {}", path.display()))?;
    Ok(())
}
