//! A WebSocket client: echoes, then the server's close frame when the drain
//! begins (B14, B15); the connection must end with the close handshake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::chaos::io::{connect, Alpn};
use crate::chaos::scenario::Rng;
use crate::chaos::seen::{Ctx, Outcome};

pub async fn echo(ctx: Arc<Ctx>, mut rng: Rng) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 200))).await;
    let opened = Instant::now();
    let io = match connect(ctx.addr, ctx.tls.as_ref(), Alpn::Http1).await {
        Ok(io) => io,
        Err(e) => return ctx.connect_failed(false, opened, &e),
    };
    let id = ctx.conn();
    let scheme = if ctx.tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{}/ws", ctx.addr);
    let sent = Instant::now();
    let Ok((mut ws, _)) = tokio_tungstenite::client_async(url, io).await else {
        ctx.seen(false, id, sent, Outcome::NothingBack { reused: false });
        return ctx.span(false);
    };
    let mut n = 0u64;
    let outcome = loop {
        let tick = tokio::time::sleep(Duration::from_millis(rng.range(10, 80)));
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Close(Some(frame)))) if frame.code == CloseCode::Away => {
                    // Answered by tungstenite; the stream then ends.
                    while let Some(Ok(_)) = ws.next().await {}
                    break Outcome::Answered;
                }
                Some(Ok(Message::Text(_))) => {}
                Some(Ok(_)) => {}
                // Ended without the close frame: the work was cut.
                Some(Err(_)) | None => break Outcome::Cut,
            },
            () = tick => {
                n += 1;
                if ws.send(Message::text(format!("ping {n}"))).await.is_err() {
                    break Outcome::Cut;
                }
            }
        }
    };
    ctx.seen(false, id, sent, outcome);
    ctx.span(false);
}
