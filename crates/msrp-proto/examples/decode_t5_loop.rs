//! Decode the checklist's T5 SEND N times through one decoder, for instruction counts:
//!
//! ```sh
//! cargo build --profile bench -p msrp-proto --example decode_t5_loop
//! valgrind --tool=callgrind target/release/examples/decode_t5_loop 20000
//! valgrind --tool=callgrind target/release/examples/decode_t5_loop 40000
//! ```
//!
//! The difference of the two totals divided by 20000 is the cost of one message.

use std::hint::black_box;

use bytes::BytesMut;
use msrp_proto::{Decoder, Event, Limits};

const T5: &[u8] = b"MSRP 6aef SEND\r\nTo-Path: msrps://relay.example.com:2855/TOKENa1b2c3d4e5f6;tcp msrps://bob.example.net:8145/foo;tcp\r\nFrom-Path: msrps://alice.example.org:7965/bar;tcp\r\nSuccess-Report: yes\r\nByte-Range: 1-*/*\r\nMessage-ID: 87652\r\nContent-Type: text/plain\r\n\r\nHi Bob, I'm about to send you file.mpeg\r\n-------6aef$\r\n";

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("a number of messages"))
        .unwrap_or(1_000_000);
    let mut dec = Decoder::new(Limits::default());
    for _ in 0..n {
        let mut buf = BytesMut::from(T5);
        loop {
            match dec.decode(&mut buf).expect("T5 decodes") {
                Some(Event::End(flag)) => {
                    black_box(flag);
                    break;
                }
                Some(ev) => {
                    black_box(ev);
                }
                None => panic!("T5 is complete"),
            }
        }
    }
}
