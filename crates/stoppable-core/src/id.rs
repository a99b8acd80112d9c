//! Connection ids: a slot index and a generation, so a stale id is detected.

/// Names one tracked connection. Cheap to copy; a closed connection's id
/// never names a later connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnId {
    /// The slot index, dense from 0: drivers may use it to index their own
    /// per-connection table.
    pub fn index(self) -> usize {
        self.index as usize
    }
}
