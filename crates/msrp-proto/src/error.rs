//! Decoding errors.
//!
//! [`DecodeError`] tells the caller the one thing it must decide on (RFC 4975 §10.2): whether
//! the request's paths were readable, so that a 400 can be addressed to the sender and the
//! stream skips to the message's end-line (`Rejected`), or not, so the message is dropped and
//! the stream cannot be trusted any further (`Fatal`).

use crate::head::RejectContext;

/// The decoder limits, named so that an error says which one was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    StartLine,
    HeaderLine,
    HeadSize,
    HeaderCount,
    PathUris,
    TransactionId,
    MessageId,
    /// Bodies of requests other than SEND are at most 10240 octets (RFC 4975 §7.1).
    NonSendBody,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::StartLine => "start line length",
            Limit::HeaderLine => "header line length",
            Limit::HeadSize => "header block size",
            Limit::HeaderCount => "number of headers",
            Limit::PathUris => "number of path URIs",
            Limit::TransactionId => "transaction id length",
            Limit::MessageId => "Message-ID length",
            Limit::NonSendBody => "body size of a non-SEND request",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Headers this crate knows by name (RFC 4975 §9, RFC 4976 §7). Names compare
/// case-insensitively (G1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderName {
    ToPath,
    FromPath,
    MessageId,
    ByteRange,
    SuccessReport,
    FailureReport,
    Status,
    ContentType,
    Expires,
    MinExpires,
    MaxExpires,
    UsePath,
    WwwAuthenticate,
    Authorization,
    AuthenticationInfo,
    /// `Content-ID`, `Content-Description`, `Content-Disposition` and other `Content-*`
    /// MIME headers (RFC 4975 §9 `Other-Mime-header`).
    OtherMime,
    Other,
}

impl HeaderName {
    pub fn classify(name: &[u8]) -> HeaderName {
        use HeaderName::*;
        // Pick the one known name this could be by length (and a letter where two names have
        // the same length), then compare it case-insensitively. `| 0x20` lower-cases ASCII
        // letters; the final comparison decides, so other bytes cannot match wrongly.
        let lower = |i: usize| name.get(i).map_or(0, |b| b | 0x20);
        let known: Option<(&[u8], HeaderName)> = match name.len() {
            6 => Some((b"Status", Status)),
            7 if lower(0) == b't' => Some((b"To-Path", ToPath)),
            7 => Some((b"Expires", Expires)),
            8 => Some((b"Use-Path", UsePath)),
            9 => Some((b"From-Path", FromPath)),
            10 if lower(0) == b'm' => Some((b"Message-ID", MessageId)),
            10 => Some((b"Byte-Range", ByteRange)),
            11 if lower(1) == b'i' => Some((b"Min-Expires", MinExpires)),
            11 => Some((b"Max-Expires", MaxExpires)),
            12 => Some((b"Content-Type", ContentType)),
            13 => Some((b"Authorization", Authorization)),
            14 if lower(0) == b's' => Some((b"Success-Report", SuccessReport)),
            14 => Some((b"Failure-Report", FailureReport)),
            16 => Some((b"WWW-Authenticate", WwwAuthenticate)),
            19 => Some((b"Authentication-Info", AuthenticationInfo)),
            _ => None,
        };
        if let Some((k, v)) = known {
            // The canonical spelling is what peers send: one memcmp before the byte loop.
            if k == name || k.eq_ignore_ascii_case(name) {
                return v;
            }
        }
        if name.len() > 8 && name[..8].eq_ignore_ascii_case(b"Content-") {
            return OtherMime;
        }
        Other
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HeaderName::ToPath => "To-Path",
            HeaderName::FromPath => "From-Path",
            HeaderName::MessageId => "Message-ID",
            HeaderName::ByteRange => "Byte-Range",
            HeaderName::SuccessReport => "Success-Report",
            HeaderName::FailureReport => "Failure-Report",
            HeaderName::Status => "Status",
            HeaderName::ContentType => "Content-Type",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::MaxExpires => "Max-Expires",
            HeaderName::UsePath => "Use-Path",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::Authorization => "Authorization",
            HeaderName::AuthenticationInfo => "Authentication-Info",
            HeaderName::OtherMime => "Content-*",
            HeaderName::Other => "extension header",
        }
    }
}

impl std::fmt::Display for HeaderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule a message broke, with the RFC section in its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("{0} exceeds the configured limit")]
    LimitExceeded(Limit),
    #[error("start line is not `MSRP SP transact-id SP (method / status-code [SP comment])` (RFC 4975 §9)")]
    StartLine,
    #[error("transaction id is not 4 to 32 ident characters (RFC 4975 §9)")]
    TransactionId,
    #[error("method is not upper-case letters (RFC 4975 §9)")]
    Method,
    #[error(
        "{0} is missing or out of place: To-Path must be first and From-Path second (RFC 4975 §9)"
    )]
    MissingPath(HeaderName),
    #[error("header line is not `name: value` (RFC 4975 §9)")]
    HeaderLine,
    #[error("malformed {0} header (RFC 4975 §9, RFC 4976 §7)")]
    HeaderValue(HeaderName),
    #[error("{0} appears more than once")]
    DuplicateHeader(HeaderName),
    #[error("Content-Type must be the last header (RFC 4975 §7.1)")]
    ContentTypeNotLast,
    #[error("a body needs a Content-Type header (RFC 4975 §7.1)")]
    BodyWithoutContentType,
    #[error("Content-Type or MIME headers without a body (RFC 4975 §7.1)")]
    ContentTypeWithoutBody,
    #[error("a response has no body (RFC 4975 §7.2)")]
    ResponseWithBody,
    #[error("end-line does not carry the start line's transaction id (RFC 4975 §7.1)")]
    EndLine,
}

/// A decoding error. Either way the message is not delivered to the caller.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The start line and both paths were readable: the caller may answer a request with 400
    /// (RFC 4975 §10.2); the decoder skips to the message's end-line and can be used again.
    #[error("{violation} (message {} skipped)", context.tid)]
    Rejected {
        violation: Violation,
        context: Box<RejectContext>,
    },
    /// Nothing could be addressed: drop the message and close the connection (RFC 4975
    /// §10.2); the decoder will not produce anything more.
    #[error("{violation} (stream unreadable)")]
    Fatal { violation: Violation },
}

impl DecodeError {
    pub fn violation(&self) -> Violation {
        match self {
            DecodeError::Rejected { violation, .. } | DecodeError::Fatal { violation } => {
                *violation
            }
        }
    }
    /// The context for a 400, when the paths were readable.
    pub fn context(&self) -> Option<&RejectContext> {
        match self {
            DecodeError::Rejected { context, .. } => Some(context),
            DecodeError::Fatal { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName::{self, *};

    #[test]
    fn rfc4975_s9_header_names_classify_case_insensitively() {
        let all = [
            ToPath,
            FromPath,
            MessageId,
            ByteRange,
            SuccessReport,
            FailureReport,
            Status,
            ContentType,
            Expires,
            MinExpires,
            MaxExpires,
            UsePath,
            WwwAuthenticate,
            Authorization,
            AuthenticationInfo,
        ];
        for h in all {
            let name = h.as_str();
            assert_eq!(HeaderName::classify(name.as_bytes()), h, "{name}");
            assert_eq!(HeaderName::classify(name.to_lowercase().as_bytes()), h);
            assert_eq!(HeaderName::classify(name.to_uppercase().as_bytes()), h);
            // One byte changed anywhere is another header.
            for i in 0..name.len() {
                let mut b = name.as_bytes().to_vec();
                b[i] = b'_';
                assert_ne!(
                    HeaderName::classify(&b),
                    h,
                    "{}",
                    String::from_utf8_lossy(&b)
                );
            }
        }
        assert_eq!(HeaderName::classify(b"Content-ID"), OtherMime);
        assert_eq!(HeaderName::classify(b"content-disposition"), OtherMime);
        assert_eq!(HeaderName::classify(b"Content-"), Other);
        for other in [
            &b"X-Foo"[..],
            b"Mxx-Expires",
            b"To-Pat",
            b"",
            b"\xff\xff\xff\xff\xff\xff",
        ] {
            assert_eq!(HeaderName::classify(other), Other);
        }
    }
}
