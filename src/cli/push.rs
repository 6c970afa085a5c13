//! `arca push [SELECTOR] [--to REGISTRY/REPOSITORY[:TAG]] [--insecure]`:
//! pushes an artifact to a registry with per-blob progress bars, sending
//! only the blobs the registry lacks, and records `uploaded_ref`.
//!
//! SELECTOR is an artifact id, a unique id prefix, a crate name, or a
//! crate's directory (default: the current directory); a crate gives its
//! newest artifact. The destination defaults to the crate's `push_to`.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::registry::{self, BlobAction, Destination, PushEvent, PushRequest};
use crate::store::{Store, StoredArtifact};

#[derive(Args)]
pub struct PushArgs {
    /// Artifact id, id prefix, crate name, or crate directory (default: the
    /// crate in the current directory).
    selector: Option<String>,
    /// Destination `REGISTRY/REPOSITORY[:TAG]` (default: `push_to` in the
    /// crate's .arca/config.toml; the tag defaults to the artifact's tag).
    #[arg(long, value_name = "REGISTRY/REPOSITORY[:TAG]")]
    to: Option<String>,
    /// Allow plain HTTP to a registry that is not on this machine.
    #[arg(long)]
    insecure: bool,
    /// Print the result as JSON (`ref`, `tag`, `bytesSent`).
    #[arg(long)]
    json: bool,
    /// Push the image alone, without its SBOM and provenance (also
    /// `[push] attestations = false` in .arca/config.toml).
    #[arg(long)]
    no_attest: bool,
    /// Push only these platforms of a multi-platform artifact
    /// (`linux/amd64,linux/arm64`; default: all it has).
    #[arg(long = "platform", action = clap::ArgAction::Append)]
    platforms: Option<Vec<String>>,
}

pub fn run(args: PushArgs) -> Result<ExitCode> {
    let store = Store::open_default()?;
    let platforms = args
        .platforms
        .as_deref()
        .map(crate::platform::parse_list)
        .transpose()
        .map_err(|error| anyhow::anyhow!("{error} (in `--platform`)"))?;
    let artifact = select_artifact(&store, args.selector.as_deref())?;
    let destination = destination_for(&artifact, args.to.as_deref())?;
    let insecure = args.insecure || registry::destination::insecure_from_env(&destination.registry);
    let attestations = !args.no_attest
        && crate::config::load_push(Path::new(&artifact.metadata.source_path))?.attestations;
    let request = PushRequest {
        mount_from: registry::mount_candidates(&store, &destination),
        artifact,
        destination,
        insecure,
        attestations,
        platforms,
    };
    let runtime = tokio::runtime::Runtime::new().context("Failed to start the async runtime")?;
    let console = Arc::new(Console::new(!args.json));
    let sink = console.clone();
    let cancel = CancellationToken::new();
    let outcome = runtime.block_on(async {
        let interrupt = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt.cancel();
            }
        });
        registry::push(request, Arc::new(move |event| sink.event(event)), &cancel).await
    });
    console.finish();
    let outcome = outcome?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "ref": outcome.uploaded_ref,
                "tag": outcome.tag_ref,
                "bytesSent": outcome.bytes_sent,
                "uploaded": outcome.uploaded,
                "existing": outcome.existing,
                "mounted": outcome.mounted,
                "attached": outcome.attached.as_ref().map(|attached| &attached.artifact_types),
                "referrersTag": outcome.attached.as_ref().and_then(|attached| attached.fallback_tag.as_ref()),
                "warnings": outcome.warnings,
            })
        );
    } else {
        println!(
            "Pushed {} ({} uploaded, {} already there, {} mounted; {} sent)\n{}",
            outcome.tag_ref,
            outcome.uploaded,
            outcome.existing,
            outcome.mounted,
            indicatif::HumanBytes(outcome.bytes_sent),
            outcome.uploaded_ref
        );
        if let Some(attached) = &outcome.attached {
            println!(
                "Attached {} to {}{}",
                attached.artifact_types.join(" and "),
                outcome.uploaded_ref,
                attached
                    .fallback_tag
                    .as_ref()
                    .map(|tag| format!(" (referrers listed under the tag {tag})"))
                    .unwrap_or_default()
            );
        }
    }
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The artifact a selector names; a crate (by name or directory) gives its
/// newest artifact.
pub fn select_artifact(store: &Store, selector: Option<&str>) -> Result<StoredArtifact> {
    let as_dir = match selector {
        None => Some(std::env::current_dir().context("Cannot read the current directory")?),
        Some(text) if Path::new(text).is_dir() => Some(Path::new(text).to_path_buf()),
        Some(_) => None,
    };
    if let Some(dir) = as_dir {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("Cannot resolve {}", dir.display()))?;
        return store.newest_for_crate(&dir).ok_or_else(|| {
            anyhow::anyhow!(
                "No artifact of the crate at {} in {}. Build one with `arca build rust {}`, or name an artifact (`arca list`).",
                dir.display(),
                store.root().display(),
                dir.display()
            )
        });
    }
    let selector = selector.unwrap_or_default();
    let mut matches = store.select(selector)?;
    if matches.is_empty() {
        bail!("No artifact matches `{selector}`. Run `arca list` to see the artifacts.");
    }
    // Newest first, as the store lists them.
    Ok(matches.remove(0))
}

/// `--to`, else the crate's `push_to`, else an error saying how to set one.
pub fn destination_for(artifact: &StoredArtifact, to: Option<&str>) -> Result<Destination> {
    let crate_dir = Path::new(&artifact.metadata.source_path);
    let configured = crate::config::load_push_to(crate_dir)?;
    let Some(text) = to.map(str::to_owned).or(configured) else {
        bail!(
            "No destination: pass `--to REGISTRY/REPOSITORY[:TAG]`, or set `push_to = \"REGISTRY/REPOSITORY\"` under [rust] in {}.",
            crate::config::config_path(crate_dir).display()
        );
    };
    Destination::parse(&text, &artifact.metadata.remote_tag).map_err(anyhow::Error::msg)
}

/// Per-blob progress bars on stderr when it is a terminal; otherwise one
/// plain line per blob (nothing with `--json`).
struct Console {
    bars: MultiProgress,
    by_digest: Mutex<HashMap<String, ProgressBar>>,
    verbose: bool,
    terminal: bool,
}

impl Console {
    fn new(verbose: bool) -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let target = if verbose && terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            bars: MultiProgress::with_draw_target(target),
            by_digest: Mutex::new(HashMap::new()),
            verbose,
            terminal,
        }
    }

    fn event(&self, event: PushEvent) {
        let mut bars = self
            .by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            PushEvent::Connected { registry, scheme } => {
                self.line(format!("Pushing to {registry} ({scheme})"));
            }
            PushEvent::Blob {
                index,
                total,
                digest,
                size,
                action,
            } => {
                let short = short(&digest);
                let what = if index + 1 == total {
                    "config"
                } else {
                    "layer"
                };
                match action {
                    BlobAction::Exists => self.line(format!(
                        "{what} {short}: already in the registry ({})",
                        indicatif::HumanBytes(size)
                    )),
                    BlobAction::Mounted => self.line(format!(
                        "{what} {short}: mounted from another repository ({})",
                        indicatif::HumanBytes(size)
                    )),
                    BlobAction::Uploading => {
                        let bar = self.bars.add(ProgressBar::new(size));
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(format!("{what} {short}"));
                        bars.insert(digest, bar);
                    }
                    BlobAction::Uploaded => {
                        if let Some(bar) = bars.remove(&digest) {
                            bar.finish_and_clear();
                        }
                        self.line(format!(
                            "{what} {short}: uploaded ({})",
                            indicatif::HumanBytes(size)
                        ));
                    }
                }
            }
            PushEvent::Sent { digest, sent, .. } => {
                if let Some(bar) = bars.get(&digest) {
                    bar.set_position(sent);
                }
            }
            PushEvent::Manifest { tag } => self.line(format!("manifest: {tag}")),
        }
    }

    fn line(&self, text: String) {
        if !self.verbose {
            return;
        }
        if self.terminal {
            let _ = self.bars.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn finish(&self) {
        let bars = self
            .by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for bar in bars.values() {
            bar.abandon();
        }
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}
