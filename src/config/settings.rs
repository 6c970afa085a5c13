//! The settings a config holds, as plain data: the `[rust]` table's saved
//! settings and its builder-shaping keys, and how feature lists are
//! normalized.

use serde::{Deserialize, Serialize};

/// The `[rust]` table: every leaf optional, so command arguments and the file
/// merge (argument first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RustConfig {
    pub profile: Option<String>,
    pub features: Option<Vec<String>>,
    pub bin: Option<String>,
    pub base_image: Option<String>,
}

/// The builder-shaping keys of `[rust]`: read by builds only, never saved
/// by `--set-default`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderConfig {
    /// Extra system packages for the builder image.
    pub packages: Vec<String>,
    /// A pinned Rust toolchain (overrides `rust-toolchain.toml`).
    pub toolchain: Option<String>,
    /// Extra environment variables of the cargo build, in file order.
    pub env: Vec<(String, String)>,
    /// Pass the host's proxy variables (default true).
    pub proxy: Option<bool>,
    /// A static init in the image (default false).
    pub init: Option<bool>,
}

/// Splits feature values on commas and whitespace, drops empties and
/// duplicates, keeps first-seen order.
pub fn normalize_features<S: AsRef<str>>(values: &[S]) -> Vec<String> {
    let mut features: Vec<String> = Vec::new();
    for value in values {
        for feature in value
            .as_ref()
            .split(|ch: char| ch == ',' || ch.is_whitespace())
            .filter(|feature| !feature.is_empty())
        {
            if !features.iter().any(|known| known == feature) {
                features.push(feature.to_owned());
            }
        }
    }
    features
}
