//! The write side of a connection: whole frames, in order, from any number of producers.
//!
//! Frames wait in two bounded queues, control (responses, REPORTs, other small requests)
//! before data (SEND pieces), so that responses and REPORTs get in between the pieces of a
//! long transfer (RFC 4975 §7.1.1). One party at a time holds the socket (`writing`): the
//! connection's writer task, or, on plain TCP, a producer that found the queues empty and
//! writes its frames directly with a non-blocking vectored write. The direct write saves two
//! task hand-offs per relayed message (reader to writer, and a wake of a parked thread), which
//! is most of the cost of a small message; whatever the socket does not take at once goes to
//! the front of the line for the writer task, so bytes never interleave and a producer never
//! waits on another connection's socket.
//!
//! Writers never wait on anything but their own socket, so two readers pushing into each
//! other's queues cannot deadlock; a full queue makes the producing reader wait (up to the
//! stall limit), and TCP pushes back on its sender.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes};
use smallvec::SmallVec;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsStream;

use super::connection::ConnHandle;

/// A whole MSRP message ready for the wire: written as `head, body..., end` in one vectored
/// write, so a body is never copied.
pub struct Frame {
    pub head: Bytes,
    pub body: Vec<Bytes>,
    pub end: Bytes,
    /// The transaction whose timer starts when this frame's last byte is written.
    pub track: Option<msrp_proto::TransactionId>,
}

impl Frame {
    /// A frame already encoded in one buffer.
    pub fn whole(bytes: Bytes) -> Frame {
        Frame {
            head: bytes,
            body: Vec::new(),
            end: Bytes::new(),
            track: None,
        }
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.body.iter().map(Bytes::len).sum::<usize>() + self.end.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop the first `n` bytes (they are on the wire).
    fn advance(&mut self, mut n: usize) {
        let h = n.min(self.head.len());
        self.head.advance(h);
        n -= h;
        while n > 0 && !self.body.is_empty() {
            if n >= self.body[0].len() {
                n -= self.body.remove(0).len();
            } else {
                self.body[0].advance(n);
                n = 0;
            }
        }
        self.end.advance(n.min(self.end.len()));
    }

    fn slices<'a>(&'a self, out: &mut impl Extend<IoSlice<'a>>) {
        out.extend(
            std::iter::once(&self.head)
                .chain(&self.body)
                .chain(std::iter::once(&self.end))
                .filter(|part| !part.is_empty())
                .map(|part| IoSlice::new(part)),
        );
    }
}

/// Which queue a frame waits in when it cannot be written at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Responses, REPORTs and other small requests: served first.
    Ctrl,
    /// SEND pieces.
    Data,
}

struct State {
    /// Frames whose first bytes are already on the wire (a direct write the socket did not
    /// take whole): they go out before anything else.
    started: VecDeque<Frame>,
    ctrl: VecDeque<Frame>,
    data: VecDeque<Frame>,
    /// Someone holds the socket: the writer task, or a producer writing directly.
    writing: bool,
    /// The writer task still takes frames (false once it has drained and left).
    open: bool,
    /// Plain TCP: the socket, for direct writes (TLS state cannot be shared that way).
    direct: Option<Arc<OwnedWriteHalf>>,
    /// Producers waiting for room in a full queue.
    waiting_for_room: usize,
}

impl State {
    fn is_empty(&self) -> bool {
        self.started.is_empty() && self.ctrl.is_empty() && self.data.is_empty()
    }
}

/// Frames queued toward a connection's socket, and who may write them.
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer task: frames queued while nobody held the socket.
    wake: Notify,
    /// Wakes producers waiting for room.
    room: Notify,
    ctrl_cap: usize,
    data_cap: usize,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing here panics while holding the lock; if something did, losing the connection
    // is the worst outcome, so keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Outbox {
    /// `direct`: the socket, when producers may write to it themselves (plain TCP).
    pub fn new(ctrl_cap: usize, data_cap: usize, direct: Option<Arc<OwnedWriteHalf>>) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                started: VecDeque::new(),
                ctrl: VecDeque::new(),
                data: VecDeque::new(),
                writing: false,
                open: true,
                direct,
                waiting_for_room: 0,
            }),
            wake: Notify::new(),
            room: Notify::new(),
            ctrl_cap: ctrl_cap.max(1),
            data_cap: data_cap.max(1),
        }
    }

    fn cap(&self, class: Class) -> usize {
        match class {
            Class::Ctrl => self.ctrl_cap,
            Class::Data => self.data_cap,
        }
    }
}

/// Frames made while acting on one read, grouped by connection and delivered together once
/// the read is processed: one write (or one queueing) per connection per read rather than
/// one per message, which is what batching the writer task's writes did before direct writes.
#[derive(Default)]
pub struct Staged {
    by_conn: Vec<(Arc<ConnHandle>, Batch)>,
}

/// Frames for one connection, in order, each with the queue it waits in if it has to.
pub type Batch = Vec<(Class, Frame)>;

impl Staged {
    pub fn push(&mut self, conn: &Arc<ConnHandle>, class: Class, frame: Frame) {
        match self.by_conn.iter_mut().find(|(c, _)| Arc::ptr_eq(c, conn)) {
            Some((_, frames)) => frames.push((class, frame)),
            None => self.by_conn.push((conn.clone(), vec![(class, frame)])),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }

    /// Deliver everything, in order per connection. Returns what could not be delivered
    /// because its connection is gone.
    pub async fn deliver(&mut self) -> Vec<(Arc<ConnHandle>, Vec<Frame>)> {
        let mut lost = Vec::new();
        // Drained, not taken: the list keeps its room for the next read.
        for (conn, frames) in self.by_conn.drain(..) {
            if let Err(frames) = deliver(&conn, frames).await {
                lost.push((conn, frames));
            }
        }
        lost
    }
}

/// Hand `frames` (in order) to `conn`'s socket: written at once when nobody else holds the
/// socket and nothing is queued before them, queued for the writer task otherwise. On error
/// (the connection is gone), returns the frames that did not go out whole.
pub async fn deliver(conn: &ConnHandle, frames: Batch) -> Result<(), Vec<Frame>> {
    let unsent = |frames: Batch| frames.into_iter().map(|(_, f)| f).collect();
    if conn.is_closed() {
        return Err(unsent(frames));
    }
    let out = &conn.out;
    let socket = {
        let mut st = lock(&out.state);
        if !st.open {
            return Err(unsent(frames));
        }
        match &st.direct {
            Some(s) if !st.writing && st.is_empty() => {
                let s = s.clone();
                st.writing = true;
                Some(s)
            }
            _ => None,
        }
    };
    let mut rest = frames;
    if let Some(socket) = socket {
        let result = write_now(&socket, rest.iter().map(|(_, f)| f));
        drop(socket);
        let (whole, part) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(peer = %conn.peer, conn = conn.id, error = %e, "write failed");
                release(conn, None);
                conn.close();
                return Err(unsent(rest));
            }
        };
        if whole > 0 {
            conn.touch();
            written(conn, rest[..whole].iter().map(|(_, f)| f));
            rest.drain(..whole);
        }
        // A frame the socket took part of stays first in line.
        let started = if part > 0 {
            let (_, mut f) = rest.remove(0);
            f.advance(part);
            Some(f)
        } else {
            None
        };
        release(conn, started);
    }
    if rest.is_empty() {
        return Ok(());
    }
    // Boxed: queueing may wait for room, and its future is large. Most deliveries are direct
    // writes that never get here, and every connection's reader task would otherwise carry
    // room for it while idle.
    Box::pin(queue_all(conn, rest)).await
}

/// Queue `frames` in order for `conn`'s writer task (see [`push`]).
async fn queue_all(conn: &ConnHandle, frames: Batch) -> Result<(), Vec<Frame>> {
    let mut rest = frames.into_iter();
    while let Some((class, frame)) = rest.next() {
        if let Err(frame) = push(conn, class, frame).await {
            let mut lost = vec![frame];
            lost.extend(rest.map(|(_, f)| f));
            return Err(lost);
        }
    }
    Ok(())
}

/// Give up the socket after a direct write; the writer task takes over if anything waits.
fn release(conn: &ConnHandle, started: Option<Frame>) {
    let mut st = lock(&conn.out.state);
    if let Some(f) = started {
        conn.queued.inc();
        st.started.push_back(f);
    }
    st.writing = false;
    let wake = !st.is_empty() || conn.is_closed();
    drop(st);
    if wake {
        conn.out.wake.notify_one();
    }
}

/// Queue one frame, waiting while its queue is full: not past the connection closing (a hard
/// shutdown, or the connection failing) nor past the stall limit (the transaction timeout: a
/// peer that reads nothing for that long could not answer a request in time anyway).
async fn push(conn: &ConnHandle, class: Class, frame: Frame) -> Result<(), Frame> {
    let out = &conn.out;
    let mut deadline: Option<Instant> = None;
    loop {
        let mut room = pin!(out.room.notified());
        {
            let mut st = lock(&out.state);
            if !st.open || conn.is_closed() {
                return Err(frame);
            }
            let cap = out.cap(class);
            let queue = match class {
                Class::Ctrl => &mut st.ctrl,
                Class::Data => &mut st.data,
            };
            if queue.len() < cap {
                queue.push_back(frame);
                let wake = !st.writing;
                drop(st);
                conn.queued.inc();
                if wake {
                    out.wake.notify_one();
                }
                return Ok(());
            }
            // Registered before the lock is released: room made after this is not missed.
            room.as_mut().enable();
            st.waiting_for_room += 1;
        }
        let until = *deadline.get_or_insert_with(|| Instant::now() + conn.txn_timeout);
        let waited = tokio::select! {
            _ = &mut room => Ok(()),
            _ = conn.closed().cancelled() => Err(()),
            _ = tokio::time::sleep_until(until) => {
                tracing::warn!(peer = %conn.peer, conn = conn.id, "write queue full for {:?}; closing the stuck connection", conn.txn_timeout);
                conn.close();
                Err(())
            }
        };
        lock(&out.state).waiting_for_room -= 1;
        if waited.is_err() {
            return Err(frame);
        }
    }
}

/// The timers of the requests just written start now (RFC 4976 §6.4.1).
fn written<'a>(conn: &ConnHandle, frames: impl Iterator<Item = &'a Frame>) {
    let mut tracked = frames.filter_map(|f| f.track.as_ref()).peekable();
    if tracked.peek().is_none() {
        return;
    }
    let deadline = std::time::Instant::now() + conn.txn_timeout;
    let mut wake = false;
    {
        let mut txns = conn.transactions();
        for tid in tracked {
            wake |= txns.written(tid, deadline);
        }
    }
    if wake {
        conn.txn_wake.notify_one();
    }
}

/// Write what the socket takes without waiting. Returns how many frames went out whole and
/// how many bytes of the next one.
fn write_now<'a>(
    socket: &OwnedWriteHalf,
    frames: impl Iterator<Item = &'a Frame> + Clone,
) -> io::Result<(usize, usize)> {
    // On the stack for the usual few frames: a direct write happens for every read.
    let mut slices: SmallVec<[IoSlice<'_>; 16]> = SmallVec::new();
    for f in frames.clone() {
        f.slices(&mut slices);
    }
    let mut rest = &mut slices[..];
    let mut sent = 0;
    while !rest.is_empty() {
        match socket.try_write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                sent += n;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut whole = 0;
    for f in frames {
        let len = f.len();
        if sent < len {
            break;
        }
        sent -= len;
        whole += 1;
    }
    Ok((whole, sent))
}

/// The socket as the writer task holds it.
pub enum WriteHalf {
    Tcp(Arc<OwnedWriteHalf>),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

impl WriteHalf {
    /// Write every byte of `batch`, each wait for the socket bounded by `stall`.
    async fn write_all(&mut self, batch: &[Frame], stall: Duration) -> io::Result<()> {
        let mut slices = Vec::with_capacity(batch.len() * 3);
        for f in batch {
            f.slices(&mut slices);
        }
        let mut rest = &mut slices[..];
        let stalled = || io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading");
        while !rest.is_empty() {
            let n = match self {
                WriteHalf::Tcp(s) => match s.try_write_vectored(rest) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        tokio::time::timeout(stall, s.writable())
                            .await
                            .map_err(|_| stalled())??;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                },
                WriteHalf::Tls(w) => tokio::time::timeout(stall, w.write_vectored(rest))
                    .await
                    .map_err(|_| stalled())??,
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            WriteHalf::Tcp(_) => Ok(()),
            WriteHalf::Tls(w) => w.flush().await,
        }
    }

    async fn shutdown(self) {
        match self {
            // The last reference going sends the FIN.
            WriteHalf::Tcp(s) => drop(s),
            WriteHalf::Tls(mut w) => {
                let _ = w.shutdown().await;
            }
        }
    }
}

/// Frames written per vectored write at most.
const MAX_BATCH: usize = 64;
/// How long a closing connection may spend writing what was already queued.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Take the socket and up to `max` frames in wire order, if nobody holds the socket and
/// something waits.
fn take_batch(conn: &ConnHandle, max: usize, batch: &mut Vec<Frame>) -> bool {
    let mut st = lock(&conn.out.state);
    if st.writing || st.is_empty() {
        return false;
    }
    st.writing = true;
    while batch.len() < max {
        let Some(f) = st
            .started
            .pop_front()
            .or_else(|| st.ctrl.pop_front())
            .or_else(|| st.data.pop_front())
        else {
            break;
        };
        batch.push(f);
    }
    let room = st.waiting_for_room > 0;
    drop(st);
    conn.queued.dec_by(batch.len() as i64);
    if room {
        conn.out.room.notify_waiters();
    }
    true
}

/// The connection's writer task: writes whatever producers could not write themselves.
pub async fn write_loop(conn: Arc<ConnHandle>, mut wr: WriteHalf) {
    // Grows with the traffic; an idle connection never allocates it.
    let mut batch: Vec<Frame> = Vec::new();
    let mut closed = pin!(conn.closed().cancelled());
    let mut hard_stop = pin!(conn.hard_stop().cancelled());
    loop {
        let mut wake = pin!(conn.out.wake.notified());
        wake.as_mut().enable();
        if !take_batch(&conn, MAX_BATCH, &mut batch) {
            tokio::select! {
                biased;
                _ = &mut closed => break,
                _ = &mut wake => {}
            }
            continue;
        }
        // Whole frames only, except at a hard shutdown, which abandons a stuck write.
        let result = tokio::select! {
            r = wr.write_all(&batch, conn.txn_timeout) => r,
            _ = &mut hard_stop => {
                conn.close();
                close_outbox(&conn);
                return;
            }
        };
        if let Err(e) = result {
            // The socket is broken: nothing queued can go out, so no drain (which would wait
            // for the socket this task still holds); producers learn at once.
            tracing::debug!(peer = %conn.peer, conn = conn.id, error = %e, "write failed");
            conn.close();
            close_outbox(&conn);
            return;
        }
        conn.touch();
        written(&conn, batch.iter());
        batch.clear();
        let idle = {
            let mut st = lock(&conn.out.state);
            st.writing = false;
            st.is_empty()
        };
        if idle {
            if let Err(e) = wr.flush().await {
                tracing::debug!(peer = %conn.peer, conn = conn.id, error = %e, "flush failed");
                break;
            }
        }
    }
    conn.close();
    if conn.hard_stop().is_cancelled() {
        close_outbox(&conn);
        return;
    }
    // Whatever was queued before the close (a last response, a 403 before closing) still
    // goes out, within a bounded time; a producer in the middle of a direct write finishes
    // first (it never waits).
    let drain = async {
        loop {
            let mut wake = pin!(conn.out.wake.notified());
            wake.as_mut().enable();
            {
                let mut st = lock(&conn.out.state);
                if !st.writing {
                    st.writing = true;
                    st.open = false;
                    st.direct = None;
                    break;
                }
            }
            wake.await;
        }
        let mut rest: Vec<Frame> = Vec::new();
        {
            let mut st = lock(&conn.out.state);
            rest.extend(st.started.drain(..));
            rest.extend(st.ctrl.drain(..));
            rest.extend(st.data.drain(..));
        }
        conn.queued.dec_by(rest.len() as i64);
        for batch in rest.chunks(MAX_BATCH) {
            if wr.write_all(batch, DRAIN_TIMEOUT).await.is_err() {
                return;
            }
        }
        wr.flush().await.ok();
        wr.shutdown().await;
    };
    // Boxed: it runs once, at the end, and inline every idle connection's writer task would
    // carry room for it.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, Box::pin(drain)).await;
    close_outbox(&conn);
}

/// No more frames: producers get their frames back, the socket is released (on plain TCP the FIN goes
/// with the last reference), and what is still queued is dropped.
fn close_outbox(conn: &ConnHandle) {
    let mut st = lock(&conn.out.state);
    st.open = false;
    st.direct = None;
    let dropped = st.started.len() + st.ctrl.len() + st.data.len();
    st.started.clear();
    st.ctrl.clear();
    st.data.clear();
    let room = st.waiting_for_room > 0;
    drop(st);
    conn.queued.dec_by(dropped as i64);
    if room {
        conn.out.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame {
            head: Bytes::from_static(b"HEAD"),
            body: vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cde")],
            end: Bytes::from_static(b"END"),
            track: None,
        }
    }

    fn bytes(f: &Frame) -> Vec<u8> {
        let mut v = f.head.to_vec();
        for b in &f.body {
            v.extend_from_slice(b);
        }
        v.extend_from_slice(&f.end);
        v
    }

    #[test]
    fn advance_drops_exactly_the_written_prefix() {
        let all = bytes(&frame());
        for n in 0..=all.len() {
            let mut f = frame();
            f.advance(n);
            assert_eq!(bytes(&f), all[n..], "after {n} bytes");
            assert_eq!(f.len(), all.len() - n);
        }
    }
}
