//! The client commands as a user runs them: the real binary (`send`, `probe`, `listen`)
//! against an in-process relay with a test CA. Every child process is bounded in time and
//! killed at the end.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use md5::{Digest, Md5};

const BIN: &str = env!("CARGO_BIN_EXE_msrp-relay");
/// The longest any one child may run.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// What a finished command left.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary to completion (killed after CHILD_LIMIT) without blocking the relay.
async fn run(args: Vec<String>) -> Outcome {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        let status = wait_bounded(&mut child, CHILD_LIMIT);
        Outcome {
            code: status.unwrap_or(-1),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    })
    .await
    .unwrap()
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Waits for the child's exit code, killing it after `limit` (then `None`).
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s.code().unwrap_or(-1));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `listen` child: its stdout lines arrive on a channel; killed when dropped.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// The first line: the To-Path that reaches it.
    to_path: String,
}

impl Listener {
    async fn start(args: Vec<String>) -> Listener {
        let mut child = Command::new(BIN)
            .arg("listen")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Some(drain(child.stderr.take().unwrap()));
        let mut l = Listener {
            child,
            lines,
            stderr,
            to_path: String::new(),
        };
        l.to_path = l.next_line().await.unwrap_or_else(|| {
            let _ = l.child.kill();
            let _ = l.child.wait();
            panic!(
                "listen printed no To-Path; stderr: {}",
                l.stderr.take().unwrap().join().unwrap()
            )
        });
        l
    }

    /// The next stdout line, waiting at most 20 s (without blocking the relay).
    async fn next_line(&mut self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.lines.try_recv() {
                Ok(l) => return Some(l),
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) if Instant::now() > deadline => return None,
                Err(mpsc::TryRecvError::Empty) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
            }
        }
    }

    /// Waits (at most 20 s) for it to exit; returns its code and all remaining stdout.
    async fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut rest = String::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            rest.push_str(&l);
            rest.push('\n');
        }
        let err = self.stderr.take().unwrap().join().unwrap();
        (code, rest, err)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay, a password file and the options that reach the relay (TLS, test CA).
struct Setup {
    relay: TestRelay,
    dir: tempfile::TempDir,
    password_file: PathBuf,
}

impl Setup {
    async fn new() -> Setup {
        Setup::with(TestRelay::start().await)
    }

    fn with(relay: TestRelay) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        Setup {
            relay,
            dir,
            password_file,
        }
    }

    fn relay_uri(&self) -> String {
        format!(
            "msrps://{}:{};tcp",
            self.relay.hostname,
            self.relay.tls_addr().port()
        )
    }

    /// `--relay … --connect … --ca …` (no credentials).
    fn reach(&self) -> Vec<String> {
        strings(&[
            "--relay",
            &self.relay_uri(),
            "--connect",
            &self.relay.tls_addr().to_string(),
            "--ca",
            self.relay.pki.ca_pem.to_str().unwrap(),
            "--timeout",
            "10s",
        ])
    }

    /// `reach()` plus `--user Alice --password-file …`.
    fn login(&self) -> Vec<String> {
        let mut v = self.reach();
        v.extend(strings(&[
            "--user",
            USER,
            "--password-file",
            self.password_file.to_str().unwrap(),
        ]));
        v
    }

    fn send(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec!["send".to_owned()];
        v.extend(self.login());
        v.extend(strings(extra));
        v
    }

    fn listen_args(&self, extra: &[&str]) -> Vec<String> {
        let mut v = self.login();
        v.extend(strings(extra));
        v
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_reaches_a_listener_through_one_relay_with_a_success_report() {
    let s = Setup::new().await;
    let listener = Listener::start(s.listen_args(&["--count", "1"])).await;
    // Use-Path then the listener's own URI.
    let hops: Vec<&str> = listener.to_path.split(' ').collect();
    assert_eq!(hops.len(), 2, "{}", listener.to_path);
    assert!(
        hops[0].starts_with(&format!(
            "msrps://relay.example.com:{}/",
            s.relay.tls_addr().port()
        )),
        "{}",
        listener.to_path
    );

    let sent = run(s.send(&[
        "--to",
        &listener.to_path,
        "--content",
        "hello through the relay",
        "--message-id",
        "hello0001",
        "--success-report",
    ]))
    .await;
    assert_eq!(sent.code, 0, "{sent:?}");
    assert!(
        sent.stdout
            .contains("message hello0001 (23 bytes in 1 chunk)"),
        "{sent:?}"
    );
    assert!(sent.stdout.contains("200 OK"), "{sent:?}");
    assert!(
        sent.stdout.contains("delivered: success REPORT 200"),
        "{sent:?}"
    );

    let (code, out, err) = listener.finish().await;
    assert_eq!(code, Some(0), "listen exits after --count 1: {out}\n{err}");
    assert!(out.contains("message hello0001 from "), "{out}");
    assert!(out.contains("(23 bytes, text/plain)"), "{out}");
    assert!(out.contains("hello through the relay"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_file_arrives_intact_and_json_carries_the_fields() {
    let s = Setup::new().await;
    let save = s.dir.path().join("received");
    let listener = Listener::start(s.listen_args(&[
        "--count",
        "1",
        "--save-dir",
        save.to_str().unwrap(),
        "--json",
    ]))
    .await;

    // 10 MiB that no compression or repetition could fake.
    let mut data = vec![0u8; 10 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let file = s.dir.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();

    // The To-Path given as separate --to values, in order.
    let mut args = s.send(&[
        "--file",
        file.to_str().unwrap(),
        "--message-id",
        "bigfile01",
        "--json",
    ]);
    for hop in listener.to_path.split(' ') {
        args.push("--to".into());
        args.push(hop.into());
    }
    let sent = run(args).await;
    assert_eq!(sent.code, 0, "{sent:?}");
    let v = json(&sent.stdout);
    let keys: std::collections::BTreeSet<&str> =
        v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "byteRange",
            "host",
            "messageId",
            "port",
            "rtt",
            "statusCode",
            "statusText",
            "success",
            "transactionId"
        ]
        .into_iter()
        .collect(),
        "exactly the probe service's fields: {v}"
    );
    assert_eq!(v["success"], true);
    assert_eq!(v["host"], "relay.example.com");
    assert_eq!(v["port"], s.relay.tls_addr().port());
    assert_eq!(v["statusCode"], 200);
    assert_eq!(v["statusText"], "OK");
    assert_eq!(v["messageId"], "bigfile01");
    assert_eq!(v["byteRange"], "1-10485760/10485760");
    assert!(v["rtt"].is_u64(), "{v}");
    assert!(v["transactionId"].as_str().is_some_and(|t| !t.is_empty()));

    let (code, out, err) = listener.finish().await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let event = json(out.lines().next().unwrap_or(""));
    assert_eq!(event["event"], "message");
    assert_eq!(event["messageId"], "bigfile01");
    assert_eq!(event["size"], 10 << 20);
    assert_eq!(event["contentType"], "application/octet-stream");
    let saved = save.join("bigfile01");
    assert_eq!(event["savedTo"], saved.display().to_string());
    let got = std::fs::read(&saved).unwrap();
    assert_eq!(got.len(), data.len());
    assert_eq!(md5_hex(&got), md5_hex(&data), "same content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_1_when_the_relay_answers_with_an_error() {
    let s = Setup::new().await;
    // A wrong password: the relay answers the credentials with a new 401.
    let wrong = s.dir.path().join("wrong");
    std::fs::write(&wrong, "not the password\n").unwrap();
    let mut args = vec!["send".to_owned()];
    args.extend(s.reach());
    args.extend(strings(&[
        "--user",
        USER,
        "--password-file",
        wrong.to_str().unwrap(),
        "--to",
        "msrps://peer.example.com:2855/abc;tcp",
        "--content",
        "x",
        "--json",
    ]));
    let out = run(args).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("error answer"), "{out:?}");
    assert!(out.stderr.contains("401"), "{out:?}");
    let v = json(&out.stdout);
    assert_eq!(v["success"], false);
    assert_eq!(v["statusCode"], 401);
    assert!(v["error"].as_str().unwrap().contains("AUTH"), "{v}");

    // Right password, but a To-Path whose next hop is no URI of this relay: 481.
    let bogus = format!(
        "msrps://relay.example.com:{}/notatoken;tcp",
        s.relay.tls_addr().port()
    );
    let out = run(s.send(&[
        "--to",
        &bogus,
        "--to",
        "msrps://peer.example.com:2855/abc;tcp",
        "--content",
        "x",
    ]))
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("481"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_2_for_usage_and_configuration_errors() {
    let s = Setup::new().await;
    let peer = "msrps://peer.example.com:2855/abc;tcp";
    let pw = s.password_file.to_str().unwrap().to_owned();
    for (relay, password_file, to, what) in [
        (
            "http://relay.example.com:2855",
            pw.as_str(),
            peer,
            "--relay",
        ),
        (
            "msrps://relay.example.com:2855/session;tcp",
            pw.as_str(),
            peer,
            "session-id",
        ),
        (
            "msrps://relay.example.com:2855;tcp",
            pw.as_str(),
            "not a uri",
            "--to",
        ),
        (
            "msrps://relay.example.com:2855;tcp",
            "/nonexistent/password",
            peer,
            "/nonexistent/password",
        ),
    ] {
        let out = run(strings(&[
            "send",
            "--relay",
            relay,
            "--user",
            USER,
            "--password-file",
            password_file,
            "--to",
            to,
            "--content",
            "x",
            "--insecure",
        ]))
        .await;
        assert_eq!(out.code, 2, "{what}: {out:?}");
        assert!(
            out.stderr.contains("usage or configuration error"),
            "{out:?}"
        );
        assert!(out.stderr.contains(what), "{what}: {out:?}");
    }
    // clap's own usage errors are 2 as well.
    let out = run(strings(&["send", "--relay", "msrps://r.example.com;tcp"])).await;
    assert_eq!(out.code, 2, "{out:?}");
    let out = run(strings(&[
        "probe",
        "--relay",
        "msrps://r.example.com;tcp",
        "--user",
        "a",
    ]))
    .await;
    assert_eq!(out.code, 2, "--user without --password-file: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_3_for_network_and_tls_failures() {
    let s = Setup::new().await;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut args = s.send(&[
        "--to",
        "msrps://peer.example.com:2855/abc;tcp",
        "--content",
        "x",
    ]);
    let at = args.iter().position(|a| a == "--connect").unwrap();
    args[at + 1] = format!("127.0.0.1:{port}");
    let out = run(args).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("network or TLS failure"), "{out:?}");
    assert!(out.stderr.contains(&format!("127.0.0.1:{port}")), "{out:?}");

    // A certificate from a CA we do not trust: the handshake fails.
    let other = Pki::new();
    let mut args = vec!["probe".to_owned()];
    args.extend(s.reach());
    let at = args.iter().position(|a| a == "--ca").unwrap();
    args[at + 1] = other.ca_pem.to_str().unwrap().to_owned();
    let out = run(args).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("TLS"), "{out:?}");

    // The relay's name in the URI but the certificate checked against it: a wrong name fails
    // too, --insecure accepts it.
    let uri = format!(
        "msrps://wrong.example.com:{};tcp",
        s.relay.tls_addr().port()
    );
    let mut args = vec!["probe".to_owned()];
    args.extend(s.reach());
    args[2] = uri.clone();
    let out = run(args.clone()).await;
    assert_eq!(out.code, 3, "{out:?}");
    let at = args.iter().position(|a| a == "--ca").unwrap();
    args.drain(at..at + 2);
    args.push("--insecure".into());
    let out = run(args).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("NOT verified"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_timings_certificate_and_use_path() {
    let s = Setup::new().await;
    let mut args = vec!["probe".to_owned()];
    args.extend(s.login());
    args.push("--json".into());
    let out = run(args).await;
    assert_eq!(out.code, 0, "{out:?}");
    let v = json(&out.stdout);
    assert_eq!(v["success"], true);
    assert_eq!(v["host"], "relay.example.com");
    assert_eq!(v["address"], s.relay.tls_addr().to_string());
    for k in ["tcpConnectMs", "tlsHandshakeMs", "authMs"] {
        assert!(v[k].as_f64().is_some_and(|ms| ms >= 0.0), "{k}: {v}");
    }
    assert!(
        v["tlsVersion"].as_str().unwrap().starts_with("TLSv1"),
        "{v}"
    );
    assert_eq!(v["certificateVerified"], true);
    let cert = &v["certificate"];
    assert_eq!(cert["names"], serde_json::json!(["relay.example.com"]));
    assert!(cert["subject"]
        .as_str()
        .unwrap()
        .contains("relay.example.com"));
    assert!(cert["issuer"]
        .as_str()
        .unwrap()
        .contains("msrp-relay test CA"));
    assert!(cert["expiresInDays"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(v["usePath"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["expires"], 1800);

    // Without credentials it stops after TLS; text output.
    let mut args = vec!["probe".to_owned()];
    args.extend(s.reach());
    let out = run(args).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("tls handshake"), "{out:?}");
    assert!(
        out.stdout.contains("names        relay.example.com"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("use-path"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_renews_its_auth_and_stays_reachable() {
    let relay = TestRelay::start_with(|s| s.auth.expires_min = 1).await;
    let s = Setup::with(relay);
    let mut listener =
        Listener::start(s.listen_args(&["--count", "1", "--expires", "6", "--json"])).await;
    // At 80% of 6 s it AUTHs again and announces the new To-Path.
    let line = listener.next_line().await.expect("an auth event");
    let v = json(&line);
    assert_eq!(v["event"], "auth", "{v}");
    assert_eq!(v["expires"], 6);
    let renewed = v["toPath"].as_str().unwrap().to_owned();
    assert_ne!(renewed, listener.to_path, "a new URI for every AUTH");
    assert_eq!(
        renewed.rsplit(' ').next(),
        listener.to_path.rsplit(' ').next(),
        "the listener's own URI stays"
    );

    let out = run(s.send(&["--to", &renewed, "--content", "after renewal"])).await;
    assert_eq!(out.code, 0, "{out:?}");
    let (code, rest, err) = listener.finish().await;
    assert_eq!(code, Some(0), "{rest}\n{err}");
    let message = rest
        .lines()
        .map(json)
        .find(|v| v["event"] == "message")
        .unwrap_or_else(|| panic!("no message event: {rest}\n{err}"));
    assert_eq!(message["text"], "after renewal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_exits_0_on_sigint() {
    let s = Setup::new().await;
    let listener = Listener::start(s.listen_args(&[])).await;
    let pid = listener.child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let (code, out, err) = listener.finish().await;
    assert_eq!(code, Some(0), "{out}\n{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_drops_an_aborted_message_and_answers_each_chunk() {
    use msrp_proto::{ByteRange, Flag};
    use msrp_relay::client::SendOptions;
    let s = Setup::new().await;
    let save = s.dir.path().join("saved");
    let listener = Listener::start(s.listen_args(&[
        "--count",
        "1",
        "--save-dir",
        save.to_str().unwrap(),
        "--json",
    ]))
    .await;
    let (mut alice, grant, me) = s.relay.client("msrps://alice.invalid:2855/a1;tcp").await;
    let mut to = grant.use_path.clone();
    to.extend(listener.to_path.split(' ').map(uri));
    let from = [me];
    let piece = |start: u64, flag| SendOptions {
        message_id: "abrt0001",
        byte_range: Some(ByteRange {
            start,
            end: Some(start + 4),
            total: Some(100),
        }),
        flag,
        ..SendOptions::default()
    };
    for (start, flag) in [(1, Flag::More), (6, Flag::Abort)] {
        let tid = alice
            .send(&to, &from, &piece(start, flag), b"abcde")
            .await
            .unwrap();
        let ok = alice.response_to(&tid, T).await.unwrap();
        assert_eq!(ok.head.response_code(), Some(200));
    }
    let done = SendOptions {
        message_id: "done0001",
        ..SendOptions::default()
    };
    let tid = alice.send(&to, &from, &done, b"whole").await.unwrap();
    assert_eq!(
        alice
            .response_to(&tid, T)
            .await
            .unwrap()
            .head
            .response_code(),
        Some(200)
    );

    let (code, out, err) = listener.finish().await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let events: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(events[0]["event"], "aborted", "{out}");
    assert_eq!(events[0]["messageId"], "abrt0001");
    assert_eq!(events[0]["size"], 10);
    assert_eq!(events[1]["event"], "message", "{out}");
    assert!(!save.join("abrt0001").exists(), "no partial file is left");
    assert_eq!(std::fs::read(save.join("done0001")).unwrap(), b"whole");
}

/// Both relay names resolve to 127.0.0.1 for the relays' own next-hop dialling.
fn chain_names(s: &mut msrp_relay::config::Settings) {
    for name in ["relay-a.test", "relay-b.test"] {
        s.dns.static_hosts.push(msrp_relay::config::StaticHost {
            name: name.to_owned(),
            addresses: vec!["127.0.0.1".parse().unwrap()],
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_reaches_a_listener_through_two_chained_relays() {
    let pki = std::sync::Arc::new(Pki::new());
    let a = Setup::with(TestRelay::start_in(pki.clone(), "relay-a.test", chain_names).await);
    let b = Setup::with(TestRelay::start_in(pki, "relay-b.test", chain_names).await);
    // Bob listens on relay B; Alice sends through relay A, which dials B (mutual TLS).
    let listener = Listener::start(b.listen_args(&["--count", "1"])).await;
    assert!(
        listener.to_path.starts_with("msrps://relay-b.test:"),
        "{}",
        listener.to_path
    );
    let sent = run(a.send(&[
        "--to",
        &listener.to_path,
        "--content",
        "hello through two relays",
        "--message-id",
        "chain0001",
        "--success-report",
    ]))
    .await;
    assert_eq!(sent.code, 0, "{sent:?}");
    assert!(
        sent.stdout.contains("delivered: success REPORT 200"),
        "{sent:?}"
    );
    let (code, out, err) = listener.finish().await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("hello through two relays"), "{out}");
}
