//! Server-sent events that end politely at a stop (B15): when the drain
//! begins, each stream sends `event: bye` and ends, so the stop need not
//! wait for the grace. `cargo run --example sse`, then
//! `curl -N http://127.0.0.1:3000/` and Ctrl-C the server.
use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::{body::Frame, body::Incoming, service::service_fn, Request, Response};
use std::{convert::Infallible, time::Duration};
use stoppable_tokio::{DrainSignal, Options};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let events = service_fn(|req: Request<Incoming>| async move {
        // Every request carries the drain (`drain_signal_in_requests` below).
        let drain = req.extensions().get::<DrainSignal>().cloned();
        let drain = drain.expect("requests carry the drain signal");
        let ticks = futures_util::stream::unfold(Some(0u64), move |n| {
            let drain = drain.clone();
            async move {
                let n = n?;
                let (event, next) = tokio::select! {
                    () = drain.draining() => ("event: bye\ndata: draining\n\n".to_owned(), None),
                    () = tokio::time::sleep(Duration::from_millis(500)) => {
                        (format!("data: {n}\n\n"), Some(n + 1))
                    }
                };
                Some((Ok::<_, Infallible>(Frame::data(Bytes::from(event))), next))
            }
        });
        let mut response = Response::new(StreamBody::new(ticks));
        let sse = "text/event-stream".parse().expect("a valid header value");
        response.headers_mut().insert("content-type", sse);
        Ok::<_, Infallible>(response)
    });
    let options = Options::default().drain_signal_in_requests(true);
    let server = stoppable_tokio::serve(listener, events).options(options);
    let stopper = server.stopper();
    tokio::spawn(async move { stoppable_tokio::stop_on_signals(&stopper).await });
    let report = server.await.map_err(std::io::Error::other)?;
    println!("graceful: {}", report.graceful);
    Ok(())
}
