//! Connections for the benchmark: plain TCP or TLS streams with cheap read and write halves,
//! optional source-address binding, and an AUTH that works with relays that challenge (ours)
//! and relays that answer 200 at once (Kamailio without WITH_AUTH).

use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::BytesMut;
use msrp_proto::digest::{ha1, response_auth, Credentials};
use msrp_proto::encoder::{write_end_line, HeadWriter};
use msrp_proto::{Decoder, Event, Flag, Head, HeaderName, Limits, Method, MsrpUri};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use msrp_relay::relay::transaction::new_tid;

/// Where the benchmark connects and how it authenticates.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// TLS configuration and SNI name; `None` for plain TCP.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// The AUTH To-Path (RFC 4976 §5.1), e.g. `msrp://relay.example.com:2855;tcp`.
    pub relay_uri: MsrpUri,
    /// Digest user and password, if the relay challenges.
    pub credentials: Option<(String, String)>,
    /// Bound on every connect, handshake and AUTH round trip.
    pub timeout: Duration,
}

/// A rustls client configuration: verified against `ca` (or the system store), or accepting
/// any certificate with `insecure` (benchmarks against self-signed relays only).
pub fn tls_config(ca: Option<&Path>, insecure: bool) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    if insecure {
        return Ok(msrp_relay::commands::dangerous::insecure_client_config()?);
    }
    Ok(msrp_relay::tls::client_config(ca, None)?)
}

/// A connected socket, plain or TLS.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

pub enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

pub enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

impl Stream {
    /// Connect to `target`, from `source` when given (bind before connect, so that many
    /// connections can spread over 127.0.0.x and not run out of ports).
    pub async fn connect(target: &Target, source: Option<IpAddr>) -> anyhow::Result<Stream> {
        let tcp = tokio::time::timeout(target.timeout, connect_tcp(target.addr, source))
            .await
            .map_err(|_| anyhow!("connect to {} timed out", target.addr))?
            .with_context(|| format!("connect to {}", target.addr))?;
        let _ = tcp.set_nodelay(true);
        let Some((config, name)) = &target.tls else {
            return Ok(Stream::Tcp(tcp));
        };
        let tls = tokio::time::timeout(
            target.timeout,
            tokio_rustls::TlsConnector::from(config.clone()).connect(name.clone(), tcp),
        )
        .await
        .map_err(|_| anyhow!("TLS handshake with {} timed out", target.addr))?
        .with_context(|| format!("TLS handshake with {}", target.addr))?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    no_port_at_bind(&socket);
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(addr).await
}

/// IP_BIND_ADDRESS_NO_PORT: let connect() pick the port by the whole 4-tuple, instead of
/// bind() searching for a port unused on the source address (slow with thousands in use).
fn no_port_at_bind(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the stated size.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

macro_rules! delegate_read {
    ($t:ty, $($v:ident),+) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($t:ty, $($v:ident),+) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_write_vectored(cx, bufs),)+
                }
            }
            fn is_write_vectored(&self) -> bool {
                true
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_flush(cx),)+
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

delegate_read!(Stream, Tcp, Tls);
delegate_write!(Stream, Tcp, Tls);
delegate_read!(ReadHalf, Tcp, Tls);
delegate_write!(WriteHalf, Tcp, Tls);

/// Write every slice, however the socket splits the writes.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !slices.is_empty() {
        let n = w.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// A stream with an MSRP decoder and its input buffer.
pub struct MsrpConn {
    pub io: Stream,
    pub decoder: Decoder,
    pub buf: BytesMut,
}

/// A whole message with its body dropped (AUTH responses have none).
pub struct Received {
    pub head: Box<Head>,
}

impl MsrpConn {
    pub fn new(io: Stream) -> MsrpConn {
        MsrpConn {
            io,
            decoder: Decoder::new(Limits::default()),
            buf: BytesMut::with_capacity(8 * 1024),
        }
    }

    /// Read one whole message, discarding its body.
    pub async fn read_message(&mut self, timeout: Duration) -> anyhow::Result<Received> {
        tokio::time::timeout(timeout, async {
            let mut head: Option<Box<Head>> = None;
            loop {
                while let Some(ev) = self.decoder.decode(&mut self.buf)? {
                    match ev {
                        Event::Head(h) => head = Some(h),
                        Event::Body(_) => {}
                        Event::End(_) => {
                            let head = head
                                .take()
                                .ok_or_else(|| anyhow!("end-line without head"))?;
                            return Ok(Received { head });
                        }
                    }
                }
                self.buf.reserve(8 * 1024);
                if self.io.read_buf(&mut self.buf).await? == 0 {
                    bail!("the relay closed the connection");
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no message within {timeout:?}"))?
    }

    /// AUTH to the relay (RFC 4976 §5.1) as `me`; returns the Use-Path. A relay that
    /// answers 200 at once (no Digest) is accepted; a 401 is answered with the credentials.
    pub async fn auth(&mut self, target: &Target, me: &MsrpUri) -> anyhow::Result<Vec<MsrpUri>> {
        let relay = &target.relay_uri;
        let first = self.auth_request(target, me, None).await?;
        let (resp, creds) = match first.head.response_code() {
            Some(200) => (first, None),
            Some(401) => {
                let Some((user, password)) = &target.credentials else {
                    bail!("the relay wants Digest credentials: give --user and --password");
                };
                let challenge = first
                    .head
                    .www_authenticate()
                    .ok_or_else(|| anyhow!("401 without WWW-Authenticate"))?
                    .map_err(|e| anyhow!("bad WWW-Authenticate: {e}"))?;
                if !challenge.supports_auth_md5() {
                    bail!("the relay offers no qop=auth with MD5");
                }
                let ha1 = ha1(user, &challenge.realm, password);
                let cnonce = new_tid().to_string();
                let creds = Credentials::answer(&challenge, user, &ha1, relay.as_str(), &cnonce, 1);
                let second = self.auth_request(target, me, Some(&creds)).await?;
                (second, Some((creds, ha1)))
            }
            _ => bail!("AUTH refused: {}", status_line(&first.head)),
        };
        if resp.head.response_code() != Some(200) {
            bail!("AUTH refused: {}", status_line(&resp.head));
        }
        // The relay proves it knows HA1 too (RFC 4976 §9.1), when it says so.
        if let (Some((creds, ha1)), Some(info)) = (creds, resp.head.authentication_info()) {
            let info = info.map_err(|e| anyhow!("bad Authentication-Info: {e}"))?;
            let want = response_auth(&ha1, &creds.nonce, &creds.nc, &creds.cnonce, relay.as_str());
            if info.rspauth.as_deref() != Some(want.as_str()) {
                bail!("the relay's rspauth is wrong");
            }
        }
        let use_path = resp
            .head
            .use_path()
            .ok_or_else(|| anyhow!("200 to AUTH without Use-Path"))?
            .to_vec();
        if use_path.is_empty() {
            bail!("200 to AUTH with an empty Use-Path");
        }
        Ok(use_path)
    }

    async fn auth_request(
        &mut self,
        target: &Target,
        me: &MsrpUri,
        creds: Option<&Credentials>,
    ) -> anyhow::Result<Received> {
        let tid = new_tid();
        let mut buf = BytesMut::new();
        let mut w = HeadWriter::request(&mut buf, &tid, &Method::Auth);
        w.path(HeaderName::ToPath, [&target.relay_uri])
            .path(HeaderName::FromPath, [me]);
        if let Some(c) = creds {
            w.header("Authorization", c.to_header_value().as_bytes());
        }
        w.finish(false);
        write_end_line(&mut buf, &tid, Flag::Complete, false);
        self.io.write_all(&buf).await?;
        self.io.flush().await?;
        loop {
            let m = self.read_message(target.timeout).await?;
            if !m.head.is_request() && m.head.tid() == &tid {
                return Ok(m);
            }
        }
    }
}

fn status_line(head: &Head) -> String {
    match head.start_line() {
        msrp_proto::StartLine::Response { code, comment, .. } => {
            format!("{code} {}", String::from_utf8_lossy(comment))
        }
        msrp_proto::StartLine::Request { method, .. } => format!("a {method} request"),
    }
}

/// Join URIs with single spaces, as a path header value.
pub fn path_value<'a>(uris: impl IntoIterator<Item = &'a MsrpUri>) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, u) in uris.into_iter().enumerate() {
        if i > 0 {
            v.push(b' ');
        }
        v.extend_from_slice(u.as_bytes());
    }
    v
}

/// Read more of a run's traffic into `buf`. `Err(None)` when the run was stopped (not a
/// failure); `Err(Some(why))` when the relay closed this `side`'s connection or a read failed.
pub async fn read_more<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    stop: &tokio_util::sync::CancellationToken,
    side: &str,
) -> Result<(), Option<String>> {
    tokio::select! {
        biased;
        _ = stop.cancelled() => Err(None),
        r = rd.read_buf(buf) => match r {
            Ok(0) if stop.is_cancelled() => Err(None),
            Ok(0) => Err(Some(format!("the relay closed the {side}'s connection"))),
            Ok(_) => Ok(()),
            Err(e) => Err(Some(format!("{side} read: {e}"))),
        },
    }
}
