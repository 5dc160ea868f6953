//! Fuzz the streaming decoder (RFC 4975 §7.1 framing, §9 grammar).
//!
//! Input layout: `split_lo split_hi limits_selector message-bytes...`. The message bytes are
//! decoded twice, fed whole and split in two at `split % (len + 1)`; both runs must produce the
//! same heads, bodies, flags and errors (reads never change the outcome). Every decoded head
//! is rewritten with `write_forward_head` and must decode again with the same fields. The
//! decoder must never panic nor buffer more than its limits allow.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use msrp_proto::encoder::{write_end_line, write_forward_head};
use msrp_proto::{DecodeError, Decoder, Event, Flag, Head, Limits};

fn limits(selector: u8) -> Limits {
    if selector & 1 == 0 {
        Limits::default()
    } else {
        // Small limits, so that short inputs reach every limit path.
        Limits {
            max_start_line: 64,
            max_header_line: 160,
            max_head_size: 320,
            max_headers: 6,
            max_path_uris: 3,
            max_tid_len: 32,
            max_message_id_len: 32,
            max_non_send_body: 48,
        }
    }
}

/// The most bytes the decoder may hold after returning `Ok(None)`: complete head lines plus one
/// partial line, or a non-SEND body plus its end-line.
fn bound(l: &Limits) -> usize {
    (l.max_head_size + l.max_header_line.max(l.max_start_line) + 2)
        .max(l.max_non_send_body + 7 + 64 + 3)
}

fn decode(parts: &[&[u8]], limits: &Limits) -> Vec<String> {
    let mut dec = Decoder::new(limits.clone());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut cur: Option<(Head, Vec<u8>)> = None;
    for part in parts {
        buf.extend_from_slice(part);
        loop {
            match dec.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(Event::Head(h))) => {
                    assert!(cur.is_none(), "head inside a message");
                    check_forward(&h);
                    let _ = h.www_authenticate();
                    let _ = h.authorization();
                    let _ = h.authentication_info();
                    cur = Some((*h, Vec::new()));
                }
                Ok(Some(Event::Body(b))) => {
                    assert!(!b.is_empty(), "empty body piece");
                    cur.as_mut()
                        .expect("body after head")
                        .1
                        .extend_from_slice(&b);
                }
                Ok(Some(Event::End(flag))) => {
                    let (h, body) = cur.take().expect("end after head");
                    out.push(format!("{h:?} {body:?} {flag:?}"));
                }
                Err(e) => {
                    assert!(cur.is_none(), "error inside a message");
                    out.push(format!(
                        "{:?} {:?}",
                        e.violation(),
                        e.context().map(|c| c.tid)
                    ));
                    if let DecodeError::Fatal { .. } = e {
                        assert!(dec.decode(&mut buf).is_err(), "fatal is sticky");
                        return out;
                    }
                }
            }
        }
        assert!(
            buf.len() <= bound(limits),
            "decoder holds {} bytes",
            buf.len()
        );
    }
    // A message still open at the end of the input is not an error: more could come.
    if let Some((h, body)) = cur {
        out.push(format!("open {h:?} {body:?}"));
    }
    out
}

/// A head rewritten for the next hop decodes into the same message (limits relaxed for the URI
/// that moves from To-Path to From-Path).
fn check_forward(h: &Head) {
    let mut wire = BytesMut::new();
    write_forward_head(&mut wire, h, h.tid(), 1, None);
    write_end_line(&mut wire, h.tid(), Flag::Complete, h.has_body());
    let relaxed = Limits {
        max_path_uris: usize::MAX,
        max_header_line: usize::MAX / 4,
        max_head_size: usize::MAX / 4,
        ..Limits::default()
    };
    let mut dec = Decoder::new(relaxed);
    let text = String::from_utf8_lossy(&wire).into_owned();
    let fwd = match dec.decode(&mut wire) {
        Ok(Some(Event::Head(f))) => f,
        other => panic!("forwarded head does not decode: {other:?}\n{text}"),
    };
    assert!(
        matches!(dec.decode(&mut wire), Ok(Some(Event::End(Flag::Complete)))),
        "forwarded message does not end: {text}"
    );
    assert!(wire.is_empty());
    let pop = 1.min(h.to_path().len() - 1);
    assert_eq!(fwd.start_line(), h.start_line());
    let bytes =
        |v: &[msrp_proto::MsrpUri]| v.iter().map(|u| u.as_bytes().to_vec()).collect::<Vec<_>>();
    assert_eq!(bytes(fwd.to_path()), bytes(&h.to_path()[pop..]));
    let mut from = bytes(&h.to_path()[..pop]);
    from.extend(bytes(h.from_path()));
    assert_eq!(bytes(fwd.from_path()), from);
    assert_eq!(fwd.rest(), h.rest());
    assert_eq!(fwd.has_body(), h.has_body());
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let split = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let limits = limits(data[2]);
    let input = &data[3..];
    let split = split % (input.len() + 1);
    let whole = decode(&[input], &limits);
    let pieces = decode(&[&input[..split], &input[split..]], &limits);
    assert_eq!(whole, pieces, "split at {split} changes the outcome");
});
