//! The admin listener: health, readiness and metrics (issue: operations).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use msrp_relay::client::SendOptions;
use msrp_relay::credentials::UsersFile;
use msrp_relay::relay::{Relay, TlsSetup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain HTTP/1.1 GET; returns (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the first sample line starting with `prefix`.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn readyz_is_200_only_once_the_listeners_accept() {
    let pki = Arc::new(Pki::new());
    let s = settings("relay.example.com");
    let (cert, key) = pki.leaf("relay.example.com");
    let (chain, key) = msrp_relay::tls::load_certified_key(&cert, &key).unwrap();
    let tls = TlsSetup {
        server: Some(msrp_relay::tls::server_config(chain, key, None).unwrap()),
        client: None,
    };
    let users = UsersFile::single(USER, "relay.example.com", PASSWORD);
    let relay = Relay::bind(s, users, tls).await.unwrap();
    let admin = relay.admin_addr().unwrap();
    assert_eq!(get(admin, "/healthz").await.0, 200);
    assert_eq!(
        get(admin, "/readyz").await.0,
        503,
        "bound but not accepting yet"
    );
    let handle = relay.start();
    assert_eq!(get(admin, "/readyz").await.0, 200);
    assert_eq!(get(admin, "/nope").await.0, 404);
    handle.shutdown().await;
}

#[tokio::test]
async fn metrics_move_after_an_auth_and_a_send() {
    let relay = TestRelay::start().await;
    let admin = relay.handle.admin_addr().unwrap();
    let (status, before) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        before.contains("# TYPE msrp_relay_tokens gauge"),
        "{before}"
    );
    assert_eq!(
        sample(
            &before,
            "msrp_relay_auth_attempts_total{outcome=\"accepted\"}"
        ),
        0.0
    );

    let (mut alice, a, alice_uri) = relay.client("msrps://alice.example.org:7965/bar;tcp").await;
    let (mut bob, b, bob_uri) = relay.client("msrps://bob.example.net:8145/foo;tcp").await;
    let opts = SendOptions {
        message_id: "metric01",
        ..Default::default()
    };
    let tid = alice
        .send(
            &[
                a.use_path[0].clone(),
                b.use_path[0].clone(),
                bob_uri.clone(),
            ],
            std::slice::from_ref(&alice_uri),
            &opts,
            b"12345",
        )
        .await
        .unwrap();
    alice.response_to(&tid, T).await.unwrap();
    let m = bob.read_message(T).await.unwrap();
    assert_eq!(m.body_str(), "12345");

    let (_, after) = get(admin, "/metrics").await;
    assert_eq!(
        sample(
            &after,
            "msrp_relay_auth_attempts_total{outcome=\"accepted\"}"
        ),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "msrp_relay_auth_attempts_total{outcome=\"challenged\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &after,
            "msrp_relay_requests_forwarded_total{method=\"SEND\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            "msrp_relay_body_bytes_forwarded_total{method=\"SEND\"}"
        ),
        5.0
    );
    assert!(sample(&after, "msrp_relay_responses_sent_total{status=\"200\"}") >= 3.0);
    assert_eq!(sample(&after, "msrp_relay_tokens "), 2.0);
    let open = format!(
        "msrp_relay_connections{{listener=\"{}\",transport=\"tls\"}}",
        relay.tls_addr()
    );
    assert_eq!(sample(&after, &open), 2.0, "{after}");

    // A refusal is counted by reason.
    let mut c = relay.connect().await;
    c.write_raw(format!("MSRP zz1234 SEND\r\nTo-Path: msrps://relay.example.com:{}/nosuchtoken;tcp msrps://x.example.com:1/y;tcp\r\nFrom-Path: msrps://m.example.com:1/z;tcp\r\n-------zz1234$\r\n", relay.tls_addr().port()).as_bytes()).await.unwrap();
    assert_eq!(
        c.read_message(T).await.unwrap().head.response_code(),
        Some(481)
    );
    let (_, later) = get(admin, "/metrics").await;
    assert_eq!(
        sample(
            &later,
            "msrp_relay_rejections_total{reason=\"unknown_uri\"}"
        ),
        1.0
    );
}
