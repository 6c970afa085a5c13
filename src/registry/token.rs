//! The registry token protocol, as the docker CLI speaks it: `GET /v2/`
//! names the token service (`WWW-Authenticate: Bearer realm=…,service=…`);
//! a `GET realm?scope=…&service=…`, with basic credentials or none
//! (anonymous), answers a token; for an identity token (`identitytoken` in
//! an auth file, a credential helper's `<token>` user) a `POST realm` with
//! `grant_type=refresh_token`, the service, the scopes and
//! `client_id=arca` answers one. Several scopes in one request give
//! cross-repository mounts a token that may read the source repository too.
//!
//! The refresh token goes only to the realm the registry named, in a POST
//! body (never a URL); neither it nor any access token is logged.
//!
//! The token service is not trusted: a realm that is not `https://` when
//! the registry is, or not `http(s)://` at all, is refused before any
//! credential is sent; its answer is read up to [`TOKEN_BODY_MAX`] and no
//! further; redirects are followed at most [`MAX_REDIRECTS`] times, never
//! from `https` to `http` (see [`redirect_policy`]).

use serde::Deserialize;

use super::error::{RegistryError, classify_request};

/// The `client_id` sent with the grant (the docker CLI sends `docker`).
const CLIENT_ID: &str = "arca";

/// The largest token-service answer read (a token is a few KiB).
pub const TOKEN_BODY_MAX: usize = 1 << 20;

/// Redirects followed for one registry or token request.
pub const MAX_REDIRECTS: usize = 5;

/// The redirect rule of Arca's own registry requests: at most
/// [`MAX_REDIRECTS`], never from `https` to `http` (reqwest drops the
/// credentials on a redirect to another host itself).
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|url| url.scheme() == "https");
        let hops = attempt.previous().len();
        if downgrade {
            let to = attempt.url().to_string();
            attempt.error(format!(
                "a redirect from https to http ({to}) was refused: it would send the request unencrypted"
            ))
        } else if hops > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// Where a registry's tokens come from.
#[derive(Debug)]
pub struct Challenge {
    realm: String,
    service: Option<String>,
    /// The registry's own scheme (`https` or `http`): an `https` registry's
    /// token service must be `https` too.
    registry_scheme: String,
}

/// What is sent to the token service.
pub enum Grant<'a> {
    /// No credentials on a `GET` (an anonymous pull).
    Anonymous,
    /// Basic credentials on a `GET`.
    Password {
        username: &'a str,
        password: &'a str,
    },
    /// The OAuth2 refresh-token grant on a `POST` (an identity token).
    Refresh(&'a str),
}

/// `GET /v2/` at `base` (`https://host:port`): the registry's token service
/// when it asks for a bearer token; `Ok(None)` when it needs no login at
/// all; an error when it wants another kind of login (basic).
pub async fn challenge(
    http: &reqwest::Client,
    base: &str,
) -> Result<Option<Challenge>, RegistryError> {
    let answer = http
        .get(format!("{base}/v2/"))
        .send()
        .await
        .map_err(|error| classify_request(&error))?;
    if answer.status().is_success() {
        return Ok(None);
    }
    answer
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(bearer_challenge)
        .map(|mut challenge| {
            challenge.registry_scheme = base.split("://").next().unwrap_or("https").to_owned();
            Some(challenge)
        })
        .ok_or_else(|| {
            RegistryError::Unauthorized(
                "the registry has no token service (it does not answer `WWW-Authenticate: Bearer`)"
                    .to_owned(),
            )
        })
}

/// A token from the token service and when it stops being valid.
pub struct Access {
    pub token: String,
    /// Seconds since 1970: issue time + `expires_in` (60 when the answer
    /// omits it, as the token spec says).
    pub expires_at: u64,
}

/// One token for all of `scopes` (several repositories at once, e.g. the
/// target's `pull,push` and a mount source's `pull`).
pub async fn request(
    http: &reqwest::Client,
    challenge: &Challenge,
    grant: &Grant<'_>,
    scopes: &[String],
) -> Result<Access, RegistryError> {
    check_realm(challenge)?;
    let asked_at = now_secs();
    let sent = match grant {
        Grant::Anonymous | Grant::Password { .. } => {
            let mut query: Vec<(&str, &str)> = scopes
                .iter()
                .map(|scope| ("scope", scope.as_str()))
                .collect();
            if let Some(service) = &challenge.service {
                query.push(("service", service));
            }
            let request = http.get(&challenge.realm).query(&query);
            match grant {
                Grant::Password { username, password } => {
                    request.basic_auth(username, Some(password))
                }
                _ => request,
            }
            .send()
            .await
        }
        Grant::Refresh(refresh_token) => {
            let body = {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh_token)
                    .append_pair("client_id", CLIENT_ID)
                    .append_pair("scope", &scopes.join(" "));
                if let Some(service) = &challenge.service {
                    form.append_pair("service", service);
                }
                form.finish()
            };
            http.post(&challenge.realm)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await
        }
    };
    let answer = sent.map_err(|error| classify_request(&error))?;
    let status = answer.status();
    let body = bounded_text(answer, &challenge.realm).await?;
    if !status.is_success() {
        let what = match grant {
            Grant::Anonymous => "an anonymous token",
            Grant::Password { .. } => "the login",
            Grant::Refresh(_) => "the identity token",
        };
        return Err(RegistryError::Unauthorized(format!(
            "the token service {} refused {what}: HTTP {status}: {}",
            challenge.realm,
            short(&body)
        )));
    }
    #[derive(Deserialize)]
    struct Granted {
        access_token: Option<String>,
        token: Option<String>,
        expires_in: Option<u64>,
    }
    let granted: Granted = serde_json::from_str(&body).map_err(|_| {
        RegistryError::Refused(format!(
            "the token service {} answered something that is not a token",
            challenge.realm
        ))
    })?;
    let expires_at = asked_at + granted.expires_in.unwrap_or(60);
    granted
        .access_token
        .or(granted.token)
        .filter(|token| !token.is_empty())
        .map(|token| Access { token, expires_at })
        .ok_or_else(|| {
            RegistryError::Refused(format!(
                "the token service {} answered without an access token",
                challenge.realm
            ))
        })
}

/// Refuses a realm that would send the login unencrypted, or anywhere
/// but an HTTP service.
fn check_realm(challenge: &Challenge) -> Result<(), RegistryError> {
    let refused = |why: &str| {
        Err(RegistryError::Refused(format!(
            "the registry names the token service {:?}, which {why}; no credentials were sent",
            short(&challenge.realm)
        )))
    };
    match url::Url::parse(&challenge.realm) {
        Err(_) => refused("is not a URL"),
        Ok(realm) if realm.scheme() == "https" => Ok(()),
        Ok(realm) if realm.scheme() == "http" && challenge.registry_scheme != "https" => Ok(()),
        Ok(realm) if realm.scheme() == "http" => {
            refused("is plain http for an https registry (the login would travel unencrypted)")
        }
        Ok(_) => refused("is not an http(s) URL"),
    }
}

/// The answer's body as text, at most [`TOKEN_BODY_MAX`] bytes.
async fn bounded_text(answer: reqwest::Response, realm: &str) -> Result<String, RegistryError> {
    match super::bounded::read(answer, TOKEN_BODY_MAX).await {
        Ok(body) => Ok(String::from_utf8_lossy(&body).into_owned()),
        Err(super::bounded::Bounded::TooLarge(_)) => Err(too_large(realm)),
        Err(super::bounded::Bounded::Failed(error)) => Err(error),
    }
}

fn too_large(realm: &str) -> RegistryError {
    RegistryError::Refused(format!(
        "the token service {} answered more than {} KiB, which no token needs; nothing was read further",
        short(realm),
        TOKEN_BODY_MAX >> 10
    ))
}

/// Seconds since 1970.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The realm and service of a `Bearer` challenge, if `header` has one.
fn bearer_challenge(header: &str) -> Option<Challenge> {
    http_auth::parser::ChallengeParser::new(header)
        .filter_map(Result::ok)
        .find(|challenge| challenge.scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|challenge| {
            let param = |name: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.to_unescaped())
            };
            Some(Challenge {
                realm: param("realm")?,
                service: param("service"),
                registry_scheme: "https".to_owned(),
            })
        })
}

/// The first line of an error body, at most 200 characters.
fn short(body: &str) -> String {
    body.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A loopback HTTP service answering every request with `answer(path)`
    /// (the raw response), for as long as the test runs. Its base URL.
    fn hostile_service(answer: impl Fn(&str, u16) -> Vec<u8> + Send + 'static) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    request.push(byte[0]);
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
                // One request per connection, said so: a client that kept
                // the connection for its next request would race our close.
                let mut response = answer(&path, port);
                if let Some(line_end) = response.windows(2).position(|pair| pair == b"\r\n") {
                    response.splice(
                        line_end + 2..line_end + 2,
                        b"Connection: close\r\n".iter().copied(),
                    );
                }
                let _ = stream.write_all(&response);
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
        });
        format!("http://127.0.0.1:{port}")
    }

    fn http() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(redirect_policy())
            .build()
            .unwrap()
    }

    fn challenge_for(base: &str, registry_scheme: &str) -> Challenge {
        Challenge {
            realm: format!("{base}/token"),
            service: Some("registry".into()),
            registry_scheme: registry_scheme.into(),
        }
    }

    fn password() -> Grant<'static> {
        Grant::Password {
            username: "user",
            password: "secret",
        }
    }

    #[tokio::test]
    async fn a_token_service_answering_megabytes_is_cut_off_at_the_limit() {
        // Chunked, so no length warns in advance: 4 MiB of nonsense.
        let base = hostile_service(|_, _| {
            let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let chunk = vec![b'a'; 64 << 10];
            for _ in 0..64 {
                answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                answer.extend_from_slice(&chunk);
                answer.extend_from_slice(b"\r\n");
            }
            answer.extend_from_slice(b"0\r\n\r\n");
            answer
        });
        let error = request(&http(), &challenge_for(&base, "http"), &password(), &[])
            .await
            .err()
            .expect("refused");
        let message = format!("{error:?}");
        assert!(message.contains("more than 1024 KiB"), "{message}");
        assert!(
            !message.contains("aaaa"),
            "the body is not echoed: {message}"
        );
        // Announced as huge: refused before reading it.
        let base = hostile_service(|_, _| {
            b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n{".to_vec()
        });
        let error = request(&http(), &challenge_for(&base, "http"), &password(), &[])
            .await
            .err()
            .expect("refused");
        assert!(
            format!("{error:?}").contains("more than 1024 KiB"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_redirect_loop_ends_after_the_limit() {
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        let base = hostile_service(move |path, port| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next: u32 = path
                .trim_start_matches("/token")
                .trim_start_matches('/')
                .parse()
                .unwrap_or(0)
                + 1;
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/token/{next}\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes()
        });
        let started = std::time::Instant::now();
        let error = request(&http(), &challenge_for(&base, "http"), &password(), &[])
            .await
            .err()
            .expect("refused");
        assert!(
            format!("{error:?}").contains("redirect"),
            "names the redirects: {error:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // Our limit, not reqwest's default of 10.
        let hits = hits.load(std::sync::atomic::Ordering::SeqCst);
        assert!(hits <= MAX_REDIRECTS + 1, "{hits} requests");
    }

    #[tokio::test]
    async fn a_token_service_answering_garbage_is_a_clear_error() {
        let base = hostile_service(|_, _| {
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"token\":".to_vec()
        });
        let error = request(&http(), &challenge_for(&base, "http"), &password(), &[])
            .await
            .err()
            .expect("refused");
        assert!(format!("{error:?}").contains("not a token"), "{error:?}");
    }

    #[tokio::test]
    async fn the_realm_a_registry_names_is_checked_before_a_password_goes_out() {
        // A registry naming a realm that is not http(s).
        let base = hostile_service(|_, _| {
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"ftp://evil.example/token\",service=\"r\"\r\nContent-Length: 0\r\n\r\n".to_vec()
        });
        let named = challenge(&http(), &base).await.unwrap().expect("a realm");
        let error = request(&http(), &named, &password(), &[])
            .await
            .err()
            .expect("refused");
        assert!(
            format!("{error:?}").contains("not an http(s) URL"),
            "{error:?}"
        );
        // A registry whose realm is its own http service (a loopback
        // registry): allowed.
        let base = hostile_service(|_, port| {
            format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\"\r\nContent-Length: 0\r\n\r\n").into_bytes()
        });
        let named = challenge(&http(), &base).await.unwrap().expect("a realm");
        assert!(check_realm(&named).is_ok());
        // One that needs no login names no token service.
        let base = hostile_service(|_, _| b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec());
        assert!(challenge(&http(), &base).await.unwrap().is_none());
    }

    #[test]
    fn an_https_registry_never_sends_its_login_to_a_plain_http_realm() {
        let plain = challenge_for("http://auth.example", "https");
        let message = format!("{:?}", check_realm(&plain).expect_err("refused"));
        assert!(message.contains("plain http"), "{message}");
        assert!(message.contains("no credentials were sent"), "{message}");
        // Another host over https is how Docker Hub works.
        assert!(check_realm(&challenge_for("https://auth.example", "https")).is_ok());
        // An http registry (loopback, insecure) may use an http realm.
        assert!(check_realm(&challenge_for("http://127.0.0.1:5000", "http")).is_ok());
        for realm in [
            "ftp://auth.example/token",
            "not a url",
            "file:///etc/passwd",
        ] {
            let challenge = Challenge {
                realm: realm.into(),
                service: None,
                registry_scheme: "https".into(),
            };
            assert!(check_realm(&challenge).is_err(), "{realm}");
        }
    }

    #[test]
    fn bearer_challenges_give_realm_and_service() {
        let challenge = bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        )
        .unwrap();
        assert_eq!(challenge.realm, "https://auth.example/token");
        assert_eq!(challenge.service.as_deref(), Some("registry.example"));
        assert!(bearer_challenge(r#"Basic realm="registry""#).is_none());
        assert!(bearer_challenge("Bearer service=\"x\"").is_none());
    }
}
