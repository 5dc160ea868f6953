//! The probe API on the admin listener: POST /api/msrp/send and /api/msrp/connect.

mod common;

use std::net::SocketAddr;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}", body.len())
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = out[9..12].parse().unwrap();
    let json = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap();
    (status, json)
}

async fn api_relay(token: Option<&str>, allowed: &[&str]) -> TestRelay {
    let token = token.map(str::to_owned);
    let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    TestRelay::start_with(move |s| {
        s.admin.probe_api = true;
        s.admin.token = token;
        s.admin.allowed_hosts = allowed;
        s.auth.allow_insecure_tcp = true;
    })
    .await
}

#[tokio::test]
async fn the_api_is_off_by_default() {
    let relay = TestRelay::start().await;
    let admin = relay.handle.admin_addr().unwrap();
    let (status, body) = post(
        admin,
        "/api/msrp/connect",
        None,
        &json!({ "host": "127.0.0.1" }),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["success"], false);
}

#[tokio::test]
async fn send_through_the_relay_to_a_listening_client() {
    let relay = api_relay(Some("s3cret-token"), &[]).await;
    let admin = relay.handle.admin_addr().unwrap();
    let (mut bob, b, bob_uri) = relay.client(BOB).await;
    let request = json!({
        "host": "127.0.0.1",
        "port": relay.tcp_addr().port(),
        "relayHost": "relay.example.com",
        "toPath": format!("{} {}", b.use_path[0], bob_uri),
        "content": "hello from the API",
        "contentType": "text/plain",
        "messageId": "api00001",
        "timeout": 5000,
        "username": USER,
        "password": PASSWORD,
    });
    // The token is required.
    let (status, _) = post(admin, "/api/msrp/send", None, &request).await;
    assert_eq!(status, 401);
    let (status, _) = post(admin, "/api/msrp/send", Some("wrong"), &request).await;
    assert_eq!(status, 401);

    let (status, out) = post(admin, "/api/msrp/send", Some("s3cret-token"), &request).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["success"], true, "{out}");
    assert_eq!(out["statusCode"], 200);
    assert_eq!(out["statusText"], "OK");
    assert_eq!(out["messageId"], "api00001");
    assert_eq!(out["byteRange"], "1-18/18");
    assert_eq!(out["host"], "127.0.0.1");
    assert!(out["transactionId"].as_str().is_some_and(|t| t.len() >= 4));
    assert!(out["rtt"].as_u64().is_some());
    let m = bob.read_message(T).await.unwrap();
    assert_eq!(m.body_str(), "hello from the API");

    // connect: reachability and AUTH.
    let (status, out) = post(
        admin,
        "/api/msrp/connect",
        Some("s3cret-token"),
        &json!({ "host": "127.0.0.1", "port": relay.tcp_addr().port(), "relayHost": "relay.example.com", "username": USER, "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(out["success"], true, "{out}");
    assert!(out["usePath"]
        .as_str()
        .unwrap()
        .contains("relay.example.com"));

    // An unreachable port is an answer with success false, not an HTTP error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, out) = post(
        admin,
        "/api/msrp/connect",
        Some("s3cret-token"),
        &json!({ "host": "127.0.0.1", "port": port, "timeout": 2000 }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(out["success"], false);
    assert!(out["error"].as_str().is_some());
}

#[tokio::test]
async fn bad_input_gets_400_naming_the_field() {
    let relay = api_relay(None, &[]).await;
    let admin = relay.handle.admin_addr().unwrap();
    let good = json!({ "host": "127.0.0.1", "port": relay.tcp_addr().port(), "toPath": "msrp://x.example.com:1/a;tcp", "content": "x" });
    let cases: Vec<(&str, Value)> = vec![
        ("host", json!({ "toPath": "msrp://x.example.com:1/a;tcp" })),
        ("toPath", json!({ "host": "127.0.0.1" })),
        (
            "toPath",
            json!({ "host": "127.0.0.1", "toPath": "http://not-msrp" }),
        ),
        ("fromPath", {
            let mut v = good.clone();
            v["fromPath"] = json!("nope");
            v
        }),
        ("content", {
            let mut v = good.clone();
            v["content"] = json!("x".repeat(20_000));
            v
        }),
        ("timeout", {
            let mut v = good.clone();
            v["timeout"] = json!(10);
            v
        }),
        ("timeout", {
            let mut v = good.clone();
            v["timeout"] = json!(600_000);
            v
        }),
        ("messageId", {
            let mut v = good.clone();
            v["messageId"] = json!("a b");
            v
        }),
        ("password", {
            let mut v = good.clone();
            v["username"] = json!("alice");
            v
        }),
        ("body", json!(["not", "an", "object"])),
    ];
    for (field, body) in cases {
        let (status, out) = post(admin, "/api/msrp/send", None, &body).await;
        assert_eq!(status, 400, "{field}: {out}");
        assert_eq!(out["field"], field, "{out}");
        assert!(out["error"].as_str().unwrap().starts_with(field));
    }
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_refused() {
    let relay = api_relay(None, &["relay.example.com"]).await;
    let admin = relay.handle.admin_addr().unwrap();
    let (status, out) = post(
        admin,
        "/api/msrp/connect",
        None,
        &json!({ "host": "127.0.0.1", "port": relay.tcp_addr().port() }),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(out["field"], "host");
}
