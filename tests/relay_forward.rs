//! SEND and REPORT forwarding between clients of one relay (RFC 4976 §6.4; checklist T5–T10).

mod common;

use common::*;
use msrp_proto::{FailureReport, Flag, Method};
use msrp_relay::client::SendOptions;

#[tokio::test]
async fn send_between_two_clients_of_one_relay_with_binary_body() {
    let relay = TestRelay::start().await;
    let (mut alice, a, alice_uri) = relay.client("msrps://alice.example.org:7965/bar;tcp").await;
    let (mut bob, b, bob_uri) = relay.client("msrps://bob.example.net:8145/foo;tcp").await;
    let ta = a.use_path[0].clone();
    let tb = b.use_path[0].clone();

    // Alice's To-Path: her relay URI, then Bob's path (his relay URI, then Bob).
    let body: &[u8] = b"\0\r\nbinary\xff\xfe\n\r -------zzzz$\r\n-------fake+\r\n end";
    let opts = SendOptions {
        message_id: "87652",
        success_report: Some(true),
        ..SendOptions::default()
    };
    let tid = alice
        .send(
            &[ta.clone(), tb.clone(), bob_uri.clone()],
            std::slice::from_ref(&alice_uri),
            &opts,
            body,
        )
        .await
        .unwrap();
    // The hop-by-hop 200 comes at once (RFC 4976 §6.4.1).
    let ok = alice.response_to(&tid, T).await.unwrap();
    assert_eq!(ok.head.response_code(), Some(200));
    assert_eq!(ok.head.to_path()[0], alice_uri);
    assert_eq!(ok.head.to_path().len(), 1);
    assert_eq!(ok.head.from_path()[0].as_str(), ta.as_str());

    let m = bob.read_message(T).await.unwrap();
    assert_eq!(m.head.method(), Some(&Method::Send));
    assert_ne!(m.head.tid(), &tid, "a fresh tid per hop");
    assert_eq!(m.head.to_path().len(), 1);
    assert_eq!(m.head.to_path()[0].as_str(), bob_uri.as_str());
    let from: Vec<&str> = m.head.from_path().iter().map(|u| u.as_str()).collect();
    assert_eq!(from, [tb.as_str(), ta.as_str(), alice_uri.as_str()]);
    assert_eq!(&m.body[..], body, "byte-identical body");
    assert_eq!(m.flag, Flag::Complete);
    assert_eq!(m.head.message_id(), Some(&b"87652"[..]));
    assert!(m.head.success_report());
    bob.respond(&m.head, 200, "OK").await.unwrap();

    // Bob's success REPORT back to Alice travels the reverse path and is never answered.
    let report = format!(
        "MSRP yh67 REPORT\r\nTo-Path: {tb} {ta} {alice_uri}\r\nFrom-Path: {bob_uri}\r\nMessage-ID: 87652\r\nByte-Range: 1-{n}/{n}\r\nStatus: 000 200 OK\r\n-------yh67$\r\n",
        n = body.len()
    );
    bob.write_raw(report.as_bytes()).await.unwrap();
    let r = alice.read_message(T).await.unwrap();
    assert_eq!(r.head.method(), Some(&Method::Report));
    assert_eq!(r.head.to_path()[0].as_str(), alice_uri.as_str());
    assert_eq!(r.head.status().unwrap().code, 200);
    let from: Vec<&str> = r.head.from_path().iter().map(|u| u.as_str()).collect();
    assert_eq!(from, [ta.as_str(), tb.as_str(), bob_uri.as_str()]);
    // No response to Bob's REPORT, no response to Bob's 200 forwarded to Alice.
    assert!(bob
        .read_message(std::time::Duration::from_millis(300))
        .await
        .is_err());
    assert!(alice
        .read_message(std::time::Duration::from_millis(300))
        .await
        .is_err());
}

#[tokio::test]
async fn failure_report_variants_and_downstream_errors_become_reports() {
    let relay = TestRelay::start().await;
    let (mut alice, a, alice_uri) = relay.client("msrps://alice.example.org:7965/bar;tcp").await;
    let (mut bob, b, bob_uri) = relay.client("msrps://bob.example.net:8145/foo;tcp").await;
    let to = [
        a.use_path[0].clone(),
        b.use_path[0].clone(),
        bob_uri.clone(),
    ];
    let from = [alice_uri.clone()];

    // Failure-Report: no → no response at all, still forwarded (T8).
    let opts = SendOptions {
        message_id: "nofr0001",
        failure_report: Some("no"),
        ..Default::default()
    };
    alice.send(&to, &from, &opts, b"quiet").await.unwrap();
    let m = bob.read_message(T).await.unwrap();
    assert_eq!(m.head.failure_report(), FailureReport::No);
    bob.respond(&m.head, 481, "Session Does Not Exist")
        .await
        .unwrap();
    assert!(
        alice
            .read_message(std::time::Duration::from_millis(400))
            .await
            .is_err(),
        "no 200 and no REPORT"
    );

    // Failure-Report: partial → no 200; a downstream 481 becomes REPORT 481 (T8, T13).
    let opts = SendOptions {
        message_id: "part0001",
        failure_report: Some("partial"),
        ..Default::default()
    };
    alice.send(&to, &from, &opts, b"hello").await.unwrap();
    let m = bob.read_message(T).await.unwrap();
    bob.respond(&m.head, 481, "Session Does Not Exist")
        .await
        .unwrap();
    let r = alice.read_message(T).await.unwrap();
    assert_eq!(
        r.head.method(),
        Some(&Method::Report),
        "no 200 for partial: {:?}",
        r.head
    );
    assert_eq!(r.head.status().unwrap().code, 481);
    assert_eq!(r.head.message_id(), Some(&b"part0001"[..]));
    assert_eq!(r.head.byte_range().unwrap().end, Some(5));
    assert!(r.head.header("Failure-Report").is_none() && r.head.header("Success-Report").is_none());

    // Failure-Report absent (yes) → 200 now, REPORT 413 when Bob answers 413 (T13).
    let opts = SendOptions {
        message_id: "yes00001",
        ..Default::default()
    };
    let tid = alice.send(&to, &from, &opts, b"big").await.unwrap();
    assert_eq!(
        alice
            .response_to(&tid, T)
            .await
            .unwrap()
            .head
            .response_code(),
        Some(200)
    );
    let m = bob.read_message(T).await.unwrap();
    bob.respond(&m.head, 413, "Message Too Large")
        .await
        .unwrap();
    let r = alice.read_message(T).await.unwrap();
    assert_eq!(r.head.status().unwrap().code, 413);
    assert_eq!(r.head.to_path()[0], alice_uri);
}

#[tokio::test]
async fn t9_t10_stranger_and_stale_tokens_are_not_forwarded() {
    let relay = TestRelay::start().await;
    let (mut alice, a, alice_uri) = relay.client("msrps://alice.example.org:7965/bar;tcp").await;
    let ta = a.use_path[0].clone();

    // T9: Mallory, unauthenticated, tries to reach a victim through Alice's token. The victim
    // is a real listener: it must never see a connection.
    let victim = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let victim_uri = format!(
        "msrp://127.0.0.1:{}/x9;tcp",
        victim.local_addr().unwrap().port()
    );
    let mut mallory = relay.connect().await;
    let spam = format!(
        "MSRP m4ll0ry1 SEND\r\nTo-Path: {ta} msrps://hop.example.com:2855/h;tcp {victim_uri}\r\nFrom-Path: msrps://mallory.example.com:2855/zz;tcp\r\nMessage-ID: spam0001\r\nByte-Range: 1-4/4\r\nContent-Type: text/plain\r\n\r\nspam\r\n-------m4ll0ry1$\r\n"
    );
    mallory.write_raw(spam.as_bytes()).await.unwrap();
    let m = mallory.read_message(T).await.unwrap();
    assert_eq!(m.head.response_code(), Some(403));
    assert!(
        mallory.closed_within(T).await,
        "unauthenticated open-relay attempt closes the connection"
    );
    // With one URI after the token, the next hop can only be the owner: the request goes
    // over Alice's connection and nowhere else (RFC 4976 §6.4).
    let mut mallory = relay.connect().await;
    let spam = format!(
        "MSRP m4ll0ry2 SEND\r\nTo-Path: {ta} {victim_uri}\r\nFrom-Path: msrps://mallory.example.com:2855/zz;tcp\r\nMessage-ID: spam0002\r\nByte-Range: 1-4/4\r\nContent-Type: text/plain\r\n\r\nspam\r\n-------m4ll0ry2$\r\n"
    );
    mallory.write_raw(spam.as_bytes()).await.unwrap();
    let to_alice = alice.read_message(T).await.unwrap();
    assert_eq!(
        to_alice.head.to_path()[0].as_str(),
        victim_uri,
        "delivered to the owner only"
    );
    let dialled =
        tokio::time::timeout(std::time::Duration::from_millis(300), victim.accept()).await;
    assert!(
        dialled.is_err(),
        "the relay never dials a stranger's next hop"
    );

    // T7: a stranger may reach the token's owner (and only the owner).
    let mut bob = relay.connect().await;
    let inbound = format!(
        "MSRP xght6 SEND\r\nTo-Path: {ta} {alice_uri}\r\nFrom-Path: msrps://bob.example.net:8145/foo;tcp\r\nMessage-ID: 9d8e7f6a\r\nByte-Range: 1-20/20\r\nContent-Type: text/plain\r\n\r\nThanks for the file.\r\n-------xght6$\r\n"
    );
    bob.write_raw(inbound.as_bytes()).await.unwrap();
    let ok = bob.read_message(T).await.unwrap();
    assert_eq!(ok.head.response_code(), Some(200));
    assert_eq!(
        ok.head.to_path()[0].as_str(),
        "msrps://bob.example.net:8145/foo;tcp"
    );
    assert_eq!(ok.head.from_path()[0].as_str(), ta.as_str());
    let m = alice.read_message(T).await.unwrap();
    assert_eq!(m.body_str(), "Thanks for the file.");
    assert_eq!(m.head.to_path()[0], alice_uri);

    // T10: an unknown token gets 481 and nothing is forwarded.
    let bogus = ta
        .as_str()
        .replace(ta.session_id().unwrap(), "NOSUCHTOKEN0001");
    let mut c = relay.connect().await;
    let msg = format!(
        "MSRP zzzz1 SEND\r\nTo-Path: {bogus} {alice_uri}\r\nFrom-Path: msrps://bob.example.net:8145/foo;tcp\r\nMessage-ID: 9d8e7f6b\r\nByte-Range: 1-1/1\r\nContent-Type: text/plain\r\n\r\nx\r\n-------zzzz1$\r\n"
    );
    c.write_raw(msg.as_bytes()).await.unwrap();
    assert_eq!(
        c.read_message(T).await.unwrap().head.response_code(),
        Some(481)
    );

    // T10: Alice's connection closes; her token dies with it.
    drop(alice);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut c = relay.connect().await;
    c.write_raw(inbound.as_bytes()).await.unwrap();
    assert_eq!(
        c.read_message(T).await.unwrap().head.response_code(),
        Some(481)
    );
}
