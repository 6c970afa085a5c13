//! Build settings and the names derived from them.
//!
//! Settings resolve with the original CLI's precedence: command argument,
//! else `.arca/config.toml` `[rust]`, else an error naming the flag and
//! `--set-default`. The builder image for a runtime base follows the
//! original's CUDA promotion (`-base-`/`-runtime-` build in `-devel-`), and
//! its tag is `arca-builder:<sha256(recipe version, builder base)>`.
//!
//! **Knows neither Docker nor LSP: plain data in, plain data out.**

use anyhow::{Result, anyhow, bail};

use crate::config::RustConfig;
use crate::workspace::CrateFacts;

pub use crate::builder_image::{
    BUILDER_IMAGE_PREFIX, BUILDER_RECIPE_VERSION, builder_base_image, builder_image_tag,
    builder_image_tag_for_runtime, length_prefixed_hash,
};
pub use crate::config::normalize_features;
/// Repository of the runtime images.
pub const LOCAL_IMAGE_PREFIX: &str = "arca-local";

/// Settings given on the command line or by an editor command; each one
/// overrides the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsOverrides {
    pub profile: Option<String>,
    /// Raw values: each may hold several features split by commas or spaces.
    pub features: Option<Vec<String>>,
    pub bin: Option<String>,
    pub base_image: Option<String>,
}

/// Fully resolved settings of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    pub profile: String,
    pub features: Vec<String>,
    pub bin: String,
    pub base_image: String,
}

impl BuildSettings {
    /// The config that saves these settings as defaults.
    pub fn to_config(&self) -> RustConfig {
        RustConfig {
            profile: Some(self.profile.clone()),
            features: Some(self.features.clone()),
            bin: Some(self.bin.clone()),
            base_image: Some(self.base_image.clone()),
        }
    }
}

/// Resolves every setting, argument first, then config.
pub fn resolve_settings(
    overrides: &SettingsOverrides,
    config: &RustConfig,
    facts: &CrateFacts,
) -> Result<BuildSettings> {
    Ok(BuildSettings {
        profile: resolve_profile(overrides, config, facts)?,
        features: check_features(resolve_features(overrides, config)?, facts)?,
        bin: resolve_binary(overrides, config, &facts.bins)?,
        base_image: resolve_base_image(overrides, config)?,
    })
}

fn resolve_profile(
    overrides: &SettingsOverrides,
    config: &RustConfig,
    facts: &CrateFacts,
) -> Result<String> {
    let profile = match (overrides.profile.as_deref(), config.profile.as_deref()) {
        (Some(profile), _) | (None, Some(profile)) => {
            nonempty_trimmed(profile).ok_or_else(|| anyhow!("Cargo profile cannot be empty."))?
        }
        (None, None) => bail!(
            "Missing cargo profile. Pass `--profile PROFILE`, or rerun once with `--profile PROFILE --set-default` to save it in `.arca/config.toml`."
        ),
    };
    if !facts.has_profile(&profile) {
        bail!(
            "Cargo profile `{}` is not defined. Use one of: {}, or add `[profile.{}]` to the workspace Cargo.toml.",
            profile.escape_debug(),
            facts.all_profiles().join(", "),
            profile.escape_debug()
        );
    }
    Ok(profile)
}

/// Every plain feature name must be one the package declares (`dep/feat`
/// forms are left to cargo), so a typo fails before any engine is asked.
fn check_features(features: Vec<String>, facts: &CrateFacts) -> Result<Vec<String>> {
    for feature in &features {
        if feature.contains('/') || facts.features.contains(feature) {
            continue;
        }
        let known: Vec<&str> = facts.features.iter().map(String::as_str).collect();
        bail!(
            "Crate `{}` has no feature `{}`. {}",
            facts.name,
            feature.escape_debug(),
            if known.is_empty() {
                "It declares no features: pass `--features ''`.".to_owned()
            } else {
                format!("Its features are: {}.", known.join(", "))
            }
        );
    }
    Ok(features)
}

fn resolve_features(overrides: &SettingsOverrides, config: &RustConfig) -> Result<Vec<String>> {
    if let Some(features) = &overrides.features {
        return Ok(normalize_features(features));
    }
    if let Some(features) = &config.features {
        return Ok(normalize_features(features));
    }
    bail!(
        "Missing cargo features. Pass `-F/--features`, or rerun once with `-F/--features ... --set-default` to save them in `.arca/config.toml`. Use `--features ''` to save an empty feature set."
    )
}

fn resolve_binary(
    overrides: &SettingsOverrides,
    config: &RustConfig,
    bins: &[String],
) -> Result<String> {
    if let Some(bin) = overrides.bin.as_deref().or(config.bin.as_deref()) {
        return bins
            .iter()
            .find(|target| target.as_str() == bin)
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "Binary target `{}` does not exist. Available binaries: {}",
                    bin.escape_debug(),
                    bins.join(", ")
                )
            });
    }
    match bins {
        [only] => Ok(only.clone()),
        _ => bail!(
            "Crate exposes multiple binaries. Pass `--bin NAME`, or rerun once with `--bin NAME --set-default` to save it in `.arca/config.toml`."
        ),
    }
}

fn resolve_base_image(overrides: &SettingsOverrides, config: &RustConfig) -> Result<String> {
    match overrides
        .base_image
        .as_deref()
        .or(config.base_image.as_deref())
    {
        Some(image) => {
            nonempty_trimmed(image).ok_or_else(|| anyhow!("Runtime base image cannot be empty."))
        }
        None => bail!(
            "Missing runtime base image. Pass `--base-image IMAGE`, or rerun once with `--base-image IMAGE --set-default` to save it in `.arca/config.toml`."
        ),
    }
}

fn nonempty_trimmed(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// What the original CLI mixes into the fingerprint for a container build.
pub fn builder_fingerprint_key(runtime_base_image: &str) -> String {
    format!(
        "{BUILDER_RECIPE_VERSION}:{}",
        builder_image_tag_for_runtime(runtime_base_image)
    )
}

/// Cargo's output directory name for a profile (`dev` builds into `debug`).
pub fn profile_output_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// The crate name as it may appear in an image tag: lowercase ASCII
/// alphanumerics, with every other run of characters turned into one `-`.
pub fn sanitize_tag_component(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "crate".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The original CLI's fingerprint settings for a build in the builder
/// container (the default mode, and what a crate without artifact reports).
pub fn container_fingerprint_settings(
    facts: &CrateFacts,
    settings: &BuildSettings,
) -> crate::fingerprint::FingerprintSettings {
    crate::fingerprint::FingerprintSettings {
        workspace_root: facts.workspace_root.clone(),
        package_name: facts.name.clone(),
        package_version: facts.version.clone(),
        binary_name: settings.bin.clone(),
        profile: settings.profile.clone(),
        features: settings.features.clone(),
        base_image: settings.base_image.clone(),
        mode: crate::fingerprint::BuildModeKey::Container {
            fingerprint_key: builder_fingerprint_key(&settings.base_image),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(bins: &[&str]) -> CrateFacts {
        crate::workspace::test_facts(bins, &["a", "b", "c"])
    }

    #[test]
    fn an_unknown_feature_is_refused_naming_the_declared_ones() {
        let config = RustConfig {
            profile: Some("release".into()),
            features: Some(vec!["nope\u{1b}[31m".into()]),
            bin: None,
            base_image: Some("debian:12".into()),
        };
        let error = resolve_settings(&SettingsOverrides::default(), &config, &facts(&["demo"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no feature `nope\\u{1b}[31m`"), "{error}");
        assert!(error.contains("a, b, c"), "{error}");
        let path_feature = SettingsOverrides {
            features: Some(vec!["dep/x".into()]),
            ..Default::default()
        };
        assert!(resolve_settings(&path_feature, &config, &facts(&["demo"])).is_ok());
    }

    #[test]
    fn cuda_base_and_runtime_images_build_in_devel() {
        assert_eq!(
            builder_base_image("nvidia/cuda:12.8.1-base-ubuntu24.04"),
            "nvidia/cuda:12.8.1-devel-ubuntu24.04"
        );
        assert_eq!(
            builder_base_image("nvidia/cuda:12.8.1-runtime-ubuntu24.04"),
            "nvidia/cuda:12.8.1-devel-ubuntu24.04"
        );
        for same in [
            "nvidia/cuda:12.8.1-devel-ubuntu24.04",
            "nvidia/cuda",
            "ubuntu:24.04",
            "docker.io/nvidia/cuda:12.8.1-runtime-ubuntu24.04",
            "nvidia/cuda:12.8.1-cudnn-ubuntu24.04",
        ] {
            assert_eq!(builder_base_image(same), same);
        }
    }

    #[test]
    fn builder_tag_is_the_hand_derived_hash() {
        // sha256 of u64le(20) "arca-rust-builder-v1" u64le(12) "ubuntu:24.04",
        // computed independently with Python's hashlib.
        assert_eq!(
            builder_image_tag("ubuntu:24.04"),
            "arca-builder:9dabb2339c04991211a17bc0ffca29d171b8591dccc243dd28ee976ebae475e2"
        );
    }

    #[test]
    fn runtime_and_base_cuda_images_share_a_builder() {
        assert_eq!(
            builder_image_tag_for_runtime("nvidia/cuda:12.8.1-runtime-ubuntu24.04"),
            builder_image_tag_for_runtime("nvidia/cuda:12.8.1-base-ubuntu24.04")
        );
        assert_ne!(
            builder_image_tag_for_runtime("nvidia/cuda:12.8.1-base-ubuntu24.04"),
            builder_image_tag_for_runtime("nvidia/cuda:13.0.0-base-ubuntu24.04")
        );
    }

    #[test]
    fn arguments_override_config() {
        let config = RustConfig {
            profile: Some("release".into()),
            features: Some(vec!["a".into()]),
            bin: None,
            base_image: Some("debian:12".into()),
        };
        let overrides = SettingsOverrides {
            profile: Some("dev".into()),
            features: Some(vec!["b, c b".into()]),
            ..Default::default()
        };
        let settings = resolve_settings(&overrides, &config, &facts(&["demo"])).unwrap();
        assert_eq!(
            settings,
            BuildSettings {
                profile: "dev".into(),
                features: vec!["b".into(), "c".into()],
                bin: "demo".into(),
                base_image: "debian:12".into(),
            }
        );
    }

    #[test]
    fn missing_settings_name_the_flag_and_set_default() {
        let error = resolve_settings(&Default::default(), &Default::default(), &facts(&["demo"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("--profile PROFILE --set-default"), "{error}");
        let config = RustConfig {
            profile: Some("release".into()),
            ..Default::default()
        };
        let error = resolve_settings(&Default::default(), &config, &facts(&["demo"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("--features ''"), "{error}");
    }

    #[test]
    fn several_binaries_need_a_choice_and_a_wrong_one_lists_them() {
        let config = RustConfig {
            profile: Some("release".into()),
            features: Some(vec![]),
            bin: None,
            base_image: Some("debian:12".into()),
        };
        let error = resolve_settings(&Default::default(), &config, &facts(&["a", "b"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("multiple binaries"), "{error}");
        let overrides = SettingsOverrides {
            bin: Some("c".into()),
            ..Default::default()
        };
        let error = resolve_settings(&overrides, &config, &facts(&["a", "b"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("Available binaries: a, b"), "{error}");
    }

    #[test]
    fn unknown_profiles_are_refused_and_custom_ones_accepted() {
        let mut config = RustConfig {
            profile: Some("release-lto".into()),
            features: Some(vec![]),
            bin: None,
            base_image: Some("debian:12".into()),
        };
        assert!(resolve_settings(&Default::default(), &config, &facts(&["a"])).is_ok());
        config.profile = Some("fast".into());
        let error = resolve_settings(&Default::default(), &config, &facts(&["a"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("[profile.fast]"), "{error}");
    }

    #[test]
    fn tag_components_are_sanitized() {
        assert_eq!(sanitize_tag_component("My_Crate"), "my-crate");
        assert_eq!(sanitize_tag_component("__"), "crate");
    }
}
