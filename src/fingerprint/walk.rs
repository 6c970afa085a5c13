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
//! caller hashes whole chunks while the next ones are being read.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, FileType};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use anyhow::{Context, Result, anyhow};

use crate::workspace::SKIPPED_DIR_NAMES;

/// Size of one read-ahead buffer.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;
/// Buffers in flight between the reader and the hasher.
const CHUNKS_IN_FLIGHT: usize = 4;

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

/// Opens an input file, naming it on failure.
pub(crate) fn open_input(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("Failed to read build input file: {}", path.display()))
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

/// Where an input entry starts, for consumers that track entries (the index).
#[derive(Debug)]
#[allow(dead_code)] // read by the per-file index, which lands next
pub(crate) enum Mark {
    /// A new entry; for a file, its content follows as [`Mark::Content`]
    /// pieces (in this chunk and the next ones) until [`Mark::FileEnd`].
    Entry {
        path: PathBuf,
        kind: EntryKind,
        /// A symlink's target text.
        link: Option<String>,
    },
    /// `data[start..end]` of this chunk is content of the current file.
    Content { start: usize, end: usize },
    /// The current file's content is complete.
    FileEnd,
}

/// One buffer of the serialized stream.
pub(crate) struct Chunk {
    data: Vec<u8>,
    len: usize,
    /// Entry boundaries inside `data`, in order; empty unless tracking.
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

    /// A slice of the chunk's bytes, as named by a [`Mark::Content`].
    #[allow(dead_code)] // read by the per-file index, which lands next
    pub(crate) fn slice(&self, start: usize, end: usize) -> &[u8] {
        &self.data[start..end]
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

    fn mark(&mut self, mark: Mark) {
        if self.track {
            self.current.marks.push(mark);
        }
    }

    /// Writes one entry's record (tag, relative path, and the symlink
    /// target or file contents).
    fn entry(&mut self, path: &Path, relative: &str, kind: EntryKind) -> Result<(), Halt> {
        let link = match kind {
            EntryKind::Symlink => Some(link_text(path)?),
            _ => None,
        };
        let file = match kind {
            EntryKind::File => Some(open_input(path)?),
            _ => None,
        };
        self.put_text(kind.tag())?;
        self.put_text(relative)?;
        if let Some(link) = &link {
            self.put_text(link)?;
        }
        self.mark(Mark::Entry {
            path: path.to_path_buf(),
            kind,
            link,
        });
        if let Some(mut file) = file {
            self.file_contents(&mut file, path)?;
            self.mark(Mark::FileEnd);
        }
        Ok(())
    }

    fn file_contents(&mut self, file: &mut File, path: &Path) -> Result<(), Halt> {
        loop {
            if self.current.len == CHUNK_SIZE {
                self.flush()?;
            }
            let start = self.current.len;
            let read = match file.read(&mut self.current.data[start..]) {
                Ok(0) => return Ok(()),
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
            if self.track {
                match self.current.marks.last_mut() {
                    Some(Mark::Content { end, .. }) if *end == start => *end += read,
                    _ => self.current.marks.push(Mark::Content {
                        start,
                        end: start + read,
                    }),
                }
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
/// With `track`, chunks carry [`Mark`]s naming the entries and the file
/// content spans. The first error (reader's or consumer's) ends the walk.
pub(crate) fn read_inputs(
    roots: &[PathBuf],
    track: bool,
    mut consume: impl FnMut(&Chunk) -> Result<()>,
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
    consume: &mut impl FnMut(&Chunk) -> Result<()>,
) -> Result<()> {
    for chunk in full {
        let chunk = chunk?;
        consume(&chunk)?;
        // The reader may be done already; then the buffer is simply dropped.
        let _ = empty.send(chunk);
    }
    Ok(())
}
