//! The baseline: a plain TCP byte forwarder that moves the same bytes between the same kind
//! of sockets as the relay, without parsing anything. Each accepted connection gets a
//! connection to `to`, and `copy_bidirectional` with `buffer`-byte buffers between them.
//!
//! The baselines run it as a child process (`msrp-bench forwarder`), so that its CPU and
//! memory are measured exactly as the relay's are.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tokio::net::{TcpListener, TcpStream};

/// Forward every connection accepted on `listener` to `to`, until the process ends.
pub async fn serve(listener: TcpListener, to: SocketAddr, buffer: usize) -> std::io::Result<()> {
    loop {
        let (mut a, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = a.set_nodelay(true);
            let Ok(mut b) = TcpStream::connect(to).await else {
                return;
            };
            let _ = b.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, buffer, buffer).await;
        });
    }
}

/// A forwarder running as a child process; it exits when this handle is dropped (its stdin
/// closes) or after its own time limit.
pub struct ForwarderProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
}

impl ForwarderProcess {
    /// Start `msrp-bench forwarder --to <to>` and wait for the address it listens on.
    pub fn spawn(to: SocketAddr, buffer: usize, max_time: Duration) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the msrp-bench executable")?;
        let mut child = Command::new(exe)
            .args([
                "forwarder",
                "--listen",
                "127.0.0.1:0",
                "--to",
                &to.to_string(),
                "--buffer",
                &buffer.to_string(),
                "--max-time",
                &max_time.as_secs().max(1).to_string(),
                "--exit-on-stdin-eof",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the forwarder")?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("forwarder has no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the forwarder's address")?;
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the forwarder did not start (said {line:?})");
        };
        let addr = addr
            .parse()
            .map_err(|_| anyhow!("the forwarder printed a bad address {addr:?}"))?;
        Ok(ForwarderProcess { child, stdin, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ForwarderProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
