//! Frames the relay writes itself: transaction responses (RFC 4975 §7.2) and failure REPORTs
//! (RFC 4975 §7.1.2, RFC 4976 §6.4.1).

use bytes::BytesMut;
use msrp_proto::encoder::{write_end_line, HeadWriter, HEAD_RESERVE};
use msrp_proto::{ByteRange, Flag, HeaderName, Method, MsrpUri, Status, TransactionId};

use super::outbox::Frame;
use super::transaction::{new_tid, ReportTarget};

/// A response built by the relay (RFC 4975 §7.2): same tid as the request, To-Path the first
/// From-Path URI for SEND or the whole From-Path otherwise, From-Path the relay's URI as the
/// request addressed it, flag `$`. `extra` adds headers.
pub fn response(
    tid: &TransactionId,
    status: Status,
    method: Option<&Method>,
    from_path: &[MsrpUri],
    ours: &MsrpUri,
    extra: impl FnOnce(&mut HeadWriter),
) -> Frame {
    let mut buf = BytesMut::with_capacity(HEAD_RESERVE);
    let to: &[MsrpUri] = match method {
        Some(Method::Send) => &from_path[..from_path.len().min(1)],
        _ => from_path,
    };
    let mut w = HeadWriter::response(&mut buf, tid, status.code(), status.reason().as_bytes());
    w.path(HeaderName::ToPath, to)
        .path(HeaderName::FromPath, [ours]);
    extra(&mut w);
    w.finish(false);
    write_end_line(&mut buf, tid, Flag::Complete, false);
    Frame::whole(buf.freeze())
}

/// A failure REPORT about `range` of a forwarded SEND (RFC 4975 §7.1.2; checklist item 72):
/// To-Path the From-Path as received, From-Path our URI, the request's Message-ID, the range,
/// `Status: 000 <code>`, a fresh tid, no report headers and no body.
pub fn failure_report(
    target: &ReportTarget,
    range: ByteRange,
    status: Status,
    comment: &str,
) -> Option<Frame> {
    // A REPORT MUST carry a Message-ID (RFC 4975 §7.1.2); a SEND without one cannot be
    // reported on.
    let message_id = target.message_id()?;
    let tid = new_tid();
    let mut buf = BytesMut::with_capacity(HEAD_RESERVE);
    HeadWriter::request(&mut buf, &tid, &Method::Report)
        .path(HeaderName::ToPath, target.to_path())
        .path(HeaderName::FromPath, [target.from()])
        .header("Message-ID", message_id)
        .byte_range(range)
        .status(status.code(), comment)
        .finish(false);
    write_end_line(&mut buf, &tid, Flag::Complete, false);
    Some(Frame::whole(buf.freeze()))
}
