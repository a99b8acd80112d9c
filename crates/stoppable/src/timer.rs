//! Arms the runtime's timer for the drain's next timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::runtime::Runtime;
use crate::shared::Shared;

pub(crate) struct DrainTimer<R: Runtime> {
    armed: Option<(Instant, Pin<Box<R::Sleep>>)>,
}

impl<R: Runtime> DrainTimer<R> {
    pub(crate) fn new() -> Self {
        DrainTimer { armed: None }
    }

    /// Fires the core's timeouts that are due; `Ready` when one fired, so
    /// the caller looks at the state again. Pending with the timer armed.
    pub(crate) fn poll(&mut self, runtime: &R, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = shared.lock().core.poll_timeout();
        match deadline {
            None => self.armed = None,
            Some(at) if self.armed.as_ref().map(|(t, _)| *t) != Some(at) => {
                self.armed = Some((at, Box::pin(runtime.sleep_until(at))));
            }
            Some(_) => {}
        }
        let Some((_, sleep)) = self.armed.as_mut() else {
            return Poll::Pending;
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.armed = None;
        shared.handle_timeout();
        Poll::Ready(())
    }
}
