//! AUTH against the relay over real TLS (RFC 4976 §5.1, §6.3, §9.1; checklist T1–T4).

mod common;

use bytes::BytesMut;
use common::*;
use msrp_proto::digest::{ha1, request_digest, response_auth};
use msrp_proto::encoder::{write_end_line, HeadWriter};
use msrp_proto::{Flag, HeaderName, Method, TransactionId};
use msrp_relay::client::ClientError;

const FROM: &str = "msrps://alice.example.com:9892/98cjs;tcp";

fn auth_request(tid: &str, to: &str, authorization: Option<&str>, expires: Option<u64>) -> Vec<u8> {
    let tid = TransactionId::new(tid.as_bytes()).unwrap();
    let mut buf = BytesMut::new();
    let to = uri(to);
    let from = uri(FROM);
    let mut w = HeadWriter::request(&mut buf, &tid, &Method::Auth);
    w.path(HeaderName::ToPath, [&to])
        .path(HeaderName::FromPath, [&from]);
    if let Some(a) = authorization {
        w.header("Authorization", a.as_bytes());
    }
    if let Some(e) = expires {
        w.number("Expires", e);
    }
    w.finish(false);
    write_end_line(&mut buf, &tid, Flag::Complete, false);
    buf.to_vec()
}

const AUTH_TO: &str = "msrps://alice@relay.example.com;tcp";

fn authorization(nonce: &str, nc: &str, password: &str) -> String {
    let h = ha1(USER, "relay.example.com", password);
    let r = request_digest(&h, nonce, nc, "0a4f113b", AUTH_TO);
    format!(
        r#"Digest username="{USER}", realm="relay.example.com", nonce="{nonce}", qop=auth, nc={nc}, cnonce="0a4f113b", response="{r}""#
    )
}

#[tokio::test]
async fn t1_t2_auth_challenge_then_200_with_use_path() {
    let relay = TestRelay::start().await;
    let mut c = relay.connect().await;
    // T1: exact RFC bytes.
    c.write_raw(b"MSRP 49fh AUTH\r\nTo-Path: msrps://alice@relay.example.com;tcp\r\nFrom-Path: msrps://alice.example.com:9892/98cjs;tcp\r\n-------49fh$\r\n").await.unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(m.head.tid().as_str(), "49fh");
    assert_eq!(m.head.response_code(), Some(401));
    assert_eq!(
        m.head.to_path()[0].as_str(),
        FROM,
        "To-Path is the whole From-Path"
    );
    assert_eq!(
        m.head.from_path()[0].as_str(),
        AUTH_TO,
        "From-Path is our URI as addressed"
    );
    let raw = std::str::from_utf8(m.head.header("WWW-Authenticate").unwrap())
        .unwrap()
        .to_owned();
    assert!(raw.starts_with("Digest "));
    assert!(raw.contains(r#"qop="auth""#), "{raw}");
    assert!(!raw.contains("auth-int") && !raw.contains("MD5-sess") && !raw.contains("domain"));
    let ch = m.head.www_authenticate().unwrap().unwrap();
    assert_eq!(ch.realm, "relay.example.com");
    assert!(!ch.stale);

    // T2: valid Digest.
    c.write_raw(&auth_request(
        "49fi",
        AUTH_TO,
        Some(&authorization(&ch.nonce, "00000001", PASSWORD)),
        None,
    ))
    .await
    .unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(m.head.response_code(), Some(200), "{:?}", m.head);
    assert_eq!(m.head.tid().as_str(), "49fi");
    let use_path = m.head.use_path().unwrap();
    assert_eq!(use_path.len(), 1);
    let u = &use_path[0];
    assert_eq!(
        u.host(),
        "relay.example.com",
        "an FQDN, not an address (RFC 4976 §4.2)"
    );
    assert_eq!(
        u.port(),
        Some(relay.tls_addr().port()),
        "the port of the listener"
    );
    assert_eq!(u.scheme(), msrp_proto::Scheme::Msrps);
    assert!(u.session_id().unwrap().len() >= 22, "at least 128 bits");
    assert_eq!(m.head.expires(), Some(1800), "auth.expires_default");
    let info = m.head.authentication_info().unwrap().unwrap();
    let h = ha1(USER, "relay.example.com", PASSWORD);
    assert_eq!(
        info.rspauth.unwrap(),
        response_auth(&h, &ch.nonce, "00000001", "0a4f113b", AUTH_TO)
    );
    assert_eq!(info.cnonce.as_deref(), Some("0a4f113b"));
    assert_eq!(info.nc.as_deref(), Some("00000001"));
    assert_eq!(info.qop.as_deref(), Some("auth"));

    // A second AUTH mints a different URI (RFC 4976 §6.3); T3 uses nc=2 on the same nonce.
    c.write_raw(&auth_request(
        "49fj",
        AUTH_TO,
        Some(&authorization(&ch.nonce, "00000002", PASSWORD)),
        None,
    ))
    .await
    .unwrap();
    let m2 = c.read_message(T).await.unwrap();
    assert_eq!(m2.head.response_code(), Some(200));
    assert_ne!(m2.head.use_path().unwrap()[0].session_id(), u.session_id());
}

#[tokio::test]
async fn t3_expires_out_of_bounds_gets_423() {
    let relay = TestRelay::start().await;
    let mut c = relay.connect().await;
    c.write_raw(&auth_request("aaaa1", AUTH_TO, None, None))
        .await
        .unwrap();
    let ch = c
        .read_message(T)
        .await
        .unwrap()
        .head
        .www_authenticate()
        .unwrap()
        .unwrap();
    c.write_raw(&auth_request(
        "aaaa2",
        AUTH_TO,
        Some(&authorization(&ch.nonce, "00000001", PASSWORD)),
        Some(1),
    ))
    .await
    .unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(m.head.response_code(), Some(423));
    assert_eq!(m.head.min_expires(), Some(60));
    assert!(m.head.use_path().is_none());
    c.write_raw(&auth_request(
        "aaaa3",
        AUTH_TO,
        Some(&authorization(&ch.nonce, "00000002", PASSWORD)),
        Some(99_999_999),
    ))
    .await
    .unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(m.head.response_code(), Some(423));
    assert_eq!(m.head.max_expires(), Some(86400));
    assert!(m.head.min_expires().is_none());
    // Within bounds: granted as asked.
    c.write_raw(&auth_request(
        "aaaa4",
        AUTH_TO,
        Some(&authorization(&ch.nonce, "00000003", PASSWORD)),
        Some(600),
    ))
    .await
    .unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(
        (m.head.response_code(), m.head.expires()),
        (Some(200), Some(600))
    );
}

#[tokio::test]
async fn t4_bad_password_replay_and_stale_nonce() {
    let relay = TestRelay::start_with(|s| s.auth.max_failures = 3).await;
    let mut c = relay.connect().await;
    c.write_raw(&auth_request("bbbb1", AUTH_TO, None, None))
        .await
        .unwrap();
    let ch = c
        .read_message(T)
        .await
        .unwrap()
        .head
        .www_authenticate()
        .unwrap()
        .unwrap();

    // A correct response to a nonce this relay never issued: stale=true, not a failure.
    c.write_raw(&auth_request(
        "bbbb2",
        AUTH_TO,
        Some(&authorization("not-our-nonce", "00000001", PASSWORD)),
        None,
    ))
    .await
    .unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(m.head.response_code(), Some(401));
    assert!(m.head.www_authenticate().unwrap().unwrap().stale);

    // Wrong password: 401 without stale, with a new challenge.
    c.write_raw(&auth_request(
        "bbbb3",
        AUTH_TO,
        Some(&authorization(&ch.nonce, "00000001", "wrong")),
        None,
    ))
    .await
    .unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(m.head.response_code(), Some(401));
    assert!(!m.head.www_authenticate().unwrap().unwrap().stale);

    // Replay: the same nonce count again after a success is refused.
    c.write_raw(&auth_request(
        "bbbb4",
        AUTH_TO,
        Some(&authorization(&ch.nonce, "00000001", PASSWORD)),
        None,
    ))
    .await
    .unwrap();
    assert_eq!(
        c.read_message(T).await.unwrap().head.response_code(),
        Some(200)
    );
    c.write_raw(&auth_request(
        "bbbb5",
        AUTH_TO,
        Some(&authorization(&ch.nonce, "00000001", PASSWORD)),
        None,
    ))
    .await
    .unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(m.head.response_code(), Some(401), "nc replay");

    // The third failure closes the connection (RFC 4976 §6.3 SHOULD).
    let mut c = relay.connect().await;
    for i in 0..3 {
        c.write_raw(&auth_request(
            &format!("cccc{i}"),
            AUTH_TO,
            Some(&authorization("x", "00000001", "wrong")),
            None,
        ))
        .await
        .unwrap();
        assert_eq!(
            c.read_message(T).await.unwrap().head.response_code(),
            Some(401)
        );
    }
    assert!(
        c.closed_within(T).await,
        "connection closed after 3 failures"
    );
}

#[tokio::test]
async fn auth_over_plain_tcp_is_refused_unless_allowed() {
    let relay = TestRelay::start().await;
    let mut c = relay.connect_tcp().await;
    c.write_raw(&auth_request(
        "dddd1",
        "msrp://relay.example.com;tcp",
        None,
        None,
    ))
    .await
    .unwrap();
    let m = c.read_message(T).await.unwrap();
    assert_eq!(m.head.response_code(), Some(403));
    assert!(c.closed_within(T).await);

    let lab = TestRelay::start_with(|s| s.auth.allow_insecure_tcp = true).await;
    let mut c = lab.connect_tcp().await;
    let me = uri(FROM);
    let grant = c
        .auth(
            &uri("msrp://relay.example.com;tcp"),
            &me,
            USER,
            PASSWORD,
            None,
            T,
        )
        .await
        .unwrap();
    assert_eq!(grant.use_path[0].scheme(), msrp_proto::Scheme::Msrp);
    assert_eq!(grant.use_path[0].port(), Some(lab.tcp_addr().port()));
}

#[tokio::test]
async fn client_auth_helper_verifies_rspauth_and_reports_bad_passwords() {
    let relay = TestRelay::start().await;
    let (_c, grant, _) = relay.client(FROM).await;
    assert_eq!(grant.expires, Some(1800));
    let mut c = relay.connect().await;
    let err = c
        .auth(&relay.auth_uri(), &uri(FROM), USER, "nope", None, T)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Status { code: 401, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn listeners_serve_ipv6() {
    let relay = TestRelay::start_with(|s| {
        s.listen = vec![msrp_relay::config::ListenerConfig {
            transport: msrp_relay::config::Transport::Tls,
            address: "[::1]:0".parse().unwrap(),
        }];
    })
    .await;
    assert!(relay.tls_addr().is_ipv6());
    let (_c, grant, _) = relay.client(FROM).await;
    assert_eq!(grant.use_path[0].port(), Some(relay.tls_addr().port()));
}
