//! In-memory tar archives for engines: image build contexts (fixed mtimes
//! so the classic builder's layer cache hits, modes set in the entries, not
//! by `COPY --chmod`) and source trees shipped to remote engines.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Builds an uncompressed tar archive in memory with reproducible headers
/// (mtime 0, owner 0:0).
pub struct TarContext {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for TarContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TarContext {
    pub fn new() -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        Self { builder }
    }

    /// Adds a regular file with the given mode (e.g. `0o755` for a binary).
    pub fn add_file(&mut self, path: &str, contents: &[u8], mode: u32) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(contents.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        self.builder
            .append_data(&mut header, path, contents)
            .with_context(|| format!("Failed to add {path} to the tar archive"))
    }

    /// Adds a directory entry.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        self.builder
            .append_data(&mut header, path, std::io::empty())
            .with_context(|| format!("Failed to add {path}/ to the tar archive"))
    }

    /// Adds the tree at `root` under `prefix` (no leading `/`), skipping
    /// every directory named in `skip` (e.g. `target`, `.git`). Symlinks are
    /// stored as links, never followed, so link loops cannot recurse.
    pub fn add_tree(&mut self, root: &Path, prefix: &str, skip: &[&str]) -> Result<()> {
        self.add_dir(prefix, 0o755)?;
        self.add_tree_inner(root, prefix, skip)
    }

    fn add_tree_inner(&mut self, dir: &Path, prefix: &str, skip: &[&str]) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("Cannot read directory {}", dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("Cannot read directory {}", dir.display()))?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                anyhow::bail!(
                    "{} has a name that is not UTF-8; rename it to ship the source to a remote engine.",
                    entry.path().display()
                );
            };
            let file_type = entry
                .file_type()
                .with_context(|| format!("Cannot read {}", entry.path().display()))?;
            let archive_path = format!("{prefix}/{name}");
            if file_type.is_dir() {
                if skip.contains(&name) {
                    continue;
                }
                self.add_dir(&archive_path, 0o755)?;
                self.add_tree_inner(&entry.path(), &archive_path, skip)?;
            } else if file_type.is_file() || file_type.is_symlink() {
                if file_type.is_file() {
                    self.add_exact_mtime(&entry.path())?;
                }
                self.builder
                    .append_path_with_name(entry.path(), &archive_path)
                    .with_context(|| format!("Cannot read {}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    /// A PAX header carrying the file's mtime to the nanosecond, for the
    /// entry that follows (tar headers hold whole seconds). Cargo in a
    /// remote build judges freshness by mtimes: a source saved within the
    /// second after the last build would otherwise look older than its
    /// output and not be rebuilt.
    fn add_exact_mtime(&mut self, path: &Path) -> Result<()> {
        let modified = fs::metadata(path)
            .and_then(|metadata| metadata.modified())
            .with_context(|| format!("Cannot read {}", path.display()))?;
        let Ok(since_epoch) = modified.duration_since(std::time::UNIX_EPOCH) else {
            return Ok(());
        };
        let record = pax_record(
            "mtime",
            &format!(
                "{}.{:09}",
                since_epoch.as_secs(),
                since_epoch.subsec_nanos()
            ),
        );
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_size(record.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header
            .set_path("PaxHeader")
            .context("Failed to name a PAX header")?;
        header.set_cksum();
        self.builder
            .append(&header, record.as_bytes())
            .with_context(|| format!("Failed to add the mtime of {}", path.display()))
    }

    /// The finished archive.
    pub fn finish(self) -> Result<Vec<u8>> {
        self.builder
            .into_inner()
            .context("Failed to finish the tar archive")
    }
}

/// One PAX record, `"<length> <key>=<value>\n"`, whose length counts
/// itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut length = body.len() + 1;
    while length.to_string().len() + body.len() != length {
        length = length.to_string().len() + body.len();
    }
    format!("{length}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_files_carry_their_mtime_to_the_nanosecond() {
        assert_eq!(pax_record("mtime", "1.5"), "13 mtime=1.5\n");
        assert_eq!(
            pax_record("mtime", "1796563446.123456789"),
            "30 mtime=1796563446.123456789\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("main.rs");
        std::fs::write(&file, b"fn main() {}").unwrap();
        let exact = filetime::FileTime::from_unix_time(1_796_563_446, 123_456_789);
        filetime::set_file_mtime(&file, exact).unwrap();
        let mut context = TarContext::new();
        context.add_tree(dir.path(), "src", &[]).unwrap();
        let archive = context.finish().unwrap();
        let mut archive = tar::Archive::new(archive.as_slice());
        let mut found = None;
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().ends_with("main.rs") {
                let mtime = entry
                    .pax_extensions()
                    .unwrap()
                    .expect("a PAX header")
                    .map(|extension| extension.unwrap())
                    .find(|extension| extension.key() == Ok("mtime"))
                    .map(|extension| extension.value().unwrap().to_owned());
                found = Some((mtime, entry.header().mtime().unwrap()));
            }
        }
        assert_eq!(
            found,
            Some((Some("1796563446.123456789".to_owned()), 1_796_563_446))
        );
    }

    #[test]
    fn files_keep_their_mode_and_a_zero_mtime() {
        let mut context = TarContext::new();
        context
            .add_file("Containerfile", b"FROM scratch\n", 0o644)
            .unwrap();
        context.add_file("hello", b"\x7fELF", 0o755).unwrap();
        let bytes = context.finish().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let headers: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().display().to_string(),
                    header.mode().unwrap(),
                    header.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            headers,
            [
                ("Containerfile".to_owned(), 0o644, 0),
                ("hello".to_owned(), 0o755, 0)
            ]
        );
    }

    #[test]
    fn trees_skip_named_dirs_and_keep_symlinks() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("src")).unwrap();
        fs::create_dir_all(root.path().join("target/debug")).unwrap();
        fs::write(root.path().join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(root.path().join("target/debug/big"), "x").unwrap();
        std::os::unix::fs::symlink(".", root.path().join("src/loop")).unwrap();
        let mut context = TarContext::new();
        context
            .add_tree(root.path(), "work/source", &["target"])
            .unwrap();
        let bytes = context.finish().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let paths: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "work/source",
                "work/source/src",
                "work/source/src/loop",
                "work/source/src/main.rs"
            ]
        );
    }
}
