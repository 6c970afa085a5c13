//! Which engine to talk to: Docker or podman, and at which socket.
//!
//! Pure decisions, no I/O: the ordered list of endpoints to try (from
//! `DOCKER_HOST`, the well-known sockets and `CONTAINER_HOST`), the engine
//! the user asked for (`--engine`, `ARCA_ENGINE`), recognising podman from
//! its `/version` answer, and the message when nothing answers. The probing
//! itself is [`super::docker`]'s.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Result, bail};

/// The engine's kind, as recorded in an artifact's `runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Docker,
    Podman,
}

impl EngineKind {
    /// The recorded name (`docker`, `podman`), also the status's `engine`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }

    /// The name in prose (`Docker`, `podman`).
    pub fn display(self) -> &'static str {
        match self {
            Self::Docker => "Docker",
            Self::Podman => "podman",
        }
    }

    /// Parses `docker` or `podman` (any case); anything else is an error
    /// naming `what` (the flag or variable it came from).
    pub fn parse(value: &str, what: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "docker" => Ok(Self::Docker),
            "podman" => Ok(Self::Podman),
            _ => bail!(
                "{what} is `{}`, which is not an engine: use `docker` or `podman` (or leave it unset to use whichever answers).",
                value.escape_debug()
            ),
        }
    }
}

/// What `/version` names: podman's compatible API lists a component named
/// `Podman Engine` (and says so in `Platform.Name`); Docker's does not.
pub fn kind_from_version<'a>(
    platform_name: Option<&str>,
    component_names: impl IntoIterator<Item = &'a str>,
) -> EngineKind {
    let podman = |name: &str| name.to_ascii_lowercase().contains("podman");
    if platform_name.is_some_and(podman) || component_names.into_iter().any(podman) {
        EngineKind::Podman
    } else {
        EngineKind::Docker
    }
}

static CLI_CHOICE: OnceLock<EngineKind> = OnceLock::new();

/// Records the command line's `--engine` for this process; it wins over
/// `ARCA_ENGINE`.
pub fn choose(kind: EngineKind) {
    let _ = CLI_CHOICE.set(kind);
}

/// The engine asked for: `--engine`, else `ARCA_ENGINE`, else any.
pub fn chosen() -> Result<Option<EngineKind>> {
    if let Some(kind) = CLI_CHOICE.get() {
        return Ok(Some(*kind));
    }
    match std::env::var("ARCA_ENGINE") {
        Ok(value) if !value.trim().is_empty() => EngineKind::parse(&value, "ARCA_ENGINE").map(Some),
        _ => Ok(None),
    }
}

/// The environment discovery reads, captured once (so the decision is
/// testable without touching the process environment).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub docker_host: Option<String>,
    pub container_host: Option<String>,
    pub xdg_runtime_dir: Option<PathBuf>,
}

impl Environment {
    pub fn current() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        Self {
            docker_host: var("DOCKER_HOST"),
            container_host: var("CONTAINER_HOST"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR").map(PathBuf::from),
        }
    }
}

/// The Docker socket.
pub const DOCKER_SOCKET: &str = "unix:///var/run/docker.sock";
/// Rootful podman's socket (`systemctl start podman.socket`).
pub const PODMAN_ROOTFUL_SOCKET: &str = "unix:///run/podman/podman.sock";

/// One place an engine may answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `unix:///...`, `tcp://...`, `https://...`.
    pub endpoint: String,
    /// Where it came from, for messages (`DOCKER_HOST`, `podman's rootless socket`).
    pub origin: &'static str,
    /// Named by the user (`DOCKER_HOST`, `CONTAINER_HOST`): its failure is
    /// reported as such, and it is tried even when it is not a local socket.
    pub explicit: bool,
}

impl Candidate {
    /// The socket file of a `unix://` endpoint.
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.endpoint.strip_prefix("unix://").map(PathBuf::from)
    }
}

/// Where to look, in order. `DOCKER_HOST` alone when set (the user named
/// the engine). Otherwise the Docker socket, podman's rootful socket, its
/// rootless one (`$XDG_RUNTIME_DIR/podman/podman.sock`), then
/// `CONTAINER_HOST`; only the chosen kind's places when one was chosen.
pub fn candidates(env: &Environment, chosen: Option<EngineKind>) -> Vec<Candidate> {
    if let Some(host) = &env.docker_host {
        return vec![Candidate {
            endpoint: host.clone(),
            origin: "DOCKER_HOST",
            explicit: true,
        }];
    }
    let mut list = Vec::new();
    if chosen != Some(EngineKind::Podman) {
        list.push(Candidate {
            endpoint: DOCKER_SOCKET.to_owned(),
            origin: "the Docker socket",
            explicit: false,
        });
    }
    if chosen != Some(EngineKind::Docker) {
        list.push(Candidate {
            endpoint: PODMAN_ROOTFUL_SOCKET.to_owned(),
            origin: "podman's rootful socket",
            explicit: false,
        });
        if let Some(dir) = &env.xdg_runtime_dir {
            list.push(Candidate {
                endpoint: format!("unix://{}", dir.join("podman/podman.sock").display()),
                origin: "podman's rootless socket",
                explicit: false,
            });
        }
        if let Some(host) = &env.container_host {
            list.push(Candidate {
                endpoint: host.clone(),
                origin: "CONTAINER_HOST",
                explicit: true,
            });
        }
    }
    list.dedup_by(|later, earlier| later.endpoint == earlier.endpoint);
    list
}

/// How to start an engine, for messages.
pub fn how_to_start(chosen: Option<EngineKind>) -> &'static str {
    match chosen {
        Some(EngineKind::Docker) => {
            "Start Docker (e.g. `sudo systemctl start docker`) or set DOCKER_HOST."
        }
        Some(EngineKind::Podman) => {
            "Start podman's API service (`systemctl --user start podman.socket`, or `podman system service --time=0 &`) or set DOCKER_HOST (or CONTAINER_HOST) to its socket."
        }
        None => {
            "Start Docker (e.g. `sudo systemctl start docker`) or podman's API service (`systemctl --user start podman.socket`, or `podman system service --time=0 &`), or set DOCKER_HOST."
        }
    }
}

/// The one message when no candidate answered: each place tried and why it
/// failed, then how to start an engine.
pub fn nothing_answered(tried: &[(Candidate, String)], chosen: Option<EngineKind>) -> String {
    let engine = match chosen {
        Some(EngineKind::Podman) => "the podman engine",
        // `DOCKER_HOST` speaks the Docker API whichever engine serves it.
        _ => "the Docker engine",
    };
    match tried {
        [(candidate, detail)] => format!(
            "Cannot reach {engine} at {}: {detail}. {}",
            candidate.endpoint,
            how_to_start(chosen)
        ),
        _ => {
            let places: Vec<String> = tried
                .iter()
                .map(|(candidate, detail)| {
                    format!("{} ({}): {detail}", candidate.endpoint, candidate.origin)
                })
                .collect();
            let engine = match chosen {
                Some(kind) => format!("a {} engine", kind.display()),
                None => "a container engine".to_owned(),
            };
            format!(
                "Cannot reach {engine}; tried {}. {}",
                places.join("; "),
                how_to_start(chosen)
            )
        }
    }
}

/// The message when the engine that answered is not the one asked for.
pub fn wrong_kind(endpoint: &str, found: EngineKind, chosen: EngineKind) -> String {
    format!(
        "The engine at {endpoint} is {}, but {} was asked for (--engine or ARCA_ENGINE). Point DOCKER_HOST at a {} socket, or ask for {}.",
        found.display(),
        chosen.display(),
        chosen.display(),
        found.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(list: &[Candidate]) -> Vec<&str> {
        list.iter().map(|c| c.endpoint.as_str()).collect()
    }

    #[test]
    fn docker_host_alone_is_tried_when_set() {
        let env = Environment {
            docker_host: Some("tcp://10.0.0.1:2375".into()),
            container_host: Some("unix:///x.sock".into()),
            xdg_runtime_dir: Some("/run/user/1000".into()),
        };
        let list = candidates(&env, None);
        assert_eq!(endpoints(&list), ["tcp://10.0.0.1:2375"]);
        assert!(list[0].explicit);
    }

    #[test]
    fn without_docker_host_docker_then_podman_rootful_rootless_and_container_host() {
        let env = Environment {
            docker_host: None,
            container_host: Some("unix:///srv/podman.sock".into()),
            xdg_runtime_dir: Some("/run/user/1000".into()),
        };
        assert_eq!(
            endpoints(&candidates(&env, None)),
            [
                "unix:///var/run/docker.sock",
                "unix:///run/podman/podman.sock",
                "unix:///run/user/1000/podman/podman.sock",
                "unix:///srv/podman.sock"
            ]
        );
        assert_eq!(
            endpoints(&candidates(&env, Some(EngineKind::Docker))),
            ["unix:///var/run/docker.sock"]
        );
        assert_eq!(
            endpoints(&candidates(&env, Some(EngineKind::Podman))),
            [
                "unix:///run/podman/podman.sock",
                "unix:///run/user/1000/podman/podman.sock",
                "unix:///srv/podman.sock"
            ]
        );
        let bare = Environment::default();
        assert_eq!(
            endpoints(&candidates(&bare, Some(EngineKind::Podman))),
            ["unix:///run/podman/podman.sock"]
        );
    }

    #[test]
    fn podman_is_recognised_from_its_version_answer() {
        assert_eq!(
            kind_from_version(Some("linux/amd64/debian-12"), ["Podman Engine"]),
            EngineKind::Podman
        );
        assert_eq!(
            kind_from_version(Some("Docker Engine - Community"), ["Engine", "containerd"]),
            EngineKind::Docker
        );
        assert_eq!(kind_from_version(None, []), EngineKind::Docker);
    }

    #[test]
    fn engine_names_parse_and_bad_ones_say_what_to_use() {
        assert_eq!(
            EngineKind::parse(" Podman ", "--engine").unwrap(),
            EngineKind::Podman
        );
        let error = EngineKind::parse("containerd", "ARCA_ENGINE")
            .unwrap_err()
            .to_string();
        assert!(error.contains("ARCA_ENGINE is `containerd`"), "{error}");
        assert!(error.contains("`docker` or `podman`"), "{error}");
    }

    #[test]
    fn the_message_lists_every_place_tried_and_how_to_start_either_engine() {
        let tried: Vec<_> = candidates(&Environment::default(), None)
            .into_iter()
            .map(|candidate| (candidate, "no socket".to_owned()))
            .collect();
        let message = nothing_answered(&tried, None);
        assert!(message.starts_with("Cannot reach a container engine; tried unix:///var/run/docker.sock (the Docker socket): no socket; unix:///run/podman/podman.sock"), "{message}");
        assert!(
            message.contains("systemctl --user start podman.socket"),
            "{message}"
        );
        assert!(message.contains("podman system service"), "{message}");
        assert!(message.contains("sudo systemctl start docker"), "{message}");
        let single = nothing_answered(&tried[..1], None);
        assert!(
            single.starts_with(
                "Cannot reach the Docker engine at unix:///var/run/docker.sock: no socket. "
            ),
            "{single}"
        );
    }
}
