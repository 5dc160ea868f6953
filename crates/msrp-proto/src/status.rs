//! Status codes and reason phrases (RFC 4975 §10, RFC 4976 §10, IANA MSRP status codes).

/// A status code with the reason phrase a relay sends with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u16);

impl Status {
    /// Chunk received / AUTH accepted (RFC 4975 §10.1, RFC 4976 §6.3).
    pub const OK: Status = Status(200);
    /// Unintelligible request: syntax error with readable paths (RFC 4975 §10.2).
    pub const BAD_REQUEST: Status = Status(400);
    /// AUTH without credentials, with bad ones or a stale nonce (RFC 4976 §10.3).
    pub const UNAUTHORIZED: Status = Status(401);
    /// Action not allowed (RFC 4975 §10.3, RFC 4976 §6.3).
    pub const FORBIDDEN: Status = Status(403);
    /// Only in REPORT Status: the next hop did not answer in time (RFC 4975 §10.4).
    pub const TIMEOUT: Status = Status(408);
    /// Stop sending this message (RFC 4975 §10.5).
    pub const TOO_LARGE: Status = Status(413);
    /// Media type not understood (RFC 4975 §10.6).
    pub const UNSUPPORTED_MEDIA: Status = Status(415);
    /// Parameter (Expires) out of bounds (RFC 4975 §10.7, RFC 4976 §4.6).
    pub const OUT_OF_BOUNDS: Status = Status(423);
    /// Session does not exist (RFC 4975 §10.8).
    pub const NO_SESSION: Status = Status(481);
    /// Request method not understood (RFC 4975 §10.9).
    pub const NOT_IMPLEMENTED: Status = Status(501);
    /// Session already in use (RFC 4975 §10.10).
    pub const SESSION_IN_USE: Status = Status(506);

    pub fn code(self) -> u16 {
        self.0
    }

    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// The phrase to send with this code: the IANA registry's names, except 200 and 401
    /// where the RFC examples' `OK` and `Unauthorized` are what peers expect to read.
    pub fn reason(self) -> &'static str {
        match self.0 {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            408 => "Request Timeout",
            413 => "Message Too Large",
            415 => "Unsupported Media Type",
            423 => "Interval Out-of-Bounds",
            481 => "Session Does Not Exist",
            501 => "Not Implemented",
            506 => "Session Already In Use",
            _ => "Unknown",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}
