//! The live run's supervisor: a POSIX `sh` script that runs as the
//! container's command (under the engine's init) and runs the program as
//! its child, so a live update restarts the **program** and not the
//! container: no container stop, no network teardown, no new attach. The
//! new binary is copied in while the old program runs (the engine writes a
//! new inode), then `SIGUSR1` to the container makes the script stop the
//! old program (SIGTERM, SIGKILL after the grace time) and start the new
//! one. `SIGTERM` (a stop) stops the program the same way and ends the
//! script; a program that exits on its own leaves the script waiting for
//! the next update.
//!
//! The script tells Arca what happened in marker lines on stdout (the
//! stream a program's first line most likely takes, which the engine keeps
//! in order), each starting with a random nonce of this run (so a
//! program's output is not taken for one): `started` (said just before the
//! program starts, so it comes before the program's first line), `exited
//! CODE`, `killed`. [`Marker::parse`] reads them; every other line is the
//! program's.
//!
//! Images without `/bin/sh` (distroless, scratch) run the program
//! directly and are updated by restarting the container.

/// The script. Arguments: the nonce, the grace seconds, the program and
/// its arguments. Signals only set flags; the loop acts on them after
/// `wait` returns, as POSIX shells run traps. (A signal that lands in the
/// instant between the flags' check and `wait` is acted on when the
/// program next exits; a stop still ends within the engine's grace time.)
const SCRIPT: &str = r#"nonce=$1; grace=$2; shift 2
child=; restart=0; quit=0
say() { printf '%s %s\n' "$nonce" "$*"; }
trap 'restart=1' USR1
trap 'quit=1' TERM INT
stop_child() {
  [ -n "$child" ] || return 0
  kill -TERM "$child" 2>/dev/null
  ( sleep "$grace"; kill -KILL "$child" 2>/dev/null ) &
  killer=$!
  while kill -0 "$child" 2>/dev/null; do wait "$child" 2>/dev/null; done
  # The killer ended by itself (status 0) only when it killed the program;
  # said here, so `killed` comes before the next `started`.
  kill -KILL "$killer" 2>/dev/null; wait "$killer" 2>/dev/null && say killed
  child=
}
start_child() { say started; "$@" & child=$!; }
start_child "$@"
while :; do
  if [ "$quit" = 1 ]; then stop_child; exit 0; fi
  if [ "$restart" = 1 ]; then restart=0; stop_child; start_child "$@"; continue; fi
  if [ -n "$child" ]; then
    wait "$child" 2>/dev/null; code=$?
    if [ "$quit$restart" = 00 ] && ! kill -0 "$child" 2>/dev/null; then
      say "exited $code"; child=
    fi
  else
    sleep 1 & sleeper=$!; wait "$sleeper"; kill "$sleeper" 2>/dev/null
  fi
done
"#;

/// The path of the shell the supervisor needs in the image.
pub const SHELL: &str = "/bin/sh";
/// The signal that makes the supervisor restart the program.
pub const RESTART_SIGNAL: &str = "SIGUSR1";

/// One supervised run's markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervisor {
    nonce: String,
}

/// What a marker line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A program (the first, or a new binary) started.
    Started,
    /// The program exited on its own with this code.
    Exited(i64),
    /// The program ignored SIGTERM and was killed after the grace time.
    Killed,
}

impl Supervisor {
    /// A supervisor with a fresh nonce.
    pub fn new() -> Self {
        use rand::Rng;
        let nonce: u64 = rand::rng().random();
        Self {
            nonce: format!("arca-live-{nonce:016x}"),
        }
    }

    /// The container's entrypoint and command that run `program` with
    /// `args` under the script, stopping it within `grace_seconds`.
    pub fn command(
        &self,
        program: &str,
        args: &[String],
        grace_seconds: i32,
    ) -> (Vec<String>, Vec<String>) {
        let entrypoint = vec![SHELL.to_owned(), "-c".to_owned(), SCRIPT.to_owned()];
        let mut cmd = vec![
            "arca-live".to_owned(),
            self.nonce.clone(),
            grace_seconds.to_string(),
            program.to_owned(),
        ];
        cmd.extend(args.iter().cloned());
        (entrypoint, cmd)
    }

    /// The marker `line` is, if it is one of this run's.
    pub fn parse(&self, line: &str) -> Option<Marker> {
        let rest = line.strip_prefix(&self.nonce)?.strip_prefix(' ')?;
        match rest.trim_end() {
            "started" => Some(Marker::Started),
            "killed" => Some(Marker::Killed),
            other => other
                .strip_prefix("exited ")
                .and_then(|code| code.parse().ok())
                .map(Marker::Exited),
        }
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Runs the script under the host's `sh` (the same POSIX shell as a
    /// Debian image's) with a program that prints its start and exits on
    /// SIGTERM; returns the child and a reader of its stderr.
    fn spawn(
        supervisor: &Supervisor,
        program: &str,
        grace: i32,
    ) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
        let (entrypoint, cmd) =
            supervisor.command("/bin/sh", &["-c".into(), program.into()], grace);
        let mut child = Command::new(&entrypoint[0])
            .args(&entrypoint[1..])
            .args(&cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        (child, stdout)
    }

    fn next_marker(
        supervisor: &Supervisor,
        stderr: &mut BufReader<std::process::ChildStdout>,
    ) -> Marker {
        loop {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).expect("read") > 0, "sh ended");
            if let Some(marker) = supervisor.parse(&line) {
                return marker;
            }
        }
    }

    fn signal(child: &std::process::Child, signal: i32) {
        // SAFETY: signals our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
    }

    #[test]
    fn the_script_restarts_the_program_on_usr1_and_reports_what_happened() {
        let supervisor = Supervisor::new();
        let (mut child, mut stderr) = spawn(&supervisor, "exec sleep 30", 10);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Started);
        // A restart: the old program gets SIGTERM, a new one starts. (Not
        // in the instant between the fork and the exec, while the program
        // still has the script's traps: a SIGTERM then is lost, and the
        // program is killed after the grace time.)
        std::thread::sleep(Duration::from_millis(200));
        let asked = Instant::now();
        signal(&child, libc::SIGUSR1);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Started);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        // SIGTERM ends the program and the script (once the script waits
        // again, see SCRIPT).
        std::thread::sleep(Duration::from_millis(100));
        signal(&child, libc::SIGTERM);
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(0));
    }

    #[test]
    fn a_program_that_exits_is_reported_and_the_next_usr1_starts_it_again() {
        let supervisor = Supervisor::new();
        let (mut child, mut stderr) = spawn(&supervisor, "exit 3", 10);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Started);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Exited(3));
        signal(&child, libc::SIGUSR1);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Started);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Exited(3));
        signal(&child, libc::SIGTERM);
        assert_eq!(child.wait().expect("wait").code(), Some(0));
    }

    #[test]
    fn a_program_ignoring_sigterm_is_killed_after_the_grace_time() {
        let supervisor = Supervisor::new();
        let (mut child, mut stderr) =
            spawn(&supervisor, "trap '' TERM; while :; do sleep 0.2; done", 1);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Started);
        // Time for the program to set its trap.
        std::thread::sleep(Duration::from_millis(300));
        let asked = Instant::now();
        signal(&child, libc::SIGUSR1);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Killed);
        assert_eq!(next_marker(&supervisor, &mut stderr), Marker::Started);
        assert!(asked.elapsed() >= Duration::from_millis(900));
        assert!(asked.elapsed() < Duration::from_secs(5));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn only_this_runs_markers_are_markers() {
        let supervisor = Supervisor::new();
        let other = Supervisor::new();
        let (_, cmd) = supervisor.command("/app", &[], 10);
        let nonce = &cmd[1];
        assert_eq!(
            supervisor.parse(&format!("{nonce} exited 7\n")),
            Some(Marker::Exited(7))
        );
        assert_eq!(other.parse(&format!("{nonce} started")), None);
        assert_eq!(supervisor.parse("started"), None);
        assert_eq!(supervisor.parse(&format!("{nonce}started")), None);
        assert_eq!(supervisor.parse(&format!("{nonce} exited x")), None);
    }
}
