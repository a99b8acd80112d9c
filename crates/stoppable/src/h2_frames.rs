//! Walks HTTP/2 frames in bytes that come in pieces (`Frames`), and spots
//! the frame that opens a stream, so a fresh HTTP/2 connection keeps its
//! first-request window (B4) while only the preface, settings and pings
//! have come. `h2_streams` walks the same way for the responses under way.

/// The client preface every HTTP/2 connection starts with (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The preface up to `HTTP/2.0` tells HTTP/2 from HTTP/1.
const TELLS: usize = 14;

/// What a connection's bytes are, as they come in reads of any size.
pub(crate) enum Sniff {
    /// The bytes so far, this many, match the preface's start.
    Undecided(usize),
    Http1,
    /// HTTP/2 before its first stream: where its frames are. Boxed: most
    /// connections never need it.
    Http2Fresh(Box<FrameScan>),
    Http2,
}

/// What the bytes of one read mean.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Read {
    /// They may begin a request (B4): HTTP/1 bytes, or on HTTP/2 a frame
    /// that opens a stream (or any bytes after the first stream).
    pub(crate) request: bool,
    /// They finished the preface: the connection speaks HTTP/2.
    pub(crate) http2: bool,
}

impl Sniff {
    pub(crate) fn new() -> Self {
        Sniff::Undecided(0)
    }

    pub(crate) fn is_http1(&self) -> bool {
        matches!(self, Sniff::Http1)
    }

    /// Takes the bytes of one read.
    pub(crate) fn read(&mut self, bytes: &[u8]) -> Read {
        let nothing = Read {
            request: false,
            http2: false,
        };
        if bytes.is_empty() {
            return nothing;
        }
        match self {
            Sniff::Undecided(seen) => {
                let want = &PREFACE[*seen..TELLS];
                let n = want.len().min(bytes.len());
                if bytes[..n] != want[..n] {
                    // HTTP/1: these bytes, and any held back, begin a head.
                    *self = Sniff::Http1;
                    return Read {
                        request: true,
                        http2: false,
                    };
                }
                let offset = *seen;
                *seen += n;
                if *seen < TELLS {
                    return nothing;
                }
                let mut scan = FrameScan::from_offset(offset);
                let request = scan.opens_a_stream(bytes);
                *self = match request {
                    true => Sniff::Http2,
                    false => Sniff::Http2Fresh(Box::new(scan)),
                };
                Read {
                    request,
                    http2: true,
                }
            }
            Sniff::Http2Fresh(scan) => {
                let request = scan.opens_a_stream(bytes);
                if request {
                    // From its first stream on, any bytes may be a request.
                    *self = Sniff::Http2;
                }
                Read {
                    request,
                    http2: false,
                }
            }
            Sniff::Http1 | Sniff::Http2 => Read {
                request: true,
                http2: false,
            },
        }
    }
}

/// The HEADERS frame type (RFC 9113 §6.2): the one that opens a stream.
pub(crate) const HEADERS: u8 = 0x1;

/// A frame header's size: length (3), type, flags, stream id (4).
const FRAME_HEADER: usize = 9;

/// Where the reader is in the frame stream, before the connection's first
/// stream (B4).
#[derive(Debug)]
pub(crate) struct FrameScan(Frames);

impl FrameScan {
    /// A scan of a connection's bytes from `offset` into the preface.
    pub(crate) fn from_offset(offset: usize) -> Self {
        FrameScan(Frames::new(PREFACE.len() - offset))
    }

    /// Feeds the next bytes read; true once they hold a HEADERS frame (or
    /// its first four bytes). The scan is no use after that.
    pub(crate) fn opens_a_stream(&mut self, bytes: &[u8]) -> bool {
        let mut opened = false;
        self.0.feed(bytes, |frame| opened |= frame.kind == HEADERS);
        opened || self.0.kind_under_way() == Some(HEADERS)
    }
}

/// One direction's frames, from bytes in pieces of any size.
#[derive(Debug)]
pub(crate) struct Frames {
    /// Bytes still to skip: the preface, or the rest of a payload.
    skip: usize,
    header: [u8; FRAME_HEADER],
    /// How much of the next frame header has come.
    have: usize,
    /// The frame whose payload is being skipped: told once it is whole,
    /// as h2 acts on whole frames only.
    current: Option<Seen>,
}

/// A frame header: its type, flags and stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream: u32,
}

impl Frames {
    /// Frames after `skip` bytes (a client's preface, or none).
    pub(crate) fn new(skip: usize) -> Self {
        Frames {
            skip,
            header: [0; FRAME_HEADER],
            have: 0,
            current: None,
        }
    }

    /// A client's frames, after its preface.
    pub(crate) fn after_preface() -> Self {
        Frames::new(PREFACE.len())
    }

    /// The type of the frame under way: its payload being skipped, or its
    /// header come as far as the type byte.
    fn kind_under_way(&self) -> Option<u8> {
        match &self.current {
            Some(frame) => Some(frame.kind),
            None => (self.have > 3).then_some(self.header[3]),
        }
    }

    /// Feeds the next bytes; `seen` gets every frame they complete.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], mut seen: impl FnMut(Seen)) {
        loop {
            let skipped = self.skip.min(bytes.len());
            self.skip -= skipped;
            bytes = &bytes[skipped..];
            if self.skip > 0 {
                return;
            }
            if let Some(frame) = self.current.take() {
                seen(frame);
            }
            if bytes.is_empty() {
                return;
            }
            // Most often a whole header is there: read it where it is.
            if self.have == 0 {
                if let Some((header, rest)) = bytes.split_first_chunk::<FRAME_HEADER>() {
                    self.header = *header;
                    self.have = FRAME_HEADER;
                    bytes = rest;
                }
            }
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
            self.current = Some(Seen {
                kind,
                flags,
                stream: u32::from_be_bytes([s0, s1, s2, s3]) & !(1 << 31),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl FrameScan {
        fn new() -> Self {
            FrameScan::from_offset(0)
        }
    }

    #[test]
    fn the_preface_is_told_however_the_reads_cut_it() {
        let bytes = stream(&[frame(0x4, 0), frame(HEADERS, 10)]);
        for cut in 1..bytes.len() {
            let mut sniff = Sniff::new();
            let (a, b) = (sniff.read(&bytes[..cut]), sniff.read(&bytes[cut..]));
            assert!(a.http2 || b.http2, "cut at {cut}");
            assert!(a.request || b.request, "its stream, cut at {cut}");
            assert!(
                !a.request || cut > PREFACE.len() + FRAME_HEADER + 3,
                "cut at {cut}"
            );
        }
        let mut sniff = Sniff::new();
        assert!(!sniff.read(b"P").request, "undecided");
        assert_eq!(
            sniff.read(b"OST / HTTP/1.1\r\n"),
            Read {
                request: true,
                http2: false
            }
        );
        assert!(sniff.is_http1());
    }

    fn frame(kind: u8, payload: usize) -> Vec<u8> {
        let len = (payload as u32).to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, 0, 0, 0, 0, 1];
        frame.resize(FRAME_HEADER + payload, 0xaa);
        frame
    }

    fn stream(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = PREFACE.to_vec();
        frames.iter().for_each(|f| bytes.extend_from_slice(f));
        bytes
    }

    #[test]
    fn settings_pings_and_window_updates_open_nothing() {
        let bytes = stream(&[frame(0x4, 18), frame(0x4, 0), frame(0x6, 8), frame(0x8, 4)]);
        assert!(!FrameScan::new().opens_a_stream(&bytes));
    }

    #[test]
    fn headers_are_found_however_the_reads_cut_the_bytes() {
        // A HEADERS frame whose payload holds the HEADERS type byte (0x1),
        // after a settings frame whose payload does too.
        let mut settings = frame(0x4, 12);
        settings[FRAME_HEADER..].fill(HEADERS);
        let bytes = stream(&[settings.clone(), frame(0x8, 4), frame(HEADERS, 30)]);
        let headers_at = bytes.len() - (FRAME_HEADER + 30) + 3;
        for cut in 1..bytes.len() {
            let mut scan = FrameScan::new();
            let first = scan.opens_a_stream(&bytes[..cut]);
            let found = first || scan.opens_a_stream(&bytes[cut..]);
            assert!(found, "cut at {cut}");
            assert_eq!(first, cut > headers_at, "cut at {cut}");
        }
        let quiet = stream(&[settings, frame(0x8, 4)]);
        for cut in 1..quiet.len() {
            let mut scan = FrameScan::new();
            assert!(!scan.opens_a_stream(&quiet[..cut]) && !scan.opens_a_stream(&quiet[cut..]));
        }
    }
}
