//! A WebSocket echo that stays tracked after the upgrade (B14) and closes
//! politely at a stop (B15): when the drain begins each socket gets a close
//! frame ("going away"). `cargo run --example websocket`, connect a client
//! to ws://127.0.0.1:3000/ (websocat, say), then Ctrl-C the server.
use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::{body::Bytes, body::Incoming, service::service_fn, Request, Response, StatusCode};
use stoppable_tokio::{DrainSignal, Options};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role};
use tokio_tungstenite::WebSocketStream;

async fn echo(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, hyper::Error> {
    let mut response = Response::new(Empty::new());
    let Some(key) = req.headers().get("sec-websocket-key") else {
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(response);
    };
    let accept = derive_accept_key(key.as_bytes())
        .parse()
        .expect("a valid header value");
    let drain = req
        .extensions_mut()
        .remove::<DrainSignal>()
        .expect("enabled in main");
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(message)) if message.is_text() || message.is_binary() => {
                        if ws.send(message).await.is_err() { return }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                () = drain.draining() => {
                    let bye = CloseFrame { code: CloseCode::Away, reason: "draining".into() };
                    let _ = ws.close(Some(bye)).await;
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
            }
        }
    });
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        "connection",
        "upgrade".parse().expect("a valid header value"),
    );
    headers.insert(
        "upgrade",
        "websocket".parse().expect("a valid header value"),
    );
    headers.insert("sec-websocket-accept", accept);
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let options = Options::default().drain_signal_in_requests(true);
    let server = stoppable_tokio::serve(listener, service_fn(echo)).options(options);
    let stopper = server.stopper();
    tokio::spawn(async move { stoppable_tokio::stop_on_signals(&stopper).await });
    let report = server.await.map_err(std::io::Error::other)?;
    println!("graceful: {}", report.graceful);
    Ok(())
}
