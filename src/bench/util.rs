//! Small helpers: sizes with units, the loopback-only rule, a process-wide clock, hex.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Instant;

/// A byte count with an optional unit: `100`, `8KiB`, `64k`, `1GiB`, `1G` (binary), `1GB`
/// (decimal).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 100, 8KiB, 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// The benchmark only ever targets this machine: 127.0.0.0/8 or ::1.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `HOST:PORT` where HOST is a loopback address or `localhost`; anything else is refused.
pub fn parse_loopback_addr(s: &str) -> Result<SocketAddr, String> {
    let addr = match s.strip_prefix("localhost:") {
        Some(port) => {
            let port: u16 = port.parse().map_err(|_| format!("{s:?}: bad port"))?;
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        }
        None => s
            .parse::<SocketAddr>()
            .map_err(|_| format!("{s:?} is not IP:PORT (e.g. 127.0.0.1:2855 or [::1]:2855)"))?,
    };
    if !is_loopback(addr.ip()) {
        return Err(format!(
            "{s}: msrp-bench only targets loopback addresses (127.0.0.0/8, ::1)"
        ));
    }
    Ok(addr)
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the first call in this process; senders and receivers share it, so a
/// timestamp in a body gives the one-way latency.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// The clock value of an `Instant` (0 for instants before the epoch).
pub fn instant_ns(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `v` as 16 lowercase hex digits into `out`.
pub fn put_hex16_bytes(out: &mut bytes::BytesMut, v: u64) {
    let mut b = [0u8; 16];
    for (i, d) in b.iter_mut().enumerate() {
        *d = HEX[((v >> ((15 - i) * 4)) & 0xf) as usize];
    }
    out.extend_from_slice(&b);
}

/// Parse 16 hex digits.
pub fn parse_hex16(b: &[u8]) -> Option<u64> {
    if b.len() != 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// A decimal number into `out`.
pub fn put_dec(out: &mut bytes::BytesMut, v: u64) {
    let mut b = [0u8; 20];
    let mut i = b.len();
    let mut v = v;
    loop {
        i -= 1;
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&b[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert!(parse_size("1 parsec").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn loopback_only() {
        assert!(parse_loopback_addr("127.0.0.1:2855").is_ok());
        assert!(parse_loopback_addr("127.9.9.9:2855").is_ok());
        assert!(parse_loopback_addr("[::1]:2855").is_ok());
        assert!(parse_loopback_addr("localhost:2855").is_ok());
        assert!(parse_loopback_addr("10.0.0.1:2855").is_err());
        assert!(parse_loopback_addr("[2001:db8::1]:2855").is_err());
        assert!(parse_loopback_addr("example.com:2855").is_err());
    }

    #[test]
    fn hex_round_trip() {
        let mut v = bytes::BytesMut::new();
        put_hex16_bytes(&mut v, 0x0123_4567_89ab_cdef);
        assert_eq!(&v[..], b"0123456789abcdef");
        assert_eq!(parse_hex16(&v), Some(0x0123_4567_89ab_cdef));
        let mut b = bytes::BytesMut::new();
        put_hex16_bytes(&mut b, 42);
        assert_eq!(parse_hex16(&b), Some(42));
        let mut d = bytes::BytesMut::new();
        put_dec(&mut d, 0);
        put_dec(&mut d, 1234567);
        assert_eq!(&d[..], b"01234567");
    }
}
