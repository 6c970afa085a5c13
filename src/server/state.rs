//! The server's state: workspace folders, crates with what is known about
//! them, open documents, running operations. Owned and mutated only by the
//! main loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tower_lsp::Client;
use tower_lsp::lsp_types::Url;

use super::event::Event;
use super::outbox::Outbox;
use crate::store::Store;
use crate::watch::Watcher;

pub use super::model::{CrateEntry, config_owner};

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
    /// The first watches are in place (see `watch_setup`).
    pub watches_ready: bool,
    /// What the first watches will cover, until they are set up.
    pub watch_plan: Option<Vec<PathBuf>>,
    /// When the server started: files stamped since may have changed
    /// before the first watches saw them.
    pub started_at: std::time::SystemTime,
    /// Source files each crate's last build published compiler
    /// diagnostics on (cleared by its next build).
    pub rust_diagnostics: HashMap<PathBuf, BTreeSet<Url>>,
    /// Source of generations for background work.
    pub next_generation: u64,
    /// Whether the client declared `workspace.applyEdit`.
    pub client_apply_edit: bool,
    /// Generation of the newest crate discovery started.
    pub discovery_generation: u64,
    /// The first discovery has been applied (requests that need crate
    /// facts wait at least for it).
    pub discovered: bool,
    /// Discoveries that failed in a row (retried a few times).
    pub discovery_failures: u32,
    /// Folders refused or capped by discovery, with the notice shown.
    pub folder_notices: BTreeSet<String>,
    /// The store listing job: running, and wanted again after it.
    pub store_listing: Option<u64>,
    pub store_listing_again: bool,
    /// Config checks running, per file.
    pub config_checks: HashMap<PathBuf, CheckSlot>,
    /// The diagnostics last published per config file, with the version.
    pub config_diagnostics: HashMap<PathBuf, (Vec<tower_lsp::lsp_types::Diagnostic>, Option<i32>)>,
    /// Requests waiting (bounded) for crate facts.
    pub parked: Vec<Parked>,
}

/// A request that waits for crate facts: resumed when they arrive, or at
/// its deadline with what is known then.
pub struct Parked {
    /// The config file whose crate facts the request needs (`None`: it
    /// needs only the list of crates).
    pub path: Option<PathBuf>,
    pub deadline: std::time::Instant,
    pub resume: Box<dyn FnOnce(&mut State) + Send>,
}

/// An open document: the client's URI, version and full text.
pub struct Document {
    pub uri: Url,
    pub version: i32,
    /// Shared with a running config check, never copied for it.
    pub text: std::sync::Arc<str>,
}

/// The config check of one file: running, and wanted again after it.
#[derive(Default)]
pub struct CheckSlot {
    pub running: bool,
    /// The running check was asked for by a client message.
    pub asked: bool,
    pub again: bool,
    pub asked_again: bool,
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
            watch_plan: None,
            started_at: std::time::SystemTime::now(),
            rust_diagnostics: HashMap::new(),
            next_generation: 1,
            client_apply_edit: false,
            discovery_generation: 0,
            discovered: false,
            discovery_failures: 0,
            folder_notices: BTreeSet::new(),
            store_listing: None,
            store_listing_again: false,
            config_checks: HashMap::new(),
            config_diagnostics: HashMap::new(),
            parked: Vec::new(),
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

/// The config text the checker should see: the open buffer, else the file.
/// `None` when there is neither.
pub fn config_text(state: &State, path: &Path) -> Option<(String, Option<i32>)> {
    if let Some(document) = state.documents.get(path) {
        return Some((document.text.to_string(), Some(document.version)));
    }
    let bytes = crate::fsread::read(path, crate::fsread::Kind::Config).ok()?;
    Some((String::from_utf8_lossy(&bytes).into_owned(), None))
}
