//! The listener's end at a stop: the one place that closes a listener the
//! way B1 and B22 ask, for the server and for your own accept loop alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::{Accept, Accepted, Runtime};
use crate::shared::Shared;
use crate::{socket, socket_owners, syn_queue};

/// Accept failures in a row that end the drain: one failure (a client that
/// gave up while queued) must not end it, or the rest of the queue would
/// be reset. Running short of descriptors is no failure: the drain waits
/// (see [`is_shortage`]).
const MAX_FAILURES: u32 = 64;

/// Connections one drain takes from the queue at most (Linux's largest
/// default backlog): where no filter refuses new attempts (another
/// system), clients connecting faster than the drain
/// accepts must not hold it forever.
const MAX_QUEUED: u32 = 4096;

/// Once new connection attempts are refused, how long handshakes already
/// under way get to land in the accept queue before its last drain.
const HANDSHAKE_SETTLE: Duration = Duration::from_millis(5);

/// After the settle, while the kernel lists handshakes still under way,
/// how often it is asked again at most: each look walks the kernel's table
/// of sockets, in the drain's task, and the next waits at least twice as
/// long as the last took.
const HANDSHAKE_LOOK_AGAIN: Duration = Duration::from_millis(10);

/// Closes a listener at a stop, and tells the stop, which may then
/// complete.
///
/// A socket this server holds alone is drained (B1): new connection
/// attempts are refused for a moment, so that every connection the kernel
/// completed is handed out to be served, and later connects are refused
/// once the listener closes. A socket others hold too (inherited by socket
/// activation, handed to a new process, held by a sibling: see
/// [`shared`](ListenerDrain::shared) and
/// [`Stopper::share_listener`](crate::Stopper::share_listener)) is only
/// closed: what is queued stays for the others, and nothing is done to the
/// socket that could refuse or drop their connections (B22). Made by
/// [`Tracker::drain_listener`](crate::Tracker::drain_listener); the server
/// uses one of its own.
///
/// Dropping it at any point closes the listener and tells the stop too,
/// leaving no filter on the socket: a stop never waits for a drain nobody
/// runs.
#[must_use = "the listener closes only when this is run or dropped"]
pub struct ListenerDrain<A, R: Runtime> {
    listener: Option<A>,
    /// Others hold the socket too (B22).
    shared_socket: bool,
    runtime: R,
    shared: Arc<Shared>,
    /// While new attempts are refused: what lets them in again, before the
    /// close (a plain function, so that a drop can call it without the
    /// bounds `Drop` cannot ask for), and on which of the sockets.
    refusing: Option<Refusing<A>>,
    stage: Stage<R::Sleep>,
    failures: u32,
    /// Connections taken from the queue so far ([`MAX_QUEUED`]).
    queued: u32,
    /// Until when handshakes still under way after the settle are waited
    /// for: the first-request window from the stop (B1, B4).
    handshakes_until: Option<Instant>,
    /// Until the next look at them ([`HANDSHAKE_LOOK_AGAIN`]).
    look_again: Duration,
}

/// What lets new attempts in again, and on which of the listener's
/// sockets (their indices in [`Accept::sockets`]).
type Refusing<A> = (fn(&A, &[usize]), Vec<usize>);

/// Where a drain is.
enum Stage<Sleep> {
    /// Not polled yet.
    Start,
    /// New attempts refused; handshakes under way land in the queue.
    Settling(Pin<Box<Sleep>>),
    /// Taking what the kernel queued.
    Queue,
    /// The process is short of descriptors (or memory): the stop's own
    /// closes give them back, and the queue waits for them, not reset.
    Short(Pin<Box<Sleep>>),
}

/// What one look at the queue found.
enum Queued<Io> {
    Conn(Accepted<Io>),
    /// Short of descriptors: worth waiting for.
    Short,
    /// Nothing left: the listener is closed.
    Closed,
}

/// Whether waiting for descriptors may help: connections are still open,
/// whose closes give theirs back, and the stop has time. Else the wait
/// could last for ever, and every stop must end.
fn closes_to_come(shared: &Shared) -> bool {
    shared.open() > 0 && !shared.is_forcing()
}

/// An accept that failed for want of descriptors or memory, which the
/// process or the system gets back as connections close: not a reason to
/// reset the queue (B1), while connections are left to close and the stop
/// has time.
fn is_shortage(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    let codes = [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM];
    // WSAEMFILE, WSAENOBUFS.
    #[cfg(windows)]
    let codes = [10024, 10055];
    e.raw_os_error().is_some_and(|code| codes.contains(&code))
}

impl<A: Accept, R: Runtime> ListenerDrain<A, R> {
    pub(crate) fn new(listener: A, runtime: R, shared: Arc<Shared>) -> Self {
        ListenerDrain {
            listener: Some(listener),
            shared_socket: false,
            runtime,
            shared,
            refusing: None,
            stage: Stage::Start,
            failures: 0,
            queued: 0,
            handshakes_until: None,
            look_again: HANDSHAKE_LOOK_AGAIN,
        }
    }

    /// Marks the socket as held by others too: it is closed, not drained.
    pub fn shared(mut self) -> Self {
        self.shared_socket = true;
        self
    }

    /// The next connection to serve; `None` once the listener is closed.
    pub async fn next(&mut self) -> Option<Accepted<A::Io>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next connection to serve: `Ready(None)` once the listener is
    /// closed and the stop told.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Accepted<A::Io>>> {
        if let Stage::Start = self.stage {
            // Sockets other processes hold too are left to them (B22).
            if self.left_to_others() {
                self.close();
                return Poll::Ready(None);
            }
            self.start_refusing();
        }
        loop {
            let Some(listener) = self.listener.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut self.stage {
                Stage::Settling(settle) => {
                    let mut failing = false;
                    while settle.as_mut().poll(cx).is_pending() {
                        match listener.poll_accept(cx) {
                            Poll::Ready(Ok(accepted)) => {
                                self.failures = 0;
                                return Poll::Ready(Some(accepted));
                            }
                            // The settle's end wakes this: the queue waits.
                            Poll::Ready(Err(e)) if is_shortage(&e) => return Poll::Pending,
                            Poll::Ready(Err(_)) if self.failures < MAX_FAILURES => {
                                self.failures += 1
                            }
                            Poll::Ready(Err(_)) => {
                                failing = true;
                                break;
                            }
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    // Accepts that keep failing end the wait: it would
                    // spin, and the queue is closed anyway.
                    if !failing && self.handshakes_to_wait_for() {
                        let until = self.runtime.now() + self.look_again;
                        self.stage = Stage::Settling(Box::pin(self.runtime.sleep_until(until)));
                        continue;
                    }
                }
                Stage::Short(pause) => {
                    if pause.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                Stage::Start | Stage::Queue => {}
            }
            self.stage = Stage::Queue;
            match self.take_queued() {
                Queued::Conn(accepted) => return Poll::Ready(Some(accepted)),
                Queued::Closed => return Poll::Ready(None),
                Queued::Short => {
                    let until = self.runtime.now() + crate::server::ACCEPT_ERROR_PAUSE;
                    self.stage = Stage::Short(Box::pin(self.runtime.sleep_until(until)));
                }
            }
        }
    }

    /// The next connection the kernel queued; or, when the stop still has
    /// time, word that the process is short of descriptors. Closes the
    /// listener when nothing is left.
    fn take_queued(&mut self) -> Queued<A::Io> {
        let Some(listener) = self.listener.as_mut() else {
            return Queued::Closed;
        };
        // Asking the kernel itself: the runtime may not know yet.
        while self.queued < MAX_QUEUED {
            let Some(accepted) = listener.accept_queued() else {
                break;
            };
            match accepted {
                Ok(accepted) => {
                    self.failures = 0;
                    self.queued += 1;
                    return Queued::Conn(accepted);
                }
                Err(e) if is_shortage(&e) && closes_to_come(&self.shared) => return Queued::Short,
                Err(_) if self.failures < MAX_FAILURES => self.failures += 1,
                Err(_) => break,
            }
        }
        self.close();
        Queued::Closed
    }
}

impl<A: Accept, R: Runtime> ListenerDrain<A, R> {
    /// Others hold the sockets too (marked so, or passed between processes):
    /// what is queued is theirs, and nothing is done to the sockets (B22).
    fn left_to_others(&self) -> bool {
        let Some(listener) = self.listener.as_ref() else {
            return false;
        };
        if self.shared_socket || self.shared.listener_shared() || listener.shared() {
            return true;
        }
        let sockets = listener.sockets();
        !sockets.is_empty() && sockets.into_iter().all(socket_owners::is_held_elsewhere)
    }

    /// From now on new attempts are refused on the sockets this process
    /// holds alone; handshakes under way land in the queue meanwhile, and
    /// are accepted while the drain settles.
    fn start_refusing(&mut self) {
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        let sockets = listener.sockets();
        let refused: Vec<usize> = (0..sockets.len())
            .filter(|&i| socket_owners::refuse_unless_held_elsewhere(sockets[i]))
            .collect();
        // Only TCP has handshakes under way to wait for: a Unix connect
        // is queued or refused at once.
        let settle = refused.iter().any(|&i| socket::has_handshakes(sockets[i]));
        drop(sockets);
        self.stage = if !settle {
            Stage::Queue
        } else {
            let now = self.runtime.now();
            self.handshakes_until = Some(now + self.shared.first_request_window());
            Stage::Settling(Box::pin(self.runtime.sleep_until(now + HANDSHAKE_SETTLE)))
        };
        self.refusing = (!refused.is_empty()).then_some((stop_refusing::<A>, refused));
    }
}

impl<A: Accept, R: Runtime> ListenerDrain<A, R> {
    /// Whether the kernel still lists handshakes under way on a socket that
    /// refuses new attempts, and the drain may wait for them: their clients
    /// may count themselves connected already (the last ACK on its way over
    /// a long round trip, or held by `TCP_DEFER_ACCEPT` until their first
    /// bytes), and would be reset by the close (B1). They get the
    /// first-request window from the stop, as a connection accepted then
    /// does (B4), within the grace.
    fn handshakes_to_wait_for(&mut self) -> bool {
        let (Some(listener), Some((_, refused)), Some(until)) = (
            self.listener.as_ref(),
            self.refusing.as_ref(),
            self.handshakes_until,
        ) else {
            return false;
        };
        if self.runtime.now() >= until || self.shared.is_forcing() {
            return false;
        }
        let looked = std::time::Instant::now();
        let sockets = listener.sockets();
        let under_way = refused
            .iter()
            .any(|&i| sockets.get(i).is_some_and(|&s| syn_queue::under_way(s)));
        drop(sockets);
        self.look_again = HANDSHAKE_LOOK_AGAIN.max(2 * looked.elapsed());
        under_way
    }
}

impl<A, R: Runtime> ListenerDrain<A, R> {
    /// Takes the filter off (B22), closes the listener, tells the stop.
    fn close(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        if let Some((stop_refusing, refused)) = self.refusing.take() {
            stop_refusing(&listener, &refused);
        }
        drop(listener);
        self.shared.listener_closed();
    }
}

impl<A, R: Runtime> Drop for ListenerDrain<A, R> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Lets new attempts in again on the sockets refused (B22).
fn stop_refusing<A: Accept>(listener: &A, refused: &[usize]) {
    let sockets = listener.sockets();
    for &i in refused {
        if let Some(&socket) = sockets.get(i) {
            socket::accept_new_connections(socket);
        }
    }
}
