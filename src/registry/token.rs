//! The OAuth2 refresh-token grant of the registry token protocol, for
//! identity tokens (`identitytoken` in an auth file, a credential helper's
//! `<token>` user): `oci-client` only knows basic credentials and ready
//! bearer tokens, so an identity token is exchanged here, as the docker CLI
//! does: `GET /v2/` names the token service (`WWW-Authenticate: Bearer
//! realm=…,service=…`), then `POST realm` with `grant_type=refresh_token`,
//! the service, the scopes and `client_id=arca` answers an access token,
//! which `client` hands to `oci-client` as a bearer token.
//!
//! The same request with basic credentials and several scopes gives
//! cross-repository mounts a token that may read the source repository too
//! (`oci-client` asks for the target's scope only, which a token registry
//! refuses for a mount).
//!
//! The refresh token goes only to the realm the registry named, in a POST
//! body (never a URL); neither it nor any access token is logged.

use serde::Deserialize;

use super::error::{RegistryError, classify_request};

/// The `client_id` sent with the grant (the docker CLI sends `docker`).
const CLIENT_ID: &str = "arca";

/// Where a registry's tokens come from.
pub struct Challenge {
    realm: String,
    service: Option<String>,
}

/// What is sent to the token service.
pub enum Grant<'a> {
    /// Basic credentials on a `GET` (what `oci-client` does for one scope).
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
        .map(Some)
        .ok_or_else(|| {
            RegistryError::Unauthorized(
                "the registry has no token service (it does not answer `WWW-Authenticate: Bearer`)"
                    .to_owned(),
            )
        })
}

/// Exchanges `refresh_token` for an access token valid for `scopes`
/// (`repository:NAME:pull,push`) on the registry at `base`
/// (`https://host:port`); `None` when the registry needs no login at all.
pub async fn exchange(
    http: &reqwest::Client,
    base: &str,
    refresh_token: &str,
    scopes: &[String],
) -> Result<Option<Access>, RegistryError> {
    let challenge = match challenge(http, base).await {
        Ok(Some(challenge)) => challenge,
        Ok(None) => return Ok(None),
        Err(RegistryError::Unauthorized(detail)) => {
            return Err(RegistryError::Unauthorized(format!(
                "the login is an identity token, but {detail}; log in with a username and password or access token instead"
            )));
        }
        Err(error) => return Err(error),
    };
    request(http, &challenge, &Grant::Refresh(refresh_token), scopes)
        .await
        .map(Some)
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
    let asked_at = now_secs();
    let sent = match grant {
        Grant::Password { username, password } => {
            let mut query: Vec<(&str, &str)> = scopes
                .iter()
                .map(|scope| ("scope", scope.as_str()))
                .collect();
            if let Some(service) = &challenge.service {
                query.push(("service", service));
            }
            http.get(&challenge.realm)
                .query(&query)
                .basic_auth(username, Some(password))
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
    let body = answer
        .text()
        .await
        .map_err(|error| classify_request(&error))?;
    if !status.is_success() {
        let what = match grant {
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
