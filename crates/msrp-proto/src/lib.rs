//! `msrp_proto`: the MSRP protocol with no I/O (RFC 4975, RFC 4976, RFC 7977 URIs).
//!
//! This crate knows nothing of sockets, tasks or clocks, like `quinn-proto`: the daemon feeds
//! it bytes and gets [`Event`]s back, asks it to write heads into buffers, and keeps time
//! itself. That keeps every protocol rule testable without a socket and the fuzz targets fast.
//!
//! - [`uri`]: `msrp:`/`msrps:` URIs and RFC 4975 §6.1 equivalence.
//! - [`head`]: the typed head (start line, paths, the headers a relay acts on, raw others).
//! - [`decoder`]: the streaming decoder (heads, zero-copy body pieces, end-lines) and limits.
//! - [`encoder`]: heads and end-lines into buffers; the rewrite for forwarding.
//! - [`digest`]: RFC 4976 §9.1 Digest (challenge, credentials, Authentication-Info).
//! - [`status`]: status codes and reason phrases.

pub mod decoder;
pub mod digest;
pub mod encoder;
pub mod error;
pub mod head;
pub mod status;
pub mod uri;

pub use decoder::{Decoder, Event, Flag, Limits};
pub use error::{DecodeError, HeaderName, Limit, Violation};
pub use head::{
    ByteRange, FailureReport, Head, Method, RejectContext, ReportStatus, StartLine, TransactionId,
};
pub use status::Status;
pub use uri::{MsrpUri, Path, Scheme};
