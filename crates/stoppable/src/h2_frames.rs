//! Spots the frame that opens an HTTP/2 stream in bytes read in pieces, so a
//! fresh HTTP/2 connection keeps its first-request window (B4) while only
//! the preface, settings and pings have come.

/// The client preface every HTTP/2 connection starts with (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a connection's first bytes are HTTP/2's: the preface up to
/// `HTTP/2.0` tells, even from a short first read.
pub(crate) fn starts_http2(first: &[u8]) -> bool {
    first.starts_with(&PREFACE[..14])
}

/// The HEADERS frame type (RFC 9113 §6.2): the one that opens a stream.
const HEADERS: u8 = 0x1;

/// A frame header's size: length (3), type, flags, stream id (4).
const FRAME_HEADER: usize = 9;

/// Where the reader is in the frame stream.
#[derive(Debug)]
pub(crate) struct FrameScan {
    /// Bytes still to skip: the preface, or the rest of a frame's payload.
    skip: usize,
    header: [u8; FRAME_HEADER],
    /// How much of the next frame header has come.
    have: usize,
}

impl FrameScan {
    /// A scan of a connection's bytes from the first, preface included.
    pub(crate) fn new() -> Self {
        FrameScan {
            skip: PREFACE.len(),
            header: [0; FRAME_HEADER],
            have: 0,
        }
    }

    /// Feeds the next bytes read; true once they hold a HEADERS frame (or
    /// its first four bytes). The scan is no use after that.
    pub(crate) fn opens_a_stream(&mut self, mut bytes: &[u8]) -> bool {
        loop {
            let skipped = self.skip.min(bytes.len());
            self.skip -= skipped;
            bytes = &bytes[skipped..];
            if bytes.is_empty() {
                return false;
            }
            let take = (FRAME_HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have > 3 && self.header[3] == HEADERS {
                return true;
            }
            if self.have < FRAME_HEADER {
                return false;
            }
            let [l0, l1, l2, ..] = self.header;
            self.skip = u32::from_be_bytes([0, l0, l1, l2]) as usize;
            self.have = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
