//! The crate model: everything the server knows about one crate (facts,
//! resolved settings, live index, newest artifact, running operation) and
//! the one rule that turns it into a status. No LSP, no client, no IO
//! except through the values handed in: the handlers feed it job results
//! and send what it answers, and it is unit-tested on its own.
//!
//! Lifecycle of a crate: found by discovery → facts (`cargo metadata`) →
//! settings resolved → the store listed and the tree hashed → a status.
//! A status is told only once every part is known ([`CrateEntry::status`]
//! is `None` before). A `Cargo.toml` cargo cannot read gives state `error`
//! naming it, until it is fixed; a crate whose `Cargo.toml` or directory is
//! gone leaves the model (the handlers send `arca/removed`).

use std::path::{Path, PathBuf};

use crate::manifest::Manifest;
use crate::plan::BuildSettings;
use crate::server::live::Live;
use crate::status::{self, Assessment, CrateStatus, SetupProblem};
use crate::store::StoredArtifact;
use crate::workspace::CrateFacts;

pub mod activity;

use activity::Activity;

/// One crate of the workspace.
pub struct CrateEntry {
    pub dir: PathBuf,
    /// `file://` URI of the directory, no trailing slash (PROTOCOL.md).
    pub uri: String,
    /// `None` while `cargo metadata` runs.
    pub facts: Option<Result<CrateFacts, String>>,
    pub facts_generation: u64,
    /// The live fingerprint index; `None` while the tree is hashed.
    pub live: Option<Result<Live, String>>,
    pub live_generation: u64,
    /// What the saved config resolves to; `None` until facts are known.
    pub settings: Option<Result<BuildSettings, SetupProblem>>,
    /// Generation of the newest settings resolution.
    pub settings_generation: u64,
    /// The settings job that runs must rehash the tree (new facts).
    pub settings_force: bool,
    /// The artifact whose recorded settings filled in what the saved
    /// config lacks (as `arca status` judges a crate built with flags).
    pub settings_borrowed: Option<String>,
    /// The newest artifact of this crate in the store.
    pub artifact: Option<StoredArtifact>,
    /// That artifact's input manifest, when it recorded one.
    pub manifest: Option<Manifest>,
    /// The SBOM summary of an artifact (by id), as the store listing read
    /// it; shown while that artifact is the newest.
    pub sbom: Option<(String, crate::sbom::stored::Summary)>,
    /// The platforms of an artifact's image index (by id), as the store
    /// listing read them; shown while that artifact is the newest.
    pub platforms: Option<(String, Vec<String>)>,
    /// The store has been listed for this crate (artifact is meaningful).
    pub artifact_known: bool,
    /// The last hash started before the first watches were in place: their
    /// catch-up rescans this crate's inputs (`watch_setup`).
    pub hashed_unwatched: bool,
    /// A hash of `live_generation` is running (its index has not arrived).
    pub hashing: bool,
    /// Paths reported while the tree was being hashed (applied to the
    /// index when it arrives).
    pub changed_while_hashing: Vec<PathBuf>,
    /// Generation of the running whole-tree recomputation, if any.
    pub refingerprint_generation: Option<u64>,
    /// The last status sent, to send only changes.
    pub last_status: Option<CrateStatus>,
    /// Its build, package or push, and its run (`arca.run`).
    pub activity: Activity,
    /// The index is out in a refresh job (`live` is `None` meanwhile).
    pub refreshing: bool,
    /// The digest epoch a manifest-digest job is computing, if one runs.
    pub digests_pending: Option<u64>,
    /// Why the manifest's inputs could not be hashed (until the next change).
    pub digest_error: Option<String>,
}

/// One crate's line of a store listing: its newest artifact and that
/// artifact's input manifest.
/// A crate's newest artifact as the store listing found it: the artifact,
/// its input manifest, its SBOM's summary and its platforms.
pub type StoreEntry = (
    PathBuf,
    Option<StoredArtifact>,
    Option<Manifest>,
    Option<crate::sbom::stored::Summary>,
    Vec<String>,
);

/// Never equal to a real fingerprint: stands for "differs, digest still
/// being computed".
const PENDING: &str = "pending";

impl CrateEntry {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            uri: crate::paths::dir_uri(&dir),
            dir,
            facts: None,
            facts_generation: 0,
            live: None,
            live_generation: 0,
            settings: None,
            settings_generation: 0,
            settings_force: false,
            settings_borrowed: None,
            artifact: None,
            manifest: None,
            sbom: None,
            platforms: None,
            artifact_known: false,
            hashed_unwatched: false,
            hashing: false,
            changed_while_hashing: Vec::new(),
            refingerprint_generation: None,
            last_status: None,
            activity: Activity::default(),
            refreshing: false,
            digests_pending: None,
            digest_error: None,
        }
    }

    pub fn facts(&self) -> Option<&CrateFacts> {
        self.facts.as_ref().and_then(|facts| facts.as_ref().ok())
    }

    /// The crate's display name: the package name once known, else the
    /// directory name.
    pub fn name(&self) -> String {
        match self.facts() {
            Some(facts) => facts.name.clone(),
            None => self
                .dir
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// A `cargo metadata` answer of generation `generation` arrived; false
    /// when a newer run superseded it.
    pub fn facts_arrived(&mut self, generation: u64, facts: Result<CrateFacts, String>) -> bool {
        if self.facts_generation != generation {
            return false;
        }
        self.facts = Some(facts);
        true
    }

    /// The hash of generation `generation` arrived; false when superseded.
    /// Paths reported meanwhile stay in `changed_while_hashing`, for the
    /// handlers to re-read in a job.
    pub fn index_arrived(&mut self, generation: u64, live: Result<Live, String>) -> bool {
        if self.live_generation != generation {
            return false;
        }
        self.hashing = false;
        self.live = Some(live);
        true
    }

    /// The store was listed: this is the crate's newest artifact. Returns
    /// whether the artifact changed.
    pub fn store_listed(
        &mut self,
        artifact: Option<StoredArtifact>,
        manifest: Option<Manifest>,
    ) -> bool {
        let id = |artifact: &Option<StoredArtifact>| {
            artifact
                .as_ref()
                .map(|artifact| artifact.metadata.artifact_id.clone())
        };
        let changed = !self.artifact_known || id(&self.artifact) != id(&artifact);
        self.artifact = artifact;
        self.manifest = manifest;
        self.artifact_known = true;
        changed
    }

    /// The manifest inputs to hash before a status can be told (and the
    /// epoch to hand back), when a job for them is due.
    pub fn digests_due(&self) -> Option<(Vec<PathBuf>, u64)> {
        let (Some(manifest), Some(Ok(live)), Some(Ok(settings))) =
            (&self.manifest, &self.live, &self.settings)
        else {
            return None;
        };
        if self.activity.building() || self.digest_error.is_some() {
            return None;
        }
        let (missing, epoch) = live.missing_manifest_digests(manifest, settings);
        (!missing.is_empty() && self.digests_pending != Some(epoch)).then_some((missing, epoch))
    }

    /// The status to send, when it differs from the last one sent.
    pub fn status_to_send(&mut self) -> Option<CrateStatus> {
        let status = self.status()?;
        if self.last_status.as_ref() == Some(&status) {
            return None;
        }
        self.last_status = Some(status.clone());
        Some(status)
    }

    /// The crate's status, or `None` while it cannot be told yet (facts,
    /// the store listing, the first hash of the tree, or a rehash after a
    /// settings change running).
    pub fn status(&self) -> Option<CrateStatus> {
        let name = self.name();
        let setup = match self.facts.as_ref()? {
            Err(error) => Err(SetupProblem::Broken(error.clone())),
            Ok(facts) => match self.settings.as_ref()? {
                Ok(settings) => Ok((facts, settings)),
                Err(problem) => Err(problem.clone()),
            },
        };
        // Without the store listing, neither a verdict nor "unconfigured"
        // (the newest artifact may complete the settings) can be told.
        if !self.artifact_known
            && (setup.is_ok() || matches!(setup, Err(SetupProblem::Unconfigured(_))))
        {
            return None;
        }
        let mut pending = false;
        let live = match &setup {
            Err(_) => None,
            Ok(_) if self.activity.building() => None,
            Ok((_, settings)) => match (&self.manifest, self.live.as_ref()?) {
                (_, Err(error)) => Some(status::Live::Failed(error.clone())),
                (Some(_), Ok(_)) if self.digest_error.is_some() => Some(status::Live::Failed(
                    self.digest_error.clone().unwrap_or_default(),
                )),
                (Some(manifest), Ok(live)) => {
                    if !live
                        .missing_manifest_digests(manifest, settings)
                        .0
                        .is_empty()
                    {
                        // Hashed by a job first, never here.
                        return None;
                    }
                    Some(relive(manifest, settings, live))
                }
                (None, Ok(live)) => {
                    if live.settings != **settings {
                        // Rehashing with the new settings.
                        return None;
                    }
                    let fingerprint = live.current_fingerprint.clone().unwrap_or_else(|| {
                        pending = true;
                        PENDING.to_owned()
                    });
                    let baseline_fresh = self.artifact.as_ref().is_some_and(|artifact| {
                        artifact.metadata.build_fingerprint == live.baseline_fingerprint
                    });
                    let changes = live.changes();
                    let changed_inputs = if baseline_fresh || !changes.is_empty() {
                        changes.iter().map(ToString::to_string).collect()
                    } else {
                        Vec::new()
                    };
                    Some(status::Live::Computed {
                        fingerprint,
                        changed_inputs,
                    })
                }
            },
        };
        let mut verdict = status::assess(&Assessment {
            crate_dir: &self.dir,
            name: &name,
            setup,
            artifact: self.artifact.as_ref(),
            live: live.as_ref(),
            building: self.activity.building(),
        });
        if pending {
            verdict.fingerprint = None;
        }
        if let (Some(id), Some(Ok(_))) = (&self.settings_borrowed, &self.settings) {
            verdict
                .message
                .push_str(&status::borrowed_settings_note(&self.dir, id));
        }
        if let Some(running) = self.activity.running()
            && running.runs_unrecorded_binary(
                self.artifact
                    .as_ref()
                    .map(|artifact| artifact.metadata.created_at_epoch_ms),
            )
            && matches!(verdict.state, status::State::Fresh | status::State::Stale)
        {
            verdict.state = status::State::Stale;
            verdict
                .reasons
                .insert(0, status::UPDATED_LIVE_REASON.to_owned());
        }
        verdict.running = self.activity.running().cloned();
        verdict.sbom = match (&self.sbom, &self.artifact) {
            (Some((id, summary)), Some(artifact)) if *id == artifact.metadata.artifact_id => {
                Some(summary.clone())
            }
            _ => None,
        };
        verdict.platforms = match (&self.platforms, &self.artifact) {
            (Some((id, platforms)), Some(artifact)) if *id == artifact.metadata.artifact_id => {
                platforms.clone()
            }
            _ => Vec::new(),
        };
        Some(verdict)
    }

    /// A provisional status while the real one is being worked out: the
    /// last one sent, else "still reading".
    pub fn provisional_status(&self) -> CrateStatus {
        if let Some(status) = self.status() {
            return status;
        }
        if let Some(status) = &self.last_status {
            return status.clone();
        }
        CrateStatus {
            crate_uri: self.uri.clone(),
            name: self.name(),
            state: if self.artifact.is_some() {
                status::State::Stale
            } else {
                status::State::Missing
            },
            fingerprint: None,
            artifact: None,
            reasons: vec!["still reading the crate".to_owned()],
            message: format!("Arca is still reading {}.", self.name()),
            engine: self
                .artifact
                .as_ref()
                .map(|artifact| artifact.metadata.runtime.clone()),
            pushed: self.artifact.as_ref().and_then(status::Pushed::of),
            running: self.activity.running().cloned(),
            sbom: None,
            platforms: Vec::new(),
        }
    }
}

/// The manifest over today's contents, with digests cached until the
/// watcher reports a path.
fn relive(manifest: &Manifest, settings: &BuildSettings, live: &Live) -> status::Live {
    let relived = status::relive_manifest(manifest, settings, |path| live.manifest_digest(path));
    match relived {
        Ok(relived) => status::Live::Computed {
            fingerprint: relived.digest,
            changed_inputs: relived.changes,
        },
        Err(error) => status::Live::Failed(format!("{error:#}")),
    }
}

/// The crate directory of a `<crate>/.arca/config.toml` path.
pub fn config_owner(path: &Path) -> Option<PathBuf> {
    if path.file_name()? != "config.toml" {
        return None;
    }
    let arca = path.parent()?;
    if arca.file_name()? != ".arca" {
        return None;
    }
    let dir = arca.parent()?;
    Some(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::State;

    use crate::server::model::activity::{Operation, OperationKind};
    use crate::status::RunningContainer;
    use crate::store::StoredArtifact;
    use tokio_util::sync::CancellationToken;

    fn begin_build(entry: &mut CrateEntry, generation: u64) {
        entry
            .activity
            .begin(Operation {
                generation,
                kind: OperationKind::Build,
                cancel: CancellationToken::new(),
                progress: None,
            })
            .unwrap();
        entry.activity.prepared(generation);
    }

    /// A crate on disk whose newest record was built from what is there:
    /// its status is `fresh`.
    struct FreshCrate {
        _dir: tempfile::TempDir,
        entry: CrateEntry,
    }

    fn record(entry: &CrateEntry, id: &str, created: u64) -> StoredArtifact {
        let Some(Ok(live)) = &entry.live else {
            panic!("no index");
        };
        let mut metadata =
            crate::store::sample_metadata(id, created, &entry.dir.display().to_string());
        metadata.build_fingerprint = live.baseline_fingerprint.clone();
        metadata.cargo_features = Vec::new();
        StoredArtifact {
            dir: entry.dir.join("record"),
            metadata,
        }
    }

    /// `profile = "release"`, no features, a Debian base.
    fn release_settings(facts: &CrateFacts) -> BuildSettings {
        crate::plan::resolve_settings(
            &crate::plan::SettingsOverrides::default(),
            &crate::config::RustConfig {
                profile: Some("release".into()),
                features: Some(Vec::new()),
                bin: None,
                base_image: Some("debian:12".into()),
            },
            facts,
        )
        .unwrap()
    }

    fn fresh_crate() -> FreshCrate {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        let mut facts = crate::workspace::test_facts(&["demo"], &[]);
        facts.crate_dir = root.clone();
        facts.manifest_path = root.join("Cargo.toml");
        facts.workspace_root = root.clone();
        facts.target_directory = root.join("target");
        facts.local_package_dirs = vec![root.clone()];
        let settings = release_settings(&facts);
        let mut entry = CrateEntry::new(root);
        entry.facts_arrived(0, Ok(facts.clone()));
        entry.settings = Some(Ok(settings.clone()));
        entry.index_arrived(0, Ok(Live::build(&facts, settings).unwrap()));
        let artifact = record(&entry, "a1", 1_000);
        entry.store_listed(Some(artifact), None);
        assert_eq!(entry.status().unwrap().state, State::Fresh);
        FreshCrate { _dir: dir, entry }
    }

    fn container(live: bool) -> RunningContainer {
        RunningContainer {
            container: "c0ffee".into(),
            image: "sha256:abc".into(),
            started_at: 1,
            live,
            updated_live_at: None,
        }
    }

    #[test]
    fn a_build_is_building_once_prepared_and_its_end_gives_the_verdict_back() {
        let FreshCrate { _dir, mut entry } = fresh_crate();
        entry
            .activity
            .begin(Operation {
                generation: 5,
                kind: OperationKind::Package,
                cancel: CancellationToken::new(),
                progress: None,
            })
            .unwrap();
        assert_eq!(entry.status().unwrap().state, State::Fresh);
        assert!(entry.activity.prepared(5));
        assert_eq!(entry.status().unwrap().state, State::Building);
        assert!(entry.activity.finished(5));
        assert_eq!(entry.status().unwrap().state, State::Fresh);
    }

    #[test]
    fn a_build_refused_on_a_config_error_never_shows_building() {
        let FreshCrate { _dir, mut entry } = fresh_crate();
        entry.settings = Some(Err(SetupProblem::Broken(
            "`profile` must be a string".into(),
        )));
        assert_eq!(entry.status_to_send().unwrap().state, State::Error);
        entry
            .activity
            .begin(Operation {
                generation: 6,
                kind: OperationKind::Build,
                cancel: CancellationToken::new(),
                progress: None,
            })
            .unwrap();
        // The pipeline refuses it before `prepared`: no status to send
        // in between, and none after.
        assert_eq!(entry.status_to_send(), None);
        assert!(entry.activity.finished(6));
        assert_eq!(entry.status_to_send(), None);
        assert_eq!(entry.status().unwrap().state, State::Error);
    }

    #[test]
    fn a_cancelled_build_ends_where_it_began() {
        let FreshCrate { _dir, mut entry } = fresh_crate();
        let cancel = CancellationToken::new();
        entry
            .activity
            .begin(Operation {
                generation: 2,
                kind: OperationKind::Build,
                cancel: cancel.clone(),
                progress: None,
            })
            .unwrap();
        entry.activity.prepared(2);
        entry.activity.cancel();
        assert!(cancel.is_cancelled());
        assert_eq!(entry.status().unwrap().state, State::Building);
        entry.activity.finished(2);
        assert_eq!(entry.status().unwrap().state, State::Fresh);
    }

    #[test]
    fn a_build_of_a_crate_removed_and_found_again_does_not_touch_the_new_one() {
        let FreshCrate { _dir, mut entry } = fresh_crate();
        begin_build(&mut entry, 3);
        // The crate leaves (its entry is dropped, its build cancelled) and
        // is found again: a new entry, building nothing.
        entry.activity.stop_all();
        let mut again = CrateEntry::new(entry.dir.clone());
        begin_build(&mut again, 9);
        // The old build's end is not the new one's.
        assert!(!again.activity.finished(3));
        assert!(again.activity.building());
    }

    #[test]
    fn a_run_shows_its_container_and_a_live_update_makes_the_image_stale_until_rebuilt() {
        let FreshCrate { _dir, mut entry } = fresh_crate();
        entry
            .activity
            .begin_run(1, CancellationToken::new())
            .unwrap();
        assert_eq!(entry.status().unwrap().running, None);
        entry.activity.run_started(1, container(true));
        let status = entry.status().unwrap();
        assert_eq!(status.state, State::Fresh);
        assert!(status.running.unwrap().live);
        // A live update put a binary newer than the image into it.
        entry.activity.updated_live(1, Some(2_000));
        let status = entry.status().unwrap();
        assert_eq!(status.state, State::Stale);
        assert_eq!(status.reasons[0], status::UPDATED_LIVE_REASON);
        // An image built after it (e.g. `arca build rust`) is what runs.
        let rebuilt = record(&entry, "a2", 3_000);
        entry.store_listed(Some(rebuilt), None);
        assert_eq!(entry.status().unwrap().state, State::Fresh);
        entry.activity.run_ended(1);
        assert_eq!(entry.status().unwrap().running, None);
    }

    fn entry() -> CrateEntry {
        let mut entry = CrateEntry::new(PathBuf::from("/w/demo"));
        entry.facts_generation = 3;
        entry
    }

    #[test]
    fn nothing_is_told_before_the_facts() {
        let entry = entry();
        assert_eq!(entry.status(), None);
        assert_eq!(entry.provisional_status().state, State::Missing);
    }

    #[test]
    fn a_broken_manifest_is_an_error_naming_it_until_fixed() {
        let mut entry = entry();
        let message = "Cargo could not read `/w/demo/Cargo.toml`: expected `]`".to_owned();
        assert!(entry.facts_arrived(3, Err(message)));
        let status = entry
            .status_to_send()
            .expect("an error status is told at once");
        assert_eq!(status.state, State::Error);
        assert!(status.message.contains("Cargo.toml"), "{}", status.message);
        // Sent once: the same status again is not news.
        assert_eq!(entry.status_to_send(), None);
        // Fixed: facts again; the status waits for the store and the hash.
        entry.facts_generation = 4;
        assert!(entry.facts_arrived(4, Ok(crate::workspace::test_facts(&["demo"], &[]))));
        entry.settings = Some(Err(SetupProblem::Unconfigured("set a profile".into())));
        // Not before the store is listed: an artifact may complete them.
        assert_eq!(entry.status_to_send(), None);
        entry.store_listed(None, None);
        let status = entry.status_to_send().expect("unconfigured is told");
        assert_eq!(status.state, State::Unconfigured);
    }

    #[test]
    fn superseded_results_are_dropped() {
        let mut entry = entry();
        assert!(!entry.facts_arrived(2, Err("old".into())));
        assert!(entry.facts.is_none());
        entry.live_generation = 9;
        assert!(!entry.index_arrived(8, Err("old".into())));
        assert!(entry.index_arrived(9, Err("hash failed".into())));
    }

    #[test]
    fn a_failed_hash_is_an_error_and_the_store_must_be_known() {
        let mut entry = entry();
        entry.facts_arrived(3, Ok(crate::workspace::test_facts(&["demo"], &[])));
        let facts = entry.facts().cloned().unwrap();
        entry.settings = Some(Ok(release_settings(&facts)));
        entry.live_generation = 5;
        entry.index_arrived(
            5,
            Err("Arca hit an internal error in its `index` job".into()),
        );
        // The store was not listed yet: no verdict.
        assert_eq!(entry.status(), None);
        assert!(entry.store_listed(None, None));
        let status = entry.status().unwrap();
        assert_eq!(status.state, State::Error);
        assert!(
            status.message.contains("internal error"),
            "{}",
            status.message
        );
        begin_build(&mut entry, 1);
        assert_eq!(entry.status().unwrap().state, State::Building);
    }
}
