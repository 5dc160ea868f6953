//! Refusals and limits over real sockets: requests not addressed to this relay, unknown
//! methods, grammar violations, probation and the message size limit (RFC 4975 §7.1, §9,
//! §10.2, §10.5; RFC 4976 §6.1–§6.4.2; checklist T11, T16, T17, T19 and items 9, 10, 88).

mod common;

use std::time::{Duration, Instant};

use common::*;
use msrp_proto::{Flag, Method, MsrpUri};
use msrp_relay::client::{ClientError, Connection, Message, SendOptions};

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

fn join(uris: &[MsrpUri]) -> String {
    uris.iter()
        .map(MsrpUri::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A SEND with a body, as raw bytes: `headers` go between From-Path and Content-Type.
fn raw_send(tid: &str, to: &str, from: &str, headers: &str, body: &[u8], flag: char) -> Vec<u8> {
    let mut m = format!(
        "MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\n{headers}Content-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    m.extend_from_slice(body);
    m.extend_from_slice(format!("\r\n-------{tid}{flag}\r\n").as_bytes());
    m
}

/// Nothing at all arrives on `c` for a while (and the connection stays open).
async fn nothing_arrives(c: &mut Connection, who: &str) {
    match c.read_message(QUIET).await {
        Err(ClientError::Timeout(..)) => {}
        Ok(m) => panic!("{who} received {:?}", m.head),
        Err(e) => panic!("{who}: {e}"),
    }
}

/// Alice sends a valid SEND with `message_id`; it must get its 200 and be the next thing
/// Bob receives (so nothing refused earlier reached him).
async fn valid_send_arrives(
    alice: &mut Connection,
    bob: &mut Connection,
    to: &[MsrpUri],
    from: &MsrpUri,
    message_id: &str,
) {
    let opts = SendOptions {
        message_id,
        ..SendOptions::default()
    };
    let tid = alice
        .send(to, std::slice::from_ref(from), &opts, b"still here")
        .await
        .unwrap();
    let ok = alice.response_to(&tid, T).await.unwrap();
    assert_eq!(ok.head.response_code(), Some(200), "{message_id}");
    let m = bob.read_message(T).await.unwrap();
    assert_eq!(
        m.head.message_id(),
        Some(message_id.as_bytes()),
        "Bob's next message is the valid SEND: {:?}",
        m.head
    );
    assert_eq!(m.body_str(), "still here");
    bob.respond(&m.head, 200, "OK").await.unwrap();
}

#[tokio::test]
async fn t11_first_uri_not_this_relay_gets_481() {
    let relay = TestRelay::start().await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let bob_uri = to[2].as_str();
    let other = "msrps://other.example.com:2855/abc;tcp";

    // Unauthenticated: 481, then the connection is closed (RFC 4976 §6.2, §6.3).
    let mut stranger = relay.connect().await;
    stranger
        .write_raw(&raw_send(
            "t11unauth",
            &format!("{other} {bob_uri}"),
            ALICE,
            "Message-ID: t11a0001\r\nByte-Range: 1-5/5\r\n",
            b"hello",
            '$',
        ))
        .await
        .unwrap();
    let m = stranger.read_message(T).await.unwrap();
    assert_eq!(m.head.tid().as_str(), "t11unauth");
    assert_eq!(m.head.response_code(), Some(481), "{:?}", m.head);
    assert_eq!(m.head.to_path()[0].as_str(), ALICE);
    assert!(
        stranger.closed_within(T).await,
        "an unauthenticated connection is closed"
    );

    // Authenticated: 481, and the connection stays usable.
    alice
        .write_raw(&raw_send(
            "t11auth1",
            &format!("{other} {bob_uri}"),
            alice_uri.as_str(),
            "Message-ID: t11b0001\r\nByte-Range: 1-5/5\r\n",
            b"hello",
            '$',
        ))
        .await
        .unwrap();
    let m = alice.read_message(T).await.unwrap();
    assert_eq!(m.head.tid().as_str(), "t11auth1");
    assert_eq!(m.head.response_code(), Some(481), "{:?}", m.head);
    assert_eq!(m.head.from_path()[0].as_str(), other);

    nothing_arrives(&mut bob, "Bob").await;
    valid_send_arrives(&mut alice, &mut bob, &to, &alice_uri, "t11valid").await;
}

#[tokio::test]
async fn t16_unknown_method_is_forwarded_and_not_answered() {
    let relay = TestRelay::start().await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let (ta, tb, bob_uri) = (&to[0], &to[1], &to[2]);

    // RFC 4976 §6.4.2: forwarded as if it were a REPORT.
    let foo = format!(
        "MSRP u7y6t5r4 FOO\r\nTo-Path: {}\r\nFrom-Path: {alice_uri}\r\nX-Extra: kept as is\r\n-------u7y6t5r4$\r\n",
        join(&to)
    );
    alice.write_raw(foo.as_bytes()).await.unwrap();
    let m = bob.read_message(T).await.unwrap();
    assert!(m.head.is_request());
    assert_eq!(m.head.method().map(Method::as_str), Some("FOO"));
    assert_ne!(m.head.tid().as_str(), "u7y6t5r4", "a fresh tid per hop");
    let start = format!("MSRP {} FOO\r\n", m.head.tid());
    assert!(
        m.head.raw().starts_with(start.as_bytes()),
        "{:?}",
        m.head.raw()
    );
    let to_path: Vec<&str> = m.head.to_path().iter().map(MsrpUri::as_str).collect();
    assert_eq!(to_path, [bob_uri.as_str()]);
    let from_path: Vec<&str> = m.head.from_path().iter().map(MsrpUri::as_str).collect();
    assert_eq!(from_path, [tb.as_str(), ta.as_str(), alice_uri.as_str()]);
    assert_eq!(m.head.header("X-Extra"), Some(&b"kept as is"[..]));
    assert_eq!(m.flag, Flag::Complete);
    assert!(m.body.is_empty());

    // With a (small) body, the body passes through too.
    let foo = format!(
        "MSRP u7y6t5r5 FOO\r\nTo-Path: {}\r\nFrom-Path: {alice_uri}\r\nContent-Type: text/plain\r\n\r\nping\r\n-------u7y6t5r5$\r\n",
        join(&to)
    );
    alice.write_raw(foo.as_bytes()).await.unwrap();
    let m = bob.read_message(T).await.unwrap();
    assert_eq!(m.head.method().map(Method::as_str), Some("FOO"));
    assert_eq!(m.body_str(), "ping");

    // Alice gets no response to either request.
    nothing_arrives(&mut alice, "Alice").await;
}

/// What became of a malformed request on a connection.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// A response with this code (to the request's tid).
    Answered(u16),
    /// The relay closed the connection without answering.
    Dropped,
}

async fn outcome(c: &mut Connection, tid: &str) -> Outcome {
    match c.read_message(T).await {
        Ok(m) => {
            assert!(!m.head.is_request(), "unexpected request {:?}", m.head);
            assert_eq!(m.head.tid().as_str(), tid, "{:?}", m.head);
            Outcome::Answered(m.head.response_code().unwrap())
        }
        Err(ClientError::Closed | ClientError::Io(_)) => Outcome::Dropped,
        Err(e) => panic!("{tid}: neither answered nor dropped: {e}"),
    }
}

#[tokio::test]
async fn t17_grammar_violations_are_refused_and_never_forwarded() {
    let relay = TestRelay::start().await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let to_s = join(&to);
    let from_s = alice_uri.as_str().to_owned();

    // Readable paths: 400 and the connection goes on (RFC 4975 §10.2).
    // Content-Type present but no empty line before the body (RFC 4975 §7.1).
    let no_blank = format!(
        "MSRP nobl4nk1 SEND\r\nTo-Path: {to_s}\r\nFrom-Path: {from_s}\r\nMessage-ID: t17a0001\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\nhello\r\n-------nobl4nk1$\r\n"
    );
    alice.write_raw(no_blank.as_bytes()).await.unwrap();
    assert_eq!(
        outcome(&mut alice, "nobl4nk1").await,
        Outcome::Answered(400)
    );
    valid_send_arrives(&mut alice, &mut bob, &to, &alice_uri, "t17ok001").await;

    // A bodiless request whose end-line carries another tid (RFC 4975 §7.1).
    let mismatch = format!(
        "MSRP m1smatch SEND\r\nTo-Path: {to_s}\r\nFrom-Path: {from_s}\r\nMessage-ID: t17b0001\r\nByte-Range: 1-0/0\r\n-------m2smatch$\r\n"
    );
    alice.write_raw(mismatch.as_bytes()).await.unwrap();
    assert_eq!(
        outcome(&mut alice, "m1smatch").await,
        Outcome::Answered(400)
    );
    valid_send_arrives(&mut alice, &mut bob, &to, &alice_uri, "t17ok002").await;

    // A non-SEND body over 10240 octets (RFC 4975 §7.1): 413 where a response is allowed
    // (an AUTH here; unknown methods, like REPORT, are never answered, RFC 4976 §6.4.2).
    let big = vec![b'x'; 11_000];
    let mut foo = format!(
        "MSRP b1gf00b4 AUTH\r\nTo-Path: {to_s}\r\nFrom-Path: {from_s}\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    foo.extend_from_slice(&big);
    foo.extend_from_slice(b"\r\n-------b1gf00b4$\r\n");
    alice.write_raw(&foo).await.unwrap();
    assert_eq!(
        outcome(&mut alice, "b1gf00b4").await,
        Outcome::Answered(413)
    );
    valid_send_arrives(&mut alice, &mut bob, &to, &alice_uri, "t17ok003").await;

    // The same for a REPORT: refused, but a REPORT is never answered (RFC 4975 §7.1.2), so
    // the only signs are that Bob gets nothing and Alice's connection goes on.
    let mut report = format!(
        "MSRP b1grep0r REPORT\r\nTo-Path: {to_s}\r\nFrom-Path: {from_s}\r\nMessage-ID: t17c0001\r\nByte-Range: 1-5/5\r\nStatus: 000 200 OK\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    report.extend_from_slice(&big);
    report.extend_from_slice(b"\r\n-------b1grep0r$\r\n");
    alice.write_raw(&report).await.unwrap();
    nothing_arrives(&mut alice, "Alice (REPORT is never answered)").await;
    valid_send_arrives(&mut alice, &mut bob, &to, &alice_uri, "t17ok004").await;

    // Unreadable start line or paths: 400 impossible or pointless; the connection may be
    // dropped (RFC 4975 §10.2). Each case on its own authenticated connection.
    let cases: [(&str, String); 5] = [
        (
            "fr0mf1rst",
            format!("MSRP fr0mf1rst SEND\r\nFrom-Path: {from_s}\r\nTo-Path: {to_s}\r\nMessage-ID: t17d0001\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------fr0mf1rst$\r\n"),
        ),
        (
            "abc",
            format!("MSRP abc SEND\r\nTo-Path: {to_s}\r\nFrom-Path: {from_s}\r\nMessage-ID: t17e0001\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------abc$\r\n"),
        ),
        (
            "a23456789012345678901234567890123",
            format!("MSRP a23456789012345678901234567890123 SEND\r\nTo-Path: {to_s}\r\nFrom-Path: {from_s}\r\nMessage-ID: t17f0001\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------a23456789012345678901234567890123$\r\n"),
        ),
        (
            "l0wercase",
            format!("MSRP l0wercase send\r\nTo-Path: {to_s}\r\nFrom-Path: {from_s}\r\nMessage-ID: t17g0001\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------l0wercase$\r\n"),
        ),
        (
            "l0werms4",
            format!("msrp l0werms4 SEND\r\nTo-Path: {to_s}\r\nFrom-Path: {from_s}\r\nMessage-ID: t17h0001\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------l0werms4$\r\n"),
        ),
    ];
    for (tid, bytes) in cases {
        let (mut c, grant, me) = relay.client(ALICE).await;
        // The sender's own token is valid: only the grammar is wrong.
        let bytes = bytes.replace(to[0].as_str(), grant.use_path[0].as_str());
        c.write_raw(bytes.as_bytes()).await.unwrap();
        match outcome(&mut c, tid).await {
            Outcome::Dropped => {}
            Outcome::Answered(400) => {
                // Answered: then the connection must still work.
                let mut to_bob = to.clone();
                to_bob[0] = grant.use_path[0].clone();
                valid_send_arrives(&mut c, &mut bob, &to_bob, &me, &format!("ok{tid}")).await;
            }
            other => panic!("{tid}: {other:?}"),
        }
    }
    nothing_arrives(&mut bob, "Bob").await;
}

#[tokio::test]
async fn t19_silent_connection_is_closed_after_probation() {
    let relay = TestRelay::start_with(|s| s.limits.probation_secs = 1).await;
    let t0 = Instant::now();
    let mut silent = relay.connect().await;
    // An authenticated connection opened at the same time is off probation.
    let (mut authed, _, me) = relay.client(ALICE).await;
    assert!(
        !silent.closed_within(Duration::from_millis(700)).await,
        "closed before probation ended"
    );
    assert!(
        silent.closed_within(Duration::from_millis(2300)).await,
        "a connection that sends nothing is closed after probation (RFC 4976 §6.1)"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_secs(3),
        "{took:?}"
    );
    // The authenticated one is still open and answering.
    authed
        .auth(&relay.auth_uri(), &me, USER, PASSWORD, None, T)
        .await
        .expect("an authenticated connection outlives probation");
}

#[tokio::test]
async fn t19_repeated_failures_during_probation_close_the_connection() {
    // Probation long enough not to be the reason; max_failures 3 (the default).
    let relay = TestRelay::start_with(|s| s.auth.max_failures = 3).await;
    let ours = format!(
        "msrps://relay.example.com:{}/nosuch;tcp",
        relay.tls_addr().port()
    );

    // Requests refused with 400 (readable paths, bad grammar) on an unauthenticated
    // connection: the first two are answered and the connection stays, the third closes it.
    let mut c = relay.connect().await;
    for i in 1..=3 {
        let tid = format!("b4dreq{i:02}");
        let bad = format!(
            "MSRP {tid} SEND\r\nTo-Path: {ours} {BOB}\r\nFrom-Path: {ALICE}\r\nMessage-ID: t19m{i:04}\r\nContent-Type: text/plain\r\nhello\r\n-------{tid}$\r\n"
        );
        c.write_raw(bad.as_bytes()).await.unwrap();
        assert_eq!(outcome(&mut c, &tid).await, Outcome::Answered(400), "{tid}");
        if i < 3 {
            assert!(!c.closed_within(QUIET).await, "closed after {i} failure(s)");
        }
    }
    assert!(
        c.closed_within(T).await,
        "closed after auth.max_failures refused requests (RFC 4976 §6.1)"
    );

    // AUTHs with bad credentials (the checklist's example): 401 each, closed after the third.
    let mut c = relay.connect().await;
    let me = uri(ALICE);
    for i in 1..=3 {
        match c.auth(&relay.auth_uri(), &me, USER, "wrong", None, T).await {
            Err(ClientError::Status { code: 401, .. }) => {}
            other => panic!("bad AUTH {i}: {other:?}"),
        }
        if i < 3 {
            assert!(!c.closed_within(QUIET).await, "closed after {i} failure(s)");
        }
    }
    assert!(c.closed_within(T).await, "closed after 3 failed AUTHs");

    // A SEND to an unknown token from an unauthenticated connection: 481 and closed at once
    // (RFC 4976 §6.2: the request is not for this relay).
    let mut c = relay.connect().await;
    c.write_raw(&raw_send(
        "unkn0wn1",
        &format!("{ours} {BOB}"),
        ALICE,
        "Message-ID: t19u0001\r\nByte-Range: 1-5/5\r\n",
        b"hello",
        '$',
    ))
    .await
    .unwrap();
    assert_eq!(outcome(&mut c, "unkn0wn1").await, Outcome::Answered(481));
    assert!(c.closed_within(T).await);
}

/// Read what Bob gets for one forwarded message: pieces until one without `+`.
async fn read_pieces(bob: &mut Connection) -> Vec<Message> {
    let mut pieces = Vec::new();
    loop {
        let m = bob.read_message(T).await.unwrap();
        assert_eq!(m.head.method(), Some(&Method::Send), "{:?}", m.head);
        let flag = m.flag;
        pieces.push(m);
        if flag != Flag::More {
            return pieces;
        }
    }
}

#[tokio::test]
async fn max_message_size_is_enforced_with_413() {
    let relay = TestRelay::start_with(|s| s.limits.max_message_size = 1000).await;
    let (mut alice, mut bob, to, alice_uri) = alice_and_bob(&relay).await;
    let from = std::slice::from_ref(&alice_uri);

    // The total says 5000: 413 at once, nothing forwarded (RFC 4975 §10.5).
    let opts = SendOptions {
        message_id: "big00001",
        byte_range: Some(msrp_proto::ByteRange {
            start: 1,
            end: Some(100),
            total: Some(5000),
        }),
        flag: Flag::More,
        ..SendOptions::default()
    };
    let tid = alice.send(&to, from, &opts, &[b'a'; 100]).await.unwrap();
    let r = alice.response_to(&tid, T).await.unwrap();
    assert_eq!(r.head.response_code(), Some(413));
    nothing_arrives(&mut bob, "Bob").await;

    // An absurd total must not allocate or overflow anything (RFC 4975 §14.5).
    let huge = u64::MAX;
    let opts = SendOptions {
        message_id: "huge0001",
        byte_range: Some(msrp_proto::ByteRange {
            start: 1,
            end: Some(huge),
            total: Some(huge),
        }),
        ..SendOptions::default()
    };
    let tid = alice.send(&to, from, &opts, b"tiny").await.unwrap();
    let r = alice.response_to(&tid, T).await.unwrap();
    assert!(
        matches!(r.head.response_code(), Some(400 | 413)),
        "{:?}",
        r.head
    );
    nothing_arrives(&mut bob, "Bob").await;

    // Unknown total, 3000 bytes in one chunk: at most 1000 bytes reach Bob, ending with
    // `#`, and Alice gets 413, not 200.
    let opts = SendOptions {
        message_id: "big00002",
        byte_range: Some(msrp_proto::ByteRange {
            start: 1,
            end: None,
            total: None,
        }),
        ..SendOptions::default()
    };
    let body: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let tid = alice.send(&to, from, &opts, &body).await.unwrap();
    let r = alice.response_to(&tid, T).await.unwrap();
    assert_eq!(r.head.response_code(), Some(413), "{:?}", r.head);
    let pieces = read_pieces(&mut bob).await;
    let got: Vec<u8> = pieces.iter().flat_map(|m| m.body.to_vec()).collect();
    assert!(got.len() <= 1000, "{} bytes forwarded", got.len());
    assert_eq!(&got[..], &body[..got.len()], "a prefix of the message");
    assert_eq!(pieces.last().unwrap().flag, Flag::Abort);
    nothing_arrives(&mut bob, "Bob").await;

    // Over two chunks of an unknown total: the first goes through, the second is cut at
    // the limit and aborted, the third is refused outright.
    let chunk = |start: u64, flag| SendOptions {
        message_id: "big00003",
        byte_range: Some(msrp_proto::ByteRange {
            start,
            end: None,
            total: None,
        }),
        flag,
        ..SendOptions::default()
    };
    let tid = alice
        .send(&to, from, &chunk(1, Flag::More), &body[..800])
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
    let first = bob.read_message(T).await.unwrap();
    assert_eq!(first.body.len(), 800);
    bob.respond(&first.head, 200, "OK").await.unwrap();
    let tid = alice
        .send(&to, from, &chunk(801, Flag::More), &body[800..1600])
        .await
        .unwrap();
    assert_eq!(
        alice
            .response_to(&tid, T)
            .await
            .unwrap()
            .head
            .response_code(),
        Some(413)
    );
    let pieces = read_pieces(&mut bob).await;
    let got: usize = pieces.iter().map(|m| m.body.len()).sum();
    assert!(800 + got <= 1000, "{} bytes forwarded in all", 800 + got);
    assert_eq!(pieces.last().unwrap().flag, Flag::Abort);
    let tid = alice
        .send(&to, from, &chunk(1601, Flag::Complete), &body[1600..])
        .await
        .unwrap();
    assert_eq!(
        alice
            .response_to(&tid, T)
            .await
            .unwrap()
            .head
            .response_code(),
        Some(413)
    );
    nothing_arrives(&mut bob, "Bob").await;
}
