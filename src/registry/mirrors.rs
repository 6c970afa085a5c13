//! Docker Hub's mirrors: where a Docker Hub name (`debian:12`,
//! `nvidia/cuda:12.8.1-base-ubuntu24.04`) is read from when Arca itself
//! fetches it (a platform the engine does not hold). The engine's own
//! `registry-mirrors` (`/etc/docker/daemon.json`), or `ARCA_REGISTRY_MIRRORS`
//! (`host[:port]` or URLs, comma-separated), which wins; Docker Hub itself
//! comes last, as the engine tries them.

use super::destination::{DOCKER_HUB, Destination};

/// The daemon configuration read for its `registry-mirrors`.
const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// Each mirror's `host[:port]`, in order.
pub fn mirrors() -> Vec<String> {
    let listed: Vec<String> = match std::env::var("ARCA_REGISTRY_MIRRORS") {
        Ok(list) => list.split(',').map(str::to_owned).collect(),
        Err(_) => daemon_mirrors(),
    };
    listed.iter().filter_map(|entry| host_of(entry)).collect()
}

fn daemon_mirrors() -> Vec<String> {
    let Ok(bytes) = crate::fsread::read(
        std::path::Path::new(DAEMON_JSON),
        crate::fsread::Kind::Config,
    ) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        tracing::warn!("{DAEMON_JSON} is not JSON; its registry-mirrors are not used");
        return Vec::new();
    };
    value["registry-mirrors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|mirror| mirror.as_str().map(str::to_owned))
        .collect()
}

/// `host[:port]` of a mirror entry (`https://mirror.example/` or
/// `127.0.0.1:5000`); `None` for one that is not a plain host.
fn host_of(entry: &str) -> Option<String> {
    let entry = entry.trim();
    let rest = entry
        .strip_prefix("https://")
        .or_else(|| entry.strip_prefix("http://"))
        .unwrap_or(entry);
    let host = rest.trim_end_matches('/');
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ".-:[]".contains(ch));
    valid.then(|| host.to_owned())
}

/// Where a Docker Hub name is read from: each mirror, then Docker Hub
/// (`library/` before a one-part name, as Docker Hub spells it).
pub fn docker_hub_sources(reference: &str) -> Vec<(Destination, String)> {
    sources_through(reference, mirrors())
}

fn sources_through(reference: &str, mirrors: Vec<String>) -> Vec<(Destination, String)> {
    let Ok(parsed) = crate::config::image_ref::parse(reference) else {
        return Vec::new();
    };
    if parsed.registry.is_some() {
        return Vec::new();
    }
    let repository = if parsed.repository.contains('/') {
        parsed.repository.clone()
    } else {
        format!("library/{}", parsed.repository)
    };
    let tag = parsed.tag.clone().unwrap_or_else(|| "latest".to_owned());
    let wanted = parsed.digest.clone().unwrap_or_else(|| tag.clone());
    mirrors
        .into_iter()
        .chain(std::iter::once(DOCKER_HUB.to_owned()))
        .map(|registry| {
            (
                Destination {
                    registry,
                    repository: repository.clone(),
                    tag: tag.clone(),
                },
                wanted.clone(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_entries_become_hosts() {
        assert_eq!(
            host_of("https://mirror.gcr.io/").as_deref(),
            Some("mirror.gcr.io")
        );
        assert_eq!(
            host_of(" 127.0.0.1:5000 ").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(host_of("http://a/b"), None);
        assert_eq!(host_of(""), None);
    }

    #[test]
    fn docker_hub_names_go_to_each_mirror_then_docker_hub() {
        let mirrors: Vec<String> = ["http://127.0.0.1:5999", "bad/path"]
            .iter()
            .filter_map(|entry| host_of(entry))
            .collect();
        let sources = sources_through("debian:12", mirrors);
        let names: Vec<String> = sources
            .iter()
            .map(|(destination, wanted)| format!("{destination} {wanted}"))
            .collect();
        assert_eq!(
            names,
            [
                "127.0.0.1:5999/library/debian:12 12",
                "docker.io/library/debian:12 12"
            ]
        );
        let cuda = sources_through("nvidia/cuda:12.8.1-base-ubuntu24.04", Vec::new());
        assert_eq!(
            cuda[0].0.to_string(),
            "docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04"
        );
        assert!(sources_through("127.0.0.1:5000/x:1", Vec::new()).is_empty());
    }
}
