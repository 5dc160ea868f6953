//! The RFC example messages of the checklist §5.1 and the grammar rules of §1 and §2.1,
//! decoded through the public API.

use bytes::{Bytes, BytesMut};
use msrp_proto::encoder::{write_end_line, write_forward_head, HeadWriter};
use msrp_proto::{
    ByteRange, DecodeError, Decoder, Event, FailureReport, Flag, HeaderName, Limit, Limits, Method,
    StartLine, TransactionId, Violation,
};

/// Join RFC layout: lines end in CRLF, `\` continuations are joined with one SP (§0.3).
fn wire(text: &str) -> Vec<u8> {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let mut l = line.to_owned();
        while l.ends_with('\\') {
            l.pop();
            let trimmed = l.trim_end().to_owned();
            l = trimmed;
            if let Some(next) = lines.next() {
                l.push(' ');
                l.push_str(next.trim_start());
            }
        }
        out.push_str(&l);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[derive(Debug)]
struct Msg {
    head: msrp_proto::Head,
    body: Vec<u8>,
    flag: Flag,
}

fn decode_all(input: &[u8], step: usize) -> Result<Vec<Msg>, DecodeError> {
    decode_with(input, step, Limits::default())
}

fn decode_with(input: &[u8], step: usize, limits: Limits) -> Result<Vec<Msg>, DecodeError> {
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut cur: Option<(msrp_proto::Head, Vec<u8>)> = None;
    for piece in input.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(ev) = dec.decode(&mut buf)? {
            match ev {
                Event::Head(h) => {
                    assert!(cur.is_none(), "head inside a message");
                    cur = Some((*h, Vec::new()));
                }
                Event::Body(b) => cur
                    .as_mut()
                    .expect("body after head")
                    .1
                    .extend_from_slice(&b),
                Event::End(flag) => {
                    let (head, body) = cur.take().expect("end after head");
                    out.push(Msg { head, body, flag });
                }
            }
        }
    }
    assert!(cur.is_none(), "input ended inside a message");
    Ok(out)
}

const RFC4976_S3_SEND: &str = r"MSRP 6aef SEND
To-Path: msrps://a.example.org:9000/kjfjan;tcp \
         msrps://b.example.net:9000/aeiug;tcp \
         msrps://bob.example.net:8145/foo;tcp
From-Path: msrps://alice.example.org:7965/bar;tcp
Success-Report: yes
Byte-Range: 1-*/*
Message-ID: 87652
Content-Type: text/plain

Hi Bob, I'm about to send you file.mpeg
-------6aef$";

#[test]
fn rfc4976_s3_send_through_two_relays() {
    let msgs = decode_all(&wire(RFC4976_S3_SEND), 4096).unwrap();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.head.tid().as_str(), "6aef");
    assert_eq!(m.head.method(), Some(&Method::Send));
    assert_eq!(m.head.to_path().len(), 3);
    assert_eq!(
        m.head.to_path()[2].as_str(),
        "msrps://bob.example.net:8145/foo;tcp"
    );
    assert_eq!(
        m.head.from_path()[0].as_str(),
        "msrps://alice.example.org:7965/bar;tcp"
    );
    assert!(m.head.success_report());
    assert_eq!(m.head.failure_report(), FailureReport::Yes);
    assert_eq!(
        m.head.byte_range(),
        Some(ByteRange {
            start: 1,
            end: None,
            total: None
        })
    );
    assert_eq!(m.head.message_id(), Some(&b"87652"[..]));
    assert_eq!(m.head.content_type(), Some(&b"text/plain"[..]));
    assert_eq!(m.body, b"Hi Bob, I'm about to send you file.mpeg");
    assert_eq!(m.body.len(), 39);
    assert_eq!(m.flag, Flag::Complete);
}

#[test]
fn rfc4976_s3_forward_rewrite_matches_the_next_hop_message() {
    let msgs = decode_all(&wire(RFC4976_S3_SEND), 4096).unwrap();
    let head = &msgs[0].head;
    let mut buf = BytesMut::new();
    let tid = TransactionId::new(b"juh76").unwrap();
    write_forward_head(&mut buf, head, &tid, 1, None);
    let expected = "MSRP juh76 SEND\r\n\
        To-Path: msrps://b.example.net:9000/aeiug;tcp msrps://bob.example.net:8145/foo;tcp\r\n\
        From-Path: msrps://a.example.org:9000/kjfjan;tcp msrps://alice.example.org:7965/bar;tcp\r\n\
        Success-Report: yes\r\nByte-Range: 1-*/*\r\nMessage-ID: 87652\r\nContent-Type: text/plain\r\n\r\n";
    assert_eq!(std::str::from_utf8(&buf).unwrap(), expected);

    // Both relays are one (both parties on this relay): pop two, From-Path gets both,
    // nearest first (RFC 7977 §8.3.2).
    let mut buf = BytesMut::new();
    write_forward_head(
        &mut buf,
        head,
        &tid,
        2,
        Some(ByteRange {
            start: 1,
            end: Some(39),
            total: Some(39),
        }),
    );
    let text = std::str::from_utf8(&buf).unwrap();
    assert!(text.contains("To-Path: msrps://bob.example.net:8145/foo;tcp\r\n"));
    assert!(text.contains(
        "From-Path: msrps://b.example.net:9000/aeiug;tcp msrps://a.example.org:9000/kjfjan;tcp msrps://alice.example.org:7965/bar;tcp\r\n"
    ));
    assert!(text.contains("Byte-Range: 1-39/39\r\n"));
    assert!(!text.contains("1-*/*"));
    assert!(text.ends_with("Content-Type: text/plain\r\n\r\n"));
}

#[test]
fn rfc4976_s3_report_and_responses() {
    let input = wire(
        r"MSRP yh67 REPORT
To-Path: msrps://b.example.net:9000/aeiug;tcp \
         msrps://a.example.org:9000/kjfjan;tcp \
         msrps://alice.example.org:7965/bar;tcp
From-Path: msrps://bob.example.net:8145/foo;tcp
Message-ID: 87652
Byte-Range: 1-39/39
Status: 000 200 OK
-------yh67$
MSRP xght6 200 OK
To-Path: msrps://b.example.net:9000/aeiug;tcp
From-Path: msrps://bob.example.net:8145/foo;tcp
Message-ID: 87652
-------xght6$",
    );
    for step in [1, 3, 7, 4096] {
        let msgs = decode_all(&input, step).unwrap();
        assert_eq!(msgs.len(), 2);
        let report = &msgs[0].head;
        assert_eq!(report.method(), Some(&Method::Report));
        let st = report.status().unwrap();
        assert_eq!(
            (st.namespace, st.code, &st.comment[..]),
            (0, 200, &b"OK"[..])
        );
        assert!(msgs[0].body.is_empty());
        let resp = &msgs[1].head;
        assert_eq!(resp.response_code(), Some(200));
        assert!(
            matches!(resp.start_line(), StartLine::Response { comment, .. } if &comment[..] == b"OK")
        );
    }
}

#[test]
fn rfc4976_s5_1_auth_exchange() {
    let input = wire(
        r#"MSRP 49fh AUTH
To-Path: msrps://alice@intra.example.com;tcp
From-Path: msrps://alice.example.com:9892/98cjs;tcp
-------49fh$
MSRP 49fh 401 Unauthorized
To-Path: msrps://alice.example.com:9892/98cjs;tcp
From-Path: msrps://alice@intra.example.com;tcp
WWW-Authenticate: Digest realm="intra.example.com", qop="auth", \
                  nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"
-------49fh$
MSRP 49fi 200 OK
To-Path: msrps://alice.example.com:9892/98cjs;tcp
From-Path: msrps://alice@intra.example.com;tcp
Use-Path: msrps://intra.example.com:9000/jui787s2f;tcp
Authentication-Info: nextnonce="40f2e879449675f288476d772627370a",\
                     rspauth="7327570c586207eca2afae94fc20903d", \
                     cnonce="0a4f113b", nc=00000001, qop=auth
Expires: 900
-------49fi$"#,
    );
    let msgs = decode_all(&input, 5).unwrap();
    assert_eq!(msgs.len(), 3);
    // G4: only the two path headers.
    assert_eq!(msgs[0].head.method(), Some(&Method::Auth));
    assert!(msgs[0].head.headers().is_empty());
    assert_eq!(msgs[0].head.to_path()[0].port(), None);
    let ch = msgs[1].head.www_authenticate().unwrap().unwrap();
    assert_eq!(ch.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
    let ok = &msgs[2].head;
    assert_eq!(
        ok.use_path().unwrap()[0].as_str(),
        "msrps://intra.example.com:9000/jui787s2f;tcp"
    );
    assert_eq!(ok.expires(), Some(900));
    let info = ok.authentication_info().unwrap().unwrap();
    assert_eq!(info.cnonce.as_deref(), Some("0a4f113b"));
}

#[test]
fn rfc4975_figure2_and_figure3_chunks() {
    // Figure 2 has a wrong Byte-Range (23 bytes, says 25; checklist §6.1): accepted as is.
    let input = wire(
        "MSRP a786hjs2 SEND
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
Message-ID: 87652491
Byte-Range: 1-25/25
Content-Type: text/plain

Hey Bob, are you there?
-------a786hjs2$
MSRP dkei38sd SEND
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
Message-ID: 4564dpWd
Byte-Range: 1-*/8
Content-Type: text/plain

abcd
-------dkei38sd+
MSRP dkei38ia SEND
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp
Message-ID: 4564dpWd
Byte-Range: 5-8/8
Content-Type: text/plain

EFGH
-------dkei38ia$",
    );
    let msgs = decode_all(&input, 2).unwrap();
    assert_eq!(msgs[0].body, b"Hey Bob, are you there?");
    assert_eq!(msgs[0].head.byte_range().unwrap().end, Some(25));
    assert_eq!(
        (msgs[1].body.as_slice(), msgs[1].flag),
        (&b"abcd"[..], Flag::More)
    );
    assert_eq!(
        (msgs[2].body.as_slice(), msgs[2].flag),
        (&b"EFGH"[..], Flag::Complete)
    );
}

#[test]
fn rfc7977_s8_two_spaces_after_colon_and_ws_uris() {
    // G6: `From-Path:  ` with two spaces (RFC 7977 §8.2.2).
    let input = wire(
        "MSRP juh76 SEND
To-Path: msrps://bob.example.com:49154/foo;tcp
From-Path:  msrps://a.example.com:2855/jui787s2f;tcp \\
            msrps://df7jal23ls0d.invalid:2855/98cjs;ws
Success-Report: no
Byte-Range: 1-*/*
Message-ID: 87652
Content-Type: text/plain

Hi Bob, I'm about to send you file.mpeg
-------juh76$",
    );
    let msgs = decode_all(&input, 4096).unwrap();
    let from = msgs[0].head.from_path();
    assert_eq!(from.len(), 2);
    assert_eq!(from[1].transport(), "ws");
    assert!(!msgs[0].head.success_report());
}

fn t5(body: &[u8], tid: &str) -> Vec<u8> {
    let mut v = format!(
        "MSRP {tid} SEND\r\nTo-Path: msrps://relay.example.com:2855/TOKENa1b2c3d4e5f6;tcp msrps://bob.example.net:8145/foo;tcp\r\nFrom-Path: msrps://alice.example.org:7965/bar;tcp\r\nMessage-ID: 87652\r\nByte-Range: 1-*/*\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    v.extend_from_slice(body);
    v.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
    v
}

#[test]
fn rfc4975_s7_1_binary_body_with_fake_end_lines_passes_intact() {
    let body = b"\0\r\n\xff\xfe bare\n lf \r cr \r\n-------zzzz$\r\n-------6ae\r\n-------6aef!\r\n-------6aefX$\r\n-------6aef$ no crlf";
    let input = t5(body, "6aef");
    for step in 1..=40 {
        let msgs = decode_all(&input, step).unwrap();
        assert_eq!(msgs.len(), 1, "step {step}");
        assert_eq!(msgs[0].body, body, "step {step}");
    }
}

#[test]
fn rfc4975_s7_1_empty_body_and_bodiless_flags() {
    let msgs = decode_all(&t5(b"", "abcd"), 1).unwrap();
    assert!(msgs[0].body.is_empty());
    assert!(msgs[0].head.has_body());
    let input = b"MSRP abcd SEND\r\nTo-Path: msrp://a.example.com:1/x;tcp\r\nFrom-Path: msrp://b.example.com:2/y;tcp\r\n-------abcd#\r\n";
    let msgs = decode_all(input, 3).unwrap();
    assert_eq!(msgs[0].flag, Flag::Abort);
    assert!(!msgs[0].head.has_body());
}

#[test]
fn body_pieces_are_emitted_before_the_end_line_arrives() {
    // The decoder never holds a body: with the end-line not yet received, everything but
    // the last 8 bytes has been handed out.
    let mut dec = Decoder::new(Limits::default());
    let mut input = t5(&vec![b'x'; 100_000], "abcd");
    input.truncate(input.len() - 10); // 6 of the 16 end-line bytes arrived
    let mut buf = BytesMut::from(&input[..]);
    let mut body = 0;
    while let Some(ev) = dec.decode(&mut buf).unwrap() {
        if let Event::Body(b) = ev {
            body += b.len();
        }
    }
    assert!(body >= 100_000 - 8, "{body}");
    assert!(buf.len() <= 20);
}

fn violation(input: &[u8]) -> DecodeError {
    match decode_all(input, 4096) {
        Err(e) => e,
        Ok(m) => panic!("accepted: {m:?}"),
    }
}

const TO: &str = "To-Path: msrp://relay.example.com:2855/tok;tcp msrp://b.example.com:1/y;tcp\r\n";
const FROM: &str = "From-Path: msrp://a.example.com:1/x;tcp\r\n";

#[test]
fn checklist_t17_grammar_violations() {
    // From-Path before To-Path: the paths are not in place, so nothing can be addressed.
    let e = violation(format!("MSRP abcd SEND\r\n{FROM}{TO}-------abcd$\r\n").as_bytes());
    assert!(matches!(
        e,
        DecodeError::Fatal {
            violation: Violation::MissingPath(HeaderName::ToPath)
        }
    ));
    // Content-Type present but no empty line.
    let e = violation(
        format!("MSRP abcd SEND\r\n{TO}{FROM}Content-Type: text/plain\r\n-------abcd$\r\n")
            .as_bytes(),
    );
    assert_eq!(e.violation(), Violation::ContentTypeWithoutBody);
    assert_eq!(
        e.context().unwrap().from_path[0].as_str(),
        "msrp://a.example.com:1/x;tcp"
    );
    // A 3-character tid.
    let e = violation(format!("MSRP abc SEND\r\n{TO}{FROM}-------abc$\r\n").as_bytes());
    assert_eq!(e.violation(), Violation::TransactionId);
    // A 33-character tid.
    let tid33 = "a".repeat(33);
    let e = violation(format!("MSRP {tid33} SEND\r\n{TO}{FROM}-------{tid33}$\r\n").as_bytes());
    assert_eq!(
        e.violation(),
        Violation::LimitExceeded(Limit::TransactionId)
    );
    // An end-line whose tid does not match (bodiless).
    let e = violation(format!("MSRP abcd SEND\r\n{TO}{FROM}-------abce$\r\n").as_bytes());
    assert_eq!(e.violation(), Violation::EndLine);
    assert!(e.context().is_some());
    // G1: lowercase method, lowercase MSRP.
    let e = violation(format!("MSRP abcd send\r\n{TO}{FROM}-------abcd$\r\n").as_bytes());
    assert_eq!(e.violation(), Violation::Method);
    let e = violation(format!("msrp abcd SEND\r\n{TO}{FROM}-------abcd$\r\n").as_bytes());
    assert!(matches!(
        e,
        DecodeError::Fatal {
            violation: Violation::StartLine
        }
    ));
    // A non-SEND body larger than 10240 bytes (RFC 4975 §7.1).
    let mut big = format!("MSRP abcd REPORT\r\n{TO}{FROM}Message-ID: 12345\r\nStatus: 000 200 OK\r\nContent-Type: text/plain\r\n\r\n").into_bytes();
    big.extend_from_slice(&vec![b'x'; 10241]);
    big.extend_from_slice(b"\r\n-------abcd$\r\n");
    let e = violation(&big);
    assert_eq!(e.violation(), Violation::LimitExceeded(Limit::NonSendBody));
    assert_eq!(e.context().unwrap().method, Some(Method::Report));
}

#[test]
fn rfc4975_s7_1_content_type_last_and_body_rules() {
    let e = violation(format!("MSRP abcd SEND\r\n{TO}{FROM}Content-Type: text/plain\r\nMessage-ID: 12345\r\n\r\nx\r\n-------abcd$\r\n").as_bytes());
    assert_eq!(e.violation(), Violation::ContentTypeNotLast);
    let e = violation(
        format!("MSRP abcd SEND\r\n{TO}{FROM}Message-ID: 12345\r\n\r\nx\r\n-------abcd$\r\n")
            .as_bytes(),
    );
    assert_eq!(e.violation(), Violation::BodyWithoutContentType);
    let e = violation(
        format!(
            "MSRP abcd 200 OK\r\n{TO}{FROM}Content-Type: text/plain\r\n\r\nx\r\n-------abcd$\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(e.violation(), Violation::ResponseWithBody);
    assert_eq!(e.context().unwrap().method, None);
    let e = violation(format!("MSRP abcd SEND\r\n{TO}{FROM}Byte-Range: 1-2/3\r\nByte-Range: 1-2/3\r\n-------abcd$\r\n").as_bytes());
    assert_eq!(
        e.violation(),
        Violation::DuplicateHeader(HeaderName::ByteRange)
    );
    let e = violation(
        format!("MSRP abcd SEND\r\n{TO}{FROM}Failure-Report: maybe\r\n-------abcd$\r\n").as_bytes(),
    );
    assert_eq!(
        e.violation(),
        Violation::HeaderValue(HeaderName::FailureReport)
    );
    let e = violation(
        format!("MSRP abcd SEND\r\n{TO}{FROM}NoColonHere\r\n-------abcd$\r\n").as_bytes(),
    );
    assert_eq!(e.violation(), Violation::HeaderLine);
}

#[test]
fn rejected_messages_are_skipped_and_decoding_resumes() {
    let mut input =
        format!("MSRP abcd SEND\r\n{TO}{FROM}Message-ID: 12345\r\n\r\nbody\r\n-------abcd$\r\n")
            .into_bytes();
    input.extend_from_slice(&t5(b"next", "efgh"));
    let mut dec = Decoder::new(Limits::default());
    for step in [1, 5, 4096] {
        let mut buf = BytesMut::new();
        let mut errors = 0;
        let mut bodies = Vec::new();
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(Event::Body(b))) => bodies.extend_from_slice(&b),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(DecodeError::Rejected { .. }) => errors += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(
            (errors, bodies.as_slice()),
            (1, &b"next"[..]),
            "step {step}"
        );
    }
}

#[test]
fn rfc4975_s14_5_huge_byte_range_values_do_not_allocate() {
    let input = format!("MSRP abcd SEND\r\n{TO}{FROM}Byte-Range: 1-*/99999999999999\r\nContent-Type: text/plain\r\n\r\nx\r\n-------abcd$\r\n");
    let msgs = decode_all(input.as_bytes(), 4096).unwrap();
    assert_eq!(
        msgs[0].head.byte_range().unwrap().total,
        Some(99_999_999_999_999)
    );
    let max = format!("MSRP abcd SEND\r\n{TO}{FROM}Byte-Range: 1-*/18446744073709551615\r\nContent-Type: a/b\r\n\r\nx\r\n-------abcd$\r\n");
    assert_eq!(
        decode_all(max.as_bytes(), 9).unwrap()[0]
            .head
            .byte_range()
            .unwrap()
            .total,
        Some(u64::MAX)
    );
    let over = format!("MSRP abcd SEND\r\n{TO}{FROM}Byte-Range: 1-*/18446744073709551616\r\nContent-Type: a/b\r\n\r\nx\r\n-------abcd$\r\n");
    assert_eq!(
        violation(over.as_bytes()).violation(),
        Violation::HeaderValue(HeaderName::ByteRange)
    );
    assert_eq!(ByteRange::parse(b"0-1/2"), None);
    assert_eq!(ByteRange::parse(b"5-3/9"), None);
    assert_eq!(ByteRange::parse(b"1-9/5"), None);
    // The largest end is valid and must not overflow the `end + 1 >= start` check.
    assert_eq!(
        ByteRange::parse(b"1-18446744073709551615/18446744073709551615"),
        Some(ByteRange {
            start: 1,
            end: Some(u64::MAX),
            total: Some(u64::MAX)
        })
    );
    assert_eq!(
        ByteRange::parse(b"1-0/0"),
        Some(ByteRange {
            start: 1,
            end: Some(0),
            total: Some(0)
        })
    );
}

#[test]
fn limits_are_typed_errors_not_unbounded_buffers() {
    let limits = Limits {
        max_path_uris: 2,
        ..Limits::default()
    };
    let three = "To-Path: msrp://a.example.com:1/a;tcp msrp://b.example.com:1/b;tcp msrp://c.example.com:1/c;tcp\r\n";
    let e = decode_with(
        format!("MSRP abcd SEND\r\n{three}{FROM}-------abcd$\r\n").as_bytes(),
        4096,
        limits,
    )
    .unwrap_err();
    assert_eq!(e.violation(), Violation::LimitExceeded(Limit::PathUris));
    assert!(e.context().is_some(), "a too-long path is still answerable");

    let limits = Limits {
        max_headers: 4,
        ..Limits::default()
    };
    let many = "X-A: 1\r\n".repeat(10);
    let e = decode_with(
        format!("MSRP abcd SEND\r\n{TO}{FROM}{many}-------abcd$\r\n").as_bytes(),
        4096,
        limits,
    )
    .unwrap_err();
    assert_eq!(e.violation(), Violation::LimitExceeded(Limit::HeaderCount));

    // A header line that never ends: the decoder gives up at the limit, not at OOM.
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(format!("MSRP abcd SEND\r\n{TO}{FROM}X-Long: ").as_bytes());
    let mut err = None;
    for _ in 0..100 {
        buf.extend_from_slice(&[b'a'; 1024]);
        match dec.decode(&mut buf) {
            Ok(None) => continue,
            Ok(Some(ev)) => panic!("{ev:?}"),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let e = err.expect("limit reached");
    assert_eq!(e.violation(), Violation::LimitExceeded(Limit::HeaderLine));
    assert!(buf.len() < 20_000);

    // A start line that never ends: fatal, nothing to address.
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(&[b'M'; 5000][..]);
    assert!(matches!(
        dec.decode(&mut buf),
        Err(DecodeError::Fatal {
            violation: Violation::LimitExceeded(Limit::StartLine)
        })
    ));
    assert!(dec.decode(&mut buf).is_err(), "fatal is sticky");

    let long_mid = "1".repeat(33);
    let e = violation(
        format!("MSRP abcd SEND\r\n{TO}{FROM}Message-ID: {long_mid}\r\n-------abcd$\r\n")
            .as_bytes(),
    );
    assert_eq!(e.violation(), Violation::LimitExceeded(Limit::MessageId));
}

#[test]
fn unknown_methods_and_headers_are_kept() {
    let input = format!("MSRP u7y6t5r4 FOO\r\n{TO}{FROM}X-Custom:   keep  me \r\nmessage-id: abcd1\r\n-------u7y6t5r4$\r\n");
    let msgs = decode_all(input.as_bytes(), 4096).unwrap();
    let h = &msgs[0].head;
    assert_eq!(h.method().unwrap().as_str(), "FOO");
    assert_eq!(h.header("x-custom"), Some(&b"keep  me "[..]));
    // G1: header names are case-insensitive.
    assert_eq!(h.message_id(), Some(&b"abcd1"[..]));
    assert_eq!(h.rest(), b"X-Custom:   keep  me \r\nmessage-id: abcd1\r\n");
}

#[test]
fn encoder_writes_what_the_decoder_reads() {
    let tid = TransactionId::new(b"a1b2c3d4").unwrap();
    let to: msrp_proto::MsrpUri = "msrp://a.example.com:1/x;tcp".parse().unwrap();
    let from: msrp_proto::MsrpUri = "msrp://b.example.com:2/y;tcp".parse().unwrap();
    let mut buf = BytesMut::new();
    HeadWriter::request(&mut buf, &tid, &Method::Report)
        .path(HeaderName::ToPath, [&to])
        .path(HeaderName::FromPath, [&from])
        .header("Message-ID", b"m1234")
        .byte_range(ByteRange {
            start: 1,
            end: Some(5),
            total: Some(5),
        })
        .status(408, "Request Timeout")
        .finish(false);
    write_end_line(&mut buf, &tid, Flag::Complete, false);
    let msgs = decode_all(&buf, 4096).unwrap();
    let h = &msgs[0].head;
    assert_eq!(h.status().unwrap().code, 408);
    assert_eq!(h.to_path()[0], to);

    let mut buf = BytesMut::new();
    HeadWriter::response(&mut buf, &tid, 200, b"OK")
        .path(HeaderName::ToPath, [&from])
        .path(HeaderName::FromPath, [&to])
        .finish(false);
    write_end_line(&mut buf, &tid, Flag::Complete, false);
    assert_eq!(
        &buf[..],
        b"MSRP a1b2c3d4 200 OK\r\nTo-Path: msrp://b.example.com:2/y;tcp\r\nFrom-Path: msrp://a.example.com:1/x;tcp\r\n-------a1b2c3d4$\r\n"
    );
    let _ = Bytes::new();
}
