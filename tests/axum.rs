//! An axum `Router` served with stoppable: routes answer, a request in
//! flight at the stop completes with `Connection: close`, the report counts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use hyper_util::service::TowerToHyperService;

#[test]
fn axum_router_stops_gracefully() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, stopper, served) = runtime.block_on(async {
        let app = Router::new().route("/", get(|| async { "hello" })).route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow hello"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = stoppable_tokio::serve(listener, TowerToHyperService::new(app));
        let stopper = server.stopper();
        (addr, stopper, tokio::spawn(server))
    });
    let get = |path: &str| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nhost: t\r\n\r\n").unwrap();
        stream
    };
    let mut slow = get("/slow");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stopper.counts().requests_in_flight != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow request never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let stopping = stopper.stop();
    let mut response = String::new();
    slow.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("connection: close"), "{response}");
    assert!(response.ends_with("slow hello"), "{response}");
    let report = runtime.block_on(stopping);
    assert!(report.graceful);
    assert_eq!(
        (report.closed_after_work, report.requests_completed),
        (1, 1)
    );
    assert_eq!(runtime.block_on(served).unwrap().unwrap(), report);
}
