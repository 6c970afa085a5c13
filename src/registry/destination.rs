//! Where a push goes: `REGISTRY/REPOSITORY[:TAG]`, parsed with the image
//! reference grammar of [`crate::config::image_ref`], completed with the
//! record's tag, and whether the registry may be spoken to over plain HTTP.

use std::fmt;
use std::net::IpAddr;

use crate::config::image_ref;

/// The registry a short name such as `team/demo` goes to, as Docker decides.
pub const DOCKER_HUB: &str = "docker.io";

/// A push destination: registry host (with port), repository and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `host[:port]`, e.g. `127.0.0.1:5000` or `ghcr.io`.
    pub registry: String,
    /// The repository below the registry, e.g. `team/demo`.
    pub repository: String,
    pub tag: String,
}

impl Destination {
    /// Parses `REGISTRY/REPOSITORY[:TAG]`; without a tag, `default_tag` (the
    /// record's `remote_tag`) is used. A digest is refused: a push names a
    /// tag, and the digest is what the push produces.
    pub fn parse(text: &str, default_tag: &str) -> Result<Self, String> {
        let reference = image_ref::parse(text).map_err(|reason| {
            format!("`{text}` is not a valid push destination: {reason}. Write it as REGISTRY/REPOSITORY[:TAG], e.g. `registry.example.com/team/demo:v1`.")
        })?;
        if reference.digest.is_some() {
            return Err(format!(
                "`{text}` names a digest; a push destination is REGISTRY/REPOSITORY[:TAG] (the digest is what the push produces). Remove the `@…` part."
            ));
        }
        let tag = match reference.tag {
            Some(tag) => tag,
            None => {
                let probe = format!("{}:{default_tag}", reference.name());
                if let Err(reason) = image_ref::parse(&probe) {
                    return Err(format!(
                        "The artifact's tag `{default_tag}` cannot be used as a registry tag ({reason}). Give a tag with `--to {}:TAG`.",
                        reference.name()
                    ));
                }
                default_tag.to_owned()
            }
        };
        Ok(Self {
            registry: reference.registry.unwrap_or_else(|| DOCKER_HUB.to_owned()),
            repository: reference.repository,
            tag,
        })
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository@digest`: what the record keeps as `uploaded_ref`.
    pub fn by_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.name())
    }

    /// The registry host without its port (brackets of IPv6 removed).
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    /// Whether the registry is on this machine (`localhost`, `127.0.0.0/8`,
    /// `::1`): those may be spoken to over plain HTTP, as Docker allows.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.name(), self.tag)
    }
}

/// `host` of `host[:port]` or `[v6]:port`.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Registries the user marked insecure in `ARCA_INSECURE_REGISTRIES`
/// (comma-separated `host[:port]`), beside `--insecure`.
pub fn insecure_from_env(registry: &str) -> bool {
    std::env::var("ARCA_INSECURE_REGISTRIES").is_ok_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|entry| !entry.is_empty() && entry.eq_ignore_ascii_case(registry))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_take_the_default_tag_and_refuse_digests() {
        let destination = Destination::parse("127.0.0.1:5000/team/demo", "demo-ab12cd34").unwrap();
        assert_eq!(destination.registry, "127.0.0.1:5000");
        assert_eq!(destination.repository, "team/demo");
        assert_eq!(destination.tag, "demo-ab12cd34");
        assert_eq!(
            destination.to_string(),
            "127.0.0.1:5000/team/demo:demo-ab12cd34"
        );
        assert!(destination.is_loopback());
        assert_eq!(
            destination.by_digest("sha256:abc"),
            "127.0.0.1:5000/team/demo@sha256:abc"
        );

        let tagged = Destination::parse("ghcr.io/me/demo:v1", "x").unwrap();
        assert_eq!(tagged.tag, "v1");
        assert!(!tagged.is_loopback());

        let hub = Destination::parse("me/demo", "v2").unwrap();
        assert_eq!(hub.registry, DOCKER_HUB);

        let digest = format!("localhost:5000/demo@sha256:{}", "a".repeat(64));
        assert!(
            Destination::parse(&digest, "x")
                .unwrap_err()
                .contains("digest")
        );
        let bad = Destination::parse("localhost:5000/Demo:v1", "x").unwrap_err();
        assert!(bad.contains("not a valid push destination"), "{bad}");
        let bad_tag = Destination::parse("localhost:5000/demo:-bad", "x").unwrap_err();
        assert!(bad_tag.contains("tag"), "{bad_tag}");
        let bad_default = Destination::parse("localhost:5000/demo", "no/slash").unwrap_err();
        assert!(
            bad_default.contains("--to localhost:5000/demo:TAG"),
            "{bad_default}"
        );
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for (registry, loopback) in [
            ("localhost:5000", true),
            ("127.0.0.1", true),
            ("127.1.2.3:80", true),
            ("[::1]:5000", true),
            ("10.0.0.1:5000", false),
            ("registry.example.com", false),
            ("localhost.example.com", false),
        ] {
            let destination = Destination {
                registry: registry.into(),
                repository: "demo".into(),
                tag: "v1".into(),
            };
            assert_eq!(destination.is_loopback(), loopback, "{registry}");
        }
    }
}
