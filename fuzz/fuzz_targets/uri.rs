//! Fuzz MSRP URI parsing (RFC 4975 §6, §9) and path lists.
//!
//! A URI that parses formats back to its exact bytes, re-parses, is equivalent to itself
//! (RFC 4975 §6.1), and rebuilt from its parts is equivalent to itself again. Two URIs
//! (the input split at its first SP) compare the same both ways.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use msrp_proto::uri::parse_path;
use msrp_proto::MsrpUri;

fn check_one(raw: Bytes) -> Option<MsrpUri> {
    let u = MsrpUri::parse(raw.clone()).ok()?;
    assert_eq!(u.as_bytes(), &raw[..]);
    assert_eq!(u.to_string().as_bytes(), &raw[..], "format(parse(s)) != s");
    assert!(u.equivalent(&u), "not equivalent to itself: {u}");
    let again: MsrpUri = u.as_str().parse().expect("a formatted URI parses");
    assert!(again == u && u == again);
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
    assert!(rebuilt == u && u == rebuilt, "{rebuilt} is not {u}");
    Some(u)
}

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);
    check_one(raw.clone());

    if let Some(sp) = data.iter().position(|&b| b == b' ') {
        let a = check_one(raw.slice(..sp));
        let b = check_one(raw.slice(sp + 1..));
        if let (Some(a), Some(b)) = (a, b) {
            assert_eq!(a == b, b == a, "equivalence is not symmetric: {a} {b}");
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
