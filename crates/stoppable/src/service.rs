//! Wraps the user's service: counts requests in flight on the connection's
//! own memory, marks upgrades (B14), and answers with `Connection: close`
//! once the drain began (B6) or the connection was told to finish (B23).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, CONNECTION};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::service::Service;

use crate::shared::Shared;
use crate::slot::{Command, ConnSlot};
use crate::stopper::DrainSignal;
use std::sync::atomic::Ordering::Relaxed;

/// The user's service, tracked.
pub struct TrackedService<S> {
    inner: S,
    slot: Arc<ConnSlot>,
    shared: Arc<Shared>,
}

impl<S> TrackedService<S> {
    pub(crate) fn new(inner: S, slot: Arc<ConnSlot>, shared: Arc<Shared>) -> Self {
        TrackedService {
            inner,
            slot,
            shared,
        }
    }
}

/// Counts the request finished when dropped: after its response body ended,
/// failed, or was cancelled.
struct FinishGuard(Arc<ConnSlot>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.request_finished();
        if self.0.command() != Command::None {
            // Told to finish: its driver reports the end of this work (an
            // HTTP/2 stream ends in a task of its own), so the wait for the
            // client to close runs from now (B7).
            self.0.wake();
        }
    }
}

/// This request's connection must close after it: the drain began (B6),
/// clients move on (B23), or its maximum age (B23).
#[inline]
fn told_to_finish(guard: &FinishGuard) -> bool {
    guard.0.closes_after_response()
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for TrackedService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ReqB: Body,
{
    type Response = Response<TrackedBody<ResB>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn call(&self, mut req: Request<ReqB>) -> Self::Future {
        let http1 = req.version() < Version::HTTP_2;
        // After an HTTP/1 request with no body, any byte read begins the
        // next head (pipelining, B4).
        self.slot
            .request_started(http1 && req.body().is_end_stream());
        if self.shared.signal_in_requests.load(Relaxed) {
            insert_drain_signal(&mut req, &self.shared);
        }
        let guard = FinishGuard(self.slot.clone());
        let connect = req.method() == Method::CONNECT;
        // Nothing of the server's shared state is touched per request (no
        // reference count): the response asks its own connection's slot.
        TrackedFuture {
            inner: self.inner.call(req),
            guard: Some(guard),
            http1,
            connect,
        }
    }
}

/// Kept out of `call`, which hyper then inlines, so that the response
/// future is built where hyper keeps it rather than copied there.
#[cold]
#[inline(never)]
fn insert_drain_signal<B>(req: &mut Request<B>, shared: &Arc<Shared>) {
    req.extensions_mut()
        .insert(DrainSignal::new(shared.clone()));
}

pin_project_lite::pin_project! {
    /// The response future of a [`TrackedService`].
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        guard: Option<FinishGuard>,
        http1: bool,
        connect: bool,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            // The guard drops with the future: the request counts as finished.
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(response)) => response,
        };
        let guard = this.guard.take();
        if let Some(guard) = &guard {
            let http1 = *this.http1;
            if *this.connect
                || response.status() == StatusCode::SWITCHING_PROTOCOLS
                || http1 && told_to_finish(guard)
            {
                note_response(&mut response, guard, http1, *this.connect);
            }
        }
        Poll::Ready(Ok(response.map(|inner| TrackedBody {
            inner,
            _guard: guard,
        })))
    }
}

/// What a response that is not a plain one means to its connection: an
/// upgrade or tunnel, or a connection that must close after it. Out of
/// line: most responses are plain, and the poll stays small.
#[cold]
#[inline(never)]
fn note_response<B>(response: &mut Response<B>, guard: &FinishGuard, http1: bool, connect: bool) {
    let status = response.status();
    let tunnel = connect && status.is_success();
    // HTTP/2 has no upgrade: a 101 there is a stream's answer like any
    // other, and the connection goes on with its other streams.
    // An HTTP/2 tunnel is one stream of its connection, which still gets
    // its GOAWAY. hyper drops the response body when the tunnel opens, so
    // its request counts finished; the stream stays open on the wire until
    // its end goes out, and is work until then (`WireStreams`).
    if http1 && (status == StatusCode::SWITCHING_PROTOCOLS || tunnel) {
        guard.0.mark_upgraded();
    } else if http1 && told_to_finish(guard) {
        // B6: a head written after the stop says the connection closes
        // (B23: from the stop already, when clients move on; or from this
        // connection's maximum age).
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts its request finished when it is dropped.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        _guard: Option<FinishGuard>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Empty;
    use hyper::service::{service_fn, Service};
    use stoppable_core::Config;

    use super::TrackedService;
    use crate::shared::Shared;

    /// Requests write no memory that other connections write: no reference
    /// to the server's shared state is taken or dropped per request, while
    /// its futures live or when they end (issue 16).
    #[test]
    fn a_request_takes_no_reference_to_the_shared_state() {
        let shared = Shared::new(
            Config::default(),
            Box::new(|_| {}),
            Box::new(std::time::Instant::now),
        )
        .unwrap();
        let slot = shared.accept(None).expect("accepted");
        let hello = service_fn(|_req: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        });
        let service = TrackedService::new(hello, slot, shared.clone());
        let before = Arc::strong_count(&shared);
        let futures: Vec<_> = (0..100)
            .map(|_| service.call(Request::new(Empty::new())))
            .collect();
        assert_eq!(Arc::strong_count(&shared), before, "while in flight");
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        for future in futures {
            let mut future = std::pin::pin!(future);
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(response)) => drop(response),
                _ => panic!("the response is ready at once"),
            }
        }
        assert_eq!(Arc::strong_count(&shared), before, "once ended");
    }
}
