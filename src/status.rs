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

/// Where the newest artifact was pushed (its record's `uploaded_ref` and
/// `uploaded_at_epoch_ms`), as the status object's `pushed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    #[serde(rename = "ref")]
    pub reference: String,
    pub at: Option<u64>,
}

impl Pushed {
    /// The push recorded in an artifact's record, if any.
    pub fn of(artifact: &StoredArtifact) -> Option<Self> {
        artifact
            .metadata
            .uploaded_ref
            .as_ref()
            .map(|reference| Pushed {
                reference: reference.clone(),
                at: artifact.metadata.uploaded_at_epoch_ms,
            })
    }
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
    /// The engine the crate builds with (`docker`, `podman`): the one its
    /// newest image was built with (that record's `runtime`); `null` before
    /// its first image.
    #[serde(default)]
    pub engine: Option<String>,
    /// The newest artifact's push, `null` when it was not pushed.
    #[serde(default)]
    pub pushed: Option<Pushed>,
    /// The container `arca.run` started for this crate, while it runs
    /// (PROTOCOL.md additions; `null` otherwise).
    #[serde(default)]
    pub running: Option<RunningContainer>,
    /// The newest artifact's SBOM (additive; `null` when it has none).
    #[serde(default)]
    pub sbom: Option<crate::sbom::stored::Summary>,
    /// The platforms of the newest artifact's image index (additive;
    /// absent for a single-platform image, which is the engine's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

/// A running container of the crate, as the status object shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningContainer {
    pub container: String,
    pub image: String,
    pub started_at: u64,
    /// Run live (`arca.run` with `live`): changes update the container in
    /// place. Sent only when true (PROTOCOL.md additions).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
    /// When a live update last put a binary into the container that no
    /// image holds (epoch ms); not on the wire.
    #[serde(skip)]
    pub updated_live_at: Option<u64>,
}

/// The reason a crate is stale while its container runs a binary a live
/// update put there.
pub const UPDATED_LIVE_REASON: &str = "running container updated live; image not rebuilt";

impl RunningContainer {
    /// Whether the container runs a binary newer than the crate's newest
    /// image (`created_at`: that image's record time, epoch ms).
    pub fn runs_unrecorded_binary(&self, newest_image_created_at: Option<u64>) -> bool {
        match (self.updated_live_at, newest_image_created_at) {
            (Some(updated), Some(created)) => updated > created,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

use std::path::Path;

use crate::config::RustConfig;
use crate::plan::BuildSettings;
use crate::store::StoredArtifact;
use crate::workspace::CrateFacts;

/// Why a crate's status cannot be judged against its artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupProblem {
    /// Settings a build needs are absent (state `unconfigured`).
    Unconfigured(String),
    /// Cargo.toml, the config or a setting is broken (state `error`).
    Broken(String),
}

/// What is known about the crate's inputs today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// The live fingerprint, comparable with the artifact's, and the inputs
    /// known to differ from the artifact's (display paths, relative to the
    /// crate), when the comparison knows them.
    Computed {
        fingerprint: String,
        changed_inputs: Vec<String>,
    },
    /// The fingerprint cannot be computed (e.g. an unreadable input).
    Failed(String),
}

/// The facts a verdict is made of.
pub struct Assessment<'a> {
    pub crate_dir: &'a Path,
    /// The package name, or the directory name when Cargo.toml is broken.
    pub name: &'a str,
    pub setup: Result<(&'a CrateFacts, &'a BuildSettings), SetupProblem>,
    pub artifact: Option<&'a StoredArtifact>,
    /// `None` while setup failed (nothing to fingerprint).
    pub live: Option<&'a Live>,
    pub building: bool,
}

/// The single verdict rule shared by `arca status` and the server.
pub fn assess(input: &Assessment) -> CrateStatus {
    let artifact = input.artifact.map(|artifact| ArtifactSummary {
        id: artifact.metadata.artifact_id.clone(),
        tag: artifact.metadata.local_tag.clone(),
        fingerprint: artifact.metadata.build_fingerprint.clone(),
        created_at: artifact.metadata.created_at_epoch_ms,
    });
    let fingerprint = match input.live {
        Some(Live::Computed { fingerprint, .. }) => Some(fingerprint.clone()),
        _ => None,
    };
    let mut status = CrateStatus {
        crate_uri: crate::paths::dir_uri(input.crate_dir),
        name: input.name.to_owned(),
        state: State::Error,
        fingerprint,
        artifact,
        reasons: Vec::new(),
        message: String::new(),
        engine: input
            .artifact
            .map(|artifact| artifact.metadata.runtime.clone()),
        pushed: input.artifact.and_then(Pushed::of),
        running: None,
        sbom: None,
        platforms: Vec::new(),
    };
    if input.building {
        status.state = State::Building;
        status.message = format!("Building an image of {}…", input.name);
        return status;
    }
    let settings = match &input.setup {
        Ok((_, settings)) => *settings,
        Err(SetupProblem::Unconfigured(message)) => {
            status.state = State::Unconfigured;
            status.message = message.clone();
            return status;
        }
        Err(SetupProblem::Broken(message)) => {
            status.message = message.clone();
            return status;
        }
    };
    let (live_fingerprint, changed_inputs) = match input.live {
        Some(Live::Computed {
            fingerprint,
            changed_inputs,
        }) => (fingerprint, changed_inputs),
        Some(Live::Failed(message)) => {
            status.message = message.clone();
            return status;
        }
        None => {
            status.message = "The fingerprint has not been computed yet.".to_owned();
            return status;
        }
    };
    let Some(artifact) = input.artifact else {
        status.state = State::Missing;
        status.message = format!(
            "No image of {} has been built yet. Build one with `arca build rust {}`.",
            input.name,
            input.crate_dir.display()
        );
        return status;
    };
    if artifact.metadata.build_fingerprint == *live_fingerprint {
        status.state = State::Fresh;
        status.message = format!("{} is up to date.", artifact.metadata.local_tag);
        return status;
    }
    status.state = State::Stale;
    status.reasons = settings_changes(&artifact.metadata, settings);
    status.reasons.extend(changed_inputs.iter().cloned());
    if status.reasons.is_empty() {
        status
            .reasons
            .push("inputs changed since the image was built".to_owned());
    }
    status.message = format!(
        "{} is stale: {}.",
        artifact.metadata.local_tag,
        status.reasons.join(", ")
    );
    status
}

/// The settings that differ between an artifact's record and today's
/// settings, as reasons (`"features changed"`).
pub fn settings_changes(
    recorded: &crate::store::ArtifactMetadata,
    settings: &BuildSettings,
) -> Vec<String> {
    let mut recorded_features = recorded.cargo_features.clone();
    recorded_features.sort();
    recorded_features.dedup();
    let mut features = settings.features.clone();
    features.sort();
    features.dedup();
    [
        ("profile", recorded.cargo_profile == settings.profile),
        ("features", recorded_features == features),
        ("bin", recorded.binary_name == settings.bin),
        ("base_image", recorded.base_image == settings.base_image),
    ]
    .into_iter()
    .filter(|(_, same)| !same)
    .map(|(key, _)| format!("{key} changed"))
    .collect()
}

/// The settings a build needs that neither the config nor a default gives:
/// `profile`, `features`, `base_image`, and `bin` when the crate has several
/// binaries.
pub fn missing_settings(config: &RustConfig, facts: &CrateFacts) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if config.profile.is_none() {
        missing.push("profile");
    }
    if config.features.is_none() {
        missing.push("features");
    }
    if config.bin.is_none() && facts.bins.len() > 1 {
        missing.push("bin");
    }
    if config.base_image.is_none() {
        missing.push("base_image");
    }
    missing
}

/// The `unconfigured` message for missing settings.
pub fn unconfigured_message(missing: &[&str], crate_dir: &Path) -> String {
    format!(
        "Missing {} in {}. Set them with `arca build rust {} --set-default` plus the flags, or edit the file.",
        missing.join(", "),
        crate::config::config_path(crate_dir).display(),
        crate_dir.display()
    )
}

/// A crate's facts and resolved settings, or why they can't be had.
pub struct Setup {
    /// The package name, or the directory name when Cargo.toml is broken.
    pub name: String,
    pub facts: Option<CrateFacts>,
    pub result: Result<BuildSettings, SetupProblem>,
}

impl Setup {
    /// Facts and settings together, as [`Assessment::setup`] takes them.
    pub fn pair(&self) -> Result<(&CrateFacts, &BuildSettings), SetupProblem> {
        match (&self.facts, &self.result) {
            (Some(facts), Ok(settings)) => Ok((facts, settings)),
            (_, Err(problem)) => Err(problem.clone()),
            (None, Ok(_)) => Err(SetupProblem::Broken("Crate facts are unavailable.".into())),
        }
    }
}

/// Loads the crate's facts and config (from disk) and resolves its settings.
pub fn load_setup(crate_dir: &Path) -> Setup {
    let config = crate::config::load(crate_dir);
    setup_from(crate_dir, config)
}

/// Like [`load_setup`], with the config already read (e.g. from an editor's
/// unsaved buffer).
pub fn setup_from(crate_dir: &Path, config: anyhow::Result<RustConfig>) -> Setup {
    let dir_name = crate_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| crate_dir.display().to_string());
    let facts = match crate::workspace::load_crate_facts(crate_dir) {
        Ok(facts) => facts,
        Err(error) => {
            return Setup {
                name: dir_name,
                facts: None,
                result: Err(SetupProblem::Broken(format!("{error:#}"))),
            };
        }
    };
    let result = match config {
        Err(error) => Err(SetupProblem::Broken(format!("{error:#}"))),
        Ok(config) => {
            let missing = missing_settings(&config, &facts);
            if missing.is_empty() {
                crate::plan::resolve_settings(&Default::default(), &config, &facts)
                    .map_err(|error| SetupProblem::Broken(format!("{error:#}")))
            } else {
                Err(SetupProblem::Unconfigured(unconfigured_message(
                    &missing, crate_dir,
                )))
            }
        }
    };
    Setup {
        name: facts.name.clone(),
        facts: Some(facts),
        result,
    }
}

/// The status of a crate judged from disk alone, as `arca status` prints it:
/// facts, config and store read now, the fingerprint computed now.
///
/// A crate whose config lacks settings but which has an artifact (built
/// with the settings given as flags) is judged against that artifact's
/// settings for what the config does not say, and the message says so.
pub fn evaluate(crate_dir: &Path, store: &crate::store::Store) -> CrateStatus {
    let config = crate::config::load(crate_dir);
    let artifact = store.newest_for_crate(crate_dir);
    let mut setup = setup_from(crate_dir, clone_config(&config));
    let mut borrowed = None;
    if let (Err(SetupProblem::Unconfigured(_)), Some(artifact), Ok(config)) =
        (&setup.result, &artifact, &config)
    {
        let completed = completed_from_artifact(config, &artifact.metadata);
        let with_artifact = setup_from(crate_dir, Ok(completed));
        if with_artifact.result.is_ok() {
            borrowed = Some(artifact.metadata.artifact_id.clone());
            setup = with_artifact;
        }
    }
    let live = setup
        .pair()
        .ok()
        .map(|(facts, settings)| live_from_disk(facts, settings, artifact.as_ref()));
    let mut status = assess(&Assessment {
        crate_dir,
        name: &setup.name,
        setup: setup.pair(),
        artifact: artifact.as_ref(),
        live: live.as_ref(),
        building: false,
    });
    if let Some(id) = borrowed {
        status
            .message
            .push_str(&borrowed_settings_note(crate_dir, &id));
    }
    status.sbom = artifact
        .as_ref()
        .and_then(|artifact| crate::sbom::stored::summary(&artifact.dir));
    status.platforms = artifact
        .as_ref()
        .map(|artifact| crate::image::layout::platform_names(&artifact.layout_dir()))
        .unwrap_or_default();
    status
}

/// What a status message adds when the crate is judged with the settings
/// of its newest artifact `id` because its config saves none.
pub fn borrowed_settings_note(crate_dir: &Path, id: &str) -> String {
    format!(
        " (Judged with the settings of the newest artifact {id}: {} has none saved; save them with `arca build rust {} --set-default` plus the flags.)",
        crate::config::config_path(crate_dir).display(),
        crate_dir.display()
    )
}

fn clone_config(config: &anyhow::Result<RustConfig>) -> anyhow::Result<RustConfig> {
    match config {
        Ok(config) => Ok(config.clone()),
        Err(error) => Err(anyhow::anyhow!("{error:#}")),
    }
}

/// The config with every setting it lacks taken from an artifact's record.
pub fn completed_from_artifact(
    config: &RustConfig,
    recorded: &crate::store::ArtifactMetadata,
) -> RustConfig {
    let mut completed = config.clone();
    completed
        .profile
        .get_or_insert_with(|| recorded.cargo_profile.clone());
    completed
        .features
        .get_or_insert_with(|| recorded.cargo_features.clone());
    completed
        .bin
        .get_or_insert_with(|| recorded.binary_name.clone());
    completed
        .base_image
        .get_or_insert_with(|| recorded.base_image.clone());
    completed
}

/// The live fingerprint read from disk now: over the artifact's recorded
/// inputs when it has a manifest, else the original's whole-tree stream.
pub fn live_from_disk(
    facts: &CrateFacts,
    settings: &BuildSettings,
    artifact: Option<&StoredArtifact>,
) -> Live {
    if let Some(manifest) = artifact.and_then(read_manifest) {
        return match relive_manifest(&manifest, settings, crate::manifest::file_digest) {
            Ok(relived) => Live::Computed {
                fingerprint: relived.digest,
                changed_inputs: relived.changes,
            },
            Err(error) => Live::Failed(format!("{error:#}")),
        };
    }
    let fingerprint_settings = crate::plan::container_fingerprint_settings(facts, settings);
    let roots = crate::fingerprint::input_roots(facts, dirs::home_dir().as_deref());
    match crate::fingerprint::stream::whole_tree_fingerprint(&fingerprint_settings, &roots) {
        Ok(fingerprint) => Live::Computed {
            fingerprint,
            changed_inputs: Vec::new(),
        },
        Err(error) => Live::Failed(format!("{error:#}")),
    }
}

/// The artifact's input manifest, if it has a usable one; an unusable one
/// is logged and the whole-tree rule applies.
pub fn read_manifest(artifact: &StoredArtifact) -> Option<crate::manifest::Manifest> {
    match crate::manifest::Manifest::read_from(&artifact.dir) {
        Ok(manifest) => manifest,
        Err(error) => {
            tracing::warn!(
                "{error:#}; judging artifact {} by the whole-tree fingerprint instead",
                artifact.metadata.artifact_id
            );
            None
        }
    }
}

/// What today's builder settings (`[rust] packages`, `toolchain`, `env`,
/// `init`, `platforms`, a `rust-toolchain.toml`) add to the build mode;
/// nothing when the config cannot be read (its errors are reported on their
/// own).
fn current_extras_suffix(crate_dir: &Path) -> String {
    crate::config::load_all(crate_dir)
        .and_then(|(_, builder)| crate::plan::resolve_extras(&builder, crate_dir))
        .map(|extras| extras.mode_suffix())
        .unwrap_or_default()
}

/// A manifest relived with today's settings, build mode and environment.
pub fn relive_manifest(
    manifest: &crate::manifest::Manifest,
    settings: &BuildSettings,
    digest_of: impl Fn(&Path) -> anyhow::Result<String>,
) -> anyhow::Result<crate::manifest::Relived> {
    let mode = if manifest
        .settings
        .mode
        .starts_with(crate::manifest::HOST_MODE_PREFIX)
    {
        // Today's toolchain: a rustc upgrade rebuilds the binary.
        crate::manifest::current_host_mode().unwrap_or_else(|| manifest.settings.mode.clone())
    } else {
        crate::manifest::container_mode(&settings.base_image)
    };
    let mode = format!("{mode}{}", current_extras_suffix(&manifest.crate_dir));
    let mut changes = mode_changes(&manifest.settings.mode, &mode);
    let today = crate::manifest::ManifestSettings::new(settings, mode);
    let mut relived = manifest.relive(&today, |name| std::env::var(name).ok(), digest_of)?;
    changes.append(&mut relived.changes);
    relived.changes = changes;
    Ok(relived)
}

/// Reasons for a build mode that differs: which builder setting changed
/// (`toolchain changed`, `packages changed`, `env changed`, `init
/// changed`, and `platforms changed: linux/amd64 -> linux/amd64,
/// linux/arm64` with both lists), or `build mode changed` for the builder
/// itself.
fn mode_changes(recorded: &str, today: &str) -> Vec<String> {
    if recorded == today {
        return Vec::new();
    }
    let split = |mode: &str| -> (String, Vec<(String, String)>) {
        let mut parts = mode.split('+');
        let base = parts.next().unwrap_or_default().to_owned();
        let extras = parts
            .map(|part| match part.split_once('=') {
                Some((key, value)) => (key.to_owned(), value.to_owned()),
                None => (part.to_owned(), String::new()),
            })
            .collect();
        (base, extras)
    };
    let (recorded_base, recorded_extras) = split(recorded);
    let (today_base, today_extras) = split(today);
    let mut reasons = Vec::new();
    if recorded_base != today_base {
        reasons.push("build mode changed".to_owned());
    }
    for key in ["toolchain", "packages", "env", "init"] {
        let find = |extras: &[(String, String)]| {
            extras
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        if find(&recorded_extras) != find(&today_extras) {
            reasons.push(format!("{key} changed"));
        }
    }
    // A mode names its platforms only when they are more (or other) than
    // the one the engine builds for by default, so no part is that one.
    let platforms = |extras: &[(String, String)]| {
        extras
            .iter()
            .find(|(name, _)| name == "platforms")
            .map_or_else(
                || "the engine's platform".to_owned(),
                |(_, list)| list.split(',').collect::<Vec<_>>().join(", "),
            )
    };
    let (before, after) = (platforms(&recorded_extras), platforms(&today_extras));
    if before != after {
        reasons.push(format!("platforms changed: {before} -> {after}"));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ArtifactMetadata;

    #[test]
    fn builder_setting_changes_are_named() {
        assert!(mode_changes("container:k", "container:k").is_empty());
        assert_eq!(
            mode_changes(
                "container:k+toolchain=1.95",
                "container:k+toolchain=1.96+init"
            ),
            ["toolchain changed", "init changed"]
        );
        assert_eq!(
            mode_changes("container:k+packages=make", "container:j"),
            ["build mode changed", "packages changed"]
        );
    }

    #[test]
    fn a_platform_list_change_names_both_lists() {
        assert_eq!(
            mode_changes(
                "container:k+platforms=linux/amd64,linux/arm64",
                "container:k+platforms=linux/amd64,linux/arm64"
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            mode_changes(
                "container:k+packages=make+platforms=linux/arm64",
                "container:k+packages=make+platforms=linux/amd64,linux/arm64"
            ),
            ["platforms changed: linux/arm64 -> linux/amd64, linux/arm64"]
        );
        assert_eq!(
            mode_changes(
                "container:k+init",
                "container:k+init+platforms=linux/amd64,linux/arm64"
            ),
            ["platforms changed: the engine's platform -> linux/amd64, linux/arm64"]
        );
        assert_eq!(
            mode_changes("container:k+platforms=linux/386", "container:k"),
            ["platforms changed: linux/386 -> the engine's platform"]
        );
    }

    #[test]
    fn the_mode_a_platform_list_gives_reads_back_as_its_platforms() {
        // The suffix plan writes, read by `mode_changes`: a list beyond the
        // host's names its platforms; the host's alone is no change.
        let mut extras = crate::plan::BuildExtras::default();
        let host = crate::platform::Platform::host();
        let other = crate::platform::Platform::all()
            .find(|platform| *platform != host)
            .unwrap();
        let plain = format!("container:k{}", extras.mode_suffix());
        extras.set_platforms(vec![host]);
        assert_eq!(
            mode_changes(&plain, &format!("container:k{}", extras.mode_suffix())),
            Vec::<String>::new()
        );
        let mut both = vec![host, other];
        both.sort();
        extras.set_platforms(both.clone());
        let names: Vec<&str> = both.iter().map(|platform| platform.name()).collect();
        assert_eq!(
            mode_changes(&plain, &format!("container:k{}", extras.mode_suffix())),
            [format!(
                "platforms changed: the engine's platform -> {}",
                names.join(", ")
            )]
        );
    }

    use std::path::PathBuf;

    fn facts() -> CrateFacts {
        crate::workspace::test_facts(&["demo"], &[])
    }

    fn settings() -> BuildSettings {
        BuildSettings {
            profile: "release".into(),
            features: vec!["b".into(), "a".into()],
            bin: "demo".into(),
            base_image: "debian:12".into(),
        }
    }

    fn artifact(fingerprint: &str) -> StoredArtifact {
        StoredArtifact {
            dir: PathBuf::from("/h/containers/ab12cd34"),
            metadata: ArtifactMetadata {
                schema_version: 3,
                artifact_id: "ab12cd34".into(),
                remote_tag: "demo-ab12cd34".into(),
                build_fingerprint: fingerprint.into(),
                kind: "rust".into(),
                created_at_epoch_ms: 7,
                crate_name: "demo".into(),
                crate_version: "0.1.0".into(),
                binary_name: "demo".into(),
                source_path: "/w/demo".into(),
                manifest_path: "/w/demo/Cargo.toml".into(),
                cargo_profile: "release".into(),
                cargo_features: vec!["a".into(), "b".into()],
                base_image: "debian:12".into(),
                runtime: "docker".into(),
                local_tag: "arca-local:demo-ab12cd34".into(),
                archive_file: "image.tar".into(),
                uploaded_ref: None,
                uploaded_at_epoch_ms: None,
            },
        }
    }

    fn verdict(
        artifact: Option<&StoredArtifact>,
        live: &Live,
        settings: &BuildSettings,
    ) -> CrateStatus {
        let facts = facts();
        assess(&Assessment {
            crate_dir: Path::new("/w/demo"),
            name: "demo",
            setup: Ok((&facts, settings)),
            artifact,
            live: Some(live),
            building: false,
        })
    }

    #[test]
    fn same_fingerprint_is_fresh_and_wire_shape_matches_protocol() {
        let live = Live::Computed {
            fingerprint: "aa".into(),
            changed_inputs: vec![],
        };
        let status = verdict(Some(&artifact("aa")), &live, &settings());
        assert_eq!(status.state, State::Fresh);
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["crate"], "file:///w/demo");
        assert_eq!(json["state"], "fresh");
        assert_eq!(json["artifact"]["createdAt"], 7);
        assert_eq!(json["artifact"]["tag"], "arca-local:demo-ab12cd34");
        assert_eq!(json["reasons"], serde_json::json!([]));
    }

    #[test]
    fn stale_names_changed_settings_and_inputs() {
        let live = Live::Computed {
            fingerprint: "bb".into(),
            changed_inputs: vec!["src/main.rs changed".into()],
        };
        let mut changed = settings();
        changed.features = vec!["a".into()];
        let status = verdict(Some(&artifact("aa")), &live, &changed);
        assert_eq!(status.state, State::Stale);
        assert_eq!(status.reasons, ["features changed", "src/main.rs changed"]);
        // Feature order and duplicates are not a change.
        let status = verdict(Some(&artifact("aa")), &live, &settings());
        assert_eq!(status.reasons, ["src/main.rs changed"]);
    }

    #[test]
    fn no_artifact_is_missing_with_the_live_fingerprint() {
        let live = Live::Computed {
            fingerprint: "cc".into(),
            changed_inputs: vec![],
        };
        let status = verdict(None, &live, &settings());
        assert_eq!(status.state, State::Missing);
        assert_eq!(status.fingerprint.as_deref(), Some("cc"));
        assert!(status.artifact.is_none());
    }

    #[test]
    fn setup_problems_and_failures_have_their_states() {
        let status = assess(&Assessment {
            crate_dir: Path::new("/w/demo"),
            name: "demo",
            setup: Err(SetupProblem::Unconfigured("Missing profile".into())),
            artifact: None,
            live: None,
            building: false,
        });
        assert_eq!(status.state, State::Unconfigured);
        assert_eq!(status.fingerprint, None);
        let facts = facts();
        let settings = settings();
        let status = assess(&Assessment {
            crate_dir: Path::new("/w/demo"),
            name: "demo",
            setup: Ok((&facts, &settings)),
            artifact: None,
            live: Some(&Live::Failed("Failed to read build input file: x".into())),
            building: false,
        });
        assert_eq!(status.state, State::Error);
        assert!(status.message.contains("x"));
    }
}
