//! The campaign's clients, one kind per file; [`spawn`] starts one.

mod http1;
mod http2;
mod lines;
mod ws;

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::scenario::{Client, Rng};
use super::seen::{Ctx, CLIENT};

/// Starts `client` on the current runtime, with its own random stream.
pub fn spawn(ctx: &Arc<Ctx>, client: Client, rng: Rng) -> JoinHandle<()> {
    let ctx = ctx.clone();
    let kind = CLIENT.scope(name(client), async move { start(ctx, client, rng).await });
    tokio::spawn(kind)
}

fn name(client: Client) -> &'static str {
    match client {
        Client::Http1 {
            reuse: true,
            pipeline: false,
        } => "http1 keep-alive",
        Client::Http1 {
            reuse: false,
            pipeline: false,
        } => "http1 new connections",
        Client::Http1 { pipeline: true, .. } => "http1 pipelined",
        Client::Http2 { pings: true } => "http2 with pings",
        Client::Http2 { pings: false } => "http2",
        Client::Http2Mute { hostile: false } => "http2 mute",
        Client::Http2Mute { hostile: true } => "http2 hostile",
        Client::SlowHead { .. } => "slow head",
        Client::NeverRead => "never reads",
        Client::Hang => "hang",
        Client::Fault => "faults",
        Client::WebSocket => "websocket",
        Client::Sse => "event stream",
        Client::Lines { .. } => "lines",
        Client::LateStart { .. } => "late first request",
    }
}

async fn start(ctx: Arc<Ctx>, client: Client, rng: Rng) {
    match client {
        Client::Http1 { reuse, pipeline } => http1::requests(ctx, rng, reuse, pipeline).await,
        Client::Http2 { pings } => http2::streams(ctx, rng, pings).await,
        Client::Http2Mute { hostile } => http2::mute(ctx, rng, hostile).await,
        Client::SlowHead { rest_after } => http1::slow_head(ctx, rng, rest_after).await,
        Client::NeverRead => http1::never_read(ctx, rng).await,
        Client::Hang => http1::hang(ctx, rng).await,
        Client::Fault => http1::faults(ctx, rng).await,
        Client::WebSocket => ws::echo(ctx, rng).await,
        Client::Sse => http1::event_stream(ctx, rng).await,
        Client::Lines { hold } => lines::lines(ctx, rng, hold).await,
        Client::LateStart {
            max_after,
            deferred,
        } => http1::late_start(ctx, rng, max_after, deferred).await,
    }
}

/// `POST /shutdown`: the stop from inside a handler (B13). When it was sent.
pub async fn shutdown(ctx: &Ctx) -> std::time::Instant {
    http1::shutdown(ctx).await
}
