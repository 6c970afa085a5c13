//! A credential helper (`docker-credential-NAME get`) run as the untrusted
//! program it is: bounded in time ([`timeout`]: 60 s by default, since a
//! helper may wait for a keychain prompt; `ARCA_CREDENTIAL_HELPER_TIMEOUT`
//! in seconds) and in output ([`OUTPUT_LIMIT`] per stream), killed beyond
//! either. What it prints stays here: the caller gets stdout to parse and
//! whether it said "credentials not found", never text to show or log.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most a helper may print on stdout or on stderr (its JSON answer is
/// a few hundred bytes).
pub const OUTPUT_LIMIT: usize = 1 << 20;
/// The default of [`timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a helper that exited in time said.
pub struct HelperOutput {
    pub status: ExitStatus,
    pub success: bool,
    pub stdout: Vec<u8>,
    /// Its stdout or stderr says "credentials not found" (the helpers'
    /// protocol for an unknown server).
    pub said_not_found: bool,
}

/// Why a helper gave no answer.
#[derive(Debug)]
pub enum HelperFailure {
    Spawn(std::io::Error),
    TimedOut(Duration),
    Flooded,
    Wait(std::io::Error),
}

impl fmt::Display for HelperFailure {
    /// The rest of a sentence that starts with the helper's name.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn(error) => write!(formatter, "cannot be run ({error})."),
            Self::TimedOut(limit) => write!(
                formatter,
                "did not answer within {} s and was stopped. If it waits for you (a keychain prompt), set ARCA_CREDENTIAL_HELPER_TIMEOUT to more seconds.",
                limit.as_secs_f64()
            ),
            Self::Flooded => write!(
                formatter,
                "printed more than {} MiB and was stopped; a credential reply is a few hundred bytes.",
                OUTPUT_LIMIT >> 20
            ),
            Self::Wait(error) => write!(formatter, "could not be waited for ({error})."),
        }
    }
}

/// `ARCA_CREDENTIAL_HELPER_TIMEOUT` (seconds, fractions allowed), else
/// [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Duration {
    std::env::var("ARCA_CREDENTIAL_HELPER_TIMEOUT")
        .ok()
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .map_or(DEFAULT_TIMEOUT, |seconds| {
            Duration::from_secs_f64(seconds.min(3600.0))
        })
}

/// Runs `path verb` with `input` on stdin, within `limit` (callers pass
/// [`timeout`]) and [`OUTPUT_LIMIT`].
pub fn run(
    path: &Path,
    verb: &str,
    input: &[u8],
    limit: Duration,
) -> Result<HelperOutput, HelperFailure> {
    let mut child = Command::new(path)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(HelperFailure::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // A helper that never reads must not block us: write from a thread.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let flooded = Arc::new(AtomicBool::new(false));
    let (sender, received) = mpsc::channel();
    let streams: Vec<Box<dyn Read + Send>> = [
        child
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    let stream_count = streams.len();
    for (index, stream) in streams.into_iter().enumerate() {
        let sender = sender.clone();
        let flooded = flooded.clone();
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let read = stream.take(OUTPUT_LIMIT as u64 + 1).read_to_end(&mut kept);
            if read.is_ok() && kept.len() > OUTPUT_LIMIT {
                flooded.store(true, Ordering::Relaxed);
                kept.truncate(OUTPUT_LIMIT);
            }
            let _ = sender.send((index, kept));
        });
    }
    drop(sender);
    let status = wait_bounded(&mut child, limit, &flooded)?;
    // The streams close with the helper (or soon after, unless something
    // it started keeps them open: then what arrived is all there is).
    let mut outputs = vec![Vec::new(); stream_count];
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..stream_count {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok((index, bytes)) => outputs[index] = bytes,
            Err(_) => break,
        }
    }
    if flooded.load(Ordering::Relaxed) {
        return Err(HelperFailure::Flooded);
    }
    let said_not_found = outputs.iter().any(|bytes| {
        String::from_utf8_lossy(bytes)
            .to_ascii_lowercase()
            .contains("credentials not found")
    });
    let stdout = outputs.into_iter().next().unwrap_or_default();
    Ok(HelperOutput {
        success: status.success(),
        status,
        stdout,
        said_not_found,
    })
}

/// Waits for the helper's exit; kills it past `limit` or once it printed
/// too much.
fn wait_bounded(
    child: &mut Child,
    limit: Duration,
    flooded: &AtomicBool,
) -> Result<ExitStatus, HelperFailure> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().map_err(HelperFailure::Wait)? {
            return Ok(status);
        }
        let failure = if flooded.load(Ordering::Relaxed) {
            Some(HelperFailure::Flooded)
        } else if started.elapsed() >= limit {
            Some(HelperFailure::TimedOut(limit))
        } else {
            None
        };
        if let Some(failure) = failure {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failure);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn helper(dir: &Path, script: &str) -> std::path::PathBuf {
        let path = dir.join("docker-credential-test");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_hanging_helper_is_stopped_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = helper(dir.path(), "sleep 30");
        let started = Instant::now();
        let failure = run(&path, "get", b"reg", Duration::from_millis(300))
            .err()
            .unwrap();
        assert!(matches!(failure, HelperFailure::TimedOut(_)), "{failure:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            failure
                .to_string()
                .contains("ARCA_CREDENTIAL_HELPER_TIMEOUT")
        );
    }

    #[test]
    fn a_flooding_helper_is_stopped_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        for script in ["yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "yes secret >&2"] {
            let path = helper(dir.path(), script);
            let started = Instant::now();
            let failure = run(&path, "get", b"reg", Duration::from_secs(20))
                .err()
                .unwrap();
            assert!(
                matches!(failure, HelperFailure::Flooded),
                "{script}: {failure:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn a_helper_that_never_reads_stdin_still_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = helper(dir.path(), "printf '{\"Secret\":\"s\"}'");
        let output = run(&path, "get", &vec![b'x'; 1 << 20], Duration::from_secs(20)).unwrap();
        assert!(output.success);
        assert_eq!(output.stdout, br#"{"Secret":"s"}"#);
    }
}
