//! The containerized cargo build: builder base image, cached builder image,
//! and `cargo build` in a container of it.
//!
//! Local engine: the source hierarchy is bind-mounted read-only at
//! `/work/source`; the per-builder target cache
//! (`$ARCA_HOME/cache/rust/builds/<key>`) and the shared cargo home
//! (`$ARCA_HOME/cache/rust/cargo-home`) are bind-mounted writable; cargo
//! runs as the host `uid:gid` (as `0:0` on a rootless engine, whose root is
//! the host user). Nothing from `~/.cargo` is copied anywhere.
//!
//! Remote engine (`DOCKER_HOST=tcp://...`): bind mounts cannot reach it, so
//! the source hierarchy is shipped as a tar archive into the container
//! before it starts, the caches live in named volumes
//! (`arca-cache-<key>`, `arca-cache-cargo-home`), cargo runs as the image's
//! user (root; the volumes are root-owned), and the binary is copied out.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

use super::cargo_messages::{self, CargoMessages};
use super::job::{
    BuildEnv, BuildError, BuildEvent, CACHE_LABEL, CRATE_DIR_LABEL, Compiled, EventSink,
    PreparedBuild, ProgressTask, SbomInputs, cancellable, features_suffix,
};
use super::recipes;
use super::source::{self, CONTAINER_SOURCE_ROOT};
use super::{cross, network, session};
use crate::engine::tar_context::TarContext;
use crate::engine::{
    BUILD_LABEL, ContainerEngine, ContainerSpec, MountSource, MountSpec, OutputLine, Stream,
};
use crate::plan;
use crate::workspace::SKIPPED_DIR_NAMES;

const CONTAINER_CACHE_ROOT: &str = "/work/cache";
const CONTAINER_CARGO_HOME: &str = "/work/cargo-home";
const CARGO_HOME_VOLUME: &str = "arca-cache-cargo-home";
/// Keeps this many of cargo's last stderr lines for the error message.
const STDERR_TAIL: usize = 20;

pub(super) async fn build(
    env: &BuildEnv,
    engine: &Arc<dyn ContainerEngine>,
    prepared: &PreparedBuild,
    build_id: &str,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<Compiled, BuildError> {
    let settings = &prepared.settings;
    let facts = &prepared.facts;

    events(BuildEvent::Stage {
        title: "Ensuring builder base image".into(),
        detail: format!(
            "builder {} · runtime {} · {} at {}",
            prepared.builder_base_image,
            settings.base_image,
            engine.runtime_name(),
            engine.endpoint()
        ),
    });
    let pulled = ensure_image(
        engine.as_ref(),
        &prepared.builder_base_image,
        events,
        cancel,
    )
    .await?;
    events(BuildEvent::StageDone {
        message: if pulled {
            "Builder base image pulled.".into()
        } else {
            "Builder base image cache hit.".into()
        },
    });

    events(BuildEvent::Stage {
        title: "Preparing cached builder image".into(),
        detail: prepared.builder_image_tag.clone(),
    });
    let built = ensure_builder_image(engine.as_ref(), prepared, events, cancel).await?;
    events(BuildEvent::StageDone {
        message: if built {
            "Builder image prepared.".into()
        } else {
            "Builder image cache hit.".into()
        },
    });

    events(BuildEvent::Stage {
        title: "Building crate inside the builder container".into(),
        detail: format!(
            "{} · profile {}{}",
            facts.name,
            settings.profile,
            features_suffix(&settings.features)
        ),
    });
    let source_root = source::source_root(
        &facts.workspace_root,
        &facts.crate_dir,
        &facts.local_package_dirs,
        dirs::home_dir().as_deref(),
    )?;
    let cache_key = build_cache_key(prepared);
    let remote = engine.is_remote();
    let container_manifest = source::container_path(&source_root, &facts.manifest_path)?;
    let container_crate_dir = source::container_path(&source_root, &facts.crate_dir)?;
    let host_cache = env.rust_cache().join("builds").join(&cache_key);
    let crate_dir_label = facts.crate_dir.display().to_string();
    let mut labels = vec![
        (BUILD_LABEL.to_owned(), build_id.to_owned()),
        (CRATE_DIR_LABEL.to_owned(), crate_dir_label.clone()),
    ];
    labels.sort();

    let ca_bundle = network::host_ca_bundle();
    let has_ca = ca_bundle.is_some();
    super::cache_usage::mark_used(env.rust_cache(), &host_cache, &prepared.builder_image_tag);
    let mut host_cargo_home = None;
    let (mounts, user, upload) = if remote {
        let target_volume = format!("arca-cache-{}", &cache_key[..32]);
        let volume_labels = vec![
            (CACHE_LABEL.to_owned(), "build".to_owned()),
            (CRATE_DIR_LABEL.to_owned(), crate_dir_label.clone()),
        ];
        cancellable(cancel, engine.ensure_volume(&target_volume, &volume_labels)).await?;
        cancellable(
            cancel,
            engine.ensure_volume(
                CARGO_HOME_VOLUME,
                &[(CACHE_LABEL.to_owned(), "cargo-home".to_owned())],
            ),
        )
        .await?;
        let tar = source_archive(&source_root, ca_bundle.as_deref()).await?;
        (
            vec![
                MountSpec {
                    source: MountSource::Volume(target_volume),
                    target: CONTAINER_CACHE_ROOT.into(),
                    read_only: false,
                },
                MountSpec {
                    source: MountSource::Volume(CARGO_HOME_VOLUME.into()),
                    target: CONTAINER_CARGO_HOME.into(),
                    read_only: false,
                },
            ],
            None,
            Some(tar),
        )
    } else {
        let cargo_home = env.rust_cache().join("cargo-home");
        for dir in [
            host_cache.join("home"),
            host_cache.join("target"),
            cargo_home.join("registry"),
            cargo_home.join("git"),
        ] {
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("Failed to create the cache directory {}", dir.display())
            })?;
        }
        // The engine mounts real directories: resolve a symlinked cache
        // (e.g. a cargo home shared across ARCA_HOMEs).
        let cargo_home = cargo_home.canonicalize().unwrap_or(cargo_home);
        host_cargo_home = Some(cargo_home.clone());
        (
            vec![
                MountSpec {
                    source: MountSource::HostPath(source_root.clone()),
                    target: CONTAINER_SOURCE_ROOT.into(),
                    read_only: true,
                },
                MountSpec {
                    source: MountSource::HostPath(host_cache.clone()),
                    target: CONTAINER_CACHE_ROOT.into(),
                    read_only: false,
                },
                MountSpec {
                    source: MountSource::HostPath(cargo_home),
                    target: CONTAINER_CARGO_HOME.into(),
                    read_only: false,
                },
            ]
            .into_iter()
            .chain(ca_bundle.map(|bundle| MountSpec {
                source: MountSource::HostPath(bundle),
                target: network::CONTAINER_CA_PATH.into(),
                read_only: true,
            }))
            .collect(),
            Some(build_user(engine.as_ref())),
            None,
        )
    };

    let spec = ContainerSpec {
        image: prepared.builder_image_tag.clone(),
        entrypoint: None,
        cmd: cross::container_command(
            &cargo_command(&container_manifest, prepared),
            &prepared.extras.shape.cross,
        ),
        env: build_env(prepared, has_ca),
        working_dir: Some(container_crate_dir),
        user,
        mounts,
        labels,
        name: None,
        auto_remove: false,
    };
    // A session runs one builder image: another one (packages, toolchain
    // or cross targets changed) gets a session of its own.
    let session_name = format!(
        "arca-session-{}",
        &plan::length_prefixed_hash(&[
            cache_key.clone(),
            host_cache.display().to_string(),
            source_root.display().to_string(),
            prepared.builder_image_tag.clone(),
        ])[..24]
    );

    let messages = Mutex::new(CargoMessages::new(&source_root, &facts.workspace_root));
    let stderr_tail = Mutex::new(Vec::<String>::new());
    let cross_platform = Mutex::new(None::<crate::platform::Platform>);
    let on_line = |line: OutputLine| {
        let shown = match line.stream {
            Stream::Stdout => lock(&messages).handle_line(&line.text),
            Stream::Stderr => {
                if let Some(platform) = cross::marker_platform(&line.text) {
                    *lock(&cross_platform) = Some(platform);
                    lock(&stderr_tail).clear();
                }
                if let Some(progress) = cargo_messages::parse_progress(&line.text) {
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
                // Blank lines, and cargo's redrawn `Downloading N crates`
                // counter (padded with spaces), are not worth a line each.
                if line.text.trim().is_empty()
                    || (line.text.trim_start().starts_with("Downloading ")
                        && line.text.ends_with("  "))
                {
                    return;
                }
                let mut tail = lock(&stderr_tail);
                if tail.len() == STDERR_TAIL {
                    tail.remove(0);
                }
                tail.push(line.text.clone());
                Some(line.text)
            }
        };
        if let Some(text) = shown {
            for line in text.lines() {
                events(BuildEvent::Output {
                    line: line.to_owned(),
                });
            }
        }
    };

    // Local engine: cargo runs in the crate's warm session (see `session`);
    // remote engine, or no session possible: in a container of its own.
    let in_session = if remote || !sessions_enabled() {
        None
    } else {
        session::run(engine, &spec, &session_name, &on_line, cancel).await?
    };
    let (exit_code, container) = match in_session {
        Some(code) => (code, None),
        None => {
            // Forget anything a lost session printed: cargo runs again.
            *lock(&messages) = CargoMessages::new(&source_root, &facts.workspace_root);
            *lock(&cross_platform) = None;
            let container = ContainerRun::create(engine.clone(), &spec, cancel).await?;
            let upload = upload.map(|tar| ("/".to_owned(), tar));
            match container.run(upload, &on_line, cancel).await {
                Ok(code) => (code, Some(container)),
                Err(error) => {
                    container.remove().await;
                    return Err(error);
                }
            }
        }
    };
    let mut messages = messages
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let diagnostics = messages.take_unique_diagnostics();
    if exit_code != 0 {
        if let Some(container) = &container {
            container.remove().await;
        }
        let mut cargo_errors = cargo_error_lines(
            stderr_tail
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if let Some(platform) = *lock(&cross_platform) {
            cargo_errors.insert(
                0,
                format!(
                    "(cross-compiling for {platform}, target {}; the build for the builder's own platform succeeded)",
                    platform.rust_target()
                ),
            );
        }
        return Err(BuildError::Compile {
            crate_name: facts.name.clone(),
            exit_code,
            diagnostics,
            cargo_errors,
        });
    }

    let profile_dir = plan::profile_output_dir(&settings.profile);
    let path_map = vec![(PathBuf::from(CONTAINER_SOURCE_ROOT), source_root.clone())];
    let (binary, target_dir) = match &container {
        Some(container) if remote => {
            let copied = copy_outputs(
                engine.as_ref(),
                container.id(),
                &host_cache,
                prepared,
                cancel,
            )
            .await;
            container.remove().await;
            copied?
        }
        _ => {
            if let Some(container) = &container {
                container.remove().await;
            }
            let target_dir = host_cache.join("target");
            (target_dir.join(profile_dir).join(&settings.bin), target_dir)
        }
    };
    if !binary.is_file() {
        return Err(anyhow!(
            "The container build finished but the binary is missing: {}",
            binary.display()
        )
        .into());
    }
    events(BuildEvent::StageDone {
        message: format!("Containerized cargo build finished for `{}`.", facts.name),
    });
    let cross = prepared
        .extras
        .shape
        .cross
        .iter()
        .map(|&platform| cross::CrossBinary {
            platform,
            binary: cross::binary_path(&target_dir, platform, &settings.profile, &settings.bin),
        })
        .collect::<Vec<_>>();
    if let Some(missing) = cross.iter().find(|built| !built.binary.is_file()) {
        return Err(anyhow!(
            "The cross build for {} finished but the binary is missing: {}",
            missing.platform,
            missing.binary.display()
        )
        .into());
    }
    let builder_id = cancellable(cancel, engine.inspect_image(&prepared.builder_image_tag))
        .await?
        .map(|image| image.id)
        .unwrap_or_default();
    let target = crate::sbom::linked::target_of(&target_dir)
        .unwrap_or_else(crate::sbom::linked::host_target);
    Ok(Compiled {
        binary,
        cross,
        diagnostics,
        target_dir,
        path_map,
        record_env: false,
        sbom_inputs: SbomInputs {
            cargo_home: host_cargo_home,
            target,
            builder_image: Some((prepared.builder_image_tag.clone(), builder_id)),
            started_epoch_ms: 0,
        },
    })
}

/// Copies what a remote build left in its target volume and the manifest
/// needs (the binary, `<bin>.d`, build scripts' `output` files) into
/// `<cache>/remote-out/target`. Returns the binary and that target dir.
async fn copy_outputs(
    engine: &dyn ContainerEngine,
    container: &str,
    host_cache: &Path,
    prepared: &PreparedBuild,
    cancel: &CancellationToken,
) -> Result<(PathBuf, PathBuf), BuildError> {
    let bin = &prepared.settings.bin;
    let profile_dir = plan::profile_output_dir(&prepared.settings.profile);
    let container_dir = format!("{CONTAINER_CACHE_ROOT}/target/{profile_dir}");
    let target_dir = host_cache.join("remote-out").join("target");
    let host_dir = target_dir.join(profile_dir);
    if target_dir.exists() {
        std::fs::remove_dir_all(&target_dir)
            .with_context(|| format!("Failed to clear {}", target_dir.display()))?;
    }
    std::fs::create_dir_all(&host_dir)
        .with_context(|| format!("Failed to create {}", host_dir.display()))?;
    let mut files: Vec<(String, PathBuf)> = [bin.clone(), format!("{bin}.d")]
        .into_iter()
        .map(|name| (format!("{container_dir}/{name}"), host_dir.join(name)))
        .collect();
    for &platform in &prepared.extras.shape.cross {
        let relative = cross::binary_path(Path::new(""), platform, &prepared.settings.profile, bin);
        files.push((
            format!("{CONTAINER_CACHE_ROOT}/target/{}", relative.display()),
            target_dir.join(relative),
        ));
    }
    for (path, dest) in files {
        let bytes = cancellable(cancel, engine.read_file(container, &path))
            .await?
            .ok_or_else(|| anyhow!("The build finished but {path} is missing in the container."))?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("Failed to create {}", parent.display()))?;
        }
        std::fs::write(&dest, bytes)
            .with_context(|| format!("Failed to write {}", dest.display()))?;
    }
    let build_dir = format!("{container_dir}/build");
    if let Some(archive) =
        cancellable(cancel, engine.download_archive(container, &build_dir)).await?
    {
        extract_build_outputs(&archive, &host_dir)?;
    }
    Ok((host_dir.join(bin), target_dir))
}

/// Extracts the `build/<pkg>/output` files of a tar archive of a profile's
/// `build` directory under `dest` (refusing any path that leaves it).
fn extract_build_outputs(archive: &[u8], dest: &Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(archive);
    for entry in archive
        .entries()
        .context("Unreadable build-output archive")?
    {
        let mut entry = entry.context("Unreadable build-output archive")?;
        let path = entry
            .path()
            .context("Unreadable build-output archive")?
            .into_owned();
        let plain = path
            .components()
            .all(|component| matches!(component, std::path::Component::Normal(_)));
        if !plain || path.file_name().is_none_or(|name| name != "output") {
            continue;
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let target = dest.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("Failed to create {}", parent.display()))?;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("Failed to write {}", target.display()))?;
    }
    Ok(())
}

/// Warm sessions are on unless `ARCA_BUILD_SESSIONS=0` (then every build
/// runs in a container of its own and nothing outlives a build).
fn sessions_enabled() -> bool {
    std::env::var("ARCA_BUILD_SESSIONS").map_or(true, |value| value.trim() != "0")
}

/// Makes sure the engine has `image`, pulling it with per-layer progress;
/// returns whether it was pulled.
pub(super) async fn ensure_image(
    engine: &dyn ContainerEngine,
    image: &str,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<bool, BuildError> {
    if cancellable(cancel, engine.inspect_image(image))
        .await?
        .is_some()
    {
        return Ok(false);
    }
    events(BuildEvent::Notice {
        message: format!("Pulling {image}"),
    });
    let progress = |update: crate::engine::PullProgress| {
        events(BuildEvent::Progress {
            task: ProgressTask::Pull {
                image: image.to_owned(),
                layer: update.layer,
            },
            status: update.status,
            current: update.current.unwrap_or(0),
            total: update.total,
        })
    };
    cancellable(cancel, engine.pull_image(image, &progress)).await?;
    Ok(true)
}

pub(super) async fn ensure_builder_image(
    engine: &dyn ContainerEngine,
    prepared: &PreparedBuild,
    events: EventSink<'_>,
    cancel: &CancellationToken,
) -> Result<bool, BuildError> {
    let tag = &prepared.builder_image_tag;
    if cancellable(cancel, engine.inspect_image(tag))
        .await?
        .is_some()
    {
        return Ok(false);
    }
    // An unreadable bundle only costs the recipe the host's extra CAs.
    let ca_bundle = network::host_ca_bundle()
        .and_then(|path| match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                tracing::warn!("host CA bundle {} unreadable: {error}", path.display());
                None
            }
        })
        .unwrap_or_default();
    let mut context = TarContext::new();
    context.add_file(
        "Containerfile",
        recipes::builder_containerfile(&prepared.builder_base_image, &prepared.extras.shape)
            .as_bytes(),
        0o644,
    )?;
    context.add_file(
        recipes::BUILDER_SCRIPT_NAME,
        recipes::BUILDER_SCRIPT.as_bytes(),
        0o755,
    )?;
    context.add_file(network::RECIPE_CA_CONTEXT_NAME, &ca_bundle, 0o644)?;
    let context = context.finish()?;
    let failed_step = Mutex::new(None::<String>);
    let output = |line: OutputLine| {
        if let Some(step) = failed_recipe_step(&line.text) {
            *lock(&failed_step) = Some(step);
        }
        events(BuildEvent::Output { line: line.text })
    };
    let build_args = network::proxy_env(prepared.extras.proxy);
    let result = cancellable(
        cancel,
        engine.build_image_with_args(tag, context, &build_args, &output),
    )
    .await;
    if let Err(error) = result {
        // Nothing of a failed recipe may be reused.
        let _ = engine.remove_image(tag).await;
        return Err(match error {
            BuildError::Failed(error) => {
                // The engine's message repeats the whole RUN line; the
                // recipe names its failed step, and its output is above.
                tracing::debug!("builder image build failed: {error:#}");
                let step = lock(&failed_step)
                    .take()
                    .unwrap_or_else(|| "the image build".to_owned());
                BuildError::Failed(anyhow!(
                    "The builder recipe for `{}` failed at step: {step} (its output is above); no builder image was tagged. {}",
                    prepared.builder_base_image,
                    recipe_hint(&step, prepared)
                ))
            }
            other => other,
        });
    }
    Ok(true)
}

/// The step named by a recipe line `arca: builder step '<step>' failed ...`.
fn failed_recipe_step(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("arca: builder step '")?;
    let end = rest.rfind("' failed")?;
    Some(rest[..end].to_owned())
}

/// What to do about a failed recipe step.
fn recipe_hint(step: &str, prepared: &PreparedBuild) -> String {
    if let Some(pinned) = &prepared.extras.shape.toolchain
        && (step.contains("toolchain") || (step.contains("rustup") && !step.contains("target add")))
    {
        return format!(
            "The Rust toolchain `{}` pinned by {} is not in the builder and could not be installed: \
             rustup needs network access to static.rust-lang.org. Use a base image that has this \
             toolchain, or pin one the builder has (`cargo --version` in it).",
            pinned.name, pinned.source
        );
    }
    if let Some(target) = step.strip_prefix("the Rust standard library for ") {
        return format!(
            "The builder has no Rust standard library for {target} and no rustup to add it. Use a builder whose toolchain has it (rustup: `rustup target add {target}`, which needs network access to static.rust-lang.org; Debian: a `rustc` with `libstd-rust-dev` of that architecture), or drop the platform from `[rust] platforms`."
        );
    }
    if let Some(target) = step.strip_prefix("rustup target add ") {
        return format!(
            "rustup could not add the target {target}: it needs network access to static.rust-lang.org. Use a builder image that has it installed, or drop the platform from `[rust] platforms`."
        );
    }
    if step.starts_with("install the C cross compiler") {
        return "The builder's package manager could not install the C cross compiler named above: check that its package mirror is reachable, or use a builder image that has it.".to_owned();
    }
    if step.starts_with("install packages") {
        return "Check the names in `[rust] packages` (they are the base image's package names) and that its package mirror is reachable.".to_owned();
    }
    if step.starts_with("install build tools") || step.starts_with("download rustup") {
        return "Use a base image that has cargo, or one with apt-get, dnf, microdnf or apk and network access.".to_owned();
    }
    String::new()
}

/// `arca-rust-build-cache-v2` key: one target cache per crate, binary,
/// profile, features and builder base (the original's key).
fn build_cache_key(prepared: &PreparedBuild) -> String {
    let mut features = prepared.settings.features.clone();
    features.sort();
    features.dedup();
    plan::length_prefixed_hash(&[
        "arca-rust-build-cache-v2".to_owned(),
        prepared.facts.manifest_path.display().to_string(),
        prepared.facts.name.clone(),
        prepared.settings.bin.clone(),
        prepared.settings.profile.clone(),
        features.join(","),
        prepared.builder_base_image.clone(),
    ])
}

/// `cargo build --locked ...` as run in the container. `--message-format=json`
/// rather than `json-render-diagnostics`: see [`super::cargo_messages`].
fn cargo_command(container_manifest: &str, prepared: &PreparedBuild) -> Vec<String> {
    let settings = &prepared.settings;
    let mut command: Vec<String> = [
        "cargo",
        "build",
        "--locked",
        "--manifest-path",
        container_manifest,
        "--profile",
        &settings.profile,
        "--bin",
        &settings.bin,
        "--message-format=json",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    if !settings.features.is_empty() {
        command.push("--features".into());
        command.push(settings.features.join(","));
    }
    command
}

/// The cargo build's environment: Arca's own variables, the CA bundle's
/// names (when the host has one), the host's proxies (unless
/// `proxy = false`), then `[rust] env`.
fn build_env(prepared: &PreparedBuild, has_ca: bool) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), format!("{CONTAINER_CACHE_ROOT}/home")),
        ("CARGO_HOME".into(), CONTAINER_CARGO_HOME.into()),
        (
            "CARGO_TARGET_DIR".into(),
            format!("{CONTAINER_CACHE_ROOT}/target"),
        ),
        ("CARGO_TERM_COLOR".into(), "never".into()),
    ];
    env.extend(
        cargo_messages::PROGRESS_ENV
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    if has_ca {
        env.extend(network::ca_env(network::CONTAINER_CA_PATH));
    }
    env.extend(network::proxy_env(prepared.extras.proxy));
    if let Some(pinned) = &prepared.extras.shape.toolchain
        && pinned.source.starts_with('`')
    {
        // `[rust] toolchain` wins over a rust-toolchain.toml, as the
        // variable does for a rustup-managed cargo (others ignore it).
        env.push(("RUSTUP_TOOLCHAIN".into(), pinned.name.clone()));
    }
    env.extend(prepared.extras.env.iter().cloned());
    env
}

async fn source_archive(
    source_root: &Path,
    ca_bundle: Option<&Path>,
) -> Result<Vec<u8>, BuildError> {
    let root = source_root.to_path_buf();
    let ca = match ca_bundle {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("Failed to read the host CA bundle {}", path.display()))?,
        ),
        None => None,
    };
    let archive = tokio::task::spawn_blocking(move || {
        let mut context = TarContext::new();
        context.add_dir("work", 0o755)?;
        if let Some(ca) = ca {
            context.add_file("work/host-ca.crt", &ca, 0o644)?;
        }
        context.add_tree(&root, "work/source", &SKIPPED_DIR_NAMES)?;
        context.finish()
    })
    .await
    .map_err(|error| anyhow!("Packing the source failed: {error}"))??;
    Ok(archive)
}

/// Who cargo runs as on a local engine, so what it writes to the bind
/// mounted caches belongs to the invoking user: the host `uid:gid` on a
/// rootful engine; `0:0` on a rootless one (rootless podman, rootless
/// Docker), whose container root *is* the invoking user, while any other
/// container uid maps to a subordinate id the user does not own.
fn build_user(engine: &dyn crate::engine::ContainerEngine) -> String {
    if engine.is_rootless() {
        "0:0".to_owned()
    } else {
        host_user()
    }
}

fn host_user() -> String {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    format!("{uid}:{gid}")
}

fn cargo_error_lines(tail: Vec<String>) -> Vec<String> {
    let errors: Vec<String> = tail
        .iter()
        .skip_while(|line| !line.starts_with("error"))
        .cloned()
        .collect();
    if errors.is_empty() { tail } else { errors }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A created container that is removed even if the build future is dropped
/// without cancellation (best effort, on the runtime's background tasks).
pub(super) struct ContainerRun {
    engine: Arc<dyn ContainerEngine>,
    id: String,
    removed: std::sync::atomic::AtomicBool,
}

impl ContainerRun {
    pub(super) async fn create(
        engine: Arc<dyn ContainerEngine>,
        spec: &ContainerSpec,
        cancel: &CancellationToken,
    ) -> Result<Self, BuildError> {
        let id = cancellable(cancel, engine.create_container(spec)).await?;
        Ok(Self {
            engine,
            id,
            removed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Uploads, starts, streams output and waits; returns the exit code.
    /// On cancellation the container is killed (the caller removes it).
    pub(super) async fn run(
        &self,
        upload: Option<(String, Vec<u8>)>,
        output: crate::engine::LineSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<i64, BuildError> {
        let engine = self.engine.as_ref();
        let id = self.id.as_str();
        let work = async {
            if let Some((dest, tar)) = upload {
                engine.upload_tar(id, &dest, tar).await?;
            }
            engine.start_container(id).await?;
            crate::engine::output_until_exit(engine, id, output).await
        };
        let result = cancellable(cancel, work).await;
        if result.is_err() {
            let _ = engine.kill_container(id).await;
        }
        result
    }

    /// Kills and removes the container.
    pub(super) async fn remove(&self) {
        let _ = self.engine.remove_container(&self.id).await;
        self.removed
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for ContainerRun {
    fn drop(&mut self) {
        if self.removed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let engine = self.engine.clone();
            let id = std::mem::take(&mut self.id);
            handle.spawn(async move {
                let _ = engine.remove_container(&id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_build_script_outputs_are_extracted() {
        let mut context = TarContext::new();
        context.add_dir("build", 0o755).unwrap();
        context
            .add_file("build/pkg-1/output", b"cargo:rerun-if-changed=x\n", 0o644)
            .unwrap();
        context
            .add_file("build/pkg-1/build-script-build", b"ELF", 0o755)
            .unwrap();
        let archive = context.finish().unwrap();
        let dest = tempfile::tempdir().unwrap();
        extract_build_outputs(&archive, dest.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.path().join("build/pkg-1/output")).unwrap(),
            "cargo:rerun-if-changed=x\n"
        );
        assert!(!dest.path().join("build/pkg-1/build-script-build").exists());
    }

    fn prepared(extras: plan::BuildExtras) -> PreparedBuild {
        PreparedBuild {
            facts: crate::workspace::test_facts(&["demo"], &[]),
            settings: plan::BuildSettings {
                profile: "release".into(),
                features: Vec::new(),
                bin: "demo".into(),
                base_image: "debian:12".into(),
            },
            host_build: false,
            builder_base_image: "debian:12".into(),
            builder_image_tag: "arca-builder:ab".into(),
            mode: "container:k".into(),
            extras,
        }
    }

    #[test]
    fn the_build_env_names_the_ca_then_proxies_then_the_users_variables() {
        let extras = plan::BuildExtras {
            env: vec![("RUSTFLAGS".into(), "-g".into())],
            shape: plan::BuilderShape {
                packages: Vec::new(),
                toolchain: Some(plan::PinnedToolchain {
                    name: "1.95".into(),
                    source: "`[rust] toolchain` in .arca/config.toml".into(),
                }),
                cross: Vec::new(),
            },
            ..Default::default()
        };
        let env = build_env(&prepared(extras.clone()), true);
        let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
        let position = |name: &str| names.iter().position(|known| *known == name).unwrap();
        assert!(position("CARGO_HTTP_CAINFO") < position("RUSTUP_TOOLCHAIN"));
        assert!(position("RUSTUP_TOOLCHAIN") < position("RUSTFLAGS"));
        assert!(env.contains(&("SSL_CERT_FILE".into(), network::CONTAINER_CA_PATH.into())));
        assert!(env.contains(&("CARGO_TERM_PROGRESS_WHEN".into(), "always".into())));
        let without_ca = build_env(&prepared(extras), false);
        assert!(
            !without_ca
                .iter()
                .any(|(name, _)| name == "CARGO_HTTP_CAINFO")
        );
        // A toolchain pinned by a file is left to rustup reading the file.
        let mut by_file = plan::BuildExtras::default();
        by_file.shape.toolchain = Some(plan::PinnedToolchain {
            name: "1.95".into(),
            source: "/w/rust-toolchain.toml".into(),
        });
        assert!(
            !build_env(&prepared(by_file), true)
                .iter()
                .any(|(name, _)| name == "RUSTUP_TOOLCHAIN")
        );
    }

    #[test]
    fn a_failed_recipe_step_is_read_from_its_line() {
        assert_eq!(
            failed_recipe_step("arca: builder step 'install packages: make' failed (exit 100)"),
            Some("install packages: make".to_owned())
        );
        assert_eq!(
            failed_recipe_step(crate::pipeline::recipes::CARGO_CHECK_FAILED),
            Some("cargo --version (final check)".to_owned())
        );
        assert_eq!(failed_recipe_step("E: Unable to locate package nope"), None);
    }

    #[test]
    fn cargo_errors_keep_the_lines_from_the_first_error() {
        let tail = vec![
            "    Updating crates.io index".to_owned(),
            "error: the lock file needs to be updated but --locked was passed".to_owned(),
            "help: run without --locked".to_owned(),
        ];
        assert_eq!(cargo_error_lines(tail.clone()), tail[1..].to_vec());
        let plain = vec!["something".to_owned()];
        assert_eq!(cargo_error_lines(plain.clone()), plain);
    }
}
