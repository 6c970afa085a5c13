//! Background jobs: blocking work (cargo metadata, tree walks, hashing,
//! store listing) run off the main loop, each reporting back as one event.
//!
//! **A job always reports.** [`spawn_blocking`] runs the work under
//! `catch_unwind`: a panic becomes an `Err` with a message, so no crate is
//! left "reading" or "building" because a job died. The loop drops results
//! of superseded runs by their generation.
//!
//! Fault injection for tests: `ARCA_TEST_FAULT=<job>[,<job>...]` makes the
//! first run of each named job (`facts`, `index`, `refingerprint`,
//! `discover`, `store`, `build`) in this process panic. It is inert unless
//! set.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::event::{Event, TaskResult};

/// Runs `work` on the blocking pool and sends `report(result)` to the loop;
/// a panic in `work` is reported as an `Err` naming `what`.
pub fn spawn_blocking<T, W, R>(
    events: &mpsc::UnboundedSender<Event>,
    what: &'static str,
    work: W,
    report: R,
) where
    T: Send + 'static,
    W: FnOnce() -> Result<T, String> + Send + 'static,
    R: FnOnce(Result<T, String>) -> TaskResult + Send + 'static,
{
    let events = events.clone();
    tokio::task::spawn_blocking(move || {
        let result = catch_unwind(AssertUnwindSafe(|| {
            fault(what);
            work()
        }))
        .unwrap_or_else(|panic| Err(panic_message(what, panic.as_ref())));
        let _ = events.send(Event::Task(report(result)));
    });
}

/// The message for a job that panicked.
pub fn panic_message(what: &str, panic: &(dyn std::any::Any + Send)) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    let message = format!(
        "Arca hit an internal error in its `{what}` job: {detail}. It retries on the next change; please report this with the log (RUST_LOG=arca=debug)."
    );
    tracing::error!("{message}");
    message
}

/// Panics the first time `job` runs when `ARCA_TEST_FAULT` names it.
pub fn fault(job: &str) {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let Ok(wanted) = std::env::var("ARCA_TEST_FAULT") else {
        return;
    };
    if !wanted.split(',').any(|name| name.trim() == job) {
        return;
    }
    let first = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert(job.to_owned());
    if first {
        panic!("injected fault in the `{job}` job (ARCA_TEST_FAULT)");
    }
}
