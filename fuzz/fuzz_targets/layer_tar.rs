//! Image tar streams are untrusted: an engine's `docker save` archive is
//! imported into the blob store (checked against an image id it cannot
//! match, so nothing may be kept), and the same bytes as a stored layer are
//! searched for a path and one file read from it, bounded. Nothing may
//! panic, and a refused import leaves no blob it created.
#![no_main]

use std::sync::OnceLock;

use arca::blobs::{BlobStore, Digest};
use arca::image::base::{CreatedBlobs, import, take_back};
use arca::image::lookup::{has_path, read_file};
use libfuzzer_sys::fuzz_target;

fn store() -> &'static BlobStore {
    static DIR: OnceLock<(tempfile::TempDir, BlobStore)> = OnceLock::new();
    let (_, store) = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::at(dir.path().join("blobs"));
        (dir, store)
    });
    store
}

fuzz_target!(|data: &[u8]| {
    let blobs = store();
    let created = CreatedBlobs::default();
    let unmatched = Digest::of(b"no archive has this config");
    if import(blobs, data, &unmatched, &created).is_err() {
        take_back(blobs, &created);
    }
    let Ok(written) = blobs.put_bytes(data) else {
        return;
    };
    let digest = written.digest.clone();
    let layer = written.into();
    let path = "/etc/ssl/certs/ca-certificates.crt";
    let _ = has_path(blobs, std::slice::from_ref(&layer), path);
    if let Ok(bytes) = read_file(blobs, &layer, path, 1 << 16) {
        assert!(bytes.len() <= 1 << 16, "read past its bound");
    }
    blobs.discard_if_unlinked(&digest);
});
