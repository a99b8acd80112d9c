//! The core's timers, in a task of their own.
//!
//! Spawned on the server's runtime when the stop begins (or when serving
//! starts, if connections have a maximum age, B23), and ended with the
//! stop: the ages, the readiness delay, the first-request windows, the head
//! deadlines, the GOAWAY timeout and the grace all fire whether or not the
//! server future (or a tracker's `Drive`) is still polled, or a `Stopping`
//! awaited. A stop driven by a future the user may drop, or that may
//! panic, is a stop that may never end (B21); hence a task that belongs to
//! the stop. It holds the server weakly: a server dropped while serving,
//! with nothing left of it, ends the task too.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::runtime::Runtime;
use crate::shared::Shared;

pub(crate) struct Timers<R: Runtime> {
    shared: Weak<Shared>,
    runtime: R,
    armed: Option<(Instant, Pin<Box<R::Sleep>>)>,
}

impl<R: Runtime> Timers<R> {
    /// Spawns the timer task of `shared` on `runtime`.
    pub(crate) fn spawn(runtime: &R, shared: &Arc<Shared>) {
        let timers = Timers {
            shared: Arc::downgrade(shared),
            runtime: runtime.clone(),
            armed: None,
        };
        runtime.spawn(timers);
    }
}

// The sleep is boxed: nothing is pinned in place.
impl<R: Runtime> Unpin for Timers<R> {}

impl<R: Runtime> Future for Timers<R> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(shared) = this.shared.upgrade() else {
            return Poll::Ready(());
        };
        loop {
            let next = match shared.poll_timer(cx.waker()) {
                Ok(_report) => return Poll::Ready(()),
                Err(next) => next,
            };
            match next {
                None => this.armed = None,
                Some(at) if this.armed.as_ref().map(|(t, _)| *t) != Some(at) => {
                    this.armed = Some((at, Box::pin(this.runtime.sleep_until(at))));
                }
                Some(_) => {}
            }
            let Some((_, sleep)) = this.armed.as_mut() else {
                return Poll::Pending;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.armed = None;
            shared.handle_timeout();
        }
    }
}
