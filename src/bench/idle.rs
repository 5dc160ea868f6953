//! `idle`: open and AUTH many connections, hold them, and see what each costs the relay.
//!
//! Connections are bound to source addresses 127.0.0.1, 127.0.0.2, … (`PER_SOURCE` each, with IP_BIND_ADDRESS_NO_PORT) before
//! connecting, so that a hundred thousand of them do not exhaust the ephemeral ports of one
//! source address. AUTHs run `concurrency` at a time.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msrp_proto::MsrpUri;
use tokio::sync::Semaphore;

use super::conn::{MsrpConn, Stream, Target};

/// Connections per source address (the ephemeral range holds about 28000 ports).
pub const PER_SOURCE: usize = 10_000;

#[derive(Debug, Clone)]
pub struct IdleOptions {
    pub conns: usize,
    pub hold: Duration,
    pub concurrency: usize,
}

#[derive(Debug)]
pub struct IdleResult {
    pub opened: usize,
    /// Still open (no EOF, no error) at the end of the hold.
    pub still_open: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    /// Time to open and AUTH all of them.
    pub setup: Duration,
}

/// The source address of connection `i`, when the relay is on IPv4 loopback.
fn source(target: &Target, i: usize) -> Option<IpAddr> {
    if !target.addr.is_ipv4() {
        return None;
    }
    let n = (i / PER_SOURCE) as u32 + 1;
    let [_, b, c, d] = n.to_be_bytes();
    Some(IpAddr::V4(Ipv4Addr::new(127, b, c, d)))
}

/// Open and AUTH `opts.conns` connections and hold them for `opts.hold`. `on_open` is called
/// a second into the hold, with the number that made it (to sample the relay's memory); at
/// the end every connection is checked to be still open.
pub async fn run(
    target: &Target,
    opts: &IdleOptions,
    on_open: impl FnOnce(usize),
) -> anyhow::Result<IdleResult> {
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let target = Arc::new(target.clone());
    let scheme = if target.tls.is_some() {
        "msrps"
    } else {
        "msrp"
    };
    let mut tasks = Vec::with_capacity(opts.conns);
    for i in 0..opts.conns {
        let permit = sem.clone().acquire_owned().await?;
        let target = target.clone();
        let me: MsrpUri = format!("{scheme}://127.0.0.1:9/idle{i};tcp")
            .parse()
            .map_err(|e| anyhow::anyhow!("client URI: {e}"))?;
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let io = Stream::connect(&target, source(&target, i)).await?;
            let mut conn = MsrpConn::new(io);
            conn.auth(&target, &me).await?;
            // Idle: keep no read buffer on our side either.
            conn.buf = bytes::BytesMut::new();
            Ok::<MsrpConn, anyhow::Error>(conn)
        }));
    }
    let mut conns = Vec::with_capacity(opts.conns);
    let mut failed = 0;
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => conns.push(c),
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(format!("{e:#}"));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(format!("task: {e}"));
            }
        }
    }
    let setup = start.elapsed();
    // Let the relay settle (its tasks park, buffers are released) before measuring.
    let settle = opts.hold.min(Duration::from_secs(1));
    tokio::time::sleep(settle).await;
    on_open(conns.len());
    tokio::time::sleep(opts.hold - settle).await;
    let mut still_open = 0;
    let mut probe = [0u8; 1];
    for c in &conns {
        match c.io.tcp().try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => still_open += 1,
            Ok(n) if n > 0 => still_open += 1,
            _ => {}
        }
    }
    let opened = conns.len();
    drop(conns);
    Ok(IdleResult {
        opened,
        still_open,
        failed,
        first_error,
        setup,
    })
}
