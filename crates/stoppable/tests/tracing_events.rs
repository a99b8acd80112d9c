//! The `tracing` feature: a stop emits its events, with the report's counts.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Collects each event's message and fields as text.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_stop_emits_its_events() {
    let collect = Collect::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(collect.clone(), || {
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let hello =
                hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Empty::<bytes::Bytes>::new(),
                    ))
                });
            let server = stoppable_tokio::serve(listener, hello);
            let stopper = server.stopper();
            let serving = tokio::spawn(server);
            tokio::task::yield_now().await;
            let report = stopper.stop().await;
            assert!(report.graceful);
            serving.await.unwrap().unwrap();
        })
    });
    let events = collect.0.lock().unwrap().join("\n");
    for expected in [
        "stoppable: stop requested",
        "stoppable: drain started",
        "stoppable: stopped",
        "graceful=true",
    ] {
        assert!(
            events.contains(expected),
            "{expected:?} missing in:\n{events}"
        );
    }
}

#[test]
fn a_connection_error_is_an_event_with_its_peer() {
    use std::io::{Read, Write};
    let collect = Collect::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let peer = tracing::subscriber::with_default(collect.clone(), || {
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let hello =
                hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Empty::<bytes::Bytes>::new(),
                    ))
                });
            let server = stoppable_tokio::serve(listener, hello);
            let stopper = server.stopper();
            let serving = tokio::spawn(server);
            // A malformed request, from a blocking client of its own.
            let peer = tokio::task::spawn_blocking(move || {
                let mut client = std::net::TcpStream::connect(addr).unwrap();
                client.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
                let mut answer = Vec::new();
                let _ = client.read_to_end(&mut answer);
                assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
                client.local_addr().unwrap()
            })
            .await
            .unwrap();
            let report = stopper.stop().await;
            assert!(report.graceful);
            serving.await.unwrap().unwrap();
            peer
        })
    });
    let events = collect.0.lock().unwrap().clone();
    let expected = format!("peer=Some({peer})");
    assert!(
        events
            .iter()
            .any(|e| e.contains("stoppable: connection error") && e.contains(&expected)),
        "{expected:?} missing in:\n{}",
        events.join("\n")
    );
}
