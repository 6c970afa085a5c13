//! TEMPORARY placeholder until the fingerprint stream lands.
use std::path::PathBuf;

use super::FingerprintSettings;

pub fn whole_tree_fingerprint(
    _settings: &FingerprintSettings,
    _roots: &[PathBuf],
) -> anyhow::Result<String> {
    anyhow::bail!("The fingerprint stream is not built into this arca yet.")
}
