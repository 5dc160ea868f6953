//! The per-connection actor's reader loop (RFC 4975 §5, RFC 4976 §6).
//!
//! The reader owns the socket's read half and the decoder. It decides what each request is
//! (AUTH for us, something to forward, something to refuse), streams bodies toward the next
//! hop as bounded pieces, answers hop-by-hop, and matches responses to the transactions the
//! relay started on this connection.
//!
//! What leaves a connection goes through its outbox (`outbox.rs`): written directly by the
//! producer when the socket is free, queued for the connection's writer task otherwise.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use msrp_proto::encoder::{forwarded_from, write_end_line, write_forward_head};
use msrp_proto::{
    ByteRange, DecodeError, Decoder, Event, FailureReport, Flag, Head, Method, Scheme, Status,
};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsStream;
use tokio_util::sync::CancellationToken;

use super::auth::{self, AuthOutcome, AuthState};
use super::forward::{self, Decision};
use super::gate::Gate;
use super::outbox::{self, Class, Frame, Outbox, Staged, WriteHalf};
use super::report;
use super::transaction::{fresh_tid_for, Answer, AuthReturn, Pending, ReportTarget, Transactions};
use super::Shared;

/// The rarely ready futures of a reader's loop (see `Reader::run`).
enum Rare {
    Closed,
    ProbationOver,
    TxnTimer,
    TxnWake,
    Drain,
}

/// What ended a turn of a reader's wait: one of the rare futures, or a read.
enum Woke {
    Rare(Rare),
    Read(io::Result<usize>),
}

/// What the local end of a connection is: the scheme and port that our URIs on it carry.
#[derive(Debug, Clone, Copy)]
pub struct LocalEnd {
    pub scheme: Scheme,
    pub port: u16,
    /// TLS (AUTH is only accepted over TLS, RFC 4976 §9.2).
    pub secure: bool,
}

/// Who opened the connection.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A peer connected to one of our listeners.
    Inbound,
    /// We dialled a next hop (RFC 4976 §6.4.2); pooled under this key.
    Outbound(super::outbound::PoolKey),
}

/// Milliseconds since the first call, for cheap activity stamps.
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// The shared face of a connection: its queues, its transactions, and its lifetime.
pub struct ConnHandle {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: LocalEnd,
    pub origin: Origin,
    /// The peer's certificate as verified by TLS: a relay's client certificate on an inbound
    /// connection (RFC 4976 §6.3, §9.2), the server's certificate on an outbound one.
    peer_cert: Option<rustls_pki_types::CertificateDer<'static>>,
    last_active: AtomicU64,
    /// Frames queued toward writers, all connections together (a metric).
    pub(super) queued: prometheus_client::metrics::gauge::Gauge,
    /// Frames toward the socket, and who may write them.
    pub(super) out: Outbox,
    // Cancellation tokens lock a mutex on every check and every poll; the relay-wide ones
    // would be shared by every connection on every loop turn. So each connection has its own
    // nodes in the token tree (`hard_stop` a child of the relay's shutdown, `closed` a child
    // of that, `draining` a child of the relay's drain), polled through futures made once, and
    // the per-frame "is it closed?" check reads an atomic flag.
    closed: CancellationToken,
    closed_flag: AtomicBool,
    hard_stop: CancellationToken,
    draining: CancellationToken,
    txns: Mutex<Transactions>,
    pub(super) txn_wake: Notify,
    tokens: Mutex<Vec<String>>,
    /// How long a request written here waits for its response (RFC 4976 §6.4.1); also how
    /// long a write queue may stay full before the connection is considered stuck.
    pub(super) txn_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave the data inconsistent in a
    // way that matters more than losing the connection; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConnHandle {
    /// Closed by either side or by a hard shutdown (both set the flag: the reader and the
    /// writer call `close` on their way out). A stale `false` is harmless: queueing to a
    /// connection whose writer is gone fails anyway.
    pub fn is_closed(&self) -> bool {
        self.closed_flag.load(Ordering::Acquire)
    }

    pub fn close(&self) {
        self.closed_flag.store(true, Ordering::Release);
        self.closed.cancel();
    }

    /// The peer proved with a certificate that it is `host` (a dNSName or IP address SAN).
    /// A relay that does so is an authenticated relay (RFC 4976 §6.3).
    pub fn peer_is(&self, host: &str) -> bool {
        let Some(der) = &self.peer_cert else {
            return false;
        };
        let Ok(cert) = webpki::EndEntityCert::try_from(der) else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(name) = rustls_pki_types::ServerName::try_from(host) else {
            return false;
        };
        cert.verify_is_valid_for_subject_name(&name).is_ok()
    }

    pub(super) fn touch(&self) {
        self.last_active.store(now_ms(), Ordering::Relaxed);
    }

    /// Time since the connection last read or wrote anything.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.last_active.load(Ordering::Relaxed)))
    }

    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    pub(super) fn hard_stop(&self) -> &CancellationToken {
        &self.hard_stop
    }

    pub(super) fn own_token(&self, token: &str) {
        lock(&self.tokens).push(token.to_owned());
    }

    pub fn transactions(&self) -> MutexGuard<'_, Transactions> {
        lock(&self.txns)
    }
}

/// A connected socket, plain or TLS.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

impl Stream {
    fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(Arc::new(w)))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

impl ReadHalf {
    /// Wait until the socket has data, without a buffer: an idle plain-TCP connection holds no
    /// read buffer at all (TLS keeps its own).
    async fn ready(&self) -> io::Result<()> {
        match self {
            ReadHalf::Tcp(r) => r.readable().await,
            ReadHalf::Tls(_) => Ok(()),
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Tls(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

/// What a connection holds for as long as it lives: its slot in `limits.max_connections`
/// and its count in the open-connections gauge.
pub struct ConnGuard {
    _permit: tokio::sync::OwnedSemaphorePermit,
    open: prometheus_client::metrics::gauge::Gauge,
}

impl ConnGuard {
    pub fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        open: prometheus_client::metrics::gauge::Gauge,
    ) -> ConnGuard {
        open.inc();
        ConnGuard {
            _permit: permit,
            open,
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Capacity of the control queue (responses and REPORTs are small).
const CTRL_QUEUE: usize = 1024;
/// First read buffer of a connection; it doubles while reads fill it.
const MIN_READ: usize = 4096;

/// A connection as it was opened: accepted on a listener or dialled to a next hop.
pub struct Opened {
    pub stream: Stream,
    pub peer: SocketAddr,
    pub local: LocalEnd,
    /// The certificate the peer presented, verified (TLS only).
    pub peer_cert: Option<rustls_pki_types::CertificateDer<'static>>,
    pub origin: Origin,
    /// The listener's connection permit and gauge, released when the connection ends.
    pub guard: Option<ConnGuard>,
}

/// Start the actor for an established connection.
pub fn spawn(opened: Opened, shared: Arc<Shared>) -> Arc<ConnHandle> {
    let (handle, writer, reader) = actor(opened, &shared);
    let writer = shared.tasks.spawn(writer);
    shared.tasks.spawn(reader.run(writer));
    tracing::debug!(peer = %handle.peer, conn = handle.id, "connection open");
    handle
}

/// The parts of a connection's actor: its handle, its writer task, and its reader (whose
/// `run` is the other task). Every open connection holds both tasks for as long as it lives,
/// so their futures' sizes are most of its idle memory (see the test below).
fn actor(
    opened: Opened,
    shared: &Arc<Shared>,
) -> (Arc<ConnHandle>, impl Future<Output = ()>, Reader) {
    let Opened {
        stream,
        peer,
        local,
        peer_cert,
        origin,
        guard,
    } = opened;
    let settings = shared.settings();
    let hard_stop = shared.shutdown.child_token();
    let (rd, wr) = stream.split();
    let direct = match &wr {
        WriteHalf::Tcp(s) => Some(s.clone()),
        WriteHalf::Tls(_) => None,
    };
    let handle = Arc::new(ConnHandle {
        id: shared.next_conn_id(),
        peer,
        local,
        origin,
        peer_cert,
        last_active: AtomicU64::new(now_ms()),
        queued: shared.metrics.queued_frames.clone(),
        out: Outbox::new(CTRL_QUEUE, settings.limits.write_queue_frames, direct),
        closed: hard_stop.child_token(),
        closed_flag: AtomicBool::new(false),
        hard_stop,
        draining: shared.draining.child_token(),
        txns: Mutex::new(Transactions::default()),
        txn_wake: Notify::new(),
        tokens: Mutex::new(Vec::new()),
        txn_timeout: settings.limits.transaction_timeout(),
    });
    let writer = outbox::write_loop(handle.clone(), wr);
    let reader = Reader {
        handle: handle.clone(),
        decoder: Decoder::new(shared.decoder_limits()),
        shared: shared.clone(),
        settings: settings.clone(),
        rd,
        buf: BytesMut::new(),
        read_size: MIN_READ,
        current: Current::Idle,
        staged: Staged::default(),
        auth: AuthState::default(),
        _guard: guard,
        // We opened it: no probation (RFC 4976 §6.1 is about connections made to us).
        trusted: matches!(handle.origin, Origin::Outbound(_)),
        failures: 0,
    };
    (handle, writer, reader)
}

/// A request being forwarded: its head, where it goes, and the piece being gathered.
struct Forwarding {
    head: Arc<Head>,
    target: Arc<ConnHandle>,
    pop: usize,
    is_send: bool,
    /// Byte-Range of the received chunk: position of its first byte, and the total.
    range_start: u64,
    total: Option<u64>,
    /// Body bytes of this chunk already forwarded.
    offset: u64,
    pieces: u32,
    acc: Vec<Bytes>,
    acc_len: usize,
    /// A piece in `acc` may hold a `CRLF "-------"` (the decoder said so).
    acc_delim: bool,
    report: Option<Arc<ReportTarget>>,
    /// For a forwarded AUTH: where its response goes back (boxed: AUTHs are rare).
    auth_return: Option<Box<AuthReturn>>,
    /// Forwarding stopped: the status to answer with at the end-line.
    failed: Option<Status>,
}

enum Current {
    Idle,
    /// A message whose body is ignored (refused, answered, or a response).
    Skip,
    Forward(Box<Forwarding>),
}

struct Reader {
    handle: Arc<ConnHandle>,
    shared: Arc<Shared>,
    /// The settings in force, refreshed before each read (a reload takes effect at the next
    /// read of every connection).
    settings: Arc<crate::config::Settings>,
    decoder: Decoder,
    rd: ReadHalf,
    buf: BytesMut,
    read_size: usize,
    current: Current,
    /// What acting on the current read produced, delivered once the read is processed.
    staged: Staged,
    auth: AuthState,
    /// A request succeeded on this connection: probation is over (RFC 4976 §6.1).
    trusted: bool,
    /// Refused requests while on probation.
    failures: u32,
    /// Released when the reader is done, that is when the connection is.
    _guard: Option<ConnGuard>,
}

/// Why the reader stops.
enum Stop {
    Eof,
    Close(&'static str),
}

impl Reader {
    fn trusted(&self) -> bool {
        self.trusted
    }

    fn trust(&mut self) {
        self.trusted = true;
    }

    async fn run(mut self, writer: tokio::task::JoinHandle<()>) {
        let probation = Instant::now() + self.settings.limits.probation();
        let handle = self.handle.clone();
        let mut draining = false;
        // Made once and polled by reference: see `ConnHandle::closed`.
        let closed = handle.closed.cancelled();
        tokio::pin!(closed);
        let drain = handle.draining.cancelled();
        tokio::pin!(drain);
        // The timers are on the heap, and only while they can fire: an idle authenticated
        // connection (past probation, nothing in flight) holds neither.
        let mut probation_timer = Some(Box::pin(tokio::time::sleep_until(probation)));
        // One timer for the earliest transaction deadline, set only when there is none or the
        // earliest deadline is before it (a timer registration takes the runtime's timer
        // lock, and waking this task to set it costs more): see `Transactions::arm`.
        let mut txn_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        // Registered once and replaced only when it fires (registering takes the Notify's
        // lock, and dropping an unfired one takes it again).
        let txn_wake = handle.txn_wake.notified();
        tokio::pin!(txn_wake);
        // The futures above almost never complete; they are polled only when one of them
        // woke the task, not on every read (see `gate.rs`).
        let gate = Gate::new();
        let stop = loop {
            // Graceful shutdown: close between messages, once nothing is outstanding.
            if draining
                && matches!(self.current, Current::Idle)
                && self.buf.is_empty()
                && handle.transactions().is_empty()
            {
                break Stop::Close("shutting down");
            }
            if let Some(at) = handle.transactions().arm() {
                let at = Instant::from_std(at);
                match txn_timer.as_mut() {
                    Some(t) => t.as_mut().reset(at),
                    None => txn_timer = Some(Box::pin(tokio::time::sleep_until(at))),
                }
                gate.open();
            }
            if self.trusted() {
                probation_timer = None;
            }
            let rare = std::future::poll_fn(|cx| {
                gate.poll(cx, |cx| {
                    if closed.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Rare::Closed);
                    }
                    if probation_timer
                        .as_mut()
                        .is_some_and(|t| t.as_mut().poll(cx).is_ready())
                    {
                        return Poll::Ready(Rare::ProbationOver);
                    }
                    if txn_timer
                        .as_mut()
                        .is_some_and(|t| t.as_mut().poll(cx).is_ready())
                    {
                        return Poll::Ready(Rare::TxnTimer);
                    }
                    if txn_wake.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Rare::TxnWake);
                    }
                    if !draining && drain.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Rare::Drain);
                    }
                    Poll::Pending
                })
            });
            let woke = tokio::select! {
                biased;
                rare = rare => Woke::Rare(rare),
                r = self.fill() => Woke::Read(r),
            };
            let result = match woke {
                Woke::Rare(rare) => {
                    // The others may have fired too: look at all of them next time.
                    gate.open();
                    match rare {
                        Rare::Closed => Err(Stop::Close("closed")),
                        Rare::ProbationOver => Err(Stop::Close(
                            "no successful request during probation (RFC 4976 §6.1)",
                        )),
                        Rare::TxnTimer => {
                            // Fired: whatever deadline comes next must be armed again (and
                            // the timer made again, if there is one).
                            txn_timer = None;
                            self.expire_transactions();
                            self.deliver_staged().await;
                            Ok(())
                        }
                        Rare::TxnWake => {
                            txn_wake.set(handle.txn_wake.notified());
                            Ok(())
                        }
                        Rare::Drain => {
                            draining = true;
                            Ok(())
                        }
                    }
                }
                Woke::Read(r) => match r {
                    Ok(0) => Err(Stop::Eof),
                    Ok(_) => {
                        handle.touch();
                        let r = self.process().await;
                        // Also when the connection is about to close: a last response (a
                        // 403 before closing) still goes out.
                        self.deliver_staged().await;
                        r
                    }
                    Err(e) => {
                        tracing::debug!(peer = %handle.peer, conn = handle.id, error = %e, "read failed");
                        Err(Stop::Eof)
                    }
                },
            };
            if let Err(stop) = result {
                break stop;
            }
        };
        if let Stop::Close(why) = stop {
            if why != "closed" && why != "shutting down" {
                tracing::info!(peer = %handle.peer, conn = handle.id, "closing connection: {why}");
            }
        }
        // Boxed: `shutdown` owns the reader, so inline its future would be a second copy of
        // it in every connection's task, for the one time it runs.
        Box::pin(self.shutdown(writer)).await;
    }

    /// Read more input. An empty buffer is released first, so idle connections hold none.
    async fn fill(&mut self) -> io::Result<usize> {
        self.shared.refresh_settings(&mut self.settings);
        if self.buf.is_empty() {
            // An idle connection keeps no read buffer at all.
            if self.buf.capacity() > 0 {
                self.buf = BytesMut::new();
                self.read_size = MIN_READ;
            }
            self.rd.ready().await?;
        }
        if self.buf.capacity() - self.buf.len() < self.read_size / 2 {
            self.buf.reserve(self.read_size);
        }
        let room = self.buf.capacity() - self.buf.len();
        let n = tokio::io::AsyncReadExt::read_buf(&mut self.rd, &mut self.buf).await?;
        // Reads that fill the buffer ask for a bigger one next time (as hyper's adaptive
        // read buffer does), up to the forwarding piece size.
        if n == room && self.read_size < self.settings.limits.chunk_size {
            self.read_size *= 2;
        }
        Ok(n)
    }

    /// Decode and act on everything buffered.
    async fn process(&mut self) -> Result<(), Stop> {
        loop {
            // Only the head is held across the await: the decoder's result (which can be a
            // large error) is gone by then, so the reader's task does not carry room for it.
            let head = match self.decoder.decode(&mut self.buf) {
                Ok(Some(Event::Head(head))) => head,
                Ok(Some(Event::Body(piece))) => {
                    let delim = self.decoder.body_has_delimiter();
                    self.on_body(piece, delim);
                    continue;
                }
                Ok(Some(Event::End(flag))) => {
                    self.on_end(flag)?;
                    continue;
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.on_decode_error(e)?;
                    continue;
                }
            };
            self.on_head(head).await?;
        }
    }

    fn on_decode_error(&mut self, e: DecodeError) -> Result<(), Stop> {
        let peer = self.handle.peer;
        match &e {
            DecodeError::Rejected { context, .. } => {
                tracing::warn!(peer = %peer, conn = self.handle.id, tid = %context.tid, "rejected message: {e}");
                // A 400 needs readable paths (RFC 4975 §10.2); never answer a REPORT or a
                // response.
                if forward::may_respond(context.method.as_ref(), FailureReport::Yes) {
                    let status = match e.violation() {
                        msrp_proto::Violation::LimitExceeded(msrp_proto::Limit::NonSendBody) => {
                            Status::TOO_LARGE
                        }
                        _ => Status::BAD_REQUEST,
                    };
                    self.shared.metrics.response(status.code());
                    let frame = report::response(
                        &context.tid,
                        status,
                        context.method.as_ref(),
                        &context.from_path,
                        &context.to_path[0],
                        |_| {},
                    );
                    self.staged.push(&self.handle, Class::Ctrl, frame);
                }
                self.shared.metrics.rejection("malformed");
                self.refused()
            }
            DecodeError::Fatal { .. } => {
                self.shared.metrics.rejection("unreadable");
                tracing::warn!(peer = %peer, conn = self.handle.id, "unreadable message, dropping the connection: {e}");
                Err(Stop::Close("unreadable input (RFC 4975 §10.2)"))
            }
        }
    }

    /// Count a refused request; too many while on probation close the connection
    /// (RFC 4976 §6.1 SHOULD).
    fn refused(&mut self) -> Result<(), Stop> {
        self.failures += 1;
        let max = self.settings.auth.max_failures.max(1);
        if !self.trusted() && self.failures >= max {
            return Err(Stop::Close(
                "repeated failed requests during probation (RFC 4976 §6.1)",
            ));
        }
        Ok(())
    }

    fn respond(&mut self, head: &Head, status: Status) {
        self.shared.metrics.response(status.code());
        let frame = report::response(
            head.tid(),
            status,
            head.method(),
            head.from_path(),
            &head.to_path()[0],
            |_| {},
        );
        self.staged.push(&self.handle, Class::Ctrl, frame);
    }

    async fn on_head(&mut self, head: Box<Head>) -> Result<(), Stop> {
        self.current = Current::Skip;
        if !head.is_request() {
            self.on_response(&head);
            return Ok(());
        }
        let decision = forward::decide(
            &head,
            &self.handle,
            &self.shared.table,
            &self.settings.relay.hostname,
            self.trusted(),
        );
        match decision {
            Decision::AuthLocal => {
                let (frame, outcome) =
                    auth::handle(&head, &self.handle, &mut self.auth, &self.shared);
                self.shared.metrics.auth(outcome.as_str());
                self.shared.metrics.response(outcome.status().code());
                self.staged.push(&self.handle, Class::Ctrl, frame);
                match outcome {
                    AuthOutcome::Accepted => self.trust(),
                    AuthOutcome::Refused if !self.handle.local.secure => {
                        tracing::warn!(peer = %self.handle.peer, conn = self.handle.id, "AUTH refused: not over TLS (RFC 4976 §9.2)");
                        return Err(Stop::Close("AUTH over plain TCP (RFC 4976 §9.2)"));
                    }
                    AuthOutcome::Rejected | AuthOutcome::Refused => {
                        tracing::warn!(peer = %self.handle.peer, conn = self.handle.id, failures = self.auth.failures, "AUTH failed");
                        if self.auth.failures >= self.settings.auth.max_failures {
                            return Err(Stop::Close(
                                "too many failed AUTH attempts (RFC 4976 §6.3)",
                            ));
                        }
                    }
                    _ => {}
                }
                Ok(())
            }
            Decision::Reject {
                status,
                rule,
                close,
            } => {
                self.shared.metrics.rejection(match status.code() {
                    481 => "unknown_uri",
                    403 => "open_relay",
                    _ => "no_next_hop",
                });
                tracing::warn!(peer = %self.handle.peer, conn = self.handle.id, tid = %head.tid(), method = %head.method().map(Method::as_str).unwrap_or(""), status = status.code(), "request refused: {rule}");
                if forward::may_respond(head.method(), head.failure_report()) {
                    self.respond(&head, status);
                }
                if close {
                    return Err(Stop::Close(rule));
                }
                self.refused()
            }
            Decision::Outbound { next, via, pop } => {
                let is_auth = head.method() == Some(&Method::Auth);
                let target = match via {
                    Some(c) if !c.is_closed() => Ok(c),
                    // Boxed: a dial (resolution, TCP, TLS) is rare and its future large,
                    // and every connection's task would otherwise carry room for it.
                    _ => Box::pin(self.dial(&next, is_auth)).await,
                };
                match target {
                    Ok(target) => {
                        self.trust();
                        self.start_forward(head, target, pop);
                        Ok(())
                    }
                    Err(e) => {
                        // Never silence: an error response where one is allowed (before
                        // any 200), and a log line that says why (RFC 4976 §6.4.1).
                        tracing::warn!(peer = %self.handle.peer, conn = self.handle.id, next = %next, error = %e, "next hop unreachable");
                        self.shared.metrics.rejection("next_hop_unreachable");
                        if forward::may_respond(head.method(), head.failure_report()) {
                            self.respond(&head, Status::NO_SESSION);
                        }
                        Ok(())
                    }
                }
            }
            Decision::Forward { target, pop } => {
                self.trust();
                self.start_forward(head, target, pop);
                Ok(())
            }
        }
    }

    /// A connection to `next` (RFC 4976 §6.4.2), from the pool or dialled.
    async fn dial(
        &mut self,
        next: &msrp_proto::MsrpUri,
        is_auth: bool,
    ) -> Result<Arc<ConnHandle>, super::outbound::DialError> {
        // What earlier messages of this read produced does not wait for a dial.
        self.deliver_staged().await;
        self.shared
            .outbound
            .connect(next, is_auth, &self.shared)
            .await
    }

    fn start_forward(&mut self, head: Box<Head>, target: Arc<ConnHandle>, pop: usize) {
        let is_send = head.method() == Some(&Method::Send);
        let range = head.byte_range();
        let range_start = range.map_or(1, |r| r.start);
        let total = range.and_then(|r| r.total);
        let max = self.settings.limits.max_message_size;
        // Message size policy at the ingress (RFC 4975 §10.5, checklist 88).
        if is_send && (total.is_some_and(|t| t > max) || range_start - 1 > max) {
            tracing::warn!(peer = %self.handle.peer, conn = self.handle.id, tid = %head.tid(), "SEND refused: message larger than limits.max_message_size ({max})");
            self.shared.metrics.rejection("too_large");
            if head.failure_report() != FailureReport::No {
                self.respond(&head, Status::TOO_LARGE);
            }
            return;
        }
        let head: Arc<Head> = Arc::from(head);
        // The URI of ours a response must name first in To-Path (RFC 4976 §6.4.3).
        let ours = forwarded_from(head.to_path(), pop);
        let report = (is_send && head.failure_report() != FailureReport::No).then(|| {
            Arc::new(ReportTarget {
                conn: self.handle.clone(),
                head: head.clone(),
                mode: head.failure_report(),
                ours,
            })
        });
        let auth_return = (head.method() == Some(&Method::Auth)).then(|| {
            Box::new(AuthReturn {
                back: self.handle.clone(),
                tid: *head.tid(),
                ours: head.to_path()[ours].clone(),
            })
        });
        self.current = Current::Forward(Box::new(Forwarding {
            auth_return,
            head,
            target,
            pop,
            is_send,
            range_start,
            total,
            offset: 0,
            pieces: 0,
            acc: Vec::new(),
            acc_len: 0,
            acc_delim: false,
            report,
            failed: None,
        }));
    }

    /// `delim`: the decoder saw a `CRLF "-------"` in `piece`.
    fn on_body(&mut self, piece: Bytes, delim: bool) {
        let Current::Forward(fwd) = &mut self.current else {
            return;
        };
        if fwd.failed.is_some() {
            return;
        }
        let settings = &self.settings;
        let mut piece = piece;
        // Both parts of a split piece count as holding its delimiter.
        fwd.acc_delim |= delim;
        if fwd.is_send {
            let max = settings.limits.max_message_size;
            let before = fwd.range_start - 1 + fwd.offset + fwd.acc_len as u64;
            let over = before + piece.len() as u64 > max;
            if over {
                // Forward nothing beyond the limit; end the forwarded message with `#` so
                // the receiver drops it, and answer 413 (RFC 4975 §10.5).
                piece.truncate((max - before) as usize);
                tracing::warn!(peer = %self.handle.peer, conn = self.handle.id, tid = %fwd.head.tid(), "SEND stopped at limits.max_message_size ({max}): forwarded as aborted");
            }
            // Re-chunking (RFC 4976 §3, §6.4.1): a long chunk leaves as pieces of at most
            // limits.chunk_size bytes, however much one read brought in (a single read can
            // hold more than that).
            let chunk_size = settings.limits.chunk_size.max(1);
            while fwd.acc_len + piece.len() > chunk_size && fwd.failed.is_none() {
                let part = piece.split_to(chunk_size - fwd.acc_len);
                fwd.acc_len += part.len();
                fwd.acc.push(part);
                flush(&self.shared, &mut self.staged, fwd, Flag::More);
                fwd.acc_delim = delim;
            }
            if over {
                fwd.acc_len += piece.len();
                fwd.acc.push(piece);
                if fwd.failed.is_none() {
                    flush(&self.shared, &mut self.staged, fwd, Flag::Abort);
                }
                fwd.failed = Some(Status::TOO_LARGE);
                return;
            }
        }
        fwd.acc_len += piece.len();
        fwd.acc.push(piece);
    }

    fn on_end(&mut self, flag: Flag) -> Result<(), Stop> {
        let current = std::mem::replace(&mut self.current, Current::Idle);
        let Current::Forward(mut fwd) = current else {
            return Ok(());
        };
        if fwd.failed.is_none() {
            flush(&self.shared, &mut self.staged, &mut fwd, flag);
        }
        // Hop-by-hop response to SEND (RFC 4976 §6.4.1; RFC 4975 §7.1.4): 200 for `yes`, an
        // error for `yes` or `partial` when forwarding failed, nothing for `no`.
        if fwd.is_send {
            let answer = match (fwd.head.failure_report(), fwd.failed) {
                (FailureReport::Yes, None) => Some(Status::OK),
                (FailureReport::Yes | FailureReport::Partial, Some(status)) => Some(status),
                _ => None,
            };
            if let Some(status) = answer {
                self.respond(&fwd.head, status);
            }
        }
        Ok(())
    }

    /// A response to a request this relay sent on this connection (RFC 4976 §6.4.3).
    fn on_response(&mut self, head: &Head) {
        let code = head.response_code().unwrap_or(0);
        let answer = self
            .handle
            .transactions()
            .answer(head.tid(), &head.to_path()[0]);
        let pending = match answer {
            Answer::Matched(pending) => pending,
            Answer::Unknown => {
                tracing::debug!(peer = %self.handle.peer, conn = self.handle.id, tid = %head.tid(), "response matches no transaction; dropped (RFC 4976 §6.4.3)");
                return;
            }
            Answer::Misaddressed => {
                tracing::info!(peer = %self.handle.peer, conn = self.handle.id, tid = %head.tid(), to = %head.to_path()[0], "response not addressed to the URI the request was sent from; dropped (RFC 4976 §6.4.3)");
                self.shared.metrics.rejection("misaddressed_response");
                return;
            }
        };
        match pending {
            Pending::Send { report, range } => {
                // A SEND response is never forwarded (RFC 4975 §7.2); a failure becomes a
                // REPORT to the sender (RFC 4976 §6.4.3).
                if code != 200 {
                    let comment = std::str::from_utf8(match head.start_line() {
                        msrp_proto::StartLine::Response { comment, .. } => comment,
                        _ => &[],
                    })
                    .unwrap_or("");
                    send_report(
                        &self.shared,
                        &mut self.staged,
                        &report,
                        range,
                        Status(code),
                        comment,
                    );
                }
            }
            Pending::Auth(auth) => {
                let AuthReturn { back, tid, .. } = *auth;
                // An AUTH response travels on (RFC 4976 §6.4.3): our URI moves from To-Path
                // to From-Path, the client's tid comes back, every other header is untouched.
                if head.to_path().len() < 2 {
                    tracing::info!(peer = %self.handle.peer, conn = self.handle.id, "AUTH response with nothing after our URI in To-Path; dropped");
                    return;
                }
                let mut buf = BytesMut::with_capacity(head.raw().len() + 64);
                write_forward_head(&mut buf, head, &tid, 1, None);
                write_end_line(&mut buf, &tid, Flag::Complete, false);
                // If the client is gone, it is dropped (RFC 4976 §6.4.3), with a log line.
                self.staged
                    .push(&back, Class::Ctrl, Frame::whole(buf.freeze()));
            }
        }
    }

    /// Deliver what acting on the last read produced. Frames for a connection that is gone
    /// are dropped with a log line; a SEND piece among them was forwarded and is now lost, so
    /// its sender gets a REPORT (RFC 4976 §6.4.1), as it would for a piece lost in the queue.
    async fn deliver_staged(&mut self) {
        // Reports about lost pieces are staged in turn; they are delivered in the second round.
        for _ in 0..2 {
            if self.staged.is_empty() {
                return;
            }
            for (conn, frames) in self.staged.deliver().await {
                tracing::info!(peer = %conn.peer, conn = conn.id, frames = frames.len(), "frames dropped: the connection is gone");
                for tid in frames.iter().filter_map(|f| f.track.as_ref()) {
                    let pending = conn.transactions().complete(tid);
                    if let Some(Pending::Send { report, range }) = pending {
                        send_report(
                            &self.shared,
                            &mut self.staged,
                            &report,
                            range,
                            Status::NO_SESSION,
                            "next hop connection is gone",
                        );
                    }
                }
            }
        }
    }

    /// Transactions whose 30 s ran out without a response: REPORT 408 (RFC 4976 §6.4.1).
    fn expire_transactions(&mut self) {
        let expired = self
            .handle
            .transactions()
            .expired(std::time::Instant::now());
        for p in expired {
            let Pending::Send { report, range } = p else {
                continue;
            };
            tracing::info!(peer = %self.handle.peer, conn = self.handle.id, "next hop did not answer in time; REPORT 408 to the sender");
            send_report(
                &self.shared,
                &mut self.staged,
                &report,
                range,
                Status::TIMEOUT,
                "no response from the next hop",
            );
        }
    }

    async fn shutdown(mut self, writer: tokio::task::JoinHandle<()>) {
        self.handle.close();
        // Once the writer is gone nothing more can be queued here, so the transactions
        // drained below are all there will be.
        let _ = writer.await;
        for token in lock(&self.handle.tokens).drain(..) {
            self.shared.table.remove(&token);
        }
        if let Origin::Outbound(key) = &self.handle.origin {
            self.shared.outbound.forget(key, self.handle.id);
        }
        // A sender that vanished mid-chunk: end what was forwarded with `#` so the receiver
        // drops the partial message (RFC 4975 §7.1.1).
        if let Current::Forward(mut fwd) = std::mem::replace(&mut self.current, Current::Idle) {
            if fwd.failed.is_none() && (fwd.pieces > 0 || fwd.acc_len > 0) {
                fwd.report = None;
                flush(&self.shared, &mut self.staged, &mut fwd, Flag::Abort);
            }
        }
        // Every request still outstanding on this connection failed: tell the senders
        // (checklist item 76), never silence.
        let outstanding = self.handle.transactions().drain();
        if !outstanding.is_empty() {
            tracing::info!(peer = %self.handle.peer, conn = self.handle.id, count = outstanding.len(), "connection closed with outstanding transactions; sending REPORTs");
        }
        for p in outstanding {
            let Pending::Send { report, range } = p else {
                continue;
            };
            send_report(
                &self.shared,
                &mut self.staged,
                &report,
                range,
                Status::TIMEOUT,
                "next hop connection closed",
            );
        }
        self.deliver_staged().await;
        tracing::debug!(peer = %self.handle.peer, conn = self.handle.id, "connection closed");
    }
}

fn send_report(
    shared: &Shared,
    staged: &mut Staged,
    target: &ReportTarget,
    range: ByteRange,
    status: Status,
    comment: &str,
) {
    shared.metrics.report(status.code());
    if let Some(frame) = report::failure_report(target, range, status, comment) {
        staged.push(&target.conn, Class::Ctrl, frame);
    }
}

/// Send the gathered piece to the next hop with `flag`: a fresh tid that does not occur in
/// the body (RFC 4976 §6.4; searched for only when the decoder saw a delimiter in it), the head rewritten (RFC 4976 §6.4.1), and the Byte-Range of the
/// piece when the chunk leaves in more than one piece.
/// The frame is staged: it leaves once the current read is processed.
fn flush(shared: &Shared, staged: &mut Staged, fwd: &mut Forwarding, flag: Flag) {
    let body = std::mem::take(&mut fwd.acc);
    let len = std::mem::take(&mut fwd.acc_len) as u64;
    if fwd.target.is_closed() {
        tracing::info!(peer = %fwd.target.peer, conn = fwd.target.id, "next hop connection is gone");
        fwd.failed = Some(Status::NO_SESSION);
        return;
    }
    let whole = fwd.pieces == 0 && flag != Flag::More;
    let delim = std::mem::take(&mut fwd.acc_delim);
    // Positions count from 1; an empty piece ends one before it starts (RFC 4975 §7.1.1).
    let start = fwd.range_start + fwd.offset;
    let range = ByteRange {
        start,
        end: Some(start + len - 1),
        total: fwd.total,
    };
    let pending = match (&fwd.report, &fwd.auth_return) {
        (Some(report), _) => Some((
            Pending::Send {
                report: report.clone(),
                range,
            },
            report.mode == FailureReport::Yes,
        )),
        (None, Some(auth)) => Some((Pending::Auth(auth.clone()), false)),
        (None, None) => None,
    };
    // A tid that is not outstanding on the next hop, checked and recorded under one lock so
    // that no other reader forwarding there can take it in between (the body is searched as
    // well only when the decoder saw a delimiter in it, RFC 4976 §6.4).
    let (tid, track) = {
        let mut txns = fwd.target.transactions();
        let tid = fresh_tid_for(&body, delim, |t| txns.contains(t));
        let track = pending.map(|(p, timeout_reports)| {
            txns.insert(tid, p, timeout_reports);
            tid
        });
        (tid, track)
    };
    let mut buf = BytesMut::with_capacity(fwd.head.raw().len() + 128);
    write_forward_head(
        &mut buf,
        &fwd.head,
        &tid,
        fwd.pop,
        (!whole).then_some(range),
    );
    let head = buf.split().freeze();
    write_end_line(&mut buf, &tid, flag, fwd.head.has_body());
    let end = buf.freeze();
    let frame = Frame {
        head,
        body,
        end,
        track,
    };
    let class = if fwd.is_send {
        Class::Data
    } else {
        Class::Ctrl
    };
    staged.push(&fwd.target, class, frame);
    if let Some(method) = fwd.head.method() {
        shared.metrics.forwarded(method, len);
    }
    fwd.offset += len;
    fwd.pieces += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::credentials::UsersFile;

    /// An idle connection holds its two task futures for as long as it lives, so their size
    /// is most of its memory (BENCHMARKS.md: idle KiB per connection). Rare, large awaits
    /// (shutdown, a dial, queueing for room, the writer's final drain) are boxed so that
    /// the tasks do not carry room for them; this fails when a change puts one back inline.
    /// Measured: reader 2,168 bytes, writer 752 (the reader was about 5,900 before the
    /// boxing, and 2,408 while its two timers were inline).
    #[tokio::test]
    async fn idle_connection_tasks_stay_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let shared = Arc::new(Shared::new(
            Settings::defaults(),
            UsersFile::single("u", "relay.test", "p"),
            super::super::TlsSetup {
                server: None,
                client: None,
            },
        ));
        let local = LocalEnd {
            scheme: Scheme::Msrp,
            port: addr.port(),
            secure: false,
        };
        let opened = Opened {
            stream: Stream::Tcp(server),
            peer,
            local,
            peer_cert: None,
            origin: Origin::Inbound,
            guard: None,
        };
        let (handle, writer, reader) = actor(opened, &shared);
        let reader = reader.run(tokio::spawn(async {}));
        let (r, w) = (
            std::mem::size_of_val(&reader),
            std::mem::size_of_val(&writer),
        );
        assert!(r <= 2300, "reader task future: {r} bytes");
        assert!(w <= 800, "writer task future: {w} bytes");
        handle.close();
        drop(client);
    }
}
