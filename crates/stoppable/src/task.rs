//! The application's own work in the stop (B24): a future tracked like a
//! connection's request. The stop waits for it within the same grace,
//! cancels it at the grace deadline, and counts it in the report.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use event_listener::EventListener;

use crate::shared::Shared;
use crate::stopper::wait_for;

/// Why a [`TrackedTask`] gave no output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The grace ended while it ran, or it was tracked after that: it was
    /// cancelled (dropped at its next poll), and the report counts it.
    Cancelled,
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stop's grace ended: the task was cancelled")
    }
}

impl std::error::Error for TaskError {}

pin_project_lite::pin_project! {
    /// A task the stop waits for, from
    /// [`Stopper::track_task`](crate::Stopper::track_task): spawn it (or
    /// await it) as you would the future it wraps. It resolves to the
    /// future's output, or to [`TaskError::Cancelled`] at the grace
    /// deadline. It counts from its creation, so a task created but not yet
    /// first polled holds the stop too. Dropping it ends it: counted
    /// finished.
    #[must_use = "a tracked task does nothing unless spawned or awaited"]
    pub struct TrackedTask<F> {
        #[pin]
        task: Option<F>,
        shared: Arc<Shared>,
        listener: Option<EventListener>,
        // The stop counts this task: it must hear of its end.
        counted: bool,
    }

    impl<F> PinnedDrop for TrackedTask<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // The future's own drop (a rollback, a flush) runs first: the
            // stop must not end before it.
            this.task.set(None);
            if *this.counted {
                this.shared.task_finished();
            }
        }
    }
}

impl<F> TrackedTask<F> {
    pub(crate) fn new(task: F, shared: Arc<Shared>) -> Self {
        let counted = shared.task_started();
        TrackedTask {
            task: counted.then_some(task),
            shared,
            listener: None,
            counted,
        }
    }
}

impl<F: Future> Future for TrackedTask<F> {
    type Output = Result<F::Output, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(task) = this.task.as_mut().as_pin_mut() else {
            return Poll::Ready(Err(TaskError::Cancelled));
        };
        if !this.shared.tasks_cut() {
            if let Poll::Ready(output) = task.poll(cx) {
                this.task.set(None);
                *this.counted = false;
                this.shared.task_finished();
                return Poll::Ready(Ok(output));
            }
            let shared = &**this.shared;
            let cut = |s: &Shared| s.tasks_cut().then_some(());
            if wait_for(shared, this.listener, cx, cut).is_pending() {
                return Poll::Pending;
            }
        }
        // Cancelled: the core counted it so already.
        this.task.set(None);
        *this.counted = false;
        Poll::Ready(Err(TaskError::Cancelled))
    }
}
