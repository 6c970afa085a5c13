//! A tolerant scanner of `.arca/config.toml` for the editor assists: one
//! pass over text that is mid-edit and not valid TOML (`profile = "`,
//! `features = ["`, `bin = `), tracking headers, keys, strings, comments
//! and bracket nesting. It records every key and value token of the tables
//! the assists read with its absolute key path, and what the cursor is in
//! (a header, where a key goes, where a value goes).

use std::ops::Range;

use super::schema::RUST_TABLE;

/// The part of a value typed so far at the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partial {
    /// Inside a string: `content` is the span from after the opening quote
    /// to its closing quote (or the line end when unclosed).
    InString {
        quote: char,
        content: Range<usize>,
        closed: bool,
    },
    /// A bare word (or nothing) starting at `start`.
    Bare { start: usize },
}

impl Partial {
    pub fn span(&self, text: &str, offset: usize) -> Range<usize> {
        match self {
            Partial::InString { content, .. } => content.start..content.end.max(offset),
            Partial::Bare { start } => *start..extend_word(text, offset),
        }
    }

    /// The text that puts `value` in place: the string content inside a
    /// string (closing it when it is still open), a quoted string elsewhere.
    pub fn insert_text(&self, value: &str) -> String {
        let quoted = toml_edit::Value::from(value).to_string().trim().to_owned();
        match self {
            Partial::InString { quote, closed, .. } => {
                // Inside "…" write the escaped content of a basic string.
                let content = if *quote == '"' && quoted.starts_with('"') && quoted.len() >= 2 {
                    quoted[1..quoted.len() - 1].to_owned()
                } else {
                    value.to_owned()
                };
                if *closed {
                    content
                } else {
                    format!("{content}{quote}")
                }
            }
            Partial::Bare { .. } => quoted,
        }
    }
}

/// The scanner's view of the cursor position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// Inside `[ ... ]` of a table header; `partial` is the typed name.
    Header { partial: Range<usize> },
    /// Where a key goes, in `table` (absolute path, including a dotted
    /// prefix already typed); `partial` is the key segment typed so far.
    Key {
        table: Vec<String>,
        partial: Range<usize>,
    },
    /// Where the value of `path` goes (an array element when `in_array`).
    Value {
        path: Vec<String>,
        in_array: bool,
        partial: Partial,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    HeaderKey,
    Key,
    /// A value; the string content when it is a string.
    Value(Option<String>),
}

/// A key segment or value with its absolute key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub span: Range<usize>,
    pub kind: TokenKind,
    pub path: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Key,
    Value,
    AfterValue,
}

#[derive(Debug, Clone)]
struct Frame {
    array: bool,
    /// The absolute path of the value this bracket opened (for arrays, the
    /// path of its elements; for inline tables, the table's path).
    path: Vec<String>,
    expect: Expect,
}

/// One pass over the text; tolerant of any input.
pub struct Scan {
    pub tokens: Vec<Token>,
    pub context: Option<Context>,
}

impl Scan {
    pub fn run(text: &str, offset: usize) -> Scan {
        let mut scanner = Scanner {
            text,
            offset,
            header: Vec::new(),
            root_expect: Expect::Key,
            frames: Vec::new(),
            value_path: Vec::new(),
            tokens: Vec::new(),
            context: None,
            decided: false,
        };
        scanner.scan();
        Scan {
            tokens: scanner.tokens,
            context: scanner.context,
        }
    }
}

struct Scanner<'t> {
    text: &'t str,
    offset: usize,
    header: Vec<String>,
    root_expect: Expect,
    frames: Vec<Frame>,
    /// Path of the value being read (set by the last `key =`).
    value_path: Vec<String>,
    tokens: Vec<Token>,
    context: Option<Context>,
    /// Whether `context` is final.
    decided: bool,
}

impl Scanner<'_> {
    /// Keeps the tokens of the `rust` table (the only ones completion and
    /// hover use), so a huge file costs no memory per foreign entry.
    fn push_token(&mut self, token: Token) {
        if token
            .path
            .first()
            .is_some_and(|first| first == RUST_TABLE || first == super::run::RUN_TABLE)
        {
            self.tokens.push(token);
        }
    }

    fn expect(&self) -> Expect {
        self.frames
            .last()
            .map_or(self.root_expect, |frame| frame.expect)
    }

    fn set_expect(&mut self, expect: Expect) {
        match self.frames.last_mut() {
            Some(frame) => frame.expect = expect,
            None => self.root_expect = expect,
        }
    }

    /// The table keys are currently assigned in.
    fn key_table(&self) -> Vec<String> {
        self.frames
            .last()
            .map_or_else(|| self.header.clone(), |frame| frame.path.clone())
    }

    /// Records the context once, the first time the scan reaches the cursor
    /// (`None`: no completion there, e.g. in a comment).
    fn snapshot(&mut self, at: usize, context: impl FnOnce(&Self) -> Option<Context>) {
        if !self.decided && at >= self.offset {
            self.decided = true;
            self.context = context(self);
        }
    }

    fn scan(&mut self) {
        let text = self.text;
        let bytes = text.as_bytes();
        let mut index = 0;
        while index < bytes.len() {
            if !self.decided && index >= self.offset {
                self.context_at_boundary(index);
            }
            let byte = bytes[index];
            match self.expect() {
                Expect::Key => index = self.scan_key_position(index),
                Expect::Value => index = self.scan_value_position(index),
                Expect::AfterValue => {
                    index = match byte {
                        b',' => {
                            let in_array = self.frames.last().is_some_and(|frame| frame.array);
                            self.set_expect(if in_array { Expect::Value } else { Expect::Key });
                            index + 1
                        }
                        b']' | b'}' => self.close(index),
                        b'\n' => self.newline(index),
                        b'#' => self.skip_comment(index),
                        _ => next_char(text, index),
                    };
                }
            }
        }
        if !self.decided {
            self.context_at_boundary(bytes.len());
        }
    }

    /// The context when the cursor sits between tokens.
    fn context_at_boundary(&mut self, at: usize) {
        let expect = self.expect();
        let in_array = self.frames.last().is_some_and(|frame| frame.array);
        self.snapshot(at, |scanner| match expect {
            Expect::Key => Some(Context::Key {
                table: scanner.key_table(),
                partial: scanner.offset..scanner.offset,
            }),
            Expect::Value => Some(Context::Value {
                path: if in_array {
                    scanner.key_table()
                } else {
                    scanner.value_path.clone()
                },
                in_array,
                partial: Partial::Bare {
                    start: scanner.offset,
                },
            }),
            Expect::AfterValue => None,
        });
    }

    fn newline(&mut self, index: usize) -> usize {
        if self.frames.is_empty() {
            self.root_expect = Expect::Key;
        }
        index + 1
    }

    fn skip_comment(&mut self, index: usize) -> usize {
        let end = self.text[index..]
            .find('\n')
            .map_or(self.text.len(), |length| index + length);
        if self.offset > index && self.offset <= end {
            self.snapshot(self.offset, |_| None);
        }
        end
    }

    fn close(&mut self, index: usize) -> usize {
        if self.frames.pop().is_some() {
            self.set_expect(Expect::AfterValue);
        }
        index + 1
    }

    fn scan_key_position(&mut self, index: usize) -> usize {
        let text = self.text;
        let byte = text.as_bytes()[index];
        match byte {
            b'\n' => self.newline(index),
            b' ' | b'\t' | b'\r' => index + 1,
            b'#' => self.skip_comment(index),
            b'[' if self.frames.is_empty() => self.scan_header(index),
            b'}' if self.frames.last().is_some_and(|frame| !frame.array) => self.close(index),
            b',' => index + 1,
            _ => self.scan_key(index),
        }
    }

    /// `[a.b]` or `[[a.b]]` up to the line end.
    fn scan_header(&mut self, index: usize) -> usize {
        let text = self.text;
        let line_end = text[index..]
            .find('\n')
            .map_or(text.len(), |length| index + length);
        let mut start = index + 1;
        if text[start..line_end].starts_with('[') {
            start += 1;
        }
        let close = text[start..line_end]
            .find(']')
            .map_or(line_end, |length| start + length);
        let segments = split_key(text, start..close);
        let mut path = Vec::new();
        for (name, span) in &segments {
            path.push(name.clone());
            self.push_token(Token {
                span: span.clone(),
                kind: TokenKind::HeaderKey,
                path: path.clone(),
            });
        }
        if self.offset > index && self.offset <= close {
            let partial_start = segments
                .last()
                .filter(|(_, span)| span.end >= self.offset && span.start <= self.offset)
                .map_or(self.offset, |(_, span)| span.start);
            let offset = self.offset;
            self.snapshot(offset, |_| {
                Some(Context::Header {
                    partial: partial_start..offset,
                })
            });
        }
        self.header = path;
        self.root_expect = Expect::AfterValue;
        let after = close.min(line_end);
        // Skip the closing brackets; the rest of the line is a comment or junk.
        let rest_end = text[after..line_end]
            .find('#')
            .map_or(line_end, |length| after + length);
        if self.offset > after && self.offset <= rest_end {
            self.snapshot(self.offset, |_| None);
        }
        rest_end
    }

    /// A key (possibly dotted, quoted) up to `=`, or up to the line end when
    /// it is still being typed.
    fn scan_key(&mut self, index: usize) -> usize {
        let text = self.text;
        let bytes = text.as_bytes();
        let mut end = index;
        let mut quote: Option<u8> = None;
        while end < bytes.len() {
            let byte = bytes[end];
            match quote {
                Some(open) if byte == open => quote = None,
                Some(b'"') if byte == b'\\' => end += 1,
                Some(_) if byte == b'\n' => break,
                Some(_) => {}
                None => match byte {
                    b'"' | b'\'' => quote = Some(byte),
                    b'=' | b'\n' | b'#' | b'}' | b',' => break,
                    _ => {}
                },
            }
            end += 1;
        }
        let end = end.min(bytes.len());
        let segments = split_key(text, index..end);
        let table = self.key_table();
        if self.offset >= index && self.offset <= end {
            let mut prefix = table.clone();
            let mut partial = self.offset..self.offset;
            for (name, span) in &segments {
                if span.end < self.offset {
                    prefix.push(name.clone());
                } else if span.start <= self.offset {
                    partial = span.start..self.offset;
                }
            }
            // A cursor after the key's trailing spaces, before `=`.
            let typed_whole = segments
                .last()
                .is_some_and(|(_, span)| span.end < self.offset)
                && !text[index..self.offset].trim_end().ends_with('.');
            if typed_whole {
                self.snapshot(self.offset, |_| None);
            } else {
                self.snapshot(self.offset, |_| {
                    Some(Context::Key {
                        table: prefix,
                        partial,
                    })
                });
            }
        }
        let mut path = table;
        for (name, span) in &segments {
            path.push(name.clone());
            self.push_token(Token {
                span: span.clone(),
                kind: TokenKind::Key,
                path: path.clone(),
            });
        }
        if end < bytes.len() && bytes[end] == b'=' {
            self.value_path = path;
            self.set_expect(Expect::Value);
            return end + 1;
        }
        // A key without `=` (being typed): the value never comes.
        self.set_expect(Expect::AfterValue);
        end
    }

    fn scan_value_position(&mut self, index: usize) -> usize {
        let text = self.text;
        let bytes = text.as_bytes();
        let in_array = self.frames.last().is_some_and(|frame| frame.array);
        let path = if in_array {
            self.key_table()
        } else {
            self.value_path.clone()
        };
        match bytes[index] {
            b' ' | b'\t' | b'\r' => index + 1,
            b'\n' if in_array => index + 1,
            b'\n' => self.newline(index),
            b'#' => self.skip_comment(index),
            b'[' => {
                self.set_expect(Expect::AfterValue);
                self.frames.push(Frame {
                    array: true,
                    path,
                    expect: Expect::Value,
                });
                index + 1
            }
            b'{' => {
                self.set_expect(Expect::AfterValue);
                self.frames.push(Frame {
                    array: false,
                    path,
                    expect: Expect::Key,
                });
                index + 1
            }
            b']' if in_array => self.close(index),
            b',' if in_array => index + 1,
            b'"' | b'\'' => self.scan_string(index, path, in_array),
            _ => self.scan_bare_value(index, path, in_array),
        }
    }

    fn scan_string(&mut self, index: usize, path: Vec<String>, in_array: bool) -> usize {
        let text = self.text;
        let bytes = text.as_bytes();
        let quote = bytes[index];
        let multi = text[index..].starts_with(if quote == b'"' { "\"\"\"" } else { "'''" });
        let open = if multi { 3 } else { 1 };
        let content_start = index + open;
        let mut end = content_start;
        let mut closed = false;
        while end < bytes.len() {
            let byte = bytes[end];
            if quote == b'"' && byte == b'\\' {
                end += 2;
                continue;
            }
            if byte == b'\n' && !multi {
                break;
            }
            if byte == quote && (!multi || text[end..].starts_with(&text[index..index + 3])) {
                closed = true;
                break;
            }
            end += 1;
        }
        let end = end.min(bytes.len());
        let content_end = end;
        let token_end = if closed { end + open } else { end };
        let relevant = path
            .first()
            .is_some_and(|first| first == RUST_TABLE || first == super::run::RUN_TABLE);
        let content = if relevant {
            text.get(content_start..content_end).map(unescape)
        } else {
            None
        };
        if self.offset >= content_start && self.offset <= content_end {
            self.snapshot(self.offset, |_| {
                Some(Context::Value {
                    path: path.clone(),
                    in_array,
                    partial: Partial::InString {
                        quote: char::from(quote),
                        content: content_start..content_end,
                        closed,
                    },
                })
            });
        } else if self.offset > index && self.offset < token_end {
            self.snapshot(self.offset, |_| None);
        }
        self.push_token(Token {
            span: index..token_end,
            kind: TokenKind::Value(content),
            path,
        });
        self.set_expect(Expect::AfterValue);
        token_end
    }

    fn scan_bare_value(&mut self, index: usize, path: Vec<String>, in_array: bool) -> usize {
        let text = self.text;
        let end = text[index..]
            .find(|ch: char| ch.is_whitespace() || matches!(ch, ',' | ']' | '}' | '#'))
            .map_or(text.len(), |length| index + length);
        let end = end.max(index + text[index..].chars().next().map_or(1, char::len_utf8));
        if self.offset >= index && self.offset <= end {
            self.snapshot(self.offset, |_| {
                Some(Context::Value {
                    path: path.clone(),
                    in_array,
                    partial: Partial::Bare { start: index },
                })
            });
        }
        self.push_token(Token {
            span: index..end,
            kind: TokenKind::Value(None),
            path,
        });
        self.set_expect(Expect::AfterValue);
        end
    }
}

/// Splits a key like `rust . "a.b" . c` into segments (quotes removed) with
/// the span of each segment as written.
fn split_key(text: &str, range: Range<usize>) -> Vec<(String, Range<usize>)> {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut index = range.start;
    while index < range.end {
        let byte = bytes[index];
        if byte == b' ' || byte == b'\t' || byte == b'.' || byte == b'\r' {
            index += 1;
            continue;
        }
        let start = index;
        if byte == b'"' || byte == b'\'' {
            index += 1;
            while index < range.end && bytes[index] != byte {
                if byte == b'"' && bytes[index] == b'\\' {
                    index += 1;
                }
                index += 1;
            }
            let content_end = index.min(range.end);
            index = (index + 1).min(range.end);
            let name = text
                .get(start + 1..content_end)
                .map_or_else(String::new, unescape);
            segments.push((name, start..index));
        } else {
            while index < range.end && !matches!(bytes[index], b' ' | b'\t' | b'.' | b'\r') {
                index += 1;
            }
            segments.push((text[start..index].to_owned(), start..index));
        }
    }
    segments
}

/// The common escapes of a basic string (enough for names and images).
fn unescape(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The end of the word (key or value characters) continuing at `offset`.
pub fn extend_word(text: &str, offset: usize) -> usize {
    text[offset..]
        .find(|ch: char| !(ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.' | ':' | '/' | '@')))
        .map_or(text.len(), |length| offset + length)
}

/// The index of the character after the one at `index`.
fn next_char(text: &str, index: usize) -> usize {
    text[index..]
        .chars()
        .next()
        .map_or(index + 1, |ch| index + ch.len_utf8())
}

pub fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}
