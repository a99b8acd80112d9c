//! B17: the first signal stops gracefully, a second one forces the stop.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::{Stream, StreamExt};
use stoppable_core::Report;

use crate::stopper::Stopper;

/// Stops on the first item of `signals` and forces the stop (grace 0) on a
/// second one, if it comes before the stop completes; resolves to the
/// report. The runtime crates build `signals` from SIGTERM and SIGINT
/// (Ctrl-C on Windows): see their `stop_on_signals`.
pub async fn stop_on<S: Stream + Unpin>(stopper: &Stopper, mut signals: S) -> Report {
    if signals.next().await.is_none() {
        // No signal can come any more: wait for a stop started elsewhere.
        return stopper.stopping().await;
    }
    stopper.request_stop();
    match select(stopper.stopping(), signals.next()).await {
        Either::Left((report, _)) => report,
        Either::Right((second, stopping)) => {
            if second.is_some() {
                stopper.request_stop_within(Duration::ZERO);
            }
            stopping.await
        }
    }
}

/// Resolves on SIGTERM or SIGINT: the first starts a graceful stop, a
/// second forces it (B17); resolves to the report. For runtimes on
/// async-io (smol, async-std).
///
/// The handlers are installed by this call, not when the future is first
/// polled: a signal that comes in between is not lost (nor does it kill
/// the process, a signal's default action). An error (out of descriptors,
/// say) comes out of the future.
#[cfg(feature = "signal")]
pub fn stop_on_signals(
    stopper: &Stopper,
) -> impl std::future::Future<Output = std::io::Result<Report>> + Send + 'static {
    use async_signal::{Signal, Signals};
    let signals = Signals::new([Signal::Term, Signal::Int]);
    let stopper = stopper.clone();
    async move { Ok(stop_on(&stopper, signals?).await) }
}
