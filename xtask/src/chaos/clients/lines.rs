//! Clients of the line protocol (B20): lines echoed one by one, some held
//! half-sent for a while, so a unit of work is under way at the stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::chaos::scenario::Rng;
use crate::chaos::seen::{Ctx, Outcome};

/// Lines until the stop ends or connects are refused; `hold` ms between
/// the halves of one line in three.
pub async fn lines(ctx: Arc<Ctx>, mut rng: Rng, hold: u64) {
    while !ctx.is_done() {
        let opened = Instant::now();
        let stream = match TcpStream::connect(ctx.lines).await {
            Ok(stream) => stream,
            Err(e) => return ctx.connect_failed(true, opened, &e),
        };
        let id = ctx.conn();
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let mut reused = false;
        for n in 0..rng.range(1, 10) {
            if ctx.is_done() {
                break;
            }
            let sent = Instant::now();
            let line = format!("line {n}\n");
            let written = if rng.range(0, 2) == 0 {
                let (a, b) = line.split_at(3);
                let first = writer.write_all(a.as_bytes()).await;
                // Held half-sent; an end of the connection meanwhile is
                // seen when it comes, not after the hold.
                let hold = tokio::time::sleep(Duration::from_millis(hold));
                let ended = tokio::select! {
                    () = hold => false,
                    _ = reader.fill_buf() => true,
                };
                match first {
                    Ok(()) if !ended => writer.write_all(b.as_bytes()).await,
                    Ok(()) => Err(std::io::ErrorKind::UnexpectedEof.into()),
                    e => e,
                }
            } else {
                writer.write_all(line.as_bytes()).await
            };
            let mut echo = String::new();
            let read = reader.read_line(&mut echo).await;
            let outcome = match (written, read) {
                (Ok(()), Ok(_)) if echo == line => Outcome::Answered,
                (_, Ok(0)) | (_, Err(_)) | (Err(_), _) if echo.is_empty() => {
                    Outcome::NothingBack { reused }
                }
                _ => Outcome::Cut,
            };
            ctx.seen(true, id, sent, outcome);
            if outcome != Outcome::Answered {
                break;
            }
            reused = true;
            tokio::time::sleep(Duration::from_millis(rng.range(0, 30))).await;
        }
        ctx.span(true);
    }
}
