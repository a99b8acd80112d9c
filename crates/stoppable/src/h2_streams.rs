//! The HTTP/2 streams whose response is under way on the wire, from the
//! frames read and written: a response whose body ended in hyper's hands may
//! still wait in h2's send queue (for the client's flow-control window, or
//! for the socket), and that is work the client is owed (B5, B9), though no
//! request is in flight.
//!
//! A stream counts from its response's HEADERS written, not from the
//! client's HEADERS read: a stream h2 refuses, ignores (after its final
//! GOAWAY) or never gets whole (a client stalled mid-frame) has no response,
//! and is nobody's work.

use crate::h2_frames::{Frames, HEADERS};

/// Frame types (RFC 9113 §6) beside HEADERS.
const DATA: u8 = 0x0;
const RST_STREAM: u8 = 0x3;
/// The flag that ends a stream's side, on DATA and HEADERS.
const END_STREAM: u8 = 0x1;

/// The streams of one HTTP/2 connection whose response began (its HEADERS
/// written) and has not ended: no END_STREAM or RST_STREAM written, no
/// RST_STREAM read (the client cancelled it; h2 drops what it queued).
#[derive(Debug)]
pub(crate) struct WireStreams {
    read: Frames,
    written: Frames,
    open: Vec<u32>,
    /// Streams the client reset before their response's HEADERS went out:
    /// h2 may hold that HEADERS in its write buffer still, and writes it,
    /// but nothing after. Forgotten once everything written is flushed.
    reset: Vec<u32>,
}

impl WireStreams {
    /// From the connection's first byte either way.
    pub(crate) fn new() -> Self {
        WireStreams {
            read: Frames::after_preface(),
            written: Frames::new(0),
            open: Vec::new(),
            reset: Vec::new(),
        }
    }

    /// How many streams are open.
    pub(crate) fn open(&self) -> usize {
        self.open.len()
    }

    /// The next bytes read from the client.
    pub(crate) fn read(&mut self, bytes: &[u8]) {
        let (open, reset) = (&mut self.open, &mut self.reset);
        self.read.feed(bytes, |seen| {
            if seen.kind == RST_STREAM && !close(open, seen.stream) {
                reset.push(seen.stream);
            }
        });
    }

    /// Everything written is flushed: h2's write buffer is empty, so no
    /// response head of a stream reset before is still to come.
    pub(crate) fn flushed(&mut self) {
        self.reset.clear();
    }

    /// The next bytes written to the client.
    pub(crate) fn wrote(&mut self, bytes: &[u8]) {
        let (open, reset) = (&mut self.open, &mut self.reset);
        self.written.feed(bytes, |seen| {
            let stream = seen.stream;
            match seen.kind {
                DATA | HEADERS if seen.flags & END_STREAM != 0 => {
                    close(open, stream);
                }
                HEADERS if !open.contains(&stream) && !reset.contains(&stream) => {
                    open.push(stream);
                }
                RST_STREAM => {
                    close(open, stream);
                }
                _ => {}
            }
        });
    }
}

/// Ends `stream`; false if it was not open.
fn close(open: &mut Vec<u32>, stream: u32) -> bool {
    let at = open.iter().position(|&s| s == stream);
    if let Some(at) = at {
        open.swap_remove(at);
    }
    at.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Feeds `bytes` in pieces of `size`.
    fn in_pieces(bytes: &[u8], size: usize, mut feed: impl FnMut(&[u8])) {
        for piece in bytes.chunks(size) {
            feed(piece);
        }
    }

    /// The client's side: the preface, SETTINGS, then `streams` opened.
    fn client_opens(streams: &[u32]) -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(0x4, 0, 0, &[]));
        for &s in streams {
            bytes.extend(frame(HEADERS, END_STREAM | 0x4, s, b"hpack"));
        }
        bytes
    }

    #[test]
    fn a_stream_is_open_from_its_response_head_to_its_end_in_any_pieces() {
        for size in [1, 2, 5, 9, 10, 1000] {
            let mut wire = WireStreams::new();
            in_pieces(&client_opens(&[1, 3, 5]), size, |b| wire.read(b));
            assert_eq!(wire.open(), 0, "no response yet, pieces of {size}");
            let mut out = frame(0x4, 0, 0, &[0; 6]);
            out.extend(frame(HEADERS, 0x4, 1, b"head"));
            out.extend(frame(DATA, 0, 1, &[b'x'; 100]));
            out.extend(frame(HEADERS, 0x4, 3, b"head"));
            in_pieces(&out, size, |b| wire.wrote(b));
            assert_eq!(wire.open(), 2, "pieces of {size}");
            in_pieces(&frame(DATA, END_STREAM, 1, b"end"), size, |b| wire.wrote(b));
            assert_eq!(wire.open(), 1, "pieces of {size}");
            // Trailers end it; a response with no body never opens.
            let mut out = frame(HEADERS, END_STREAM | 0x4, 3, b"trailers");
            out.extend(frame(HEADERS, END_STREAM | 0x4, 5, b"head"));
            in_pieces(&out, size, |b| wire.wrote(b));
            assert_eq!(wire.open(), 0, "pieces of {size}");
        }
    }

    #[test]
    fn a_reset_either_way_ends_a_stream_and_a_client_stalled_mid_frame_opens_none() {
        let mut wire = WireStreams::new();
        wire.read(&client_opens(&[1, 3]));
        for s in [1, 3] {
            wire.wrote(&frame(HEADERS, 0x4, s, b"head"));
        }
        assert_eq!(wire.open(), 2);
        wire.read(&frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]));
        wire.wrote(&frame(RST_STREAM, 0, 3, &[0, 0, 0, 7]));
        assert_eq!(wire.open(), 0);
        // A reset's header, and no more: h2 has not reset it yet.
        wire.wrote(&frame(HEADERS, 0x4, 9, b"head"));
        wire.read(&frame(RST_STREAM, 0, 9, &[0, 0, 0, 8])[..9]);
        assert_eq!(wire.open(), 1);
        wire.read(&[0, 0, 0, 8]);
        assert_eq!(wire.open(), 0);
        // A reset read before the response head h2 had buffered went out.
        wire.read(&frame(RST_STREAM, 0, 11, &[0, 0, 0, 8]));
        wire.wrote(&frame(HEADERS, 0x4, 11, b"head"));
        assert_eq!(wire.open(), 0);
        wire.flushed();
        // A HEADERS frame's header, and no more: h2 has no stream yet.
        wire.read(&frame(HEADERS, 0x4, 5, &[0; 100])[..9]);
        assert_eq!(wire.open(), 0);
        // Ending it twice (a reset crossing an END_STREAM) ends it once.
        wire.wrote(&frame(HEADERS, 0x4, 7, b"head"));
        wire.wrote(&frame(DATA, END_STREAM, 7, b""));
        wire.read(&frame(RST_STREAM, 0, 7, &[0, 0, 0, 8]));
        assert_eq!(wire.open(), 0);
    }

    /// Random frames both ways, fed frame by frame to one tracker and in
    /// random pieces to another (in the same order between the two ways):
    /// where reads and writes split the frames never changes which streams
    /// are open.
    #[test]
    fn pieces_of_any_size_agree_with_whole_frames() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        let mut with_open = 0;
        for _ in 0..300 {
            let (mut whole, mut pieces) = (WireStreams::new(), WireStreams::new());
            let preface = client_opens(&[]);
            whole.read(&preface);
            pieces.read(&preface);
            // Runs of frames one way, in turn: (read, bytes).
            let mut runs: Vec<(bool, Vec<u8>)> = Vec::new();
            for _ in 0..next(40) {
                let kind = [DATA, HEADERS, RST_STREAM, 0x7, 0x4, 0x6][next(6) as usize];
                let stream = 1 + 2 * next(8) as u32;
                let payload = vec![0; next(30) as usize];
                let f = frame(kind, next(2) as u8, stream, &payload);
                let read = next(2) == 0;
                match read {
                    true => whole.read(&f),
                    false => whole.wrote(&f),
                }
                match runs.last_mut() {
                    Some((way, bytes)) if *way == read => bytes.extend(f),
                    _ => runs.push((read, f)),
                }
            }
            // Each run in random pieces, across its frames' bounds.
            for (read, bytes) in runs {
                let mut at = 0;
                while at < bytes.len() {
                    let end = (at + 1 + next(20) as usize).min(bytes.len());
                    match read {
                        true => pieces.read(&bytes[at..end]),
                        false => pieces.wrote(&bytes[at..end]),
                    }
                    at = end;
                }
            }
            let (mut a, mut b) = (whole.open.clone(), pieces.open.clone());
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
            with_open += usize::from(!a.is_empty());
        }
        assert!(with_open > 30, "the cases open streams: {with_open}");
    }
}
