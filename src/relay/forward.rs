//! The routing decision for a request, as a function of the head, the connection it arrived
//! on and the table (RFC 4976 §6.2–§6.4). It sends nothing: the caller acts on the
//! [`Decision`], so every rule here is testable without a socket.

use std::sync::Arc;

use msrp_proto::{Head, Method, MsrpUri, Status};

use super::connection::ConnHandle;
use super::table::{Hop, Table};

/// What to do with a request.
pub enum Decision {
    /// An AUTH addressed to this relay itself (RFC 4976 §5.1).
    AuthLocal,
    /// Forward to `target`, moving the first `pop` To-Path URIs (ours) to From-Path
    /// (RFC 4976 §6.4.1, §6.4.2). `pop` is 2 when both parties are clients of this relay and
    /// the request crosses it twice (RFC 7977 §8.3.2).
    Forward { target: Arc<ConnHandle>, pop: usize },
    /// The next hop is not one of our clients: another relay or an endpoint, reached over
    /// `via` when given (the connection a relay authenticated on) or else over an outbound
    /// connection to `next`'s authority (RFC 4976 §6.4.2).
    Outbound {
        next: MsrpUri,
        via: Option<Arc<ConnHandle>>,
        pop: usize,
    },
    /// Refuse: answer `status` where a response is allowed, log `rule`, and close the
    /// connection when `close` is set.
    Reject {
        status: Status,
        rule: &'static str,
        close: bool,
    },
}

/// Is `uri` this relay's own address, as an AUTH names it (RFC 4976 §5.1, checklist 18): our
/// host, no session-id, and no port or the port of the listener it came in on.
pub fn addresses_relay(uri: &MsrpUri, hostname: &str, listener_port: u16) -> bool {
    uri.session_id().is_none()
        && uri.host_is(hostname)
        && uri.port().is_none_or(|p| p == listener_port)
}

/// Decide what to do with a request that arrived on `conn`. `trusted` says whether the
/// connection has already had a successful request (an AUTH, or a valid forward).
pub fn decide(
    head: &Head,
    conn: &Arc<ConnHandle>,
    table: &Table,
    hostname: &str,
    trusted: bool,
) -> Decision {
    let to = head.to_path();
    let first = &to[0];
    if head.method() == Some(&Method::Auth)
        && to.len() == 1
        && addresses_relay(first, hostname, conn.local.port)
    {
        return Decision::AuthLocal;
    }
    // The first To-Path URI must be one we issued and still valid (RFC 4976 §6.3, §6.4).
    let Some(route) = table.lookup(first) else {
        return Decision::Reject {
            status: Status::NO_SESSION,
            rule: "first To-Path URI is not a valid URI issued by this relay (RFC 4976 §6.3, §6.4)",
            close: !trusted,
        };
    };
    if to.len() < 2 {
        return Decision::Reject {
            status: Status::BAD_REQUEST,
            rule: "To-Path ends at this relay: there is no next hop (RFC 4976 §6.4)",
            close: false,
        };
    }
    // A URI issued to a relay authenticated by mutual TLS is valid on any connection from
    // that relay; one issued to a client only on the connection of its AUTH (RFC 4976 §6.3).
    let from_owner =
        Arc::ptr_eq(&route.owner, conn) || route.relay.as_deref().is_some_and(|r| conn.peer_is(r));
    if !from_owner {
        // Not from the owner: the next hop must be the owner (RFC 4976 §6.4 condition 1).
        return toward_owner(&route, &to[1..], 1, trusted);
    }
    // From the owner (RFC 4976 §6.4 condition 2): any next hop.
    let next = &to[1];
    if let Some(next_route) = table.lookup(next) {
        // The next hop is also us (both parties here): cross the relay once more, toward
        // that URI's owner only (RFC 7977 §8.3.2, RFC 4976 §6.4).
        return toward_owner(&next_route, &to[2..], 2, trusted);
    }
    if next.host_is(hostname) && next.session_id().is_some() {
        return Decision::Reject {
            status: Status::NO_SESSION,
            rule: "next To-Path URI names this relay but is not a valid issued URI (RFC 4976 §6.3)",
            close: false,
        };
    }
    Decision::Outbound {
        next: next.clone(),
        via: None,
        pop: 1,
    }
}

/// Deliver toward the owner of `route`, `rest` being the To-Path after its URI: a client is
/// the last hop, reached only over its AUTH connection (RFC 4976 §6.3, checklist 33); a relay
/// must be named by the next URI and is reached over the connection it authenticated on, or
/// a new one (§6.4.2). Anything else would make this an open relay (§6.4).
fn toward_owner(route: &Hop, rest: &[MsrpUri], pop: usize, trusted: bool) -> Decision {
    match &route.relay {
        None if rest.len() == 1 => Decision::Forward {
            target: route.owner.clone(),
            pop,
        },
        Some(relay) if rest.first().is_some_and(|u| u.host_is(relay)) => Decision::Outbound {
            next: rest[0].clone(),
            via: Some(route.owner.clone()),
            pop,
        },
        _ => Decision::Reject {
            status: Status::FORBIDDEN,
            rule: "the URI's owner is neither the previous nor the next hop (RFC 4976 §6.4, open relay)",
            close: !trusted,
        },
    }
}

/// May the relay answer this request with an error? A SEND unless `Failure-Report: no`
/// (RFC 4975 §7.1.4), and an AUTH. Never a REPORT (RFC 4975 §7.1.2), nor an unknown method,
/// which a relay treats as if it were a REPORT (RFC 4976 §6.4.2), nor a response.
pub fn may_respond(method: Option<&Method>, failure_report: msrp_proto::FailureReport) -> bool {
    match method {
        Some(Method::Send) => failure_report != msrp_proto::FailureReport::No,
        Some(Method::Auth) => true,
        Some(Method::Report | Method::Other(_)) | None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msrp_proto::FailureReport;

    /// RFC 4975 §7.1.2, §7.1.4; RFC 4976 §6.4.2.
    #[test]
    fn only_sends_and_auths_are_ever_answered() {
        assert!(may_respond(Some(&Method::Send), FailureReport::Yes));
        assert!(may_respond(Some(&Method::Send), FailureReport::Partial));
        assert!(!may_respond(Some(&Method::Send), FailureReport::No));
        assert!(may_respond(Some(&Method::Auth), FailureReport::Yes));
        assert!(!may_respond(Some(&Method::Report), FailureReport::Yes));
        let foo = Method::Other(bytes::Bytes::from_static(b"FOO"));
        assert!(!may_respond(Some(&foo), FailureReport::Yes));
        assert!(!may_respond(None, FailureReport::Yes));
    }

    /// RFC 4976 §5.1, §8: an AUTH may name the relay without a port or with its own.
    #[test]
    fn auth_uri_recognition() {
        let u = |s: &str| s.parse::<MsrpUri>().unwrap();
        assert!(addresses_relay(
            &u("msrps://alice@Relay.Example.com;tcp"),
            "relay.example.com",
            2855
        ));
        assert!(addresses_relay(
            &u("msrps://relay.example.com:2855;tcp"),
            "relay.example.com",
            2855
        ));
        assert!(!addresses_relay(
            &u("msrps://relay.example.com:2856;tcp"),
            "relay.example.com",
            2855
        ));
        assert!(!addresses_relay(
            &u("msrps://relay.example.com:2855/tok;tcp"),
            "relay.example.com",
            2855
        ));
        assert!(!addresses_relay(
            &u("msrps://other.example.com;tcp"),
            "relay.example.com",
            2855
        ));
    }
}
