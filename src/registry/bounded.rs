//! Reading an HTTP answer's body up to a limit: refused from its
//! `Content-Length` before reading, else cut while it streams, so a lying
//! server never makes Arca hold more than the limit.

use super::error::{RegistryError, classify_request};

/// Why a bounded read failed.
pub enum Bounded {
    /// The body is larger than the limit (its announced length, when it
    /// announced one).
    TooLarge(Option<u64>),
    /// Reading it failed.
    Failed(RegistryError),
}

/// The body of `response`, at most `max` bytes.
pub async fn read(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, Bounded> {
    if let Some(length) = response.content_length()
        && length > max as u64
    {
        return Err(Bounded::TooLarge(Some(length)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| Bounded::Failed(classify_request(&error)))?
    {
        if body.len() + chunk.len() > max {
            return Err(Bounded::TooLarge(None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
