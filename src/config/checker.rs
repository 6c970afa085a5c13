//! TODO(helper): the config checker.
use super::{Finding, RustConfig};
use crate::workspace::CrateFacts;

pub fn check(_text: &str, _facts: Option<&CrateFacts>) -> Vec<Finding> {
    Vec::new()
}

pub fn parse_settings(_text: &str) -> RustConfig {
    RustConfig::default()
}
