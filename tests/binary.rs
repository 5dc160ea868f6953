//! The real binary: development defaults, configuration errors and exit codes, a relay
//! started from a configuration file, and SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msrp_proto::MsrpUri;
use msrp_relay::client::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_msrp-relay");
const T: Duration = Duration::from_secs(10);

/// The binary with a clean environment for the relay: no MSRP_RELAY__ overrides, plain
/// `info` logs, not under systemd.
fn relay_command() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MSRP_RELAY__") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info").env_remove("JOURNAL_STREAM");
    cmd.stdin(Stdio::null());
    cmd
}

/// Run to completion, killing the process if it takes longer than `timeout`.
fn run(mut cmd: Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let status = match wait_exit(&mut child, timeout) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not exit within {timeout:?}");
        }
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running relay process; killed (SIGKILL) if the test ends without stopping it.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line (from now or already seen) that satisfies `pred`.
    fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {what} within {T:?}; stderr so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGTERM, then the exit status (within a few seconds).
    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        match wait_exit(&mut self.child, Duration::from_secs(5)) {
            Some(s) => s,
            None => panic!("no exit within 5 s of SIGTERM"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `address=` of a "listening" log line.
fn listening_address(line: &str) -> SocketAddr {
    let at = line.find("address=").unwrap() + "address=".len();
    let rest = &line[at..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].parse().unwrap()
}

fn accept_any_config() -> Arc<rustls::ClientConfig> {
    msrp_relay::commands::dangerous::insecure_client_config().unwrap()
}

fn uri(s: &str) -> MsrpUri {
    s.parse().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn development_defaults_tls_on_2855_auth_and_sigterm() {
    let mut relay = Running::start(relay_command());
    let dev = relay.wait_line("the development user", |l| {
        l.contains("DEVELOPMENT SETUP") && l.contains("user \"dev\"")
    });
    let password = dev
        .split("password \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no password in {dev:?}"))
        .to_owned();
    assert!(password.len() >= 12, "{password:?}");
    relay.wait_line("the production warning", |l| {
        l.contains("DEVELOPMENT SETUP, NOT FOR PRODUCTION")
    });
    let listening = relay.wait_line("the TLS listener", |l| {
        l.contains("listening") && l.contains("transport=tls")
    });
    let addr = listening_address(&listening);
    assert_eq!(addr.port(), 2855, "{listening}");
    assert!(addr.ip().is_unspecified(), "[::] or 0.0.0.0: {listening}");

    // A TLS client that accepts the self-signed certificate can AUTH as dev.
    let mut c = Connection::connect_tls(
        "127.0.0.1:2855".parse().unwrap(),
        "localhost",
        accept_any_config(),
    )
    .await
    .unwrap();
    let grant = c
        .auth(
            &uri("msrps://dev@localhost;tcp"),
            &uri("msrps://client.example.com:9892/98cjs;tcp"),
            "dev",
            &password,
            None,
            T,
        )
        .await
        .unwrap();
    let token = &grant.use_path[0];
    assert_eq!(token.host(), "localhost");
    assert_eq!(token.port(), Some(2855));
    drop(c);

    let status = relay.terminate();
    assert_eq!(status.code(), Some(0), "clean shutdown on SIGTERM");
}

/// `msrp-relay <subcommand> --config <file with contents>` exits 2 and names `key`.
fn assert_config_error(dir: &Path, file: &str, contents: &str, subcommand: &str, key: &str) {
    let path = write(dir, file, contents);
    let mut cmd = relay_command();
    cmd.args([subcommand, "--config", &path]);
    let out = run(cmd, T);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
    assert!(stderr.contains(key), "{file}: {stderr}");
}

#[test]
fn configuration_errors_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // A misspelt key: serve refuses to start.
    assert_config_error(
        dir.path(),
        "bad.toml",
        "[relay]\nhostnme = \"x\"\n",
        "serve",
        "hostnme",
    );
    // expires_min above expires_default: check-config names auth.expires_min.
    assert_config_error(
        dir.path(),
        "order.toml",
        "[auth]\nexpires_min = 4000\nexpires_default = 1800\n",
        "check-config",
        "auth.expires_min",
    );
    // An absurd thread count: serve refuses to start, naming the key.
    assert_config_error(
        dir.path(),
        "threads.toml",
        "[relay]\nworker_threads = 5000\n",
        "serve",
        "relay.worker_threads",
    );
}

#[test]
fn check_config_accepts_a_complete_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["relay.example.com".to_owned()]).unwrap();
    let cert = write(dir.path(), "cert.pem", &key.cert.pem());
    let private_key = write(dir.path(), "key.pem", &key.signing_key.serialize_pem());
    let users = write(
        dir.path(),
        "users.htdigest",
        &format!(
            "alice:relay.example.com:{}\n",
            msrp_relay::credentials::ha1_hex("alice", "relay.example.com", "secret")
        ),
    );
    let config = write(
        dir.path(),
        "relay.toml",
        &format!(
            "[relay]\nhostname = \"relay.example.com\"\n\n[[listen]]\ntransport = \"tls\"\naddress = \"127.0.0.1:0\"\n\n[tls]\ncertificate = \"{cert}\"\nprivate_key = \"{private_key}\"\n\n[auth]\nusers_file = \"{users}\"\n"
        ),
    );
    let mut cmd = relay_command();
    cmd.args(["check-config", "--config", &config]);
    let out = run(cmd, T);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[tokio::test]
async fn relay_from_a_config_file_logs_its_address_and_accepts_auth() {
    let dir = tempfile::tempdir().unwrap();
    // The users file comes from the binary's own hash-password.
    let pw = write(dir.path(), "pw", "s3cret pass\n");
    let mut cmd = relay_command();
    cmd.args([
        "hash-password",
        "--user",
        "alice",
        "--realm",
        "relay.example.com",
        "--password-file",
        &pw,
    ]);
    let out = run(cmd, T);
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("alice:relay.example.com:"), "{line}");
    let users = write(dir.path(), "users.htdigest", &line);
    let config = write(
        dir.path(),
        "relay.toml",
        &format!(
            // One worker thread: the relay also runs (AUTH and all) on a single-threaded
            // pool when an operator asks for it.
            "[relay]\nhostname = \"relay.example.com\"\nworker_threads = 1\n\n[[listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:0\"\n\n[auth]\nusers_file = \"{users}\"\nallow_insecure_tcp = true\n\n[admin]\naddress = \"127.0.0.1:0\"\n"
        ),
    );

    let mut cmd = relay_command();
    cmd.args(["serve", "--config", &config]);
    let mut relay = Running::start(cmd);
    let listening = relay.wait_line("the TCP listener", |l| {
        l.contains("listening") && l.contains("transport=tcp")
    });
    let addr = listening_address(&listening);
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the bound port, not the configured 0");
    assert!(
        !relay.seen.iter().any(|l| l.contains("DEVELOPMENT SETUP")),
        "a configured relay is not a development setup: {:?}",
        relay.seen
    );

    let mut c = Connection::connect_tcp(addr).await.unwrap();
    let grant = c
        .auth(
            &uri("msrp://alice@relay.example.com;tcp"),
            &uri("msrp://client.example.com:9892/98cjs;tcp"),
            "alice",
            "s3cret pass",
            None,
            T,
        )
        .await
        .unwrap();
    let token = &grant.use_path[0];
    assert_eq!(token.host(), "relay.example.com");
    assert_eq!(token.port(), Some(addr.port()));
    drop(c);

    let status = relay.terminate();
    assert_eq!(status.code(), Some(0));
}

/// A relay on a TCP listener (AUTH allowed for the test) with a users file, as a process.
fn tcp_relay_with_users(dir: &Path, users: &str, extra: &str) -> (Running, SocketAddr, String) {
    let users_path = write(dir, "users.htdigest", users);
    let config = write(
        dir,
        "relay.toml",
        &format!(
            "[relay]\nhostname = \"relay.example.com\"\nshutdown_grace_secs = 2\n\n[[listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:0\"\n\n[auth]\nusers_file = \"{users_path}\"\nallow_insecure_tcp = true\n\n[admin]\naddress = \"127.0.0.1:0\"\n{extra}"
        ),
    );
    let mut cmd = relay_command();
    cmd.args(["serve", "--config", &config]);
    let mut relay = Running::start(cmd);
    let line = relay.wait_line("the TCP listener", |l| {
        l.contains("listening") && l.contains("transport=tcp")
    });
    (relay, listening_address(&line), users_path)
}

fn htdigest(user: &str, password: &str) -> String {
    format!(
        "{user}:relay.example.com:{}\n",
        msrp_proto::digest::ha1(user, "relay.example.com", password)
    )
}

async fn tcp_client(
    addr: SocketAddr,
    user: &str,
    password: &str,
    me: &str,
) -> Result<(Connection, MsrpUri), msrp_relay::client::ClientError> {
    let mut c = Connection::connect_tcp(addr).await?;
    let grant = c
        .auth(
            &uri("msrp://relay.example.com;tcp"),
            &uri(me),
            user,
            password,
            None,
            T,
        )
        .await?;
    Ok((c, grant.use_path[0].clone()))
}

fn hup(relay: &Running) {
    let pid = relay.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
}

#[tokio::test]
async fn sighup_reloads_users_keeps_sessions_and_survives_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut relay, addr, users_path) =
        tcp_relay_with_users(dir.path(), &htdigest("alice", "pw-a"), "");
    let (mut alice, ta) = tcp_client(addr, "alice", "pw-a", "msrp://alice.example.org:1/a;tcp")
        .await
        .unwrap();
    assert!(
        tcp_client(addr, "bob", "pw-b", "msrp://bob.example.org:1/b;tcp")
            .await
            .is_err(),
        "bob is not a user yet"
    );

    // A new users file, then SIGHUP: bob is admitted, alice's session keeps working.
    std::fs::write(
        &users_path,
        format!("{}{}", htdigest("alice", "pw-a"), htdigest("bob", "pw-b")),
    )
    .unwrap();
    hup(&relay);
    relay.wait_line("the reload", |l| l.contains("configuration reloaded"));
    let (mut bob, tb) = tcp_client(addr, "bob", "pw-b", "msrp://bob.example.org:1/b;tcp")
        .await
        .unwrap();
    let opts = msrp_relay::client::SendOptions {
        message_id: "reload01",
        ..Default::default()
    };
    let tid = alice
        .send(
            &[
                ta.clone(),
                tb.clone(),
                uri("msrp://bob.example.org:1/b;tcp"),
            ],
            &[uri("msrp://alice.example.org:1/a;tcp")],
            &opts,
            b"after reload",
        )
        .await
        .unwrap();
    assert_eq!(
        alice
            .response_to(&tid, T)
            .await
            .unwrap()
            .head
            .response_code(),
        Some(200)
    );
    assert_eq!(
        bob.read_message(T).await.unwrap().body_str(),
        "after reload"
    );

    // A broken users file: the reload fails, says why, and the old users stay.
    std::fs::write(&users_path, "this is not htdigest\n").unwrap();
    hup(&relay);
    relay.wait_line("the failed reload", |l| {
        l.contains("reload failed") && l.contains("keeping")
    });
    assert!(
        tcp_client(addr, "bob", "pw-b", "msrp://bob.example.org:1/b2;tcp")
            .await
            .is_ok()
    );
    assert_eq!(relay.terminate().code(), Some(0));
}

#[tokio::test]
async fn sigterm_during_a_bulk_transfer_exits_0_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let users = format!("{}{}", htdigest("alice", "pw-a"), htdigest("bob", "pw-b"));
    let (mut relay, addr, _) = tcp_relay_with_users(dir.path(), &users, "");
    let (alice, ta) = tcp_client(addr, "alice", "pw-a", "msrp://alice.example.org:1/a;tcp")
        .await
        .unwrap();
    let (mut bob, tb) = tcp_client(addr, "bob", "pw-b", "msrp://bob.example.org:1/b;tcp")
        .await
        .unwrap();
    // Alice streams a 64 MiB chunk; Bob reads it.
    let total = 64u64 << 20;
    let head = format!(
        "MSRP bulk0001 SEND\r\nTo-Path: {ta} {tb} msrp://bob.example.org:1/b;tcp\r\nFrom-Path: msrp://alice.example.org:1/a;tcp\r\nMessage-ID: bulk0001\r\nByte-Range: 1-*/{total}\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let (_r, mut w) = alice.into_split();
    let writer = tokio::spawn(async move {
        let _ = w.write_raw(head.as_bytes()).await;
        let block = vec![b'x'; 1 << 20];
        for _ in 0..64 {
            if w.write_raw(&block).await.is_err() {
                break;
            }
        }
    });
    let first = bob.read_message(T).await.unwrap();
    assert_eq!(
        first.flag,
        msrp_proto::Flag::More,
        "a piece of the transfer is in flight"
    );
    let started = Instant::now();
    let status = relay.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "within the 2 s grace (plus margin): {:?}",
        started.elapsed()
    );
    writer.abort();
}

/// The serving relay turns transparent huge pages off for itself (prctl PR_SET_THP_DISABLE,
/// see `no_transparent_huge_pages` in src/main.rs): with them, page faults on mimalloc's
/// memory stalled forwarding for tens of milliseconds (BENCHMARKS.md, "Fifth round").
#[test]
fn serving_relay_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (mut relay, _, _) = tcp_relay_with_users(dir.path(), &htdigest("alice", "pw"), "");
    let status = std::fs::read_to_string(format!("/proc/{}/status", relay.child.id())).unwrap();
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(str::trim);
    assert_eq!(thp, Some("0"), "/proc/<pid>/status:\n{status}");
    assert_eq!(relay.terminate().code(), Some(0));
}
