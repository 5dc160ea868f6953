//! AUTH addressed to this relay (RFC 4976 §5.1, §6.3, §9.1).
//!
//! Order of checks (checklist item 39): TLS only (§9.2, else 403), then authenticate (401),
//! then the Expires interval (423), then mint a Use-Path URI and answer 200 with Use-Path,
//! Expires and Authentication-Info. Nonces are per connection, from the CSPRNG, expire after
//! `auth.nonce_ttl_secs`, and track the nonce count against replay; an expired nonce with an
//! otherwise correct response gets `stale=true` (RFC 2617 §3.2.1).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use msrp_proto::digest::{digests_equal, response_auth, AuthenticationInfo, Challenge};
use msrp_proto::{Head, MsrpUri, Status};
use rand::RngCore as _;

use super::connection::ConnHandle;
use super::outbox::Frame;
use super::report::response;
use super::Shared;

/// Nonces kept per connection; AUTH is not pipelined (RFC 4976 §9.1), so a few suffice.
const NONCES_PER_CONNECTION: usize = 4;

struct Nonce {
    value: String,
    issued: Instant,
    last_nc: u32,
}

/// Per-connection AUTH state.
#[derive(Default)]
pub struct AuthState {
    nonces: VecDeque<Nonce>,
    /// Failed attempts: a 401 to a request that carried credentials without stale, or a 403.
    pub failures: u32,
}

/// What happened, for the log and the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Challenged,
    Stale,
    Rejected,
    Refused,
    OutOfBounds,
    Accepted,
}

impl AuthOutcome {
    /// The status of the response that goes with the outcome.
    pub fn status(self) -> Status {
        match self {
            AuthOutcome::Challenged | AuthOutcome::Stale | AuthOutcome::Rejected => {
                Status::UNAUTHORIZED
            }
            AuthOutcome::Refused => Status::FORBIDDEN,
            AuthOutcome::OutOfBounds => Status::OUT_OF_BOUNDS,
            AuthOutcome::Accepted => Status::OK,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Challenged => "challenged",
            AuthOutcome::Stale => "stale",
            AuthOutcome::Rejected => "rejected",
            AuthOutcome::Refused => "refused",
            AuthOutcome::OutOfBounds => "out_of_bounds",
            AuthOutcome::Accepted => "accepted",
        }
    }
}

fn new_nonce() -> String {
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl AuthState {
    fn issue(&mut self) -> String {
        let value = new_nonce();
        if self.nonces.len() == NONCES_PER_CONNECTION {
            self.nonces.pop_front();
        }
        self.nonces.push_back(Nonce {
            value: value.clone(),
            issued: Instant::now(),
            last_nc: 0,
        });
        value
    }
}

/// Answer an AUTH addressed to this relay. Returns the response and the outcome.
pub fn handle(
    head: &Head,
    conn: &Arc<ConnHandle>,
    st: &mut AuthState,
    shared: &Shared,
) -> (Frame, AuthOutcome) {
    let settings = shared.settings();
    let realm = settings.realm().to_owned();
    let ours = &head.to_path()[0];
    let reply = |status: Status, extra: &dyn Fn(&mut msrp_proto::encoder::HeadWriter)| {
        response(
            head.tid(),
            status,
            head.method(),
            head.from_path(),
            ours,
            |w| extra(w),
        )
    };
    let challenge = |st: &mut AuthState, stale: bool| {
        let c = Challenge::new(&realm, &st.issue(), stale);
        let value = c.to_header_value();
        reply(Status::UNAUTHORIZED, &|w| {
            w.header("WWW-Authenticate", value.as_bytes());
        })
    };

    // AUTH only over TLS (RFC 4976 §9.2, checklist 26) unless a lab allows plain TCP.
    if !conn.local.secure && !settings.auth.allow_insecure_tcp {
        st.failures += 1;
        return (reply(Status::FORBIDDEN, &|_| {}), AuthOutcome::Refused);
    }
    let Some(credentials) = head.authorization() else {
        return (challenge(st, false), AuthOutcome::Challenged);
    };
    let credentials = match credentials {
        Ok(c) if c.realm == realm => c,
        // Malformed, or for another realm: a failure, answered with a fresh challenge.
        _ => {
            st.failures += 1;
            return (challenge(st, false), AuthOutcome::Rejected);
        }
    };
    // H(A2) uses the rightmost To-Path URI (RFC 4976 §9.1), which for an AUTH to us is ours.
    let digest_uri = head.to_path()[head.to_path().len() - 1].as_str().to_owned();
    let users = shared.users();
    let ha1 = users
        .lookup(&credentials.username, &realm)
        .map(|h| h.as_str().to_owned());
    let correct = ha1.as_deref().is_some_and(|ha1| {
        digests_equal(
            &credentials.expected_response(ha1, &digest_uri),
            &credentials.response,
        )
    });
    if !correct {
        st.failures += 1;
        return (challenge(st, false), AuthOutcome::Rejected);
    }
    let ttl = Duration::from_secs(settings.auth.nonce_ttl_secs);
    let nc = credentials.nc_value();
    let nonce = st.nonces.iter_mut().find(|n| n.value == credentials.nonce);
    match nonce {
        // Unknown or expired nonce with a correct response: stale (RFC 2617 §3.2.1).
        None => return (challenge(st, true), AuthOutcome::Stale),
        Some(n) if n.issued.elapsed() > ttl => return (challenge(st, true), AuthOutcome::Stale),
        // A nonce count that does not grow is a replay.
        Some(n) if nc <= n.last_nc => {
            st.failures += 1;
            return (challenge(st, false), AuthOutcome::Rejected);
        }
        Some(n) => n.last_nc = nc,
    }
    // The interval (RFC 4976 §6.3, §4.6): 423 with the bound that was crossed.
    let auth = &settings.auth;
    let lifetime = match head.expires() {
        None => auth.expires_default,
        Some(e) if e < auth.expires_min => {
            let min = auth.expires_min;
            return (
                reply(Status::OUT_OF_BOUNDS, &|w| {
                    w.number("Min-Expires", min);
                }),
                AuthOutcome::OutOfBounds,
            );
        }
        Some(e) if e > auth.expires_max => {
            let max = auth.expires_max;
            return (
                reply(Status::OUT_OF_BOUNDS, &|w| {
                    w.number("Max-Expires", max);
                }),
                AuthOutcome::OutOfBounds,
            );
        }
        Some(e) => e,
    };
    // An AUTH that came through an inner relay which proved its name with a certificate:
    // the URI is the relay's, valid on any of its connections (RFC 4976 §6.3).
    let from = head.from_path();
    let relay = (from.len() > 1 && conn.peer_is(from[0].host_unbracketed()))
        .then(|| from[0].host_unbracketed().to_ascii_lowercase());
    let Some(uri) = shared.table.mint(
        conn,
        conn.local.scheme,
        &settings.relay.hostname,
        conn.local.port,
        Duration::from_secs(lifetime),
        relay,
    ) else {
        return (reply(Status::FORBIDDEN, &|_| {}), AuthOutcome::Refused);
    };
    st.failures = 0;
    // Use-Path: the inner relays the AUTH came through (its From-Path minus the client,
    // reversed), then our new URI (RFC 4976 §4.2, §5.1).
    let use_path: Vec<&MsrpUri> = from[..from.len() - 1]
        .iter()
        .rev()
        .chain(std::iter::once(&uri))
        .collect();
    let ha1 = ha1.unwrap_or_default();
    let info = AuthenticationInfo {
        nextnonce: None,
        qop: Some("auth".to_owned()),
        rspauth: Some(response_auth(
            &ha1,
            &credentials.nonce,
            &credentials.nc,
            &credentials.cnonce,
            &digest_uri,
        )),
        cnonce: Some(credentials.cnonce.clone()),
        nc: Some(credentials.nc.clone()),
    }
    .to_header_value();
    let frame = reply(Status::OK, &|w| {
        w.path(msrp_proto::HeaderName::UsePath, use_path.iter().copied());
        w.number("Expires", lifetime);
        w.header("Authentication-Info", info.as_bytes());
    });
    tracing::info!(peer = %conn.peer, conn = conn.id, user = %credentials.username, expires = lifetime, "AUTH accepted");
    (frame, AuthOutcome::Accepted)
}
