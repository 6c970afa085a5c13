//! The content-addressed blob store: `$ARCA_HOME/blobs/sha256/<hex>`.
//!
//! Blobs are immutable files named by the SHA-256 of their bytes. The store
//! knows nothing of images: [`crate::image`] decides what the bytes mean.
//!
//! Invariants:
//! - **A blob appears only complete and correct:** [`BlobStore::writer`]
//!   writes a temporary file under `tmp/`, hashes while writing, fsyncs and
//!   renames it into `sha256/` under its digest. A crash leaves at most a
//!   temporary file, never a blob a later reader could trust.
//! - **Verified blobs carry a stamp:** every blob is written read-only with
//!   its modification time set to [`VERIFIED_MTIME`]. Writing to a blob in
//!   place changes that time, so [`BlobStore::check`] re-hashes exactly the
//!   blobs that may have changed (a cheap `stat` for the rest) and discards
//!   a blob whose bytes no longer match its name.
//! - **Garbage collection never races a writer:** writers hold the store
//!   lock shared ([`BlobStore::lock_shared`]) from before their first write
//!   until their references are recorded; [`BlobStore::gc`] runs under the
//!   exclusive lock.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};

/// How much a writer writes between two early-writeback hints.
const WRITEBACK_STEP: u64 = 8 << 20;
/// The modification time every verified blob carries (2001-09-09).
pub const VERIFIED_MTIME: i64 = 1_000_000_000;
const ALGORITHM: &str = "sha256";

/// A SHA-256 content digest, `sha256:<64 lowercase hex>`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<hex>` (or bare hex); anything else is an error that
    /// names the text.
    pub fn parse(text: &str) -> Result<Self> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        {
            bail!(
                "`{}` is not a sha256 digest (expected `sha256:` and 64 lowercase hex digits).",
                text.escape_debug()
            );
        }
        Ok(Self {
            hex: hex.to_owned(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            hex: format!("{:x}", Sha256::digest(bytes)),
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl TryFrom<String> for Digest {
    type Error = anyhow::Error;
    fn try_from(text: String) -> Result<Self> {
        Self::parse(&text)
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{ALGORITHM}:{}", self.hex)
    }
}

/// What [`BlobStore::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Present, and its bytes match its name.
    Good,
    /// Not in the store.
    Missing,
    /// Its bytes did not match its name (or its size was wrong); it has
    /// been removed.
    Discarded,
}

/// What a garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed: usize,
    /// Bytes of the removed blobs (their disk space is free unless another
    /// hard link to the same file remains).
    pub bytes: u64,
    pub kept: usize,
}

/// Why writing at `path` failed, and what to do, for messages: a full
/// disk, a read-only file system and a missing permission each say so.
pub fn why_unwritable(error: &io::Error, path: &Path) -> String {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    const EROFS: i32 = 30;
    match (error.kind(), error.raw_os_error()) {
        (io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded, _)
        | (_, Some(ENOSPC | EDQUOT)) => format!(
            "the disk is full (no space left on the file system holding {}). Free some space (`arca prune local`, `arca prune cache`) or set ARCA_HOME to a directory on a larger disk",
            path.display()
        ),
        (io::ErrorKind::ReadOnlyFilesystem, _) | (_, Some(EROFS)) => format!(
            "{} is on a read-only file system. Remount it writable or set ARCA_HOME to a writable directory",
            path.display()
        ),
        (io::ErrorKind::PermissionDenied, _) => format!(
            "{} is not writable by this user. Fix its permissions or set ARCA_HOME to a writable directory",
            path.display()
        ),
        _ => "is the disk full or the directory unwritable?".to_owned(),
    }
}

/// The blob store under one root directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The store at `$ARCA_HOME/blobs`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join(ALGORITHM).join(digest.hex())
    }

    fn ensure_dirs(&self) -> Result<()> {
        for dir in [self.root.join(ALGORITHM), self.root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(|error| {
                let why = why_unwritable(&error, &dir);
                anyhow::Error::new(error).context(format!(
                    "Failed to create the blob store directory {}: {why}",
                    dir.display()
                ))
            })?;
        }
        Ok(())
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter> {
        self.ensure_dirs()?;
        let tmp = self.root.join("tmp");
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&tmp)
            .map_err(|error| {
                let why = why_unwritable(&error, &tmp);
                anyhow::Error::new(error).context(format!(
                    "Failed to create a temporary file in {}: {why}",
                    tmp.display()
                ))
            })?;
        Ok(BlobWriter {
            store: self.clone(),
            file: Some(io::BufWriter::with_capacity(1 << 20, file)),
            hasher: Sha256::new(),
            written: 0,
            writeback_from: 0,
        })
    }

    /// Stores everything `reader` yields; returns its digest and size.
    /// Copies in 1 MiB steps (`io::copy`'s 8 KiB steps cost a GB-sized
    /// layer a noticeable share of its import time).
    pub fn put(&self, mut reader: impl Read) -> Result<Written> {
        let mut writer = self.writer()?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let count = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(anyhow::Error::new(error).context("Failed to read a blob's bytes"));
                }
            };
            writer
                .write_all(&buffer[..count])
                .map_err(|error| writer.explain(error))?;
        }
        writer.commit()
    }

    /// Stores `bytes`.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Written> {
        self.put(bytes)
    }

    /// Whether the blob exists (not whether it is intact: see [`Self::check`]).
    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Opens a blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).with_context(|| {
            format!(
                "The blob {digest} is missing from {} (deleted by hand or by `arca prune`?)",
                self.root.display()
            )
        })
    }

    /// Reads a (small) blob whole, checking its digest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(digest)?
            .read_to_end(&mut bytes)
            .with_context(|| format!("Failed to read the blob {digest}"))?;
        if Digest::of(&bytes) != *digest {
            self.discard(digest);
            bail!(
                "The blob {digest} was corrupt (its bytes do not match its digest); it has been removed."
            );
        }
        Ok(bytes)
    }

    /// Whether the blob is present and intact. A blob whose verified stamp
    /// is gone (written to in place, or its size differs from `size`) is
    /// hashed again; one that does not match is removed.
    pub fn check(&self, digest: &Digest, size: Option<u64>) -> Result<Check> {
        let path = self.path(digest);
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Check::Missing),
            Err(error) => {
                return Err(error).with_context(|| format!("Cannot read {}", path.display()));
            }
        };
        if size.is_some_and(|size| size != metadata.len()) {
            tracing::warn!("blob {digest} has the wrong size; discarding it");
            self.discard(digest);
            return Ok(Check::Discarded);
        }
        if metadata.mtime() == VERIFIED_MTIME {
            return Ok(Check::Good);
        }
        self.verify(digest)
    }

    /// Hashes the blob; a mismatch removes it (with a logged warning).
    pub fn verify(&self, digest: &Digest) -> Result<Check> {
        let path = self.path(digest);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Check::Missing),
            Err(error) => {
                return Err(error).with_context(|| format!("Cannot read {}", path.display()));
            }
        };
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        if format!("{:x}", hasher.finalize()) != digest.hex() {
            tracing::warn!("blob {digest} is corrupt (its bytes do not match); discarding it");
            self.discard(digest);
            return Ok(Check::Discarded);
        }
        stamp_verified(&path);
        Ok(Check::Good)
    }

    /// Removes a blob (best effort).
    pub fn discard(&self, digest: &Digest) {
        let _ = fs::remove_file(self.path(digest));
    }

    /// Removes a blob this process just created, unless something else
    /// (an artifact's layout) links to it by now.
    pub fn discard_if_unlinked(&self, digest: &Digest) {
        let path = self.path(digest);
        if fs::metadata(&path).is_ok_and(|metadata| metadata.nlink() == 1) {
            let _ = fs::remove_file(path);
        }
    }

    /// Every digest in the store.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join(ALGORITHM);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(error).with_context(|| format!("Cannot read {}", dir.display()));
            }
        };
        Ok(entries
            .flatten()
            .filter_map(|entry| Digest::parse(&entry.file_name().to_string_lossy()).ok())
            .collect())
    }

    /// Takes the store lock shared (writers), waiting while a garbage
    /// collection runs.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        self.lock(libc::LOCK_SH)
    }

    /// Takes the store lock exclusively (garbage collection), waiting for
    /// writers to finish.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        self.lock(libc::LOCK_EX)
    }

    /// The exclusive lock if nobody holds the lock now.
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock>> {
        self.ensure_dirs()?;
        let file = self.lock_file()?;
        // SAFETY: flock on a file descriptor we own.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if result == 0 {
            Ok(Some(StoreLock { _file: file }))
        } else {
            Ok(None)
        }
    }

    fn lock_file(&self) -> Result<File> {
        let path = self.root.join("lock");
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("Failed to open the blob store lock {}", path.display()))
    }

    fn lock(&self, operation: libc::c_int) -> Result<StoreLock> {
        self.ensure_dirs()?;
        let file = self.lock_file()?;
        loop {
            // SAFETY: flock on a file descriptor we own.
            let result = unsafe { libc::flock(file.as_raw_fd(), operation) };
            if result == 0 {
                return Ok(StoreLock { _file: file });
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error).context("Failed to lock the blob store");
            }
        }
    }

    /// Removes every blob not in `live`, and every temporary file. The
    /// caller holds the exclusive lock (`_held`).
    pub fn gc(&self, live: &HashSet<Digest>, _held: &StoreLock) -> Result<GcReport> {
        let mut report = GcReport::default();
        for digest in self.list()? {
            if live.contains(&digest) {
                report.kept += 1;
                continue;
            }
            let path = self.path(&digest);
            let size = fs::metadata(&path)
                .map(|metadata| metadata.len())
                .unwrap_or(0);
            fs::remove_file(&path)
                .with_context(|| format!("Failed to remove {}", path.display()))?;
            report.removed += 1;
            report.bytes += size;
        }
        // Writers hold the shared lock, so every temporary file now is a
        // crashed writer's.
        if let Ok(entries) = fs::read_dir(self.root.join("tmp")) {
            for entry in entries.flatten() {
                let size = entry.metadata().map(|metadata| metadata.len()).unwrap_or(0);
                if fs::remove_file(entry.path()).is_ok() {
                    report.bytes += size;
                }
            }
        }
        Ok(report)
    }
}

/// A held store lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// A blob that was written: its digest, size, and whether it was new (not
/// in the store before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub digest: Digest,
    pub size: u64,
    pub created: bool,
}

/// A blob being written. Dropping it without [`commit`](Self::commit)
/// deletes the temporary file.
pub struct BlobWriter {
    store: BlobStore,
    file: Option<io::BufWriter<tempfile::NamedTempFile>>,
    hasher: Sha256,
    written: u64,
    /// Where the next early writeback starts.
    writeback_from: u64,
}

impl BlobWriter {
    /// Turns a write error into one that says where and what to do.
    pub fn explain(&self, error: io::Error) -> anyhow::Error {
        let tmp = self.store.root.join("tmp");
        let why = why_unwritable(&error, &tmp);
        anyhow::Error::new(error).context(format!(
            "Failed to write a blob into {}: {why}",
            tmp.display()
        ))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        Digest {
            hex: format!("{:x}", self.hasher.clone().finalize()),
        }
    }

    /// Syncs the file and moves it into place under its digest.
    pub fn commit(mut self) -> Result<Written> {
        let file = self.file.take().expect("committed once");
        let file = file
            .into_inner()
            .map_err(|error| self.explain(error.into_error()))?;
        file.as_file()
            .sync_all()
            .map_err(|error| self.explain(error))?;
        let digest = Digest {
            hex: format!("{:x}", std::mem::take(&mut self.hasher).finalize()),
        };
        let _ = fs::set_permissions(file.path(), fs::Permissions::from_mode(0o444));
        stamp_verified(file.path());
        let dest = self.store.path(&digest);
        let created = !dest.exists();
        file.persist(&dest).map_err(|error| {
            let why = why_unwritable(&error.error, &dest);
            anyhow::Error::new(error.error).context(format!(
                "Failed to move a blob into {}: {why}",
                dest.display()
            ))
        })?;
        if let Ok(dir) = File::open(self.store.root.join(ALGORITHM)) {
            let _ = dir.sync_all();
        }
        Ok(Written {
            digest,
            size: self.written,
            created,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        let count = file.write(buf)?;
        self.hasher.update(&buf[..count]);
        self.written += count as u64;
        // Start writeback of what reached the file so far (without
        // waiting), so the fsync at commit finds little left to write.
        let on_disk = self.written - file.buffer().len() as u64;
        if on_disk >= self.writeback_from + WRITEBACK_STEP {
            let fd = file.get_ref().as_file().as_raw_fd();
            // SAFETY: a hint on a file descriptor we own; errors are harmless.
            unsafe {
                libc::sync_file_range(
                    fd,
                    self.writeback_from as libc::off64_t,
                    (on_disk - self.writeback_from) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.writeback_from = on_disk;
        }
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

fn stamp_verified(path: &Path) {
    let stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(VERIFIED_MTIME as u64);
    let _ = filetime::set_file_mtime(path, filetime::FileTime::from_system_time(stamp));
}

#[cfg(test)]
mod tests {
    #[test]
    fn write_errors_say_why() {
        let path = Path::new("/home/u/.arca/blobs/tmp");
        let full = why_unwritable(&io::Error::from_raw_os_error(28), path);
        assert!(
            full.contains("the disk is full") && full.contains("/home/u/.arca/blobs/tmp"),
            "{full}"
        );
        let read_only = why_unwritable(&io::Error::from_raw_os_error(30), path);
        assert!(read_only.contains("read-only file system"), "{read_only}");
        let denied = why_unwritable(&io::Error::from(io::ErrorKind::PermissionDenied), path);
        assert!(denied.contains("not writable"), "{denied}");
    }

    #[test]
    fn a_writer_tells_its_digest_before_the_commit() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::at(root.path());
        let mut writer = store.writer().unwrap();
        writer.write_all(b"abc").unwrap();
        assert_eq!(writer.digest(), Digest::of(b"abc"));
        drop(writer);
        assert!(!store.has(&Digest::of(b"abc")));
        assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }

    use super::*;

    #[test]
    fn put_names_blobs_by_their_digest_and_reports_new_ones() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::at(root.path());
        let first = store.put_bytes(b"hello").unwrap();
        assert_eq!(
            first.digest.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(first.created);
        assert_eq!(first.size, 5);
        assert!(!store.put_bytes(b"hello").unwrap().created);
        assert_eq!(store.read(&first.digest).unwrap(), b"hello");
        assert!(store.has(&first.digest));
        assert_eq!(store.check(&first.digest, Some(5)).unwrap(), Check::Good);
        // Nothing is left in tmp/.
        assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_blob_changed_in_place_is_found_and_discarded() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::at(root.path());
        let written = store.put_bytes(b"some bytes").unwrap();
        let path = store.path(&written.digest);
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        fs::write(&path, b"SOME bytes").unwrap();
        assert_eq!(
            store.check(&written.digest, Some(10)).unwrap(),
            Check::Discarded
        );
        assert!(!store.has(&written.digest));
        assert_eq!(store.check(&written.digest, None).unwrap(), Check::Missing);
        // A truncated blob is caught by its size alone.
        let written = store.put_bytes(b"other").unwrap();
        assert_eq!(
            store.check(&written.digest, Some(99)).unwrap(),
            Check::Discarded
        );
    }

    #[test]
    fn an_untouched_blob_is_trusted_without_hashing_and_a_touched_one_is_rehashed() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::at(root.path());
        let written = store.put_bytes(b"abc").unwrap();
        let path = store.path(&written.digest);
        filetime::set_file_mtime(&path, filetime::FileTime::now()).unwrap();
        assert_eq!(store.check(&written.digest, Some(3)).unwrap(), Check::Good);
        assert_eq!(
            fs::metadata(&path).unwrap().mtime(),
            VERIFIED_MTIME,
            "restamped after a good hash"
        );
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::at(root.path());
        let mut writer = store.writer().unwrap();
        writer.write_all(b"half a blob").unwrap();
        drop(writer);
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn gc_keeps_live_blobs_and_frees_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::at(root.path());
        let live = store.put_bytes(b"live").unwrap().digest;
        let dead = store.put_bytes(b"dead!").unwrap().digest;
        fs::write(root.path().join("tmp/blob-crashed"), b"xyz").unwrap();
        let lock = store.lock_exclusive().unwrap();
        let report = store.gc(&HashSet::from([live.clone()]), &lock).unwrap();
        assert_eq!((report.removed, report.kept, report.bytes), (1, 1, 8));
        assert!(store.has(&live));
        assert!(!store.has(&dead));
        assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn the_exclusive_lock_waits_for_shared_holders() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::at(root.path());
        let shared = store.lock_shared().unwrap();
        let second = store.lock_shared().unwrap();
        assert!(store.try_lock_exclusive().unwrap().is_none());
        drop((shared, second));
        assert!(store.try_lock_exclusive().unwrap().is_some());
    }

    #[test]
    fn digests_parse_strictly() {
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(Digest::parse("sha256:../../etc").is_err());
        assert!(Digest::parse(&"A".repeat(64)).is_err());
    }
}
