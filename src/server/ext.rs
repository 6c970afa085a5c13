//! Arca's extensions to LSP: the `arca/status` notification and request,
//! and the arguments of the `arca.*` commands (PROTOCOL.md).

use serde::{Deserialize, Serialize};
use tower_lsp::lsp_types::notification::Notification;

use crate::status::CrateStatus;

/// The commands of PROTOCOL.md.
pub const COMMANDS: [&str; 9] = [
    "arca.build",
    "arca.package",
    "arca.cancel",
    "arca.setDefaults",
    "arca.push",
    "arca.run",
    "arca.stop",
    "arca.buildLog",
    "arca.sbom",
];

/// Server → client: one crate's status changed.
pub enum StatusNotification {}

impl Notification for StatusNotification {
    type Params = CrateStatus;
    const METHOD: &'static str = "arca/status";
}

/// Server → client: the crate left the workspace (PROTOCOL.md additions).
pub enum RemovedNotification {}

impl Notification for RemovedNotification {
    type Params = RemovedParams;
    const METHOD: &'static str = "arca/removed";
}

/// `arca/removed` params.
#[derive(Debug, Serialize, Deserialize)]
pub struct RemovedParams {
    #[serde(rename = "crate")]
    pub crate_uri: String,
}

/// Client → server `arca/status` params: one crate, or all of them.
#[derive(Debug, Default, Deserialize)]
pub struct StatusParams {
    #[serde(rename = "crate", default)]
    pub crate_uri: Option<String>,
}

/// The one argument object of `arca.build` and `arca.package`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildArgs {
    #[serde(rename = "crate", default)]
    pub crate_uri: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub features: Option<Features>,
    #[serde(default)]
    pub bin: Option<String>,
    #[serde(default)]
    pub base_image: Option<String>,
    #[serde(default)]
    pub host_build: bool,
    /// `arca.package` only: package even when the crate is fresh.
    #[serde(default)]
    pub force: bool,
    /// `arca.package` only: also write the standalone `image.tar`.
    #[serde(default)]
    pub archive: bool,
}

/// Features as a list or as one comma/space separated string (as `-F`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Features {
    List(Vec<String>),
    Text(String),
}

impl Features {
    pub fn into_values(self) -> Vec<String> {
        match self {
            Features::List(values) => values,
            Features::Text(text) => vec![text],
        }
    }
}

/// The argument object of `arca.cancel`.
#[derive(Debug, Default, Deserialize)]
pub struct CancelArgs {
    #[serde(rename = "crate", default)]
    pub crate_uri: Option<String>,
}

/// The argument object of `arca.setDefaults`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetDefaultsArgs {
    #[serde(rename = "crate", default)]
    pub crate_uri: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub features: Option<Features>,
    #[serde(default)]
    pub bin: Option<String>,
    #[serde(default)]
    pub base_image: Option<String>,
}

/// Server → client: a line a running container printed, or (with
/// `exitCode` and no `text`) its end.
pub enum OutputNotification {}

impl Notification for OutputNotification {
    type Params = OutputParams;
    const METHOD: &'static str = "arca/output";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputParams {
    #[serde(rename = "crate")]
    pub crate_uri: String,
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}
