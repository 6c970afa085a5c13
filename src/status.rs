//! The status of a crate's image, as PROTOCOL.md's `arca/status` object:
//! fresh, stale, missing, building, unconfigured or error, with reasons.
//!
//! **One definition of the wire shape** for the CLI (`arca status --json`)
//! and the server (`arca/status`).

use serde::{Deserialize, Serialize};

/// The state of a crate's newest image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Fresh,
    Stale,
    Missing,
    Building,
    Unconfigured,
    Error,
}

/// The newest artifact, as the status object shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSummary {
    pub id: String,
    pub tag: String,
    pub fingerprint: String,
    pub created_at: u64,
}

/// PROTOCOL.md's status object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateStatus {
    /// `file://` URI of the crate directory, no trailing slash.
    #[serde(rename = "crate")]
    pub crate_uri: String,
    pub name: String,
    pub state: State,
    pub fingerprint: Option<String>,
    pub artifact: Option<ArtifactSummary>,
    pub reasons: Vec<String>,
    pub message: String,
}
