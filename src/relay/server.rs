//! Listeners and accept loops (RFC 4976 §6.1: TCP or TLS on 2855).
//!
//! As in mini-redis, a semaphore bounds the number of connections and accept errors back off
//! instead of spinning. The TLS handshake runs in the connection's own task, with a deadline,
//! so a slow handshake never holds up the accept loop. The TLS configuration is read from
//! `Shared` at each accept, so a reload serves new connections with new certificates.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use msrp_proto::Scheme;
use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::connection::{self, ConnGuard, LocalEnd, Opened, Origin, Stream};
use super::Shared;
use crate::config::{ListenerConfig, Transport};
use crate::metrics::ListenerLabels;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Listener {
    pub transport: Transport,
    pub local_addr: SocketAddr,
    socket: TcpListener,
}

impl Listener {
    /// Bind the socket. A TLS listener needs a server certificate (`have_tls`).
    pub async fn bind(cfg: &ListenerConfig, have_tls: bool) -> anyhow::Result<Listener> {
        if cfg.transport == Transport::Tls && !have_tls {
            anyhow::bail!(
                "a tls listener needs a certificate (tls.certificate and tls.private_key)"
            );
        }
        let socket = match TcpListener::bind(cfg.address).await {
            Ok(s) => s,
            // A host without IPv6: fall back from [::] to 0.0.0.0 rather than refuse to
            // start (EAFNOSUPPORT, or EADDRNOTAVAIL). A specific address never falls back.
            Err(e)
                if cfg.address.is_ipv6()
                    && cfg.address.ip().is_unspecified()
                    && (e.kind() == std::io::ErrorKind::AddrNotAvailable
                        || e.raw_os_error() == Some(97)) =>
            {
                let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, cfg.address.port()));
                tracing::warn!(address = %cfg.address, fallback = %v4, "IPv6 is not available; listening on IPv4 only");
                TcpListener::bind(v4)
                    .await
                    .with_context(|| format!("cannot listen on {v4}"))?
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot listen on {} ({})", cfg.address, cfg.transport)
                })
            }
        };
        Ok(Listener {
            transport: cfg.transport,
            local_addr: socket.local_addr()?,
            socket,
        })
    }

    pub async fn run(self, shared: Arc<Shared>) {
        let limit = Arc::new(Semaphore::new(
            shared.settings().limits.max_connections.max(1),
        ));
        let secure = self.transport == Transport::Tls;
        let local = LocalEnd {
            scheme: if secure { Scheme::Msrps } else { Scheme::Msrp },
            port: self.local_addr.port(),
            secure,
        };
        let open = shared
            .metrics
            .connections
            .get_or_create(&ListenerLabels {
                listener: self.local_addr.to_string(),
                transport: if secure { "tls" } else { "tcp" },
            })
            .clone();
        tracing::info!(transport = %self.transport, address = %self.local_addr, "listening");
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                _ = shared.draining.cancelled() => break,
                r = self.socket.accept() => r,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(10);
                    a
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, then try again.
                    tracing::warn!(address = %self.local_addr, error = %e, "accept failed; backing off {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                tracing::warn!(peer = %peer, "connection refused: limits.max_connections reached");
                shared.metrics.rejection("max_connections");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let tls = match (secure, shared.server_tls()) {
                (false, _) => None,
                (true, Some(c)) => Some(TlsAcceptor::from(c)),
                (true, None) => continue,
            };
            let shared2 = shared.clone();
            let open = open.clone();
            shared.tasks.spawn(async move {
                let Some((stream, peer_cert)) = handshake(tcp, peer, tls).await else {
                    shared2.metrics.tls_handshake_failures.inc();
                    return;
                };
                // The permit and the gauge go with the connection, which ends this task.
                let guard = ConnGuard::new(permit, open);
                let opened = Opened {
                    stream,
                    peer,
                    local,
                    peer_cert,
                    origin: Origin::Inbound,
                    guard: Some(guard),
                };
                connection::spawn(opened, shared2);
            });
        }
        tracing::info!(address = %self.local_addr, "listener stopped");
    }
}

/// The TLS handshake, when the listener is TLS. A client certificate is requested, not
/// required (RFC 4976 §9.2); one that was presented has been verified against `tls.ca`.
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
) -> Option<(Stream, Option<CertificateDer<'static>>)> {
    let Some(acceptor) = tls else {
        return Some((Stream::Tcp(tcp), None));
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => {
            let cert = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.clone().into_owned());
            Some((
                Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(s))),
                cert,
            ))
        }
        Ok(Err(e)) => {
            tracing::info!(peer = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}
