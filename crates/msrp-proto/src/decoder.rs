//! The streaming decoder: bytes in, [`Event`]s out, never a whole body in memory.
//!
//! MSRP has no Content-Length: a body ends where `CRLF "-------" transact-id flag CRLF` appears
//! (RFC 4975 §5.1, §7.1, G7). The decoder is an explicit state machine over the caller's
//! `BytesMut`:
//!
//! ```text
//!   Head ──blank line──▶ Body ──end-line──▶ Head
//!     │                   ▲
//!     ├─non-SEND body────▶ AwaitBody (whole body ≤ 10240 must be buffered first, §7.1)
//!     └─end-line (bodiless)──▶ End ──▶ Head
//! ```
//!
//! Body pieces are split off the caller's buffer as [`Bytes`] (no copy). A piece is emitted as
//! soon as it cannot be the start of the end-line: only the last 8 bytes of the buffer are held
//! back, since they could be the start of `CRLF "-------"` split across reads.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem::Finder;

use crate::error::{DecodeError, Limit, Violation};
use crate::head::{
    Head, HeadFailure, Method, PathMemo, RejectContext, TransactionId, TID_CAPACITY,
};

/// Decoder limits. Exceeding one is a [`DecodeError`] that names it. The decoder never buffers
/// more than about `max_head_size + max(max_start_line, max_header_line)` bytes while reading a
/// head, or `max_non_send_body` and an end-line while waiting for a non-SEND body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_start_line: usize,
    pub max_header_line: usize,
    /// The whole head: start line and headers.
    pub max_head_size: usize,
    /// Headers including To-Path and From-Path.
    pub max_headers: usize,
    /// URIs in To-Path or From-Path: a loop and amplification guard (checklist item 87).
    pub max_path_uris: usize,
    /// At most 32 by the grammar (RFC 4975 §9); up to 64 for lenient deployments.
    pub max_tid_len: usize,
    /// At most 32 by the grammar (RFC 4975 §9).
    pub max_message_id_len: usize,
    /// 10240 octets (RFC 4975 §7.1).
    pub max_non_send_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_start_line: 1024,
            max_header_line: 8192,
            max_head_size: 16384,
            max_headers: 64,
            max_path_uris: 16,
            max_tid_len: 32,
            max_message_id_len: 32,
            max_non_send_body: 10240,
        }
    }
}

/// The continuation flag of an end-line (RFC 4975 §7.1, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `$`: the last chunk of the message.
    Complete,
    /// `+`: more chunks follow.
    More,
    /// `#`: the message is aborted.
    Abort,
}

impl Flag {
    pub fn from_byte(b: u8) -> Option<Flag> {
        match b {
            b'$' => Some(Flag::Complete),
            b'+' => Some(Flag::More),
            b'#' => Some(Flag::Abort),
            _ => None,
        }
    }
    pub fn as_byte(self) -> u8 {
        match self {
            Flag::Complete => b'$',
            Flag::More => b'+',
            Flag::Abort => b'#',
        }
    }
}

/// What the decoder yields, in the order `Head (Body)* End` for every message.
///
/// The head comes boxed: a `Head` is about a kilobyte, and a consumer such as a relay moves
/// it several times (into its handler, into shared state for the whole message). Profiles
/// of the relay showed those copies costing more than the one allocation a box takes.
#[derive(Debug, Clone)]
pub enum Event {
    Head(Box<Head>),
    /// A piece of the body, split off the input buffer without copying.
    Body(Bytes),
    /// The end-line's flag: the message is complete.
    End(Flag),
}

const DELIM: &[u8] = b"\r\n-------";
/// Bytes held back because they may begin a delimiter split across reads.
const HOLD: usize = DELIM.len() - 1;

#[derive(Debug)]
enum State {
    /// Reading head lines; `scanned` bytes are complete lines already checked.
    Head {
        scanned: usize,
        lines: usize,
    },
    /// A non-SEND request with a body: held until the whole body is buffered (§7.1).
    AwaitBody(Box<Head>),
    /// Streaming a body until the end-line for `tid`.
    Body(TransactionId),
    /// The end-line of a bodiless message, `len` bytes, validated and still in the buffer.
    End {
        flag: Flag,
        len: usize,
    },
    /// Skipping a rejected message up to its end-line.
    Discard(TransactionId),
    Failed(Violation),
}

enum Scan {
    /// The end-line starts at `at` (its leading CRLF) and is `len` bytes long. `delim`: a
    /// `CRLF "-------"` that is not this end-line occurs before `at`.
    Found {
        at: usize,
        len: usize,
        flag: Flag,
        delim: bool,
    },
    /// No end-line yet; bytes before `safe` are certainly body. `delim`: a `CRLF "-------"`
    /// occurs before `safe`.
    NeedMore { safe: usize, delim: bool },
}

/// An incremental MSRP decoder. Feed it a buffer, call [`Decoder::decode`] until it returns
/// `Ok(None)`, read more into the same buffer, repeat.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    state: State,
    /// The CRLF offsets of the head lines read so far (relative to the head's start), handed
    /// to the head parser so that it does not search them again. Reused between messages.
    line_ends: Vec<u32>,
    /// The last body piece handed out contains a `CRLF "-------"` (see
    /// [`Decoder::body_has_delimiter`]).
    body_delim: bool,
    /// The last To-Path and From-Path parsed on this connection.
    paths: PathMemo,
}

/// The searcher for `CRLF "-------"`, built once for the process: a `Finder` is 288 bytes, and
/// a relay holds a decoder per connection.
static DELIM_FINDER: std::sync::LazyLock<Finder<'static>> =
    std::sync::LazyLock::new(|| Finder::new(DELIM));

impl Decoder {
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            state: State::Head {
                scanned: 0,
                lines: 0,
            },
            line_ends: Vec::with_capacity(16),
            body_delim: true,
            paths: PathMemo::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the last [`Event::Body`] piece contains `CRLF "-------"`, the start of an
    /// end-line of any transaction (RFC 4975 §7.1). The decoder searches for it anyway, so
    /// this costs nothing; when it is false, no end-line of any transaction id occurs inside
    /// the piece, and a forwarder choosing a new tid for it need not search the piece again.
    ///
    /// An occurrence that begins in a piece and ends in the next is reported by the piece it
    /// begins in, so a run of consecutive pieces that all answer false holds none either. A
    /// piece may still begin with `"-------"` (after a CRLF that ended the previous piece or
    /// the head); a caller that puts the piece after a CRLF of its own must look at its first
    /// bytes itself.
    pub fn body_has_delimiter(&self) -> bool {
        self.body_delim
    }

    /// True between messages with no partial head buffered.
    pub fn is_between_messages(&self, buf: &[u8]) -> bool {
        matches!(self.state, State::Head { .. }) && buf.is_empty()
    }

    /// Decode the next event from `buf`, consuming what it covers. `Ok(None)` means more
    /// input is needed. After [`DecodeError::Rejected`] the decoder can be used again; after
    /// [`DecodeError::Fatal`] it returns the same error forever.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, DecodeError> {
        loop {
            match &mut self.state {
                State::Failed(v) => return Err(DecodeError::Fatal { violation: *v }),
                State::Head { .. } => return self.decode_head(buf),
                State::AwaitBody(head) => {
                    let tid = *head.tid();
                    let max = self.limits.max_non_send_body;
                    // Some(true): complete within the limit; Some(false): over it.
                    let verdict = match self.scan(buf, &tid) {
                        Scan::Found { at, .. } => Some(at <= max),
                        Scan::NeedMore { .. }
                            if buf.len() <= max + DELIM.len() + TID_CAPACITY + 3 =>
                        {
                            None
                        }
                        Scan::NeedMore { .. } => Some(false),
                    };
                    let Some(within) = verdict else {
                        return Ok(None);
                    };
                    let State::AwaitBody(head) =
                        std::mem::replace(&mut self.state, State::Body(tid))
                    else {
                        unreachable!("matched above")
                    };
                    if within {
                        return Ok(Some(Event::Head(head)));
                    }
                    self.state = State::Discard(tid);
                    return Err(DecodeError::Rejected {
                        violation: Violation::LimitExceeded(Limit::NonSendBody),
                        context: Box::new(reject_context(&head)),
                    });
                }
                State::Body(tid) => {
                    let tid = *tid;
                    return Ok(match self.scan(buf, &tid) {
                        Scan::Found {
                            at: 0, len, flag, ..
                        } => {
                            buf.advance(len);
                            self.state = State::Head {
                                scanned: 0,
                                lines: 0,
                            };
                            Some(Event::End(flag))
                        }
                        Scan::Found { at, delim, .. } | Scan::NeedMore { safe: at, delim }
                            if at > 0 =>
                        {
                            self.body_delim = delim;
                            Some(Event::Body(buf.split_to(at).freeze()))
                        }
                        _ => None,
                    });
                }
                State::End { flag, len } => {
                    let flag = *flag;
                    buf.advance(*len);
                    self.state = State::Head {
                        scanned: 0,
                        lines: 0,
                    };
                    return Ok(Some(Event::End(flag)));
                }
                State::Discard(tid) => {
                    let tid = *tid;
                    match self.scan(buf, &tid) {
                        Scan::Found { at, len, .. } => {
                            buf.advance(at + len);
                            self.state = State::Head {
                                scanned: 0,
                                lines: 0,
                            };
                        }
                        Scan::NeedMore { safe, .. } => {
                            buf.advance(safe);
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    /// Look for `CRLF "-------" tid flag CRLF` in `buf`.
    fn scan(&self, buf: &[u8], tid: &TransactionId) -> Scan {
        let tid = tid.as_bytes();
        let len = DELIM.len() + tid.len() + 3;
        let mut from = 0;
        // Every occurrence found so far begins before the position returned: a match is
        // complete (DELIM.len() > HOLD), so it begins before `buf.len() - HOLD`.
        let mut delim = false;
        let finder = &*DELIM_FINDER;
        while let Some(rel) = finder.find(&buf[from..]) {
            let at = from + rel;
            let tid_at = at + DELIM.len();
            let have = buf.len().min(tid_at + tid.len());
            if buf[tid_at..have] != tid[..have - tid_at] {
                from = at + 1;
                delim = true;
                continue;
            }
            if buf.len() < at + len {
                return Scan::NeedMore { safe: at, delim };
            }
            if let Some(flag) = Flag::from_byte(buf[tid_at + tid.len()]) {
                if &buf[at + len - 2..at + len] == b"\r\n" {
                    return Scan::Found {
                        at,
                        len,
                        flag,
                        delim,
                    };
                }
            }
            from = at + 1;
            delim = true;
        }
        Scan::NeedMore {
            safe: buf.len().saturating_sub(HOLD),
            delim,
        }
    }

    fn fail(&mut self, violation: Violation) -> DecodeError {
        self.state = State::Failed(violation);
        DecodeError::Fatal { violation }
    }

    /// Turn a head failure into the error, skipping the rest of the message when possible.
    fn reject(&mut self, f: HeadFailure, skip: bool) -> DecodeError {
        match f.context {
            Some(context) => {
                self.state = if skip {
                    State::Discard(context.tid)
                } else {
                    State::Head {
                        scanned: 0,
                        lines: 0,
                    }
                };
                DecodeError::Rejected {
                    violation: f.violation,
                    context,
                }
            }
            None => self.fail(f.violation),
        }
    }

    /// A limit broke before the head was complete: answer if the first three lines are
    /// readable, then skip to the message's end-line.
    fn head_limit(
        &mut self,
        buf: &mut BytesMut,
        limit: Limit,
        complete_lines: usize,
    ) -> DecodeError {
        let violation = Violation::LimitExceeded(limit);
        if complete_lines >= 3 {
            let end = nth_line_end(buf, 3);
            let first_three = Bytes::copy_from_slice(&buf[..end]);
            let context = match Head::parse_inner(first_three, false, &self.limits, None, None) {
                Ok(head) => Some(Box::new(reject_context(&head))),
                Err(f) => f.context,
            };
            if let Some(context) = context {
                // Drop the lines read so far but the last CRLF: a bodiless end-line right
                // after them still matches `CRLF "-------" tid`.
                buf.advance(end - 2);
                self.state = State::Discard(context.tid);
                return DecodeError::Rejected { violation, context };
            }
        }
        self.fail(violation)
    }

    fn decode_head(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, DecodeError> {
        let State::Head { scanned, lines } = self.state else {
            unreachable!("called in the Head state")
        };
        let (mut at, mut lines) = (scanned, lines);
        if lines == 0 {
            // A new head (no complete line yet).
            self.line_ends.clear();
        }
        let (max_start_line, max_header_line, max_headers, max_head_size) = (
            self.limits.max_start_line,
            self.limits.max_header_line,
            self.limits.max_headers,
            self.limits.max_head_size,
        );
        loop {
            let line_limit = if lines == 0 {
                max_start_line
            } else {
                max_header_line
            };
            // Find the CRLF that ends this line; a bare LF is part of the line (and makes it
            // invalid when the line is parsed).
            let mut search = at;
            let eol = loop {
                match memchr::memchr(b'\n', &buf[search..]) {
                    Some(rel) if search + rel > at && buf[search + rel - 1] == b'\r' => {
                        break Some(search + rel - 1)
                    }
                    Some(rel) => search += rel + 1,
                    None => break None,
                }
            };
            let Some(eol) = eol else {
                // Incomplete line: bound what we are willing to buffer.
                let partial = buf.len() - at;
                if partial > line_limit + 1 {
                    let limit = if lines == 0 {
                        Limit::StartLine
                    } else {
                        Limit::HeaderLine
                    };
                    return Err(self.head_limit(buf, limit, lines));
                }
                // The head size is checked on complete lines only (below), never on this
                // partial one: it may be the end-line of a bodiless message, which is not part
                // of the head (RFC 4975 §7.1), and a partial From-Path must not turn a 400 into
                // a dropped connection (§10.2). Either way the outcome would depend on how the
                // stream was split into reads. The line limit bounds the partial line.
                self.state = State::Head { scanned: at, lines };
                return Ok(None);
            };
            let line = &buf[at..eol];
            if line.len() > line_limit {
                let limit = if lines == 0 {
                    Limit::StartLine
                } else {
                    Limit::HeaderLine
                };
                return Err(self.head_limit(buf, limit, lines));
            }
            if lines > 0 && line.is_empty() {
                // Blank line: the head ends and a body follows (G7).
                let raw = take_head(buf, at);
                return match self.parse_head(raw, true) {
                    Ok(head) => {
                        buf.advance(2);
                        let tid = *head.tid();
                        if head.method() == Some(&Method::Send) {
                            self.state = State::Body(tid);
                            return Ok(Some(Event::Head(head)));
                        }
                        // Other requests: the whole body must be here first (§7.1).
                        self.state = State::AwaitBody(head);
                        self.decode(buf)
                    }
                    // The blank line's CRLF stays in the buffer, so that skipping to the
                    // end-line also finds it right after an empty body.
                    Err(f) => Err(self.reject(f, true)),
                };
            }
            if lines > 0 && line.starts_with(b"-------") {
                // A bodiless message's end-line (RFC 4975 §7.1).
                let end_len = eol + 2 - at;
                let raw = take_head(buf, at);
                // The end-line (without its CRLF) now starts the buffer.
                let end_line = &buf[..end_len - 2];
                return match self.parse_head(raw, false) {
                    Ok(head) => {
                        let body = &end_line[7..];
                        let tid = head.tid().as_bytes();
                        let flag = (body.len() == tid.len() + 1 && &body[..tid.len()] == tid)
                            .then(|| Flag::from_byte(body[tid.len()]))
                            .flatten();
                        match flag {
                            Some(flag) => {
                                self.state = State::End { flag, len: end_len };
                                Ok(Some(Event::Head(head)))
                            }
                            None => {
                                buf.advance(end_len);
                                self.state = State::Head {
                                    scanned: 0,
                                    lines: 0,
                                };
                                Err(DecodeError::Rejected {
                                    violation: Violation::EndLine,
                                    context: Box::new(reject_context(&head)),
                                })
                            }
                        }
                    }
                    Err(f) => {
                        buf.advance(end_len);
                        Err(self.reject(f, false))
                    }
                };
            }
            // Heads are far below 4 GiB (head offsets are u32 throughout, see `HeaderField`).
            self.line_ends.push(eol as u32);
            lines += 1;
            at = eol + 2;
            if lines > max_headers + 1 {
                return Err(self.head_limit(buf, Limit::HeaderCount, lines));
            }
            if at > max_head_size {
                return Err(self.head_limit(buf, Limit::HeadSize, lines));
            }
        }
    }
}

impl Decoder {
    /// Parse a complete head with the line ends found while reading it and this
    /// connection's last paths.
    fn parse_head(&mut self, raw: Bytes, has_body: bool) -> Result<Box<Head>, HeadFailure> {
        Head::parse_inner(
            raw,
            has_body,
            &self.limits,
            Some(&self.line_ends),
            Some(&mut self.paths),
        )
    }
}

fn reject_context(head: &Head) -> RejectContext {
    RejectContext {
        tid: *head.tid(),
        method: head.method().cloned(),
        to_path: head.to_path().to_vec(),
        from_path: head.from_path().to_vec(),
    }
}

/// The offset just past the CRLF of the `n`th line.
/// The head's bytes, copied out of the read buffer. A head outlives its read: a relay
/// keeps it for the whole message and for its transactions. A slice would keep the whole
/// read buffer (up to a forwarding piece, 64 KiB) alive with it, and would make every
/// message on the connection share one reference count across threads.
fn take_head(buf: &mut BytesMut, at: usize) -> Bytes {
    let raw = Bytes::copy_from_slice(&buf[..at]);
    buf.advance(at);
    raw
}

fn nth_line_end(buf: &[u8], n: usize) -> usize {
    let mut at = 0;
    for _ in 0..n {
        match memchr::memmem::find(&buf[at..], b"\r\n") {
            Some(rel) => at += rel + 2,
            None => return buf.len(),
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"MSRP abcd SEND\r\nTo-Path: msrp://a.example.com:1/x;tcp\r\nFrom-Path: msrp://b.example.com:2/y;tcp\r\n";

    /// Decode `input` split at `split`, returning the events' kinds and the errors.
    fn run(input: &[u8], split: usize, limits: &Limits) -> Vec<String> {
        let mut dec = Decoder::new(limits.clone());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for part in [&input[..split], &input[split..]] {
            buf.extend_from_slice(part);
            loop {
                match dec.decode(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(Event::Head(h))) => out.push(format!("head {}", h.tid())),
                    Ok(Some(Event::Body(b))) => out.push(format!("body {}", b.len())),
                    Ok(Some(Event::End(f))) => out.push(format!("end {f:?}")),
                    Err(e) => {
                        out.push(format!("{e}"));
                        if e.context().is_none() {
                            return out;
                        }
                    }
                }
            }
        }
        out
    }

    /// Heads of the messages in `input`, all read at once by one decoder (so that each head
    /// after the first may reuse the previous one's paths).
    fn heads(input: &[u8]) -> Vec<Result<Box<Head>, DecodeError>> {
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match dec.decode(&mut buf) {
                Ok(None) => return out,
                Ok(Some(Event::Head(h))) => out.push(Ok(h)),
                Ok(Some(_)) => {}
                Err(e) => {
                    let fatal = e.context().is_none();
                    out.push(Err(e));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }

    fn path_text(p: &[crate::MsrpUri]) -> Vec<String> {
        p.iter().map(|u| u.as_str().to_owned()).collect()
    }

    #[test]
    fn repeated_paths_are_taken_from_the_last_head_and_changed_ones_parsed() {
        let msg = |tid: &str, to: &str, from: &str| {
            format!("MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\n-------{tid}$\r\n")
        };
        let (a, b) = (
            "msrp://a.example.com:1/x;tcp",
            "msrp://b.example.com:2/y;tcp",
        );
        let (c, bad) = (
            "msrp://c.example.com:3/z;tcp",
            "msrp://c.example.com:0/z;tcp",
        );
        let input = [
            msg("tid1", &format!("{a} {b}"), b),
            msg("tid2", &format!("{a} {b}"), b),
            // The same To-Path with a different From-Path, then a To-Path that changes.
            msg("tid3", &format!("{a} {b}"), c),
            msg("tid4", c, c),
            // A header that differs from the last only in a port that is not valid is refused
            // (an unreadable path ends the connection, RFC 4975 §10.2).
            msg("tid5", bad, c),
        ]
        .concat();
        let got = heads(input.as_bytes());
        assert_eq!(got.len(), 5, "{got:?}");
        let paths = |i: usize| match &got[i] {
            Ok(h) => (path_text(h.to_path()), path_text(h.from_path())),
            Err(e) => panic!("message {i}: {e}"),
        };
        assert_eq!(
            paths(0),
            (vec![a.to_owned(), b.to_owned()], vec![b.to_owned()])
        );
        assert_eq!(paths(1), paths(0));
        assert_eq!(
            paths(2),
            (vec![a.to_owned(), b.to_owned()], vec![c.to_owned()])
        );
        assert_eq!(paths(3), (vec![c.to_owned()], vec![c.to_owned()]));
        assert!(
            matches!(got[4], Err(DecodeError::Fatal { .. })),
            "{:?}",
            got[4]
        );
        // The second head's URIs equal what a fresh parse of its own bytes gives.
        let Ok(second) = &got[1] else { unreachable!() };
        let fresh = Head::parse(second.raw().clone(), false, &Limits::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(path_text(fresh.to_path()), path_text(second.to_path()));
        assert_eq!(fresh.to_path()[1].port(), second.to_path()[1].port());
    }

    /// Body pieces of `input` fed in reads split at `split`: (offset in the body, bytes,
    /// what [`Decoder::body_has_delimiter`] said).
    fn pieces(input: &[u8], split: usize) -> Vec<(usize, Bytes, bool)> {
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut at = 0;
        for part in [&input[..split], &input[split..]] {
            buf.extend_from_slice(part);
            while let Some(ev) = dec.decode(&mut buf).unwrap() {
                if let Event::Body(b) = ev {
                    out.push((at, b.clone(), dec.body_has_delimiter()));
                    at += b.len();
                }
            }
        }
        out
    }

    /// RFC 4975 §7.1: the new tid of a forwarded piece must not occur as an end-line in its
    /// body. The decoder says which pieces hold a `CRLF "-------"`, so a forwarder can skip
    /// its own search for the rest; the occurrence is reported by the piece it begins in,
    /// whatever the reads.
    #[test]
    fn rfc4975_s7_1_body_pieces_report_delimiters() {
        let mut input = HEAD.to_vec();
        input.extend_from_slice(b"Content-Type: text/plain\r\n\r\n");
        let body_at = input.len();
        input.extend_from_slice(b"0123456789ab\r\n-------zz$\r\nxyz0123456789");
        let occurrence = 12;
        input.extend_from_slice(b"\r\n-------abcd$\r\n");
        for split in 0..=input.len() {
            let got = pieces(&input, split);
            let body: Vec<u8> = got.iter().flat_map(|(_, b, _)| b.to_vec()).collect();
            assert_eq!(
                &body[..],
                &input[body_at..input.len() - 16],
                "split at {split}"
            );
            for (at, b, delim) in &got {
                let begins_here = (*at..at + b.len()).contains(&occurrence);
                assert_eq!(*delim, begins_here, "split at {split}, piece at {at}");
            }
        }
        // No delimiter: every piece says so, however the reads fall.
        let mut clean = HEAD.to_vec();
        clean.extend_from_slice(b"Content-Type: text/plain\r\n\r\n-------ab\r\n------\r\r\n");
        clean.extend_from_slice(b"\r\n-------abcd$\r\n");
        for split in 0..=clean.len() {
            assert!(
                pieces(&clean, split).iter().all(|(_, _, d)| !d),
                "split at {split}"
            );
        }
    }

    /// Found by the chunking property test: a bodiless message whose head was just within
    /// `max_head_size` was refused when a read ended inside its end-line, because the partial
    /// end-line was counted as head (RFC 4975 §7.1: the end-line is not part of the head).
    #[test]
    fn rfc4975_s7_1_end_line_is_not_counted_as_head() {
        let mut input = HEAD.to_vec();
        input.extend_from_slice(b"-------abcd$\r\n");
        let limits = Limits {
            max_head_size: HEAD.len(),
            ..Limits::default()
        };
        for split in 0..=input.len() {
            assert_eq!(
                run(&input, split, &limits),
                ["head abcd", "end Complete"],
                "split at {split}"
            );
        }
    }

    /// Found by the decoder fuzz target run against the code before the fix above (seed
    /// `fuzz/seeds/decoder/regression_head_count_vs_partial_line_size`): the line that broke
    /// the header count also crossed the head size; whole, the count was reported, in pieces
    /// the size, from the partial line.
    #[test]
    fn header_count_and_head_size_on_one_line_do_not_depend_on_reads() {
        let mut input = HEAD.to_vec();
        input.extend_from_slice(b"X-A: 1\r\nX-B: 123456789\r\n-------abcd$\r\n");
        let limits = Limits {
            max_headers: 3,
            max_head_size: HEAD.len() + 8 + 5,
            ..Limits::default()
        };
        let whole = run(&input, input.len(), &limits);
        assert!(whole[0].contains("number of headers"), "{whole:?}");
        for split in 0..=input.len() {
            assert_eq!(run(&input, split, &limits), whole, "split at {split}");
        }
    }

    /// Found by the chunking property test: a From-Path line crossing `max_head_size` was a
    /// fatal error when it arrived in pieces and an answerable one (400, RFC 4975 §10.2) when
    /// it arrived whole. Now it is the same whatever the reads.
    #[test]
    fn rfc4975_s10_2_head_size_error_does_not_depend_on_reads() {
        let mut input = HEAD.to_vec();
        input.extend_from_slice(b"X-Pad: 0123456789\r\n-------abcd$\r\n");
        for max_head_size in [30, HEAD.len() - 10, HEAD.len() + 5] {
            let limits = Limits {
                max_head_size,
                ..Limits::default()
            };
            let whole = run(&input, input.len(), &limits);
            assert!(whole[0].contains("header block size"), "{whole:?}");
            for split in 0..=input.len() {
                assert_eq!(run(&input, split, &limits), whole, "split at {split}");
            }
        }
    }
}
