//! The settings a config holds, as plain data (the `[rust]` table's saved
//! settings and its builder-shaping keys), read from a config text
//! leniently (well-typed values only; the checker reports the rest), and
//! how feature lists are normalized.

use serde::{Deserialize, Serialize};
use toml_edit::{Document, Item};

use super::schema::{self, RUST_TABLE};

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
    /// The platforms to build for, as written (`None`: the engine's).
    pub platforms: Option<Vec<String>>,
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

/// The well-typed settings of a config text, ignoring everything else; a
/// text that is not TOML gives the empty config.
pub fn parse_settings(text: &str) -> RustConfig {
    let Ok(document) = Document::parse(text) else {
        return RustConfig::default();
    };
    let Some(rust) = document
        .as_table()
        .get(RUST_TABLE)
        .and_then(Item::as_table_like)
    else {
        return RustConfig::default();
    };
    let string = |key: &str| rust.get(key).and_then(Item::as_str).map(str::to_owned);
    let features = rust
        .get(schema::FEATURES.name)
        .and_then(Item::as_array)
        .and_then(|array| {
            array
                .iter()
                .map(|value| value.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
        });
    RustConfig {
        profile: string(schema::PROFILE.name),
        features,
        bin: string(schema::BIN.name),
        base_image: string(schema::BASE_IMAGE.name),
    }
}

/// The well-typed builder settings of a config text (`packages`,
/// `toolchain`, `env`, `proxy`, `init`), ignoring everything else.
pub fn parse_builder_settings(text: &str) -> BuilderConfig {
    let Ok(document) = Document::parse(text) else {
        return BuilderConfig::default();
    };
    let Some(rust) = document
        .as_table()
        .get(RUST_TABLE)
        .and_then(Item::as_table_like)
    else {
        return BuilderConfig::default();
    };
    // The string entries of an array key (`None`: absent or not an array).
    let strings = |key: &str| {
        rust.get(key).and_then(Item::as_array).map(|array| {
            array
                .iter()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect::<Vec<String>>()
        })
    };
    let packages = strings(schema::PACKAGES.name).unwrap_or_default();
    let env = rust
        .get(schema::ENV.name)
        .and_then(Item::as_table_like)
        .map(|table| {
            table
                .iter()
                .filter_map(|(name, item)| {
                    item.as_str()
                        .map(|value| (name.to_owned(), value.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let boolean = |key: &str| rust.get(key).and_then(Item::as_bool);
    BuilderConfig {
        packages,
        toolchain: rust
            .get(schema::TOOLCHAIN.name)
            .and_then(Item::as_str)
            .map(str::to_owned),
        env,
        proxy: boolean(schema::PROXY.name),
        init: boolean(schema::INIT.name),
        platforms: strings(schema::PLATFORMS.name),
    }
}

/// The `push_to` setting of a config text, when it is a string.
pub fn parse_push_to(text: &str) -> Option<String> {
    let document = Document::parse(text).ok()?;
    document
        .as_table()
        .get(RUST_TABLE)
        .and_then(Item::as_table_like)?
        .get(schema::PUSH_TO.name)
        .and_then(Item::as_str)
        .map(str::to_owned)
}
