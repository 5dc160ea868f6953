//! An MSRP client on top of `msrp_proto`: connect over TCP or TLS, AUTH with Digest
//! (RFC 4976 §5.1, §9.1), send requests and read whole messages. The CLI, the tests and the
//! benchmark use it.
//!
//! A [`Connection`] is deliberately simple: one task owns it, writes whole frames and reads
//! whole messages. Bodies are gathered in memory, so it is meant for test traffic and probes,
//! not for relaying.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use msrp_proto::digest::{response_auth, Credentials};
use msrp_proto::encoder::{write_end_line, HeadWriter};
use msrp_proto::{
    ByteRange, DecodeError, Decoder, Event, Flag, Head, HeaderName, Limits, Method, MsrpUri,
    TransactionId,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::relay::transaction::{fresh_tid, new_tid};

/// Why a client operation failed; the CLI maps these to exit codes.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    #[error("the peer closed the connection")]
    Closed,
    #[error("malformed MSRP from the peer: {0}")]
    Protocol(#[from] DecodeError),
    #[error("{0}")]
    Unexpected(String),
    /// The relay or the peer answered with an error status.
    #[error("{code} {phrase}")]
    Status { code: u16, phrase: String },
    /// A failure REPORT about a message we sent (RFC 4975 §7.1.2).
    #[error("failure REPORT: {code} {phrase}")]
    Report { code: u16, phrase: String },
}

/// A whole received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub head: Head,
    pub body: Bytes,
    pub flag: Flag,
}

impl Message {
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A client connection to a relay or peer.
pub struct Connection {
    io: Box<dyn Io>,
    decoder: Decoder,
    buf: BytesMut,
    peer: SocketAddr,
}

impl Connection {
    pub async fn connect_tcp(addr: SocketAddr) -> Result<Connection, ClientError> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        Ok(Connection::from_io(Box::new(tcp), addr))
    }

    /// TLS with SNI `server_name`, verified by `config` (RFC 4975 §14.2, RFC 4976 §9.2).
    pub async fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Connection, ClientError> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| ClientError::Tls(format!("bad server name {server_name:?}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Connection::from_io(Box::new(tls), addr))
    }

    /// A connection accepted by a listener of ours (an endpoint in a test or a probe).
    pub fn accepted(tcp: TcpStream) -> Result<Connection, ClientError> {
        let peer = tcp.peer_addr()?;
        Ok(Connection::from_io(Box::new(tcp), peer))
    }

    fn from_io(io: Box<dyn Io>, peer: SocketAddr) -> Connection {
        Connection {
            io,
            decoder: Decoder::new(Limits::default()),
            buf: BytesMut::with_capacity(16 * 1024),
            peer,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Write raw bytes (tests use this to send exact messages).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Read the next whole message, waiting at most `timeout`.
    pub async fn read_message(&mut self, timeout: Duration) -> Result<Message, ClientError> {
        tokio::time::timeout(timeout, self.next_message())
            .await
            .map_err(|_| ClientError::Timeout(timeout, "a message"))?
    }

    /// Whether the peer closes the connection within `timeout` (anything read is discarded).
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let mut scratch = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.io.read(&mut scratch)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    /// AUTH to a relay (RFC 4976 §5.1): 401, then credentials, then 200 with Use-Path.
    /// `relay` is the relay's URI as AUTH names it (e.g. `msrps://relay.example.com;tcp`);
    /// `me` is this client's own URI (the From-Path).
    pub async fn auth(
        &mut self,
        relay: &MsrpUri,
        me: &MsrpUri,
        user: &str,
        password: &str,
        expires: Option<u64>,
        timeout: Duration,
    ) -> Result<AuthGrant, ClientError> {
        self.auth_via(
            std::slice::from_ref(relay),
            me,
            user,
            password,
            expires,
            timeout,
        )
        .await
    }

    /// AUTH along a To-Path: the URIs of relays already granted, then the relay to
    /// authenticate with (tunnelled AUTH, RFC 4976 §5.1). The digest-uri is the rightmost
    /// To-Path URI (§9.1).
    pub async fn auth_via(
        &mut self,
        to_path: &[MsrpUri],
        me: &MsrpUri,
        user: &str,
        password: &str,
        expires: Option<u64>,
        timeout: Duration,
    ) -> Result<AuthGrant, ClientError> {
        // At most two round trips: the challenge, then the answer (AuthExchange refuses
        // anything else).
        let mut exchange = AuthExchange::new(to_path.to_vec(), me.clone(), user, password, expires);
        let (mut tid, mut frame) = exchange.request();
        loop {
            self.write_raw(&frame).await?;
            let response = self.response_to(&tid, timeout).await?;
            match exchange.on_response(&response.head)? {
                AuthStep::Send(t, f) => (tid, frame) = (t, f),
                AuthStep::Granted(grant) => return Ok(grant),
            }
        }
    }

    /// Read until the response to `tid` arrives; requests that arrive meanwhile are dropped.
    pub async fn response_to(
        &mut self,
        tid: &TransactionId,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.read_message(left).await?;
            if !m.head.is_request() && m.head.tid() == tid {
                return Ok(m);
            }
        }
    }

    /// Send one SEND chunk and return its tid.
    pub async fn send(
        &mut self,
        to_path: &[MsrpUri],
        from_path: &[MsrpUri],
        opts: &SendOptions<'_>,
        body: &[u8],
    ) -> Result<TransactionId, ClientError> {
        let tid = new_tid();
        let mut buf = BytesMut::with_capacity(body.len() + 512);
        let mut w = HeadWriter::request(&mut buf, &tid, &Method::Send);
        w.path(HeaderName::ToPath, to_path)
            .path(HeaderName::FromPath, from_path);
        w.header("Message-ID", opts.message_id.as_bytes());
        if let Some(r) = opts.byte_range {
            w.byte_range(r);
        } else {
            let n = body.len() as u64;
            w.byte_range(ByteRange {
                start: 1,
                end: Some(n),
                total: Some(n),
            });
        }
        if let Some(sr) = opts.success_report {
            w.header("Success-Report", if sr { b"yes" } else { b"no" });
        }
        if let Some(fr) = opts.failure_report {
            w.header("Failure-Report", fr.as_bytes());
        }
        w.header("Content-Type", opts.content_type.as_bytes());
        w.finish(true);
        buf.extend_from_slice(body);
        write_end_line(&mut buf, &tid, opts.flag, true);
        self.write_raw(&buf).await?;
        Ok(tid)
    }

    /// Answer a received request with a status (To-Path is the sender: RFC 4975 §7.2).
    pub async fn respond(
        &mut self,
        request: &Head,
        code: u16,
        phrase: &str,
    ) -> Result<(), ClientError> {
        self.write_raw(&response_frame(request, code, phrase)).await
    }
}

/// Options of a SEND.
pub struct SendOptions<'a> {
    pub message_id: &'a str,
    pub content_type: &'a str,
    pub byte_range: Option<ByteRange>,
    pub success_report: Option<bool>,
    pub failure_report: Option<&'a str>,
    pub flag: Flag,
}

impl Default for SendOptions<'_> {
    fn default() -> Self {
        SendOptions {
            message_id: "msg00001",
            content_type: "text/plain",
            byte_range: None,
            success_report: None,
            failure_report: None,
            flag: Flag::Complete,
        }
    }
}

/// What a successful AUTH grants.
#[derive(Debug, Clone)]
pub struct AuthGrant {
    /// The URIs to put first in To-Path, in order (RFC 4976 §4.2).
    pub use_path: Vec<MsrpUri>,
    pub expires: Option<u64>,
}

fn status_error(head: &Head) -> ClientError {
    match head.start_line() {
        msrp_proto::StartLine::Response { code, comment, .. } => ClientError::Status {
            code: *code,
            phrase: String::from_utf8_lossy(comment).into_owned(),
        },
        msrp_proto::StartLine::Request { method, .. } => {
            ClientError::Unexpected(format!("expected a response, got a {method} request"))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Additions for the command-line client (send, probe, listen).
// ---------------------------------------------------------------------------------------

/// What a TLS connection learnt while it was set up: timings for `probe`, and the server's
/// certificates as it presented them (leaf first).
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub tcp_connect: Duration,
    pub handshake: Duration,
    pub peer_certificates: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub protocol: Option<String>,
    pub cipher_suite: Option<String>,
}

/// How a message went out; see [`Connection::send_message`].
#[derive(Debug, Clone)]
pub struct SendOutcome {
    /// The transaction id of the last chunk.
    pub last_tid: TransactionId,
    /// The response to the last chunk (`None` when Failure-Report `no` or `partial` asked for
    /// no 200s).
    pub last_response: Option<Message>,
    /// The whole message: `1-N/N`.
    pub byte_range: ByteRange,
    /// SEND requests written.
    pub chunks: u64,
    /// From the first byte written to the last expected 200 (or to the last byte written when
    /// no 200 is expected).
    pub elapsed: Duration,
    /// A success REPORT for the whole message that arrived while the 200s were awaited.
    pub report: Option<Message>,
}

impl Connection {
    /// [`Connection::connect_tls`], timed, keeping what the handshake showed.
    pub async fn connect_tls_with_info(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<(Connection, TlsInfo), ClientError> {
        let started = std::time::Instant::now();
        let tcp = TcpStream::connect(addr).await?;
        let tcp_connect = started.elapsed();
        let _ = tcp.set_nodelay(true);
        let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| ClientError::Tls(format!("bad server name {server_name:?}: {e}")))?;
        let started = std::time::Instant::now();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let handshake = started.elapsed();
        let session = tls.get_ref().1;
        let info = TlsInfo {
            tcp_connect,
            handshake,
            peer_certificates: session
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            protocol: session
                .protocol_version()
                .and_then(|v| v.as_str().map(str::to_owned)),
            cipher_suite: session
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str().map(str::to_owned)),
        };
        Ok((Connection::from_io(Box::new(tls), addr), info))
    }

    /// Read the next whole message with no time limit (for listeners; cancelling it midway
    /// loses the message being read, so only cancel it to give up on the connection).
    pub async fn next_message(&mut self) -> Result<Message, ClientError> {
        read_message_from(&mut self.io, &mut self.decoder, &mut self.buf).await
    }

    /// Send one message of `total` bytes read from `body`, cut into SEND chunks of at most
    /// `chunk_size` bytes (RFC 4975 §7.1.1, §5.1): each has its own tid and Byte-Range, flag
    /// `+` then `$` on the last. Chunks are pipelined while responses are read concurrently;
    /// with Failure-Report `yes` (or absent) it returns once every chunk got its 200.
    ///
    /// `opts.byte_range` and `opts.flag` are ignored. `timeout` bounds silence: it fails when
    /// nothing was written and nothing was received for that long. A non-200 response fails
    /// with [`ClientError::Status`], a failure REPORT for this Message-ID with
    /// [`ClientError::Report`]. `progress` is told the number of bytes written so far.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_message<R>(
        &mut self,
        to_path: &[MsrpUri],
        from_path: &[MsrpUri],
        opts: &SendOptions<'_>,
        body: R,
        total: u64,
        chunk_size: usize,
        timeout: Duration,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<SendOutcome, ClientError>
    where
        R: AsyncRead + Unpin + Send,
    {
        use std::sync::atomic::{AtomicU64, Ordering};
        let chunk_size = chunk_size.max(1);
        let expect_200 = !matches!(opts.failure_report, Some("no") | Some("partial"));
        let base = tokio::time::Instant::now();
        // Milliseconds after `base` of the last byte written or message read.
        let activity = AtomicU64::new(0);
        let touch = || activity.store(base.elapsed().as_millis() as u64, Ordering::Relaxed);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TransactionId>();
        let (mut rd, mut wr) = tokio::io::split(&mut self.io);
        let decoder = &mut self.decoder;
        let rbuf = &mut self.buf;

        let writer = async {
            let mut body = body;
            let mut frame = BytesMut::new();
            let mut chunk = vec![0u8; chunk_size.min(usize::try_from(total).unwrap_or(usize::MAX))];
            let mut offset = 0u64;
            let mut chunks = 0u64;
            let last_tid = loop {
                let want =
                    usize::try_from((total - offset).min(chunk_size as u64)).unwrap_or(chunk_size);
                let piece = &mut chunk[..want];
                if let Err(e) = body.read_exact(piece).await {
                    return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        ClientError::Unexpected(format!(
                            "the body ended after {offset} of {total} bytes"
                        ))
                    } else {
                        ClientError::Io(e)
                    });
                }
                let end = offset + want as u64;
                let flag = if end == total {
                    Flag::Complete
                } else {
                    Flag::More
                };
                let tid = fresh_tid(std::slice::from_ref(&piece), |_| false);
                frame.clear();
                let mut w = HeadWriter::request(&mut frame, &tid, &Method::Send);
                w.path(HeaderName::ToPath, to_path)
                    .path(HeaderName::FromPath, from_path);
                w.header("Message-ID", opts.message_id.as_bytes());
                w.byte_range(ByteRange {
                    start: offset + 1,
                    end: Some(end),
                    total: Some(total),
                });
                if let Some(sr) = opts.success_report {
                    w.header("Success-Report", if sr { b"yes" } else { b"no" });
                }
                if let Some(fr) = opts.failure_report {
                    w.header("Failure-Report", fr.as_bytes());
                }
                // A SEND without a body has no Content-Type (RFC 4975 §7.1).
                if total > 0 {
                    w.header("Content-Type", opts.content_type.as_bytes());
                }
                w.finish(total > 0);
                frame.extend_from_slice(piece);
                write_end_line(&mut frame, &tid, flag, total > 0);
                // Registered before it is written, so its response always finds it.
                if expect_200 {
                    let _ = tx.send(tid);
                }
                wr.write_all(&frame).await?;
                chunks += 1;
                offset = end;
                touch();
                progress(offset);
                if flag == Flag::Complete {
                    break tid;
                }
            };
            wr.flush().await?;
            drop(tx);
            Ok::<_, ClientError>((last_tid, chunks, base.elapsed()))
        };

        let reader = async {
            let mut pending = std::collections::HashSet::new();
            let mut writer_done = false;
            let mut last_response = None;
            let mut report = None;
            loop {
                if writer_done && pending.is_empty() {
                    return Ok((last_response, report, base.elapsed()));
                }
                let read = read_message_from(&mut rd, decoder, rbuf);
                tokio::pin!(read);
                let message = loop {
                    let idle_until =
                        base + Duration::from_millis(activity.load(Ordering::Relaxed)) + timeout;
                    tokio::select! {
                        m = &mut read => break Some(m?),
                        registered = rx.recv(), if !writer_done => match registered {
                            Some(tid) => { pending.insert(tid); }
                            None => {
                                writer_done = true;
                                if pending.is_empty() { break None; }
                            }
                        },
                        _ = tokio::time::sleep_until(idle_until) => {
                            let last = base
                                + Duration::from_millis(activity.load(Ordering::Relaxed));
                            if last + timeout <= tokio::time::Instant::now() {
                                return Err(ClientError::Timeout(timeout, "the relay's responses"));
                            }
                        }
                    }
                };
                let Some(m) = message else { continue };
                touch();
                if m.head.is_request() {
                    if m.head.method() == Some(&Method::Report)
                        && m.head.message_id() == Some(opts.message_id.as_bytes())
                    {
                        check_report(&m)?;
                        if report_covers(&m, total) {
                            report = Some(m);
                        }
                    }
                    continue;
                }
                while let Ok(tid) = rx.try_recv() {
                    pending.insert(tid);
                }
                if pending.remove(m.head.tid()) {
                    if m.head.response_code() != Some(200) {
                        return Err(status_error(&m.head));
                    }
                    last_response = Some(m);
                }
            }
        };

        let ((last_tid, chunks, written), (last_response, report, answered)) =
            tokio::try_join!(writer, reader)?;
        Ok(SendOutcome {
            last_tid,
            elapsed: if expect_200 { answered } else { written },
            last_response,
            byte_range: ByteRange {
                start: 1,
                end: Some(total),
                total: Some(total),
            },
            chunks,
            report,
        })
    }

    /// Wait for the success REPORT of message `message_id` (of `total` bytes): a REPORT with
    /// status 200 whose Byte-Range reaches the end (RFC 4975 §7.1.2). A failure REPORT fails
    /// with [`ClientError::Report`]; other messages are dropped.
    pub async fn wait_report(
        &mut self,
        message_id: &str,
        total: u64,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = tokio::time::timeout(left, self.next_message())
                .await
                .map_err(|_| ClientError::Timeout(timeout, "the success REPORT"))??;
            if m.head.method() == Some(&Method::Report)
                && m.head.message_id() == Some(message_id.as_bytes())
            {
                check_report(&m)?;
                if report_covers(&m, total) {
                    return Ok(m);
                }
            }
        }
    }

    /// Send a REPORT (RFC 4975 §7.1.2): `to_path` is the received From-Path, `from` our URI.
    /// REPORTs get no response.
    pub async fn report(
        &mut self,
        to_path: &[MsrpUri],
        from: &MsrpUri,
        message_id: &[u8],
        byte_range: ByteRange,
        code: u16,
        comment: &str,
    ) -> Result<TransactionId, ClientError> {
        let (tid, frame) = report_frame(to_path, from, message_id, byte_range, code, comment);
        self.write_raw(&frame).await?;
        Ok(tid)
    }
}

/// A failure REPORT (status other than 200) as an error.
fn check_report(m: &Message) -> Result<(), ClientError> {
    match m.head.status() {
        Some(s) if s.code == 200 => Ok(()),
        Some(s) => Err(ClientError::Report {
            code: s.code,
            phrase: String::from_utf8_lossy(&s.comment).into_owned(),
        }),
        None => Err(ClientError::Unexpected("a REPORT without Status".into())),
    }
}

/// Whether a success REPORT acknowledges the message up to its last byte.
fn report_covers(m: &Message, total: u64) -> bool {
    m.head
        .byte_range()
        .is_none_or(|r| r.end.is_none_or(|end| end >= total))
}

/// [`Connection::next_message`] on any reader, so that a split connection can read while it
/// writes.
async fn read_message_from<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    decoder: &mut Decoder,
    buf: &mut BytesMut,
) -> Result<Message, ClientError> {
    let mut head: Option<Head> = None;
    let mut body = BytesMut::new();
    loop {
        while let Some(ev) = decoder.decode(buf)? {
            match ev {
                Event::Head(h) => head = Some(*h),
                Event::Body(b) => body.extend_from_slice(&b),
                Event::End(flag) => {
                    let head = head
                        .take()
                        .ok_or(ClientError::Unexpected("end-line without head".into()))?;
                    return Ok(Message {
                        head,
                        body: body.freeze(),
                        flag,
                    });
                }
            }
        }
        buf.reserve(16 * 1024);
        if io.read_buf(buf).await? == 0 {
            return Err(ClientError::Closed);
        }
    }
}

/// The reading half of a split [`Connection`] (see [`Connection::into_split`]).
pub struct MessageReader {
    io: tokio::io::ReadHalf<Box<dyn Io>>,
    decoder: Decoder,
    buf: BytesMut,
}

impl MessageReader {
    /// Read the next whole message. Not cancel-safe: run it in a task of its own.
    pub async fn next_message(&mut self) -> Result<Message, ClientError> {
        read_message_from(&mut self.io, &mut self.decoder, &mut self.buf).await
    }

    /// The next message within `timeout` (a message half-read when it expires is lost).
    pub async fn read_message(&mut self, timeout: Duration) -> Result<Message, ClientError> {
        tokio::time::timeout(timeout, self.next_message())
            .await
            .map_err(|_| ClientError::Timeout(timeout, "a message"))?
    }
}

/// The writing half of a split [`Connection`].
pub struct MessageWriter {
    io: tokio::io::WriteHalf<Box<dyn Io>>,
}

impl MessageWriter {
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// As [`Connection::respond`].
    pub async fn respond(
        &mut self,
        request: &Head,
        code: u16,
        phrase: &str,
    ) -> Result<(), ClientError> {
        self.write_raw(&response_frame(request, code, phrase)).await
    }

    /// As [`Connection::report`].
    pub async fn report(
        &mut self,
        to_path: &[MsrpUri],
        from: &MsrpUri,
        message_id: &[u8],
        byte_range: ByteRange,
        code: u16,
        comment: &str,
    ) -> Result<TransactionId, ClientError> {
        let (tid, frame) = report_frame(to_path, from, message_id, byte_range, code, comment);
        self.write_raw(&frame).await?;
        Ok(tid)
    }
}

impl Connection {
    /// Split into a reader (to run in a task of its own, so that no message is ever lost to a
    /// cancelled read) and a writer.
    pub fn into_split(self) -> (MessageReader, MessageWriter) {
        let (rd, wr) = tokio::io::split(self.io);
        (
            MessageReader {
                io: rd,
                decoder: self.decoder,
                buf: self.buf,
            },
            MessageWriter { io: wr },
        )
    }
}

/// A response to `request` (To-Path is the sender: RFC 4975 §7.2).
fn response_frame(request: &Head, code: u16, phrase: &str) -> BytesMut {
    let mut buf = BytesMut::new();
    let from = request.from_path();
    let to: &[MsrpUri] = if request.method() == Some(&Method::Send) {
        &from[..1]
    } else {
        from
    };
    HeadWriter::response(&mut buf, request.tid(), code, phrase.as_bytes())
        .path(HeaderName::ToPath, to)
        .path(HeaderName::FromPath, [&request.to_path()[0]])
        .finish(false);
    write_end_line(&mut buf, request.tid(), Flag::Complete, false);
    buf
}

fn report_frame(
    to_path: &[MsrpUri],
    from: &MsrpUri,
    message_id: &[u8],
    byte_range: ByteRange,
    code: u16,
    comment: &str,
) -> (TransactionId, BytesMut) {
    let tid = new_tid();
    let mut buf = BytesMut::new();
    HeadWriter::request(&mut buf, &tid, &Method::Report)
        .path(HeaderName::ToPath, to_path)
        .path(HeaderName::FromPath, [from])
        .header("Message-ID", message_id)
        .byte_range(byte_range)
        .status(code, comment)
        .finish(false);
    write_end_line(&mut buf, &tid, Flag::Complete, false);
    (tid, buf)
}

/// The steps of a Digest AUTH (RFC 4976 §5.1, §9.1) for a caller that drives the exchange
/// itself, e.g. a listener refreshing its URI while messages keep arriving:
/// [`AuthExchange::request`], then [`AuthExchange::on_response`] for each response until it
/// yields a grant.
pub struct AuthExchange {
    to_path: Vec<MsrpUri>,
    me: MsrpUri,
    user: String,
    password: String,
    expires: Option<u64>,
    /// Set once the challenge was answered.
    answer: Option<(Credentials, String)>,
}

/// What to do after a response to an AUTH.
pub enum AuthStep {
    /// Write this request (the answer to the challenge) and wait for its response.
    Send(TransactionId, BytesMut),
    /// Done.
    Granted(AuthGrant),
}

impl AuthExchange {
    pub fn new(
        to_path: Vec<MsrpUri>,
        me: MsrpUri,
        user: &str,
        password: &str,
        expires: Option<u64>,
    ) -> AuthExchange {
        AuthExchange {
            to_path,
            me,
            user: user.to_owned(),
            password: password.to_owned(),
            expires,
            answer: None,
        }
    }

    /// The first AUTH request, without credentials.
    pub fn request(&self) -> (TransactionId, BytesMut) {
        self.frame(None)
    }

    fn frame(&self, creds: Option<&Credentials>) -> (TransactionId, BytesMut) {
        let tid = new_tid();
        let mut buf = BytesMut::new();
        let mut w = HeadWriter::request(&mut buf, &tid, &Method::Auth);
        w.path(HeaderName::ToPath, &self.to_path)
            .path(HeaderName::FromPath, [&self.me]);
        if let Some(c) = creds {
            w.header("Authorization", c.to_header_value().as_bytes());
        }
        if let Some(e) = self.expires {
            w.number("Expires", e);
        }
        w.finish(false);
        write_end_line(&mut buf, &tid, Flag::Complete, false);
        (tid, buf)
    }

    fn digest_uri(&self) -> Result<&MsrpUri, ClientError> {
        self.to_path
            .last()
            .ok_or_else(|| ClientError::Unexpected("AUTH needs a To-Path".into()))
    }

    /// Handle the response to the last request written.
    pub fn on_response(&mut self, response: &Head) -> Result<AuthStep, ClientError> {
        let relay = self.digest_uri()?.clone();
        match self.answer.take() {
            None => {
                if response.response_code() != Some(401) {
                    return Err(status_error(response));
                }
                let challenge = response
                    .www_authenticate()
                    .ok_or_else(|| ClientError::Unexpected("401 without WWW-Authenticate".into()))?
                    .map_err(|e| ClientError::Unexpected(format!("bad WWW-Authenticate: {e}")))?;
                if !challenge.supports_auth_md5() {
                    return Err(ClientError::Unexpected(
                        "the relay offers no qop=auth with MD5".into(),
                    ));
                }
                let ha1 = msrp_proto::digest::ha1(&self.user, &challenge.realm, &self.password);
                let cnonce = new_tid().to_string();
                let creds =
                    Credentials::answer(&challenge, &self.user, &ha1, relay.as_str(), &cnonce, 1);
                let (tid, frame) = self.frame(Some(&creds));
                self.answer = Some((creds, ha1));
                Ok(AuthStep::Send(tid, frame))
            }
            Some((creds, ha1)) => {
                if response.response_code() != Some(200) {
                    return Err(status_error(response));
                }
                let use_path = response
                    .use_path()
                    .ok_or_else(|| ClientError::Unexpected("200 without Use-Path".into()))?
                    .to_vec();
                let info = response
                    .authentication_info()
                    .ok_or_else(|| {
                        ClientError::Unexpected(
                            "200 without Authentication-Info (RFC 4976 §9.1)".into(),
                        )
                    })?
                    .map_err(|e| {
                        ClientError::Unexpected(format!("bad Authentication-Info: {e}"))
                    })?;
                let want =
                    response_auth(&ha1, &creds.nonce, &creds.nc, &creds.cnonce, relay.as_str());
                if info.rspauth.as_deref() != Some(want.as_str()) {
                    return Err(ClientError::Unexpected(
                        "the relay's rspauth is wrong".into(),
                    ));
                }
                Ok(AuthStep::Granted(AuthGrant {
                    use_path,
                    expires: response.expires(),
                }))
            }
        }
    }
}
