//! msrp-relay: an MSRP relay daemon (RFC 4975, RFC 4976) around the sans-IO `msrp_proto` crate.

pub mod admin;
pub mod alloc;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod logging;
pub mod metrics;
pub mod probe_api;
pub mod relay;
pub mod tls;
