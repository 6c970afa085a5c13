//! The fresh/stale/... verdict for one crate, as one pure function over
//! what the server knows. (The CLI's `arca status` judges the same way; when
//! `crate::status` grows a shared `assess`, this is the one place to switch.)

use std::path::Path;

use super::interim_index::{Change, ChangeKind};
use super::live::Live;
use crate::plan::{BuildSettings, normalize_features};
use crate::status::{ArtifactSummary, CrateStatus, State as Verdict};
use crate::store::ArtifactMetadata;
use crate::workspace::CrateFacts;

/// Everything the verdict depends on.
pub struct Inputs<'a> {
    pub uri: &'a str,
    pub name: String,
    pub crate_dir: &'a Path,
    /// `None` while `cargo metadata` runs.
    pub facts: Option<&'a Result<CrateFacts, String>>,
    /// The settings the saved config resolves to (or why it does not).
    pub settings: Option<&'a Result<BuildSettings, String>>,
    pub artifact: Option<&'a ArtifactMetadata>,
    /// `None` while the tree is hashed.
    pub live: Option<&'a Result<Live, String>>,
    pub building: bool,
}

/// The status, or `None` while it cannot be told yet (facts or the first
/// hash of the tree still running).
pub fn assess(inputs: &Inputs<'_>) -> Option<CrateStatus> {
    let artifact = inputs.artifact.map(summary);
    let status = |state, fingerprint: Option<String>, reasons: Vec<String>, message: String| {
        CrateStatus {
            crate_uri: inputs.uri.to_owned(),
            name: inputs.name.clone(),
            state,
            fingerprint,
            artifact: artifact.clone(),
            reasons,
            message,
        }
    };
    let facts = match inputs.facts? {
        Ok(facts) => facts,
        Err(error) => {
            return Some(status(
                Verdict::Error,
                None,
                Vec::new(),
                format!("Cannot compute the fingerprint of {}: {error}", inputs.name),
            ));
        }
    };
    let live_fingerprint = inputs
        .live
        .and_then(|live| live.as_ref().ok())
        .and_then(|live| live.current_fingerprint.clone());
    if inputs.building {
        return Some(status(
            Verdict::Building,
            live_fingerprint,
            Vec::new(),
            format!("Building {}…", facts.name),
        ));
    }
    let settings = match inputs.settings? {
        Ok(settings) => settings,
        Err(error) => {
            return Some(status(
                Verdict::Unconfigured,
                None,
                Vec::new(),
                format!("{} is not configured: {error}", facts.name),
            ));
        }
    };
    let setting_reasons = inputs
        .artifact
        .map(|artifact| settings_differences(artifact, settings))
        .unwrap_or_default();
    let live = match inputs.live {
        None => {
            // Still hashing: a settings difference is already certain.
            if !setting_reasons.is_empty() {
                return Some(stale(&status, facts, None, setting_reasons));
            }
            return None;
        }
        Some(Err(error)) => {
            return Some(status(
                Verdict::Error,
                None,
                Vec::new(),
                format!("Cannot compute the fingerprint of {}: {error}", facts.name),
            ));
        }
        Some(Ok(live)) => live,
    };
    let Some(artifact) = inputs.artifact else {
        return Some(status(
            Verdict::Missing,
            live.current_fingerprint.clone(),
            Vec::new(),
            format!("{} has no image yet.", facts.name),
        ));
    };
    if live.settings != *settings && setting_reasons.is_empty() {
        // The config changed and the tree is being rehashed with it.
        return None;
    }
    let changes = live.changes();
    let current = live.current_fingerprint.as_deref();
    if setting_reasons.is_empty() && current == Some(artifact.build_fingerprint.as_str()) {
        return Some(status(
            Verdict::Fresh,
            live.current_fingerprint.clone(),
            Vec::new(),
            format!("{} is up to date ({}).", facts.name, artifact.local_tag),
        ));
    }
    let mut reasons = setting_reasons;
    let baseline_was_fresh = live.baseline_fingerprint == artifact.build_fingerprint;
    if baseline_was_fresh || !changes.is_empty() {
        reasons.extend(changes.iter().map(|change| describe(change, inputs.crate_dir)));
    }
    if reasons.is_empty() {
        reasons.push("inputs changed since the image was built".to_owned());
    }
    Some(stale(&status, facts, live.current_fingerprint.clone(), reasons))
}

fn stale(
    status: &impl Fn(Verdict, Option<String>, Vec<String>, String) -> CrateStatus,
    facts: &CrateFacts,
    fingerprint: Option<String>,
    reasons: Vec<String>,
) -> CrateStatus {
    let message = format!("{} is stale: {}", facts.name, reasons.join(", "));
    status(Verdict::Stale, fingerprint, reasons, message)
}

fn summary(artifact: &ArtifactMetadata) -> ArtifactSummary {
    ArtifactSummary {
        id: artifact.artifact_id.clone(),
        tag: artifact.local_tag.clone(),
        fingerprint: artifact.build_fingerprint.clone(),
        created_at: artifact.created_at_epoch_ms,
    }
}

/// "profile changed", "features changed", ... against the artifact.
fn settings_differences(artifact: &ArtifactMetadata, settings: &BuildSettings) -> Vec<String> {
    let mut reasons = Vec::new();
    if artifact.cargo_profile != settings.profile {
        reasons.push("profile changed".to_owned());
    }
    let mut recorded = normalize_features(&artifact.cargo_features);
    let mut wanted = settings.features.clone();
    recorded.sort();
    wanted.sort();
    if recorded != wanted {
        reasons.push("features changed".to_owned());
    }
    if artifact.binary_name != settings.bin {
        reasons.push("binary changed".to_owned());
    }
    if artifact.base_image != settings.base_image {
        reasons.push("base image changed".to_owned());
    }
    reasons
}

/// "src/main.rs changed", relative to the crate when inside it.
fn describe(change: &Change, crate_dir: &Path) -> String {
    let path = change
        .path
        .strip_prefix(crate_dir)
        .unwrap_or(&change.path)
        .display();
    match change.kind {
        ChangeKind::Added => format!("{path} added"),
        ChangeKind::Modified => format!("{path} changed"),
        ChangeKind::Removed => format!("{path} removed"),
    }
}
