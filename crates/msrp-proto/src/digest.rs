//! HTTP Digest as MSRP relays use it (RFC 4976 §5.1, §7, §9.1; RFC 2617).
//!
//! Only `qop=auth` with MD5: relays must not offer `auth-int` or `MD5-sess`, and never Basic
//! (RFC 4976 §9.1). The method in H(A2) is `AUTH` and the digest-uri is the rightmost To-Path
//! URI of the AUTH request (§9.1); clients may also send it as `uri=` (RFC 7977 §8.1.2, G11).
//!
//! Parsing accepts any parameter order, optional whitespace around commas (G9) and `qop`
//! quoted or not (G10); formatting writes the forms the RFC examples use.

use md5::{Digest as _, Md5};

/// Why a Digest header did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest header")]
    NotDigest,
    #[error("malformed parameter list")]
    Syntax,
    #[error("parameter `{0}` appears twice")]
    Duplicate(String),
    #[error("required parameter `{0}` is missing")]
    Missing(&'static str),
    #[error("parameter `{0}` has an invalid value")]
    Invalid(&'static str),
}

/// Lowercase hex of an MD5 digest (32 characters).
pub type Hex32 = String;

fn md5_hex(parts: &[&[u8]]) -> Hex32 {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    let out = h.finalize();
    let mut s = String::with_capacity(32);
    for b in out {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// `HA1 = MD5(username ":" realm ":" password)` (RFC 2617 §3.2.2.2).
pub fn ha1(username: &str, realm: &str, password: &str) -> Hex32 {
    md5_hex(&[
        username.as_bytes(),
        b":",
        realm.as_bytes(),
        b":",
        password.as_bytes(),
    ])
}

/// `request-digest` for qop=auth with method `AUTH` (RFC 4976 §9.1, RFC 2617 §3.2.2.1):
/// `MD5(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" MD5("AUTH:" digest-uri))`.
pub fn request_digest(ha1: &str, nonce: &str, nc: &str, cnonce: &str, digest_uri: &str) -> Hex32 {
    let ha2 = md5_hex(&[b"AUTH:", digest_uri.as_bytes()]);
    kd(ha1, nonce, nc, cnonce, &ha2)
}

/// `rspauth` of Authentication-Info: as the request digest but with an empty method,
/// `MD5(":" digest-uri)` as HA2 (RFC 2617 §3.2.3).
pub fn response_auth(ha1: &str, nonce: &str, nc: &str, cnonce: &str, digest_uri: &str) -> Hex32 {
    let ha2 = md5_hex(&[b":", digest_uri.as_bytes()]);
    kd(ha1, nonce, nc, cnonce, &ha2)
}

fn kd(ha1: &str, nonce: &str, nc: &str, cnonce: &str, ha2: &str) -> Hex32 {
    md5_hex(&[
        ha1.as_bytes(),
        b":",
        nonce.as_bytes(),
        b":",
        nc.as_bytes(),
        b":",
        cnonce.as_bytes(),
        b":auth:",
        ha2.as_bytes(),
    ])
}

/// Compare two digests without an early exit on the first differing byte.
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Parsed `name=value` pairs of a Digest header; values unquoted.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(s: &[u8], scheme: bool) -> Result<Params, DigestError> {
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t') {
                *i += 1;
            }
        };
        skip_ws(&mut i);
        if scheme {
            if s.len() < i + 6 || !s[i..i + 6].eq_ignore_ascii_case(b"Digest") {
                return Err(DigestError::NotDigest);
            }
            i += 6;
            if i < s.len() && s[i] != b' ' && s[i] != b'\t' {
                return Err(DigestError::NotDigest);
            }
        }
        let mut out: Vec<(String, String)> = Vec::with_capacity(8);
        loop {
            skip_ws(&mut i);
            if i == s.len() {
                break;
            }
            let name_start = i;
            while i < s.len() && crate::uri::is_token_char(s[i]) && s[i] != b'=' && s[i] != b',' {
                i += 1;
            }
            let name = std::str::from_utf8(&s[name_start..i])
                .map_err(|_| DigestError::Syntax)?
                .to_ascii_lowercase();
            if name.is_empty() {
                return Err(DigestError::Syntax);
            }
            skip_ws(&mut i);
            if i == s.len() || s[i] != b'=' {
                return Err(DigestError::Syntax);
            }
            i += 1;
            skip_ws(&mut i);
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                loop {
                    match s.get(i) {
                        None => return Err(DigestError::Syntax),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let c = *s.get(i + 1).ok_or(DigestError::Syntax)?;
                            v.push(c);
                            i += 2;
                        }
                        Some(&c) => {
                            v.push(c);
                            i += 1;
                        }
                    }
                }
                String::from_utf8(v).map_err(|_| DigestError::Syntax)?
            } else {
                let start = i;
                while i < s.len() && crate::uri::is_token_char(s[i]) && s[i] != b',' {
                    i += 1;
                }
                if start == i {
                    return Err(DigestError::Syntax);
                }
                String::from_utf8(s[start..i].to_vec()).map_err(|_| DigestError::Syntax)?
            };
            if out.iter().any(|(n, _)| *n == name) {
                return Err(DigestError::Duplicate(name));
            }
            out.push((name, value));
            skip_ws(&mut i);
            match s.get(i) {
                None => break,
                Some(b',') => i += 1,
                Some(_) => return Err(DigestError::Syntax),
            }
        }
        Ok(Params(out))
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(at).1)
    }

    fn require(&mut self, name: &'static str) -> Result<String, DigestError> {
        self.take(name).ok_or(DigestError::Missing(name))
    }
}

fn quote(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn is_lhex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `WWW-Authenticate: Digest ...` (RFC 4976 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub stale: bool,
    pub algorithm: Option<String>,
    /// The offered qop values; a relay offers exactly `auth`.
    pub qop: Vec<String>,
}

impl Challenge {
    pub fn new(realm: &str, nonce: &str, stale: bool) -> Challenge {
        Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: None,
            stale,
            algorithm: None,
            qop: vec!["auth".to_owned()],
        }
    }

    pub fn parse(value: &[u8]) -> Result<Challenge, DigestError> {
        let mut p = Params::parse(value, true)?;
        let qop = p
            .require("qop")?
            .split(',')
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty())
            .collect::<Vec<_>>();
        Ok(Challenge {
            realm: p.require("realm")?,
            nonce: p.require("nonce")?,
            opaque: p.take("opaque"),
            stale: match p.take("stale") {
                None => false,
                Some(s) if s.eq_ignore_ascii_case("true") => true,
                Some(s) if s.eq_ignore_ascii_case("false") => false,
                Some(_) => return Err(DigestError::Invalid("stale")),
            },
            algorithm: p.take("algorithm"),
            qop,
        })
    }

    /// `Digest realm="…", nonce="…", qop="auth"[, stale=true]` (RFC 4976 §5.1: qop quoted).
    pub fn to_header_value(&self) -> String {
        let mut s = String::with_capacity(96);
        s.push_str("Digest realm=");
        quote(&mut s, &self.realm);
        s.push_str(", nonce=");
        quote(&mut s, &self.nonce);
        if let Some(o) = &self.opaque {
            s.push_str(", opaque=");
            quote(&mut s, o);
        }
        s.push_str(", qop=");
        quote(&mut s, &self.qop.join(","));
        if let Some(a) = &self.algorithm {
            s.push_str(", algorithm=");
            s.push_str(a);
        }
        if self.stale {
            s.push_str(", stale=true");
        }
        s
    }

    /// The challenge can be answered by this crate: MD5 and `auth` offered.
    pub fn supports_auth_md5(&self) -> bool {
        self.qop.iter().any(|q| q == "auth")
            && self
                .algorithm
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
    }
}

/// `Authorization: Digest ...` (RFC 4976 §7 `credentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// Not in the RFC 4976 grammar but sent by RFC 7977 clients (G11).
    pub uri: Option<String>,
    pub response: String,
    pub algorithm: Option<String>,
    pub cnonce: String,
    pub opaque: Option<String>,
    /// `qop=auth`, unquoted in the grammar (G10); quoted is accepted.
    pub qop: String,
    /// `nc` as sent: 8 lowercase hex digits.
    pub nc: String,
}

impl Credentials {
    pub fn parse(value: &[u8]) -> Result<Credentials, DigestError> {
        let mut p = Params::parse(value, true)?;
        let c = Credentials {
            username: p.require("username")?,
            realm: p.require("realm")?,
            nonce: p.require("nonce")?,
            uri: p.take("uri"),
            response: p.require("response")?,
            algorithm: p.take("algorithm"),
            cnonce: p.require("cnonce")?,
            opaque: p.take("opaque"),
            qop: p.require("qop")?,
            nc: p.require("nc")?,
        };
        if !is_lhex(&c.response, 32) {
            return Err(DigestError::Invalid("response"));
        }
        if c.nc.len() != 8 || !c.nc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::Invalid("nc"));
        }
        if c.qop != "auth" {
            return Err(DigestError::Invalid("qop"));
        }
        if c.algorithm
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return Err(DigestError::Invalid("algorithm"));
        }
        Ok(c)
    }

    /// The nonce count as a number.
    pub fn nc_value(&self) -> u32 {
        u32::from_str_radix(&self.nc, 16).unwrap_or(0)
    }

    /// Build credentials answering `challenge` for `digest_uri` with an HA1.
    pub fn answer(
        challenge: &Challenge,
        username: &str,
        ha1: &str,
        digest_uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Credentials {
        let nc = format!("{nc:08x}");
        let response = request_digest(ha1, &challenge.nonce, &nc, cnonce, digest_uri);
        Credentials {
            username: username.to_owned(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: None,
            response,
            algorithm: None,
            cnonce: cnonce.to_owned(),
            opaque: challenge.opaque.clone(),
            qop: "auth".to_owned(),
            nc,
        }
    }

    /// The response this request should carry, given the user's HA1 and the digest-uri.
    pub fn expected_response(&self, ha1: &str, digest_uri: &str) -> Hex32 {
        request_digest(ha1, &self.nonce, &self.nc, &self.cnonce, digest_uri)
    }

    /// `Digest username="…", realm="…", nonce="…", qop=auth, nc=…, cnonce="…", response="…"`.
    pub fn to_header_value(&self) -> String {
        let mut s = String::with_capacity(200);
        s.push_str("Digest username=");
        quote(&mut s, &self.username);
        s.push_str(", realm=");
        quote(&mut s, &self.realm);
        s.push_str(", nonce=");
        quote(&mut s, &self.nonce);
        if let Some(u) = &self.uri {
            s.push_str(", uri=");
            quote(&mut s, u);
        }
        s.push_str(", qop=auth, nc=");
        s.push_str(&self.nc);
        s.push_str(", cnonce=");
        quote(&mut s, &self.cnonce);
        if let Some(o) = &self.opaque {
            s.push_str(", opaque=");
            quote(&mut s, o);
        }
        s.push_str(", response=");
        quote(&mut s, &self.response);
        s
    }
}

/// `Authentication-Info` (RFC 4976 §7 `ainfo`), sent in the 200 to AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationInfo {
    pub nextnonce: Option<String>,
    pub qop: Option<String>,
    pub rspauth: Option<String>,
    pub cnonce: Option<String>,
    pub nc: Option<String>,
}

impl AuthenticationInfo {
    pub fn parse(value: &[u8]) -> Result<AuthenticationInfo, DigestError> {
        let mut p = Params::parse(value, false)?;
        Ok(AuthenticationInfo {
            nextnonce: p.take("nextnonce"),
            qop: p.take("qop"),
            rspauth: p.take("rspauth"),
            cnonce: p.take("cnonce"),
            nc: p.take("nc"),
        })
    }

    /// `rspauth="…", cnonce="…", nc=…, qop=auth` (the parameters RFC 4976 §9.1 requires).
    pub fn to_header_value(&self) -> String {
        let mut parts: Vec<String> = Vec::with_capacity(5);
        if let Some(n) = &self.nextnonce {
            let mut s = "nextnonce=".to_owned();
            quote(&mut s, n);
            parts.push(s);
        }
        if let Some(r) = &self.rspauth {
            let mut s = "rspauth=".to_owned();
            quote(&mut s, r);
            parts.push(s);
        }
        if let Some(c) = &self.cnonce {
            let mut s = "cnonce=".to_owned();
            quote(&mut s, c);
            parts.push(s);
        }
        if let Some(nc) = &self.nc {
            parts.push(format!("nc={nc}"));
        }
        if let Some(q) = &self.qop {
            parts.push(format!("qop={q}"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checklist §5.3 vectors V1–V3 (RFC 4976 §5.1 and RFC 7977 §8.1.2 nonces).
    #[test]
    fn rfc4976_s9_1_vectors() {
        let vectors = [
            (
                "Alice",
                "intra.example.com",
                "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                "0a4f113b",
                "msrps://alice@intra.example.com;tcp",
                "228077dd83232f11146688d20e4810da",
                "750e4fd73ea1221cef6d74424f4cd590",
                "a962aa47b6f93658341e5a8973ff8aa9",
            ),
            (
                "Alice",
                "extra.example.com",
                "Uumu8cAV38FGsEF31VLevIbNXj9HWO",
                "85a0dca8",
                "msrps://extra.example.com;tcp",
                "ddea857d8ca41200632d60c5aee3b1c9",
                "4c5d833e7a35eee36c3df2bd89dbd617",
                "d6ef029cfc19e60420d33d7042940caf",
            ),
            (
                "alice",
                "example.com",
                "UvtfpVL7XnnJ63EE244fXDthfLihlMHOY4+dd4A=",
                "zic5ml401prb",
                "msrps://alice@a.example.com:443;ws",
                "b1726872c344b6dc8365b774f8fd6412",
                "c856164ffca85fea5d96544c76224390",
                "5283ccdba3ce9452645475841730e391",
            ),
        ];
        for (user, realm, nonce, cnonce, uri, want_ha1, want_resp, want_rspauth) in vectors {
            let h = ha1(user, realm, "secret");
            assert_eq!(h, want_ha1);
            assert_eq!(
                request_digest(&h, nonce, "00000001", cnonce, uri),
                want_resp
            );
            assert_eq!(
                response_auth(&h, nonce, "00000001", cnonce, uri),
                want_rspauth
            );
        }
        // HA2 values of the table, through the public formula.
        assert_eq!(
            md5_hex(&[b"AUTH:", b"msrps://alice@intra.example.com;tcp"]),
            "99669e21bd70104bbf456960440fee4d"
        );
    }

    #[test]
    fn rfc4976_s5_1_challenge_parses_any_order() {
        let c = Challenge::parse(br#"Digest realm="intra.example.com", qop="auth", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#).unwrap();
        assert_eq!(c.realm, "intra.example.com");
        assert_eq!(c.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
        assert_eq!(c.qop, vec!["auth"]);
        assert!(!c.stale);
        assert!(c.supports_auth_md5());
        let back = Challenge::parse(c.to_header_value().as_bytes()).unwrap();
        assert_eq!(back, c);
        let stale = Challenge::new("r", "n", true);
        assert!(stale.to_header_value().ends_with("stale=true"));
        assert!(
            Challenge::parse(stale.to_header_value().as_bytes())
                .unwrap()
                .stale
        );
    }

    #[test]
    fn rfc4976_s7_credentials_with_and_without_uri() {
        // RFC 4976 §5.1 (reflowed on one line), unquoted qop (G10).
        let v = br#"Digest username="Alice", realm="intra.example.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1""#;
        let c = Credentials::parse(v).unwrap();
        assert_eq!(c.username, "Alice");
        assert_eq!(c.nc_value(), 1);
        assert_eq!(c.uri, None);
        // RFC 7977 §8.1.2 with uri= (G11), extra spaces around commas (G9).
        let v = br#"Digest username="alice" ,realm="example.com",  nonce="UvtfpVL7XnnJ63EE244fXDthfLihlMHOY4+dd4A=", uri="msrps://alice@a.example.com:443;ws", response="5011d0d58fe975e0d0cdc007ae26f4b7", qop=auth, cnonce="zic5ml401prb", nc=00000001"#;
        let c = Credentials::parse(v).unwrap();
        assert_eq!(c.uri.as_deref(), Some("msrps://alice@a.example.com:443;ws"));
        let back = Credentials::parse(c.to_header_value().as_bytes()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn rfc4976_s9_1_rejects_what_relays_must_not_accept() {
        assert_eq!(
            Credentials::parse(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").err(),
            Some(DigestError::NotDigest)
        );
        let base = r#"Digest username="a", realm="r", nonce="n", nc=00000001, cnonce="c", response="750e4fd73ea1221cef6d74424f4cd590""#;
        assert_eq!(
            Credentials::parse(base.as_bytes()).err(),
            Some(DigestError::Missing("qop"))
        );
        let auth_int = format!("{base}, qop=auth-int");
        assert_eq!(
            Credentials::parse(auth_int.as_bytes()).err(),
            Some(DigestError::Invalid("qop"))
        );
        let sess = format!("{base}, qop=auth, algorithm=MD5-sess");
        assert_eq!(
            Credentials::parse(sess.as_bytes()).err(),
            Some(DigestError::Invalid("algorithm"))
        );
        let dup = format!("{base}, qop=auth, nc=00000002");
        assert_eq!(
            Credentials::parse(dup.as_bytes()).err(),
            Some(DigestError::Duplicate("nc".into()))
        );
        let bad_nc = r#"Digest username="a", realm="r", nonce="n", nc=1, cnonce="c", qop=auth, response="750e4fd73ea1221cef6d74424f4cd590""#;
        assert_eq!(
            Credentials::parse(bad_nc.as_bytes()).err(),
            Some(DigestError::Invalid("nc"))
        );
        assert!(Credentials::parse(br#"Digest username="unterminated"#).is_err());
    }

    #[test]
    fn rfc4976_s7_authentication_info_round_trip() {
        // RFC 4976 §5.1, reflowed.
        let v = br#"nextnonce="40f2e879449675f288476d772627370a",rspauth="7327570c586207eca2afae94fc20903d", cnonce="0a4f113b", nc=00000001, qop=auth"#;
        let a = AuthenticationInfo::parse(v).unwrap();
        assert_eq!(
            a.rspauth.as_deref(),
            Some("7327570c586207eca2afae94fc20903d")
        );
        assert_eq!(a.nc.as_deref(), Some("00000001"));
        assert_eq!(
            AuthenticationInfo::parse(a.to_header_value().as_bytes()).unwrap(),
            a
        );
    }

    #[test]
    fn digest_compare_is_exact() {
        assert!(digests_equal("abc", "abc"));
        assert!(!digests_equal("abc", "abd"));
        assert!(!digests_equal("abc", "abcd"));
    }
}
