//! Streaming through the relay: pipelining, re-chunking of a long chunk, REPORTs that overtake
//! a transfer, the transaction timer, and either side vanishing mid-transfer (RFC 4975
//! §7.1.1, §7.3.1; RFC 4976 §3, §6.4.1, §6.4.3; checklist T12, T15 and items 76–82).

mod common;

use std::time::{Duration, Instant};

use common::*;
use md5::{Digest as _, Md5};
use msrp_proto::{ByteRange, Flag, Method, MsrpUri};
use msrp_relay::client::{ClientError, Connection, Message, SendOptions};

const QUIET: Duration = Duration::from_millis(300);

fn join(uris: &[MsrpUri]) -> String {
    uris.iter()
        .map(MsrpUri::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The head of a SEND with a body, up to and including the empty line.
fn send_head(tid: &str, to: &[MsrpUri], from: &MsrpUri, message_id: &str, range: &str) -> String {
    format!(
        "MSRP {tid} SEND\r\nTo-Path: {}\r\nFrom-Path: {from}\r\nMessage-ID: {message_id}\r\nByte-Range: {range}\r\nContent-Type: application/octet-stream\r\n\r\n",
        join(to)
    )
}

/// Deterministic bytes that never contain an end-line (no `-` at all).
fn body_bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match (x >> 24) as u8 {
                b'-' => b'+',
                b => b,
            }
        })
        .collect()
}

/// Alice sends `body` as Message-ID `message_id` and gets her hop-by-hop 200 (RFC 4976
/// §6.4.1); Bob's copy is returned, not yet answered.
async fn send_one(
    alice: &mut Connection,
    bob: &mut Connection,
    to: &[MsrpUri],
    from: &MsrpUri,
    message_id: &str,
    body: &[u8],
) -> Message {
    let opts = SendOptions {
        message_id,
        ..SendOptions::default()
    };
    alice
        .send(to, std::slice::from_ref(from), &opts, body)
        .await
        .unwrap();
    let ok = alice.read_message(T).await.unwrap();
    assert_eq!(ok.head.response_code(), Some(200), "{:?}", ok.head);
    bob.read_message(T).await.unwrap()
}

async fn nothing_arrives(c: &mut Connection, who: &str) {
    match c.read_message(QUIET).await {
        Err(ClientError::Timeout(..)) => {}
        Ok(m) => panic!("{who} received {:?}", m.head),
        Err(e) => panic!("{who}: {e}"),
    }
}

/// Checks that `piece` is the next piece of a re-chunked message at byte `next` and returns
/// the position after it.
fn check_piece(piece: &Message, next: u64, total: u64, chunk_size: usize) -> u64 {
    assert_eq!(piece.head.method(), Some(&Method::Send));
    let len = piece.body.len();
    assert!(len > 0 && len <= chunk_size, "piece of {len} bytes");
    let r = piece
        .head
        .byte_range()
        .expect("each piece has a Byte-Range");
    assert_eq!(r.start, next, "pieces in order, without gaps or overlaps");
    assert_eq!(
        r.end,
        Some(next + len as u64 - 1),
        "range end matches the body"
    );
    assert_eq!(r.total, Some(total));
    let end = next + len as u64;
    let expect = if end - 1 > total {
        panic!("beyond the total: {r} with {len} bytes at {next}")
    } else if end - 1 == total {
        Flag::Complete
    } else {
        Flag::More
    };
    assert_eq!(
        piece.flag, expect,
        "`$` only on the last piece (byte {next})"
    );
    end
}

#[tokio::test]
async fn five_hundred_pipelined_sends_arrive_in_order() {
    const N: usize = 500;
    let relay = TestRelay::start().await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;

    // Bob reads and answers concurrently.
    let bob_task = tokio::spawn(async move {
        let mut ids = Vec::with_capacity(N);
        for _ in 0..N {
            let m = bob.read_message(T).await.unwrap();
            assert_eq!(m.head.method(), Some(&Method::Send));
            let id = String::from_utf8(m.head.message_id().unwrap().to_vec()).unwrap();
            assert_eq!(m.body_str(), format!("body of {id}"));
            bob.respond(&m.head, 200, "OK").await.unwrap();
            ids.push(id);
        }
        nothing_arrives(&mut bob, "Bob").await;
        ids
    });

    // All 500 written back to back, without waiting for any response (RFC 4975 §7.1.1).
    let mut all = Vec::new();
    let mut tids = Vec::with_capacity(N);
    for i in 0..N {
        let tid = format!("pipe{i:04}");
        let id = format!("m{i:07}");
        let body = format!("body of {id}");
        all.extend_from_slice(
            send_head(
                &tid,
                &to,
                &alice_uri,
                &id,
                &format!("1-{0}/{0}", body.len()),
            )
            .as_bytes(),
        );
        all.extend_from_slice(body.as_bytes());
        all.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
        tids.push(tid);
    }
    alice.write_raw(&all).await.unwrap();

    let mut answered = Vec::with_capacity(N);
    for _ in 0..N {
        let m = alice.read_message(T).await.unwrap();
        assert!(!m.head.is_request(), "{:?}", m.head);
        assert_eq!(m.head.response_code(), Some(200), "{:?}", m.head);
        answered.push(m.head.tid().as_str().to_owned());
    }
    let mut sorted = answered.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, tids, "one 200 for each of the {N} SENDs");
    nothing_arrives(&mut alice, "Alice").await;

    let ids = bob_task.await.unwrap();
    let want: Vec<String> = (0..N).map(|i| format!("m{i:07}")).collect();
    assert_eq!(ids, want, "Bob receives all {N} in order");
}

#[tokio::test]
async fn an_8_mib_chunk_is_rechunked_and_a_report_overtakes_it() {
    const TOTAL: usize = 8 * 1024 * 1024;
    let chunk_size = msrp_relay::config::LimitsConfig::default().chunk_size;
    // A short data queue so that the relay really holds the transfer back while Bob waits.
    let relay = TestRelay::start_with(|s| s.limits.write_queue_frames = 4).await;
    let (alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let (mut alice_rd, mut alice_wr) = alice.into_split();

    let body = body_bytes(TOTAL);
    let want_hash = Md5::digest(&body);
    let head = send_head(
        "b1gchunk",
        &to,
        &alice_uri,
        "big8mib1",
        &format!("1-*/{TOTAL}"),
    );

    // Alice writes three quarters of the chunk, then (once her REPORT is in) the rest: the
    // chunk cannot be complete, and her 200 cannot exist, before the REPORT reached her.
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        alice_wr.write_raw(head.as_bytes()).await.unwrap();
        let split = TOTAL / 4 * 3;
        for part in body[..split].chunks(64 * 1024) {
            alice_wr.write_raw(part).await.unwrap();
        }
        go_rx.await.unwrap();
        for part in body[split..].chunks(64 * 1024) {
            alice_wr.write_raw(part).await.unwrap();
        }
        alice_wr
            .write_raw(b"\r\n-------b1gchunk$\r\n")
            .await
            .unwrap();
        alice_wr
    });

    // Bob takes the first piece and then stops reading for a moment, so the transfer
    // backs up into the relay.
    let first = bob.read_message(T).await.unwrap();
    let mut hasher = Md5::new();
    let mut next = check_piece(&first, 1, TOTAL as u64, chunk_size);
    hasher.update(&first.body);
    bob.respond(&first.head, 200, "OK").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Bob's REPORT toward Alice (for another message) gets through at once
    // (RFC 4975 §7.1.1, checklist 78).
    let report = format!(
        "MSRP rep0rt01 REPORT\r\nTo-Path: {} {} {alice_uri}\r\nFrom-Path: {}\r\nMessage-ID: other001\r\nByte-Range: 1-10/10\r\nStatus: 000 200 OK\r\n-------rep0rt01$\r\n",
        to[1], to[0], to[2]
    );
    let sent = Instant::now();
    bob.write_raw(report.as_bytes()).await.unwrap();
    let r = alice_rd.read_message(T).await.unwrap();
    let took = sent.elapsed();
    assert_eq!(
        r.head.method(),
        Some(&Method::Report),
        "the REPORT comes before anything else: {:?}",
        r.head
    );
    assert_eq!(r.head.message_id(), Some(&b"other001"[..]));
    assert!(took < Duration::from_secs(1), "REPORT took {took:?}");
    go_tx.send(()).unwrap();

    // Now Bob reads the rest: pieces of at most chunk_size that tile 1..=TOTAL in order.
    let mut pieces = 1;
    let mut tids = vec![first.head.tid().as_str().to_owned()];
    while next <= TOTAL as u64 {
        let m = bob.read_message(T).await.unwrap();
        assert_eq!(m.head.message_id(), Some(&b"big8mib1"[..]));
        next = check_piece(&m, next, TOTAL as u64, chunk_size);
        hasher.update(&m.body);
        bob.respond(&m.head, 200, "OK").await.unwrap();
        tids.push(m.head.tid().as_str().to_owned());
        pieces += 1;
    }
    assert_eq!(next, TOTAL as u64 + 1);
    assert!(pieces >= TOTAL / chunk_size, "{pieces} pieces");
    assert_eq!(
        hasher.finalize(),
        want_hash,
        "the body arrives byte-identical"
    );
    tids.sort();
    tids.dedup();
    assert_eq!(tids.len(), pieces, "each piece has its own tid");

    // Alice's 200 for the big chunk, and nothing else (Bob answered every piece).
    let ok = alice_rd.read_message(T).await.unwrap();
    assert_eq!(ok.head.tid().as_str(), "b1gchunk");
    assert_eq!(ok.head.response_code(), Some(200));
    let _alice_wr = writer.await.unwrap();
    match alice_rd.read_message(QUIET).await {
        Err(ClientError::Timeout(..)) => {}
        Ok(m) => panic!("Alice received {:?}", m.head),
        Err(e) => panic!("Alice: {e}"),
    }
    nothing_arrives(&mut bob, "Bob").await;
}

/// A receiver that stops reading fills its socket and then its write queue; after the stall
/// limit (the transaction timeout) the relay closes it as stuck, and the sender learns that
/// the rest of its message went nowhere: REPORTs for what was written, 481 for the SEND.
#[tokio::test]
async fn a_receiver_that_stops_reading_is_closed_and_the_sender_told() {
    let relay = TestRelay::start_with(|s| {
        s.limits.write_queue_frames = 2;
        s.limits.transaction_timeout_secs = 1;
    })
    .await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    // Far more than loopback socket buffers and the queue hold.
    let body = vec![b'x'; 32 << 20];
    let tid = alice
        .send(
            &to,
            std::slice::from_ref(&alice_uri),
            &SendOptions::default(),
            &body,
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reports = 0;
    let status = loop {
        assert!(Instant::now() < deadline, "no response to the SEND");
        let m = alice.read_message(Duration::from_secs(20)).await.unwrap();
        match m.head.method() {
            Some(Method::Report) => {
                let code = m.head.status().map(|s| s.code);
                assert!(matches!(code, Some(408 | 481)), "{:?}", m.head);
                reports += 1;
            }
            None if m.head.tid() == &tid => break m.head.response_code(),
            _ => panic!("unexpected {:?}", m.head),
        }
    };
    assert_eq!(status, Some(481), "after {reports} REPORTs");
    assert!(reports > 0, "the pieces Bob's socket took are reported");
    assert!(
        bob.closed_within(Duration::from_secs(20)).await,
        "the stuck receiver is closed"
    );
}

/// When the next hop resets its connection while the relay's writes to it are backed up, the
/// sender hears at once: the queued pieces come back as 481, the written ones as 408 when the
/// connection's transactions are drained (checklist 76), without waiting out any timer.
#[tokio::test]
async fn a_receiver_reset_mid_transfer_is_reported_at_once() {
    const TOTAL: usize = 32 * 1024 * 1024;
    let relay = TestRelay::start_with(|s| s.limits.write_queue_frames = 2).await;
    let (alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let (mut alice_rd, mut alice_wr) = alice.into_split();
    let head = send_head(
        "r5tmid01",
        &to,
        &alice_uri,
        "resetmid",
        &format!("1-*/{TOTAL}"),
    );
    let writer = tokio::spawn(async move {
        alice_wr.write_raw(head.as_bytes()).await?;
        let part = vec![b'z'; 64 * 1024];
        for _ in 0..TOTAL / part.len() {
            alice_wr.write_raw(&part).await?;
        }
        alice_wr.write_raw(b"\r\n-------r5tmid01$\r\n").await
    });
    // Bob takes one piece and stops reading: the relay's writes to him back up until its
    // writer waits on his socket.
    bob.read_message(T).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Closing with unread data resets the connection.
    drop(bob);
    let gone = Instant::now();
    // Pieces still queued come back as 481 (never written); the pieces Bob's socket took
    // and never answered are reported 408 when his connection's transactions are drained.
    loop {
        let r = alice_rd.read_message(T).await.unwrap();
        assert_eq!(r.head.method(), Some(&Method::Report), "{:?}", r.head);
        let code = r.head.status().map(|s| s.code);
        assert!(matches!(code, Some(408 | 481)), "{:?}", r.head);
        if code == Some(408) {
            break;
        }
    }
    assert!(
        gone.elapsed() < Duration::from_millis(1500),
        "written pieces reported {:?} after the receiver went",
        gone.elapsed()
    );
    writer.abort();
}

/// The reader keeps its transaction timer set past an answered transaction; the next
/// unanswered one must still time out on its own deadline (RFC 4976 §6.4.1).
#[tokio::test]
async fn timeout_after_an_answered_transaction_still_reports_408() {
    let relay = TestRelay::start_with(|s| s.limits.transaction_timeout_secs = 1).await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;

    // First message: Bob answers, Alice gets her 200 and nothing else.
    let m = send_one(&mut alice, &mut bob, &to, &alice_uri, "first", b"one").await;
    bob.respond(&m.head, 200, "OK").await.unwrap();

    // Second message, 600 ms later: Bob stays silent.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let m = send_one(&mut alice, &mut bob, &to, &alice_uri, "second", b"two").await;
    let written = Instant::now();
    assert_eq!(m.body_str(), "two");

    let r = alice.read_message(T).await.unwrap();
    let after = written.elapsed();
    assert_eq!(r.head.method(), Some(&Method::Report), "{:?}", r.head);
    assert_eq!(r.head.message_id(), Some(&b"second"[..]));
    assert_eq!(r.head.status().map(|s| s.code), Some(408));
    assert!(
        after >= Duration::from_millis(800) && after <= Duration::from_millis(2500),
        "REPORT after {after:?}, expected about 1 s after the write"
    );
    nothing_arrives(&mut alice, "Alice").await;
}

#[tokio::test]
async fn t12_silent_next_hop_gives_report_408() {
    let relay = TestRelay::start_with(|s| s.limits.transaction_timeout_secs = 1).await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;

    let opts = SendOptions {
        message_id: "87660",
        ..SendOptions::default()
    };
    let t0 = Instant::now();
    let tid = alice
        .send(&to, std::slice::from_ref(&alice_uri), &opts, b"hello")
        .await
        .unwrap();
    // The hop-by-hop 200 comes at once (RFC 4976 §6.4.1).
    let ok = alice.read_message(T).await.unwrap();
    assert_eq!(ok.head.tid(), &tid);
    assert_eq!(ok.head.response_code(), Some(200));
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );

    // Bob takes the SEND and never answers.
    let m = bob.read_message(T).await.unwrap();
    let written = Instant::now();
    assert_eq!(m.body_str(), "hello");

    let r = alice.read_message(T).await.unwrap();
    let after = written.elapsed();
    assert!(
        after >= Duration::from_millis(800) && after <= Duration::from_millis(2500),
        "REPORT after {after:?}, expected about 1 s"
    );
    assert_eq!(r.head.method(), Some(&Method::Report), "{:?}", r.head);
    let to_path: Vec<&str> = r.head.to_path().iter().map(MsrpUri::as_str).collect();
    assert_eq!(to_path, [alice_uri.as_str()]);
    assert_eq!(r.head.from_path()[0].as_str(), to[0].as_str());
    assert_eq!(r.head.message_id(), Some(&b"87660"[..]));
    assert_eq!(
        r.head.byte_range(),
        Some(ByteRange {
            start: 1,
            end: Some(5),
            total: Some(5)
        })
    );
    let status = r.head.status().expect("Status header");
    assert_eq!((status.namespace, status.code), (0, 408));
    assert!(r.head.header("Success-Report").is_none());
    assert!(r.head.header("Failure-Report").is_none());
    assert!(r.body.is_empty());
    // Exactly one REPORT.
    nothing_arrives(&mut alice, "Alice").await;
}

#[tokio::test]
async fn receiver_vanishing_mid_transfer_turns_into_reports_then_481() {
    const TOTAL: usize = 1024 * 1024;
    let relay = TestRelay::start().await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let from = std::slice::from_ref(&alice_uri);
    let body = body_bytes(TOTAL);

    let opts = SendOptions {
        message_id: "gone0001",
        content_type: "application/octet-stream",
        ..SendOptions::default()
    };
    let tid = alice.send(&to, from, &opts, &body).await.unwrap();
    assert_eq!(
        alice
            .response_to(&tid, T)
            .await
            .unwrap()
            .head
            .response_code(),
        Some(200)
    );
    // Bob takes two pieces, answers none, and disconnects.
    for _ in 0..2 {
        let m = bob.read_message(T).await.unwrap();
        assert_eq!(m.flag, Flag::More);
    }
    drop(bob);

    // Every outstanding piece is reported as failed (checklist 76): the REPORTs' ranges
    // tile the whole message.
    let mut ranges = Vec::new();
    let mut covered = 0u64;
    while covered < TOTAL as u64 {
        let r = match alice.read_message(T).await {
            Ok(r) => r,
            Err(e) => panic!("after {covered} bytes reported: {e}"),
        };
        assert_eq!(r.head.method(), Some(&Method::Report), "{:?}", r.head);
        assert_eq!(r.head.message_id(), Some(&b"gone0001"[..]));
        let code = r.head.status().unwrap().code;
        assert!(code >= 400, "failure status, got {code}");
        let range = r.head.byte_range().unwrap();
        covered += range.end.unwrap() - range.start + 1;
        ranges.push((range.start, range.end.unwrap()));
    }
    ranges.sort();
    let mut next = 1;
    for (start, end) in ranges {
        assert_eq!(start, next, "REPORT ranges tile the message");
        next = end + 1;
    }
    assert_eq!(next, TOTAL as u64 + 1);
    nothing_arrives(&mut alice, "Alice").await;

    // Bob's token died with his connection: further chunks get 481.
    let opts = SendOptions {
        message_id: "gone0002",
        ..SendOptions::default()
    };
    let tid = alice.send(&to, from, &opts, b"anyone?").await.unwrap();
    assert_eq!(
        alice
            .response_to(&tid, T)
            .await
            .unwrap()
            .head
            .response_code(),
        Some(481)
    );
}

#[tokio::test]
async fn sender_vanishing_mid_chunk_ends_the_message_with_abort() {
    const TOTAL: usize = 600_000;
    const SENT: usize = 300_000;
    let chunk_size = msrp_relay::config::LimitsConfig::default().chunk_size;
    let relay = TestRelay::start().await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let body = body_bytes(TOTAL);

    let head = send_head(
        "h4lfway1",
        &to,
        &alice_uri,
        "half0001",
        &format!("1-{TOTAL}/{TOTAL}"),
    );
    alice.write_raw(head.as_bytes()).await.unwrap();
    alice.write_raw(&body[..SENT]).await.unwrap();
    drop(alice);

    // Bob gets what was sent, in pieces; the last one ends with `#` (RFC 4975 §7.1.1).
    let mut got = Vec::new();
    loop {
        let m = bob.read_message(T).await.unwrap();
        assert_eq!(m.head.message_id(), Some(&b"half0001"[..]));
        assert!(m.body.len() <= chunk_size);
        let r = m.head.byte_range().unwrap();
        assert_eq!(r.start, got.len() as u64 + 1, "pieces in order");
        got.extend_from_slice(&m.body);
        match m.flag {
            Flag::More => bob.respond(&m.head, 200, "OK").await.unwrap(),
            Flag::Abort => break,
            Flag::Complete => panic!("a partial message must not end with `$`"),
        }
    }
    // The decoder holds back the last few bytes of what it has (they could start an
    // end-line); with the chunk aborted those need not be forwarded.
    assert!(
        got.len() <= SENT && got.len() + 16 >= SENT,
        "{} of {SENT} bytes forwarded",
        got.len()
    );
    assert_eq!(&got[..], &body[..got.len()], "a prefix of what was sent");
    nothing_arrives(&mut bob, "Bob").await;
}

#[tokio::test]
async fn every_piece_respects_a_small_chunk_size() {
    const TOTAL: usize = 100 * 1024;
    const CHUNK: usize = 1024;
    let relay = TestRelay::start_with(|s| s.limits.chunk_size = CHUNK).await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let body = body_bytes(TOTAL);
    let opts = SendOptions {
        message_id: "small001",
        content_type: "application/octet-stream",
        ..SendOptions::default()
    };
    let tid = alice
        .send(&to, std::slice::from_ref(&alice_uri), &opts, &body)
        .await
        .unwrap();
    let mut next = 1;
    let mut got = Vec::new();
    while next <= TOTAL as u64 {
        let m = bob.read_message(T).await.unwrap();
        next = check_piece(&m, next, TOTAL as u64, CHUNK);
        got.extend_from_slice(&m.body);
        bob.respond(&m.head, 200, "OK").await.unwrap();
    }
    assert!(got == body, "the body arrives byte-identical");
    assert_eq!(
        alice
            .response_to(&tid, T)
            .await
            .unwrap()
            .head
            .response_code(),
        Some(200)
    );
}

/// A response whose first To-Path URI is not the relay URI the request was sent from is not
/// the relay's (RFC 4976 §6.4.3, checklist 64): it is dropped, so the 415 in it never reaches
/// Alice and her SEND times out (REPORT 408). The same 415 correctly addressed is reported
/// at once.
#[tokio::test]
async fn rfc4976_s6_4_3_response_to_another_uri_is_dropped() {
    let relay = TestRelay::start_with(|s| s.limits.transaction_timeout_secs = 1).await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;

    let answer = |m: &Message, first_to: &str| {
        format!(
            "MSRP {tid} 415 Unsupported Media Type\r\nTo-Path: {first_to}\r\nFrom-Path: {bob}\r\n-------{tid}$\r\n",
            tid = m.head.tid(),
            bob = m.head.to_path()[0],
        )
    };

    // Correctly addressed (To-Path: the first From-Path URI Bob received): REPORT 415 at once.
    let m = send_one(&mut alice, &mut bob, &to, &alice_uri, "first", b"one").await;
    let ours = m.head.from_path()[0].to_string();
    bob.write_raw(answer(&m, &ours).as_bytes()).await.unwrap();
    let r = alice.read_message(T).await.unwrap();
    assert_eq!(r.head.method(), Some(&Method::Report), "{:?}", r.head);
    assert_eq!(r.head.message_id(), Some(&b"first"[..]));
    assert_eq!(r.head.status().map(|s| s.code), Some(415));

    // Addressed to another URI (the same host, another session-id): dropped.
    let m = send_one(&mut alice, &mut bob, &to, &alice_uri, "second", b"two").await;
    let written = Instant::now();
    let mut other = m.head.from_path()[0].to_string();
    let slash = other.rfind('/').expect("a relay URI has a session-id");
    other.insert(slash + 1, 'x');
    bob.write_raw(answer(&m, &other).as_bytes()).await.unwrap();
    let r = alice.read_message(T).await.unwrap();
    assert_eq!(r.head.method(), Some(&Method::Report), "{:?}", r.head);
    assert_eq!(r.head.message_id(), Some(&b"second"[..]));
    assert_eq!(r.head.status().map(|s| s.code), Some(408), "{:?}", r.head);
    assert!(
        written.elapsed() >= Duration::from_millis(800),
        "REPORT after {:?}: the misaddressed response was taken",
        written.elapsed()
    );
    nothing_arrives(&mut alice, "Alice").await;
}
