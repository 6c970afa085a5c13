//! The layer-store half of `arca prune`: after artifacts are removed,
//! collect the blobs no remaining artifact references and report the bytes
//! freed. Waits (saying so) while a build holds the store.

use anyhow::Result;

use crate::blobs::BlobStore;
use crate::image::base::Bases;
use crate::image::gc::{self, Home};

/// Collects unreferenced blobs under `$ARCA_HOME` and prints what it freed.
pub fn collect_and_report() -> Result<()> {
    let home = crate::paths::arca_home()?;
    let blobs = BlobStore::at(home.join("blobs"));
    if !blobs.root().exists() {
        return Ok(());
    }
    let bases = Bases::at(home.join("bases"));
    let artifacts = home.join("containers");
    let report = gc::collect(
        &Home {
            blobs: &blobs,
            bases: &bases,
            artifacts: &artifacts,
        },
        &|| eprintln!("A build is writing to the layer store; waiting for it to finish..."),
    )?;
    println!(
        "Freed {} from the layer store ({} unreferenced blob(s) removed, {} kept).",
        human_bytes(report.bytes),
        report.removed,
        report.kept
    );
    Ok(())
}

fn human_bytes(bytes: u64) -> String {
    format!("{} ({bytes} bytes)", crate::units::human_size(bytes))
}
