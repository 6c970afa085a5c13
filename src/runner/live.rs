//! Live update (`arca run --watch`, the editors' Run Image (Live)): the
//! crate's image runs in one container, and on every change that makes the
//! crate stale the binary is rebuilt in the warm builder session and put
//! into the **same** container: `PUT /containers/{id}/archive` the binary
//! at `/usr/local/bin/<bin>` while the old program runs, then the
//! [`super::supervisor`] the program runs under restarts it (SIGTERM,
//! SIGKILL after [`STOP_GRACE_SECONDS`]); the container never stops. An
//! image without a shell runs the program as the container's command, and
//! an update stops the container, copies, and starts it again attached.
//! Either way the container keeps its id, published ports, environment,
//! mounts and GPU requests; no image is assembled or loaded on this path.
//!
//! Staleness is judged as everywhere else: the running binary's input
//! manifest relived against the disk ([`crate::status::relive_manifest`]),
//! so a change cargo would not rebuild for restarts nothing. Bursts are
//! debounced ([`DEBOUNCE`] after the watcher's own batching) and a change
//! during a rebuild is coalesced into one more rebuild.
//!
//! When live update cannot apply (the `[run]` settings, the build settings
//! or the builder changed, or the engine refused the copy) the crate is
//! packaged in full and a fresh container replaces the old one, with the
//! reason said once. A compile error keeps the old program running.
//!
//! Invariants: one live run per crate ([`super::live_lock`]); every
//! container made here carries [`LIVE_LABEL`] besides the run labels, and a
//! new live run of the crate removes those left by a watcher that died
//! (holding the lock proves their owner is gone); the container is removed
//! however the watch ends, unless the engine itself is gone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::supervisor::{self, Marker, Supervisor};
use super::{STOP_GRACE_SECONDS, live_lock};
use crate::config::run::RunConfig;
use crate::engine::{ContainerEngine, OutputLine};
use crate::manifest::Manifest;
use crate::pipeline::{
    self, BuildEnv, BuildError, BuildEvent, BuildRequest, CRATE_DIR_LABEL, CompilerDiagnostic,
    LiveBinary, PreparedBuild,
};
use crate::watch::{WatchEvent, Watcher};

/// Label on every container a live run makes; its value is the owner's pid.
pub const LIVE_LABEL: &str = "io.khoek.arca.live";
/// Quiet time after the watcher's last batch before a rebuild starts.
pub const DEBOUNCE: Duration = Duration::from_millis(15);

/// What to run live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveRequest {
    /// The crate directory or its `Cargo.toml`.
    pub path: PathBuf,
    /// Arguments for the program; they replace `[run] args`.
    pub program_args: Option<Vec<String>>,
}

/// Where the time of one live update went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwapTimings {
    /// The debounce, the staleness check and `cargo build` in the session.
    pub cargo: Duration,
    /// Stopping the old program.
    pub stop: Duration,
    /// Copying the binary into the container (while the old program stops).
    pub copy: Duration,
}

/// What a live run reports, in order.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// Progress of the first build or of a full rebuild.
    Build(BuildEvent),
    /// A container runs the program (the first, or a fresh one after a
    /// fallback).
    Started { container: String, image: String },
    /// One line the program printed.
    Output(OutputLine),
    /// A change made the crate stale; the binary is being rebuilt.
    Rebuilding { change: String },
    /// The new binary runs in the same container.
    Updated {
        change: String,
        seconds: f64,
        timings: SwapTimings,
        /// Cargo's warnings for the new binary.
        diagnostics: Vec<CompilerDiagnostic>,
    },
    /// The rebuild gave the same binary; nothing was restarted.
    Unchanged {
        change: String,
        diagnostics: Vec<CompilerDiagnostic>,
    },
    /// The change does not build; the old program keeps running.
    BuildFailed {
        message: String,
        diagnostics: Vec<CompilerDiagnostic>,
    },
    /// Live update cannot apply: a full build and a fresh container.
    Replacing { reason: String },
    /// The program ignored SIGTERM and was killed after the grace time.
    Killed { grace_seconds: i32 },
    /// The program exited on its own; the watch goes on.
    Exited { code: i64 },
    /// Anything else worth a line.
    Notice(String),
}

/// Receives [`LiveEvent`]s (from several tasks).
pub type LiveSink = Arc<dyn Fn(LiveEvent) + Send + Sync>;

/// How a live run ended (errors end it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEnd {
    /// Cancelled (Ctrl-C, Arca: Stop); the container is removed.
    Stopped,
    /// Someone removed the container outside Arca.
    ContainerRemoved { container: String },
}

/// Whether this process started a live run (so its exit has containers to
/// look for).
static STARTED_IN_THIS_PROCESS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// For a process that exits (the language server): stops and removes every
/// live container it made, in case a live run's own cleanup did not get to
/// finish. Does nothing (and connects to no engine) when it never ran live.
pub async fn remove_containers_of_this_process() {
    if !STARTED_IN_THIS_PROCESS.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let Ok(engine) = crate::engine::connect().await else {
        return;
    };
    let mine = format!("{LIVE_LABEL}={}", std::process::id());
    let Ok(ids) = engine.containers_with_labels(&[mine.as_str()]).await else {
        return;
    };
    for id in ids {
        let _ = engine.stop_container(&id, STOP_GRACE_SECONDS).await;
        let _ = engine.remove_container(&id).await;
    }
    // The run's own cleanup may hold the removal (the engine answers 409
    // "already in progress"): wait until the engine lists none, so nothing
    // is left once the process is gone. (The caller bounds the wait.)
    while engine
        .containers_with_labels(&[mine.as_str()])
        .await
        .is_ok_and(|left| !left.is_empty())
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs the crate live until `cancel` fires or the run cannot go on.
pub async fn watch(
    env: &BuildEnv,
    request: LiveRequest,
    events: LiveSink,
    cancel: CancellationToken,
) -> Result<LiveEnd> {
    let crate_dir = crate_dir_of(&request.path)?;
    let _lock = live_lock::acquire(&env.rust_cache().join("locks"), &crate_dir)?;
    STARTED_IN_THIS_PROCESS.store(true, std::sync::atomic::Ordering::SeqCst);
    let engine = env.engine().await?;
    remove_stale_containers(engine.as_ref(), &crate_dir).await;
    let (changes_tx, changes) = mpsc::unbounded_channel();
    let watcher = start_watcher(&crate_dir, changes_tx, events.clone()).await?;
    let mut live = Live {
        env,
        engine,
        crate_dir,
        program_args: request.program_args,
        events,
        cancel,
        changes,
        program: None,
        running: None,
    };
    let result = live.run().await;
    drop(watcher);
    live.remove_program().await;
    if matches!(result, Ok(LiveEnd::Stopped)) && live.ran_unrecorded_binary() {
        live.record_image_on_exit().await;
    }
    result
}

/// Removes live containers of this crate left by a watcher that died.
async fn remove_stale_containers(engine: &dyn ContainerEngine, crate_dir: &Path) {
    let crate_label = format!("{CRATE_DIR_LABEL}={}", crate_dir.display());
    if let Ok(ids) = engine
        .containers_with_labels(&[LIVE_LABEL, crate_label.as_str()])
        .await
    {
        for id in ids {
            let _ = engine.remove_container(&id).await;
        }
    }
}

fn crate_dir_of(path: &Path) -> Result<PathBuf> {
    let manifest = crate::workspace::resolve_manifest_path(path)?;
    let dir = manifest
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", manifest.display()))?;
    std::fs::canonicalize(dir).with_context(|| format!("Failed to resolve {}", dir.display()))
}

/// Watches the crate's package directories (its own and path
/// dependencies) and the workspace root (Cargo.lock).
async fn start_watcher(
    crate_dir: &Path,
    changes: mpsc::UnboundedSender<Vec<PathBuf>>,
    events: LiveSink,
) -> Result<Watcher> {
    let dir = crate_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let facts = crate::workspace::load_crate_facts(&dir)?;
        let watcher = Watcher::new(move |event| match event {
            WatchEvent::Changed(paths) => {
                let _ = changes.send(paths);
            }
            WatchEvent::Notice(message) => events(LiveEvent::Notice(message)),
        });
        for root in &facts.local_package_dirs {
            watcher.watch_tree(root);
        }
        watcher.watch_dir(&facts.workspace_root);
        Ok(watcher)
    })
    .await
    .map_err(|error| anyhow!("The file watcher task failed: {error}"))?
}

/// The container and the task following its current run.
struct Program {
    container: String,
    run: Option<JoinHandle<Result<i64>>>,
    /// The supervisor the container runs the program under (`None`: the
    /// image has no shell; the program is the container's command and an
    /// update restarts the container).
    supervisor: Option<Supervisor>,
    /// The update whose new program the supervisor is starting: its
    /// separator line is said when the supervisor says the program started.
    pending: Arc<std::sync::Mutex<Option<PendingUpdate>>>,
}

/// A live update the supervisor was asked to apply.
struct PendingUpdate {
    change: String,
    started: Instant,
    cargo: Duration,
    copy: Duration,
    /// When the restart was asked for (its time to the new program is the
    /// update's `stop`).
    signalled: Instant,
    diagnostics: Vec<CompilerDiagnostic>,
}

/// What the running program was built from.
struct Running {
    prepared: PreparedBuild,
    run_config: RunConfig,
    /// The inputs of the binary in the container.
    manifest: Option<Manifest>,
    /// SHA-256 of the binary in the container, once a live update put it
    /// there.
    binary_digest: Option<String>,
}

/// What one batch of changes led to.
enum Step {
    Continue,
    End(LiveEnd),
}

struct Live<'a> {
    env: &'a BuildEnv,
    engine: Arc<dyn ContainerEngine>,
    crate_dir: PathBuf,
    program_args: Option<Vec<String>>,
    events: LiveSink,
    cancel: CancellationToken,
    changes: mpsc::UnboundedReceiver<Vec<PathBuf>>,
    program: Option<Program>,
    running: Option<Running>,
}

impl Live<'_> {
    fn emit(&self, event: LiveEvent) {
        (self.events)(event)
    }

    fn request(&self) -> BuildRequest {
        BuildRequest {
            path: self.crate_dir.clone(),
            ..Default::default()
        }
    }

    async fn run(&mut self) -> Result<LiveEnd> {
        if !self.package_and_start().await? {
            return Ok(LiveEnd::Stopped);
        }
        loop {
            let cancel = self.cancel.clone();
            let run = self
                .program
                .as_mut()
                .and_then(|program| program.run.as_mut());
            tokio::select! {
                _ = cancel.cancelled() => return Ok(LiveEnd::Stopped),
                exit = wait_for(run) => {
                    if let Step::End(end) = self.program_exited(exit).await? {
                        return Ok(end);
                    }
                }
                batch = self.changes.recv() => {
                    let Some(paths) = batch else {
                        anyhow::bail!("The file watcher stopped; the live run ends.");
                    };
                    let mut changed: BTreeSet<PathBuf> = paths.into_iter().collect();
                    loop {
                        self.collect_quiet(&mut changed).await;
                        if let Step::End(end) = self.update(std::mem::take(&mut changed)).await? {
                            return Ok(end);
                        }
                        // What arrived during the rebuild is one more rebuild.
                        while let Ok(paths) = self.changes.try_recv() {
                            changed.extend(paths);
                        }
                        if changed.is_empty() {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Adds what arrives until [`DEBOUNCE`] passes quietly.
    async fn collect_quiet(&mut self, changed: &mut BTreeSet<PathBuf>) {
        while let Ok(Some(paths)) = tokio::time::timeout(DEBOUNCE, self.changes.recv()).await {
            changed.extend(paths);
        }
    }

    /// Packages the crate (a fresh image is reused) and runs it in a new
    /// container, replacing the current one. False when cancelled.
    async fn package_and_start(&mut self) -> Result<bool> {
        let events = self.events.clone();
        let build_events = move |event: BuildEvent| events(LiveEvent::Build(event));
        let request = self.request();
        let outcome = match pipeline::package(self.env, &request, &build_events, &self.cancel).await
        {
            Ok(outcome) => outcome,
            Err(BuildError::Cancelled) => return Ok(false),
            Err(error) => return Err(anyhow!("{error}")),
        };
        let prepared = {
            let request = request.clone();
            tokio::task::spawn_blocking(move || pipeline::prepare(&request))
                .await
                .map_err(|error| anyhow!("The build preparation task failed: {error}"))??
        };
        let run_config = super::run_config(&self.crate_dir)?;
        let artifact = outcome.artifact;
        let mut spec = super::run_spec(
            &artifact,
            &self.crate_dir,
            &run_config,
            self.program_args.clone(),
        );
        spec.container
            .labels
            .push((LIVE_LABEL.to_owned(), std::process::id().to_string()));
        super::ensure_image(&self.engine, &artifact).await?;
        self.remove_program().await;
        let program = format!("{BINARY_DIR}/{}", prepared.settings.bin);
        let (container, supervisor) = self.create_container(&spec, &program).await?;
        let image = spec.container.image.clone();
        self.emit(LiveEvent::Started {
            container: container.clone(),
            image: image.clone(),
        });
        let pending = Arc::new(std::sync::Mutex::new(None));
        let run = self.spawn_run(&container, supervisor.as_ref(), &pending);
        self.program = Some(Program {
            container,
            run: Some(run),
            supervisor,
            pending,
        });
        let manifest = crate::status::read_manifest(&artifact);
        self.running = Some(Running {
            prepared,
            run_config,
            manifest,
            binary_digest: None,
        });
        Ok(true)
    }

    /// Creates the run container with the program under the supervisor
    /// when the image has a shell, else with the program as its command.
    async fn create_container(
        &self,
        spec: &crate::engine::RunSpec,
        program: &str,
    ) -> Result<(String, Option<Supervisor>)> {
        let supervisor = Supervisor::new();
        let mut supervised = spec.clone();
        let (entrypoint, cmd) =
            supervisor.command(program, &spec.container.cmd, STOP_GRACE_SECONDS);
        supervised.container.entrypoint = Some(entrypoint);
        supervised.container.cmd = cmd;
        let container = self.engine.create_run_container(&supervised).await?;
        match self.engine.path_exists(&container, supervisor::SHELL).await {
            Ok(true) => return Ok((container, Some(supervisor))),
            Ok(false) => {}
            Err(error) => tracing::debug!("cannot tell whether the image has a shell: {error:#}"),
        }
        let _ = self.engine.remove_container(&container).await;
        self.emit(LiveEvent::Notice(format!(
            "The image has no {}, so each update restarts the container.",
            supervisor::SHELL
        )));
        Ok((self.engine.create_run_container(spec).await?, None))
    }

    /// Starts the container attached; its output goes to the sink, the
    /// supervisor's markers become events.
    fn spawn_run(
        &self,
        container: &str,
        supervisor: Option<&Supervisor>,
        pending: &Arc<std::sync::Mutex<Option<PendingUpdate>>>,
    ) -> JoinHandle<Result<i64>> {
        let engine = self.engine.clone();
        let events = self.events.clone();
        let container = container.to_owned();
        let supervisor = supervisor.cloned();
        let pending = pending.clone();
        tokio::spawn(async move {
            let output =
                move |line: OutputLine| match supervisor.as_ref().and_then(|s| s.parse(&line.text))
                {
                    Some(marker) => on_marker(marker, &pending, &events),
                    None => events(LiveEvent::Output(line)),
                };
            engine.start_attached(&container, &output).await
        })
    }

    /// The program's run ended on its own (or its container went away).
    async fn program_exited(&mut self, exit: Result<i64>) -> Result<Step> {
        let Some(program) = self.program.as_mut() else {
            return Ok(Step::Continue);
        };
        program.run = None;
        let container = program.container.clone();
        // `docker rm -f` kills the program (SIGKILL: 137) first and removes
        // the container a moment later: give the removal that moment
        // before judging.
        let attempts = if matches!(exit, Ok(137) | Err(_)) {
            10
        } else {
            1
        };
        for attempt in 0..attempts {
            match self.engine.container_running(&container).await {
                Ok(None) => {
                    return Ok(Step::End(LiveEnd::ContainerRemoved { container }));
                }
                Ok(Some(_)) if attempt + 1 < attempts => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Some(_)) => {}
                Err(error) => {
                    return Err(error.context(
                        "The container engine stopped answering, so the live run ends (start the engine and run again)",
                    ));
                }
            }
        }
        match exit {
            Ok(code) => self.emit(LiveEvent::Exited { code }),
            Err(error) => self.emit(LiveEvent::Notice(format!(
                "Lost the program's output: {error:#}"
            ))),
        }
        Ok(Step::Continue)
    }

    /// One debounced batch of changed paths.
    async fn update(&mut self, changed: BTreeSet<PathBuf>) -> Result<Step> {
        let started = Instant::now();
        let Some(running) = self.running.as_ref() else {
            return Ok(Step::Continue);
        };
        let config_path = crate::config::config_path(&self.crate_dir);
        if changed.contains(&config_path) {
            if let Some(error) = crate::config::first_error(&self.crate_dir, None, None, &[]) {
                self.emit(LiveEvent::BuildFailed {
                    message: format!("{error} The old program keeps running."),
                    diagnostics: Vec::new(),
                });
                return Ok(Step::Continue);
            }
            let run_config = super::run_config(&self.crate_dir)?;
            if run_config != running.run_config {
                return self
                    .replace("`.arca/config.toml` changed (run settings)".into())
                    .await;
            }
        }
        let reasons = self.stale_reasons(&changed).await;
        if reasons.is_empty() {
            return Ok(Step::Continue);
        }
        let change = describe(&reasons);
        self.emit(LiveEvent::Rebuilding {
            change: change.clone(),
        });
        let events = self.events.clone();
        let build_events = move |event: BuildEvent| events(LiveEvent::Build(event));
        let built = match pipeline::rebuild_binary_live(
            self.env,
            &self.request(),
            &build_events,
            &self.cancel,
        )
        .await
        {
            Ok(built) => built,
            Err(BuildError::Cancelled) => return Ok(Step::End(LiveEnd::Stopped)),
            Err(error) => {
                self.build_failed(error);
                return Ok(Step::Continue);
            }
        };
        if let Some(reason) = settings_change(&running_of(&self.running).prepared, &built.prepared)
        {
            return self.replace(reason).await;
        }
        let cargo = started.elapsed();
        self.swap(built, change, started, cargo).await
    }

    /// The change does not build: said once, the old program kept.
    fn build_failed(&self, error: BuildError) {
        let diagnostics = match &error {
            BuildError::Compile { diagnostics, .. } => diagnostics.clone(),
            _ => Vec::new(),
        };
        self.emit(LiveEvent::BuildFailed {
            message: format!("{error}\nThe old program keeps running."),
            diagnostics,
        });
    }

    /// Why the running binary is stale, judged as cargo would; empty when
    /// the change does not touch its inputs.
    async fn stale_reasons(&self, changed: &BTreeSet<PathBuf>) -> Vec<String> {
        let running = running_of(&self.running);
        let Some(manifest) = running.manifest.clone() else {
            // No manifest (an image of the original CLI): any change counts.
            return changed
                .iter()
                .map(|path| {
                    let shown = path.strip_prefix(&self.crate_dir).unwrap_or(path);
                    format!("{} changed", shown.display())
                })
                .collect();
        };
        let crate_dir = self.crate_dir.clone();
        let recorded = running.prepared.settings.clone();
        let judged = tokio::task::spawn_blocking(move || {
            let setup = crate::status::load_setup(&crate_dir);
            let settings = setup.result.unwrap_or(recorded);
            crate::status::relive_manifest(&manifest, &settings, crate::manifest::file_digest)
                .map(|relived| (relived.digest != manifest.digest(), relived.changes))
        })
        .await;
        match judged {
            Ok(Ok((true, changes))) if changes.is_empty() => vec!["inputs changed".into()],
            Ok(Ok((true, changes))) => changes,
            Ok(Ok((false, _))) => Vec::new(),
            Ok(Err(error)) => vec![format!("{error:#}")],
            Err(error) => vec![format!("the staleness check failed: {error}")],
        }
    }

    /// Puts the new binary into the running container and starts it.
    async fn swap(
        &mut self,
        built: LiveBinary,
        change: String,
        started: Instant,
        cargo: Duration,
    ) -> Result<Step> {
        let binary = built.outcome.binary.clone();
        let name = built.prepared.settings.bin.clone();
        let (digest, tar) = tokio::task::spawn_blocking(move || binary_layer(&binary, &name))
            .await
            .map_err(|error| anyhow!("Reading the new binary failed: {error}"))??;
        let same_binary =
            running_of(&self.running).binary_digest.as_deref() == Some(digest.as_str());
        let running = self.running.as_mut().expect("a running program");
        running.manifest = Some(built.outcome.manifest.clone());
        if same_binary {
            self.emit(LiveEvent::Unchanged {
                change,
                diagnostics: built.outcome.diagnostics.clone(),
            });
            return Ok(Step::Continue);
        }
        let container = self.program.as_ref().expect("a program").container.clone();
        if self
            .program
            .as_ref()
            .is_some_and(|program| program.supervisor.is_some())
        {
            let diagnostics = built.outcome.diagnostics.clone();
            let update = (change, started, cargo, diagnostics);
            let step = self.swap_supervised(&container, tar, update).await?;
            if let Some(running) = self.running.as_mut() {
                running.binary_digest = Some(digest);
            }
            return Ok(step);
        }
        let destination = BINARY_DIR;
        // The copy goes in while the old program stops: the engine replaces
        // the file (a new inode), so the running binary is not touched. An
        // engine that refuses to write it into a running container gets it
        // again once the container has stopped.
        let early_copy = {
            let engine = self.engine.clone();
            let container = container.clone();
            let tar = tar.clone();
            tokio::spawn(async move {
                let copying = Instant::now();
                let copied = engine.upload_tar(&container, destination, tar).await;
                (copied, copying.elapsed())
            })
        };
        let stop_started = Instant::now();
        let stopped = self.stop_program().await;
        let stop = stop_started.elapsed();
        let (early, mut copy) = early_copy
            .await
            .map_err(|error| anyhow!("The copy task failed: {error}"))?;
        if let Some(end) = stopped? {
            return Ok(Step::End(end));
        }
        if let Err(early_error) = early {
            tracing::debug!(
                "copy into the running container refused ({early_error:#}); copying again"
            );
            let copying = Instant::now();
            if let Err(error) = self.engine.upload_tar(&container, destination, tar).await {
                return match self.engine.container_running(&container).await {
                    Ok(None) => Ok(Step::End(LiveEnd::ContainerRemoved { container })),
                    _ => {
                        self.replace(format!("the engine refused the copy ({error:#})"))
                            .await
                    }
                };
            }
            copy = copying.elapsed();
        }
        self.emit(LiveEvent::Updated {
            change,
            seconds: started.elapsed().as_secs_f64(),
            timings: SwapTimings { cargo, stop, copy },
            diagnostics: built.outcome.diagnostics.clone(),
        });
        if let Some(program) = self.program.as_ref() {
            let run = self.spawn_run(&container, None, &program.pending);
            if let Some(program) = self.program.as_mut() {
                program.run = Some(run);
            }
        }
        let running = self.running.as_mut().expect("a running program");
        running.binary_digest = Some(digest);
        Ok(Step::Continue)
    }

    /// The supervised swap: the binary copied in while the old program
    /// runs, then the supervisor asked to restart it (the separator is said
    /// when it says the new program started). A container that stopped
    /// (its supervisor was stopped from outside) is started again, running
    /// the new binary.
    async fn swap_supervised(
        &mut self,
        container: &str,
        tar: Vec<u8>,
        (change, started, cargo, diagnostics): (String, Instant, Duration, Vec<CompilerDiagnostic>),
    ) -> Result<Step> {
        let copying = Instant::now();
        if let Err(error) = self.engine.upload_tar(container, BINARY_DIR, tar).await {
            return match self.engine.container_running(container).await {
                Ok(None) => Ok(Step::End(LiveEnd::ContainerRemoved {
                    container: container.to_owned(),
                })),
                _ => {
                    self.replace(format!("the engine refused the copy ({error:#})"))
                        .await
                }
            };
        }
        let copy = copying.elapsed();
        let Some(program) = self.program.as_ref() else {
            return Ok(Step::Continue);
        };
        if let Ok(mut pending) = program.pending.lock() {
            *pending = Some(PendingUpdate {
                change,
                started,
                cargo,
                copy,
                signalled: Instant::now(),
                diagnostics,
            });
        }
        if program.run.is_none() {
            let run = self.spawn_run(container, program.supervisor.as_ref(), &program.pending);
            if let Some(program) = self.program.as_mut() {
                program.run = Some(run);
            }
            return Ok(Step::Continue);
        }
        if let Err(error) = self
            .engine
            .signal_container(container, supervisor::RESTART_SIGNAL)
            .await
        {
            return match self.engine.container_running(container).await {
                Ok(None) => Ok(Step::End(LiveEnd::ContainerRemoved {
                    container: container.to_owned(),
                })),
                _ => {
                    self.replace(format!(
                        "the engine refused to signal the program ({error:#})"
                    ))
                    .await
                }
            };
        }
        Ok(Step::Continue)
    }

    /// Stops the current run (if the program still runs) and waits for it.
    async fn stop_program(&mut self) -> Result<Option<LiveEnd>> {
        let Some(program) = self.program.as_mut() else {
            return Ok(None);
        };
        let Some(run) = program.run.take() else {
            return Ok(None);
        };
        let container = program.container.clone();
        let stopping = Instant::now();
        self.engine
            .stop_container(&container, STOP_GRACE_SECONDS)
            .await
            .context("Failed to stop the program for the live update")?;
        let _ = run.await;
        let grace = Duration::from_secs(STOP_GRACE_SECONDS as u64);
        if stopping.elapsed() + Duration::from_millis(500) >= grace {
            self.emit(LiveEvent::Killed {
                grace_seconds: STOP_GRACE_SECONDS,
            });
        }
        if self.engine.container_running(&container).await?.is_none() {
            return Ok(Some(LiveEnd::ContainerRemoved { container }));
        }
        Ok(None)
    }

    /// Live update cannot apply: a full build and a fresh container.
    async fn replace(&mut self, reason: String) -> Result<Step> {
        self.emit(LiveEvent::Replacing { reason });
        let request = self.request();
        let events = self.events.clone();
        let build_events = move |event: BuildEvent| events(LiveEvent::Build(event));
        // Build first: the old program runs until the new image exists.
        match pipeline::package(self.env, &request, &build_events, &self.cancel).await {
            Ok(_) => {}
            Err(BuildError::Cancelled) => return Ok(Step::End(LiveEnd::Stopped)),
            Err(error) => {
                self.build_failed(error);
                return Ok(Step::Continue);
            }
        }
        if let Some(end) = self.stop_program().await? {
            return Ok(Step::End(end));
        }
        if !self.package_and_start().await? {
            return Ok(Step::End(LiveEnd::Stopped));
        }
        Ok(Step::Continue)
    }

    /// Whether the container ran a binary a live update put there (no
    /// image holds it).
    fn ran_unrecorded_binary(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|running| running.binary_digest.is_some())
    }

    /// `[live] image = "on-exit"`: records the image of the binary the live
    /// run ended with. Cargo finds the live build fresh, so only the image
    /// is assembled. Runs after the watch was cancelled, under its own
    /// token.
    async fn record_image_on_exit(&self) {
        let config = crate::config::config_path(&self.crate_dir);
        let text =
            crate::fsread::read_to_string(&config, crate::fsread::Kind::Config).unwrap_or_default();
        if !crate::config::live::parse(&text).image_on_exit {
            return;
        }
        self.emit(LiveEvent::Notice(
            "Recording the image of the binary the live run ended with ([live] image = \"on-exit\")."
                .into(),
        ));
        let events = self.events.clone();
        let build_events = move |event: BuildEvent| events(LiveEvent::Build(event));
        let uncancelled = CancellationToken::new();
        if let Err(error) =
            pipeline::package(self.env, &self.request(), &build_events, &uncancelled).await
        {
            self.emit(LiveEvent::Notice(format!(
                "The image was not recorded: {error}"
            )));
        }
    }

    /// Stops the program and removes its container (best effort).
    async fn remove_program(&mut self) {
        let Some(mut program) = self.program.take() else {
            return;
        };
        if let Some(run) = program.run.take() {
            let _ = self
                .engine
                .stop_container(&program.container, STOP_GRACE_SECONDS)
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(5), run).await;
        }
        let _ = self.engine.remove_container(&program.container).await;
    }
}

/// Where the program's binary is in the image.
const BINARY_DIR: &str = "/usr/local/bin";

/// What the supervisor said, as the live run's events.
fn on_marker(marker: Marker, pending: &std::sync::Mutex<Option<PendingUpdate>>, events: &LiveSink) {
    match marker {
        Marker::Started => {
            let update = pending.lock().ok().and_then(|mut pending| pending.take());
            if let Some(update) = update {
                events(LiveEvent::Updated {
                    change: update.change,
                    seconds: update.started.elapsed().as_secs_f64(),
                    timings: SwapTimings {
                        cargo: update.cargo,
                        stop: update.signalled.elapsed(),
                        copy: update.copy,
                    },
                    diagnostics: update.diagnostics,
                });
            }
        }
        Marker::Exited(code) => events(LiveEvent::Exited { code }),
        Marker::Killed => events(LiveEvent::Killed {
            grace_seconds: STOP_GRACE_SECONDS,
        }),
    }
}

fn running_of(running: &Option<Running>) -> &Running {
    running.as_ref().expect("the live run has a program")
}

/// Waits for the run task, or forever when there is none.
async fn wait_for(run: Option<&mut JoinHandle<Result<i64>>>) -> Result<i64> {
    match run {
        Some(run) => run
            .await
            .map_err(|error| anyhow!("The output task failed: {error}"))?,
        None => std::future::pending().await,
    }
}

/// Which build setting differs, as the fallback's reason.
fn settings_change(before: &PreparedBuild, now: &PreparedBuild) -> Option<String> {
    let config = |what: &str| Some(format!("`.arca/config.toml` changed ({what})"));
    if before.settings.base_image != now.settings.base_image {
        return config("base image");
    }
    if before.settings.profile != now.settings.profile {
        return config("profile");
    }
    if before.settings.features != now.settings.features {
        return config("features");
    }
    if before.settings.bin != now.settings.bin {
        return config("bin");
    }
    if before.builder_image_tag != now.builder_image_tag || before.mode != now.mode {
        return Some("the builder changed (toolchain, packages or build environment)".into());
    }
    None
}

/// `src/main.rs changed`, or `src/main.rs changed and 49 more`.
fn describe(reasons: &[String]) -> String {
    match reasons {
        [] => "a change".into(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
    }
}

/// The binary's SHA-256 and a tar holding it as `<name>` (mode 0755,
/// owned by root), to extract at `/usr/local/bin`.
fn binary_layer(binary: &Path, name: &str) -> Result<(String, Vec<u8>)> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(binary)
        .with_context(|| format!("Failed to read the new binary {}", binary.display()))?;
    let digest = format!("{:x}", Sha256::digest(&bytes));
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0),
    );
    header.set_entry_type(tar::EntryType::Regular);
    let mut archive = tar::Builder::new(Vec::new());
    archive
        .append_data(&mut header, Path::new(name), bytes.as_slice())
        .context("Failed to pack the new binary")?;
    Ok((digest, archive.into_inner()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_named_by_its_first_change_and_a_count() {
        assert_eq!(
            describe(&["src/main.rs changed".into()]),
            "src/main.rs changed"
        );
        let many: Vec<String> = (0..50).map(|n| format!("src/m{n}.rs changed")).collect();
        assert_eq!(describe(&many), "src/m0.rs changed and 49 more");
    }

    #[test]
    fn the_binary_goes_into_the_container_as_one_executable_file() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("hello");
        std::fs::write(&binary, b"\x7fELF new").unwrap();
        let (digest, tar) = binary_layer(&binary, "hello").unwrap();
        assert_eq!(digest.len(), 64);
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (
                    entry.path().unwrap().display().to_string(),
                    entry.header().mode().unwrap(),
                    entry.header().uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries, vec![("hello".to_owned(), 0o755, 0)]);
    }
}
