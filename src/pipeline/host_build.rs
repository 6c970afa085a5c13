//! `--host-build`: cargo on the host, into the crate's own target
//! directory; the binary is then packaged like a container build's.

use std::process::Stdio;
use std::sync::Mutex;

use anyhow::{Context, anyhow};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::cargo_messages::{self, CargoMessages};
use super::job::{
    BuildError, BuildEvent, Compiled, EventSink, PreparedBuild, ProgressTask, SbomInputs,
    features_suffix,
};
use crate::plan;

pub(super) async fn build(
    prepared: &PreparedBuild,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Compiled, BuildError> {
    if std::env::consts::OS != "linux" {
        return Err(anyhow!(
            "`--host-build` needs a Linux host: it packages the host's ELF binary into a Linux image. Build in the container instead (drop --host-build)."
        )
        .into());
    }
    let facts = &prepared.facts;
    let settings = &prepared.settings;
    events(BuildEvent::Stage {
        title: "Building crate on the host".into(),
        detail: format!(
            "{} · profile {}{}",
            facts.name,
            settings.profile,
            features_suffix(&settings.features)
        ),
    });
    let messages = Mutex::new(CargoMessages::new(
        &facts.workspace_root,
        &facts.workspace_root,
    ));
    // Every cross toolchain is found before anything compiles.
    let platforms = prepared.extras.shape.cross.clone();
    let all_tools = tokio::task::spawn_blocking(move || {
        platforms
            .into_iter()
            .map(|platform| Ok((platform, super::cross::host_tools(platform)?)))
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await
    .map_err(|error| anyhow!("The toolchain lookup failed: {error}"))??;
    run_cargo(prepared, None, &messages, events, cancel).await?;
    let mut cross = Vec::new();
    for (platform, tools) in all_tools {
        events(BuildEvent::Output {
            line: super::cross::marker_line(platform),
        });
        run_cargo(prepared, Some((platform, tools)), &messages, events, cancel).await?;
        let binary = super::cross::binary_path(
            &facts.target_directory,
            platform,
            &settings.profile,
            &settings.bin,
        );
        if !binary.is_file() {
            return Err(anyhow!(
                "Cargo finished but the binary for {platform} is missing: {}",
                binary.display()
            )
            .into());
        }
        cross.push(super::cross::CrossBinary { platform, binary });
    }
    let mut messages = messages
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let binary = facts
        .target_directory
        .join(plan::profile_output_dir(&settings.profile))
        .join(&settings.bin);
    if !binary.is_file() {
        return Err(anyhow!(
            "Cargo finished but the binary is missing: {}",
            binary.display()
        )
        .into());
    }
    events(BuildEvent::StageDone {
        message: format!("Host cargo build finished for `{}`.", facts.name),
    });
    let diagnostics = messages.take_unique_diagnostics();
    Ok(Compiled {
        binary,
        cross,
        diagnostics,
        target_dir: facts.target_directory.clone(),
        path_map: Vec::new(),
        record_env: true,
        sbom_inputs: SbomInputs {
            cargo_home: None,
            target: crate::sbom::linked::host_target(),
            builder_image: None,
            started_epoch_ms: 0,
        },
    })
}

/// One host cargo run: for the host's platform, or with `cross`'s tools
/// and `--target` for another. Its messages join `messages`.
async fn run_cargo(
    prepared: &PreparedBuild,
    cross: Option<(crate::platform::Platform, super::cross::HostTools)>,
    messages: &Mutex<CargoMessages>,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<(), BuildError> {
    let facts = &prepared.facts;
    let settings = &prepared.settings;
    let program = cross
        .as_ref()
        .map_or_else(|| "cargo".into(), |(_, tools)| tools.cargo.clone());
    let mut command = tokio::process::Command::new(program);
    command
        .current_dir(&facts.crate_dir)
        .arg("build")
        .arg("--manifest-path")
        .arg(&facts.manifest_path)
        .args(["--profile", &settings.profile, "--bin", &settings.bin])
        .arg("--message-format=json")
        .env("CARGO_TERM_COLOR", "never")
        .envs(cargo_messages::PROGRESS_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !settings.features.is_empty() {
        command.arg("--features").arg(settings.features.join(","));
    }
    if let Some((platform, tools)) = &cross {
        command
            .args(["--target", platform.rust_target()])
            .envs(super::cross::cross_variables(
                *platform,
                &tools.rustc.display().to_string(),
            ));
    }
    let mut child = command
        .spawn()
        .context("Failed to run `cargo build` on the host: is cargo installed and on PATH?")?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(anyhow!("cargo's output pipes were not set up").into());
    };
    let stderr_lines = Mutex::new(Vec::<String>::new());
    let read_stdout = async {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let shown = messages
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .handle_line(&line);
            for text in shown.iter().flat_map(|text| text.lines()) {
                events(BuildEvent::Output {
                    line: text.to_owned(),
                });
            }
        }
    };
    let read_stderr = async {
        // Cargo redraws its progress line after a lone `\r`.
        let mut stderr = stderr;
        let mut on_line = |line: String| {
            if let Some(progress) = cargo_messages::parse_progress(&line) {
                events(BuildEvent::Progress {
                    task: ProgressTask::Compile {
                        crate_name: facts.name.clone(),
                    },
                    status: progress.active,
                    current: progress.current,
                    total: Some(progress.total),
                });
                return;
            }
            if line.trim().is_empty() {
                return;
            }
            stderr_lines
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(line.clone());
            events(BuildEvent::Output { line });
        };
        let _ = split_lines(&mut stderr, &mut on_line).await;
    };
    let run = async {
        let ((), (), status) = tokio::join!(read_stdout, read_stderr, child.wait());
        status
    };
    let status = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(BuildError::Cancelled),
        status = run => status.context("Failed waiting for cargo")?,
    };
    if !status.success() {
        let mut cargo_errors: Vec<String> = stderr_lines
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .into_iter()
            .filter(|line| line.starts_with("error"))
            .collect();
        if let Some((platform, _)) = &cross {
            cargo_errors.insert(
                0,
                format!(
                    "(cross-compiling for {platform}, target {}; the build for the host's own platform succeeded)",
                    platform.rust_target()
                ),
            );
        }
        let diagnostics = std::mem::take(
            &mut messages
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .diagnostics,
        );
        return Err(BuildError::Compile {
            crate_name: facts.name.clone(),
            exit_code: status.code().map(i64::from).unwrap_or(-1),
            diagnostics,
            cargo_errors,
        });
    }
    Ok(())
}

/// Reads `reader` to its end, calling `on_line` with each line ended by
/// `\n`, `\r\n` or a lone `\r` (cargo's redrawn progress line), lossily
/// decoded.
async fn split_lines(
    reader: &mut (impl AsyncRead + Unpin),
    on_line: &mut impl FnMut(String),
) -> std::io::Result<()> {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let read = reader.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        for &byte in &chunk[..read] {
            if byte == b'\n' || byte == b'\r' {
                if !pending.is_empty() {
                    on_line(String::from_utf8_lossy(&pending).into_owned());
                    pending.clear();
                }
            } else {
                pending.push(byte);
            }
        }
    }
    if !pending.is_empty() {
        on_line(String::from_utf8_lossy(&pending).into_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_end_at_newlines_and_at_lone_carriage_returns() {
        let mut input: &[u8] =
            b"   Compiling a\r\n    Building [=> ] 1/3: a\r    Building [==> ] 2/3: b\rdone";
        let mut lines = Vec::new();
        split_lines(&mut input, &mut |line| lines.push(line))
            .await
            .unwrap();
        assert_eq!(
            lines,
            [
                "   Compiling a",
                "    Building [=> ] 1/3: a",
                "    Building [==> ] 2/3: b",
                "done"
            ]
        );
        assert_eq!(
            cargo_messages::parse_progress(&lines[2]).map(|progress| progress.current),
            Some(2)
        );
    }
}
