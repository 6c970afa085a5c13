//! Who answers on a unix socket, from one `GET /_ping`: its `Api-Version`
//! header and, for podman, `Libpod-Api-Version` (or `Server: Libpod/...`).
//!
//! bollard's ping returns only the body, so the engine kind would otherwise
//! come from `/version`, which podman answers slowly (0.74 s here: it
//! queries its packages for the component list) against ~10 ms for
//! `/_ping`. The request goes through hyper, as bollard's own do.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::discovery::EngineKind;

/// What `/_ping` says of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: EngineKind,
    /// The engine's API version (`1.41`): major and minor.
    pub api_version: (usize, usize),
}

/// The engine's identity from a `/_ping` response's headers; `None` when
/// they do not state an API version.
pub fn identity_from_headers(headers: &HeaderMap) -> Option<Identity> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (major, minor) = text("api-version")?.trim().split_once('.')?;
    let api_version = (major.parse().ok()?, minor.parse().ok()?);
    let podman = text("libpod-api-version").is_some()
        || text("server").is_some_and(|server| server.starts_with("Libpod/"));
    Some(Identity {
        kind: if podman {
            EngineKind::Podman
        } else {
            EngineKind::Docker
        },
        api_version,
    })
}

/// Asks the engine on the unix socket at `path` for `/_ping`; `None` when
/// it does not answer within `timeout` or says nothing usable (the caller
/// then asks `/version`).
pub async fn identify_unix(path: &Path, timeout: Duration) -> Option<Identity> {
    tokio::time::timeout(timeout, ping(path))
        .await
        .ok()
        .flatten()
}

async fn ping(path: &Path) -> Option<Identity> {
    let stream = tokio::net::UnixStream::connect(path).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    let connection = tokio::spawn(connection);
    let request = http::Request::get("/_ping")
        .header(http::header::HOST, "engine")
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await;
    connection.abort();
    let response = response.ok()?;
    if !response.status().is_success() {
        return None;
    }
    identity_from_headers(response.headers())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn podman_and_docker_are_told_apart_by_their_ping_headers() {
        // As podman 4.3.1 and Docker 20.10 answer on this machine.
        let podman = headers(&[
            ("api-version", "1.41"),
            ("libpod-api-version", "4.3.1"),
            ("server", "Libpod/4.3.1 (linux)"),
        ]);
        assert_eq!(
            identity_from_headers(&podman),
            Some(Identity {
                kind: EngineKind::Podman,
                api_version: (1, 41)
            })
        );
        let docker = headers(&[
            ("api-version", "1.41"),
            ("server", "Docker/20.10.24+dfsg1 (linux)"),
        ]);
        assert_eq!(
            identity_from_headers(&docker).map(|identity| identity.kind),
            Some(EngineKind::Docker)
        );
        assert_eq!(
            identity_from_headers(&headers(&[("server", "Docker/1")])),
            None
        );
        assert_eq!(
            identity_from_headers(&headers(&[("api-version", "one.two")])),
            None
        );
    }
}
