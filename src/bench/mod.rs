//! The load generator behind `msrp-bench` (src/bin/msrp-bench.rs).
//!
//! ```text
//! conn        TCP/TLS streams with cheap halves, source binding, AUTH (with or without Digest)
//! msgs        many small pipelined SENDs: rate, delivery, latency
//! pace        a microsecond-precision sleep for the paced senders (timerfd)
//! bulk        one large message in chunks from a generated pattern, hashed at the receiver
//! idle        many authenticated idle connections: memory per connection
//! forwarder   the baseline: a plain TCP byte forwarder (a child process)
//! procstat    the relay's CPU and memory from /proc
//! table       medians of many runs as a Markdown table
//! ```
//!
//! It talks to any RFC 4976 relay (this one, Kamailio's msrp module) on loopback only.

pub mod bulk;
pub mod conn;
pub mod forwarder;
pub mod idle;
pub mod msgs;
pub mod pace;
pub mod procstat;
pub mod table;
pub mod util;

use std::net::SocketAddr;

use anyhow::anyhow;
use msrp_proto::MsrpUri;
use tokio::net::TcpListener;

use conn::{path_value, MsrpConn, Stream, Target};

/// How a SEND's To-Path reaches the receiver through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMode {
    /// `<receiver's Use-Path> <receiver>`: the sender names only the receiver's relay URI
    /// (what works on any relay, Kamailio included).
    Short,
    /// `<sender's Use-Path> <receiver's Use-Path> <receiver>`: both parties on one relay,
    /// each using its own Use-Path (RFC 7977 §8.3.2); the relay is crossed twice.
    Full,
}

/// A connected, authenticated sender and receiver with the paths of their SENDs.
pub struct PairSetup {
    pub sender: MsrpConn,
    pub receiver: MsrpConn,
    pub to_path: Vec<u8>,
    pub from_path: Vec<u8>,
}

fn client_uri(target_tls: bool, name: &str) -> anyhow::Result<MsrpUri> {
    let scheme = if target_tls { "msrps" } else { "msrp" };
    format!("{scheme}://127.0.0.1:9/{name};tcp")
        .parse()
        .map_err(|e| anyhow!("client URI: {e}"))
}

/// Connect and AUTH `n` receivers and `n` senders to the relay.
pub async fn relay_pairs(
    target: &Target,
    n: usize,
    path: PathMode,
) -> anyhow::Result<Vec<PairSetup>> {
    let tls = target.tls.is_some();
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let bob = client_uri(tls, &format!("bench-r{i}"))?;
        let mut receiver = MsrpConn::new(Stream::connect(target, None).await?);
        let bob_path = receiver
            .auth(target, &bob)
            .await
            .map_err(|e| e.context(format!("AUTH of receiver {i}")))?;
        let alice = client_uri(tls, &format!("bench-s{i}"))?;
        let mut sender = MsrpConn::new(Stream::connect(target, None).await?);
        let alice_path = sender
            .auth(target, &alice)
            .await
            .map_err(|e| e.context(format!("AUTH of sender {i}")))?;
        let mut to: Vec<&MsrpUri> = Vec::new();
        if path == PathMode::Full {
            to.extend(&alice_path);
        }
        to.extend(&bob_path);
        to.push(&bob);
        pairs.push(PairSetup {
            to_path: path_value(to),
            from_path: path_value([&alice]),
            sender,
            receiver,
        });
    }
    Ok(pairs)
}

/// Connect `n` senders through the forwarder at `forwarder` to receivers accepted on
/// `receivers` (one at a time, so that each accepted connection is known to be pair i's).
pub async fn baseline_pairs(
    forwarder: SocketAddr,
    receivers: &TcpListener,
    n: usize,
) -> anyhow::Result<Vec<PairSetup>> {
    let timeout = std::time::Duration::from_secs(10);
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let sender = tokio::net::TcpStream::connect(forwarder).await?;
        let _ = sender.set_nodelay(true);
        let (receiver, _) = tokio::time::timeout(timeout, receivers.accept())
            .await
            .map_err(|_| anyhow!("the forwarder did not connect through"))??;
        let _ = receiver.set_nodelay(true);
        let relay: MsrpUri = format!("msrp://127.0.0.1:{}/baseline{i};tcp", forwarder.port())
            .parse()
            .map_err(|e| anyhow!("URI: {e}"))?;
        let bob = client_uri(false, &format!("bench-r{i}"))?;
        let alice = client_uri(false, &format!("bench-s{i}"))?;
        pairs.push(PairSetup {
            to_path: path_value([&relay, &bob]),
            from_path: path_value([&alice]),
            sender: MsrpConn::new(Stream::Tcp(sender)),
            receiver: MsrpConn::new(Stream::Tcp(receiver)),
        });
    }
    Ok(pairs)
}
