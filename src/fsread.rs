//! Reading the files Arca reads from a crate or its store, safely.
//!
//! A crate or store file may be anything the user (or an attacker) put
//! there: a named pipe that never answers, a link to `/dev/zero`, a socket,
//! a file of gigabytes. [`read`] opens the path (following symlinks) without
//! blocking, checks that what it opened is a regular file, and reads at most
//! the size bound of its [`Kind`]; anything else is refused with a message
//! naming the file and what it is ("`.arca/config.toml` is a named pipe;
//! Arca reads regular files only.").
//!
//! **Every read of a crate or store file goes through here.** A missing file
//! keeps `ErrorKind::NotFound`, so callers can still treat it as absent.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What kind of file is read; each has its own size bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.arca/config.toml`.
    Config,
    /// A `Cargo.toml`.
    CargoManifest,
    /// A `Cargo.lock`, `.cargo/config*` or `rust-toolchain*` file cargo or
    /// rustup reads.
    CargoSupport,
    /// An artifact record (`metadata.toml`) in the store.
    StoreRecord,
    /// An artifact's recorded input manifest (`inputs.json`).
    InputManifest,
    /// A cache record Arca wrote itself (`cargo metadata` cache).
    CacheRecord,
    /// A compiler dep-info (`.d`) file or build-script output.
    BuildOutput,
    /// A source file read for display (compiler diagnostics).
    Source,
}

impl Kind {
    /// The largest file of this kind Arca reads.
    pub const fn max_bytes(self) -> u64 {
        const MIB: u64 = 1 << 20;
        match self {
            // Generous: a 10 MB config is still checked (and located).
            Kind::Config => 16 * MIB,
            Kind::CargoManifest => 8 * MIB,
            Kind::CargoSupport => 64 * MIB,
            Kind::StoreRecord => MIB,
            Kind::InputManifest => 256 * MIB,
            Kind::CacheRecord => 64 * MIB,
            Kind::BuildOutput => 64 * MIB,
            Kind::Source => 64 * MIB,
        }
    }
}

/// Reads a whole regular file of `kind`, refusing anything else.
pub fn read(path: &Path, kind: Kind) -> io::Result<Vec<u8>> {
    let file = open(path)?;
    let limit = kind.max_bytes();
    let size = file.metadata()?.len();
    if size > limit {
        return Err(too_large(path, size, limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // The file may grow while read: never past the bound.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// Checks, without reading it, that `path` is a regular file within the
/// bound of `kind` (for files another program reads, e.g. cargo).
pub fn check(path: &Path, kind: Kind) -> io::Result<()> {
    let file = open(path)?;
    let size = file.metadata()?.len();
    if size > kind.max_bytes() {
        return Err(too_large(path, size, kind.max_bytes()));
    }
    Ok(())
}

/// Reads a whole regular file of `kind` as UTF-8 text.
pub fn read_to_string(path: &Path, kind: Kind) -> io::Result<String> {
    let bytes = read(path, kind)?;
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{}` is not valid UTF-8 text.", path.display()),
        )
    })
}

/// Opens `path` for reading only if it is (or links to) a regular file,
/// without ever blocking on a named pipe or device.
pub fn open(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "`{}` is {}; Arca reads regular files only. Replace it with a regular file.",
                path.display(),
                describe(file_type)
            ),
        ));
    }
    // Back to blocking reads for the regular file (the flag changes
    // nothing for it, but keep the descriptor ordinary).
    clear_nonblocking(&file);
    Ok(file)
}

/// Whether `path` is (or links to) a regular file, without opening it.
pub fn is_regular_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file())
}

fn clear_nonblocking(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

fn describe(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a named pipe"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

fn too_large(path: &Path, size: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "`{}` is {} bytes, over the {} MiB Arca reads for this kind of file. Is it the right file?",
            path.display(),
            size,
            limit >> 20
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fifos_devices_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.toml");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
        let error = read(&fifo, Kind::Config).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is a named pipe; Arca reads regular files only")
        );

        let zero = dir.path().join("zero.toml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let error = read(&zero, Kind::Config).unwrap_err();
        assert!(error.to_string().contains("a character device"), "{error}");

        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; (Kind::Config.max_bytes() + 1) as usize]).unwrap();
        let error = read(&big, Kind::Config).unwrap_err();
        assert!(error.to_string().contains("over the 16 MiB"), "{error}");

        let error = read(dir.path(), Kind::Config).unwrap_err();
        assert!(error.to_string().contains("a directory"), "{error}");

        let missing = read(&dir.path().join("nope"), Kind::Config).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);

        let fine = dir.path().join("fine.toml");
        std::fs::write(&fine, "[rust]\n").unwrap();
        assert_eq!(read_to_string(&fine, Kind::Config).unwrap(), "[rust]\n");
    }
}
