//! Arca's own JSON-RPC framing in front of tower-lsp.
//!
//! tower-lsp 0.20 ends its read loop after the first frame it cannot
//! decode, so one malformed message would end the session. This layer reads
//! `Content-Length` frames from the real stdin itself, validates each one,
//! answers what it drops with the JSON-RPC error the specification names,
//! and forwards only well-formed messages to tower-lsp through an in-memory
//! pipe. tower-lsp's output goes through [`write_output`], which interleaves
//! those error answers between whole frames on the real stdout.
//!
//! What a frame can be, and what happens to it:
//! - a header block that cannot be read (no `Content-Length`, a bad
//!   number, a line that is not `Name: value`, more than
//!   [`MAX_HEADER_BYTES`] without an end): Parse error (-32700, id null);
//!   the bytes up to the next `Content-Length` are skipped;
//! - a body over [`MAX_FRAME_BYTES`]: Invalid Request (-32600, id null);
//!   its bytes are read and thrown away as they come, never held whole;
//! - a body that is not UTF-8 or not JSON: Parse error (-32700, id null);
//! - a body the decoder refuses for its content (a lone UTF-16 surrogate,
//!   nesting beyond serde_json's limit of 128, a number out of range):
//!   Parse error too, found by walking it with that same decoder, so
//!   tower-lsp never sees a body it cannot decode (it would end the
//!   session);
//! - JSON that is not one JSON-RPC 2.0 request, notification or response
//!   (not an object, `jsonrpc` other than `"2.0"`, a method that is not a
//!   string, an id that is not an integer, string or null, params that are
//!   neither an object nor an array): Invalid Request (-32600) with the
//!   message's id when it has a valid one, else null; a notification
//!   (a method, no id) is never answered, only logged (JSON-RPC 2.0);
//! - anything else goes to tower-lsp unchanged.
//!
//! A body shorter than its `Content-Length` is recognised when the input
//! goes quiet for [`STALL`] with the start of the next frame already inside
//! it: the frame ends there, and the next frame is read as usual. Bytes
//! that never end a header block are answered once the input is quiet for
//! [`STALL`].

use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The largest message body accepted: 64 MiB.
pub const MAX_FRAME_BYTES: usize = 64 << 20;
/// The largest header block accepted.
pub const MAX_HEADER_BYTES: usize = 8 << 10;
/// Quiet time after which a body still short of its `Content-Length`, but
/// holding the start of another frame, is taken to end there.
pub const STALL: Duration = Duration::from_millis(500);

/// A body this large waits until the server has handled the previous
/// large one (or [`LARGE_WAIT`] passed): two 20 MB documents are never
/// held and checked at once.
pub const LARGE_BODY: usize = 1 << 20;
/// The longest a large body waits for the previous one.
pub const LARGE_WAIT: Duration = Duration::from_secs(2);

static LARGE_IN_FLIGHT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The main loop handled a document message: the next large body may come.
pub fn large_message_handled() {
    LARGE_IN_FLIGHT.store(false, std::sync::atomic::Ordering::Release);
}

async fn wait_for_large_slot() {
    let started = std::time::Instant::now();
    while LARGE_IN_FLIGHT.load(std::sync::atomic::Ordering::Acquire)
        && started.elapsed() < LARGE_WAIT
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const HEADER_NAME: &[u8] = b"Content-Length";
const CHUNK: usize = 64 << 10;

/// What the reader made of the next frame.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A valid JSON-RPC message body, to pass on.
    Message(Vec<u8>),
    /// The frame was dropped; this error response answers it.
    Rejected(Value),
    /// A malformed notification was dropped: JSON-RPC never answers a
    /// notification, so it is only logged.
    Ignored,
}

/// Reads frames from the client's byte stream.
pub struct FrameReader<R> {
    input: R,
    buf: Vec<u8>,
    eof: bool,
    /// Bytes are being skipped after a bad header: one answer per run.
    skipping: bool,
    /// Bytes of a refused oversized body still to throw away.
    discarding: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            buf: Vec::new(),
            eof: false,
            skipping: false,
            discarding: 0,
        }
    }

    /// The next frame, or `None` at the end of the input.
    pub async fn next(&mut self) -> Option<Frame> {
        if self.discarding > 0 {
            let length = std::mem::take(&mut self.discarding);
            self.discard(length).await;
        }
        loop {
            let Some((header_end, body_start)) = find_header_end(&self.buf) else {
                if self.buf.len() > MAX_HEADER_BYTES {
                    if let Some(answer) =
                        self.skip_garbage("a header block longer than 8 KiB or without an end")
                    {
                        return Some(answer);
                    }
                    continue;
                }
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    if !self.fill().await {
                        return None;
                    }
                    continue;
                }
                // Bytes that do not end a header block: wait for more, but
                // once the input goes quiet, they are not a header.
                match tokio::time::timeout(STALL, self.fill()).await {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(_) => {
                        if let Some(answer) = self.skip_garbage("no blank line ends the header") {
                            return Some(answer);
                        }
                        continue;
                    }
                }
            };
            if header_end > MAX_HEADER_BYTES {
                if let Some(answer) = self.skip_garbage("a header block longer than 8 KiB") {
                    return Some(answer);
                }
                continue;
            }
            let length = match parse_header(&self.buf[..header_end]) {
                Header::Blank => {
                    self.buf.drain(..body_start);
                    continue;
                }
                Header::Bad(reason) => {
                    if let Some(answer) = self.skip_garbage(&reason) {
                        return Some(answer);
                    }
                    continue;
                }
                Header::Length(length) => length,
            };
            self.skipping = false;
            self.buf.drain(..body_start);
            if length > MAX_FRAME_BYTES {
                // Answered at once; its bytes are skipped as they come.
                self.discarding = length;
                return Some(Frame::Rejected(error_response(
                    Value::Null,
                    INVALID_REQUEST,
                    format!(
                        "Message of {length} bytes refused: Arca's language server accepts messages up to {MAX_FRAME_BYTES} bytes (64 MiB). The message was skipped; the session goes on."
                    ),
                )));
            }
            if length > LARGE_BODY {
                wait_for_large_slot().await;
            }
            let mut body = self.body(length).await?;
            return Some(match validate(&body) {
                Ok(()) => Frame::Message(body),
                Err(Rejection::Notification) => Frame::Ignored,
                Err(Rejection::Answer(answer)) => {
                    // A Content-Length too long swallows the start of the
                    // next frame: give those bytes back.
                    if let Some(next) = memchr_find(&body, HEADER_NAME).filter(|at| *at > 0) {
                        let rest = body.split_off(next);
                        self.buf.splice(0..0, rest);
                    }
                    Frame::Rejected(answer)
                }
            });
        }
    }

    /// Reads more input; false at the end.
    async fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        // `read_buf` into spare capacity is cancel-safe (the body's stall
        // timeout may drop this future).
        self.buf.reserve(CHUNK);
        let read = self.input.read_buf(&mut self.buf).await.unwrap_or(0);
        if read == 0 {
            self.eof = true;
        }
        read > 0
    }

    /// Reads the body of `length` bytes (the header already consumed).
    async fn body(&mut self, length: usize) -> Option<Vec<u8>> {
        // One allocation of the body's size (not a doubling growth).
        self.buf
            .reserve_exact(length.saturating_sub(self.buf.len()));
        while self.buf.len() < length {
            // Once quiet with the next frame inside, the length was wrong.
            // (Searched only when quiet: a large body is not rescanned.)
            match tokio::time::timeout(STALL, self.fill()).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(_) => {
                    if let Some(end) = memchr_find(&self.buf, HEADER_NAME) {
                        return Some(self.buf.drain(..end).collect());
                    }
                }
            }
        }
        // Hand the buffer's allocation over as the body; keep the rest.
        let rest = self.buf.split_off(length);
        Some(std::mem::replace(&mut self.buf, rest))
    }

    /// Reads and throws away `length` bytes without holding them.
    async fn discard(&mut self, mut length: usize) {
        loop {
            let take = length.min(self.buf.len());
            self.buf.drain(..take);
            length -= take;
            if length == 0 || !self.fill().await {
                return;
            }
        }
    }

    /// Drops bytes up to the next `Content-Length` after the start; the
    /// first skip of a run is answered.
    fn skip_garbage(&mut self, reason: &str) -> Option<Frame> {
        let skip = match memchr_find(&self.buf[1.min(self.buf.len())..], HEADER_NAME) {
            Some(position) => position + 1,
            // Keep only a tail that may be the start of a header name.
            None => self.buf.len() - partial_header_name(&self.buf),
        };
        let dropped: Vec<u8> = self.buf.drain(..skip).collect();
        if self.skipping || dropped.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        self.skipping = true;
        Some(Frame::Rejected(error_response(
            Value::Null,
            PARSE_ERROR,
            format!(
                "Unreadable message header ({reason}); skipped to the next `Content-Length` header. Frames must start with `Content-Length: <bytes>` and a blank line."
            ),
        )))
    }
}

/// The length of the longest end of `buf` that starts `Content-Length`.
fn partial_header_name(buf: &[u8]) -> usize {
    (1..HEADER_NAME.len().min(buf.len() + 1))
        .rev()
        .find(|&length| buf.ends_with(&HEADER_NAME[..length]))
        .unwrap_or(0)
}

enum Header {
    Blank,
    Bad(String),
    Length(usize),
}

/// The end of the header block and the start of the body: after the first
/// blank line (`\r\n\r\n`, or `\n\n` from lenient clients).
fn find_header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = memchr_find(buf, b"\r\n\r\n").map(|at| (at, at + 4));
    let lf = memchr_find(buf, b"\n\n").map(|at| (at, at + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse_header(block: &[u8]) -> Header {
    let Ok(text) = std::str::from_utf8(block) else {
        return Header::Bad("the header is not UTF-8".to_owned());
    };
    let mut length = None;
    let mut any = false;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        any = true;
        let Some((name, value)) = line.split_once(':') else {
            return Header::Bad(format!("`{}` is not a header line", escape_short(line)));
        };
        if name.trim().eq_ignore_ascii_case("Content-Length") {
            match value.trim().parse::<usize>() {
                Ok(value) => length = Some(value),
                Err(_) => {
                    return Header::Bad(format!(
                        "Content-Length `{}` is not a byte count",
                        escape_short(value.trim())
                    ));
                }
            }
        }
    }
    match length {
        Some(length) => Header::Length(length),
        None if !any => Header::Blank,
        None => Header::Bad("no Content-Length header".to_owned()),
    }
}

/// A header excerpt safe to put in a message.
fn escape_short(text: &str) -> String {
    text.chars().take(40).flat_map(char::escape_debug).collect()
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The members of a message, each kept raw (borrowed, never copied), so a
/// 20 MB document is validated without a second copy of it.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// A member that is present, `null` included (plain `Option` would read
/// `null` as absent).
fn present<'de, D>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <&RawValue as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// The first byte of a raw JSON value.
fn starts(raw: Option<&RawValue>) -> Option<u8> {
    raw.and_then(|raw| raw.get().bytes().next())
}

/// Why a body was not passed on.
#[derive(Debug, PartialEq)]
pub enum Rejection {
    /// Answer with this error response.
    Answer(Value),
    /// A notification (a method, no id): logged, never answered.
    Notification,
}

/// Walks a JSON value with the same decoder tower-lsp uses (its recursion
/// limit, its number ranges, its string escapes), keeping nothing: a body
/// that passes here is one tower-lsp can decode. Strings without escapes
/// are borrowed, so a 20 MB document is not copied.
struct Decodable;

impl<'de> serde::Deserialize<'de> for Decodable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DecodableVisitor)
    }
}

struct DecodableVisitor;

impl<'de> serde::de::Visitor<'de> for DecodableVisitor {
    type Value = Decodable;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Decodable, E> {
        Ok(Decodable)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Decodable, E> {
        Ok(Decodable)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Decodable, E> {
        Ok(Decodable)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Decodable, E> {
        Ok(Decodable)
    }
    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Decodable, E> {
        Ok(Decodable)
    }
    fn visit_str<E>(self, _: &str) -> Result<Decodable, E> {
        Ok(Decodable)
    }
    fn visit_unit<E>(self) -> Result<Decodable, E> {
        Ok(Decodable)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Decodable, A::Error> {
        while seq.next_element::<Decodable>()?.is_some() {}
        Ok(Decodable)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Decodable, A::Error> {
        while map.next_entry::<Decodable, Decodable>()?.is_some() {}
        Ok(Decodable)
    }
}

/// An error answer, and whether the message was a notification.
enum Answered {
    /// Unreadable as a message at all (the spec's Parse error, id null).
    Always(Value),
    UnlessNotification(Value, bool),
}

/// Checks one body is a JSON-RPC 2.0 message tower-lsp will accept.
pub fn validate(body: &[u8]) -> Result<(), Rejection> {
    validate_message(body).map_err(|answered| match answered {
        Answered::Always(answer) | Answered::UnlessNotification(answer, false) => {
            Rejection::Answer(answer)
        }
        Answered::UnlessNotification(_, true) => Rejection::Notification,
    })
}

fn validate_message(body: &[u8]) -> Result<(), Answered> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(Answered::Always(error_response(
            Value::Null,
            PARSE_ERROR,
            "Parse error: the message body is not valid UTF-8.".to_owned(),
        )));
    };
    // JSON tower-lsp's decoder reads (depth, numbers, escapes), without
    // keeping the values.
    if let Err(error) = serde_json::from_str::<Decodable>(text) {
        return Err(Answered::Always(error_response(
            Value::Null,
            PARSE_ERROR,
            format!("Parse error: the message body is not valid JSON ({error})."),
        )));
    }
    if !text.trim_start().starts_with('{') {
        return Err(Answered::Always(invalid(
            Value::Null,
            "a message must be one JSON object (batches are not supported)",
        )));
    }
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Err(Answered::Always(invalid(
                Value::Null,
                &format!("not a JSON-RPC message ({error})"),
            )));
        }
    };
    let is_notification = envelope.id.is_none() && envelope.method.is_some();
    let answer = |value: Value| Answered::UnlessNotification(value, is_notification);
    let id: Option<Value> = envelope
        .id
        .map(|raw| serde_json::from_str(raw.get()).unwrap_or(Value::Null));
    let id_ok = match &id {
        None | Some(Value::Null | Value::String(_)) => true,
        Some(Value::Number(number)) => number.as_i64().is_some(),
        Some(_) => false,
    };
    let answer_id = if id_ok {
        id.clone().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if envelope.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        let exact = envelope
            .jsonrpc
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
        if exact.as_deref() != Some("2.0") {
            return Err(answer(invalid(answer_id, "`jsonrpc` must be \"2.0\"")));
        }
    }
    if !id_ok {
        return Err(answer(invalid(
            Value::Null,
            "`id` must be an integer, a string or null",
        )));
    }
    match (envelope.method, starts(envelope.method)) {
        (Some(_), Some(b'"')) => {
            if !matches!(starts(envelope.params), None | Some(b'{' | b'[' | b'n')) {
                return Err(answer(invalid(
                    answer_id,
                    "`params` must be an object or an array",
                )));
            }
        }
        (Some(_), _) => return Err(answer(invalid(answer_id, "`method` must be a string"))),
        (None, _) => {
            // A response to one of the server's requests.
            let error_ok = envelope.error.is_none_or(|raw| {
                serde_json::from_str::<tower_lsp::jsonrpc::Error>(raw.get()).is_ok()
            });
            let valid =
                id.is_some() && (envelope.result.is_some() != envelope.error.is_some()) && error_ok;
            if !valid {
                return Err(answer(invalid(
                    answer_id,
                    "neither a request (no `method`) nor a response (`id` with one of `result` or `error`)",
                )));
            }
        }
    }
    Ok(())
}

fn invalid(id: Value, reason: &str) -> Value {
    error_response(
        id,
        INVALID_REQUEST,
        format!("Invalid Request: {reason}. The message was skipped; the session goes on."),
    )
}

fn error_response(id: Value, code: i64, message: String) -> Value {
    tracing::warn!("dropped a client message: {message}");
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    })
}

/// Reads the client's frames from `input`, forwards valid ones to
/// `to_server` (framed again) and sends the answers for dropped ones to
/// `output` (bodies). Ends (closing `to_server`) at the end of the input.
pub async fn read_input<R, W>(input: R, mut to_server: W, output: mpsc::UnboundedSender<Vec<u8>>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FrameReader::new(input);
    while let Some(frame) = reader.next().await {
        match frame {
            Frame::Message(body) => {
                if body.len() > LARGE_BODY {
                    LARGE_IN_FLIGHT.store(true, std::sync::atomic::Ordering::Release);
                }
                let header = format!("Content-Length: {}\r\n\r\n", body.len());
                let written = async {
                    to_server.write_all(header.as_bytes()).await?;
                    to_server.write_all(&body).await?;
                    to_server.flush().await
                };
                if written.await.is_err() {
                    break;
                }
            }
            Frame::Rejected(answer) => {
                let _ = output.send(answer.to_string().into_bytes());
            }
            Frame::Ignored => {}
        }
    }
    let _ = to_server.shutdown().await;
}

/// Splits tower-lsp's output (`Content-Length: N\r\n\r\n` + body) into
/// bodies for [`write_output`].
pub async fn read_server_output<R>(from_server: R, output: mpsc::UnboundedSender<Vec<u8>>)
where
    R: AsyncRead + Unpin,
{
    let mut input = tokio::io::BufReader::new(from_server);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            match input.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("Content-Length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let Some(length) = length else {
            tracing::error!("tower-lsp wrote a frame without Content-Length");
            continue;
        };
        let mut body = vec![0; length];
        if input.read_exact(&mut body).await.is_err() {
            return;
        }
        if output.send(body).is_err() {
            return;
        }
    }
}

/// Writes every body from `bodies` to `output` as one whole frame; ends
/// when every sender is gone or the output is closed.
pub async fn write_output<W>(mut output: W, mut bodies: mpsc::UnboundedReceiver<Vec<u8>>)
where
    W: AsyncWrite + Unpin,
{
    while let Some(body) = bodies.recv().await {
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        let written = async {
            output.write_all(header.as_bytes()).await?;
            output.write_all(&body).await?;
            output.flush().await
        };
        if written.await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8]) -> Vec<Frame> {
        let mut reader = FrameReader::new(input);
        let mut out = Vec::new();
        while let Some(frame) = reader.next().await {
            out.push(frame);
        }
        out
    }

    fn frame(body: &str) -> Vec<u8> {
        format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    }

    fn code(frame: &Frame) -> (i64, Value) {
        match frame {
            Frame::Rejected(answer) => (
                answer["error"]["code"].as_i64().unwrap(),
                answer["id"].clone(),
            ),
            Frame::Message(body) => panic!("forwarded {}", String::from_utf8_lossy(body)),
            Frame::Ignored => panic!("ignored, not answered"),
        }
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":7,"method":"arca/status"}"#;

    async fn then_ping(bad: &[u8]) -> Vec<Frame> {
        let mut input = bad.to_vec();
        input.extend(frame(PING));
        let out = frames(&input).await;
        assert_eq!(
            out.last(),
            Some(&Frame::Message(PING.as_bytes().to_vec())),
            "{out:?}"
        );
        out
    }

    #[tokio::test]
    async fn each_bad_body_is_answered_and_the_next_frame_read() {
        let cases: [(&[u8], i64, Value); 9] = [
            (b"{not json", PARSE_ERROR, Value::Null),
            (b"\xff\xfe{}", PARSE_ERROR, Value::Null),
            (b"[1,2]", INVALID_REQUEST, Value::Null),
            (b"42", INVALID_REQUEST, Value::Null),
            (
                br#"{"jsonrpc":"1.0","id":3,"method":"x"}"#,
                INVALID_REQUEST,
                json!(3),
            ),
            (
                br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":"a","method":5}"#,
                INVALID_REQUEST,
                json!("a"),
            ),
            (
                br#"{"jsonrpc":"2.0","id":4,"method":"x","params":3}"#,
                INVALID_REQUEST,
                json!(4),
            ),
        ];
        for (body, expected, id) in cases {
            let mut input = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
            input.extend_from_slice(body);
            let out = then_ping(&input).await;
            assert_eq!(out.len(), 2, "{out:?}");
            assert_eq!(
                code(&out[0]),
                (expected, id),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[tokio::test]
    async fn bodies_the_decoder_refuses_are_parse_errors_and_bad_notifications_get_no_answer() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":[{}{}]}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        for body in [
            deep.as_str(),
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":["\ud800"]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1e400]}"#,
        ] {
            let out = then_ping(&frame(body)).await;
            assert_eq!(out.len(), 2, "{out:?}");
            assert_eq!(code(&out[0]), (PARSE_ERROR, Value::Null), "{body}");
        }
        // Deep but within the decoder's limit, and a surrogate pair: passed on.
        let fine = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":[{}"\ud83d\ude00"{}]}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let out = then_ping(&frame(&fine)).await;
        assert_eq!(out[0], Frame::Message(fine.into_bytes()));
        // A notification is never answered, whatever is wrong with it.
        for body in [
            r#"{"jsonrpc":"2.0","method":"x","params":3}"#,
            r#"{"jsonrpc":"1.0","method":"x"}"#,
        ] {
            let out = then_ping(&frame(body)).await;
            assert_eq!(
                out,
                vec![Frame::Ignored, Frame::Message(PING.as_bytes().to_vec())]
            );
        }
    }

    #[tokio::test]
    async fn bad_headers_skip_to_the_next_frame() {
        for bad in [
            &b"Content-Length: abc\r\n\r\n{}"[..],
            b"Content-Type: x\r\n\r\n{}",
            b"garbage without end",
            b"Content-Length: -5\r\n\r\n",
        ] {
            let out = then_ping(bad).await;
            assert_eq!(out.len(), 2, "{out:?}");
            assert_eq!(code(&out[0]).0, PARSE_ERROR);
        }
        // Blank lines between frames are not errors.
        let out = then_ping(b"\r\n\r\n").await;
        assert_eq!(out.len(), 1);
    }

    #[tokio::test]
    async fn a_bad_header_waiting_for_more_input_does_not_spin() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server);
        client
            .write_all(b"Content-Length: twelve\r\n\r\n{\"a\":1}")
            .await
            .unwrap();
        assert_eq!(code(&reader.next().await.unwrap()).0, PARSE_ERROR);
        client.write_all(&frame(PING)).await.unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), reader.next()).await;
        assert_eq!(
            next.unwrap(),
            Some(Frame::Message(PING.as_bytes().to_vec()))
        );
        assert_eq!(partial_header_name(b"xx\r\nContent-Len"), 11);
        assert_eq!(partial_header_name(b"}"), 0);
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_without_holding_it() {
        let mut input = format!("Content-Length: {}\r\n\r\n", MAX_FRAME_BYTES + 1).into_bytes();
        input.resize(input.len() + MAX_FRAME_BYTES + 1, b'x');
        let out = then_ping(&input).await;
        assert_eq!(code(&out[0]), (INVALID_REQUEST, Value::Null));
    }

    #[tokio::test]
    async fn a_short_body_ends_at_the_next_header_once_quiet() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut input = b"Content-Length: 500\r\n\r\n{\"jsonrpc\":\"2.0\"}".to_vec();
        input.extend(frame(PING));
        client.write_all(&input).await.unwrap();
        let mut reader = FrameReader::new(server);
        let first = reader.next().await.unwrap();
        assert_eq!(code(&first).0, INVALID_REQUEST);
        assert_eq!(
            reader.next().await,
            Some(Frame::Message(PING.as_bytes().to_vec()))
        );
    }

    #[tokio::test]
    async fn a_too_long_body_gives_back_the_next_frame() {
        let mut input = format!("Content-Length: {}\r\n\r\n", PING.len() + 30).into_bytes();
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"x\"}");
        let out = then_ping(&input).await;
        assert_eq!(out.len(), 2, "{out:?}");
    }

    #[tokio::test]
    async fn responses_and_notifications_pass() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            r#"{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"no"}}"#,
            r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"shutdown","params":null}"#,
        ] {
            assert_eq!(validate(body.as_bytes()), Ok(()), "{body}");
        }
        assert!(validate(br#"{"jsonrpc":"2.0","id":1}"#).is_err());
        assert!(validate(br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#).is_err());
    }
}
