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
use crate::platform::Platform;
use crate::workspace::CrateFacts;

pub use crate::builder_image::{
    BUILDER_IMAGE_PREFIX, BUILDER_RECIPE_VERSION, builder_base_image, builder_image_tag,
    builder_image_tag_for_runtime, length_prefixed_hash,
};
pub use crate::config::builder_values::{
    RESERVED_ENV, validate_env_name, validate_package, validate_toolchain,
};
pub use crate::config::normalize_features;
/// The version of the recipe Arca builds builder images with: part of the
/// builder tag, so a recipe change never reuses an image of an older one.
pub const BUILDER_RECIPE_TAG_VERSION: &str = "arca-rust-builder-v2";
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
    /// Platforms to build for (`--platform`), each may hold several split by
    /// commas; overrides `[rust] platforms`.
    pub platforms: Option<Vec<String>>,
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
            "Crate exposes multiple binaries: {}. Pass `--bin NAME`, or rerun once with `--bin NAME --set-default` to save it in `.arca/config.toml`.",
            bins.join(", ")
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

/// A Rust toolchain the builder must have, and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedToolchain {
    /// `1.96`, `1.96.0`, `stable`, `nightly-2026-05-01`, ...
    pub name: String,
    /// Where it was pinned: a `rust-toolchain.toml` path or `[rust] toolchain`.
    pub source: String,
}

/// What shapes the builder image beyond its base: extra system packages, a
/// pinned toolchain and the platforms it cross-compiles for. Part of the
/// builder tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderShape {
    /// Extra system packages, sorted, without duplicates.
    pub packages: Vec<String>,
    pub toolchain: Option<PinnedToolchain>,
    /// The platforms other than the builder's own that its recipe adds a
    /// Rust target and a C cross compiler for, sorted.
    pub cross: Vec<Platform>,
}

impl BuilderShape {
    /// What the shape adds to the recorded build mode (empty when nothing):
    /// a toolchain or package change makes the image stale, while
    /// artifacts built without either keep their recorded mode.
    pub fn mode_suffix(&self) -> String {
        let mut parts = Vec::new();
        if let Some(toolchain) = &self.toolchain {
            parts.push(format!("toolchain={}", toolchain.name));
        }
        if !self.packages.is_empty() {
            parts.push(format!("packages={}", self.packages.join(",")));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("+{}", parts.join("+"))
        }
    }
}

/// Everything of a build beyond [`BuildSettings`] that the config shapes:
/// the builder, the build's environment, proxy pass-through, the image init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildExtras {
    pub shape: BuilderShape,
    /// Extra variables for cargo, sorted by name.
    pub env: Vec<(String, String)>,
    /// Pass the host's proxy variables.
    pub proxy: bool,
    /// A static init in the image.
    pub init: bool,
    /// The platforms the image is built for, sorted; empty: the builder's
    /// own only; else always including it (see [`BuildExtras::set_platforms`]).
    pub platforms: Vec<Platform>,
    /// The platforms asked for (`--platform` or `[rust] platforms`), sorted.
    pub requested: Vec<Platform>,
    /// The builder's own platform, which it compiles for without `--target`:
    /// this machine's until [`BuildExtras::build_on`] names the engine's.
    pub native: Platform,
}

impl Default for BuildExtras {
    fn default() -> Self {
        Self {
            shape: BuilderShape::default(),
            env: Vec::new(),
            proxy: true,
            init: false,
            platforms: Vec::new(),
            requested: Vec::new(),
            native: Platform::host(),
        }
    }
}

impl BuildExtras {
    /// What these extras add to the recorded build mode (empty when none):
    /// the shape, a digest of the build environment (not the values), init.
    pub fn mode_suffix(&self) -> String {
        let mut suffix = self.shape.mode_suffix();
        if !self.env.is_empty() {
            let parts: Vec<String> = self
                .env
                .iter()
                .flat_map(|(name, value)| [name.clone(), value.clone()])
                .collect();
            suffix.push_str(&format!("+env={}", &length_prefixed_hash(&parts)[..16]));
        }
        if self.init {
            suffix.push_str("+init");
        }
        // Spelled against this machine's platform, not the engine's, so the
        // status (which asks no engine) reads the same mode the build wrote.
        let host = Platform::host();
        let listed = built_platforms(&self.requested, host);
        if !listed.is_empty() && listed != [host] {
            let names: Vec<&str> = listed.iter().map(|platform| platform.name()).collect();
            suffix.push_str(&format!("+platforms={}", names.join(",")));
        }
        suffix
    }

    /// Sets the platforms (a `--platform` override or the config's list):
    /// the builder then cross-compiles for every one but its own. The
    /// builder's own platform is always built too: the engine runs it, and
    /// the record's image is that one.
    pub fn set_platforms(&mut self, mut requested: Vec<Platform>) {
        requested.sort();
        requested.dedup();
        self.requested = requested;
        self.build_on(self.native);
    }

    /// Makes `native` the builder's own platform (the engine's: a remote
    /// engine may be of another architecture than this machine) and
    /// derives what is cross-compiled from the platforms asked for.
    pub fn build_on(&mut self, native: Platform) {
        self.native = native;
        self.shape.cross = self
            .requested
            .iter()
            .copied()
            .filter(|platform| *platform != native)
            .collect();
        self.platforms = built_platforms(&self.requested, native);
    }
}

/// The platforms a builder of `native` builds when `requested` are asked
/// for, sorted: none asked, none listed (its own only); else those and
/// its own.
fn built_platforms(requested: &[Platform], native: Platform) -> Vec<Platform> {
    let mut platforms = requested.to_vec();
    if !platforms.is_empty() && !platforms.contains(&native) {
        platforms.push(native);
        platforms.sort();
    }
    platforms
}

/// The builder package that provides the image init (`tini-static`).
pub const INIT_PACKAGE: &str = "tini";

/// Resolves the builder-shaping config: validates every value, and finds a
/// `rust-toolchain.toml`/`rust-toolchain` in the crate directory or above
/// (as rustup does) when the config pins no toolchain.
pub fn resolve_extras(
    config: &crate::config::BuilderConfig,
    crate_dir: &std::path::Path,
) -> Result<BuildExtras> {
    let mut packages = Vec::new();
    for package in &config.packages {
        validate_package(package).map_err(|reason| anyhow!("{reason} (in `[rust] packages`)"))?;
        packages.push(package.clone());
    }
    let init = config.init.unwrap_or(false);
    if init {
        // The image's static init comes out of the builder (Debian's
        // `tini` ships `tini-static`), so the builder's tag follows it.
        packages.push(INIT_PACKAGE.to_owned());
    }
    packages.sort();
    packages.dedup();
    let toolchain = match &config.toolchain {
        Some(name) => {
            validate_toolchain(name)
                .map_err(|reason| anyhow!("{reason} (in `[rust] toolchain`)"))?;
            Some(PinnedToolchain {
                name: name.trim().to_owned(),
                source: "`[rust] toolchain` in .arca/config.toml".to_owned(),
            })
        }
        None => toolchain_file(crate_dir)?,
    };
    let mut env = Vec::new();
    for (name, value) in &config.env {
        validate_env_name(name).map_err(|reason| anyhow!("{reason} (in `[rust] env`)"))?;
        env.push((name.clone(), value.clone()));
    }
    env.sort();
    let platforms = crate::platform::parse_list(config.platforms.as_deref().unwrap_or_default())
        .map_err(|error| anyhow!("{error} (in `[rust] platforms`)"))?;
    let mut extras = BuildExtras {
        shape: BuilderShape {
            packages,
            toolchain,
            cross: Vec::new(),
        },
        env,
        proxy: config.proxy.unwrap_or(true),
        init,
        ..BuildExtras::default()
    };
    extras.set_platforms(platforms);
    Ok(extras)
}

/// The toolchain a `rust-toolchain.toml` (or legacy `rust-toolchain`) pins,
/// searched from `crate_dir` upwards as rustup does.
pub fn toolchain_file(crate_dir: &std::path::Path) -> Result<Option<PinnedToolchain>> {
    for dir in crate_dir.ancestors() {
        for name in ["rust-toolchain", "rust-toolchain.toml"] {
            let path = dir.join(name);
            // Only a regular file, bounded (a pipe here never blocks a build).
            let Ok(text) = crate::fsread::read_to_string(&path, crate::fsread::Kind::CargoManifest)
            else {
                continue;
            };
            let channel = match text.parse::<toml::Table>() {
                Ok(table) => table
                    .get("toolchain")
                    .and_then(|toolchain| toolchain.get("channel"))
                    .and_then(|channel| channel.as_str())
                    .map(str::to_owned),
                // The legacy file holds the bare channel name.
                Err(_) if name == "rust-toolchain" => Some(text.trim().to_owned()),
                Err(error) => bail!("{} is not valid TOML: {error}", path.display()),
            };
            let Some(channel) = channel else {
                // `path = ...` or components only: nothing Arca can pin.
                continue;
            };
            validate_toolchain(&channel)
                .map_err(|reason| anyhow!("{reason} (in {})", path.display()))?;
            return Ok(Some(PinnedToolchain {
                name: channel.trim().to_owned(),
                source: path.display().to_string(),
            }));
        }
    }
    Ok(None)
}

/// `arca-builder:<hash>` for a builder base image as Arca builds it now:
/// the recipe version, the base, the packages and the toolchain.
pub fn shaped_builder_image_tag(builder_base_image: &str, shape: &BuilderShape) -> String {
    let toolchain = shape
        .toolchain
        .as_ref()
        .map_or("", |toolchain| toolchain.name.as_str());
    let mut parts = vec![
        BUILDER_RECIPE_TAG_VERSION.to_owned(),
        builder_base_image.to_owned(),
        shape.packages.join(" "),
        toolchain.to_owned(),
    ];
    // Only a cross-compiling builder hashes its targets, so every builder
    // tag of a single-platform build stays what it was.
    if !shape.cross.is_empty() {
        let targets: Vec<&str> = shape.cross.iter().map(|p| p.rust_target()).collect();
        parts.push(format!("cross={}", targets.join(" ")));
    }
    let hash = length_prefixed_hash(&parts);
    format!("{BUILDER_IMAGE_PREFIX}:{hash}")
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

    #[test]
    fn platforms_beyond_the_host_shape_the_builder_and_the_mode_and_the_host_stays() {
        let host = Platform::host();
        let other = Platform::all().find(|platform| *platform != host).unwrap();
        let mut extras = BuildExtras::default();
        extras.set_platforms(vec![other]);
        let mut both = vec![host, other];
        both.sort();
        assert_eq!(
            extras.platforms, both,
            "the host's platform is always built"
        );
        assert_eq!(extras.shape.cross, [other]);
        assert!(
            extras.mode_suffix().contains("+platforms="),
            "{}",
            extras.mode_suffix()
        );
        assert_ne!(
            shaped_builder_image_tag("debian:12", &extras.shape),
            shaped_builder_image_tag("debian:12", &BuilderShape::default()),
            "a cross-compiling builder is another image"
        );
        let mut host_only = BuildExtras::default();
        host_only.set_platforms(vec![host]);
        assert!(host_only.shape.cross.is_empty());
        assert_eq!(host_only.mode_suffix(), "", "the host alone is the default");
    }

    #[test]
    fn an_engine_of_another_platform_builds_its_own_natively_and_keeps_the_mode() {
        let host = Platform::host();
        let other = Platform::all().find(|platform| *platform != host).unwrap();
        // The config asks for this machine's platform only; the engine is
        // of another architecture.
        let mut extras = BuildExtras::default();
        extras.set_platforms(vec![host]);
        let mode = extras.mode_suffix();
        extras.build_on(other);
        assert_eq!(
            extras.shape.cross,
            [host],
            "this machine's is cross-compiled"
        );
        let mut both = vec![host, other];
        both.sort();
        assert_eq!(extras.platforms, both, "the engine's own is built too");
        assert_eq!(
            extras.mode_suffix(),
            mode,
            "the mode does not depend on the engine"
        );
        // Nothing asked for: only the engine's own, nothing cross.
        let mut default = BuildExtras::default();
        default.build_on(other);
        assert!(default.shape.cross.is_empty() && default.platforms.is_empty());
    }

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

    #[test]
    fn the_multiple_binaries_error_lists_them() {
        let error = resolve_binary(
            &SettingsOverrides::default(),
            &RustConfig::default(),
            &["client".to_owned(), "server".to_owned()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("multiple binaries: client, server."),
            "{error}"
        );
    }

    #[test]
    fn builder_values_are_validated() {
        assert!(validate_package("make").is_ok());
        assert!(validate_package("libssl-dev=3.0.11-1").is_ok());
        assert!(validate_package("g++").is_ok());
        for bad in ["", "-y", "make; rm -rf /", "a b", "$(id)"] {
            assert!(validate_package(bad).is_err(), "{bad}");
        }
        assert!(validate_toolchain("1.96").is_ok());
        assert!(validate_toolchain("nightly-2026-05-01").is_ok());
        for bad in ["", "1.96 ", "--force", "a/b", "x'y"] {
            assert!(
                validate_toolchain(bad.trim_end_matches(' ')).is_err() || bad.ends_with(' '),
                "{bad}"
            );
        }
        assert!(validate_env_name("RUSTFLAGS").is_ok());
        assert!(validate_env_name("_X1").is_ok());
        for bad in ["", "1X", "A-B", "A=B", "CARGO_HOME", "HOME"] {
            assert!(validate_env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rust_toolchain_files_pin_the_toolchain_and_the_config_wins() {
        let dir = tempfile::tempdir().unwrap();
        let crate_dir = dir.path().join("ws/app");
        std::fs::create_dir_all(&crate_dir).unwrap();
        let config = crate::config::BuilderConfig::default();
        let extras = resolve_extras(&config, &crate_dir).unwrap();
        assert_eq!(extras.shape.toolchain, None);
        assert_eq!(extras.mode_suffix(), "");
        assert!(extras.proxy && !extras.init);

        let file = dir.path().join("ws/rust-toolchain.toml");
        std::fs::write(
            &file,
            "[toolchain]\nchannel = \"1.96\"\ncomponents = [\"clippy\"]\n",
        )
        .unwrap();
        let extras = resolve_extras(&config, &crate_dir).unwrap();
        assert_eq!(
            extras.shape.toolchain,
            Some(PinnedToolchain {
                name: "1.96".into(),
                source: file.display().to_string()
            })
        );
        assert_eq!(extras.mode_suffix(), "+toolchain=1.96");

        let legacy = crate_dir.join("rust-toolchain");
        std::fs::write(&legacy, "nightly-2026-05-01\n").unwrap();
        let pinned = toolchain_file(&crate_dir).unwrap().unwrap();
        assert_eq!(pinned.name, "nightly-2026-05-01");

        let config = crate::config::BuilderConfig {
            packages: vec!["make".into(), "cmake".into(), "make".into()],
            toolchain: Some("1.95".into()),
            env: vec![("RUSTFLAGS".into(), "-Copt-level=1".into())],
            proxy: Some(false),
            init: Some(true),
            platforms: None,
        };
        let extras = resolve_extras(&config, &crate_dir).unwrap();
        // `init` installs the init's package into the builder.
        assert_eq!(extras.shape.packages, ["cmake", "make", INIT_PACKAGE]);
        assert_eq!(extras.shape.toolchain.as_ref().unwrap().name, "1.95");
        assert!(!extras.proxy && extras.init);
        let suffix = extras.mode_suffix();
        assert!(
            suffix.starts_with("+toolchain=1.95+packages=cmake,make,tini+env="),
            "{suffix}"
        );
        assert!(
            suffix.ends_with("+init") && !suffix.contains("opt-level"),
            "{suffix}"
        );

        std::fs::write(&file, "[toolchain\n").unwrap();
        std::fs::remove_file(&legacy).unwrap();
        let error = resolve_extras(&crate::config::BuilderConfig::default(), &crate_dir)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rust-toolchain.toml is not valid TOML"),
            "{error}"
        );
    }

    #[test]
    fn the_builder_tag_follows_packages_and_toolchain() {
        let plain = shaped_builder_image_tag("debian:12", &BuilderShape::default());
        let with_make = shaped_builder_image_tag(
            "debian:12",
            &BuilderShape {
                packages: vec!["make".into()],
                toolchain: None,
                cross: Vec::new(),
            },
        );
        assert_ne!(plain, with_make);
        assert_ne!(
            plain,
            builder_image_tag("debian:12"),
            "a new recipe, a new tag"
        );
        assert!(plain.starts_with("arca-builder:"));
    }
}
