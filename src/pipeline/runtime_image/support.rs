//! Small helpers the packaging stages share: blocking work that honours
//! cancellation, throttled byte progress, short digests.

use anyhow::anyhow;
use tokio_util::sync::CancellationToken;

use crate::blobs::Digest;
use crate::pipeline::job::{BuildError, BuildEvent, EventSink};

/// The smallest step between two progress reports of a byte stream.
pub(super) const REPORT_BYTES: u64 = 1 << 20;

/// Runs blocking work off the async threads. A cancellation answers
/// `Cancelled`, but only once the work has ended, so nothing it writes
/// lands after the build cleaned up.
pub(super) async fn blocking<T: Send + 'static>(
    cancel: &CancellationToken,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, BuildError> {
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    let joined = tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| anyhow!("A store task failed: {error}"))?;
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    joined.map_err(BuildError::Failed)
}

/// A progress callback that reports at most ~200 times per stream.
pub(super) fn throttled<'a>(
    events: EventSink<'a>,
    total: Option<u64>,
    make: impl Fn(u64, Option<u64>) -> BuildEvent + Send + Sync + 'a,
) -> impl Fn(u64) + Send + Sync + 'a {
    let step = total.map_or(REPORT_BYTES, |total| (total / 200).max(REPORT_BYTES));
    let last = std::sync::atomic::AtomicU64::new(0);
    move |current| {
        let previous = last.load(std::sync::atomic::Ordering::Relaxed);
        if current < previous + step {
            return;
        }
        last.store(current, std::sync::atomic::Ordering::Relaxed);
        events(make(current, total.map(|total| total.max(current))));
    }
}

pub(super) fn short(digest: &Digest) -> String {
    format!("sha256:{}", &digest.hex()[..12])
}
