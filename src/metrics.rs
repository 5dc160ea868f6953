//! Prometheus metrics (text exposition via `prometheus-client`), served on the admin listener.
//!
//! Labels are `&'static str` or integers, so counting costs no allocation; the counters hit
//! for every forwarded message are resolved once and kept as handles.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{Atomic, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Slots of a [`Sharded`] value; threads beyond this many share slots (still exact).
const SLOTS: usize = 16;

/// One slot on its own cache line, so that two cores never write the same line.
#[derive(Default)]
#[repr(align(128))]
struct Slot(AtomicU64);

/// A counter's value spread over per-thread slots: the counters hit by every forwarded message
/// would otherwise be one cache line written by every core in turn (a shared atomic add per
/// message, which showed in profiles of the relay under load). Reading sums the slots; each
/// slot only grows, so successive reads never go down.
#[derive(Default)]
pub struct Sharded {
    slots: [Slot; SLOTS],
}

impl Sharded {
    fn slot(&self) -> &AtomicU64 {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
        }
        &self.slots[INDEX.with(|i| *i)].0
    }
}

impl std::fmt::Debug for Sharded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Sharded").field(&self.get()).finish()
    }
}

impl Atomic<u64> for Sharded {
    fn inc(&self) -> u64 {
        self.inc_by(1)
    }

    /// Returns the value of this thread's slot before the add, not the counter's.
    fn inc_by(&self, v: u64) -> u64 {
        self.slot().fetch_add(v, Ordering::Relaxed)
    }

    fn get(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

/// A counter incremented on the forwarding path of every message.
pub type HotCounter = Counter<u64, Sharded>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: String,
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Open connections by listener (address) and transport; outbound ones under "outbound".
    pub connections: Family<ListenerLabels, Gauge>,
    pub auth: Family<OutcomeLabels, Counter>,
    pub tokens: Gauge,
    pub forwarded: Family<MethodLabels, HotCounter>,
    pub forwarded_bytes: Family<MethodLabels, HotCounter>,
    /// Responses this relay sent, by status.
    pub responses: Family<StatusLabels, HotCounter>,
    /// REPORTs this relay generated, by status.
    pub reports: Family<StatusLabels, Counter>,
    pub rejections: Family<ReasonLabels, Counter>,
    pub tls_handshake_failures: Counter,
    pub outbound_connections: Gauge,
    pub outbound_dials: Family<OutcomeLabels, Counter>,
    /// Frames waiting in writer queues, all connections together.
    pub queued_frames: Gauge,
    send_forwarded: HotCounter,
    send_bytes: HotCounter,
    ok_responses: HotCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("msrp_relay");
        let connections = Family::<ListenerLabels, Gauge>::default();
        registry.register("connections", "Open connections", connections.clone());
        let auth = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "auth_attempts",
            "AUTH requests to this relay by outcome",
            auth.clone(),
        );
        let tokens = Gauge::default();
        registry.register(
            "tokens",
            "Live Use-Path URIs issued by this relay",
            tokens.clone(),
        );
        let forwarded = Family::<MethodLabels, HotCounter>::default();
        registry.register(
            "requests_forwarded",
            "Requests forwarded (each re-chunked piece counts)",
            forwarded.clone(),
        );
        let forwarded_bytes = Family::<MethodLabels, HotCounter>::default();
        registry.register(
            "body_bytes_forwarded",
            "Body bytes forwarded",
            forwarded_bytes.clone(),
        );
        let responses = Family::<StatusLabels, HotCounter>::default();
        registry.register(
            "responses_sent",
            "Responses sent by this relay",
            responses.clone(),
        );
        let reports = Family::<StatusLabels, Counter>::default();
        registry.register(
            "reports_generated",
            "Failure REPORTs generated by this relay",
            reports.clone(),
        );
        let rejections = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rejections",
            "Requests refused or dropped, by reason",
            rejections.clone(),
        );
        let tls_handshake_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "Inbound TLS handshakes that failed",
            tls_handshake_failures.clone(),
        );
        let outbound_connections = Gauge::default();
        registry.register(
            "outbound_connections",
            "Pooled outbound connections",
            outbound_connections.clone(),
        );
        let outbound_dials = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "outbound_dials",
            "Outbound connection attempts by outcome",
            outbound_dials.clone(),
        );
        let queued_frames = Gauge::default();
        registry.register(
            "writer_queue_frames",
            "Frames waiting in writer queues",
            queued_frames.clone(),
        );
        let send_forwarded = forwarded
            .get_or_create(&MethodLabels { method: "SEND" })
            .clone();
        let send_bytes = forwarded_bytes
            .get_or_create(&MethodLabels { method: "SEND" })
            .clone();
        let ok_responses = responses
            .get_or_create(&StatusLabels { status: 200 })
            .clone();
        Metrics {
            registry,
            connections,
            auth,
            tokens,
            forwarded,
            forwarded_bytes,
            responses,
            reports,
            rejections,
            tls_handshake_failures,
            outbound_connections,
            outbound_dials,
            queued_frames,
            send_forwarded,
            send_bytes,
            ok_responses,
        }
    }

    /// A request (or a piece of one) went to the next hop.
    pub fn forwarded(&self, method: &msrp_proto::Method, body: u64) {
        let name = match method {
            msrp_proto::Method::Send => {
                self.send_forwarded.inc();
                self.send_bytes.inc_by(body);
                return;
            }
            msrp_proto::Method::Report => "REPORT",
            msrp_proto::Method::Auth => "AUTH",
            msrp_proto::Method::Other(_) => "other",
        };
        self.forwarded
            .get_or_create(&MethodLabels { method: name })
            .inc();
        self.forwarded_bytes
            .get_or_create(&MethodLabels { method: name })
            .inc_by(body);
    }

    pub fn response(&self, status: u16) {
        if status == 200 {
            self.ok_responses.inc();
        } else {
            self.responses.get_or_create(&StatusLabels { status }).inc();
        }
    }

    pub fn report(&self, status: u16) {
        self.reports.get_or_create(&StatusLabels { status }).inc();
    }

    pub fn rejection(&self, reason: &'static str) {
        self.rejections
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn auth(&self, outcome: &'static str) {
        self.auth.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sharded_counter_sums_every_thread_exactly() {
        let counter = HotCounter::default();
        // More threads than slots: some share a slot, and nothing may be lost either way.
        std::thread::scope(|s| {
            for t in 0..(SLOTS as u64 + 4) {
                let counter = counter.clone();
                s.spawn(move || {
                    for _ in 0..1000 {
                        counter.inc();
                    }
                    counter.inc_by(t);
                });
            }
        });
        let n = SLOTS as u64 + 4;
        assert_eq!(counter.get(), n * 1000 + n * (n - 1) / 2);
    }

    #[test]
    fn hot_counters_are_exposed_with_their_sum() {
        let m = Metrics::new();
        let method = msrp_proto::Method::Send;
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    m.forwarded(&method, 100);
                    m.response(200);
                });
            }
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry)
            .unwrap_or_else(|e| panic!("encode: {e}"));
        assert!(
            text.contains("msrp_relay_requests_forwarded_total{method=\"SEND\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("msrp_relay_body_bytes_forwarded_total{method=\"SEND\"} 300"),
            "{text}"
        );
        assert!(
            text.contains("msrp_relay_responses_sent_total{status=\"200\"} 3"),
            "{text}"
        );
    }
}
