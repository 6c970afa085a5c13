//! What the server knows about a crate, handed to the one verdict rule
//! shared with the CLI ([`crate::status::assess`]).
//!
//! The server's part is the live fingerprint: for an artifact with an input
//! manifest, the manifest relived with digests from the warm index; for any
//! other, the whole-tree fingerprint of the baseline while nothing changed,
//! and the index's changed files as reasons when something did (the new
//! whole-tree digest follows from a background rehash).

use crate::manifest::Manifest;
use crate::server::live::Live;
use crate::server::state::CrateEntry;
use crate::status::{self, Assessment, CrateStatus, SetupProblem};

/// Never equal to a real fingerprint: stands for "differs, digest still
/// being computed".
const PENDING: &str = "pending";

/// The crate's status, or `None` while it cannot be told yet (facts, the
/// first hash of the tree, or a rehash after a settings change running).
pub fn assess(entry: &CrateEntry) -> Option<CrateStatus> {
    let name = entry.name();
    let setup = match entry.facts.as_ref()? {
        Err(error) => Err(SetupProblem::Broken(error.clone())),
        Ok(facts) => match entry.settings.as_ref()? {
            Ok(settings) => Ok((facts, settings)),
            Err(problem) => Err(problem.clone()),
        },
    };
    let mut pending = false;
    let live = match &setup {
        Err(_) => None,
        Ok(_) if entry.building => None,
        Ok((_, settings)) => match (&entry.manifest, entry.live.as_ref()?) {
            (_, Err(error)) => Some(status::Live::Failed(error.clone())),
            (Some(manifest), Ok(live)) => Some(relive(manifest, settings, live)),
            (None, Ok(live)) => {
                if live.settings != **settings {
                    // Rehashing with the new settings.
                    return None;
                }
                let fingerprint = live.current_fingerprint.clone().unwrap_or_else(|| {
                    pending = true;
                    PENDING.to_owned()
                });
                let baseline_fresh = entry.artifact.as_ref().is_some_and(|artifact| {
                    artifact.metadata.build_fingerprint == live.baseline_fingerprint
                });
                let changes = live.changes();
                let changed_inputs = if baseline_fresh || !changes.is_empty() {
                    changes.iter().map(ToString::to_string).collect()
                } else {
                    Vec::new()
                };
                Some(status::Live::Computed {
                    fingerprint,
                    changed_inputs,
                })
            }
        },
    };
    let mut verdict = status::assess(&Assessment {
        crate_dir: &entry.dir,
        name: &name,
        setup,
        artifact: entry.artifact.as_ref(),
        live: live.as_ref(),
        building: entry.building,
    });
    if pending {
        verdict.fingerprint = None;
    }
    Some(verdict)
}

/// The manifest over today's contents, with digests cached until the
/// watcher reports a path.
fn relive(manifest: &Manifest, settings: &crate::plan::BuildSettings, live: &Live) -> status::Live {
    let relived = status::relive_manifest(manifest, settings, |path| live.manifest_digest(path));
    match relived {
        Ok(relived) => status::Live::Computed {
            fingerprint: relived.digest,
            changed_inputs: relived.changes,
        },
        Err(error) => status::Live::Failed(format!("{error:#}")),
    }
}
