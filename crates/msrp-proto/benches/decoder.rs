//! Decoder and encoder benchmarks (issue "MSRP protocol core"; targets: a typical head decoded
//! in under 1 µs, body scanning above 2 GB/s).
//!
//! - `head/decode_t5_message`: the checklist's T5 SEND (309 bytes: To-Path with two URIs,
//!   From-Path, Success-Report, Byte-Range, Message-ID, Content-Type and a 39-byte body)
//!   decoded from head to end-line by one reused decoder, as on a connection: an upper bound
//!   for the head. `head/parse_t5_head`: the head parser alone on T5's head block.
//!   Throughput in messages.
//! - `body/64KiB_*`: a 64 KiB body after the T5 head, fed as one buffer or in 16 KiB reads
//!   (each read copied into the buffer, as a socket read would), binary or CRLF text.
//!   Throughput in body bytes.
//! - `forward/write_forward_head_t5`: the RFC 4976 §6.4.1 rewrite of the T5 head (pop one
//!   To-Path URI, new tid, the rest copied) into a reused buffer.
//!
//! Run: `cargo bench -p msrp-proto --bench decoder`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use msrp_proto::encoder::write_forward_head;
use msrp_proto::{Decoder, Event, Head, Limits, TransactionId};

const T5_HEAD: &[u8] = b"MSRP 6aef SEND\r\nTo-Path: msrps://relay.example.com:2855/TOKENa1b2c3d4e5f6;tcp msrps://bob.example.net:8145/foo;tcp\r\nFrom-Path: msrps://alice.example.org:7965/bar;tcp\r\nSuccess-Report: yes\r\nByte-Range: 1-*/*\r\nMessage-ID: 87652\r\nContent-Type: text/plain\r\n\r\n";
const T5_BODY: &[u8] = b"Hi Bob, I'm about to send you file.mpeg";
const END: &[u8] = b"\r\n-------6aef$\r\n";

fn message(body: &[u8]) -> Vec<u8> {
    [T5_HEAD, body, END].concat()
}

/// Deterministic pseudo-random bytes (a binary file).
fn binary(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Text with a CRLF every 78 characters (a worst case for a CRLF-led delimiter search).
fn text(n: usize) -> Vec<u8> {
    let line = b"The quick brown fox jumps over the lazy dog; MSRP carries it unmodified.....\r\n";
    line.iter().copied().cycle().take(n).collect()
}

/// Decode one whole message from `buf`, returning the body length seen.
fn decode_message(dec: &mut Decoder, buf: &mut BytesMut) -> usize {
    let mut body = 0;
    loop {
        match dec.decode(buf) {
            Ok(Some(Event::Head(h))) => {
                black_box(h);
            }
            Ok(Some(Event::Body(b))) => body += b.len(),
            Ok(Some(Event::End(_))) => return body,
            Ok(None) => panic!("incomplete message"),
            Err(e) => panic!("{e}"),
        }
    }
}

fn bench_head(c: &mut Criterion) {
    let msg = message(T5_BODY);
    assert_eq!(msg.len(), 309, "the checklist's T5 is 309 bytes");
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements(1));
    // The head parser alone, on the head block the decoder hands it once the blank line is
    // found (start line through the last header's CRLF): everything the decoder does for a
    // head but finding its line ends. The parsed head is dropped outside the timing.
    let raw = Bytes::copy_from_slice(&T5_HEAD[..T5_HEAD.len() - 2]);
    let limits = Limits::default();
    g.bench_function("parse_t5_head", |b| {
        b.iter_with_large_drop(|| Head::parse(black_box(raw.clone()), true, &limits).expect("T5"))
    });
    // The whole message (head, 39-byte body, end-line) through one reused decoder.
    let mut dec = Decoder::new(Limits::default());
    g.bench_function("decode_t5_message", |b| {
        b.iter_batched(
            || BytesMut::from(&msg[..]),
            |mut buf| {
                let n = decode_message(&mut dec, &mut buf);
                debug_assert_eq!(n, T5_BODY.len());
                buf
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_body(c: &mut Criterion) {
    const N: usize = 64 * 1024;
    let mut g = c.benchmark_group("body");
    g.throughput(Throughput::Bytes(N as u64));
    for (kind, body) in [("binary", binary(N)), ("text", text(N))] {
        let msg = message(&body);
        let mut dec = Decoder::new(Limits::default());
        g.bench_function(format!("64KiB_{kind}_one_buffer"), |b| {
            b.iter_batched(
                || BytesMut::from(&msg[..]),
                |mut buf| {
                    assert_eq!(decode_message(&mut dec, &mut buf), N);
                    buf
                },
                BatchSize::SmallInput,
            )
        });
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::with_capacity(32 * 1024);
        g.bench_function(format!("64KiB_{kind}_16KiB_reads"), |b| {
            b.iter(|| {
                let mut total = 0;
                let mut done = false;
                for read in msg.chunks(16 * 1024) {
                    buf.extend_from_slice(read);
                    loop {
                        match dec.decode(&mut buf) {
                            Ok(Some(Event::Head(h))) => {
                                black_box(h);
                            }
                            Ok(Some(Event::Body(p))) => total += p.len(),
                            Ok(Some(Event::End(_))) => done = true,
                            Ok(None) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                assert!(done && total == N);
            })
        });
    }
    g.finish();
}

fn bench_forward(c: &mut Criterion) {
    let mut buf = BytesMut::from(&message(T5_BODY)[..]);
    let head: Head = match Decoder::new(Limits::default()).decode(&mut buf) {
        Ok(Some(Event::Head(h))) => *h,
        other => panic!("{other:?}"),
    };
    let tid = TransactionId::new(b"Xk39fhQ2Lm8s0dPa").expect("tid");
    let mut out = BytesMut::with_capacity(1024);
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(1));
    g.bench_function("write_forward_head_t5", |b| {
        b.iter(|| {
            out.clear();
            write_forward_head(&mut out, black_box(&head), &tid, 1, None);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_head, bench_body, bench_forward);
criterion_main!(benches);
