//! Outbound transactions: the requests this relay sent on a connection and still expects a
//! response to (RFC 4976 §6.4.1, §6.4.3).
//!
//! Each connection owns one table, filled by whoever forwards onto the connection and read by
//! the connection's reader when responses arrive. The timer starts when the writer has put
//! the last byte of the request on the wire (§6.4.1), and since the timeout is the same for
//! every transaction, deadlines arrive in order: a FIFO is the whole timer wheel.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use msrp_proto::{ByteRange, FailureReport, Head, MsrpUri, TransactionId};
use rand::RngCore as _;

use super::connection::ConnHandle;

/// Where a failure REPORT about a forwarded SEND goes (RFC 4975 §7.1.2, RFC 4976 §6.4.1):
/// back on the connection the SEND came in on, addressed to its From-Path as received.
pub struct ReportTarget {
    pub conn: Arc<ConnHandle>,
    /// The SEND as received: shared with the forwarding state, so that remembering where a
    /// REPORT goes copies nothing.
    pub head: Arc<Head>,
    pub mode: FailureReport,
    /// Where in the received To-Path the URI of ours sits that the forwarded request carried
    /// first in From-Path (see `msrp_proto::encoder::forwarded_from`).
    pub ours: usize,
}

impl ReportTarget {
    /// The received From-Path: the REPORT's To-Path.
    pub fn to_path(&self) -> &[MsrpUri] {
        self.head.from_path()
    }

    /// The URI of ours the sender addressed: the REPORT's From-Path.
    pub fn from(&self) -> &MsrpUri {
        &self.head.to_path()[0]
    }

    pub fn message_id(&self) -> Option<&[u8]> {
        self.head.message_id()
    }
}

/// What the relay is waiting for.
pub enum Pending {
    /// A forwarded piece of a SEND; a non-200 or a timeout becomes a REPORT.
    Send {
        report: Arc<ReportTarget>,
        range: ByteRange,
    },
    /// A forwarded AUTH (tunnelled to another relay, RFC 4976 §5.1). Boxed: AUTHs are rare,
    /// and every entry of the table is as large as the largest variant.
    Auth(Box<AuthReturn>),
}

/// Where the response to a forwarded AUTH goes: back to `back` under the client's own
/// transaction id (RFC 4976 §6.4.3).
#[derive(Clone)]
pub struct AuthReturn {
    pub back: Arc<ConnHandle>,
    pub tid: TransactionId,
    /// The URI of ours the forwarded AUTH carried first in From-Path.
    pub ours: MsrpUri,
}

impl Pending {
    /// The URI of ours a response to this request must name first in To-Path.
    pub fn answered_at(&self) -> &MsrpUri {
        match self {
            Pending::Send { report, .. } => &report.head.to_path()[report.ours],
            Pending::Auth(auth) => &auth.ours,
        }
    }
}

/// What a response found among the outstanding transactions.
pub enum Answer {
    /// The transaction it answers, now complete.
    Matched(Pending),
    /// No transaction of ours has its tid.
    Unknown,
    /// The tid is outstanding, but the response's first To-Path URI is not the URI of ours
    /// the request was sent from: not our response (RFC 4976 §6.4.3). The transaction stays.
    Misaddressed,
}

struct Entry {
    pending: Pending,
    /// Set when the last byte was written; `None` while still queued.
    deadline: Option<Instant>,
    /// `Failure-Report: partial` never gets a 200, so silence is not a failure (§6.4.1).
    timeout_reports: bool,
}

#[derive(Default)]
pub struct Transactions {
    // Keys are our own random tids: a fast seeded hasher is enough (no SipHash needed).
    entries: HashMap<TransactionId, Entry, foldhash::fast::RandomState>,
    deadlines: VecDeque<(Instant, TransactionId)>,
    /// The instant the connection reader's timer is set for, if it is set. The reader keeps
    /// its timer even when the transaction it was set for completes (a stale timer firing
    /// costs one look at the queue), so that a writer only has to wake the reader when no
    /// timer is set at all: not once per message.
    timer: Option<Instant>,
}

impl Transactions {
    /// Remember a request written (or about to be) under `tid`; the caller chose `tid` so that
    /// it is not outstanding ([`Transactions::contains`], under the same lock).
    pub fn insert(&mut self, tid: TransactionId, pending: Pending, timeout_reports: bool) {
        self.entries.insert(
            tid,
            Entry {
                pending,
                deadline: None,
                timeout_reports,
            },
        );
    }

    pub fn contains(&self, tid: &TransactionId) -> bool {
        self.entries.contains_key(tid)
    }

    /// The request went out completely at `deadline - timeout`. Returns true when the reader
    /// must be woken to set its timer (it has none, or one past this deadline).
    pub fn written(&mut self, tid: &TransactionId, deadline: Instant) -> bool {
        match self.entries.get_mut(tid) {
            Some(e) => {
                e.deadline = Some(deadline);
                self.deadlines.push_back((deadline, *tid));
                // Deadlines arrive in order, unless a reload shortened the timeout.
                self.timer.is_none_or(|t| deadline < t)
            }
            None => false,
        }
    }

    /// For the reader: the instant to set its timer to, when it must be set (no timer, or
    /// one later than the earliest deadline).
    pub fn arm(&mut self) -> Option<Instant> {
        let next = self.next_deadline()?;
        if self.timer.is_some_and(|t| t <= next) {
            return None;
        }
        self.timer = Some(next);
        Some(next)
    }

    /// A response arrived, naming `to` first in its To-Path: the transaction is over if
    /// `to` is the URI of ours its request was sent from (RFC 4976 §6.4.3).
    pub fn answer(&mut self, tid: &TransactionId, to: &MsrpUri) -> Answer {
        match self.entries.entry(*tid) {
            Slot::Vacant(_) => Answer::Unknown,
            Slot::Occupied(e) if !e.get().pending.answered_at().equivalent(to) => {
                Answer::Misaddressed
            }
            Slot::Occupied(e) => Answer::Matched(e.remove().pending),
        }
    }

    /// The transaction is over without a response (its request was never written).
    pub fn complete(&mut self, tid: &TransactionId) -> Option<Pending> {
        self.entries.remove(tid).map(|e| e.pending)
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        // Skip deadlines whose transaction already completed.
        while let Some((at, tid)) = self.deadlines.front() {
            match self.entries.get(tid) {
                Some(e) if e.deadline == Some(*at) => return Some(*at),
                _ => {
                    self.deadlines.pop_front();
                }
            }
        }
        None
    }

    /// For the reader, when its timer fired: transactions whose timer has run out (RFC 4976
    /// §6.4.1: REPORT 408); entries that do not report timeouts are dropped silently.
    pub fn expired(&mut self, now: Instant) -> Vec<Pending> {
        self.timer = None;
        let mut out = Vec::new();
        while let Some(&(at, tid)) = self.deadlines.front() {
            if at > now {
                break;
            }
            self.deadlines.pop_front();
            let due = matches!(self.entries.get(&tid), Some(e) if e.deadline == Some(at));
            if due {
                if let Some(e) = self.entries.remove(&tid) {
                    if e.timeout_reports {
                        out.push(e.pending);
                    }
                }
            }
        }
        out
    }

    /// Everything still outstanding, for when the connection is gone (checklist item 76).
    pub fn drain(&mut self) -> Vec<Pending> {
        self.deadlines.clear();
        self.entries.drain().map(|(_, e)| e.pending).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

const TID_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A fresh transaction id: 12 alphanumerics, about 71 random bits (RFC 4975 §7.1 asks for
/// at least 64).
pub fn new_tid() -> TransactionId {
    let mut raw = [0u8; 12];
    rand::rng().fill_bytes(&mut raw);
    let mut tid = [0u8; 12];
    for (t, r) in tid.iter_mut().zip(raw) {
        // 256 % 62 leaves a slight bias; the id needs uniqueness, not uniformity.
        *t = TID_ALPHABET[usize::from(r) % 62];
    }
    // Alphanumerics of length 12 always form a valid ident.
    TransactionId::new(&tid).unwrap_or_else(|| unreachable!("12 alphanumerics are an ident"))
}

/// True when `-------<tid>` occurs in the body pieces, including across piece boundaries
/// (RFC 4976 §6.4: the new tid must not appear as an end-line inside the body).
pub fn tid_in_body<B: AsRef<[u8]>>(tid: &TransactionId, body: &[B]) -> bool {
    let tid = tid.as_bytes();
    let n = 7 + tid.len();
    if let [one] = body {
        return end_line_in(one.as_ref(), tid);
    }
    let mut tail: Vec<u8> = Vec::new();
    for piece in body {
        let piece = piece.as_ref();
        if end_line_in(piece, tid) {
            return true;
        }
        if !tail.is_empty() {
            let mut joint = std::mem::take(&mut tail);
            joint.extend_from_slice(&piece[..piece.len().min(n - 1)]);
            if end_line_in(&joint, tid) {
                return true;
            }
        }
        tail = piece[piece.len().saturating_sub(n - 1)..].to_vec();
    }
    false
}

/// A fresh tid (see [`new_tid`]) whose end-line does not occur in `body` (RFC 4976 §6.4,
/// RFC 4975 §7.1) and that `taken` does not refuse (a tid already in use on the connection).
pub fn fresh_tid<B: AsRef<[u8]>>(
    body: &[B],
    taken: impl Fn(&TransactionId) -> bool,
) -> TransactionId {
    loop {
        let tid = new_tid();
        if !tid_in_body(&tid, body) && !taken(&tid) {
            return tid;
        }
    }
}

/// [`fresh_tid`] for a body whose pieces came from the decoder: `may_hold_delimiter` is true
/// when any of them reported a `CRLF "-------"` ([`msrp_proto::Decoder::body_has_delimiter`]).
/// When none did and the body does not begin with `"-------"` (it follows the CRLF of the
/// head), no end-line of any tid can occur in it (RFC 4975 §7.1), so it is not searched again.
pub fn fresh_tid_for<B: AsRef<[u8]>>(
    body: &[B],
    may_hold_delimiter: bool,
    taken: impl Fn(&TransactionId) -> bool,
) -> TransactionId {
    if may_hold_delimiter || starts_with_dashes(body) {
        return fresh_tid(body, taken);
    }
    loop {
        let tid = new_tid();
        if !taken(&tid) {
            return tid;
        }
    }
}

/// The body begins with `"-------"`, or is a few dashes only (too short to tell cheaply).
fn starts_with_dashes<B: AsRef<[u8]>>(body: &[B]) -> bool {
    let mut need = 7;
    for piece in body {
        let piece = piece.as_ref();
        let n = piece.len().min(need);
        if piece[..n].iter().any(|&b| b != b'-') {
            return false;
        }
        need -= n;
        if need == 0 {
            return true;
        }
    }
    need < 7
}

/// `-------<tid>` in `hay`, with one searcher for the dashes built once per process.
fn end_line_in(hay: &[u8], tid: &[u8]) -> bool {
    static DASHES: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"-------"));
    let mut from = 0;
    while let Some(p) = DASHES.find(&hay[from..]) {
        if hay[from + p + 7..].starts_with(tid) {
            return true;
        }
        from += p + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn fresh_tids_are_idents_and_differ() {
        let a = new_tid();
        assert_eq!(a.as_bytes().len(), 12);
        assert_ne!(a, new_tid());
    }

    #[test]
    fn tid_found_across_piece_boundaries() {
        let tid = TransactionId::new(b"abcd1234").unwrap();
        let whole = Bytes::from_static(b"xx\r\n-------abcd1234$\r\n");
        assert!(tid_in_body(&tid, std::slice::from_ref(&whole)));
        for split in 1..whole.len() {
            let parts = [whole.slice(..split), whole.slice(split..)];
            assert!(tid_in_body(&tid, &parts), "split {split}");
        }
        assert!(!tid_in_body(&tid, &[Bytes::from_static(b"-------abcd123")]));
    }

    #[test]
    fn leading_dashes_across_pieces() {
        let p = |v: &[&'static [u8]]| v.iter().map(|b| Bytes::from_static(b)).collect::<Vec<_>>();
        assert!(starts_with_dashes(&p(&[b"-------x"])));
        assert!(starts_with_dashes(&p(&[b"--", b"", b"-----abc"])));
        assert!(starts_with_dashes(&p(&[b"---"])));
        assert!(!starts_with_dashes(&p(&[b"--", b"--x----"])));
        assert!(!starts_with_dashes(&p(&[b"x-------"])));
        assert!(!starts_with_dashes(&p(&[])));
    }
}
