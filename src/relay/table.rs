//! The actor table: every Use-Path token this relay issued, mapped to the connection that owns
//! it (RFC 4976 §6.3). It is the only shared state on the forwarding path.
//!
//! A token is the session-id of a Use-Path URI: 128 bits from the OS-seeded CSPRNG, base64url
//! without padding (22 characters of `unreserved`, RFC 4975 §9 `session-id`). It dies at its
//! Expires and when its connection closes (RFC 4976 §6.3, checklist item 33).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use dashmap::DashMap;
use msrp_proto::{MsrpUri, Scheme};
use rand::RngCore as _;

use super::connection::ConnHandle;

/// Who a token belongs to and how long it lives.
struct Route {
    hop: Hop,
    /// The URI as issued, for RFC 4975 §6.1 comparison with what peers send back.
    uri: MsrpUri,
    expires: Instant,
}

/// Where a valid route leads: what forwarding takes out of the table (a lookup happens once
/// or twice per forwarded message, on every core, so the issued URI is not copied out).
#[derive(Clone)]
pub struct Hop {
    /// The connection the AUTH came in on: the only way to reach that client.
    pub owner: Arc<ConnHandle>,
    /// Set when the URI was issued to a relay authenticated by mutual TLS: the relay's name,
    /// on any of whose connections the URI is valid (RFC 4976 §6.3).
    pub relay: Option<Arc<str>>,
}

#[derive(Default)]
pub struct Table {
    // Keys are our own 128-bit random tokens; foldhash is seeded per process, and much
    // cheaper than SipHash on the per-message lookup.
    routes: DashMap<String, Route, foldhash::fast::RandomState>,
}

/// A fresh token: 128 random bits, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Table {
    /// Mint a Use-Path URI for `owner` (RFC 4976 §4.2: an FQDN and an explicit port).
    pub fn mint(
        &self,
        owner: &Arc<ConnHandle>,
        scheme: Scheme,
        hostname: &str,
        port: u16,
        lifetime: Duration,
        relay: Option<String>,
    ) -> Option<MsrpUri> {
        let token = new_token();
        let uri = MsrpUri::build(scheme, hostname, Some(port), Some(&token), "tcp").ok()?;
        owner.own_token(&token);
        self.routes.insert(
            token,
            Route {
                hop: Hop {
                    owner: owner.clone(),
                    relay: relay.map(Arc::from),
                },
                uri: uri.clone(),
                expires: Instant::now() + lifetime,
            },
        );
        Some(uri)
    }

    /// The live route for a URI this relay issued: the session-id must be a token of ours,
    /// the URI equivalent to the issued one (RFC 4975 §6.1), not expired, and its connection
    /// still open (RFC 4976 §6.3).
    pub fn lookup(&self, uri: &MsrpUri) -> Option<Hop> {
        let token = uri.session_id()?;
        let route = self.routes.get(token)?;
        if !route.uri.equivalent(uri) {
            return None;
        }
        if route.expires <= Instant::now() || route.hop.owner.is_closed() {
            return None;
        }
        Some(route.hop.clone())
    }

    pub fn remove(&self, token: &str) {
        self.routes.remove(token);
    }

    /// Drop expired tokens (the lookups already ignore them; this frees the memory).
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let before = self.routes.len();
        self.routes
            .retain(|_, r| r.expires > now && !r.hop.owner.is_closed());
        before - self.routes.len()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
