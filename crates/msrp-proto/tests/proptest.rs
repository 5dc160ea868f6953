//! Property tests of the protocol core: encode/decode round trips, chunking invariance, URI
//! parsing and equivalence (RFC 4975 §6.1, §7.1, §9), and robustness on arbitrary input.
//!
//! Case counts are kept modest so that the suite runs in a few seconds in a debug build; set
//! `PROPTEST_CASES` to run more.

use bytes::{Bytes, BytesMut};
use msrp_proto::encoder::{write_end_line, write_forward_head, HeadWriter};
use msrp_proto::uri::parse_path;
use msrp_proto::{
    ByteRange, DecodeError, Decoder, Event, FailureReport, Flag, Head, HeaderName, Limits, Method,
    MsrpUri, StartLine, TransactionId,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

fn config() -> ProptestConfig {
    config_with(256)
}

/// `cases` by default, or `PROPTEST_CASES` when set.
fn config_with(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        // Failures found so far are kept as unit tests in the modules they concern.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// RFC 4975 §9 `ident = ALPHANUM 3*31ident-char`.
fn ident() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.+%=-]{3,31}"
}

/// The parts of an MSRP URI, so a test can rebuild it with changes.
#[derive(Debug, Clone)]
struct UriParts {
    scheme: String,
    userinfo: Option<String>,
    host: String,
    port: Option<u16>,
    session_id: Option<String>,
    transport: String,
    params: Option<String>,
}

impl UriParts {
    fn render(&self) -> String {
        let mut s = format!("{}://", self.scheme);
        if let Some(u) = &self.userinfo {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(&self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        if let Some(sid) = &self.session_id {
            s.push('/');
            s.push_str(sid);
        }
        s.push(';');
        s.push_str(&self.transport);
        if let Some(p) = &self.params {
            s.push(';');
            s.push_str(p);
        }
        s
    }
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        // reg-name: DNS-like labels, sometimes with a percent-encoded byte.
        (
            vec("[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?", 1..4),
            proptest::option::of("%[0-9A-Fa-f]{2}")
        )
            .prop_map(|(labels, pct)| {
                let mut h = labels.join(".");
                if let Some(p) = pct {
                    h.push_str(&p);
                }
                h
            }),
        any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
        Just("[::1]".to_owned()),
    ]
}

fn transport() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("tcp".to_owned()),
        Just("ws".to_owned()),
        "[A-Za-z0-9]{1,6}"
    ]
}

fn uri_parts() -> impl Strategy<Value = UriParts> {
    (
        select(vec!["msrp", "msrps"]),
        proptest::option::of("[A-Za-z0-9._~!$&'()*+,=:-]{0,10}"),
        host(),
        proptest::option::of(1u16..=u16::MAX),
        proptest::option::of("[A-Za-z0-9._~+=/-]{1,24}"),
        transport(),
        proptest::option::of("[a-z]{1,5}(=[A-Za-z0-9.!%*_+`'~-]{1,6})?(;[a-z]{1,4})?"),
    )
        .prop_map(
            |(scheme, userinfo, host, port, session_id, transport, params)| UriParts {
                scheme: scheme.to_owned(),
                userinfo,
                host,
                port,
                session_id,
                transport,
                params,
            },
        )
}

fn uri() -> impl Strategy<Value = MsrpUri> {
    uri_parts().prop_map(|p| {
        let s = p.render();
        s.parse()
            .unwrap_or_else(|e| panic!("generated URI {s} does not parse: {e}"))
    })
}

/// u64 values that favour the edges (0, 1, u64::MAX) as well as small and arbitrary ones.
fn num() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        0u64..100_000,
        any::<u64>(),
    ]
}

fn byte_range() -> impl Strategy<Value = ByteRange> {
    (
        num().prop_map(|s| s.max(1)),
        any::<bool>(),
        any::<bool>(),
        num(),
        num(),
    )
        .prop_map(|(start, has_end, has_total, a, b)| {
            // range-end >= range-start - 1 (an empty range is `n-(n-1)`), total >= end.
            let end = has_end.then(|| (start - 1).saturating_add(a % 3).max(a));
            let total = has_total.then(|| match end {
                Some(e) => e.saturating_add(b % 2).max(b),
                None => b,
            });
            ByteRange { start, end, total }
        })
}

/// RFC 4975 §9 `utf8text` without leading whitespace (it is not part of a header value).
fn text_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[!-~]([ -~\t]{0,30})?".prop_map(String::into_bytes),
        Just(Vec::new()),
        "[!-~]{0,3}[é€🎉][ -~]{0,5}".prop_map(String::into_bytes),
    ]
}

/// A status comment: no trailing whitespace, since the Status value is trimmed.
fn comment() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]([ -~]{0,20}[!-~])?"]
}

#[derive(Debug, Clone)]
enum Extra {
    MessageId(String),
    ByteRange(ByteRange),
    SuccessReport(bool),
    FailureReport(FailureReport),
    /// namespace, code, comment
    Status(u16, u16, String),
    Expires(u64),
    MinExpires(u64),
    MaxExpires(u64),
    /// name, value
    Ext(String, Vec<u8>),
}

impl Extra {
    fn write(&self, w: &mut HeadWriter<'_>) {
        match self {
            Extra::MessageId(m) => {
                w.header("Message-ID", m.as_bytes());
            }
            Extra::ByteRange(r) => {
                w.byte_range(*r);
            }
            Extra::SuccessReport(b) => {
                w.header("Success-Report", if *b { b"yes" } else { b"no" });
            }
            Extra::FailureReport(f) => {
                let v: &[u8] = match f {
                    FailureReport::Yes => b"yes",
                    FailureReport::No => b"no",
                    FailureReport::Partial => b"partial",
                };
                w.header("Failure-Report", v);
            }
            Extra::Status(0, code, comment) => {
                w.status(*code, comment);
            }
            Extra::Status(ns, code, comment) => {
                let mut v = format!("{ns:03} {code:03}");
                if !comment.is_empty() {
                    v.push(' ');
                    v.push_str(comment);
                }
                w.header("Status", v.as_bytes());
            }
            Extra::Expires(n) => {
                w.number("Expires", *n);
            }
            Extra::MinExpires(n) => {
                w.number("Min-Expires", *n);
            }
            Extra::MaxExpires(n) => {
                w.number("Max-Expires", *n);
            }
            Extra::Ext(name, value) => {
                w.header(name, value);
            }
        }
    }
}

/// A random subset of the optional headers, each at most once, in random order.
fn extras() -> impl Strategy<Value = Vec<Extra>> {
    (
        proptest::option::of(ident().prop_map(Extra::MessageId)),
        proptest::option::of(byte_range().prop_map(Extra::ByteRange)),
        proptest::option::of(any::<bool>().prop_map(Extra::SuccessReport)),
        proptest::option::of(
            select(vec![
                FailureReport::Yes,
                FailureReport::No,
                FailureReport::Partial,
            ])
            .prop_map(Extra::FailureReport),
        ),
        proptest::option::of(
            (0u16..=999, 0u16..=999, comment()).prop_map(|(n, c, t)| Extra::Status(n, c, t)),
        ),
        proptest::option::of(num().prop_map(Extra::Expires)),
        proptest::option::of(num().prop_map(Extra::MinExpires)),
        proptest::option::of(num().prop_map(Extra::MaxExpires)),
        vec(("[A-Za-z0-9-]{1,10}", text_value()), 0..4),
    )
        .prop_flat_map(|(a, b, c, d, e, f, g, h, ext)| {
            let mut v: Vec<Extra> = [a, b, c, d, e, f, g, h].into_iter().flatten().collect();
            for (i, (name, value)) in ext.into_iter().enumerate() {
                v.push(Extra::Ext(format!("X-{i}{name}"), value));
            }
            Just(v).prop_shuffle()
        })
}

#[derive(Debug, Clone)]
enum Start {
    Request(String),
    Response(u16, Vec<u8>),
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        select(vec!["SEND", "REPORT", "AUTH"]).prop_map(|m| Start::Request(m.to_owned())),
        "[A-Z]{1,10}".prop_map(Start::Request),
        (0u16..=999, text_value()).prop_map(|(c, t)| Start::Response(c, t)),
    ]
}

/// A valid message: the head's parts, an optional body with its Content-Type, and the flag.
#[derive(Debug, Clone)]
struct Msg {
    tid: String,
    start: Start,
    to: Vec<MsrpUri>,
    from: Vec<MsrpUri>,
    extras: Vec<Extra>,
    /// Content-Type and body, for requests.
    body: Option<(String, Vec<u8>)>,
    flag: Flag,
}

/// Body fragments that look like end-lines: of another transaction, of this one with a wrong
/// flag or without its CRLF, cut short, or just the delimiter (RFC 4975 §7.1 G7).
fn body_piece(tid: String) -> impl Strategy<Value = Vec<u8>> {
    let t = tid.clone();
    let t2 = tid.clone();
    let t3 = tid.clone();
    prop_oneof![
        3 => vec(any::<u8>(), 0..64),
        1 => (ident(), select(vec!['$', '+', '#'])).prop_map(|(other, f)| format!("\r\n-------{other}{f}\r\n").into_bytes()),
        1 => any::<u8>().prop_filter("not a flag", |b| !b"$+#".contains(b)).prop_map(move |b| {
            let mut v = format!("\r\n-------{t}").into_bytes();
            v.push(b);
            v.extend_from_slice(b"\r\n");
            v
        }),
        1 => (select(vec!['$', '+', '#']), select(vec!["", "\r", "\n", "x", " \r\n", "\r\r\n"]))
            .prop_map(move |(f, tail)| format!("\r\n-------{t2}{f}{tail}").into_bytes()),
        1 => (1..tid.len()).prop_map(move |n| format!("\r\n-------{}", &t3[..n]).into_bytes()),
        1 => select(vec![&b"\r\n-------"[..], b"\r\n", b"-------", b"\r", b"\n-------"]).prop_map(<[u8]>::to_vec),
    ]
}

fn body(tid: String) -> impl Strategy<Value = Vec<u8>> {
    vec(body_piece(tid), 0..8).prop_map(|p| p.concat())
}

/// Whether `body` followed by its end-line would end the body early (the generator may
/// glue fragments into a genuine end-line).
fn body_is_framable(tid: &str, body: &[u8]) -> bool {
    let mut wire = body.to_vec();
    wire.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
    let first = ["$", "+", "#"]
        .iter()
        .filter_map(|f| find(&wire, format!("\r\n-------{tid}{f}\r\n").as_bytes()))
        .min();
    first == Some(body.len())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        ident(),
        start(),
        vec(uri(), 1..=4),
        vec(uri(), 1..=4),
        extras(),
        select(vec![Flag::Complete, Flag::More, Flag::Abort]),
        any::<bool>(),
    )
        .prop_flat_map(|(tid, start, to, from, extras, flag, with_body)| {
            let is_request = matches!(start, Start::Request(_));
            let body = if is_request && with_body {
                proptest::option::of((
                    select(vec![
                        "text/plain",
                        "application/octet-stream",
                        "message/cpim",
                        "text/plain; charset=utf-8",
                    ])
                    .prop_map(str::to_owned),
                    body(tid.clone()),
                ))
                .boxed()
            } else {
                Just(None).boxed()
            };
            (
                Just(tid),
                Just(start),
                Just(to),
                Just(from),
                Just(extras),
                body,
                Just(flag),
            )
        })
        .prop_map(|(tid, start, to, from, extras, body, flag)| Msg {
            flag: if matches!(start, Start::Response(..)) {
                Flag::Complete
            } else {
                flag
            },
            tid,
            start,
            to,
            from,
            extras,
            body,
        })
        .prop_filter("body contains its own end-line", |m| {
            m.body
                .as_ref()
                .is_none_or(|(_, b)| body_is_framable(&m.tid, b))
        })
}

impl Msg {
    fn tid(&self) -> TransactionId {
        TransactionId::new(self.tid.as_bytes()).expect("generated tid is an ident")
    }

    fn encode(&self, buf: &mut BytesMut) {
        let tid = self.tid();
        let mut w = match &self.start {
            Start::Request(m) => HeadWriter::request(
                buf,
                &tid,
                &Method::parse(m.as_bytes()).expect("generated method"),
            ),
            Start::Response(code, comment) => HeadWriter::response(buf, &tid, *code, comment),
        };
        w.path(HeaderName::ToPath, &self.to);
        w.path(HeaderName::FromPath, &self.from);
        for e in &self.extras {
            e.write(&mut w);
        }
        if let Some((ct, _)) = &self.body {
            w.header("Content-Type", ct.as_bytes());
        }
        w.finish(self.body.is_some());
        if let Some((_, body)) = &self.body {
            buf.extend_from_slice(body);
        }
        write_end_line(buf, &tid, self.flag, self.body.is_some());
    }

    fn wire(&self) -> Vec<u8> {
        let mut buf = BytesMut::new();
        self.encode(&mut buf);
        buf.to_vec()
    }

    /// Check that a decoded head carries every field this message was written with.
    fn check_head(&self, h: &Head) -> Result<(), TestCaseError> {
        prop_assert_eq!(h.tid().as_str(), self.tid.as_str());
        match (&self.start, h.start_line()) {
            (Start::Request(m), StartLine::Request { method, .. }) => {
                prop_assert_eq!(method.as_str(), m.as_str());
                prop_assert_eq!(Some(method.clone()), Method::parse(m.as_bytes()));
            }
            (Start::Response(c, t), StartLine::Response { code, comment, .. }) => {
                prop_assert_eq!(code, c);
                prop_assert_eq!(&comment[..], &t[..]);
            }
            (a, b) => prop_assert!(false, "start line {:?} decoded as {:?}", a, b),
        }
        let bytes = |v: &[MsrpUri]| v.iter().map(|u| u.as_bytes().to_vec()).collect::<Vec<_>>();
        prop_assert_eq!(bytes(h.to_path()), bytes(&self.to));
        prop_assert_eq!(bytes(h.from_path()), bytes(&self.from));
        let mut message_id = None;
        let mut range = None;
        let mut success = false;
        let mut failure = FailureReport::Yes;
        let mut status = None;
        let (mut exp, mut min, mut max) = (None, None, None);
        for e in &self.extras {
            match e {
                Extra::MessageId(m) => message_id = Some(m.as_bytes()),
                Extra::ByteRange(r) => range = Some(*r),
                Extra::SuccessReport(b) => success = *b,
                Extra::FailureReport(f) => failure = *f,
                Extra::Status(n, c, t) => status = Some((*n, *c, t.as_bytes())),
                Extra::Expires(n) => exp = Some(*n),
                Extra::MinExpires(n) => min = Some(*n),
                Extra::MaxExpires(n) => max = Some(*n),
                Extra::Ext(name, value) => {
                    prop_assert_eq!(h.header(name), Some(&value[..]), "header {}", name);
                    prop_assert_eq!(h.header(&name.to_lowercase()), Some(&value[..]));
                }
            }
        }
        prop_assert_eq!(h.message_id(), message_id);
        prop_assert_eq!(h.byte_range(), range);
        prop_assert_eq!(h.success_report(), success);
        prop_assert_eq!(h.failure_report(), failure);
        prop_assert_eq!(
            h.status().map(|s| (s.namespace, s.code, &s.comment[..])),
            status
        );
        prop_assert_eq!(
            (h.expires(), h.min_expires(), h.max_expires()),
            (exp, min, max)
        );
        prop_assert_eq!(
            h.headers().len(),
            self.extras.len() + usize::from(self.body.is_some())
        );
        prop_assert_eq!(h.has_body(), self.body.is_some());
        prop_assert_eq!(
            h.content_type(),
            self.body.as_ref().map(|(ct, _)| ct.as_bytes())
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding helpers
// ---------------------------------------------------------------------------------------------

/// What a test compares: a whole message, or an error (its violation and, when rejected, the
/// transaction it was addressed to).
#[derive(Debug, PartialEq)]
enum Out {
    Msg {
        head: String,
        body: Vec<u8>,
        flag: Flag,
    },
    Err(String),
}

/// Decode `input` fed in pieces of the given sizes (cycled), collecting messages and errors.
/// Decoding stops at a fatal error. Body pieces must follow a head; a message must not be
/// left open at the end of the input.
fn decode_stream(input: &[u8], sizes: &[usize], limits: &Limits) -> (Vec<Out>, Vec<Head>) {
    let mut dec = Decoder::new(limits.clone());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut heads = Vec::new();
    let mut cur: Option<(Head, Vec<u8>)> = None;
    let mut at = 0;
    let mut i = 0;
    'feed: while at < input.len() {
        let n = sizes[i % sizes.len()].clamp(1, input.len() - at);
        i += 1;
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
        loop {
            match dec.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(Event::Head(h))) => {
                    assert!(cur.is_none(), "a head inside a message");
                    cur = Some((*h, Vec::new()));
                }
                Ok(Some(Event::Body(b))) => {
                    assert!(!b.is_empty(), "empty body piece");
                    cur.as_mut()
                        .expect("a body piece after a head")
                        .1
                        .extend(&b)
                }
                Ok(Some(Event::End(flag))) => {
                    let (head, body) = cur.take().expect("an end after a head");
                    out.push(Out::Msg {
                        head: format!("{head:?}"),
                        body,
                        flag,
                    });
                    heads.push(head);
                }
                Err(e) => {
                    assert!(cur.is_none(), "an error inside a message: {e}");
                    let fatal = matches!(e, DecodeError::Fatal { .. });
                    out.push(Out::Err(format!(
                        "{:?} {:?}",
                        e.violation(),
                        e.context().map(|c| c.tid)
                    )));
                    if fatal {
                        break 'feed;
                    }
                }
            }
        }
    }
    assert!(cur.is_none(), "the input ended inside a message");
    (out, heads)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// HeadWriter + body + write_end_line decodes back to the same fields, body and flag.
    #[test]
    fn encode_decode_round_trip(m in msg()) {
        let wire = m.wire();
        let (out, heads) = decode_stream(&wire, &[wire.len()], &Limits::default());
        prop_assert_eq!(heads.len(), 1, "{:?}", out);
        m.check_head(&heads[0])?;
        match &out[0] {
            Out::Msg { body, flag, .. } => {
                let want: &[u8] = m.body.as_ref().map_or(&[], |(_, b)| b);
                prop_assert_eq!(&body[..], want);
                prop_assert_eq!(*flag, m.flag);
            }
            Out::Err(e) => prop_assert!(false, "{}", e),
        }
    }

    /// write_forward_head: pop our URIs from To-Path onto From-Path (RFC 4976 §6.4.1), a new
    /// tid, and every other header line byte-identical; the result decodes.
    #[test]
    fn forward_head_round_trip(m in msg(), new_tid in ident(), pop in 0usize..3,
                               range in proptest::option::of(byte_range())) {
        let wire = m.wire();
        let (_, heads) = decode_stream(&wire, &[wire.len()], &Limits::default());
        prop_assert_eq!(heads.len(), 1);
        let head = &heads[0];
        let tid = TransactionId::new(new_tid.as_bytes()).expect("ident");
        let mut buf = BytesMut::new();
        write_forward_head(&mut buf, head, &tid, pop, range);
        write_end_line(&mut buf, &tid, Flag::Complete, head.has_body());
        let limits = Limits { max_path_uris: 64, ..Limits::default() };
        let (out, again) = decode_stream(&buf, &[buf.len()], &limits);
        prop_assert_eq!(again.len(), 1, "{:?}", out);
        let fwd = &again[0];
        let popped = pop.min(m.to.len() - 1);
        let bytes = |v: &[MsrpUri]| v.iter().map(|u| u.as_bytes().to_vec()).collect::<Vec<_>>();
        prop_assert_eq!(fwd.tid(), &tid);
        prop_assert_eq!(fwd.method(), head.method());
        prop_assert_eq!(fwd.response_code(), head.response_code());
        prop_assert_eq!(bytes(fwd.to_path()), bytes(&m.to[popped..]));
        let mut from: Vec<MsrpUri> = m.to[..popped].iter().rev().cloned().collect();
        from.extend(m.from.iter().cloned());
        prop_assert_eq!(bytes(fwd.from_path()), bytes(&from));
        prop_assert_eq!(fwd.has_body(), head.has_body());
        match range {
            None => prop_assert_eq!(fwd.rest(), head.rest()),
            Some(r) => {
                prop_assert_eq!(fwd.byte_range(), Some(r));
                // Every other line is copied byte-identical and in order.
                let others = |h: &Head| h.headers().iter()
                    .filter(|f| f.name != HeaderName::ByteRange)
                    .map(|f| h.line(f).to_vec())
                    .collect::<Vec<_>>();
                prop_assert_eq!(others(fwd), others(head));
                if head.has_body() {
                    prop_assert_eq!(fwd.headers().last().map(|f| f.name), Some(HeaderName::ContentType));
                }
            }
        }
    }

    /// format(parse(s)) == s, and every component reads back as generated.
    #[test]
    fn uri_format_parse_round_trip(p in uri_parts()) {
        let s = p.render();
        let u: MsrpUri = s.parse().map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        prop_assert_eq!(u.to_string(), s.clone());
        prop_assert_eq!(u.as_bytes(), s.as_bytes());
        prop_assert_eq!(u.scheme().as_str(), p.scheme.as_str());
        prop_assert_eq!(u.userinfo(), p.userinfo.as_deref());
        prop_assert_eq!(u.host(), p.host.as_str());
        prop_assert_eq!(u.port(), p.port);
        prop_assert_eq!(u.session_id(), p.session_id.as_deref());
        prop_assert_eq!(u.transport(), p.transport.as_str());
        prop_assert_eq!(u.params(), p.params.as_deref());
        // The same URI inside a path list, with its neighbours.
        let list = Bytes::from(format!("{s} {s}\t{s}"));
        let path = parse_path(&list, 3).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(path.len(), 3);
        for x in &path {
            prop_assert_eq!(x.as_bytes(), s.as_bytes());
        }
    }

    /// The fast path of `MsrpUri::parse` for the common URI form gives exactly what the full
    /// parser gives, on generated URIs and on byte-level mutations of them.
    #[test]
    fn uri_fast_path_matches_reference(
        p in uri_parts(),
        edits in vec((any::<usize>(), any::<u8>(), 0u8..3), 0..3),
        common in any::<bool>(),
        port in prop_oneof![
            select(vec!["", ":", ":0", ":1", ":65535", ":65536", ":99999", ":00080", ":000080", ":123456"])
                .prop_map(str::to_owned),
            "(:[0-9]{1,6})?",
        ],
    ) {
        let mut bytes = p.render().into_bytes();
        // Often the plain common form itself, with edge-case ports.
        if common {
            bytes = format!("msrp://{}{port}/{};tcp",
                p.host.trim_matches(|c| c == '[' || c == ']').replace(':', "x"),
                p.session_id.as_deref().unwrap_or("s")).into_bytes();
        }
        for (at, byte, op) in edits {
            let at = at % (bytes.len() + 1);
            match op {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
        }
        let raw = Bytes::from(bytes);
        same_parse(&MsrpUri::parse(raw.clone()), &MsrpUri::parse_reference(raw))?;
    }

    /// RFC 4975 §6.1 equivalence is reflexive and symmetric.
    #[test]
    fn uri_equivalence_reflexive_symmetric(
        a in uri_parts(),
        b in uri_parts(),
        mix in any::<[bool; 7]>(),
    ) {
        // Mix components of a and b so that many pairs are equivalent or nearly so.
        let c = UriParts {
            scheme: if mix[0] { a.scheme.clone() } else { b.scheme.clone() },
            userinfo: if mix[1] { a.userinfo.clone() } else { b.userinfo.clone() },
            host: if mix[2] { a.host.clone() } else { b.host.clone() },
            port: if mix[3] { a.port } else { b.port },
            session_id: if mix[4] { a.session_id.clone() } else { b.session_id.clone() },
            transport: if mix[5] { a.transport.clone() } else { b.transport.clone() },
            params: if mix[6] { a.params.clone() } else { b.params.clone() },
        };
        let ua: MsrpUri = a.render().parse().expect("a parses");
        let uc: MsrpUri = c.render().parse().expect("c parses");
        prop_assert!(ua == ua.clone());
        prop_assert!(uc.equivalent(&uc));
        prop_assert_eq!(ua == uc, uc == ua);
        // Userinfo and parameters other than the transport never matter.
        let all_but_ignored = mix[0] && mix[2] && mix[3] && mix[4] && mix[5];
        if all_but_ignored {
            prop_assert!(ua == uc, "{} vs {}", ua, uc);
        }
    }

    /// Changing the case of scheme, host and transport keeps equivalence; changing the case
    /// of the session-id breaks it (RFC 4975 §6.1).
    #[test]
    fn uri_equivalence_case_rules(p in uri_parts(), flips in any::<u64>()) {
        let flip = |s: &str, salt: u32| -> String {
            s.chars().enumerate().map(|(i, ch)| {
                if (flips.rotate_left(salt + i as u32) & 1) == 1 {
                    if ch.is_ascii_lowercase() { ch.to_ascii_uppercase() } else { ch.to_ascii_lowercase() }
                } else {
                    ch
                }
            }).collect()
        };
        let orig: MsrpUri = p.render().parse().expect("parses");
        let q = UriParts {
            scheme: flip(&p.scheme, 0),
            host: flip(&p.host, 11),
            transport: flip(&p.transport, 23),
            ..p.clone()
        };
        let cased: MsrpUri = q.render().parse().expect("case-changed URI parses");
        prop_assert!(orig == cased, "{} vs {}", orig, cased);
        prop_assert!(cased == orig);
        if let Some(sid) = &p.session_id {
            if sid.chars().any(|c| c.is_ascii_alphabetic()) {
                // Flip the case of exactly one letter.
                let pos = sid.find(|c: char| c.is_ascii_alphabetic()).expect("a letter");
                let mut other: Vec<u8> = sid.clone().into_bytes();
                other[pos] ^= 0x20;
                let r = UriParts {
                    session_id: Some(String::from_utf8(other).expect("ascii")),
                    ..q.clone()
                };
                let changed: MsrpUri = r.render().parse().expect("parses");
                prop_assert!(orig != changed, "{} vs {}", orig, changed);
                prop_assert!(changed != orig);
            }
        }
    }

    /// Arbitrary bytes fed in arbitrary pieces never panic, and the decoder never holds more
    /// than its limits allow.
    #[test]
    fn arbitrary_bytes_never_panic(
        input in vec(any::<u8>(), 0..4096),
        sizes in vec(1usize..512, 1..8),
    ) {
        feed_arbitrary(&input, &sizes)?;
    }

    /// The same with input made of MSRP-looking fragments, which gets far deeper into the
    /// decoder than uniform bytes.
    #[test]
    fn msrp_soup_never_panics(
        pieces in vec(soup_piece(), 0..40),
        sizes in vec(1usize..64, 1..8),
    ) {
        let input: Vec<u8> = pieces.concat();
        feed_arbitrary(&input, &sizes)?;
    }
}

proptest! {
    // Streams of several messages decoded three ways cost more per case.
    #![proptest_config(config_with(96))]

    /// Several messages back to back, fed in random read sizes, decode exactly as when fed
    /// whole: the same heads, bodies, flags and errors in the same order. Some messages break
    /// a rule after their paths (rejected and skipped, RFC 4975 §10.2), and the limits are
    /// random and small so that reads split them at every boundary.
    #[test]
    fn chunking_invariance(
        msgs in vec((msg(), 0u8..8), 1..5),
        sizes in vec(1usize..64, 1..16),
        max_head_size in 150usize..1200,
        max_header_line in 100usize..600,
        max_non_send_body in 0usize..300,
    ) {
        let mut input = Vec::new();
        for (m, breakage) in &msgs {
            let mut w = m.wire();
            if *breakage == 0 {
                // A duplicate header right after From-Path: rejected, skipped to the end-line.
                let from_end = find(&w, b"\r\nFrom-Path: ").expect("from-path") + 2;
                let eol = from_end + find(&w[from_end..], b"\r\n").expect("crlf") + 2;
                let at = eol;
                w.splice(at..at, b"To-Path: msrp://x.example.com:1/a;tcp\r\n".iter().copied());
            }
            input.extend_from_slice(&w);
        }
        let limits = Limits {
            max_head_size,
            max_header_line,
            max_non_send_body,
            ..Limits::default()
        };
        let (whole, _) = decode_stream(&input, &[input.len()], &limits);
        let (pieces, _) = decode_stream(&input, &sizes, &limits);
        prop_assert_eq!(&pieces, &whole);
        let (bytewise, _) = decode_stream(&input, &[1], &limits);
        prop_assert_eq!(&bytewise, &whole);
    }

    /// With the default limits every generated message decodes, whatever the read sizes.
    #[test]
    fn valid_streams_decode_in_any_read_sizes(
        msgs in vec(msg(), 1..5),
        sizes in vec(1usize..200, 1..16),
    ) {
        let input: Vec<u8> = msgs.iter().flat_map(Msg::wire).collect();
        let (out, heads) = decode_stream(&input, &sizes, &Limits::default());
        prop_assert_eq!(heads.len(), msgs.len(), "{:?}", out);
        for ((m, h), o) in msgs.iter().zip(&heads).zip(&out) {
            m.check_head(h)?;
            let Out::Msg { body, flag, .. } = o else { unreachable!() };
            prop_assert_eq!(&body[..], m.body.as_ref().map_or(&[][..], |(_, b)| &b[..]));
            prop_assert_eq!(*flag, m.flag);
        }
    }
}

fn soup_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(vec![
            &b"MSRP abcd SEND\r\n"[..],
            b"MSRP abcd REPORT\r\n",
            b"MSRP abcd 200 OK\r\n",
            b"MSRP abcd 042\r\n",
            b"MSRP abcd AUTH\r\n",
            b"To-Path: msrp://a.example.com:1/x;tcp\r\n",
            b"From-Path: msrp://b.example.com:2/y;tcp msrps://[::1]:3/z;ws\r\n",
            b"Message-ID: 12345\r\n",
            b"Byte-Range: 1-*/*\r\n",
            b"Byte-Range: 1-18446744073709551615/*\r\n",
            b"Status: 000 200 OK\r\n",
            b"Expires: 99999999999999999999999\r\n",
            b"Content-Type: text/plain\r\n",
            b"Content-ID: <x>\r\n",
            b"WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth\"\r\n",
            b"\r\n",
            b"\r\n-------abcd$\r\n",
            b"-------abcd+\r\n",
            b"\r\n-------abc",
            b"-------",
            b"\r",
            b"\n",
        ])
        .prop_map(<[u8]>::to_vec),
        vec(any::<u8>(), 0..16),
        Just(vec![b'a'; 300]),
    ]
}

fn feed_arbitrary(input: &[u8], sizes: &[usize]) -> Result<(), TestCaseError> {
    let limits = Limits {
        max_head_size: 1024,
        max_header_line: 256,
        max_start_line: 128,
        max_non_send_body: 512,
        ..Limits::default()
    };
    // In the head, the buffer holds at most the complete head lines and one partial line;
    // awaiting a non-SEND body, at most that body and its end-line; in a body, at most a
    // partial end-line.
    let bound = (limits.max_head_size + limits.max_header_line.max(limits.max_start_line) + 2)
        .max(limits.max_non_send_body + 7 + 64 + 3);
    let mut dec = Decoder::new(limits.clone());
    let mut buf = BytesMut::new();
    let mut at = 0;
    let mut i = 0;
    while at < input.len() {
        let n = sizes[i % sizes.len()].min(input.len() - at);
        i += 1;
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(Event::Head(h))) => {
                    // Heads that decode re-encode into heads that decode.
                    check_forward_redecodes(&h)?;
                    let _ = h.www_authenticate();
                    let _ = h.authorization();
                    let _ = h.authentication_info();
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(DecodeError::Rejected { .. }) => {}
                Err(DecodeError::Fatal { .. }) => {
                    prop_assert!(dec.decode(&mut buf).is_err(), "fatal is sticky");
                    return Ok(());
                }
            }
        }
        prop_assert!(
            buf.len() <= bound,
            "buffer holds {} bytes (bound {})",
            buf.len(),
            bound
        );
    }
    Ok(())
}

/// A decoded head, rewritten for the next hop, decodes again (limits relaxed for the URI
/// that moves from To-Path to From-Path).
fn check_forward_redecodes(h: &Head) -> Result<(), TestCaseError> {
    let mut out = BytesMut::new();
    write_forward_head(&mut out, h, h.tid(), 1, None);
    write_end_line(&mut out, h.tid(), Flag::Complete, h.has_body());
    let limits = Limits {
        max_path_uris: usize::MAX,
        max_header_line: usize::MAX / 4,
        max_head_size: usize::MAX / 4,
        ..Limits::default()
    };
    let (res, heads) = decode_stream(&out, &[out.len()], &limits);
    prop_assert_eq!(
        heads.len(),
        1,
        "{:?} from {:?}",
        res,
        String::from_utf8_lossy(&out)
    );
    prop_assert_eq!(heads[0].start_line(), h.start_line());
    prop_assert_eq!(heads[0].rest(), h.rest());
    Ok(())
}

fn same_parse(
    a: &Result<MsrpUri, msrp_proto::uri::UriError>,
    b: &Result<MsrpUri, msrp_proto::uri::UriError>,
) -> Result<(), TestCaseError> {
    match (a, b) {
        (Err(x), Err(y)) => prop_assert_eq!(x, y),
        (Ok(x), Ok(y)) => {
            prop_assert_eq!(x.as_bytes(), y.as_bytes());
            prop_assert_eq!(x.scheme(), y.scheme());
            prop_assert_eq!(x.userinfo(), y.userinfo());
            prop_assert_eq!(x.host(), y.host());
            prop_assert_eq!(x.host_kind(), y.host_kind());
            prop_assert_eq!(x.port(), y.port());
            prop_assert_eq!(x.session_id(), y.session_id());
            prop_assert_eq!(x.transport(), y.transport());
            prop_assert_eq!(x.params(), y.params());
        }
        _ => prop_assert!(false, "{:?} vs {:?}", a, b),
    }
    Ok(())
}
