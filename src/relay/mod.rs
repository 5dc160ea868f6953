//! The relay daemon around `msrp_proto` (RFC 4976).
//!
//! ```text
//! server      listeners and accept loops (tcp, tls), connection limit
//!   └─ connection   per-connection actor: reader loop + writer task with bounded queues
//!        ├─ forward      the routing decision (pure): ours? whose? where next?
//!        ├─ auth         AUTH to us: nonces, Digest, Expires policy, minting Use-Path URIs
//!        ├─ transaction  what we sent and await an answer to; 30 s timers
//!        └─ report       responses and failure REPORTs the relay writes itself
//! table       issued Use-Path tokens → owning connection (the only shared hot-path state)
//! ```

pub mod auth;
pub mod connection;
pub mod forward;
pub mod outbound;
pub mod report;
pub mod server;
pub mod table;
pub mod transaction;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Settings, Transport};
use crate::credentials::UsersFile;

/// State shared by every connection.
pub struct Shared {
    settings: ArcSwap<Settings>,
    users: ArcSwap<UsersFile>,
    pub table: table::Table,
    pub outbound: outbound::Outbound,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    conn_ids: AtomicU64,
}

impl Shared {
    pub fn new(
        settings: Settings,
        users: UsersFile,
        client_tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Shared {
        Shared {
            settings: ArcSwap::from_pointee(settings),
            users: ArcSwap::from_pointee(users),
            table: table::Table::default(),
            outbound: outbound::Outbound::new(client_tls),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            conn_ids: AtomicU64::new(1),
        }
    }

    /// The settings in force (a reload swaps them; connections read them when they act).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    pub fn users(&self) -> Arc<UsersFile> {
        self.users.load_full()
    }

    pub fn set_users(&self, users: UsersFile) {
        self.users.store(Arc::new(users));
    }

    pub fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
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
}

/// The TLS side of a relay: the server configuration for TLS listeners, and the client
/// configuration (our certificate, the trust roots) for outbound TLS and mutual TLS with
/// other relays (RFC 4976 §9.2).
#[derive(Clone, Default)]
pub struct TlsSetup {
    pub server: Option<Arc<rustls::ServerConfig>>,
    pub client: Option<Arc<rustls::ClientConfig>>,
}

/// A relay with its listeners bound, not yet accepting.
pub struct Relay {
    shared: Arc<Shared>,
    listeners: Vec<server::Listener>,
}

impl Relay {
    /// Bind every configured listener. `tls` is required when a TLS listener is configured.
    pub async fn bind(
        settings: Settings,
        users: UsersFile,
        tls: TlsSetup,
    ) -> anyhow::Result<Relay> {
        let mut listeners = Vec::new();
        for cfg in &settings.listen {
            listeners.push(server::Listener::bind(cfg, tls.server.clone()).await?);
        }
        Ok(Relay {
            shared: Arc::new(Shared::new(settings, users, tls.client)),
            listeners,
        })
    }

    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.listeners
            .iter()
            .map(|l| (l.transport, l.local_addr))
            .collect()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Start accepting. The returned handle stops the relay.
    pub fn start(self) -> RelayHandle {
        let addrs = self.local_addrs();
        for l in self.listeners {
            let shared = self.shared.clone();
            self.shared.tasks.spawn(l.run(shared));
        }
        // Tokens expire by themselves on lookup; this frees their memory (RFC 4976 §6.3).
        let shared = self.shared.clone();
        self.shared.tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    _ = shared.shutdown.cancelled() => break,
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
        RelayHandle {
            shared: self.shared,
            addrs,
        }
    }
}

/// A running relay.
pub struct RelayHandle {
    shared: Arc<Shared>,
    addrs: Vec<(Transport, SocketAddr)>,
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

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stop accepting and close every connection; returns when all tasks are done.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}
