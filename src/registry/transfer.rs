//! Blob transfers of a [`RegistryClient`]: a blob read as a stream
//! verified against its digest while it streams, and an upload as
//! `docker push` sends one (`POST`, one streamed `PATCH`, `PUT ?digest=`),
//! whose every `Location` must stay in this repository's uploads on this
//! registry.

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::{RegistryClient, expect, read_timeout, refusal, strip_query};
use super::error::RegistryError;
use super::source::Blob;

/// Bytes read from the blob's file at a time for an upload.
const CHUNK: usize = 4 * 1024 * 1024;

impl RegistryClient {
    /// `GET /v2/<repo>/blobs/<digest>` as a stream, with the length the
    /// registry announced. Read by Arca's own client: redirects as
    /// [`super::token::redirect_policy`] allows (blobs are often served by
    /// another host, which gets no credentials), each read bounded by the
    /// read timeout. Bytes that do not match the digest end the stream with
    /// an [`std::io::ErrorKind::InvalidData`] error, a registry silent for
    /// the read timeout with [`std::io::ErrorKind::TimedOut`].
    pub async fn blob_stream(
        &self,
        digest: &str,
    ) -> Result<
        (
            Option<u64>,
            futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
        ),
        RegistryError,
    > {
        use futures_util::StreamExt;
        use sha2::Digest as _;
        let expected = crate::blobs::Digest::parse(digest)
            .map_err(|_| {
                RegistryError::Untrusted(format!(
                    "`{}` is not a sha256 digest",
                    digest.escape_debug()
                ))
            })?
            .to_string();
        self.refresh_login().await?;
        let url = self.url(&format!("/v2/{}/blobs/{digest}", self.repository));
        let response = Self::send(self.authorized(reqwest::Method::GET, &url)).await?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let length = response.content_length();
        let body = Box::pin(response.bytes_stream());
        let verified = futures_util::stream::unfold(
            Some((body, sha2::Sha256::new(), expected)),
            |state| async move {
                let (mut body, mut hasher, expected) = state?;
                match body.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        Some((Ok(chunk), Some((body, hasher, expected))))
                    }
                    Some(Err(error)) => Some((Err(read_failure(&error)), None)),
                    None => {
                        let actual = format!("sha256:{:x}", hasher.finalize());
                        (actual != expected).then(|| {
                            let error = std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                format!("the bytes hash to {actual}, not {expected}"),
                            );
                            (Err(error), None)
                        })
                    }
                }
            },
        )
        .boxed();
        Ok((length, verified))
    }

    /// Uploads a blob as `docker push` does: `POST` opens an upload, one
    /// `PATCH` streams the blob from disk (calling `sent` with the bytes
    /// handed to the connection so far), `PUT ?digest=` closes it. Every
    /// `Location` the registry answers must stay in this repository's
    /// uploads on this registry ([`Self::upload_location`]): the login is
    /// never sent elsewhere.
    pub async fn upload(
        &self,
        blob: &Blob,
        sent: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), RegistryError> {
        use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
        let uploads = self.url(&format!("/v2/{}/blobs/uploads/", self.repository));
        let opened = Self::send(
            self.authorized(reqwest::Method::POST, &uploads)
                .header(CONTENT_LENGTH, 0),
        )
        .await?;
        let location = self.upload_location(expect(opened, 202).await?)?;
        let patched = Self::send(
            self.authorized(reqwest::Method::PATCH, location.as_str())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, blob.size)
                .body(reqwest::Body::wrap_stream(file_chunks(blob.clone(), sent))),
        )
        .await?;
        let mut location = self.upload_location(expect(patched, 202).await?)?;
        location
            .query_pairs_mut()
            .append_pair("digest", &blob.digest);
        let closed = Self::send(
            self.authorized(reqwest::Method::PUT, location.as_str())
                .header(CONTENT_LENGTH, 0),
        )
        .await?;
        expect(closed, 201).await.map(|_| ())
    }

    /// The `Location` of an upload answer, resolved against the request:
    /// refused ([`RegistryError::Untrusted`]) unless it is on this
    /// registry (same scheme, host and port) and under
    /// `/v2/<repository>/blobs/uploads/`.
    fn upload_location(&self, response: reqwest::Response) -> Result<reqwest::Url, RegistryError> {
        let registry = &self.registry;
        let header = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                RegistryError::Refused(format!(
                    "the registry answered an upload without a `Location` to send it to (HTTP {})",
                    response.status().as_u16()
                ))
            })?;
        let shown = strip_query(header).escape_debug().to_string();
        let location = response.url().join(header).map_err(|_| {
            RegistryError::Untrusted(format!("the upload `Location` `{shown}` is not a URL"))
        })?;
        let origin = reqwest::Url::parse(&self.url("/"))
            .map_err(|error| RegistryError::Refused(format!("bad registry address: {error}")))?
            .origin();
        if location.origin() != origin {
            return Err(RegistryError::Untrusted(format!(
                "the upload `Location` `{shown}` points away from {registry}; Arca sends the blob and the login to {registry} only"
            )));
        }
        let uploads = format!("/v2/{}/blobs/uploads/", self.repository);
        if !location.path().starts_with(&uploads) {
            return Err(RegistryError::Untrusted(format!(
                "the upload `Location` `{shown}` is outside the repository's uploads ({uploads}); Arca sends blobs there only"
            )));
        }
        Ok(location)
    }
}

/// A failed read of a response body as an I/O error: a registry silent
/// for the read timeout is [`std::io::ErrorKind::TimedOut`], saying so.
fn read_failure(error: &reqwest::Error) -> std::io::Error {
    if error.is_timeout() {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the registry sent nothing for {} s (ARCA_REGISTRY_READ_TIMEOUT sets this)",
                read_timeout().as_secs()
            ),
        )
    } else {
        std::io::Error::other(super::error::classify_request(error).to_string())
    }
}

/// The blob's bytes as a stream of 4 MiB chunks read from its file.
fn file_chunks(
    blob: Blob,
    sent: Arc<dyn Fn(u64) + Send + Sync>,
) -> impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    struct Reader {
        file: Option<tokio::io::Take<tokio::fs::File>>,
        blob: Blob,
        done: u64,
    }
    let start = Reader {
        file: None,
        blob,
        done: 0,
    };
    futures_util::stream::try_unfold(start, move |mut reader| {
        let sent = sent.clone();
        async move {
            if reader.file.is_none() {
                let mut file = tokio::fs::File::open(&reader.blob.data.path).await?;
                file.seek(std::io::SeekFrom::Start(reader.blob.data.offset))
                    .await?;
                reader.file = Some(file.take(reader.blob.data.len));
            }
            let Some(file) = reader.file.as_mut() else {
                return Ok(None);
            };
            let mut buffer = BytesMut::with_capacity(CHUNK);
            while buffer.len() < CHUNK {
                if file.read_buf(&mut buffer).await? == 0 {
                    break;
                }
            }
            if buffer.is_empty() {
                if reader.done != reader.blob.size {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ended after {} of {} bytes",
                            reader.blob.data.path.display(),
                            reader.done,
                            reader.blob.size
                        ),
                    ));
                }
                return Ok(None);
            }
            reader.done += buffer.len() as u64;
            sent(reader.done);
            Ok(Some((buffer.freeze(), reader)))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    use futures_util::StreamExt;

    use super::super::credentials::{Credential, Login, Secret};
    use super::super::destination::Destination;
    use super::*;

    /// A loopback HTTP service on `host` answering each request (one per
    /// connection) with `answer(head, port)` (the raw response); the heads
    /// it was sent are kept in the returned list.
    fn service(
        host: &str,
        answer: impl Fn(&str, u16) -> Vec<u8> + Send + 'static,
    ) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind((host, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    // A TLS handshake (the client tries HTTPS first): a
                    // plain-HTTP server cannot answer it; hang up.
                    if head.is_empty() && byte[0] == 0x16 {
                        break;
                    }
                    head.push(byte[0]);
                }
                if head.is_empty() {
                    continue;
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let response = answer(&head, port);
                seen.lock().unwrap().push(head);
                let _ = stream.write_all(&response);
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
        });
        (port, heads)
    }

    /// A basic-auth registry that serves a blob by redirecting to another
    /// host: the blob arrives verified, the other host never sees the
    /// login, and a blob whose bytes lie ends the stream as invalid data.
    #[tokio::test]
    async fn a_blob_redirected_to_another_host_gets_no_credentials() {
        let blob = b"layer bytes".to_vec();
        let digest = crate::blobs::Digest::of(&blob).to_string();
        let served = blob.clone();
        let (store_port, store_heads) = service("127.0.0.2", move |head, _| {
            let body = if head.contains("/lying") {
                b"other bytes".to_vec()
            } else {
                served.clone()
            };
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            response.extend_from_slice(&body);
            response
        });
        let (registry_port, registry_heads) = service("127.0.0.1", move |head, _| {
            let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
            let status = if path.contains("/blobs/sha256:") && head.starts_with("GET") {
                let target = if path.contains(&"1".repeat(64)) {
                    "lying"
                } else {
                    "blob"
                };
                format!(
                    "307 Temporary Redirect\r\nLocation: http://127.0.0.2:{store_port}/{target}"
                )
            } else if head.starts_with("HEAD") {
                "404 Not Found".to_owned()
            } else {
                "200 OK".to_owned()
            };
            format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .into_bytes()
        });
        let destination = Destination {
            registry: format!("127.0.0.1:{registry_port}"),
            repository: "team/base".into(),
            tag: "1".into(),
        };
        let credential = Credential {
            login: Login::Password {
                username: "alice".into(),
                password: Secret::new("s3cret"),
            },
            source: "a test".into(),
        };
        let client = RegistryClient::connect_pull(&destination, Some(&credential), false)
            .await
            .unwrap();
        let (_, mut stream) = client.blob_stream(&digest).await.unwrap();
        let mut received = Vec::new();
        while let Some(chunk) = stream.next().await {
            received.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(received, blob);
        let registry_heads = registry_heads.lock().unwrap().clone();
        assert!(
            registry_heads
                .iter()
                .any(|head| head.contains("GET /v2/team/base/blobs/")
                    && head.to_ascii_lowercase().contains("authorization: basic")),
            "the registry itself gets the login: {registry_heads:?}"
        );
        let store_heads = store_heads.lock().unwrap().clone();
        assert_eq!(store_heads.len(), 1, "{store_heads:?}");
        assert!(
            !store_heads[0]
                .to_ascii_lowercase()
                .contains("authorization"),
            "the other host got the login: {store_heads:?}"
        );
        // Bytes that do not match the digest asked for end the stream.
        let lying = format!("sha256:{}", "1".repeat(64));
        let (_, mut stream) = client.blob_stream(&lying).await.unwrap();
        let mut last = None;
        while let Some(chunk) = stream.next().await {
            last = Some(chunk);
        }
        let error = last.expect("an item").expect_err("refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
    }
}
