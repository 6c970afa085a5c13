//! Startup phases for people measuring the server: the first time each
//! phase is reached is logged at `debug` under the `arca::startup` target,
//! with the milliseconds since the server started (`RUST_LOG=arca::startup=debug`;
//! debug, so the editor's output channel at `info` stays readable).
//! The language-server benchmark reads these lines for its split of startup.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

static STARTED: OnceLock<Instant> = OnceLock::new();
static REACHED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

/// Starts the clock; later calls keep the first instant.
pub fn start() {
    STARTED.get_or_init(Instant::now);
}

/// Logs `phase` the first time it is reached.
pub fn reached(phase: &'static str) {
    let Some(started) = STARTED.get() else {
        return;
    };
    let Ok(mut reached) = REACHED.lock() else {
        return;
    };
    if reached.get_or_insert_with(HashSet::new).insert(phase) {
        let ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::debug!(target: "arca::startup", "{phase} at {ms:.1} ms");
    }
}
