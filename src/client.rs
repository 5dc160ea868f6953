//! An MSRP client on top of `msrp_proto`: connect over TCP or TLS, AUTH with Digest
//! (RFC 4976 §5.1, §9.1), send requests and read whole messages. The CLI, the tests and the
//! benchmark use it.
//!
//! A [`Connection`] is deliberately simple: one task owns it, writes whole frames and reads
//! whole messages. Bodies are gathered in memory, so it is meant for test traffic and probes,
//! not for relaying.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use msrp_proto::digest::{response_auth, Credentials};
use msrp_proto::encoder::{write_end_line, HeadWriter};
use msrp_proto::{
    ByteRange, DecodeError, Decoder, Event, Flag, Head, HeaderName, Limits, Method, MsrpUri,
    TransactionId,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::relay::transaction::new_tid;

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

    /// Split into a reading and a writing connection, so that one task can write a long
    /// chunk while another reads what arrives meanwhile. The reading half keeps what was
    /// already buffered; writing on it (or reading from the writing half) fails.
    pub fn into_split(self) -> (Connection, Connection) {
        let (rd, wr) = tokio::io::split(self.io);
        let reader = Connection {
            io: Box::new(Half::Read(rd)),
            decoder: self.decoder,
            buf: self.buf,
            peer: self.peer,
        };
        (
            reader,
            Connection::from_io(Box::new(Half::Write(wr)), self.peer),
        )
    }

    /// Write raw bytes (tests use this to send exact messages).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Read the next whole message, waiting at most `timeout`.
    pub async fn read_message(&mut self, timeout: Duration) -> Result<Message, ClientError> {
        tokio::time::timeout(timeout, self.read_message_inner())
            .await
            .map_err(|_| ClientError::Timeout(timeout, "a message"))?
    }

    async fn read_message_inner(&mut self) -> Result<Message, ClientError> {
        let mut head: Option<Head> = None;
        let mut body = BytesMut::new();
        loop {
            while let Some(ev) = self.decoder.decode(&mut self.buf)? {
                match ev {
                    Event::Head(h) => head = Some(h),
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
            self.buf.reserve(16 * 1024);
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
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
        let relay = to_path
            .last()
            .ok_or_else(|| ClientError::Unexpected("AUTH needs a To-Path".into()))?;
        let first = self
            .request_auth(to_path, me, None, expires, timeout)
            .await?;
        if first.head.response_code() != Some(401) {
            return Err(status_error(&first.head));
        }
        let challenge = first
            .head
            .www_authenticate()
            .ok_or_else(|| ClientError::Unexpected("401 without WWW-Authenticate".into()))?
            .map_err(|e| ClientError::Unexpected(format!("bad WWW-Authenticate: {e}")))?;
        if !challenge.supports_auth_md5() {
            return Err(ClientError::Unexpected(
                "the relay offers no qop=auth with MD5".into(),
            ));
        }
        let ha1 = msrp_proto::digest::ha1(user, &challenge.realm, password);
        let cnonce = new_tid().to_string();
        let creds = Credentials::answer(&challenge, user, &ha1, relay.as_str(), &cnonce, 1);
        let second = self
            .request_auth(to_path, me, Some(&creds), expires, timeout)
            .await?;
        if second.head.response_code() != Some(200) {
            return Err(status_error(&second.head));
        }
        let use_path = second
            .head
            .use_path()
            .ok_or_else(|| ClientError::Unexpected("200 without Use-Path".into()))?
            .to_vec();
        // Mutual authentication: the relay proves it knows HA1 too (RFC 2617 §3.2.3).
        let info = second
            .head
            .authentication_info()
            .ok_or_else(|| {
                ClientError::Unexpected("200 without Authentication-Info (RFC 4976 §9.1)".into())
            })?
            .map_err(|e| ClientError::Unexpected(format!("bad Authentication-Info: {e}")))?;
        let want = response_auth(&ha1, &creds.nonce, &creds.nc, &creds.cnonce, relay.as_str());
        if info.rspauth.as_deref() != Some(want.as_str()) {
            return Err(ClientError::Unexpected(
                "the relay's rspauth is wrong".into(),
            ));
        }
        Ok(AuthGrant {
            use_path,
            expires: second.head.expires(),
        })
    }

    async fn request_auth(
        &mut self,
        to_path: &[MsrpUri],
        me: &MsrpUri,
        creds: Option<&Credentials>,
        expires: Option<u64>,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        let tid = new_tid();
        let mut buf = BytesMut::new();
        let mut w = HeadWriter::request(&mut buf, &tid, &Method::Auth);
        w.path(HeaderName::ToPath, to_path)
            .path(HeaderName::FromPath, [me]);
        if let Some(c) = creds {
            w.header("Authorization", c.to_header_value().as_bytes());
        }
        if let Some(e) = expires {
            w.number("Expires", e);
        }
        w.finish(false);
        write_end_line(&mut buf, &tid, Flag::Complete, false);
        self.write_raw(&buf).await?;
        self.response_to(&tid, timeout).await
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
        self.write_raw(&buf).await
    }
}

/// One half of a split connection; the missing direction fails with an error.
enum Half {
    Read(tokio::io::ReadHalf<Box<dyn Io>>),
    Write(tokio::io::WriteHalf<Box<dyn Io>>),
}

fn wrong_half(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("{what} on the other half of a split connection"),
    )
}

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Half::Read(r) => Pin::new(r).poll_read(cx, buf),
            Half::Write(_) => Poll::Ready(Err(wrong_half("read"))),
        }
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Half::Write(w) => Pin::new(w).poll_write(cx, buf),
            Half::Read(_) => Poll::Ready(Err(wrong_half("write"))),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Half::Write(w) => Pin::new(w).poll_flush(cx),
            Half::Read(_) => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Half::Write(w) => Pin::new(w).poll_shutdown(cx),
            Half::Read(_) => Poll::Ready(Ok(())),
        }
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
