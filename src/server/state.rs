//! The server's state: workspace folders, crates with what is known about
//! them, open documents, running operations. Owned and mutated only by the
//! main loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tower_lsp::Client;
use tower_lsp::lsp_types::Url;

use super::event::Event;
use super::handlers::commands::Operation;
use super::outbox::Outbox;
use crate::manifest::Manifest;
use crate::plan::BuildSettings;
use crate::status::{CrateStatus, SetupProblem};
use crate::store::{Store, StoredArtifact};
use crate::watch::Watcher;
use crate::workspace::CrateFacts;

pub use super::live::Live;

pub struct State {
    pub client: Client,
    pub outbox: Outbox,
    /// Where background tasks and the watcher post their events.
    pub events: mpsc::UnboundedSender<Event>,
    pub initialized: bool,
    pub shutdown_requested: bool,
    /// Whether the client accepts server-created progress tokens.
    pub client_progress: bool,
    /// Whether the client takes snippet completions.
    pub client_snippets: bool,
    pub folders: Vec<PathBuf>,
    pub crates: BTreeMap<PathBuf, CrateEntry>,
    /// Open documents by file path.
    pub documents: HashMap<PathBuf, Document>,
    pub store: Option<Store>,
    pub watcher: Option<Watcher>,
    /// The initial watches are in place (hashing waits for them).
    pub watches_ready: bool,
    /// Source files each crate's last build published compiler
    /// diagnostics on (cleared by its next build).
    pub rust_diagnostics: HashMap<PathBuf, BTreeSet<Url>>,
    /// Running builds and packages, one per crate at most.
    pub operations: HashMap<PathBuf, Operation>,
    /// Runs started by `arca.run`, one per crate at most.
    pub runs: HashMap<PathBuf, super::handlers::run::RunHandle>,
    /// Source of generations for background work.
    pub next_generation: u64,
}

/// An open document: the client's URI, version and full text.
pub struct Document {
    pub uri: Url,
    pub version: i32,
    pub text: String,
}

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
    /// The newest artifact of this crate in the store.
    pub artifact: Option<StoredArtifact>,
    /// That artifact's input manifest, when it recorded one.
    pub manifest: Option<Manifest>,
    /// A hash is due once the watches are in place.
    pub hash_wanted: bool,
    /// Paths reported while the tree was being hashed (applied to the
    /// index when it arrives).
    pub changed_while_hashing: Vec<PathBuf>,
    /// Generation of the running whole-tree recomputation, if any.
    pub refingerprint_generation: Option<u64>,
    /// The last status sent, to send only changes.
    pub last_status: Option<CrateStatus>,
    /// A build or package of this crate is running.
    pub building: bool,
}

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
            artifact: None,
            manifest: None,
            hash_wanted: false,
            changed_while_hashing: Vec::new(),
            refingerprint_generation: None,
            last_status: None,
            building: false,
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
}

impl State {
    pub fn new(client: Client, events: mpsc::UnboundedSender<Event>) -> Self {
        Self {
            outbox: Outbox::spawn(client.clone()),
            client,
            events,
            initialized: false,
            shutdown_requested: false,
            client_progress: false,
            client_snippets: false,
            folders: Vec::new(),
            crates: BTreeMap::new(),
            documents: HashMap::new(),
            store: None,
            watcher: None,
            watches_ready: false,
            rust_diagnostics: HashMap::new(),
            operations: HashMap::new(),
            runs: HashMap::new(),
            next_generation: 1,
        }
    }

    pub fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// The crate a `file://` URI names (the directory URI, with or without a
    /// trailing slash).
    pub fn crate_by_uri(&self, uri: &str) -> Option<&CrateEntry> {
        let trimmed = uri.trim_end_matches('/');
        if let Some(entry) = self.crates.values().find(|entry| entry.uri == trimmed) {
            return Some(entry);
        }
        let path = crate::paths::uri_to_path(uri)?;
        let path = path.canonicalize().unwrap_or(path);
        self.crates.get(&path)
    }

    /// The crate whose `.arca/config.toml` is `path`.
    pub fn crate_of_config(&self, path: &Path) -> Option<&CrateEntry> {
        let dir = config_owner(path)?;
        self.crates.get(&dir)
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
