//! The relay daemon around `msrp_proto` (RFC 4976).
//!
//! ```text
//! server      listeners and accept loops (tcp, tls), connection limit
//!   └─ connection   per-connection actor: reader loop + writer task with bounded queues
//!        ├─ forward      the routing decision (pure): ours? whose? where next?
//!        ├─ auth         AUTH to us: nonces, Digest, Expires policy, minting Use-Path URIs
//!        ├─ transaction  what we sent and await an answer to; 30 s timers
//!        └─ report       responses and failure REPORTs the relay writes itself
//! outbound    connections we dial to other relays and endpoints, pooled
//! table       issued Use-Path tokens → owning connection (the only shared hot-path state)
//! ```

pub mod auth;
pub mod connection;
pub mod forward;
pub mod gate;
pub mod outbound;
pub mod outbox;
pub mod report;
pub mod server;
pub mod table;
pub mod transaction;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::Admin;
use crate::config::{Settings, TlsIdentitySource, Transport};
use crate::credentials::UsersFile;
use crate::metrics::Metrics;

/// State shared by every connection.
pub struct Shared {
    settings: ArcSwap<Settings>,
    users: ArcSwap<UsersFile>,
    /// Read at every accept, so a reload serves new connections with new certificates.
    server_tls: ArcSwapOption<rustls::ServerConfig>,
    /// Read at every dial (our certificate and the trust roots for next hops).
    client_tls: ArcSwapOption<rustls::ClientConfig>,
    pub table: table::Table,
    pub outbound: outbound::Outbound,
    pub metrics: Metrics,
    /// Stop accepting, finish the message in progress, then close (graceful shutdown).
    pub draining: CancellationToken,
    /// Close everything now.
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    ready: AtomicBool,
    conn_ids: AtomicU64,
}

impl Shared {
    pub fn new(settings: Settings, users: UsersFile, tls: TlsSetup) -> Shared {
        Shared {
            settings: ArcSwap::from_pointee(settings),
            users: ArcSwap::from_pointee(users),
            server_tls: ArcSwapOption::new(tls.server),
            client_tls: ArcSwapOption::new(tls.client),
            table: table::Table::default(),
            outbound: outbound::Outbound::new(),
            metrics: Metrics::new(),
            draining: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            ready: AtomicBool::new(false),
            conn_ids: AtomicU64::new(1),
        }
    }

    /// The settings in force (a reload swaps them; connections read them when they act).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Replace `cached` with the settings in force if a reload swapped them. Cheaper than
    /// [`Shared::settings`] when nothing changed: no shared reference count is touched, so
    /// a connection can call it per read instead of cloning the settings per message.
    pub fn refresh_settings(&self, cached: &mut Arc<Settings>) {
        let current = self.settings.load();
        if !Arc::ptr_eq(&current, cached) {
            *cached = arc_swap::Guard::into_inner(current);
        }
    }

    pub fn users(&self) -> Arc<UsersFile> {
        self.users.load_full()
    }

    pub fn server_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.server_tls.load_full()
    }

    pub fn client_tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.client_tls.load_full()
    }

    pub fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Listeners bound and configuration loaded, and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && !self.draining.is_cancelled()
    }

    /// Gauges computed at scrape time.
    pub fn refresh_gauges(&self) {
        self.metrics.tokens.set(self.table.len() as i64);
        self.metrics
            .outbound_connections
            .set(self.outbound.len() as i64);
    }

    /// The decoder limits from `[limits]` (RFC 4975 caps tids and Message-IDs at 32).
    pub fn decoder_limits(&self) -> msrp_proto::Limits {
        let l = &self.settings().limits;
        msrp_proto::Limits {
            max_head_size: l.max_header_block,
            max_header_line: l.max_header_line,
            max_headers: l.max_headers,
            max_path_uris: l.max_path_uris,
            ..msrp_proto::Limits::default()
        }
    }

    /// Swap in a reloaded configuration. Established connections keep working; new
    /// connections and new requests see the new settings, users and certificates. Listener
    /// addresses cannot change without a restart.
    pub fn reload(&self, loaded: Loaded) {
        let old = self.settings();
        if old.listen != loaded.settings.listen {
            tracing::warn!("[[listen]] changed: listener changes take effect at the next restart");
        }
        if let Some(users) = loaded.users {
            self.users.store(Arc::new(users));
        }
        if let Some(server) = loaded.tls.server {
            self.server_tls.store(Some(server));
        }
        if let Some(client) = loaded.tls.client {
            self.client_tls.store(Some(client));
        }
        self.settings.store(Arc::new(loaded.settings));
    }
}

/// The TLS side of a relay: the server configuration for TLS listeners, and the client
/// configuration (our certificate, the trust roots) for outbound TLS and mutual TLS with
/// other relays (RFC 4976 §9.2).
#[derive(Clone, Default)]
pub struct TlsSetup {
    pub server: Option<Arc<rustls::ServerConfig>>,
    pub client: Option<Arc<rustls::ClientConfig>>,
}

/// A configuration with the files it names loaded: what a start or a reload needs.
pub struct Loaded {
    pub settings: Settings,
    /// `None` when no users file is configured (development user, kept across reloads).
    pub users: Option<UsersFile>,
    pub tls: TlsSetup,
    /// What makes this a development setup, for the warning at start.
    pub development: Vec<&'static str>,
}

impl Loaded {
    /// Load the users file, the certificate and key, and the CA that `settings` name. The
    /// self-signed development certificate is made only when `self_signed` is set (at start;
    /// a reload keeps the one in use).
    pub fn load(settings: Settings, self_signed: bool) -> anyhow::Result<Loaded> {
        use crate::tls;
        let mut development = Vec::new();
        let users = match &settings.auth.users_file {
            Some(path) => Some(UsersFile::load(path)?),
            None => {
                development.push("a generated development user (auth.users_file is not set)");
                None
            }
        };
        let identity = match settings.tls_identity() {
            TlsIdentitySource::NotNeeded => None,
            TlsIdentitySource::SelfSigned => {
                development.push(
                    "a self-signed certificate generated at start (tls.certificate is not set)",
                );
                if self_signed {
                    Some(tls::self_signed(&settings.relay.hostname)?)
                } else {
                    None
                }
            }
            TlsIdentitySource::Files {
                certificate,
                private_key,
            } => Some(tls::load_certified_key(certificate, private_key)?),
        };
        let mut setup = TlsSetup::default();
        let ca = settings.tls.ca.as_deref();
        let client_identity = match identity {
            Some((chain, key)) => {
                setup.server = Some(tls::server_config(chain.clone(), key.clone_key(), ca)?);
                // Toward other relays we present the same certificate (mutual TLS, §9.2).
                Some((chain, key))
            }
            None => None,
        };
        setup.client = match tls::client_config(ca, client_identity) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("outbound TLS is unavailable: {e}; msrps next hops will be refused (set tls.ca)");
                None
            }
        };
        Ok(Loaded {
            settings,
            users,
            tls: setup,
            development,
        })
    }
}

/// A relay with its listeners bound, not yet accepting.
pub struct Relay {
    shared: Arc<Shared>,
    listeners: Vec<server::Listener>,
    admin_addr: Option<SocketAddr>,
}

impl Relay {
    /// Bind the admin listener (serving "not ready") and every MSRP listener.
    pub async fn bind(
        settings: Settings,
        users: UsersFile,
        tls: TlsSetup,
    ) -> anyhow::Result<Relay> {
        let admin = if settings.admin.enabled {
            Some(Admin::bind(settings.admin.address).await?)
        } else {
            None
        };
        let listen = settings.listen.clone();
        let shared = Arc::new(Shared::new(settings, users, tls));
        // The admin listener serves from now on ("not ready" until start), and outlives the
        // graceful drain so that /readyz says 503 during it.
        let admin_addr = match admin {
            Some(admin) => {
                let addr = admin.local_addr;
                tokio::spawn(admin.run(shared.clone()));
                Some(addr)
            }
            None => None,
        };
        let mut listeners = Vec::new();
        for cfg in &listen {
            listeners.push(server::Listener::bind(cfg, shared.server_tls().is_some()).await?);
        }
        Ok(Relay {
            shared,
            listeners,
            admin_addr,
        })
    }

    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.listeners
            .iter()
            .map(|l| (l.transport, l.local_addr))
            .collect()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Start accepting. The returned handle stops the relay.
    pub fn start(self) -> RelayHandle {
        let addrs = self.local_addrs();
        let admin_addr = self.admin_addr();
        for l in self.listeners {
            let shared = self.shared.clone();
            self.shared.tasks.spawn(l.run(shared));
        }
        // Tokens expire by themselves on lookup; this frees their memory (RFC 4976 §6.3),
        // and idle outbound connections are closed (§6.5).
        let shared = self.shared.clone();
        self.shared.tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    _ = shared.draining.cancelled() => break,
                    _ = tick.tick() => {
                        let n = shared.table.sweep();
                        if n > 0 {
                            tracing::debug!(removed = n, live = shared.table.len(), "expired tokens removed");
                        }
                        shared.outbound.close_idle(shared.settings().limits.idle_outbound());
                    }
                }
            }
        });
        self.shared.ready.store(true, Ordering::Relaxed);
        RelayHandle {
            shared: self.shared,
            addrs,
            admin_addr,
        }
    }
}

/// A running relay.
pub struct RelayHandle {
    shared: Arc<Shared>,
    addrs: Vec<(Transport, SocketAddr)>,
    admin_addr: Option<SocketAddr>,
}

impl RelayHandle {
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.addrs
    }

    /// The first listener of this transport.
    pub fn addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Graceful shutdown: stop accepting, let every connection finish the message it is in
    /// and drain its queue, for at most `grace`; then close whatever is left.
    pub async fn shutdown_gracefully(self, grace: Duration) {
        self.shared.draining.cancel();
        self.shared.tasks.close();
        if tokio::time::timeout(grace, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; closing the connections still open");
            self.shared.shutdown.cancel();
            self.shared.tasks.wait().await;
        }
        self.shared.shutdown.cancel();
    }

    /// Close everything now.
    pub async fn shutdown(self) {
        self.shared.draining.cancel();
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}
