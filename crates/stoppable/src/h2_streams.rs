//! The HTTP/2 streams open on the wire, from the frames read and written:
//! a response whose body ended in hyper's hands may still wait in h2's send
//! queue (for the client's flow-control window, or for the socket), and that
//! is work the client is owed (B5, B9), though no request is in flight.

/// Frame types (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
/// The flag that ends a stream's side, on DATA and HEADERS.
const END_STREAM: u8 = 0x1;

/// A frame header's size: length (3), type, flags, stream id (4).
const FRAME_HEADER: usize = 9;
/// The client preface (RFC 9113 §3.4), before the client's first frame.
const PREFACE_LEN: usize = 24;

/// One direction's frame headers, from bytes in pieces of any size.
#[derive(Debug)]
struct Frames {
    /// Bytes still to skip: the preface, or the rest of a payload.
    skip: usize,
    header: [u8; FRAME_HEADER],
    /// How much of the next frame header has come.
    have: usize,
    /// A GOAWAY's last stream id, as it comes (the payload's first 4 bytes).
    goaway: Option<([u8; 4], usize)>,
}

/// A frame header: its type, flags and stream; for a GOAWAY, the last
/// stream id it names.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Frame { kind: u8, flags: u8, stream: u32 },
    GoAway { last_stream: u32 },
}

impl Frames {
    fn new(skip: usize) -> Self {
        Frames {
            skip,
            header: [0; FRAME_HEADER],
            have: 0,
            goaway: None,
        }
    }

    /// Feeds the next bytes; `seen` gets every frame header they complete.
    fn feed(&mut self, mut bytes: &[u8], mut seen: impl FnMut(Seen)) {
        while !bytes.is_empty() {
            // A GOAWAY's payload begins here: its first 4 bytes are read
            // before they are skipped.
            if let Some((mut id, mut got)) = self.goaway.take() {
                let take = (4 - got).min(bytes.len());
                id[got..got + take].copy_from_slice(&bytes[..take]);
                got += take;
                match got {
                    4 => seen(Seen::GoAway {
                        last_stream: u32::from_be_bytes(id) & !(1 << 31),
                    }),
                    _ => self.goaway = Some((id, got)),
                }
            }
            let skipped = self.skip.min(bytes.len());
            self.skip -= skipped;
            bytes = &bytes[skipped..];
            let take = (FRAME_HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < FRAME_HEADER {
                return;
            }
            let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = self.header;
            self.skip = u32::from_be_bytes([0, l0, l1, l2]) as usize;
            self.have = 0;
            let stream = u32::from_be_bytes([s0, s1, s2, s3]) & !(1 << 31);
            seen(Seen::Frame {
                kind,
                flags,
                stream,
            });
            if kind == GOAWAY && self.skip >= 4 {
                self.goaway = Some(([0; 4], 0));
            }
        }
    }
}

/// The streams of one HTTP/2 connection that the client opened and that
/// have not ended on the wire: the server's side not ended (END_STREAM or
/// RST_STREAM written), the client not reset it.
#[derive(Debug)]
pub(crate) struct WireStreams {
    read: Frames,
    written: Frames,
    open: Vec<u32>,
    /// The highest stream id the client opened: a HEADERS frame on a lower
    /// one is its trailers.
    last_opened: u32,
}

impl WireStreams {
    /// From the connection's first byte either way.
    pub(crate) fn new() -> Self {
        WireStreams {
            read: Frames::new(PREFACE_LEN),
            written: Frames::new(0),
            open: Vec::new(),
            last_opened: 0,
        }
    }

    /// How many streams are open.
    pub(crate) fn open(&self) -> usize {
        self.open.len()
    }

    /// The next bytes read from the client.
    pub(crate) fn read(&mut self, bytes: &[u8]) {
        let (open, last_opened) = (&mut self.open, &mut self.last_opened);
        self.read.feed(bytes, |seen| match seen {
            Seen::Frame {
                kind: HEADERS,
                stream,
                ..
            } if stream > *last_opened => {
                *last_opened = stream;
                open.push(stream);
            }
            Seen::Frame {
                kind: RST_STREAM,
                stream,
                ..
            } => close(open, stream),
            _ => {}
        });
    }

    /// The next bytes written to the client.
    pub(crate) fn wrote(&mut self, bytes: &[u8]) {
        let open = &mut self.open;
        self.written.feed(bytes, |seen| match seen {
            Seen::Frame {
                kind: DATA | HEADERS,
                flags,
                stream,
            } if flags & END_STREAM != 0 => close(open, stream),
            Seen::Frame {
                kind: RST_STREAM,
                stream,
                ..
            } => close(open, stream),
            // Streams past a GOAWAY's last id were never processed and
            // never will be (RFC 9113 §6.8).
            Seen::GoAway { last_stream } => open.retain(|&s| s <= last_stream),
            _ => {}
        });
    }
}

fn close(open: &mut Vec<u32>, stream: u32) {
    if let Some(at) = open.iter().position(|&s| s == stream) {
        open.swap_remove(at);
    }
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

    fn client_opens(streams: &[u32]) -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(0x4, 0, 0, &[]));
        for &s in streams {
            bytes.extend(frame(HEADERS, END_STREAM | 0x4, s, b"hpack"));
        }
        bytes
    }

    /// Feeds `bytes` in pieces of `size`.
    fn in_pieces(bytes: &[u8], size: usize, mut feed: impl FnMut(&[u8])) {
        for piece in bytes.chunks(size) {
            feed(piece);
        }
    }

    #[test]
    fn a_stream_is_open_from_its_headers_to_its_end_written_in_any_pieces() {
        for size in [1, 2, 5, 9, 10, 1000] {
            let mut wire = WireStreams::new();
            in_pieces(&client_opens(&[1, 3]), size, |b| wire.read(b));
            assert_eq!(wire.open(), 2, "pieces of {size}");
            let mut out = frame(0x4, 0, 0, &[0; 6]);
            out.extend(frame(HEADERS, 0x4, 1, b"head"));
            out.extend(frame(DATA, 0, 1, &[b'x'; 100]));
            in_pieces(&out, size, |b| wire.wrote(b));
            assert_eq!(wire.open(), 2, "no end yet, pieces of {size}");
            in_pieces(&frame(DATA, END_STREAM, 1, b"end"), size, |b| wire.wrote(b));
            assert_eq!(wire.open(), 1, "pieces of {size}");
            in_pieces(&frame(HEADERS, END_STREAM | 0x4, 3, b"h"), size, |b| {
                wire.wrote(b)
            });
            assert_eq!(wire.open(), 0, "pieces of {size}");
        }
    }

    #[test]
    fn trailers_open_nothing_and_resets_either_way_end_a_stream() {
        let mut wire = WireStreams::new();
        wire.read(&client_opens(&[1, 3, 5]));
        wire.read(&frame(HEADERS, END_STREAM | 0x4, 3, b"trailers"));
        assert_eq!(wire.open(), 3);
        wire.read(&frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]));
        wire.wrote(&frame(RST_STREAM, 0, 3, &[0, 0, 0, 7]));
        assert_eq!(wire.open(), 1);
        // Ending it twice (a reset crossing an END_STREAM) ends it once.
        wire.wrote(&frame(DATA, END_STREAM, 5, b""));
        wire.read(&frame(RST_STREAM, 0, 5, &[0, 0, 0, 8]));
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
                let kind = [DATA, HEADERS, RST_STREAM, GOAWAY, 0x4, 0x6][next(6) as usize];
                let stream = 1 + 2 * next(8) as u32;
                let mut payload = vec![0; next(30) as usize];
                if kind == GOAWAY {
                    payload = (next(20) as u32).to_be_bytes().to_vec();
                    payload.extend_from_slice(&[0; 4]);
                }
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

    #[test]
    fn a_goaway_written_ends_the_streams_past_its_last_id() {
        for size in [1, 3, 9, 13, 1000] {
            let mut wire = WireStreams::new();
            wire.read(&client_opens(&[1, 3, 5, 7]));
            let mut payload = 3u32.to_be_bytes().to_vec();
            payload.extend_from_slice(&[0, 0, 0, 0, b'd', b'e', b'b', b'u', b'g']);
            let mut out = frame(GOAWAY, 0, 0, &payload);
            out.extend(frame(DATA, END_STREAM, 1, b"x"));
            in_pieces(&out, size, |b| wire.wrote(b));
            assert_eq!(wire.open, vec![3], "pieces of {size}");
        }
    }
}
