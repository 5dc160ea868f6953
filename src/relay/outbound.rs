//! Outbound connections to next hops that are not clients of this relay: other relays and
//! endpoints (RFC 4976 §6.4.2, §8; RFC 4975 §5.4, §6.2).
//!
//! Connections are reused per (scheme, host, port) (§5.4: "same host, port and URI scheme"),
//! bounded in number, and closed when idle for `limits.idle_outbound_secs` (RFC 4976 §6.5).
//! A client of this relay is never dialled: it is reached over its AUTH connection (§6.3).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use hickory_resolver::TokioResolver;
use msrp_proto::uri::Host;
use msrp_proto::{MsrpUri, Scheme};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::connection::{self, ConnHandle, LocalEnd, Opened, Origin, Stream};
use super::Shared;

/// The port of a relay found from a portless AUTH URI (RFC 4976 §8, RFC 4975 §15.4).
pub const DEFAULT_PORT: u16 = 2855;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an outbound connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub secure: bool,
    /// Lower case, without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for PoolKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.secure { "msrps" } else { "msrp" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Why a next hop could not be reached; the log line says which.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("the URI has no port (only an AUTH URI may omit it, RFC 4976 §8)")]
    NoPort,
    #[error("transport `{0}` cannot be dialled (only tcp)")]
    Transport(String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("no trust roots for outbound TLS (set tls.ca)")]
    NoTrustRoots,
    #[error("limits.max_outbound ({0}) outbound connections are already open")]
    PoolFull(usize),
}

pub struct Outbound {
    pool: DashMap<PoolKey, Arc<ConnHandle>>,
    /// One dial at a time per key, so concurrent senders share the new connection.
    dialing: DashMap<PoolKey, Arc<tokio::sync::Mutex<()>>>,
    resolver: Option<TokioResolver>,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound::new()
    }
}

impl Outbound {
    pub fn new() -> Outbound {
        let resolver = match TokioResolver::builder_tokio().and_then(|b| b.build()) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "no system DNS configuration; next hops resolve only through dns.static_hosts and IP literals");
                None
            }
        };
        Outbound {
            pool: DashMap::new(),
            dialing: DashMap::new(),
            resolver,
        }
    }

    pub fn len(&self) -> usize {
        self.pool.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    /// An open connection to the authority of `uri`, reused or new. `auth` allows a portless
    /// URI (SRV `_msrps._tcp`, then port 2855: RFC 4976 §8).
    pub async fn connect(
        &self,
        uri: &MsrpUri,
        auth: bool,
        shared: &Arc<Shared>,
    ) -> Result<Arc<ConnHandle>, DialError> {
        if !uri.transport().eq_ignore_ascii_case("tcp") {
            return Err(DialError::Transport(uri.transport().to_owned()));
        }
        let secure = uri.scheme() == Scheme::Msrps;
        let host = uri.host_unbracketed().to_ascii_lowercase();
        let port = match (uri.port(), auth) {
            (Some(p), _) => Some(p),
            (None, true) => None,
            (None, false) => return Err(DialError::NoPort),
        };
        let key = PoolKey {
            secure,
            host: host.clone(),
            port: port.unwrap_or(DEFAULT_PORT),
        };
        if let Some(c) = self.live(&key) {
            return Ok(c);
        }
        let gate = self.dialing.entry(key.clone()).or_default().clone();
        let _turn = gate.lock().await;
        if let Some(c) = self.live(&key) {
            return Ok(c);
        }
        let max = shared.settings().limits.max_outbound;
        if self.pool.len() >= max {
            return Err(DialError::PoolFull(max));
        }
        let targets = self.resolve(uri, &host, port, shared).await?;
        let mut last = None;
        // Try every address in order (RFC 4975 §6.2 SHOULD).
        for addr in targets {
            match self
                .dial(addr, &host, uri.host_kind(), secure, &key, shared)
                .await
            {
                Ok(c) => {
                    shared
                        .metrics
                        .outbound_dials
                        .get_or_create(&crate::metrics::OutcomeLabels {
                            outcome: "connected",
                        })
                        .inc();
                    self.pool.insert(key.clone(), c.clone());
                    tracing::info!(next_hop = %key, address = %addr, conn = c.id, "outbound connection open");
                    return Ok(c);
                }
                Err(e) => {
                    shared
                        .metrics
                        .outbound_dials
                        .get_or_create(&crate::metrics::OutcomeLabels { outcome: "failed" })
                        .inc();
                    tracing::info!(next_hop = %key, address = %addr, error = %e, "outbound connection attempt failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(DialError::Resolve {
            host,
            reason: "no address".into(),
        }))
    }

    fn live(&self, key: &PoolKey) -> Option<Arc<ConnHandle>> {
        let c = self.pool.get(key)?;
        (!c.is_closed()).then(|| c.clone())
    }

    /// A connection closed: forget it if it is the pooled one.
    pub fn forget(&self, key: &PoolKey, id: u64) {
        self.pool.remove_if(key, |_, c| c.id == id);
    }

    /// Close pooled connections idle for longer than `idle` with nothing outstanding.
    pub fn close_idle(&self, idle: Duration) -> usize {
        let mut closed = 0;
        for entry in self.pool.iter() {
            let c = entry.value();
            if c.idle_for() >= idle && c.transactions().is_empty() {
                tracing::info!(next_hop = %entry.key(), conn = c.id, "closing idle outbound connection (RFC 4976 §6.5)");
                c.close();
                closed += 1;
            }
        }
        closed
    }

    async fn resolve(
        &self,
        uri: &MsrpUri,
        host: &str,
        port: Option<u16>,
        shared: &Arc<Shared>,
    ) -> Result<Vec<SocketAddr>, DialError> {
        if let Some(ip) = uri.ip() {
            return Ok(vec![SocketAddr::new(ip, port.unwrap_or(DEFAULT_PORT))]);
        }
        let settings = shared.settings();
        // Portless AUTH URI: SRV first (RFC 4976 §8), else the default port.
        let mut hosts: Vec<(String, u16)> = Vec::new();
        match port {
            Some(p) => hosts.push((host.to_owned(), p)),
            None => {
                if settings.dns.lookup(host).is_none() {
                    if let Some(r) = &self.resolver {
                        if let Ok(srv) = r.srv_lookup(format!("_msrps._tcp.{host}.")).await {
                            let mut records: Vec<(u16, String, u16)> = srv
                                .answers()
                                .iter()
                                .filter_map(|rec| match &rec.data {
                                    hickory_resolver::proto::rr::RData::SRV(s) => Some((
                                        s.priority,
                                        s.target.to_utf8().trim_end_matches('.').to_owned(),
                                        s.port,
                                    )),
                                    _ => None,
                                })
                                .collect();
                            records.sort_by_key(|r| r.0);
                            hosts.extend(records.into_iter().map(|(_, h, p)| (h, p)));
                        }
                    }
                }
                if hosts.is_empty() {
                    hosts.push((host.to_owned(), DEFAULT_PORT));
                }
            }
        }
        let mut out = Vec::new();
        let mut reason = String::from("no address");
        for (name, p) in hosts {
            if let Some(addrs) = settings.dns.lookup(&name) {
                out.extend(addrs.iter().map(|ip| SocketAddr::new(*ip, p)));
                continue;
            }
            if let Ok(ip) = name.parse::<IpAddr>() {
                out.push(SocketAddr::new(ip, p));
                continue;
            }
            let Some(r) = &self.resolver else {
                reason = "no DNS configuration".into();
                continue;
            };
            match r.lookup_ip(format!("{name}.")).await {
                Ok(ips) => out.extend(ips.iter().map(|ip| SocketAddr::new(ip, p))),
                Err(e) => reason = e.to_string(),
            }
        }
        if out.is_empty() {
            return Err(DialError::Resolve {
                host: host.to_owned(),
                reason,
            });
        }
        Ok(out)
    }

    async fn dial(
        &self,
        addr: SocketAddr,
        host: &str,
        kind: Host,
        secure: bool,
        key: &PoolKey,
        shared: &Arc<Shared>,
    ) -> Result<Arc<ConnHandle>, DialError> {
        let target = addr.to_string();
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                return Err(DialError::Connect {
                    target,
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(DialError::Connect {
                    target,
                    reason: "timed out".into(),
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        let local_port = tcp.local_addr().map(|a| a.port()).unwrap_or(0);
        let local = LocalEnd {
            scheme: if secure { Scheme::Msrps } else { Scheme::Msrp },
            port: local_port,
            secure,
        };
        let origin = Origin::Outbound(key.clone());
        if !secure {
            let opened = Opened {
                stream: Stream::Tcp(tcp),
                peer: addr,
                local,
                peer_cert: None,
                origin,
                guard: None,
            };
            return Ok(connection::spawn(opened, shared.clone()));
        }
        let config = shared.client_tls().ok_or(DialError::NoTrustRoots)?;
        // SNI and the certificate check use the URI's host: a dNSName, or an IP address SAN
        // for a literal (RFC 4975 §14.2, RFC 4976 §9.2).
        let name = match kind {
            Host::Name => ServerName::try_from(host.to_owned()).map_err(|e| DialError::Tls {
                host: host.to_owned(),
                reason: e.to_string(),
            })?,
            Host::V4(a) => ServerName::IpAddress(IpAddr::V4(a).into()),
            Host::V6(a) => ServerName::IpAddress(IpAddr::V6(a).into()),
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(DialError::Tls {
                    host: host.to_owned(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(DialError::Tls {
                    host: host.to_owned(),
                    reason: "handshake timed out".into(),
                })
            }
        };
        let peer_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned());
        let opened = Opened {
            stream: Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(tls))),
            peer: addr,
            local,
            peer_cert,
            origin,
            guard: None,
        };
        Ok(connection::spawn(opened, shared.clone()))
    }
}
