//! `msgs`: many small SENDs, pipelined, from each sender to its receiver.
//!
//! Every pair has three tasks: the sender writes SENDs back to back in batches while fewer
//! than `window` of its messages are undelivered; the sender's reader counts the relay's
//! hop-by-hop 200s and any error response or REPORT; the receiver decodes the SENDs, records
//! the latency from the timestamp in each body, checks the sequence, and answers 200 when the
//! SEND asks for it (Failure-Report yes or absent).
//!
//! The body is `T<send time, 16 hex>S<sequence, 16 hex>` then filler. The send time is the
//! process clock taken right before the batch is encoded and written (nothing waits in
//! between: a paced batch is usually one SEND); the receive time is taken right after the
//! read that brought the SEND in, before it is decoded.
//!
//! Pacing (`--rate`): message `k` of pair `i` (of `P`) is due `(k + i/P) / r` seconds after
//! the start, `r` being the per-pair rate, so that the pairs together release one SEND every
//! `1 / rate` seconds instead of bursts. A sender sleeps until its next message is due on a
//! [`Pacer`] (a timerfd on Linux: microsecond precision, no spinning, no extra thread) and
//! then writes every message due by then, normally one. `schedule_lag_ms` is the worst
//! lateness of a batch (a generator that cannot keep up is seen rather than hidden);
//! `pacing_lag_us` gives the distribution of every message's lateness, so that the smoothness
//! of the offered load is on record too.
//!
//! Latency added by the relay: the one-way latency measured here includes, besides the
//! relay, two trips through the kernel's loopback and the generator's own scheduling (a
//! receiver's read waits while the generator's thread is writing SENDs or reading 200s for
//! other pairs). `baseline-msgs` runs the same traffic (same rate, pairs, window, bodies,
//! 200s) through a plain byte forwarder: the same hops, sockets and generator work without
//! MSRP processing. So the latency the relay adds is stated as the difference of the two at
//! the same rate, percentile by percentile (relay p99 − forwarder p99), from runs that
//! alternate between the two; per-message differences cannot be had, as no message crosses
//! both. The difference is an estimate (the generator's delays and the relay's do not simply
//! add up at a percentile); the relay's own absolute percentile is a hard upper bound, since
//! no message's added latency exceeds its total latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use bytes::BytesMut;
use hdrhistogram::Histogram;
use msrp_proto::encoder::{write_end_line, HeadWriter};
use msrp_proto::{Event, FailureReport, Flag, Head, HeaderName, Method};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::conn::{read_more, MsrpConn, ReadHalf, WriteHalf};
use super::pace::Pacer;
use super::util::{instant_ns, now_ns, parse_hex16, put_dec, put_hex16_bytes};
use super::PairSetup as Pair;

/// Smallest body that holds the timestamp and the sequence number.
pub const MIN_SIZE: usize = 40;
/// SENDs encoded into one write at most.
const BATCH: u64 = 64;

#[derive(Debug, Clone)]
pub struct MsgsOptions {
    /// Body bytes per SEND.
    pub size: usize,
    /// Undelivered messages per sender at most.
    pub window: u64,
    /// Messages per sender; `None` means send for `duration`.
    pub count: Option<u64>,
    pub duration: Duration,
    /// Total messages per second over all senders; `None` means as fast as the window allows.
    pub rate: Option<f64>,
    /// Paced runs: a sender wakes at most once per tick and writes what is due by then
    /// (zero: at every message's own time). Fewer wakeups cost the generator less CPU, which
    /// it shares with the relay, at the price of bursts of rate × tick / pairs.
    pub tick: Duration,
    /// `Failure-Report: yes` (hop-by-hop 200s) or `no` (no responses at all).
    pub failure_report: bool,
    /// How long to wait for the last deliveries after the senders stop.
    pub drain: Duration,
    /// Also give latency per interval of send time (`--series-ms`), to see when a tail
    /// happened: a stall of the relay shows as one bad interval, a loaded machine as many.
    pub series: Option<Duration>,
}

/// Intervals in a latency series at most; later messages are counted in `outside`.
pub const SERIES_MAX_POINTS: usize = 2_000;

/// Latency per interval of send time, from the run's start.
#[derive(Debug)]
pub struct LatencySeries {
    pub interval: Duration,
    /// The run's start on the process clock (`util::now_ns`).
    start_ns: u64,
    /// One histogram per interval (coarser than the run's: one significant digit).
    pub points: Vec<Histogram<u64>>,
    /// Messages sent after the last interval the series keeps.
    pub outside: u64,
}

impl LatencySeries {
    fn new(interval: Duration, start_ns: u64) -> LatencySeries {
        LatencySeries {
            interval: interval.max(Duration::from_millis(1)),
            start_ns,
            points: Vec::new(),
            outside: 0,
        }
    }

    /// A message sent at `sent_ns` (process clock) took `latency_ns`.
    fn record(&mut self, sent_ns: u64, latency_ns: u64) {
        let since_start = sent_ns.saturating_sub(self.start_ns);
        // `new` keeps the interval at 1 ms or more.
        let i = (since_start / self.interval.as_nanos() as u64) as usize;
        if i >= SERIES_MAX_POINTS {
            self.outside += 1;
            return;
        }
        while self.points.len() <= i {
            self.points.push(series_histogram());
        }
        self.points[i].saturating_record(latency_ns);
    }

    fn merge(&mut self, other: &LatencySeries) -> anyhow::Result<()> {
        while self.points.len() < other.points.len() {
            self.points.push(series_histogram());
        }
        for (mine, theirs) in self.points.iter_mut().zip(&other.points) {
            mine.add(theirs)
                .map_err(|e| anyhow!("merging histograms: {e}"))?;
        }
        self.outside += other.outside;
        Ok(())
    }
}

fn series_histogram() -> Histogram<u64> {
    // As `new_histogram`, at one significant digit: ~3 KB per interval.
    Histogram::new_with_bounds(1_000, 100_000_000_000, 1)
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

/// What a receiver measured.
struct Received {
    latency: Histogram<u64>,
    series: Option<LatencySeries>,
}

#[derive(Default)]
struct PairState {
    delivered: AtomicU64,
    acks: AtomicU64,
    errors: AtomicU64,
    last_delivery_ns: AtomicU64,
    /// Paced runs: the longest a batch was written after its first message's schedule.
    max_lag_ns: AtomicU64,
    progress: tokio::sync::Notify,
    first_error: Mutex<Option<String>>,
}

impl PairState {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(what);
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct MsgsResult {
    pub sent: u64,
    pub delivered: u64,
    /// Hop-by-hop 200s the senders received.
    pub acks: u64,
    /// Error responses, REPORTs, sequence gaps, malformed deliveries.
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the first send to the last delivery.
    pub elapsed: Duration,
    /// Latency from send to delivery, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Paced runs: how far behind its schedule a sender fell at worst.
    pub schedule_lag: Duration,
    /// Paced runs: how late after its scheduled time each message was written, in
    /// nanoseconds (empty otherwise).
    pub pacing_lag: Histogram<u64>,
    /// Paced runs: the senders slept on the microsecond timer (false: tokio's 1 ms timer,
    /// where timerfd is missing).
    pub precise_pacing: bool,
    /// With `MsgsOptions::series`: latency per interval of send time.
    pub series: Option<LatencySeries>,
}

impl MsgsResult {
    /// Everything sent was delivered (and acknowledged when asked) without errors.
    pub fn check(&self, failure_report: bool) -> Result<(), String> {
        if self.sent == 0 {
            return Err("nothing was sent".into());
        }
        if self.delivered != self.sent {
            return Err(format!(
                "{} of {} messages delivered",
                self.delivered, self.sent
            ));
        }
        if failure_report && self.acks != self.sent {
            return Err(format!("{} of {} SENDs got a 200", self.acks, self.sent));
        }
        if self.errors > 0 {
            return Err(format!(
                "{} errors, first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        Ok(())
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 100 s at 3 significant digits; values outside are clamped.
    Histogram::new_with_bounds(1_000, 100_000_000_000, 3)
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

/// Run the pairs; every task stops by itself (count or duration, then the drain).
pub async fn run(pairs: Vec<Pair>, opts: &MsgsOptions) -> anyhow::Result<MsgsResult> {
    if opts.size < MIN_SIZE {
        anyhow::bail!("--size must be at least {MIN_SIZE} bytes (timestamp and sequence)");
    }
    let stop = CancellationToken::new();
    let npairs = pairs.len();
    let per_sender_rate = opts.rate.map(|r| r / npairs as f64);
    let mut states = Vec::new();
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    let mut receivers = Vec::new();
    // Start the process clock first: an instant before its epoch would read as 0, and the
    // schedule (from `start`) and the send times (from the clock) would not agree.
    let _ = now_ns();
    let start = Instant::now();
    let deadline = start + opts.duration;
    for (i, pair) in pairs.into_iter().enumerate() {
        let st = Arc::new(PairState::default());
        states.push(st.clone());
        receivers.push(tokio::spawn(receive(
            pair.receiver,
            st.clone(),
            stop.clone(),
            opts.series
                .map(|interval| LatencySeries::new(interval, instant_ns(start))),
        )));
        let MsrpConn {
            io,
            decoder: _,
            buf,
        } = pair.sender;
        let (rd, wr) = io.into_split();
        readers.push(tokio::spawn(read_responses(
            rd,
            buf,
            st.clone(),
            stop.clone(),
        )));
        let tmpl = Template::new(&pair.to_path, &pair.from_path, opts);
        senders.push(tokio::spawn(send(
            wr,
            tmpl,
            st,
            opts.clone(),
            start,
            deadline,
            per_sender_rate.map(|rate| Pace {
                rate,
                phase: i as f64 / npairs as f64,
            }),
        )));
    }
    let mut sent = 0;
    let mut send_error = None;
    let mut write_halves = Vec::new();
    let mut pacing_lag = new_histogram();
    let mut precise_pacing = true;
    for s in senders {
        match s.await {
            Ok(o) => {
                sent += o.sent;
                precise_pacing &= o.precise;
                write_halves.push(o.wr);
                if let Some(e) = o.error {
                    send_error.get_or_insert(e.to_string());
                }
                pacing_lag
                    .add(&o.lag)
                    .map_err(|e| anyhow!("merging histograms: {e}"))?;
            }
            Err(e) => {
                send_error.get_or_insert(format!("sender task failed: {e}"));
            }
        }
    }
    // Wait for the deliveries (and 200s) still in flight.
    let drain_until = Instant::now() + opts.drain;
    loop {
        let delivered: u64 = states
            .iter()
            .map(|s| s.delivered.load(Ordering::Relaxed))
            .sum();
        let acks: u64 = states.iter().map(|s| s.acks.load(Ordering::Relaxed)).sum();
        let done = delivered >= sent && (!opts.failure_report || acks >= sent);
        if done || Instant::now() >= drain_until || send_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.cancel();
    let mut latency = new_histogram();
    let mut series = opts
        .series
        .map(|interval| LatencySeries::new(interval, instant_ns(start)));
    for r in receivers {
        match r.await {
            Ok(got) => {
                latency
                    .add(&got.latency)
                    .map_err(|e| anyhow!("merging histograms: {e}"))?;
                if let (Some(all), Some(one)) = (series.as_mut(), got.series.as_ref()) {
                    all.merge(one)?;
                }
            }
            Err(e) => {
                send_error.get_or_insert(format!("receiver task failed: {e}"));
            }
        }
    }
    for r in readers {
        let _ = r.await;
    }
    drop(write_halves);
    let last = states
        .iter()
        .map(|s| s.last_delivery_ns.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let elapsed = Duration::from_nanos(last.saturating_sub(instant_ns(start)));
    let mut first_error = send_error;
    for s in &states {
        if first_error.is_some() {
            break;
        }
        first_error = s
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
    }
    Ok(MsgsResult {
        sent,
        delivered: states
            .iter()
            .map(|s| s.delivered.load(Ordering::Relaxed))
            .sum(),
        acks: states.iter().map(|s| s.acks.load(Ordering::Relaxed)).sum(),
        errors: states
            .iter()
            .map(|s| s.errors.load(Ordering::Relaxed))
            .sum(),
        first_error,
        elapsed,
        latency,
        schedule_lag: Duration::from_nanos(
            states
                .iter()
                .map(|s| s.max_lag_ns.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0),
        ),
        pacing_lag,
        precise_pacing,
        series,
    })
}

/// The constant parts of a SEND, around the tid, the Message-ID and the body.
struct Template {
    /// ` SEND\r\nTo-Path: …\r\nFrom-Path: …\r\nMessage-ID: `
    after_tid: Vec<u8>,
    /// `\r\nByte-Range: 1-N/N\r\n[Failure-Report: no\r\n]Content-Type: text/plain\r\n\r\n`
    after_mid: Vec<u8>,
    /// Body after the timestamp and sequence.
    filler: Vec<u8>,
}

impl Template {
    fn new(to_path: &[u8], from_path: &[u8], opts: &MsgsOptions) -> Template {
        let mut after_tid = Vec::new();
        after_tid.extend_from_slice(b" SEND\r\nTo-Path: ");
        after_tid.extend_from_slice(to_path);
        after_tid.extend_from_slice(b"\r\nFrom-Path: ");
        after_tid.extend_from_slice(from_path);
        after_tid.extend_from_slice(b"\r\nMessage-ID: ");
        let mut after_mid = BytesMut::new();
        after_mid.extend_from_slice(b"\r\nByte-Range: 1-");
        put_dec(&mut after_mid, opts.size as u64);
        after_mid.extend_from_slice(b"/");
        put_dec(&mut after_mid, opts.size as u64);
        after_mid.extend_from_slice(b"\r\n");
        if !opts.failure_report {
            after_mid.extend_from_slice(b"Failure-Report: no\r\n");
        }
        after_mid.extend_from_slice(b"Content-Type: text/plain\r\n\r\n");
        let mut filler = vec![b'x'; opts.size - 34];
        filler[0] = b' ';
        Template {
            after_tid,
            after_mid: after_mid.to_vec(),
            filler,
        }
    }

    /// Append one SEND with sequence number `seq` sent at `ts` (process clock, ns).
    fn encode(&self, out: &mut BytesMut, seq: u64, ts: u64) {
        // tid and Message-ID: `m` + 16 hex digits (an ident, RFC 4975 §9).
        out.extend_from_slice(b"MSRP m");
        put_hex16_bytes(out, seq);
        out.extend_from_slice(&self.after_tid);
        out.extend_from_slice(b"m");
        put_hex16_bytes(out, seq);
        out.extend_from_slice(&self.after_mid);
        out.extend_from_slice(b"T");
        put_hex16_bytes(out, ts);
        out.extend_from_slice(b"S");
        put_hex16_bytes(out, seq);
        out.extend_from_slice(&self.filler);
        out.extend_from_slice(b"\r\n-------m");
        put_hex16_bytes(out, seq);
        out.extend_from_slice(b"$\r\n");
    }
}

/// One paced sender's schedule: message `seq` is due at `(seq + phase) / rate` seconds after
/// the start. The pairs' phases are spread evenly (`pair / pairs`), so that all senders
/// together release one message every `1 / total rate` rather than `pairs` at a time.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Messages per second of this sender.
    rate: f64,
    /// In messages, in [0, 1).
    phase: f64,
}

impl Pace {
    /// When message `seq` is due, after the start.
    fn at(&self, seq: u64) -> Duration {
        Duration::from_secs_f64((seq as f64 + self.phase) / self.rate)
    }

    /// How many messages are due `elapsed` after the start.
    fn due(&self, elapsed: Duration) -> u64 {
        let x = elapsed.as_secs_f64() * self.rate - self.phase;
        if x < 0.0 {
            0
        } else {
            x as u64 + 1
        }
    }
}

/// What a sender did: messages sent, the write half (kept open until the run ends:
/// dropping it would close the socket), the error that stopped it early, and how late
/// after its scheduled time each message was written (paced runs).
struct SendOutcome {
    sent: u64,
    wr: WriteHalf,
    error: Option<anyhow::Error>,
    lag: Histogram<u64>,
    /// The pacer (if any) had the microsecond timer.
    precise: bool,
}

async fn send(
    mut wr: WriteHalf,
    tmpl: Template,
    st: Arc<PairState>,
    opts: MsgsOptions,
    start: Instant,
    deadline: Instant,
    pace: Option<Pace>,
) -> SendOutcome {
    let mut seq: u64 = 0;
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut lag = new_histogram();
    let pacer = pace.map(|_| Pacer::new());
    let precise = pacer.as_ref().is_none_or(Pacer::is_precise);
    let mut last_write = start;
    // A full window with no delivery for `drain` means the relay stopped delivering.
    let mut last_progress = (0, Instant::now());
    loop {
        let now = Instant::now();
        let remaining = match opts.count {
            Some(c) if seq >= c => break,
            Some(c) => c - seq,
            None if now >= deadline => break,
            None => u64::MAX,
        };
        if st.errors.load(Ordering::Relaxed) > 0 {
            // The run has failed already (a lost connection, an error response): stop
            // rather than wait for deliveries that may never come.
            break;
        }
        let delivered = st.delivered.load(Ordering::Acquire);
        if delivered != last_progress.0 {
            last_progress = (delivered, now);
        }
        let inflight = seq.saturating_sub(delivered);
        if inflight >= opts.window {
            if now.duration_since(last_progress.1) > opts.drain {
                return SendOutcome {
                    sent: seq,
                    wr,
                    error: Some(anyhow!(
                        "no delivery for {:?} with {inflight} messages in flight",
                        opts.drain
                    )),
                    lag,
                    precise,
                };
            }
            let notified = st.progress.notified();
            if seq.saturating_sub(st.delivered.load(Ordering::Acquire)) >= opts.window {
                let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
            }
            continue;
        }
        let mut n = (opts.window - inflight).min(BATCH).min(remaining);
        if let (Some(p), Some(pacer)) = (&pace, &pacer) {
            let due = p.due(now - start);
            if due <= seq {
                // Not sooner than a tick after the last write (none by default).
                let at = (start + p.at(seq)).max(last_write + opts.tick);
                pacer.sleep_until(at).await;
                continue;
            }
            n = n.min(due - seq);
        }
        out.clear();
        // The send time of the whole batch, taken as late as possible: only encoding it
        // (well under a microsecond per SEND) and the write follow.
        let ts = now_ns();
        for i in 0..n {
            tmpl.encode(&mut out, seq + i, ts);
        }
        if let Err(e) = wr.write_all(&out).await {
            return SendOutcome {
                sent: seq,
                wr,
                error: Some(anyhow!("sending: {e}")),
                lag,
                precise,
            };
        }
        last_write = Instant::now();
        if let Some(p) = &pace {
            let start_ns = instant_ns(start);
            for i in 0..n {
                let scheduled = start_ns + p.at(seq + i).as_nanos() as u64;
                lag.saturating_record(ts.saturating_sub(scheduled));
            }
            let first = start_ns + p.at(seq).as_nanos() as u64;
            st.max_lag_ns
                .fetch_max(ts.saturating_sub(first), Ordering::Relaxed);
        }
        seq += n;
    }
    let _ = wr.flush().await;
    SendOutcome {
        sent: seq,
        wr,
        error: None,
        lag,
        precise,
    }
}

/// The sender's side of the responses: 200s count, anything else is an error.
async fn read_responses(
    mut rd: ReadHalf,
    mut buf: BytesMut,
    st: Arc<PairState>,
    stop: CancellationToken,
) {
    let mut decoder = msrp_proto::Decoder::new(msrp_proto::Limits::default());
    let mut head: Option<Box<Head>> = None;
    loop {
        let mut acks = 0;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Event::Head(h))) => head = Some(h),
                Ok(Some(Event::Body(_))) => {}
                Ok(Some(Event::End(_))) => {
                    let Some(h) = head.take() else { continue };
                    match h.response_code() {
                        Some(200) => acks += 1,
                        Some(code) => st.error(format!("sender got {code} for {}", h.tid())),
                        None => {
                            let status = h
                                .status()
                                .map(|s| s.code.to_string())
                                .unwrap_or_else(|| "?".into());
                            st.error(format!(
                                "sender got a {} request (status {status})",
                                h.method().map(Method::as_str).unwrap_or("?")
                            ));
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    st.error(format!("sender: malformed input: {e}"));
                    return;
                }
            }
        }
        if acks > 0 {
            st.acks.fetch_add(acks, Ordering::Release);
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

/// The receiver: latency (and its series, when asked for), sequence, and 200s for SENDs
/// that want them.
async fn receive(
    mut conn: MsrpConn,
    st: Arc<PairState>,
    stop: CancellationToken,
    series: Option<LatencySeries>,
) -> Received {
    let mut got = Received {
        latency: new_histogram(),
        series,
    };
    let mut current: Option<Box<Head>> = None;
    let mut prefix: Vec<u8> = Vec::with_capacity(64);
    let mut expect: u64 = 0;
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        let mut delivered = 0;
        let now = now_ns();
        loop {
            match conn.decoder.decode(&mut conn.buf) {
                Ok(Some(Event::Head(h))) => {
                    prefix.clear();
                    current = Some(h);
                }
                Ok(Some(Event::Body(b))) => {
                    if prefix.len() < 34 {
                        let take = (34 - prefix.len()).min(b.len());
                        prefix.extend_from_slice(&b[..take]);
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
                    if flag != Flag::Complete {
                        st.error(format!("receiver got a SEND ending in {:?}", flag));
                    }
                    let parsed = (prefix.len() == 34 && prefix[0] == b'T' && prefix[17] == b'S')
                        .then(|| (parse_hex16(&prefix[1..17]), parse_hex16(&prefix[18..34])));
                    match parsed {
                        Some((Some(ts), Some(seq))) => {
                            if seq != expect {
                                st.error(format!("receiver expected message {expect}, got {seq}"));
                            }
                            expect = seq + 1;
                            got.latency.saturating_record(now.saturating_sub(ts));
                            if let Some(series) = got.series.as_mut() {
                                series.record(ts, now.saturating_sub(ts));
                            }
                            delivered += 1;
                        }
                        _ => st.error("receiver got a body without timestamp".into()),
                    }
                    if h.failure_report() == FailureReport::Yes {
                        let tid = h.tid();
                        HeadWriter::response(&mut out, tid, 200, b"OK")
                            .path(HeaderName::ToPath, &h.from_path()[..1])
                            .path(HeaderName::FromPath, &h.to_path()[..1])
                            .finish(false);
                        write_end_line(&mut out, tid, Flag::Complete, false);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    st.error(format!("receiver: malformed input: {e}"));
                    return got;
                }
            }
        }
        if !out.is_empty() {
            if let Err(e) = conn.io.write_all(&out).await {
                st.error(format!("receiver write: {e}"));
                return got;
            }
            out.clear();
        }
        if delivered > 0 {
            st.last_delivery_ns.store(now_ns(), Ordering::Relaxed);
            st.delivered.fetch_add(delivered, Ordering::Release);
            st.progress.notify_one();
        }
        conn.buf.reserve(16 * 1024);
        if let Err(why) = read_more(&mut conn.io, &mut conn.buf, &stop, "receiver").await {
            if let Some(why) = why {
                st.error(why);
            }
            return got;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_buckets_by_send_time_and_merges() {
        let ms = 1_000_000;
        let mut a = LatencySeries::new(Duration::from_millis(50), 7 * ms);
        // Send times on the process clock; the run started at 7 ms.
        a.record(7 * ms, 100_000);
        a.record(56 * ms, 200_000);
        a.record(57 * ms, 5 * ms);
        a.record(127 * ms, 300_000);
        assert_eq!(a.points.len(), 3);
        assert_eq!(
            a.points.iter().map(Histogram::len).collect::<Vec<_>>(),
            [2, 1, 1]
        );
        // The stall shows in its own interval, at the histogram's one-digit precision.
        assert!(a.points[1].max() >= 5 * ms && a.points[1].max() < 6 * ms);
        assert!(a.points[0].max() < ms);
        // Past the last interval kept: counted, not stored.
        a.record(7 * ms + 50 * ms * SERIES_MAX_POINTS as u64, 1_000);
        assert_eq!((a.points.len(), a.outside), (3, 1));
        let mut b = LatencySeries::new(Duration::from_millis(50), 7 * ms);
        b.record(267 * ms, 400_000);
        b.merge(&a).unwrap();
        assert_eq!(
            b.points.iter().map(Histogram::len).collect::<Vec<_>>(),
            [2, 1, 1, 0, 0, 1]
        );
        assert_eq!(b.outside, 1);
    }
}
