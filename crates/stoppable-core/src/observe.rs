//! Where the core reads what a connection is doing, right before it decides
//! about it (B21).

use crate::{ConnId, Progress};

/// The driver's view of its connections, read by the core at the moment it
/// decides about one (a close, a force, the end of the readiness delay,
/// any timer), so that no decision is taken on a report from an earlier
/// moment.
///
/// A driver whose connections count their own progress (two counters on
/// the connection's memory, as the `stoppable` crate's do) hands the core
/// an `Observe` over them: it then needs to report nothing while serving,
/// and nothing it forgot to report can make the core decide wrong. A driver
/// that reports every change as it happens uses `()`, which knows nothing
/// newer.
pub trait Observe {
    /// The connection's totals as they are now; `None` when there is
    /// nothing newer than what was reported.
    fn progress(&mut self, id: ConnId) -> Option<Progress>;

    /// Asked before a connection that looks idle is closed: look harder for
    /// request bytes nobody has read yet (peek at the socket), and count
    /// them in [`Progress::arrived`], so the request they begin is served
    /// (B4). Defaults to [`progress`](Observe::progress).
    fn look_closer(&mut self, id: ConnId) -> Option<Progress> {
        self.progress(id)
    }
}

/// Knows nothing newer than what the driver reported.
impl Observe for () {
    fn progress(&mut self, _: ConnId) -> Option<Progress> {
        None
    }
}
