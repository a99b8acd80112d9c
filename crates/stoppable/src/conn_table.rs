//! The server's table of connection slots, which the core reads whenever it
//! decides about a connection (B21): each slot holds the counters its own
//! tasks keep, so what the core reads is what the connection is doing now.

use std::sync::Arc;

use stoppable_core::{ConnId, Observe, Progress};

use crate::slot::ConnSlot;

/// Open connections by slot index, as the core numbers them.
#[derive(Default)]
pub(crate) struct ConnTable(Vec<Option<Arc<ConnSlot>>>);

impl ConnTable {
    pub(crate) fn insert(&mut self, slot: Arc<ConnSlot>) {
        let index = slot.id.index();
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        self.0[index] = Some(slot);
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&Arc<ConnSlot>> {
        self.0
            .get(id.index())?
            .as_ref()
            .filter(|slot| slot.id == id)
    }

    pub(crate) fn remove(&mut self, id: ConnId) {
        if let Some(entry) = self.0.get_mut(id.index()) {
            if entry.as_ref().is_some_and(|slot| slot.id == id) {
                *entry = None;
            }
        }
    }
}

impl Observe for ConnTable {
    fn progress(&mut self, id: ConnId) -> Option<Progress> {
        Some(self.get(id)?.progress())
    }

    /// Request bytes may wait unread in the kernel: they begin a request.
    /// (Not on a raw connection: there bytes are work only once its owner
    /// says so, and its `Closing` waits while any wait unread.)
    fn look_closer(&mut self, id: ConnId) -> Option<Progress> {
        let slot = self.get(id)?;
        if !slot.is_raw() {
            slot.note_unread_bytes();
        }
        Some(slot.progress())
    }
}
