//! Logging set-up: `tracing` events to stderr, filtered by `RUST_LOG` (default `info`).
//!
//! Under systemd (detected by `JOURNAL_STREAM`, which systemd sets when stderr goes to the
//! journal) timestamps and colours are left out: the journal records its own time and does
//! not render ANSI escapes.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

/// Output format of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Filter used when `RUST_LOG` is unset or invalid.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber. A second call (or a subscriber installed by someone else,
/// e.g. a test harness) is left in place rather than panicking.
pub fn init(format: LogFormat) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!(
                "msrp-relay: ignoring invalid RUST_LOG {spec:?} ({e}); using {DEFAULT_FILTER:?}"
            );
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = !journald && std::io::stderr().is_terminal();

    let base = fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = match (format, journald) {
        (LogFormat::Text, false) => base.boxed(),
        (LogFormat::Text, true) => base.without_time().boxed(),
        (LogFormat::Json, false) => base.json().boxed(),
        (LogFormat::Json, true) => base.json().without_time().boxed(),
    };
    // Ignore the error: it only means a subscriber is already installed.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_does_not_panic() {
        init(LogFormat::Text);
        init(LogFormat::Json);
        tracing::info!("logging initialised twice");
    }
}
