//! Writing heads and end-lines.
//!
//! A frame on the wire is `head [CRLF body CRLF] end-line` (RFC 4975 §7.1). The encoder writes
//! the head (with the blank line when a body follows) and the end-line (with the CRLF that
//! precedes it after a body) into buffers of their own, so that a writer can send
//! `head, body pieces, end-line` with one vectored write and never copy a body.

use bytes::{BufMut, BytesMut};

use crate::decoder::Flag;
use crate::head::{fmt_u64, itoa_buf, ByteRange, Head, Method, StartLine, TransactionId};
use crate::uri::MsrpUri;
use crate::HeaderName;

/// Room [`HeadWriter`] makes sure of before writing a start line: enough for a typical head.
/// A caller that sizes its own buffer should give at least this much, or the buffer is
/// reallocated before its first byte.
pub const HEAD_RESERVE: usize = 256;

/// Builds a head field by field. Header names are written in their canonical case with
/// exactly one SP after the colon (G1, G6).
pub struct HeadWriter<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> HeadWriter<'a> {
    /// `MSRP SP transact-id SP method CRLF` (RFC 4975 §9 `req-start`).
    pub fn request(buf: &'a mut BytesMut, tid: &TransactionId, method: &Method) -> Self {
        buf.reserve(HEAD_RESERVE);
        buf.put_slice(b"MSRP ");
        buf.put_slice(tid.as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(method.as_str().as_bytes());
        buf.put_slice(b"\r\n");
        HeadWriter { buf }
    }

    /// `MSRP SP transact-id SP status-code [SP comment] CRLF` (RFC 4975 §9 `resp-start`).
    pub fn response(buf: &'a mut BytesMut, tid: &TransactionId, code: u16, comment: &[u8]) -> Self {
        buf.reserve(HEAD_RESERVE);
        buf.put_slice(b"MSRP ");
        buf.put_slice(tid.as_bytes());
        buf.put_u8(b' ');
        put_status_code(buf, code);
        if !comment.is_empty() {
            buf.put_u8(b' ');
            buf.put_slice(comment);
        }
        buf.put_slice(b"\r\n");
        HeadWriter { buf }
    }

    /// A path header: URIs separated by single spaces, each byte-identical to its source.
    pub fn path<'u>(
        &mut self,
        name: HeaderName,
        uris: impl IntoIterator<Item = &'u MsrpUri>,
    ) -> &mut Self {
        self.buf.put_slice(name.as_str().as_bytes());
        self.buf.put_u8(b':');
        for u in uris {
            self.buf.put_u8(b' ');
            self.buf.put_slice(u.as_bytes());
        }
        self.buf.put_slice(b"\r\n");
        self
    }

    pub fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.buf.put_slice(name.as_bytes());
        self.buf.put_slice(b": ");
        self.buf.put_slice(value);
        self.buf.put_slice(b"\r\n");
        self
    }

    pub fn number(&mut self, name: &str, value: u64) -> &mut Self {
        let mut n = itoa_buf();
        let digits = fmt_u64(value, &mut n);
        self.header(name, digits)
    }

    pub fn byte_range(&mut self, r: ByteRange) -> &mut Self {
        self.buf.put_slice(b"Byte-Range: ");
        r.write(&mut *self.buf);
        self.buf.put_slice(b"\r\n");
        self
    }

    /// `Status: 000 code [comment]` for a REPORT (RFC 4975 §7.1.2).
    pub fn status(&mut self, code: u16, comment: &str) -> &mut Self {
        self.buf.put_slice(b"Status: 000 ");
        put_status_code(self.buf, code);
        if !comment.is_empty() {
            self.buf.put_u8(b' ');
            self.buf.put_slice(comment.as_bytes());
        }
        self.buf.put_slice(b"\r\n");
        self
    }

    /// Raw header lines, each already ending in CRLF.
    pub fn raw_lines(&mut self, lines: &[u8]) -> &mut Self {
        self.buf.put_slice(lines);
        self
    }

    /// Finish the head; with a body, write the blank line that separates them.
    pub fn finish(&mut self, has_body: bool) {
        if has_body {
            self.buf.put_slice(b"\r\n");
        }
    }
}

/// `status-code = 3DIGIT` (RFC 4975 §9): codes below 100 keep their leading zeros (a received
/// `MSRP tid 042` must be forwarded as `042`, not `42`, which no longer parses). Codes above
/// 999 cannot be written in three digits and never come out of the decoder.
fn put_status_code(buf: &mut BytesMut, code: u16) {
    let mut n = itoa_buf();
    let digits = fmt_u64(u64::from(code), &mut n);
    for _ in digits.len()..3 {
        buf.put_u8(b'0');
    }
    buf.put_slice(digits);
}

/// Write the end-line `"-------" transact-id flag CRLF` (RFC 4975 §7.1), preceded by the CRLF
/// that closes a body when there was one.
pub fn write_end_line(buf: &mut BytesMut, tid: &TransactionId, flag: Flag, after_body: bool) {
    buf.reserve(48);
    if after_body {
        buf.put_slice(b"\r\n");
    }
    buf.put_slice(b"-------");
    buf.put_slice(tid.as_bytes());
    buf.put_u8(flag.as_byte());
    buf.put_slice(b"\r\n");
}

/// Rewrite a received head for the next hop (RFC 4976 §6.4.1, §6.4.2, §6.4.3): a new
/// transaction id, the first `pop` To-Path URIs (ours) moved to the front of From-Path in
/// reverse order, and every other header line copied byte-identical. With `byte_range`, the
/// Byte-Range line is replaced (or added right after From-Path, keeping Content-Type last) for
/// a re-chunked piece. The blank line is written when the head has a body.
///
/// `pop` must leave at least one To-Path URI; it is clamped so that one always remains.
pub fn write_forward_head(
    buf: &mut BytesMut,
    head: &Head,
    tid: &TransactionId,
    pop: usize,
    byte_range: Option<ByteRange>,
) {
    let to = head.to_path();
    let pop = moved(to.len(), pop);
    buf.reserve(head.raw().len() + 64);
    let mut w = match head.start_line() {
        StartLine::Request { method, .. } => HeadWriter::request(buf, tid, method),
        StartLine::Response { code, comment, .. } => HeadWriter::response(buf, tid, *code, comment),
    };
    w.path(HeaderName::ToPath, &to[pop..]);
    w.path(
        HeaderName::FromPath,
        to[..pop].iter().rev().chain(head.from_path()),
    );
    match byte_range {
        None => {
            w.raw_lines(head.rest());
        }
        Some(range) => {
            if head.byte_range().is_none() {
                w.byte_range(range);
            }
            for h in head.headers() {
                if h.name == HeaderName::ByteRange {
                    w.byte_range(range);
                } else {
                    w.raw_lines(head.line(h));
                    w.raw_lines(b"\r\n");
                }
            }
        }
    }
    w.finish(head.has_body());
}

/// How many To-Path URIs a forward popping `pop` moves: never the last one.
fn moved(to_len: usize, pop: usize) -> usize {
    pop.min(to_len.saturating_sub(1))
}

/// Where in `to_path` the URI sits that [`write_forward_head`] puts first in From-Path (the
/// last one it moves, they go in reverse order): the URI the next hop's response names first
/// in its To-Path (RFC 4975 §7.2), by which a relay knows the response is its own (RFC 4976
/// §6.4.3).
pub fn forwarded_from(to_path: &[MsrpUri], pop: usize) -> usize {
    moved(to_path.len(), pop).saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Event, Limits};

    /// The head of the one message in `bytes`.
    fn decode_head(bytes: &[u8]) -> Box<Head> {
        let mut buf = BytesMut::from(bytes);
        match Decoder::new(Limits::default()).decode(&mut buf) {
            Ok(Some(Event::Head(head))) => head,
            other => panic!(
                "{:?} does not decode to a head: {other:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    /// `forwarded_from` names the URI that the rewrite really puts first in From-Path, for
    /// one hop, two (a request crossing the relay twice, RFC 7977 §8.3.2), and a `pop` that
    /// is clamped because it would leave no To-Path URI.
    #[test]
    fn forwarded_from_is_what_the_rewrite_puts_first_in_from_path() {
        let input = &b"MSRP tid1 SEND\r\nTo-Path: msrp://r.example.com:1/a;tcp msrp://r.example.com:1/b;tcp msrp://bob.example.com:2/c;tcp\r\nFrom-Path: msrp://alice.example.com:3/d;tcp\r\n-------tid1$\r\n"[..];
        let head = decode_head(input);
        let tid = TransactionId::new(b"tid2").unwrap_or_else(|| unreachable!("an ident"));
        for pop in [1, 2, 3] {
            let mut out = BytesMut::new();
            write_forward_head(&mut out, &head, &tid, pop, None);
            out.extend_from_slice(b"-------tid2$\r\n");
            let fwd = decode_head(&out);
            let at = forwarded_from(head.to_path(), pop);
            assert_eq!(
                fwd.from_path()[0].as_str(),
                head.to_path()[at].as_str(),
                "pop {pop}"
            );
        }
    }

    /// Found by the proptest round trip: a response code below 100 was written as `0` or `42`,
    /// which is not `3DIGIT` (RFC 4975 §9), so a forwarded `MSRP tid 042` response no longer
    /// parsed at the next hop.
    #[test]
    fn rfc4975_s9_status_codes_are_three_digits() {
        let input = &b"MSRP abcd 042 Odd\r\nTo-Path: msrp://a.example.com:1/x;tcp\r\nFrom-Path: msrp://b.example.com:2/y;tcp\r\n-------abcd$\r\n"[..];
        let head = decode_head(input);
        assert_eq!(head.response_code(), Some(42));
        let mut out = BytesMut::new();
        write_forward_head(&mut out, &head, head.tid(), 0, None);
        write_end_line(&mut out, head.tid(), Flag::Complete, false);
        assert_eq!(&out[..], input);

        let tid = TransactionId::new(b"abcd").unwrap();
        let mut out = BytesMut::new();
        HeadWriter::response(&mut out, &tid, 0, b"");
        assert_eq!(&out[..], b"MSRP abcd 000\r\n");
        let mut out = BytesMut::new();
        HeadWriter::response(&mut out, &tid, 200, b"").status(7, "x");
        assert_eq!(&out[..], b"MSRP abcd 200\r\nStatus: 000 007 x\r\n");
    }
}
