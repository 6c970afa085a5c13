//! What one crate is doing besides being watched: at most one operation
//! (a build, a package or a push) and at most one run (`arca.run`, live or
//! not), with the rules for each transition. Plain data: the handlers
//! start the work, hand each report here, and publish the status this
//! implies; nothing here talks to a client or an engine.
//!
//! Transitions of an operation: none → started (refused while another
//! runs) → prepared (a build or package turns `building` only now, so a
//! build refused on its config never says it was building) → finished.
//! A run: none → packaging (refused while one runs) → running (its
//! container) → updated live (the container holds a binary no image has)
//! → ended. Every report names the generation it belongs to, so a report
//! of an operation or run that was replaced is dropped.

use tokio_util::sync::CancellationToken;

use crate::status::RunningContainer;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Build,
    Package,
    Push,
}

/// A progress token, as the client names it (the adapter converts it from
/// and to the protocol's `NumberOrString`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressToken {
    Number(i32),
    String(String),
}

/// A running build, package or push of one crate.
pub struct Operation {
    pub generation: u64,
    pub kind: OperationKind,
    pub cancel: CancellationToken,
    /// Its work-done progress token, so the client can cancel it.
    pub progress: Option<ProgressToken>,
}

/// A run of one crate (`arca.run`).
struct Run {
    generation: u64,
    /// Cancelled by `arca.stop`, the crate leaving, and shutdown.
    stop: CancellationToken,
    /// Its container, once it runs.
    running: Option<RunningContainer>,
}

/// Why a start was refused; the handlers word it for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An operation of this kind runs.
    OperationRunning(OperationKind),
    /// A run's container runs (its id).
    Running(String),
    /// A run is still packaging its image.
    PackagingToRun,
}

/// One crate's operation and run.
#[derive(Default)]
pub struct Activity {
    operation: Option<Operation>,
    /// The operation was prepared (its config checked).
    prepared: bool,
    run: Option<Run>,
}

impl Activity {
    /// Starts an operation, unless one runs.
    pub fn begin(&mut self, operation: Operation) -> Result<(), Refusal> {
        if let Some(running) = &self.operation {
            return Err(Refusal::OperationRunning(running.kind));
        }
        self.operation = Some(operation);
        self.prepared = false;
        Ok(())
    }

    /// The operation of `generation` was prepared. Returns whether the
    /// crate's state changed (it now says `building`).
    pub fn prepared(&mut self, generation: u64) -> bool {
        let was_building = self.building();
        if self
            .operation
            .as_ref()
            .is_some_and(|operation| operation.generation == generation)
        {
            self.prepared = true;
        }
        self.building() != was_building
    }

    /// The operation of `generation` ended (done, failed or cancelled).
    /// Returns whether it was the crate's operation (a report of one that
    /// was replaced, or of a crate removed and found again, is dropped).
    pub fn finished(&mut self, generation: u64) -> bool {
        if self
            .operation
            .as_ref()
            .is_none_or(|operation| operation.generation != generation)
        {
            return false;
        }
        self.operation = None;
        self.prepared = false;
        true
    }

    /// A build or package runs and was prepared: the status says
    /// `building`. A push never does.
    pub fn building(&self) -> bool {
        self.prepared
            && self
                .operation
                .as_ref()
                .is_some_and(|operation| operation.kind != OperationKind::Push)
    }

    /// Cancels the operation, if one runs (it reports `finished` when it
    /// has stopped).
    pub fn cancel(&self) {
        if let Some(operation) = &self.operation {
            operation.cancel.cancel();
        }
    }

    /// Cancels the operation whose progress the client cancelled.
    pub fn cancel_progress(&self, token: &ProgressToken) {
        if let Some(operation) = &self.operation
            && operation.progress.as_ref() == Some(token)
        {
            operation.cancel.cancel();
        }
    }

    /// Starts a run, unless one runs.
    pub fn begin_run(&mut self, generation: u64, stop: CancellationToken) -> Result<(), Refusal> {
        match &self.run {
            Some(Run {
                running: Some(running),
                ..
            }) => Err(Refusal::Running(running.container.clone())),
            Some(_) => Err(Refusal::PackagingToRun),
            None => {
                self.run = Some(Run {
                    generation,
                    stop,
                    running: None,
                });
                Ok(())
            }
        }
    }

    fn run_of(&mut self, generation: u64) -> Option<&mut Run> {
        self.run.as_mut().filter(|run| run.generation == generation)
    }

    /// The run's container started. Returns whether it is the crate's run.
    pub fn run_started(&mut self, generation: u64, running: RunningContainer) -> bool {
        let Some(run) = self.run_of(generation) else {
            return false;
        };
        run.running = Some(running);
        true
    }

    /// A live update put a new binary into the run's container at `at`
    /// (epoch ms). Returns whether it is the crate's run.
    pub fn updated_live(&mut self, generation: u64, at: Option<u64>) -> bool {
        let Some(run) = self.run_of(generation) else {
            return false;
        };
        if let (Some(running), Some(at)) = (run.running.as_mut(), at) {
            running.updated_live_at = Some(at);
        }
        true
    }

    /// The run ended (its container exited and was removed). Returns
    /// whether it was the crate's run.
    pub fn run_ended(&mut self, generation: u64) -> bool {
        if self.run_of(generation).is_none() {
            return false;
        }
        self.run = None;
        true
    }

    /// The run's container, while it runs.
    pub fn running(&self) -> Option<&RunningContainer> {
        self.run.as_ref()?.running.as_ref()
    }

    /// Asks the run to stop (it reports `run_ended` when it has). Returns
    /// whether one was running.
    pub fn stop_run(&self) -> bool {
        match &self.run {
            Some(run) => {
                run.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels the operation and stops the run (the crate left the
    /// workspace, or the server shuts down).
    pub fn stop_all(&self) {
        self.cancel();
        self.stop_run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(generation: u64, kind: OperationKind) -> Operation {
        Operation {
            generation,
            kind,
            cancel: CancellationToken::new(),
            progress: Some(ProgressToken::String(format!("arca/{generation}"))),
        }
    }

    fn container(id: &str, live: bool) -> RunningContainer {
        RunningContainer {
            container: id.into(),
            image: "sha256:abc".into(),
            started_at: 1,
            live,
            updated_live_at: None,
        }
    }

    #[test]
    fn a_build_says_building_only_once_prepared_and_not_after() {
        let mut activity = Activity::default();
        activity.begin(operation(1, OperationKind::Build)).unwrap();
        assert!(!activity.building(), "not before its config is checked");
        assert!(activity.prepared(1));
        assert!(activity.building());
        assert!(!activity.prepared(1), "prepared twice is no news");
        assert!(activity.finished(1));
        assert!(!activity.building());
        // Gone: the next one starts.
        activity.begin(operation(2, OperationKind::Build)).unwrap();
    }

    #[test]
    fn a_build_refused_on_its_config_never_says_building() {
        let mut activity = Activity::default();
        activity
            .begin(operation(1, OperationKind::Package))
            .unwrap();
        // Refused in preparation: it finishes without being prepared.
        assert!(activity.finished(1));
        assert!(!activity.building());
        // And the next build starts.
        activity.begin(operation(2, OperationKind::Build)).unwrap();
    }

    #[test]
    fn a_second_operation_is_refused_naming_the_first() {
        let mut activity = Activity::default();
        activity.begin(operation(1, OperationKind::Push)).unwrap();
        assert_eq!(
            activity.begin(operation(2, OperationKind::Build)).err(),
            Some(Refusal::OperationRunning(OperationKind::Push))
        );
        // The refused one changed nothing: a push never says building.
        assert!(!activity.prepared(2));
        assert!(!activity.building());
        assert!(!activity.prepared(1), "a push never turns building");
        assert!(!activity.building());
    }

    #[test]
    fn cancel_reaches_the_operation_and_its_end_clears_it() {
        let mut activity = Activity::default();
        let build = operation(4, OperationKind::Build);
        let token = build.cancel.clone();
        activity.begin(build).unwrap();
        activity.prepared(4);
        activity.cancel_progress(&ProgressToken::String("arca/other".into()));
        assert!(!token.is_cancelled(), "another progress's cancel");
        activity.cancel_progress(&ProgressToken::String("arca/4".into()));
        assert!(token.is_cancelled());
        // Still building until the cancelled build reports its end.
        assert!(activity.building());
        assert!(activity.finished(4));
        assert!(!activity.building());
    }

    #[test]
    fn a_report_of_a_replaced_operation_is_dropped() {
        let mut activity = Activity::default();
        activity.begin(operation(1, OperationKind::Build)).unwrap();
        activity.finished(1);
        activity.begin(operation(2, OperationKind::Build)).unwrap();
        // The first build's late reports touch nothing of the second.
        assert!(!activity.prepared(1));
        assert!(!activity.building());
        assert!(!activity.finished(1));
        // The second still runs.
        assert_eq!(
            activity.begin(operation(3, OperationKind::Build)).err(),
            Some(Refusal::OperationRunning(OperationKind::Build))
        );
    }

    #[test]
    fn a_run_packages_runs_updates_live_and_ends() {
        let mut activity = Activity::default();
        let stop = CancellationToken::new();
        activity.begin_run(7, stop.clone()).unwrap();
        assert_eq!(activity.running(), None);
        assert_eq!(
            activity.begin_run(8, CancellationToken::new()).err(),
            Some(Refusal::PackagingToRun)
        );
        assert!(activity.run_started(7, container("c1", true)));
        assert_eq!(
            activity.begin_run(8, CancellationToken::new()).err(),
            Some(Refusal::Running("c1".into()))
        );
        assert!(activity.updated_live(7, Some(1234)));
        assert_eq!(activity.running().unwrap().updated_live_at, Some(1234));
        // A compile error updates nothing.
        assert!(activity.updated_live(7, None));
        assert_eq!(activity.running().unwrap().updated_live_at, Some(1234));
        assert!(activity.stop_run());
        assert!(stop.is_cancelled());
        // Running until the run reports its end.
        assert!(activity.running().is_some());
        assert!(activity.run_ended(7));
        assert_eq!(activity.running(), None);
        assert!(!activity.stop_run());
        activity.begin_run(9, CancellationToken::new()).unwrap();
    }

    #[test]
    fn reports_of_an_ended_run_are_dropped() {
        let mut activity = Activity::default();
        activity.begin_run(1, CancellationToken::new()).unwrap();
        activity.run_ended(1);
        activity.begin_run(2, CancellationToken::new()).unwrap();
        assert!(!activity.run_started(1, container("old", false)));
        assert!(!activity.updated_live(1, Some(5)));
        assert!(!activity.run_ended(1));
        assert_eq!(activity.running(), None);
        assert!(activity.run_started(2, container("new", false)));
    }

    #[test]
    fn stop_all_cancels_the_operation_and_stops_the_run() {
        let mut activity = Activity::default();
        let build = operation(1, OperationKind::Package);
        let cancelled = build.cancel.clone();
        activity.begin(build).unwrap();
        let stop = CancellationToken::new();
        activity.begin_run(2, stop.clone()).unwrap();
        activity.stop_all();
        assert!(cancelled.is_cancelled());
        assert!(stop.is_cancelled());
    }
}
