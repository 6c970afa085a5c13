//! Walking the fingerprint inputs in the original CLI's order, and reading
//! them ahead on a second thread.
//!
//! The rules, shared by the byte-exact stream and the per-file index:
//! - a root that is a directory is walked depth first, each directory's
//!   entries sorted by file name (byte order, as the original sorts paths);
//! - an entry whose name is `target`, `.git` or `.arca` is skipped with all
//!   it contains (the original skips any path with such a component below
//!   the root; checking names on the way down is the same rule);
//! - symlinks are never followed (their target text is what counts), so a
//!   symlink loop is harmless;
//! - a root that is not a directory is a single entry with an empty relative
//!   path.
//!
//! [`read_inputs`] serializes the original's stream (`hash_text` records and
//! raw file contents) into large reusable buffers on a reader thread, so the
//! caller hashes whole chunks while the next ones are being read; on request
//! it also digests each file for the per-file index on the way.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, FileType};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use anyhow::{Context, Result, anyhow};

use crate::workspace::SKIPPED_DIR_NAMES;

/// A file's contents as the per-file index compares them: XXH3-128. The
/// index only asks "is this file what it was?" of the user's own tree; the
/// fingerprint itself is the byte-exact SHA-256 stream. XXH3 costs about
/// 40 ms per GB here where BLAKE3 cost 225-350 ms, and the startup hash
/// runs it beside SHA-256 on the same two cores (BENCHMARKS.md, issue 22).
pub(crate) type ContentDigest = u128;

/// A streaming hasher for [`ContentDigest`].
pub(crate) fn content_hasher() -> xxhash_rust::xxh3::Xxh3 {
    xxhash_rust::xxh3::Xxh3::new()
}

/// Size of one read-ahead buffer.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;
/// Buffers in flight between the reader and the hasher.
const CHUNKS_IN_FLIGHT: usize = 6;

/// Whether an entry with this file name is left out of the inputs, with
/// everything below it.
pub(crate) fn is_skipped_name(name: &OsStr) -> bool {
    SKIPPED_DIR_NAMES
        .iter()
        .any(|skipped| name == OsStr::new(skipped))
}

/// What an input entry is. Anything else (fifo, socket, device) is not an
/// input: the original hashes nothing for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Dir,
    File,
    Symlink,
}

impl EntryKind {
    pub(crate) fn of(file_type: FileType) -> Option<EntryKind> {
        if file_type.is_symlink() {
            Some(EntryKind::Symlink)
        } else if file_type.is_dir() {
            Some(EntryKind::Dir)
        } else if file_type.is_file() {
            Some(EntryKind::File)
        } else {
            None
        }
    }

    /// The tag the original stream writes before the entry's path.
    fn tag(self) -> &'static str {
        match self {
            EntryKind::Dir => "dir",
            EntryKind::File => "file",
            EntryKind::Symlink => "symlink",
        }
    }
}

/// A directory's entries that are inputs, sorted by name, with their kinds
/// (from the directory listing: no extra `stat`).
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<(OsString, EntryKind)>> {
    let reader = fs::read_dir(dir)
        .with_context(|| format!("Failed to read build input directory: {}", dir.display()))?;
    let mut entries = Vec::new();
    for entry in reader {
        let entry = entry
            .with_context(|| format!("Failed to enumerate build inputs: {}", dir.display()))?;
        let name = entry.file_name();
        if is_skipped_name(&name) {
            continue;
        }
        let file_type = entry.file_type().with_context(|| {
            format!(
                "Failed to read build input metadata: {}",
                entry.path().display()
            )
        })?;
        if let Some(kind) = EntryKind::of(file_type) {
            entries.push((name, kind));
        }
    }
    entries.sort_unstable_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    Ok(entries)
}

/// The kind of a root, without following a symlink.
pub(crate) fn root_kind(root: &Path) -> Result<Option<EntryKind>> {
    let metadata = fs::symlink_metadata(root)
        .with_context(|| format!("Failed to read build input metadata: {}", root.display()))?;
    Ok(EntryKind::of(metadata.file_type()))
}

/// A symlink's target as the original writes it (lossy UTF-8).
pub(crate) fn link_text(path: &Path) -> Result<String> {
    let target = fs::read_link(path)
        .with_context(|| format!("Failed to read build input symlink: {}", path.display()))?;
    Ok(target.display().to_string())
}

/// Opens an input file, naming it on failure. Non-blocking, so that a file
/// swapped for a fifo after the listing cannot hang the walk (for regular
/// files the flag changes nothing).
pub(crate) fn open_input(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("Failed to read build input file: {}", path.display()))
}

/// Appends one path component to a relative display path (lossy UTF-8,
/// `/`-separated, as the original's `Path::display`).
pub(crate) fn join_display(parent: &str, name: &OsStr) -> String {
    let name = name.to_string_lossy();
    if parent.is_empty() {
        name.into_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// The original's `hash_text` framing: length as u64 little endian, then the bytes.
pub(crate) fn text_record(value: &str) -> [u8; 8] {
    (value.len() as u64).to_le_bytes()
}

/// What `stat` says about a file: when it is unchanged, so are the
/// contents (used to skip rehashing when a directory is rescanned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    size: u64,
    inode: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(crate) fn of(metadata: &fs::Metadata) -> Stamp {
        Stamp {
            size: metadata.size(),
            inode: metadata.ino(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// An input entry, for consumers that track entries (the index). Each
/// comes with the chunk in which its record ends.
#[derive(Debug)]
pub(crate) enum Mark {
    Dir {
        path: PathBuf,
    },
    Symlink {
        path: PathBuf,
        target: String,
    },
    /// A file with the digest of its contents (computed on the reader
    /// thread while the contents are in cache) and its `stat` as opened.
    File {
        path: PathBuf,
        digest: ContentDigest,
        stamp: Stamp,
    },
}

/// One buffer of the serialized stream.
pub(crate) struct Chunk {
    data: Vec<u8>,
    len: usize,
    /// The entries whose records end in this chunk, in order; empty unless
    /// tracking.
    pub(crate) marks: Vec<Mark>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            data: vec![0; CHUNK_SIZE],
            len: 0,
            marks: Vec::new(),
        }
    }

    /// The stream bytes this chunk carries.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// Why the reader stopped early.
enum Halt {
    /// The consumer went away; the reader stops quietly.
    Stopped,
    /// An input could not be read; the consumer gets this error.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Halt {
    fn from(error: anyhow::Error) -> Halt {
        Halt::Failed(error)
    }
}

/// The reader thread's side: fills chunks and hands them over.
struct ChunkWriter {
    full: SyncSender<Result<Chunk>>,
    empty: Receiver<Chunk>,
    allocated: usize,
    current: Chunk,
    track: bool,
}

impl ChunkWriter {
    fn flush(&mut self) -> Result<(), Halt> {
        let next = if self.allocated < CHUNKS_IN_FLIGHT + 2 {
            self.allocated += 1;
            Chunk::new()
        } else {
            let mut chunk = self.empty.recv().map_err(|_| Halt::Stopped)?;
            chunk.len = 0;
            chunk.marks.clear();
            chunk
        };
        let full = std::mem::replace(&mut self.current, next);
        self.full.send(Ok(full)).map_err(|_| Halt::Stopped)
    }

    fn put(&mut self, mut bytes: &[u8]) -> Result<(), Halt> {
        while !bytes.is_empty() {
            if self.current.len == CHUNK_SIZE {
                self.flush()?;
            }
            let room = CHUNK_SIZE - self.current.len;
            let take = room.min(bytes.len());
            let start = self.current.len;
            self.current.data[start..start + take].copy_from_slice(&bytes[..take]);
            self.current.len += take;
            bytes = &bytes[take..];
        }
        Ok(())
    }

    fn put_text(&mut self, value: &str) -> Result<(), Halt> {
        self.put(&text_record(value))?;
        self.put(value.as_bytes())
    }

    fn mark(&mut self, mark: impl FnOnce() -> Mark) {
        if self.track {
            self.current.marks.push(mark());
        }
    }

    /// Writes one entry's record (tag, relative path, and the symlink
    /// target or file contents).
    fn entry(&mut self, path: &Path, relative: &str, kind: EntryKind) -> Result<(), Halt> {
        match kind {
            EntryKind::Dir => {
                self.put_text(kind.tag())?;
                self.put_text(relative)?;
                self.mark(|| Mark::Dir {
                    path: path.to_path_buf(),
                });
            }
            EntryKind::Symlink => {
                let target = link_text(path)?;
                self.put_text(kind.tag())?;
                self.put_text(relative)?;
                self.put_text(&target)?;
                self.mark(|| Mark::Symlink {
                    path: path.to_path_buf(),
                    target,
                });
            }
            EntryKind::File => {
                let mut file = open_input(path)?;
                let stamp = if self.track {
                    let metadata = file.metadata().with_context(|| {
                        format!("Failed to read build input metadata: {}", path.display())
                    })?;
                    Some(Stamp::of(&metadata))
                } else {
                    None
                };
                self.put_text(kind.tag())?;
                self.put_text(relative)?;
                let digest = self.file_contents(&mut file, path)?;
                if let (Some(stamp), Some(digest)) = (stamp, digest) {
                    self.mark(|| Mark::File {
                        path: path.to_path_buf(),
                        digest,
                        stamp,
                    });
                }
            }
        }
        Ok(())
    }

    /// Copies a file's contents into the stream; when tracking, returns
    /// their [`ContentDigest`].
    fn file_contents(
        &mut self,
        file: &mut File,
        path: &Path,
    ) -> Result<Option<ContentDigest>, Halt> {
        let mut hasher = self.track.then(content_hasher);
        loop {
            if self.current.len == CHUNK_SIZE {
                self.flush()?;
            }
            let start = self.current.len;
            let read = match file.read(&mut self.current.data[start..]) {
                Ok(0) => return Ok(hasher.map(|hasher| hasher.digest128())),
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(Halt::Failed(anyhow!(error).context(format!(
                        "Failed to read build input file: {}",
                        path.display()
                    ))));
                }
            };
            self.current.len += read;
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&self.current.data[start..start + read]);
            }
        }
    }

    fn directory(&mut self, dir: &Path, relative: &str) -> Result<(), Halt> {
        for (name, kind) in sorted_entries(dir)? {
            let path = dir.join(&name);
            let child = join_display(relative, &name);
            self.entry(&path, &child, kind)?;
            if kind == EntryKind::Dir {
                self.directory(&path, &child)?;
            }
        }
        Ok(())
    }

    fn roots(&mut self, roots: &[PathBuf]) -> Result<(), Halt> {
        for root in roots {
            match root_kind(root)? {
                Some(EntryKind::Dir) => self.directory(root, "")?,
                Some(kind) => self.entry(root, "", kind)?,
                None => {}
            }
        }
        self.flush()
    }
}

/// Reads every input below `roots` (in order) on a second thread and calls
/// `consume` with each chunk of the original stream's bytes, in order.
/// With `track`, chunks also carry a [`Mark`] per entry, files with their
/// [`ContentDigest`] (hashed on the reader thread, which has time to spare while
/// the caller runs SHA-256). The first error (reader's or consumer's) ends
/// the walk.
pub(crate) fn read_inputs(
    roots: &[PathBuf],
    track: bool,
    mut consume: impl FnMut(&mut Chunk) -> Result<()>,
) -> Result<()> {
    let (full_tx, full_rx) = sync_channel::<Result<Chunk>>(CHUNKS_IN_FLIGHT);
    let (empty_tx, empty_rx) = channel::<Chunk>();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("arca-fingerprint-reader".into())
            .spawn_scoped(scope, move || {
                let mut writer = ChunkWriter {
                    full: full_tx,
                    empty: empty_rx,
                    allocated: 1,
                    current: Chunk::new(),
                    track,
                };
                if let Err(Halt::Failed(error)) = writer.roots(roots) {
                    // The consumer may be gone already; nothing else to do.
                    let _ = writer.full.send(Err(error));
                }
            })
            .context("Failed to start the fingerprint reader thread")?;
        let consumed = consume_chunks(full_rx, empty_tx, &mut consume);
        let joined = reader.join();
        consumed?;
        joined.map_err(|_| anyhow!("The fingerprint reader thread panicked"))
    })
}

fn consume_chunks(
    full: Receiver<Result<Chunk>>,
    empty: Sender<Chunk>,
    consume: &mut impl FnMut(&mut Chunk) -> Result<()>,
) -> Result<()> {
    for chunk in full {
        let mut chunk = chunk?;
        consume(&mut chunk)?;
        // The reader may be done already; then the buffer is simply dropped.
        let _ = empty.send(chunk);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }

    #[test]
    fn records_straddling_chunk_boundaries_come_out_exactly() {
        let dir = tempfile::tempdir().expect("temp dir");
        // "a" ends 5 bytes before the first chunk boundary, so the next
        // record's length prefix straddles it; "c" spans whole chunks.
        let header = 8 + "file".len() + 8 + "a".len();
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("a", vec![b'a'; CHUNK_SIZE - header - 5]),
            ("b", b"hello".to_vec()),
            (
                "c",
                (0..2 * CHUNK_SIZE + 3).map(|i| (i % 253) as u8).collect(),
            ),
            ("d", Vec::new()),
        ];
        let mut expected = Vec::new();
        for (name, contents) in &files {
            fs::write(dir.path().join(name), contents).expect("write");
            record(&mut expected, "file");
            record(&mut expected, name);
            expected.extend_from_slice(contents);
        }
        let mut streamed = Vec::new();
        let mut marks = Vec::new();
        read_inputs(&[dir.path().to_path_buf()], true, |chunk| {
            streamed.extend_from_slice(chunk.bytes());
            marks.append(&mut chunk.marks);
            Ok(())
        })
        .expect("read inputs");
        assert_eq!(streamed.len(), expected.len());
        assert!(streamed == expected, "the chunked stream differs");
        let digests: Vec<(PathBuf, ContentDigest)> = marks
            .into_iter()
            .map(|mark| match mark {
                Mark::File { path, digest, .. } => (path, digest),
                other => panic!("only files here: {other:?}"),
            })
            .collect();
        let wanted: Vec<(PathBuf, ContentDigest)> = files
            .iter()
            .map(|(name, contents)| (dir.path().join(name), xxhash_rust::xxh3::xxh3_128(contents)))
            .collect();
        assert_eq!(digests, wanted);
    }

    #[test]
    fn a_consumer_error_stops_the_reader() {
        let dir = tempfile::tempdir().expect("temp dir");
        for index in 0..20 {
            fs::write(
                dir.path().join(format!("f{index}")),
                vec![0; CHUNK_SIZE / 2],
            )
            .expect("write");
        }
        let mut calls = 0;
        let outcome = read_inputs(&[dir.path().to_path_buf()], false, |_| {
            calls += 1;
            anyhow::bail!("stop here")
        });
        assert_eq!(format!("{:#}", outcome.expect_err("stopped")), "stop here");
        assert_eq!(calls, 1);
    }
}
