//! MSRP URIs (RFC 4975 §6, §9; RFC 7977 §5.2.1).
//!
//! ```text
//! MSRP-URI = msrp-scheme "://" authority ["/" session-id] ";" transport *( ";" URI-parameter)
//! ```
//!
//! A parsed [`MsrpUri`] keeps the exact bytes it was parsed from, so formatting it gives back
//! the original (a relay must copy path URIs unchanged, RFC 4976 §6.4) and parsing a path
//! header allocates nothing but the list: every component is an offset into those bytes.
//!
//! Equality ([`PartialEq`]) is URI *equivalence* per RFC 4975 §6.1, not byte equality; use
//! [`MsrpUri::as_bytes`] for the latter.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::str::FromStr;

use bytes::Bytes;

/// Why a URI did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("scheme is not msrp or msrps")]
    Scheme,
    #[error("authority is empty or malformed")]
    Authority,
    #[error("host is malformed")]
    Host,
    #[error("port is not a number from 1 to 65535")]
    Port,
    #[error("session-id has a character outside unreserved / \"+\" / \"=\" / \"/\"")]
    SessionId,
    #[error("transport parameter is missing or not ALPHANUM")]
    Transport,
    #[error("URI parameter is not token [\"=\" token]")]
    Parameter,
    #[error("URI is longer than 65535 bytes")]
    TooLong,
}

/// The two MSRP schemes (RFC 4975 §6): `msrps` means the hop uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Msrp,
    Msrps,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Msrp => "msrp",
            Scheme::Msrps => "msrps",
        }
    }
    /// The scheme uses TLS.
    pub fn is_secure(self) -> bool {
        self == Scheme::Msrps
    }
}

/// The host of an authority, classified so that addresses compare by value (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Name,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

type Span = Range<u16>;

/// A parsed URI without its bytes.
struct Parts {
    scheme: Scheme,
    userinfo: Option<Span>,
    host: Span,
    host_kind: Host,
    port: Option<u16>,
    session_id: Option<Span>,
    transport: Span,
    params: Option<Span>,
}

impl Parts {
    fn with_raw(self, raw: Bytes) -> MsrpUri {
        MsrpUri {
            raw,
            scheme: self.scheme,
            userinfo: self.userinfo,
            host: self.host,
            host_kind: self.host_kind,
            port: self.port,
            session_id: self.session_id,
            transport: self.transport,
            params: self.params,
        }
    }
}

/// A parsed MSRP URI that remembers its original bytes.
#[derive(Clone)]
pub struct MsrpUri {
    raw: Bytes,
    scheme: Scheme,
    userinfo: Option<Span>,
    host: Span,
    host_kind: Host,
    port: Option<u16>,
    session_id: Option<Span>,
    transport: Span,
    /// `;name[=value]` parameters after the transport, without the first `;`.
    params: Option<Span>,
}

/// A dotted-quad IPv4 address exactly as `Ipv4Addr::from_str` accepts it (four decimal
/// octets up to 255, no leading zeros), or `None` for anything else.
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for octet in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        let mut v: u16 = 0;
        for &d in p {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u16::from(d - b'0');
        }
        *octet = u8::try_from(v).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

fn span(r: Range<usize>) -> Span {
    // The parser rejects URIs longer than u16::MAX before any span is made.
    r.start as u16..r.end as u16
}

// Character classes as one table lookup each (the parser runs for every path URI of every
// message). Bits of `CLASS`:
const UNRESERVED: u8 = 1; // RFC 3986 unreserved: ALPHA DIGIT - . _ ~
const SUB_DELIM: u8 = 2; // RFC 3986 sub-delims: ! $ & ' ( ) * + , ; =
const SID_EXTRA: u8 = 4; // session-id also allows + = / (RFC 4975 §9)
const TOKEN: u8 = 8; // RFC 4975 §9 token
const HOST_PLAIN: u8 = 16; // ALPHA DIGIT - . : a reg-name needing no further checks
const DIGIT_DOT: u8 = 32; // DIGIT . : what an IPv4 literal is made of

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0;
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            bits |= UNRESERVED;
        }
        if matches!(
            c,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        ) {
            bits |= SUB_DELIM;
        }
        if matches!(c, b'+' | b'=' | b'/') {
            bits |= SID_EXTRA;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.') {
            bits |= HOST_PLAIN;
        }
        if c.is_ascii_digit() || c == b'.' {
            bits |= DIGIT_DOT;
        }
        if matches!(c, 0x21 | 0x23..=0x27 | 0x2A | 0x2B | 0x2D | 0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
        {
            bits |= TOKEN;
        }
        t[b] = bits;
        b += 1;
    }
    t
};

fn is_class(b: u8, class: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

/// RFC 4975 §9 `token`.
pub(crate) fn is_token_char(b: u8) -> bool {
    is_class(b, TOKEN)
}

/// `pct-encoded / unreserved / sub-delims` with well-formed percent escapes (RFC 3986 §2).
fn valid_pct_text(s: &[u8], extra: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if is_class(b, UNRESERVED | SUB_DELIM) {
            i += 1;
            continue;
        }
        if b == b'%' {
            if i + 2 >= s.len() {
                return false;
            }
            if !(s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
            continue;
        }
        if !extra.contains(&b) {
            return false;
        }
        i += 1;
    }
    true
}

impl MsrpUri {
    /// Parse a URI from bytes that it keeps (a slice of a received head costs no copy).
    pub fn parse(raw: Bytes) -> Result<MsrpUri, UriError> {
        if raw.len() > u16::MAX as usize {
            return Err(UriError::TooLong);
        }
        match MsrpUri::parse_common(&raw) {
            Some(parts) => Ok(parts.with_raw(raw)),
            None => MsrpUri::parse_general(raw),
        }
    }

    /// The full parser alone, without the fast path for the common form: the reference the
    /// tests and the `uri` fuzz target compare [`MsrpUri::parse`] with.
    #[doc(hidden)]
    pub fn parse_reference(raw: Bytes) -> Result<MsrpUri, UriError> {
        if raw.len() > u16::MAX as usize {
            return Err(UriError::TooLong);
        }
        MsrpUri::parse_general(raw)
    }

    /// One pass over the form almost every path URI has,
    /// `msrp[s]://name[:port][/session-id];transport` with a lower-case scheme, a host name of
    /// letters, digits, `-` and `.` or a canonical IPv4 address, no userinfo and no
    /// parameters. It returns what [`MsrpUri::parse_general`] would, or
    /// `None` for anything else (valid or not), which is left to that parser.
    fn parse_common(s: &[u8]) -> Option<Parts> {
        let (scheme, mut i) = if s.starts_with(b"msrps://") {
            (Scheme::Msrps, 8)
        } else if s.starts_with(b"msrp://") {
            (Scheme::Msrp, 7)
        } else {
            return None;
        };
        let n = s.len();
        let host_start = i;
        // One table lookup per byte: the classes of every host byte ANDed together tell
        // whether they were all digits and dots.
        let mut all = DIGIT_DOT;
        while i < n {
            let c = CLASS[usize::from(s[i])];
            if c & HOST_PLAIN == 0 {
                break;
            }
            all &= c;
            i += 1;
        }
        let dotted = all != 0;
        if i == host_start || i == n {
            return None;
        }
        let host = host_start..i;
        // Digits and dots: an IPv4 literal in its canonical form, or left to the full parser
        // (which also knows that `1.2.3` is a name).
        let host_kind = if dotted {
            Host::V4(parse_ipv4(&s[host.clone()])?)
        } else {
            Host::Name
        };
        let port = if s[i] == b':' {
            let p_start = i + 1;
            let mut p: u32 = 0;
            i = p_start;
            while i < n && s[i].is_ascii_digit() && i - p_start < 5 {
                p = p * 10 + u32::from(s[i] - b'0');
                i += 1;
            }
            if i == p_start || p == 0 || p > u32::from(u16::MAX) || i == n {
                return None;
            }
            Some(p as u16)
        } else {
            None
        };
        let session_id = if s[i] == b'/' {
            let sid_start = i + 1;
            i = sid_start;
            while i < n && is_class(s[i], UNRESERVED | SID_EXTRA) {
                i += 1;
            }
            if i == sid_start || i == n {
                return None;
            }
            Some(sid_start..i)
        } else {
            None
        };
        if s[i] != b';' {
            return None;
        }
        let t_start = i + 1;
        i = t_start;
        while i < n && s[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i == t_start || i != n {
            return None;
        }
        Some(Parts {
            scheme,
            userinfo: None,
            host: span(host),
            host_kind,
            port,
            session_id: session_id.map(span),
            transport: span(t_start..n),
            params: None,
        })
    }

    fn parse_general(raw: Bytes) -> Result<MsrpUri, UriError> {
        let s: &[u8] = &raw;
        // Scheme: "msrp" / "msrps", compared case-insensitively (ABNF quoted literals).
        let (scheme, rest_at) = if s.len() >= 8 && s[..8].eq_ignore_ascii_case(b"msrps://") {
            (Scheme::Msrps, 8)
        } else if s.len() >= 7 && s[..7].eq_ignore_ascii_case(b"msrp://") {
            (Scheme::Msrp, 7)
        } else {
            return Err(UriError::Scheme);
        };
        // The authority ends at the first "/" (session-id) or ";" (transport).
        let auth_end = memchr::memchr2(b'/', b';', &s[rest_at..])
            .map(|p| p + rest_at)
            .ok_or(UriError::Transport)?;
        let authority = &s[rest_at..auth_end];
        if authority.is_empty() {
            return Err(UriError::Authority);
        }
        let (userinfo, hostport_at) = match memchr::memrchr(b'@', authority) {
            Some(at) => {
                if !valid_pct_text(&authority[..at], b":") {
                    return Err(UriError::Authority);
                }
                (Some(span(rest_at..rest_at + at)), rest_at + at + 1)
            }
            None => (None, rest_at),
        };
        let hostport = &s[hostport_at..auth_end];
        let (host_range, host_kind, port_text) = if hostport.first() == Some(&b'[') {
            let close = memchr::memchr(b']', hostport).ok_or(UriError::Host)?;
            let text = std::str::from_utf8(&hostport[1..close]).map_err(|_| UriError::Host)?;
            let addr = Ipv6Addr::from_str(text).map_err(|_| UriError::Host)?;
            let after = &hostport[close + 1..];
            let port_text = match after.first() {
                None => None,
                Some(b':') => Some(&after[1..]),
                Some(_) => return Err(UriError::Host),
            };
            (
                hostport_at..hostport_at + close + 1,
                Host::V6(addr),
                port_text,
            )
        } else {
            let colon = memchr::memchr(b':', hostport);
            let host = &hostport[..colon.unwrap_or(hostport.len())];
            if host.is_empty() || !valid_pct_text(host, b"") {
                return Err(UriError::Host);
            }
            // Only digits and dots can be an IPv4 literal; skip the parser for names.
            let dotted = host.iter().all(|&b| b.is_ascii_digit() || b == b'.');
            let kind = match dotted
                .then(|| std::str::from_utf8(host).ok())
                .flatten()
                .and_then(|h| Ipv4Addr::from_str(h).ok())
            {
                Some(v4) => Host::V4(v4),
                None => Host::Name,
            };
            (
                hostport_at..hostport_at + host.len(),
                kind,
                colon.map(|c| &hostport[c + 1..]),
            )
        };
        let port = match port_text {
            None => None,
            Some(p) => Some(parse_port(p)?),
        };
        // Session-id (optional), then the mandatory ";transport".
        let mut at = auth_end;
        let session_id = if s[at] == b'/' {
            let start = at + 1;
            let end = memchr::memchr(b';', &s[start..])
                .map(|p| p + start)
                .ok_or(UriError::Transport)?;
            let sid = &s[start..end];
            if sid.is_empty() || !sid.iter().all(|&b| is_class(b, UNRESERVED | SID_EXTRA)) {
                return Err(UriError::SessionId);
            }
            at = end;
            Some(span(start..end))
        } else {
            None
        };
        // s[at] == b';'
        let t_start = at + 1;
        let t_end = memchr::memchr(b';', &s[t_start..])
            .map(|p| p + t_start)
            .unwrap_or(s.len());
        let transport = &s[t_start..t_end];
        if transport.is_empty() || !transport.iter().all(|b| b.is_ascii_alphanumeric()) {
            return Err(UriError::Transport);
        }
        let params = if t_end < s.len() {
            let p_start = t_end + 1;
            for param in s[p_start..].split(|&b| b == b';') {
                let (name, value) = match memchr::memchr(b'=', param) {
                    Some(eq) => (&param[..eq], Some(&param[eq + 1..])),
                    None => (param, None),
                };
                let ok_token = |t: &[u8]| !t.is_empty() && t.iter().all(|&b| is_token_char(b));
                if !ok_token(name) || value.is_some_and(|v| !ok_token(v)) {
                    return Err(UriError::Parameter);
                }
            }
            Some(span(p_start..s.len()))
        } else {
            None
        };
        Ok(MsrpUri {
            scheme,
            userinfo,
            host: span(host_range),
            host_kind,
            port,
            session_id,
            transport: span(t_start..t_end),
            params,
            raw,
        })
    }

    /// Build a URI from its parts (used to mint Use-Path URIs); the result re-parses.
    pub fn build(
        scheme: Scheme,
        host: &str,
        port: Option<u16>,
        session_id: Option<&str>,
        transport: &str,
    ) -> Result<MsrpUri, UriError> {
        let mut s = String::with_capacity(host.len() + 48);
        s.push_str(scheme.as_str());
        s.push_str("://");
        if host.contains(':') && !host.starts_with('[') {
            s.push('[');
            s.push_str(host);
            s.push(']');
        } else {
            s.push_str(host);
        }
        if let Some(p) = port {
            s.push(':');
            s.push_str(&p.to_string());
        }
        if let Some(sid) = session_id {
            s.push('/');
            s.push_str(sid);
        }
        s.push(';');
        s.push_str(transport);
        MsrpUri::parse(Bytes::from(s))
    }

    fn slice(&self, r: &Span) -> &[u8] {
        &self.raw[r.start as usize..r.end as usize]
    }
    fn text(&self, r: &Span) -> &str {
        // Every span covers ASCII that the parser checked.
        std::str::from_utf8(self.slice(r)).unwrap_or("")
    }

    /// The exact bytes the URI was parsed from.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
    /// The original bytes, shared.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
    /// The URI as text (it is always ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.raw).unwrap_or("")
    }
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    pub fn userinfo(&self) -> Option<&str> {
        self.userinfo.as_ref().map(|r| self.text(r))
    }
    /// The host as written (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        self.text(&self.host)
    }
    /// The host without IPv6 brackets, ready for a resolver or SNI.
    pub fn host_unbracketed(&self) -> &str {
        let h = self.host();
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }
    pub fn host_kind(&self) -> Host {
        self.host_kind
    }
    /// The host as an IP address when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.host_kind {
            Host::Name => None,
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
        }
    }
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_ref().map(|r| self.text(r))
    }
    pub fn transport(&self) -> &str {
        self.text(&self.transport)
    }
    /// Parameters after the transport, as written (`a=b;c`), if any.
    pub fn params(&self) -> Option<&str> {
        self.params.as_ref().map(|r| self.text(r))
    }

    /// RFC 4975 §6.1 equivalence:
    /// scheme case-insensitive; userinfo ignored; IP addresses by value, names
    /// case-insensitively after percent-decoding; an explicit port on either side must be on
    /// both and equal; session-id case-sensitive and present on both or neither; transport
    /// case-insensitive. URI parameters other than the transport do not identify a session
    /// and are not compared.
    pub fn equivalent(&self, other: &MsrpUri) -> bool {
        // The same text is the same URI: the common case (a peer echoing a URI it was given)
        // costs one comparison of bytes.
        if self.as_bytes() == other.as_bytes() {
            return true;
        }
        self.scheme == other.scheme
            && self.port == other.port
            && self.session_id.as_ref().map(|r| self.slice(r))
                == other.session_id.as_ref().map(|r| other.slice(r))
            && self
                .slice(&self.transport)
                .eq_ignore_ascii_case(other.slice(&other.transport))
            && self.same_host(other)
    }

    fn same_host(&self, other: &MsrpUri) -> bool {
        match (self.host_kind, other.host_kind) {
            (Host::Name, Host::Name) => {
                let a = self.slice(&self.host);
                let b = other.slice(&other.host);
                if a.eq_ignore_ascii_case(b) {
                    return true;
                }
                let mut da = PctDecode { s: a, i: 0 };
                let mut db = PctDecode { s: b, i: 0 };
                loop {
                    match (da.next(), db.next()) {
                        (None, None) => return true,
                        (Some(x), Some(y)) if x.eq_ignore_ascii_case(&y) => {}
                        _ => return false,
                    }
                }
            }
            (a, b) => a == b,
        }
    }

    /// The host equals `name` (case-insensitive, as §6.1 compares names).
    pub fn host_is(&self, name: &str) -> bool {
        self.host_unbracketed().eq_ignore_ascii_case(name)
    }
}

struct PctDecode<'a> {
    s: &'a [u8],
    i: usize,
}

impl Iterator for PctDecode<'_> {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        let b = *self.s.get(self.i)?;
        if b == b'%' && self.i + 2 < self.s.len() {
            let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            if let (Some(h), Some(l)) = (hex(self.s[self.i + 1]), hex(self.s[self.i + 2])) {
                self.i += 3;
                return Some(h << 4 | l);
            }
        }
        self.i += 1;
        Some(b)
    }
}

fn parse_port(p: &[u8]) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return Err(UriError::Port);
    }
    let n = p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    match u16::try_from(n) {
        Ok(0) | Err(_) => Err(UriError::Port),
        Ok(port) => Ok(port),
    }
}

impl PartialEq for MsrpUri {
    /// RFC 4975 §6.1 equivalence (see [`MsrpUri::equivalent`]).
    fn eq(&self, other: &Self) -> bool {
        self.equivalent(other)
    }
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsrpUri({})", self.as_str())
    }
}

impl FromStr for MsrpUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MsrpUri::parse(Bytes::copy_from_slice(s.as_bytes()))
    }
}

/// Parse a path header value: `MSRP-URI *( SP MSRP-URI )` (RFC 4975 §9), tolerating extra
/// spaces or tabs between URIs (checklist G6). At most `max` URIs are accepted.
/// The URIs of a path header. Almost every path has one or two: held inline, so that
/// parsing a head does not allocate for its paths.
pub type Path = smallvec::SmallVec<[MsrpUri; 2]>;

pub fn parse_path(value: &Bytes, max: usize) -> Result<Path, PathError> {
    let mut out = Path::new();
    parse_path_into(value, max, &mut out)?;
    Ok(out)
}

/// [`parse_path`] into a path already in place (a head's field), so that the URIs are not
/// moved again on the way there. `out` must be empty.
pub(crate) fn parse_path_into(value: &Bytes, max: usize, out: &mut Path) -> Result<(), PathError> {
    let bytes: &[u8] = value;
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        i = memchr::memchr2(b' ', b'\t', &bytes[i..]).map_or(bytes.len(), |p| i + p);
        if out.len() == max {
            return Err(PathError::TooMany);
        }
        out.push(MsrpUri::parse(value.slice(start..i)).map_err(PathError::Uri)?);
    }
    if out.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(())
}

/// Why a path header (To-Path, From-Path, Use-Path) did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no URI")]
    Empty,
    #[error("more URIs than the configured limit")]
    TooMany,
    #[error(transparent)]
    Uri(UriError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> MsrpUri {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn rfc4975_s6_examples_parse_and_format_back() {
        for s in [
            "msrp://atlanta.example.com:7654/jshA7weztas;tcp",
            "msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp",
            "msrps://alice@intra.example.com;tcp",
            "msrps://alice@a.example.com:443;ws",
            "msrps://df7jal23ls0d.invalid:2855/98cjs;ws",
            "msrp://[2001:db8::1]:2855/abc;tcp",
            "msrp://192.0.2.1:2855/s/with/slashes+and=;tcp;foo=bar;baz",
        ] {
            assert_eq!(u(s).to_string(), s);
        }
    }

    #[test]
    fn rfc4975_s6_components() {
        let x = u("msrps://alice@a.example.com:443/se_ss-ion.1~;WS;p=1;q");
        assert_eq!(x.scheme(), Scheme::Msrps);
        assert_eq!(x.userinfo(), Some("alice"));
        assert_eq!(x.host(), "a.example.com");
        assert_eq!(x.port(), Some(443));
        assert_eq!(x.session_id(), Some("se_ss-ion.1~"));
        assert_eq!(x.transport(), "WS");
        assert_eq!(x.params(), Some("p=1;q"));
        let v6 = u("msrp://[::1]:9/x;tcp");
        assert_eq!(v6.host_unbracketed(), "::1");
        assert_eq!(v6.ip(), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(
            u("msrp://127.0.0.1:9/x;tcp").host_kind(),
            Host::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(u("msrp://h;tcp").session_id(), None);
        assert_eq!(u("msrp://h;tcp").port(), None);
    }

    #[test]
    fn rfc4975_s9_rejects_malformed() {
        for (s, e) in [
            ("http://a.example.com:1/x;tcp", UriError::Scheme),
            ("msrp://a.example.com:1/x", UriError::Transport),
            ("msrp://a.example.com:1/x;", UriError::Transport),
            ("msrp://a.example.com:1/x;t-p", UriError::Transport),
            ("msrp://:1/x;tcp", UriError::Host),
            ("msrp://a.example.com:99999/x;tcp", UriError::Port),
            ("msrp://a.example.com:0/x;tcp", UriError::Port),
            ("msrp://a.example.com:/x;tcp", UriError::Port),
            ("msrp://a.example.com:1/;tcp", UriError::SessionId),
            ("msrp://a.example.com:1/a b;tcp", UriError::SessionId),
            ("msrp://a.example.com:1/a%20b;tcp", UriError::SessionId),
            ("msrp://a.example.com:1/x;tcp;=", UriError::Parameter),
            ("msrp://[::1:1/x;tcp", UriError::Host),
            ("msrp://[zz]:1/x;tcp", UriError::Host),
            ("msrp://a%zz.com:1/x;tcp", UriError::Host),
            ("msrp://;tcp", UriError::Authority),
        ] {
            assert_eq!(s.parse::<MsrpUri>().err(), Some(e), "{s}");
        }
    }

    #[test]
    fn rfc4975_s6_1_equivalence() {
        let issued = u("msrps://relay.example.com:2855/TOKENabc;tcp");
        // Scheme and host case-insensitive, transport case-insensitive, userinfo ignored.
        assert_eq!(issued, u("MSRPS://RELAY.example.com:2855/TOKENabc;TCP"));
        assert_eq!(issued, u("msrps://bob@relay.example.com:2855/TOKENabc;tcp"));
        // Percent-encoding in the host is normalised.
        assert_eq!(issued, u("msrps://relay.ex%61mple.com:2855/TOKENabc;tcp"));
        // Parameters other than transport do not identify a session.
        assert_eq!(issued, u("msrps://relay.example.com:2855/TOKENabc;tcp;x=y"));
        // Explicit port must be on both and equal.
        assert_ne!(issued, u("msrps://relay.example.com/TOKENabc;tcp"));
        assert_ne!(issued, u("msrps://relay.example.com:2856/TOKENabc;tcp"));
        // Session-id case-sensitive; present on both or neither.
        assert_ne!(issued, u("msrps://relay.example.com:2855/tokenabc;tcp"));
        assert_ne!(issued, u("msrps://relay.example.com:2855;tcp"));
        // Different scheme or transport never match.
        assert_ne!(issued, u("msrp://relay.example.com:2855/TOKENabc;tcp"));
        assert_ne!(issued, u("msrps://relay.example.com:2855/TOKENabc;ws"));
        // Addresses compare by value.
        assert_eq!(
            u("msrp://[2001:db8::1]:1/a;tcp"),
            u("msrp://[2001:DB8:0::1]:1/a;tcp")
        );
        assert_ne!(u("msrp://127.0.0.1:1/a;tcp"), u("msrp://localhost:1/a;tcp"));
    }

    #[test]
    fn path_lists_tolerate_extra_spaces() {
        let v =
            Bytes::from_static(b" msrp://a.example.com:1/x;tcp \t msrp://b.example.com:2/y;tcp  ");
        let p = parse_path(&v, 16).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].as_str(), "msrp://b.example.com:2/y;tcp");
        assert_eq!(parse_path(&v, 1).err(), Some(PathError::TooMany));
        assert_eq!(
            parse_path(&Bytes::from_static(b"  "), 4).err(),
            Some(PathError::Empty)
        );
    }

    /// The lookup table says exactly what the grammar's character classes say.
    #[test]
    fn rfc3986_rfc4975_character_classes() {
        for b in 0..=255u8 {
            let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            let sub_delim = b"!$&'()*+,;=".contains(&b);
            let token = matches!(b, 0x21 | 0x23..=0x27 | 0x2A | 0x2B | 0x2D | 0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E);
            assert_eq!(is_class(b, UNRESERVED), unreserved, "{b:#x}");
            assert_eq!(is_class(b, SUB_DELIM), sub_delim, "{b:#x}");
            assert_eq!(is_class(b, SID_EXTRA), b"+=/".contains(&b), "{b:#x}");
            assert_eq!(is_token_char(b), token, "{b:#x}");
        }
    }

    /// The fast path for the common form and the full parser agree, at every edge of the
    /// common form (the property test and the `uri` fuzz target compare them at random).
    #[test]
    fn fast_path_matches_reference_on_edge_cases() {
        let cases = [
            "msrp://a.example.com:2855/abc;tcp",
            "msrps://a.example.com/abc;ws",
            "msrp://a.example.com;tcp",
            "msrp://a.example.com:1;tcp",
            "msrp://a:65535/s/with/slash+and=;tcp",
            "msrp://a:00080/x;tcp",
            "msrp://a:0/x;tcp",
            "msrp://a:65536/x;tcp",
            "msrp://a:123456/x;tcp",
            "msrp://a:000080/x;tcp",
            "msrp://a:/x;tcp",
            "msrp://a:1:2/x;tcp",
            "msrp://a:1x/x;tcp",
            "msrp://192.0.2.1:1/x;tcp",
            "msrp://1.2.3:1/x;tcp",
            "msrp://999.1.1.1:1/x;tcp",
            "msrp://1a.2.3.4:1/x;tcp",
            "msrp://127.0.0.1:2855/abc;tcp",
            "msrp://0.0.0.0/x;tcp",
            "msrp://255.255.255.255;tcp",
            "msrp://256.1.1.1/x;tcp",
            "msrp://01.2.3.4/x;tcp",
            "msrp://1.2.3.4.5/x;tcp",
            "msrp://1.2.3.4./x;tcp",
            "msrp://.1.2.3.4/x;tcp",
            "msrp://1..3.4/x;tcp",
            "msrp://1.2.3.0004/x;tcp",
            "msrp://...../x;tcp",
            "msrp://a/;tcp",
            "msrp://a/x",
            "msrp://a/x;",
            "msrp://a/x;tcp;p=1",
            "msrp://a/x;tc-p",
            "msrp://a/x%41;tcp",
            "msrp://a/x y;tcp",
            "msrp://u@a/x;tcp",
            "msrp://a_b/x;tcp",
            "msrp://a%41/x;tcp",
            "msrp://[::1]:1/x;tcp",
            "MSRP://a/x;tcp",
            "msrp://;tcp",
            "msrp:///x;tcp",
            "msrp://a",
            "msrp://a:",
            "msrp://a:1",
            "msrp://a/",
            "msrp://",
            "msrps:/",
        ];
        for c in cases {
            let fast = MsrpUri::parse(Bytes::from_static(c.as_bytes()));
            let full = MsrpUri::parse_reference(Bytes::from_static(c.as_bytes()));
            match (&fast, &full) {
                (Err(a), Err(b)) => assert_eq!(a, b, "{c}"),
                (Ok(a), Ok(b)) => {
                    assert_eq!(
                        (a.scheme(), a.userinfo(), a.host(), a.host_kind(), a.port()),
                        (b.scheme(), b.userinfo(), b.host(), b.host_kind(), b.port()),
                        "{c}"
                    );
                    assert_eq!(
                        (a.session_id(), a.transport(), a.params()),
                        (b.session_id(), b.transport(), b.params()),
                        "{c}"
                    );
                }
                _ => panic!("{c}: {fast:?} vs {full:?}"),
            }
        }
        // The fast path does take the common form.
        assert!(MsrpUri::parse_common(b"msrp://a.example.com:2855/abc;tcp").is_some());
        assert!(MsrpUri::parse_common(b"msrp://a.example.com:0/abc;tcp").is_none());
        assert!(MsrpUri::parse_common(b"msrp://192.0.2.1:2855/abc;tcp").is_some());
    }

    #[test]
    fn build_round_trips() {
        let x = MsrpUri::build(
            Scheme::Msrps,
            "relay.example.com",
            Some(2855),
            Some("abc"),
            "tcp",
        )
        .unwrap();
        assert_eq!(x.as_str(), "msrps://relay.example.com:2855/abc;tcp");
        let y = MsrpUri::build(Scheme::Msrp, "::1", Some(9), None, "tcp").unwrap();
        assert_eq!(y.as_str(), "msrp://[::1]:9;tcp");
    }
}
