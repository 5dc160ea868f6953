//! Fuzz MSRP URI parsing (RFC 4975 §6, §9) and path lists.
//!
//! `MsrpUri::parse` gives exactly what the full parser (`parse_reference`, without the fast
//! path for the common form) gives. A URI that parses formats back to its exact bytes,
//! re-parses, is equivalent to itself
//! (RFC 4975 §6.1), and rebuilt from its parts is equivalent to itself again. Two URIs
//! (the input split at its first SP) compare the same both ways.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use msrp_proto::uri::parse_path;
use msrp_proto::MsrpUri;

/// `parse` (with its fast path for the common form) agrees with the full parser.
fn check_reference(raw: &Bytes, got: &Result<MsrpUri, msrp_proto::uri::UriError>) {
    let want = MsrpUri::parse_reference(raw.clone());
    match (got, &want) {
        (Err(a), Err(b)) => assert_eq!(a, b),
        (Ok(a), Ok(b)) => {
            assert_eq!(a.as_bytes(), b.as_bytes());
            assert_eq!(
                (a.scheme(), a.userinfo(), a.host(), a.host_kind(), a.port()),
                (b.scheme(), b.userinfo(), b.host(), b.host_kind(), b.port())
            );
            assert_eq!(
                (a.session_id(), a.transport(), a.params()),
                (b.session_id(), b.transport(), b.params())
            );
        }
        _ => panic!("fast path {got:?} but reference {want:?}"),
    }
}

fn check_one(raw: Bytes) -> Option<MsrpUri> {
    let parsed = MsrpUri::parse(raw.clone());
    check_reference(&raw, &parsed);
    let u = parsed.ok()?;
    assert_eq!(u.as_bytes(), &raw[..]);
    assert_eq!(u.to_string().as_bytes(), &raw[..], "format(parse(s)) != s");
    assert!(u.equivalent(&u), "not equivalent to itself: {u}");
    let again: MsrpUri = u.as_str().parse().expect("a formatted URI parses");
    assert!(again.equivalent(&u) && u.equivalent(&again));
    let _ = (u.userinfo(), u.params(), u.ip(), u.host_kind());
    // Rebuilt from its parts: userinfo and parameters are not part of §6.1 equivalence.
    let rebuilt = MsrpUri::build(
        u.scheme(),
        u.host_unbracketed(),
        u.port(),
        u.session_id(),
        u.transport(),
    )
    .unwrap_or_else(|e| panic!("{u} rebuilt from its parts does not parse: {e}"));
    assert!(
        rebuilt.equivalent(&u) && u.equivalent(&rebuilt),
        "{rebuilt} is not {u}"
    );
    Some(u)
}

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);
    check_one(raw.clone());

    if let Some(sp) = data.iter().position(|&b| b == b' ') {
        let a = check_one(raw.slice(..sp));
        let b = check_one(raw.slice(sp + 1..));
        if let (Some(a), Some(b)) = (a, b) {
            assert_eq!(
                a.equivalent(&b),
                b.equivalent(&a),
                "equivalence is not symmetric: {a} {b}"
            );
        }
    }

    if let Ok(path) = parse_path(&raw, 8) {
        assert!(!path.is_empty() && path.len() <= 8);
        for u in &path {
            assert!(!u.as_bytes().is_empty());
            assert!(!u.as_bytes().contains(&b' ') && !u.as_bytes().contains(&b'\t'));
        }
    }
});
