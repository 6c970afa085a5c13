//! `arca run --watch`: the terminal face of [`crate::runner::live`]. The
//! program's stdout and stderr go to ours; Arca's own lines (the first
//! build, the separator after each live update, compile errors, fallbacks)
//! go to stderr. Ctrl-C ends the watch; the exit code is 130 then, 1 when
//! the run could not go on.
//!
//! `ARCA_LIVE_TIMINGS=1` adds where an update's time went (cargo, stop,
//! copy) to its separator line, for the benchmark.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::build::Console;
use crate::engine::Stream;
use crate::pipeline::BuildEnv;
use crate::runner::live::{self, LiveEnd, LiveEvent, LiveRequest};

/// Runs `arca run --watch`.
pub async fn run_live(request: LiveRequest) -> Result<ExitCode> {
    let env = BuildEnv::from_arca_home()?;
    let interrupted = CancellationToken::new();
    let on_signal = interrupted.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let printer = Arc::new(Printer {
        console: Console::new(),
        hot_rebuild: AtomicBool::new(false),
        timings: std::env::var_os("ARCA_LIVE_TIMINGS").is_some_and(|value| value != "0"),
    });
    let sink = printer.clone();
    let ended = live::watch(
        &env,
        request,
        Arc::new(move |event| sink.show(event)),
        interrupted,
    )
    .await;
    printer.console.finish();
    match ended {
        Ok(LiveEnd::Stopped) => {
            eprintln!("Live run stopped; the container is removed.");
            Ok(ExitCode::from(130))
        }
        Ok(LiveEnd::ContainerRemoved { container }) => {
            eprintln!(
                "error: the container {} was removed outside Arca; the live run ends. Run `arca run --watch` again to start a new one.",
                crate::runner::short_id(&container)
            );
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

struct Printer {
    console: Console,
    /// Between a change and its update: cargo's lines are not shown.
    hot_rebuild: AtomicBool,
    timings: bool,
}

impl Printer {
    fn show(&self, event: LiveEvent) {
        match event {
            LiveEvent::Build(event) => {
                if !self.hot_rebuild.load(Ordering::SeqCst) {
                    self.console.show(event);
                }
            }
            LiveEvent::Started { container, image } => {
                self.console.finish();
                note(&format!(
                    "==> Running {image} live (container {}); changes update it, Ctrl-C stops it",
                    crate::runner::short_id(&container)
                ));
            }
            LiveEvent::Output(line) => {
                let _ = match line.stream {
                    Stream::Stdout => writeln!(std::io::stdout().lock(), "{}", line.text),
                    Stream::Stderr => writeln!(std::io::stderr().lock(), "{}", line.text),
                };
            }
            LiveEvent::Rebuilding { .. } => self.hot_rebuild.store(true, Ordering::SeqCst),
            LiveEvent::Updated {
                change,
                seconds,
                timings,
                ..
            } => {
                self.hot_rebuild.store(false, Ordering::SeqCst);
                let split = if self.timings {
                    format!(
                        ": cargo {:.3}, stop {:.3}, copy {:.3}",
                        timings.cargo.as_secs_f64(),
                        timings.stop.as_secs_f64(),
                        timings.copy.as_secs_f64()
                    )
                } else {
                    String::new()
                };
                note(&format!(
                    "── rebuilt after {} ({seconds:.2} s{split}) ──",
                    printable(&change)
                ));
            }
            LiveEvent::Unchanged { change, .. } => {
                self.hot_rebuild.store(false, Ordering::SeqCst);
                note(&format!(
                    "── {}: the binary is the same; the program keeps running ──",
                    printable(&change)
                ));
            }
            LiveEvent::BuildFailed { message, .. } => {
                self.hot_rebuild.store(false, Ordering::SeqCst);
                note(&format!("── the change does not build ──\n{message}"));
            }
            LiveEvent::Replacing { reason } => {
                self.hot_rebuild.store(false, Ordering::SeqCst);
                note(&format!(
                    "── {}: live update cannot apply; building the image and starting a fresh container ──",
                    printable(&reason)
                ));
            }
            LiveEvent::Killed { grace_seconds } => note(&format!(
                "The program did not stop on SIGTERM; killed after {grace_seconds} s."
            )),
            LiveEvent::Exited { code } => note(&format!(
                "── the program exited with code {code}; watching for changes ──"
            )),
            LiveEvent::Notice(message) => note(&format!("note: {}", printable(&message))),
        }
    }
}

/// Writes one of Arca's own lines to stderr (a closed stderr is ignored).
fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Text from file names, made safe for a terminal: control characters are
/// escaped.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_names_cannot_reach_the_terminal() {
        assert_eq!(
            printable("src/\u{1b}[2Jx.rs changed"),
            "src/\\u{1b}[2Jx.rs changed"
        );
        assert_eq!(printable("src/main.rs changed"), "src/main.rs changed");
    }
}
