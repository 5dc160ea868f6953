//! The head of an MSRP message: start line and headers (RFC 4975 §7, §9; RFC 4976 §7).
//!
//! A [`Head`] owns the exact bytes of its head block and refers into them: path URIs are
//! [`MsrpUri`]s over slices of those bytes, and every header after From-Path is kept as a
//! raw line, in order, so a relay can forward them byte-identical (RFC 4976 §6.4.1).
//! Headers the relay acts on are parsed once, when the head is decoded.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use crate::digest::{AuthenticationInfo, Challenge, Credentials, DigestError};
use crate::error::{DecodeError, HeaderName, Limit, Violation};
use crate::uri::{is_token_char, parse_path, parse_path_into, MsrpUri, Path, PathError};
use crate::Limits;

/// Longest transaction id this crate can hold. The grammar caps it at 32 (RFC 4975 §9
/// `ident`); [`Limits::max_tid_len`] may raise the accepted length up to this for peers that
/// send longer ones.
pub const TID_CAPACITY: usize = 64;

/// A transaction id (RFC 4975 §9 `transact-id = ident`), stored inline: it is a hash key on
/// the hot path and is copied into every response and end-line.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId {
    len: u8,
    buf: [u8; TID_CAPACITY],
}

/// `ident = ALPHANUM 3*31ident-char`; `ident-char = ALPHANUM / "." / "-" / "+" / "%" / "="`.
pub(crate) fn is_ident(s: &[u8], max: usize) -> bool {
    s.len() >= 4
        && s.len() <= max
        && s[0].is_ascii_alphanumeric()
        && s[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'%' | b'='))
}

impl TransactionId {
    /// A transaction id from bytes that follow the `ident` grammar (4 to 32 characters, or up
    /// to [`TID_CAPACITY`] when `max` allows).
    pub fn new(s: &[u8]) -> Option<TransactionId> {
        Self::with_max(s, 32)
    }

    pub(crate) fn with_max(s: &[u8], max: usize) -> Option<TransactionId> {
        if !is_ident(s, max.min(TID_CAPACITY)) {
            return None;
        }
        let mut buf = [0u8; TID_CAPACITY];
        buf[..s.len()].copy_from_slice(s);
        Some(TransactionId {
            len: s.len() as u8,
            buf,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    pub fn as_str(&self) -> &str {
        // Only ident characters (ASCII) are ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({})", self.as_str())
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request method. The literals are case-sensitive (RFC 4975 §9, checklist G1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Send,
    Report,
    Auth,
    /// `other-method = 1*UPALPHA`, forwarded like REPORT (RFC 4976 §6.4.2).
    Other(Bytes),
}

impl Method {
    pub fn parse(s: &[u8]) -> Option<Method> {
        match s {
            b"SEND" => Some(Method::Send),
            b"REPORT" => Some(Method::Report),
            b"AUTH" => Some(Method::Auth),
            _ if !s.is_empty() && s.iter().all(u8::is_ascii_uppercase) => {
                Some(Method::Other(Bytes::copy_from_slice(s)))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Send => "SEND",
            Method::Report => "REPORT",
            Method::Auth => "AUTH",
            Method::Other(b) => std::str::from_utf8(b).unwrap_or(""),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line: a request or a response (RFC 4975 §9 `req-start` / `resp-start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request {
        tid: TransactionId,
        method: Method,
    },
    Response {
        tid: TransactionId,
        code: u16,
        /// The reason phrase as sent (may be empty).
        comment: Bytes,
    },
}

impl StartLine {
    pub fn tid(&self) -> &TransactionId {
        match self {
            StartLine::Request { tid, .. } | StartLine::Response { tid, .. } => tid,
        }
    }
}

/// `Byte-Range: range-start "-" range-end "/" total` with `*` for an unknown end or total
/// (RFC 4975 §7.1.1, §9). Positions count from 1; an empty message is `1-0/0` (G8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// `None` for `*` (the chunk may be interrupted).
    pub end: Option<u64>,
    /// `None` for `*` (total unknown).
    pub total: Option<u64>,
}

impl ByteRange {
    /// Parse without allocating; numbers that do not fit in a u64 are errors
    /// (RFC 4975 §14.5: never trust, never allocate from these values).
    pub fn parse(s: &[u8]) -> Option<ByteRange> {
        // A few bytes: scanning them costs less than a memchr call per separator.
        let dash = s.iter().position(|&b| b == b'-')?;
        let slash = s[dash..].iter().position(|&b| b == b'/')? + dash;
        let start = parse_u64(&s[..dash])?;
        let end = star_or_u64(&s[dash + 1..slash])?;
        let total = star_or_u64(&s[slash + 1..])?;
        if start == 0 {
            return None;
        }
        // range-end >= range-start - 1 (`n-(n-1)` is empty). Written without `e + 1`, which
        // overflows for a range-end of u64::MAX, a value the grammar allows (RFC 4975 §9
        // `range-end = 1*DIGIT`; §14.5: never trust these numbers).
        if let Some(e) = end {
            if e < start - 1 {
                return None;
            }
        }
        if let (Some(e), Some(t)) = (end, total) {
            if e > t {
                return None;
            }
        }
        Some(ByteRange { start, end, total })
    }

    /// Write as `start-end/total`.
    pub fn write(&self, out: &mut impl bytes::BufMut) {
        let mut b = itoa_buf();
        out.put_slice(fmt_u64(self.start, &mut b));
        out.put_u8(b'-');
        match self.end {
            Some(e) => out.put_slice(fmt_u64(e, &mut b)),
            None => out.put_u8(b'*'),
        }
        out.put_u8(b'/');
        match self.total {
            Some(t) => out.put_slice(fmt_u64(t, &mut b)),
            None => out.put_u8(b'*'),
        }
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::with_capacity(24);
        self.write(&mut v);
        f.write_str(std::str::from_utf8(&v).unwrap_or(""))
    }
}

pub(crate) fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Format a u64 into `buf` and return the digits.
pub(crate) fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    // One pass: check and accumulate each digit.
    s.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn star_or_u64(s: &[u8]) -> Option<Option<u64>> {
    if s == b"*" {
        Some(None)
    } else {
        parse_u64(s).map(Some)
    }
}

/// `Failure-Report` (RFC 4975 §7.1.4); absent means `yes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureReport {
    #[default]
    Yes,
    No,
    Partial,
}

/// `Status: namespace SP status-code [SP comment]` of a REPORT (RFC 4975 §7.1.2, §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportStatus {
    pub namespace: u16,
    pub code: u16,
    pub comment: Bytes,
}

/// A header after From-Path, kept as its raw line.
#[derive(Debug, Clone)]
pub struct HeaderField {
    pub name: HeaderName,
    /// The whole line without its CRLF, as received.
    line: Range<u32>,
    /// The value: after the colon and any spaces, to the end of the line.
    value: Range<u32>,
}

/// A decoded head. Construct one with the [`Decoder`](crate::Decoder) or [`Head::parse`].
#[derive(Debug, Clone)]
pub struct Head {
    /// The head block: start line through the CRLF of the last header line.
    raw: Bytes,
    start: StartLine,
    to_path: Path,
    from_path: Path,
    /// Offset in `raw` where the header lines after From-Path begin.
    rest_at: u32,
    headers: smallvec::SmallVec<[HeaderField; 8]>,
    message_id: Option<Range<u32>>,
    byte_range: Option<ByteRange>,
    success_report: Option<bool>,
    failure_report: Option<FailureReport>,
    status: Option<ReportStatus>,
    content_type: Option<Range<u32>>,
    expires: Option<u64>,
    min_expires: Option<u64>,
    max_expires: Option<u64>,
    /// Boxed: only AUTH responses carry one, and every head would otherwise carry its room.
    use_path: Option<Box<Path>>,
    has_body: bool,
}

/// The To-Path and From-Path of the last head a [`Decoder`](crate::Decoder) parsed, as
/// received and as parsed. Every message of a session carries the same two paths, so on a
/// connection nearly every path header is byte-identical to the previous one of its kind;
/// parsing is a function of those bytes alone, so an identical header takes the parsed URIs
/// of the last one (sharing its bytes) instead of being parsed and validated again. A
/// different one is parsed and remembered in its place.
#[derive(Debug, Default)]
pub(crate) struct PathMemo {
    to: Option<(Bytes, Path)>,
    from: Option<(Bytes, Path)>,
}

/// What is known of a message whose head broke a rule but whose paths were readable: enough
/// to address a 400 to the sender (RFC 4975 §10.2) and to skip to its end-line.
#[derive(Debug, Clone)]
pub struct RejectContext {
    pub tid: TransactionId,
    /// `None` for a response (responses are never answered, RFC 4976 §6.4.3).
    pub method: Option<Method>,
    pub to_path: Vec<MsrpUri>,
    pub from_path: Vec<MsrpUri>,
}

/// A head that failed to parse: the rule it broke and, when the start line and both paths
/// were readable, the context for an error response.
#[derive(Debug)]
pub(crate) struct HeadFailure {
    pub violation: Violation,
    pub context: Option<Box<RejectContext>>,
}

fn trim_ws(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

/// RFC 4975 §9 `utf8text`: no control characters but HTAB.
fn is_text(s: &[u8]) -> bool {
    s.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7F))
}

/// The offset of the first CRLF in `s`.
pub(crate) fn find_crlf(s: &[u8]) -> Option<usize> {
    // memchr for the LF, then look back for its CR: for short head lines this is much cheaper
    // than building a substring searcher for every call.
    let mut from = 0;
    loop {
        let lf = from + memchr::memchr(b'\n', &s[from..])?;
        if lf > 0 && s[lf - 1] == b'\r' {
            return Some(lf - 1);
        }
        from = lf + 1;
    }
}

/// Split `raw` into lines at CRLF (the head block ends with CRLF). `ends`, when the caller
/// already found them (the decoder does, line by line), are the offsets of every line's CRLF.
fn lines<'a>(raw: &'a [u8], ends: Option<&'a [u32]>) -> impl Iterator<Item = Range<usize>> + 'a {
    let mut at = 0;
    let mut ends = ends.map(|e| e.iter());
    std::iter::from_fn(move || {
        if at >= raw.len() {
            return None;
        }
        let eol = match &mut ends {
            Some(ends) => *ends.next()? as usize,
            None => at + find_crlf(&raw[at..])?,
        };
        let r = at..eol;
        at = eol + 2;
        Some(r)
    })
}

/// Parse the start line (RFC 4975 §9 `req-start` / `resp-start`).
fn parse_start_line(line: &[u8], limits: &Limits) -> Result<StartLine, Violation> {
    let rest = line.strip_prefix(b"MSRP ").ok_or(Violation::StartLine)?;
    let sp = memchr::memchr(b' ', rest).ok_or(Violation::StartLine)?;
    let tid_bytes = &rest[..sp];
    if tid_bytes.len() > limits.max_tid_len.min(TID_CAPACITY) && is_ident(tid_bytes, TID_CAPACITY) {
        return Err(Violation::LimitExceeded(Limit::TransactionId));
    }
    let tid =
        TransactionId::with_max(tid_bytes, limits.max_tid_len).ok_or(Violation::TransactionId)?;
    let after = &rest[sp + 1..];
    if after.len() >= 3 && after[..3].iter().all(u8::is_ascii_digit) {
        let code = u16::from(after[0] - b'0') * 100
            + u16::from(after[1] - b'0') * 10
            + u16::from(after[2] - b'0');
        let comment = match &after[3..] {
            [] => &[][..],
            [b' ', c @ ..] if is_text(c) => c,
            _ => return Err(Violation::StartLine),
        };
        return Ok(StartLine::Response {
            tid,
            code,
            comment: Bytes::copy_from_slice(comment),
        });
    }
    let method = Method::parse(after).ok_or(Violation::Method)?;
    Ok(StartLine::Request { tid, method })
}

/// Split a header line into name and value (RFC 4975 §9 `hname ":" SP hval`), tolerating
/// extra spaces or tabs after the colon (G6). Returns the value's offset in the line.
fn split_header(line: &[u8]) -> Option<(&[u8], usize)> {
    // One pass: the name is the token characters before the colon (`:` is not one), so the
    // first non-token byte must be the colon.
    let colon = line
        .iter()
        .position(|&b| !is_token_char(b))
        .filter(|&c| line[c] == b':')?;
    let name = &line[..colon];
    if name.is_empty() || !name[0].is_ascii_alphabetic() {
        return None;
    }
    let mut v = colon + 1;
    while v < line.len() && (line[v] == b' ' || line[v] == b'\t') {
        v += 1;
    }
    Some((name, v))
}

fn path_violation(e: PathError, header: HeaderName) -> Violation {
    match e {
        PathError::TooMany => Violation::LimitExceeded(Limit::PathUris),
        PathError::Empty => Violation::HeaderValue(header),
        PathError::Uri(_) => Violation::HeaderValue(header),
    }
}

impl Head {
    /// Parse a head block: the start line through the CRLF of the last header line, without
    /// the blank line or end-line that follows. `has_body` says whether a blank line (and so a
    /// body) followed it.
    pub fn parse(raw: Bytes, has_body: bool, limits: &Limits) -> Result<Head, DecodeError> {
        Head::parse_inner(raw, has_body, limits, None, None)
            .map(|head| *head)
            .map_err(|f| match f.context {
                Some(context) => DecodeError::Rejected {
                    violation: f.violation,
                    context,
                },
                None => DecodeError::Fatal {
                    violation: f.violation,
                },
            })
    }

    /// `line_ends`: the offset of every line's CRLF in `raw`, when already known. `memo`: the
    /// paths of the connection's previous head (see [`PathMemo`]).
    ///
    /// The head is built in its box: a `Head` is about a kilobyte, and a decoded head is
    /// passed along several times before it is dropped (the relay keeps it for the whole
    /// message); moving a pointer instead of copying the struct each time matters per message.
    pub(crate) fn parse_inner(
        raw: Bytes,
        has_body: bool,
        limits: &Limits,
        line_ends: Option<&[u32]>,
        mut memo: Option<&mut PathMemo>,
    ) -> Result<Box<Head>, HeadFailure> {
        let fail = |violation| HeadFailure {
            violation,
            context: None,
        };
        let mut it = lines(&raw, line_ends);
        let start_line = it.next().ok_or(fail(Violation::StartLine))?;
        let start = parse_start_line(&raw[start_line], limits).map_err(fail)?;
        let mut head = Box::new(Head {
            raw: Bytes::new(),
            start,
            to_path: Path::new(),
            from_path: Path::new(),
            rest_at: 0,
            headers: smallvec::SmallVec::new(),
            message_id: None,
            byte_range: None,
            success_report: None,
            failure_report: None,
            status: None,
            content_type: None,
            expires: None,
            min_expires: None,
            max_expires: None,
            use_path: None,
            has_body,
        });

        // To-Path first, From-Path second (RFC 4975 §9 `headers`, G3), each parsed into its
        // place in the head.
        let mut path_line = |want: HeaderName, out: &mut Path| -> Result<usize, Violation> {
            let r = it.next().ok_or(Violation::MissingPath(want))?;
            let line = &raw[r.clone()];
            let (name, v) = split_header(line).ok_or(Violation::HeaderLine)?;
            if HeaderName::classify(name) != want {
                return Err(Violation::MissingPath(want));
            }
            let value = &raw[r.start + v..r.end];
            let last = memo.as_deref_mut().map(|m| match want {
                HeaderName::ToPath => &mut m.to,
                _ => &mut m.from,
            });
            if let Some(Some((bytes, path))) = last.as_deref() {
                if bytes[..] == *value {
                    out.extend(path.iter().cloned());
                    return Ok(r.end + 2);
                }
            }
            let value = raw.slice(r.start + v..r.end);
            // Parse every URI so that a too-long path is still readable for the 400; the
            // header line limit bounds the count.
            parse_path_into(&value, usize::MAX, out).map_err(|e| path_violation(e, want))?;
            if let Some(last) = last {
                *last = Some((value, out.clone()));
            }
            Ok(r.end + 2)
        };
        path_line(HeaderName::ToPath, &mut head.to_path).map_err(fail)?;
        let rest_at = path_line(HeaderName::FromPath, &mut head.from_path).map_err(fail)?;
        head.rest_at = rest_at as u32;

        // From here on the message can be answered: any failure carries the context.
        if head.to_path.len() > limits.max_path_uris || head.from_path.len() > limits.max_path_uris
        {
            return Err(head.reject(Violation::LimitExceeded(Limit::PathUris)));
        }
        let mut mime_headers = 0usize;
        for r in it {
            if let Err(v) = head.header_line(&raw, r, limits, &mut mime_headers) {
                return Err(head.reject(v));
            }
        }
        if let Err(v) = head.check_body(mime_headers) {
            return Err(head.reject(v));
        }
        head.raw = raw;
        Ok(head)
    }

    /// A failure of a head whose start line and paths were readable: enough to answer it.
    fn reject(&self, violation: Violation) -> HeadFailure {
        HeadFailure {
            violation,
            context: Some(Box::new(RejectContext {
                tid: *self.start.tid(),
                method: self.method().cloned(),
                to_path: self.to_path.to_vec(),
                from_path: self.from_path.to_vec(),
            })),
        }
    }

    /// One header line after From-Path (`r`: its range in `raw`, without the CRLF).
    fn header_line(
        &mut self,
        raw: &Bytes,
        r: Range<usize>,
        limits: &Limits,
        mime_headers: &mut usize,
    ) -> Result<(), Violation> {
        let line = &raw[r.clone()];
        let (name, v) = split_header(line).ok_or(Violation::HeaderLine)?;
        let value_bytes = &line[v..];
        if !is_text(value_bytes) {
            return Err(Violation::HeaderLine);
        }
        // Content-Type is the last header (RFC 4975 §7.1, G3).
        if self.content_type.is_some() {
            return Err(Violation::ContentTypeNotLast);
        }
        let kind = HeaderName::classify(name);
        let value = (r.start + v) as u32..r.end as u32;
        let trimmed = trim_ws(value_bytes);
        let dup = |present: bool| {
            if present {
                Err(Violation::DuplicateHeader(kind))
            } else {
                Ok(())
            }
        };
        let bad = Violation::HeaderValue(kind);
        match kind {
            HeaderName::ToPath | HeaderName::FromPath => {
                return Err(Violation::DuplicateHeader(kind))
            }
            HeaderName::MessageId => {
                dup(self.message_id.is_some())?;
                if trimmed.len() > limits.max_message_id_len && is_ident(trimmed, usize::MAX) {
                    return Err(Violation::LimitExceeded(Limit::MessageId));
                }
                if !is_ident(trimmed, limits.max_message_id_len) {
                    return Err(bad);
                }
                let off = value.start
                    + (trimmed.as_ptr() as usize - value_bytes.as_ptr() as usize) as u32;
                self.message_id = Some(off..off + trimmed.len() as u32);
            }
            HeaderName::ByteRange => {
                dup(self.byte_range.is_some())?;
                self.byte_range = Some(ByteRange::parse(trimmed).ok_or(bad)?);
            }
            HeaderName::SuccessReport => {
                dup(self.success_report.is_some())?;
                self.success_report = Some(if trimmed.eq_ignore_ascii_case(b"yes") {
                    true
                } else if trimmed.eq_ignore_ascii_case(b"no") {
                    false
                } else {
                    return Err(bad);
                });
            }
            HeaderName::FailureReport => {
                dup(self.failure_report.is_some())?;
                self.failure_report = Some(if trimmed.eq_ignore_ascii_case(b"yes") {
                    FailureReport::Yes
                } else if trimmed.eq_ignore_ascii_case(b"no") {
                    FailureReport::No
                } else if trimmed.eq_ignore_ascii_case(b"partial") {
                    FailureReport::Partial
                } else {
                    return Err(bad);
                });
            }
            HeaderName::Status => {
                dup(self.status.is_some())?;
                self.status = Some(parse_status(trimmed).ok_or(bad)?);
            }
            HeaderName::ContentType => {
                if !is_media_type(trimmed) {
                    return Err(bad);
                }
                self.content_type = Some(value.clone());
            }
            HeaderName::Expires | HeaderName::MinExpires | HeaderName::MaxExpires => {
                let slot = match kind {
                    HeaderName::Expires => &mut self.expires,
                    HeaderName::MinExpires => &mut self.min_expires,
                    _ => &mut self.max_expires,
                };
                if slot.is_some() {
                    return Err(Violation::DuplicateHeader(kind));
                }
                if trimmed.is_empty() || !trimmed.iter().all(u8::is_ascii_digit) {
                    return Err(bad);
                }
                // Saturate: an absurd interval is out of bounds (423), not unreadable.
                *slot = Some(parse_u64(trimmed).unwrap_or(u64::MAX));
            }
            HeaderName::UsePath => {
                dup(self.use_path.is_some())?;
                let v = raw.slice(value.start as usize..value.end as usize);
                let uris =
                    parse_path(&v, limits.max_path_uris).map_err(|e| path_violation(e, kind))?;
                self.use_path = Some(Box::new(uris));
            }
            HeaderName::OtherMime => *mime_headers += 1,
            HeaderName::WwwAuthenticate
            | HeaderName::Authorization
            | HeaderName::AuthenticationInfo
            | HeaderName::Other => {}
        }
        self.headers.push(HeaderField {
            name: kind,
            line: r.start as u32..r.end as u32,
            value,
        });
        if self.headers.len() + 2 > limits.max_headers {
            return Err(Violation::LimitExceeded(Limit::HeaderCount));
        }
        Ok(())
    }

    /// A body exists exactly when Content-Type is present (RFC 4975 §7.1, G7).
    fn check_body(&self, mime_headers: usize) -> Result<(), Violation> {
        match (&self.start, self.has_body, self.content_type.is_some()) {
            (StartLine::Response { .. }, true, _) => Err(Violation::ResponseWithBody),
            (_, true, false) => Err(Violation::BodyWithoutContentType),
            (_, false, true) => Err(Violation::ContentTypeWithoutBody),
            (_, false, false) if mime_headers > 0 => Err(Violation::ContentTypeWithoutBody),
            _ => Ok(()),
        }
    }

    /// The exact bytes of the head block (start line through the last header's CRLF).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
    pub fn start_line(&self) -> &StartLine {
        &self.start
    }
    pub fn tid(&self) -> &TransactionId {
        self.start.tid()
    }
    /// The method, for a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    /// The status code, for a response.
    pub fn response_code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    pub fn to_path(&self) -> &[MsrpUri] {
        &self.to_path
    }
    pub fn from_path(&self) -> &[MsrpUri] {
        &self.from_path
    }
    /// Every header after From-Path, in order.
    pub fn headers(&self) -> &[HeaderField] {
        &self.headers
    }
    /// The raw header lines after From-Path (each with its CRLF), as one slice.
    pub fn rest(&self) -> &[u8] {
        &self.raw[self.rest_at as usize..]
    }
    /// A header line as received, without CRLF.
    pub fn line(&self, h: &HeaderField) -> &[u8] {
        &self.raw[h.line.start as usize..h.line.end as usize]
    }
    /// A header value as received (after the colon and its spaces).
    pub fn value(&self, h: &HeaderField) -> &[u8] {
        &self.raw[h.value.start as usize..h.value.end as usize]
    }
    /// The value of the first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find_map(|h| {
            let line = self.line(h);
            let colon = memchr::memchr(b':', line)?;
            line[..colon]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| self.value(h))
        })
    }
    fn first(&self, kind: HeaderName) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name == kind)
            .map(|h| trim_ws(self.value(h)))
    }
    pub fn message_id(&self) -> Option<&[u8]> {
        self.message_id
            .as_ref()
            .map(|r| &self.raw[r.start as usize..r.end as usize])
    }
    pub fn byte_range(&self) -> Option<ByteRange> {
        self.byte_range
    }
    /// `Success-Report`; absent means `no` (RFC 4975 §7.1.3).
    pub fn success_report(&self) -> bool {
        self.success_report.unwrap_or(false)
    }
    /// `Failure-Report`; absent means `yes` (RFC 4975 §7.1.4).
    pub fn failure_report(&self) -> FailureReport {
        self.failure_report.unwrap_or_default()
    }
    pub fn status(&self) -> Option<&ReportStatus> {
        self.status.as_ref()
    }
    pub fn content_type(&self) -> Option<&[u8]> {
        self.content_type
            .as_ref()
            .map(|r| trim_ws(&self.raw[r.start as usize..r.end as usize]))
    }
    pub fn expires(&self) -> Option<u64> {
        self.expires
    }
    pub fn min_expires(&self) -> Option<u64> {
        self.min_expires
    }
    pub fn max_expires(&self) -> Option<u64> {
        self.max_expires
    }
    pub fn use_path(&self) -> Option<&[MsrpUri]> {
        self.use_path.as_deref().map(|p| &p[..])
    }
    /// A body follows this head (Content-Type was present, RFC 4975 §7.1).
    pub fn has_body(&self) -> bool {
        self.has_body
    }
    /// `WWW-Authenticate`, parsed (RFC 4976 §5.1, §7).
    pub fn www_authenticate(&self) -> Option<Result<Challenge, DigestError>> {
        self.first(HeaderName::WwwAuthenticate)
            .map(Challenge::parse)
    }
    /// `Authorization`, parsed (RFC 4976 §5.1, §7).
    pub fn authorization(&self) -> Option<Result<Credentials, DigestError>> {
        self.first(HeaderName::Authorization)
            .map(Credentials::parse)
    }
    /// `Authentication-Info`, parsed (RFC 4976 §7).
    pub fn authentication_info(&self) -> Option<Result<AuthenticationInfo, DigestError>> {
        self.first(HeaderName::AuthenticationInfo)
            .map(AuthenticationInfo::parse)
    }
}

fn parse_status(s: &[u8]) -> Option<ReportStatus> {
    let three = |b: &[u8]| -> Option<u16> {
        (b.len() == 3 && b.iter().all(u8::is_ascii_digit))
            .then(|| b.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')))
    };
    if s.len() < 7 || s[3] != b' ' {
        return None;
    }
    let namespace = three(&s[..3])?;
    let code = three(&s[4..7])?;
    let comment = match &s[7..] {
        [] => Bytes::new(),
        [b' ', c @ ..] => Bytes::copy_from_slice(c),
        _ => return None,
    };
    Some(ReportStatus {
        namespace,
        code,
        comment,
    })
}

/// `media-type = type "/" subtype *( ";" gen-param )` (RFC 4975 §9), checked loosely: two
/// tokens around a slash, anything after a `;`.
fn is_media_type(s: &[u8]) -> bool {
    // Short values: a byte scan costs less than a memchr call.
    let main = &s[..s.iter().position(|&b| b == b';').unwrap_or(s.len())];
    let main = trim_ws(main);
    match main.iter().position(|&b| b == b'/') {
        Some(slash) => {
            let (t, st) = (&main[..slash], &main[slash + 1..]);
            !t.is_empty()
                && !st.is_empty()
                && t.iter().all(|&b| is_token_char(b))
                && st.iter().all(|&b| is_token_char(b))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the proptest chunking test: `e + 1` overflowed (a panic in debug builds, and
    /// in release a valid range rejected) for a range-end of u64::MAX (RFC 4975 §9, §14.5).
    /// `split_header` finds the colon and checks the name in one pass; it must say what the
    /// two-pass definition says (RFC 4975 §9 `hname = ALPHA *token`, then ":").
    #[test]
    fn rfc4975_s9_split_header_matches_grammar() {
        fn reference(line: &[u8]) -> Option<(&[u8], usize)> {
            let colon = memchr::memchr(b':', line)?;
            let name = &line[..colon];
            if name.is_empty()
                || !name[0].is_ascii_alphabetic()
                || !name.iter().all(|&b| is_token_char(b))
            {
                return None;
            }
            let mut v = colon + 1;
            while v < line.len() && (line[v] == b' ' || line[v] == b'\t') {
                v += 1;
            }
            Some((name, v))
        }
        for line in [
            &b"To-Path: x"[..],
            b"X-A:",
            b"X-A:\t  v",
            b"a:b:c",
            b":x",
            b"1a: x",
            b"A b: x",
            b"A\xff: x",
            b"A",
            b"",
            b"A;b: x",
            b"A: b: c",
            b"Content-Type:text/plain",
        ] {
            assert_eq!(split_header(line), reference(line), "{line:?}");
        }
        for b in 0..=255u8 {
            let line = [b'A', b, b':', b' ', b'v'];
            assert_eq!(split_header(&line), reference(&line), "{b:#x}");
        }
    }

    #[test]
    fn find_crlf_is_the_first_cr_lf_pair() {
        for (s, want) in [
            (&b""[..], None),
            (b"\r", None),
            (b"\n", None),
            (b"\n\r", None),
            (b"\r\n", Some(0)),
            (b"a\nb\r\n", Some(3)),
            (b"\r\r\n", Some(1)),
            (b"\n\n\r\n\r\n", Some(2)),
        ] {
            assert_eq!(find_crlf(s), want, "{s:?}");
            assert_eq!(find_crlf(s), memchr::memmem::find(s, b"\r\n"));
        }
    }

    #[test]
    fn rfc4975_s9_byte_range_end_at_u64_max() {
        let max = u64::MAX;
        assert_eq!(
            ByteRange::parse(b"1-18446744073709551615/*"),
            Some(ByteRange {
                start: 1,
                end: Some(max),
                total: None
            })
        );
        assert_eq!(
            ByteRange::parse(b"18446744073709551615-18446744073709551615/18446744073709551615"),
            Some(ByteRange {
                start: max,
                end: Some(max),
                total: Some(max)
            })
        );
        // The empty range just before u64::MAX, and one that ends before it starts.
        assert!(ByteRange::parse(b"18446744073709551615-18446744073709551614/*").is_some());
        assert_eq!(
            ByteRange::parse(b"18446744073709551615-18446744073709551613/*"),
            None
        );
    }
}
