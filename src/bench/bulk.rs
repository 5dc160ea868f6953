//! `bulk`: one large message per pair, sent as chunks of `--chunk` bytes, streamed from a
//! deterministic pattern that is never held whole. The receiver hashes what it gets (XXH3)
//! and compares with the hash of the pattern, computed before the timed part.
//!
//! The pattern is 17 blocks of 64 KiB of pseudo-random bytes with no `-` in them (so no
//! end-line can occur inside a body); position `p` holds `block[(p / 64K) % 17][p % 64K]`.
//! The sender writes slices of these blocks without copying.

use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use bytes::{Bytes, BytesMut};
use msrp_proto::encoder::{write_end_line, HeadWriter};
use msrp_proto::{Event, FailureReport, Flag, Head, HeaderName, Method};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use xxhash_rust::xxh3::Xxh3;

use super::conn::{read_more, write_all_vectored, MsrpConn, ReadHalf, WriteHalf};
use super::util::{put_dec, put_hex16_bytes};
use super::PairSetup as Pair;

const BLOCK: usize = 64 * 1024;
const BLOCKS: usize = 17;
/// Body slices per vectored write.
const SLICES_PER_WRITE: usize = 32;

/// The deterministic body.
pub struct Pattern {
    blocks: Vec<Bytes>,
}

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        let mut x = seed | 1;
        let blocks = (0..BLOCKS)
            .map(|_| {
                let mut b = vec![0u8; BLOCK];
                for chunk in b.chunks_mut(8) {
                    // xorshift64*
                    x ^= x >> 12;
                    x ^= x << 25;
                    x ^= x >> 27;
                    let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
                    for (d, s) in chunk.iter_mut().zip(v) {
                        *d = if s == b'-' { b'+' } else { s };
                    }
                }
                Bytes::from(b)
            })
            .collect();
        Pattern { blocks }
    }

    /// Call `f` with the slices that make up bytes `[offset, offset + len)`.
    pub fn slices<'a>(&'a self, offset: u64, len: u64) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut pos = offset;
        let end = offset + len;
        std::iter::from_fn(move || {
            if pos >= end {
                return None;
            }
            let block = ((pos / BLOCK as u64) % BLOCKS as u64) as usize;
            let within = (pos % BLOCK as u64) as usize;
            let take = ((BLOCK - within) as u64).min(end - pos) as usize;
            pos += take as u64;
            Some(&self.blocks[block][within..within + take])
        })
    }

    /// XXH3-64 of the first `size` bytes.
    pub fn hash(&self, size: u64) -> u64 {
        let mut h = Xxh3::new();
        for s in self.slices(0, size) {
            h.update(s);
        }
        h.digest()
    }
}

#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Message size in bytes.
    pub size: u64,
    /// Chunk size in bytes (each chunk is one SEND with its Byte-Range).
    pub chunk: u64,
    pub failure_report: bool,
    /// How long the whole transfer may take.
    pub timeout: Duration,
    /// The run fails when nothing arrives for this long (a relay that drops frames).
    pub stall: Duration,
}

#[derive(Default)]
struct State {
    /// Body bytes received and 200s, over all pairs: the watchdog's sign of life.
    progress: AtomicU64,
    acks: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl State {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(what);
    }
}

/// What a receiver saw.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub bytes: u64,
    /// SENDs that carried the message (the relay may re-chunk).
    pub pieces: u64,
    pub hash: u64,
    pub complete: bool,
    /// When the last byte arrived.
    pub done_at: Option<Instant>,
}

#[derive(Debug)]
pub struct BulkResult {
    /// Bytes sent over all pairs.
    pub bytes: u64,
    pub chunks_sent: u64,
    pub pieces_received: u64,
    pub acks: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub hash_ok: bool,
    /// From the first byte sent to the last byte received.
    pub elapsed: Duration,
}

impl BulkResult {
    pub fn check(&self, failure_report: bool) -> Result<(), String> {
        if self.errors > 0 {
            return Err(format!(
                "{} errors, first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        if !self.hash_ok {
            return Err("the received message differs from what was sent".into());
        }
        if failure_report && self.acks != self.chunks_sent {
            return Err(format!(
                "{} of {} chunks got a 200",
                self.acks, self.chunks_sent
            ));
        }
        Ok(())
    }
}

pub async fn run(pairs: Vec<Pair>, opts: &BulkOptions) -> anyhow::Result<BulkResult> {
    if opts.size == 0 || opts.chunk == 0 {
        anyhow::bail!("--size and --chunk must be at least 1 byte");
    }
    let pattern = Arc::new(Pattern::new(0x005e_ed0f_b01c));
    let expected = pattern.hash(opts.size);
    let n = pairs.len() as u64;
    let stop = CancellationToken::new();
    let state = Arc::new(State::default());
    let mut receivers = Vec::new();
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    let start = Instant::now();
    for (i, pair) in pairs.into_iter().enumerate() {
        receivers.push(tokio::spawn(receive(
            pair.receiver,
            opts.size,
            state.clone(),
            stop.clone(),
        )));
        let (rd, wr) = pair.sender.io.into_split();
        readers.push(tokio::spawn(read_responses(
            rd,
            pair.sender.buf,
            state.clone(),
            stop.clone(),
        )));
        senders.push(tokio::spawn(send(
            wr,
            pattern.clone(),
            pair.to_path,
            pair.from_path,
            i,
            opts.clone(),
            stop.clone(),
        )));
    }
    let watchdog = tokio::spawn(watchdog(state.clone(), stop.clone(), opts.stall));
    let deadline = start + opts.timeout;
    let mut chunks_sent = 0;
    let mut write_halves = Vec::new();
    let mut first_error: Option<String> = None;
    for s in senders {
        match tokio::time::timeout_at(deadline.into(), s).await {
            Ok(Ok((chunks, wr, err))) => {
                chunks_sent += chunks;
                write_halves.push(wr);
                if let Some(e) = err {
                    first_error.get_or_insert(e.to_string());
                }
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(format!("sender task failed: {e}"));
            }
            Err(_) => {
                first_error.get_or_insert(format!("not sent within {:?}", opts.timeout));
            }
        }
    }
    let mut received = Vec::new();
    let mut receiver_conns = Vec::new();
    for r in receivers {
        match tokio::time::timeout_at(deadline.into(), r).await {
            Ok(Ok((rx, conn))) => {
                received.push(rx);
                receiver_conns.push(conn);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(format!("receiver task failed: {e}"));
            }
            Err(_) => {
                first_error.get_or_insert(format!(
                    "the message did not arrive whole within {:?}",
                    opts.timeout
                ));
                stop.cancel();
            }
        }
    }
    // The last 200s may still be on their way.
    let until = Instant::now() + Duration::from_secs(5);
    while opts.failure_report
        && state.acks.load(Ordering::Relaxed) < chunks_sent
        && Instant::now() < until
        && first_error.is_none()
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.cancel();
    let _ = watchdog.await;
    for r in readers {
        let _ = r.await;
    }
    drop(write_halves);
    drop(receiver_conns);
    let done = received.iter().filter_map(|r| r.done_at).max();
    let hash_ok = received.len() as u64 == n
        && received
            .iter()
            .all(|r| r.complete && r.bytes == opts.size && r.hash == expected);
    // What the receivers and the watchdog saw is the cause; a sender's error follows from it.
    if let Some(e) = state
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        first_error = Some(e);
    }
    Ok(BulkResult {
        bytes: opts.size * n,
        chunks_sent,
        pieces_received: received.iter().map(|r| r.pieces).sum(),
        acks: state.acks.load(Ordering::Relaxed),
        errors: state.errors.load(Ordering::Relaxed) + u64::from(first_error.is_some()),
        first_error,
        hash_ok,
        elapsed: done.map_or(start.elapsed(), |d| d - start),
    })
}

async fn send(
    mut wr: WriteHalf,
    pattern: Arc<Pattern>,
    to_path: Vec<u8>,
    from_path: Vec<u8>,
    pair: usize,
    opts: BulkOptions,
    stop: CancellationToken,
) -> (u64, WriteHalf, Option<anyhow::Error>) {
    let mut chunks = 0;
    let mut offset = 0;
    let mut head = BytesMut::with_capacity(512);
    let mut end = BytesMut::with_capacity(64);
    while offset < opts.size {
        let len = opts.chunk.min(opts.size - offset);
        let last = offset + len == opts.size;
        head.clear();
        end.clear();
        // tid `c` + 16 hex digits; one Message-ID per pair.
        let mut tid_buf = BytesMut::with_capacity(17);
        tid_buf.extend_from_slice(b"c");
        put_hex16_bytes(&mut tid_buf, chunks);
        head.extend_from_slice(b"MSRP ");
        head.extend_from_slice(&tid_buf);
        head.extend_from_slice(b" SEND\r\nTo-Path: ");
        head.extend_from_slice(&to_path);
        head.extend_from_slice(b"\r\nFrom-Path: ");
        head.extend_from_slice(&from_path);
        head.extend_from_slice(b"\r\nMessage-ID: bulk");
        put_dec(&mut head, pair as u64);
        head.extend_from_slice(b"\r\nByte-Range: ");
        put_dec(&mut head, offset + 1);
        head.extend_from_slice(b"-");
        put_dec(&mut head, offset + len);
        head.extend_from_slice(b"/");
        put_dec(&mut head, opts.size);
        head.extend_from_slice(b"\r\n");
        if !opts.failure_report {
            head.extend_from_slice(b"Failure-Report: no\r\n");
        }
        head.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        end.extend_from_slice(b"\r\n-------");
        end.extend_from_slice(&tid_buf);
        end.extend_from_slice(if last { b"$\r\n" } else { b"+\r\n" });

        let mut body = pattern.slices(offset, len).peekable();
        let mut first = true;
        loop {
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(SLICES_PER_WRITE + 2);
            if first {
                slices.push(IoSlice::new(&head));
                first = false;
            }
            while slices.len() < SLICES_PER_WRITE {
                match body.next() {
                    Some(s) => slices.push(IoSlice::new(s)),
                    None => break,
                }
            }
            let done = body.peek().is_none();
            if done {
                slices.push(IoSlice::new(&end));
            }
            let written = tokio::select! {
                biased;
                _ = stop.cancelled() => Err(anyhow!("sending stopped: the run failed")),
                r = write_all_vectored(&mut wr, &mut slices) => r.map_err(|e| anyhow!("sending: {e}")),
            };
            if let Err(e) = written {
                return (chunks, wr, Some(e));
            }
            if done {
                break;
            }
        }
        chunks += 1;
        offset += len;
    }
    let _ = wr.flush().await;
    (chunks, wr, None)
}

/// Fail the run when nothing has arrived for `stall`: stop every task.
async fn watchdog(st: Arc<State>, stop: CancellationToken, stall: Duration) {
    let mut seen = st.progress.load(Ordering::Relaxed);
    let mut since = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let now = st.progress.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            since = Instant::now();
        } else if since.elapsed() > stall {
            st.error(format!(
                "nothing arrived for {stall:?} (the relay dropped or stalled the message)"
            ));
            stop.cancel();
            return;
        }
    }
}

async fn read_responses(
    mut rd: ReadHalf,
    mut buf: BytesMut,
    st: Arc<State>,
    stop: CancellationToken,
) {
    let mut decoder = msrp_proto::Decoder::new(msrp_proto::Limits::default());
    let mut head: Option<Box<Head>> = None;
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Event::Head(h))) => head = Some(h),
                Ok(Some(Event::Body(_))) => {}
                Ok(Some(Event::End(_))) => {
                    let Some(h) = head.take() else { continue };
                    match h.response_code() {
                        Some(200) => {
                            st.acks.fetch_add(1, Ordering::Relaxed);
                            st.progress.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(code) => st.error(format!("sender got {code} for {}", h.tid())),
                        None => st.error(format!(
                            "sender got a {} request (status {})",
                            h.method().map(Method::as_str).unwrap_or("?"),
                            h.status().map(|s| s.code.to_string()).unwrap_or_default()
                        )),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    st.error(format!("sender: malformed input: {e}"));
                    return;
                }
            }
        }
        buf.reserve(16 * 1024);
        if let Err(why) = read_more(&mut rd, &mut buf, &stop, "sender").await {
            if let Some(why) = why {
                st.error(why);
            }
            return;
        }
    }
}

/// Receive one message of `size` bytes; the connection is handed back so that it stays
/// open until the run ends.
async fn receive(
    mut conn: MsrpConn,
    size: u64,
    st: Arc<State>,
    stop: CancellationToken,
) -> (Received, MsrpConn) {
    let rx = receive_on(&mut conn, size, &st, &stop).await;
    (rx, conn)
}

/// Check each piece's Byte-Range continues where the last stopped, hash the body, answer 200
/// per piece when asked.
async fn receive_on(
    conn: &mut MsrpConn,
    size: u64,
    st: &State,
    stop: &CancellationToken,
) -> Received {
    let mut rx = Received::default();
    let mut hasher = Xxh3::new();
    let mut current: Option<Box<Head>> = None;
    let mut out = BytesMut::with_capacity(4096);
    const READ: usize = 256 * 1024;
    loop {
        loop {
            match conn.decoder.decode(&mut conn.buf) {
                Ok(Some(Event::Head(h))) => {
                    if h.method() == Some(&Method::Send) {
                        let start = h.byte_range().map_or(1, |r| r.start);
                        if start != rx.bytes + 1 {
                            st.error(format!(
                                "receiver: piece starts at byte {start}, expected {}",
                                rx.bytes + 1
                            ));
                        }
                        rx.pieces += 1;
                    }
                    current = Some(h);
                }
                Ok(Some(Event::Body(b))) => {
                    if current
                        .as_ref()
                        .is_some_and(|h| h.method() == Some(&Method::Send))
                    {
                        hasher.update(&b);
                        rx.bytes += b.len() as u64;
                        st.progress.fetch_add(b.len() as u64, Ordering::Relaxed);
                    }
                }
                Ok(Some(Event::End(flag))) => {
                    let Some(h) = current.take() else { continue };
                    if h.method() != Some(&Method::Send) {
                        if h.is_request() {
                            st.error(format!(
                                "receiver got a {} request",
                                h.method().map(Method::as_str).unwrap_or("?")
                            ));
                        }
                        continue;
                    }
                    if h.failure_report() == FailureReport::Yes {
                        let tid = h.tid();
                        HeadWriter::response(&mut out, tid, 200, b"OK")
                            .path(HeaderName::ToPath, &h.from_path()[..1])
                            .path(HeaderName::FromPath, &h.to_path()[..1])
                            .finish(false);
                        write_end_line(&mut out, tid, Flag::Complete, false);
                    }
                    match flag {
                        Flag::More => {}
                        Flag::Abort => st.error("receiver: the message was aborted (#)".into()),
                        Flag::Complete => {
                            rx.done_at = Some(Instant::now());
                            rx.complete = rx.bytes == size;
                            if !rx.complete {
                                st.error(format!(
                                    "receiver: message complete at {} of {size} bytes",
                                    rx.bytes
                                ));
                            }
                            rx.hash = hasher.digest();
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    st.error(format!("receiver: malformed input: {e}"));
                    return rx;
                }
            }
        }
        if !out.is_empty() {
            if let Err(e) = conn.io.write_all(&out).await {
                st.error(format!("receiver write: {e}"));
                return rx;
            }
            out.clear();
        }
        if rx.done_at.is_some() {
            return rx;
        }
        if conn.buf.capacity() - conn.buf.len() < READ / 2 {
            conn.buf.reserve(READ);
        }
        if let Err(why) = read_more(&mut conn.io, &mut conn.buf, stop, "receiver").await {
            if let Some(why) = why {
                st.error(why);
            }
            return rx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_deterministic_and_dash_free() {
        let a = Pattern::new(7);
        let b = Pattern::new(7);
        assert_eq!(a.hash(1_000_000), b.hash(1_000_000));
        assert_ne!(a.hash(1_000_000), Pattern::new(8).hash(1_000_000));
        let mut total = 0;
        for s in a.slices(12_345, 3 * BLOCK as u64) {
            assert!(!s.contains(&b'-'));
            total += s.len();
        }
        assert_eq!(total, 3 * BLOCK);
        // Hashing is independent of how the stream is sliced.
        let mut h = Xxh3::new();
        for s in a.slices(0, 100_000) {
            h.update(s);
        }
        for s in a.slices(100_000, 900_000) {
            h.update(s);
        }
        assert_eq!(h.digest(), a.hash(1_000_000));
    }
}
