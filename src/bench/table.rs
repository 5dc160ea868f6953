//! Summaries of many runs: `msrp-bench table` turns the JSON lines of bench/run.sh into a
//! Markdown table of medians, and `msrp-bench median` gives one median to the script (the
//! rate for the latency runs is half the measured peak).
//!
//! Every report line carries a `tag` of the form `scenario/target` (run.sh sets them with
//! `--tag`); targets are `ours`, `fwd` (the byte forwarder) and `kam` (Kamailio).

use std::fmt::Write as _;

use serde_json::Value;

/// Read JSON lines, skipping lines that are not JSON objects.
pub fn read_reports(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

/// The value at a dotted path, as a number.
pub fn field(v: &Value, path: &str) -> Option<f64> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_f64()
}

pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

fn runs<'a>(reports: &'a [Value], tag: &str) -> Vec<&'a Value> {
    reports
        .iter()
        .filter(|r| r.get("tag").and_then(Value::as_str) == Some(tag))
        .collect()
}

/// Median of `path` over the passing runs tagged `tag`.
pub fn median_of(reports: &[Value], tag: &str, path: &str) -> Option<f64> {
    median(
        runs(reports, tag)
            .into_iter()
            .filter(|r| r.get("ok").and_then(Value::as_bool) == Some(true))
            .filter_map(|r| field(r, path))
            .collect(),
    )
}

struct Row {
    label: &'static str,
    scenario: &'static str,
    /// One or more fields shown as `a / b / c`.
    paths: &'static [&'static str],
    scale: f64,
    decimals: usize,
}

/// A latency row's fields: p50 / p90 / p99 / max (the added-latency row uses all but max).
const LATENCY: &[&str] = &[
    "results.latency_us.p50",
    "results.latency_us.p90",
    "results.latency_us.p99",
    "results.latency_us.max",
];

const ROWS: &[Row] = &[
    Row {
        label: "msgs/s, 100-byte SEND, Failure-Report yes (hop-by-hop 200s)",
        scenario: "msgs-yes",
        paths: &["results.msgs_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "relay CPU µs per message, Failure-Report yes",
        scenario: "msgs-yes",
        paths: &["results.relay_cpu_us_per_msg"],
        scale: 1.0,
        decimals: 1,
    },
    Row {
        label:
            "msgs/s, Failure-Report yes, To-Path through both clients' Use-Paths (RFC 7977 §8.3.2)",
        scenario: "msgs-full",
        paths: &["results.msgs_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "msgs/s, 100-byte SEND, Failure-Report no",
        scenario: "msgs-no",
        paths: &["results.msgs_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "relay CPU µs per message, Failure-Report no",
        scenario: "msgs-no",
        paths: &["results.relay_cpu_us_per_msg"],
        scale: 1.0,
        decimals: 1,
    },
    Row {
        label: "latency µs p50 / p90 / p99 / max at half of peak rate (Failure-Report yes)",
        scenario: "lat",
        paths: LATENCY,
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "… at this rate (msgs/s, half of the median peak above; the forwarder at ours)",
        scenario: "lat",
        paths: &["params.rate"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "latency µs p50 / p90 / p99 / max at a fixed rate every target sustains",
        scenario: "lat-fixed",
        paths: LATENCY,
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "… at this rate (msgs/s, the same for all)",
        scenario: "lat-fixed",
        paths: &["params.rate"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "latency µs p50 / p90 / p99 / max under light load (one pair)",
        scenario: "lat-light",
        paths: LATENCY,
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "… at this rate (msgs/s)",
        scenario: "lat-light",
        paths: &["params.rate"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "bulk MB/s, one message in 8 KiB chunks",
        scenario: "bulk8k",
        paths: &["results.mb_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "bulk MB/s, one message in 64 KiB chunks",
        scenario: "bulk64k",
        paths: &["results.mb_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "relay CPU s per GB, 64 KiB chunks",
        scenario: "bulk64k",
        paths: &["results.relay_cpu_s_per_gb"],
        scale: 1.0,
        decimals: 2,
    },
    Row {
        label: "msgs/s over TLS (msrps), Failure-Report yes",
        scenario: "msgs-tls",
        paths: &["results.msgs_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "relay CPU µs per message over TLS",
        scenario: "msgs-tls",
        paths: &["results.relay_cpu_us_per_msg"],
        scale: 1.0,
        decimals: 1,
    },
    Row {
        label: "bulk MB/s over TLS, 8 KiB chunks",
        scenario: "bulk8k-tls",
        paths: &["results.mb_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "relay CPU s per GB over TLS, 8 KiB chunks",
        scenario: "bulk8k-tls",
        paths: &["results.relay_cpu_s_per_gb"],
        scale: 1.0,
        decimals: 2,
    },
    Row {
        label: "bulk MB/s over TLS, 64 KiB chunks",
        scenario: "bulk64k-tls",
        paths: &["results.mb_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "relay memory MiB before / peak, bulk in 64 KiB chunks",
        scenario: "bulk64k",
        paths: &["relay_usage.mem_start_kib", "relay_usage.mem_peak_kib"],
        scale: 1.0 / 1024.0,
        decimals: 1,
    },
    Row {
        label: "relay memory MiB before / peak, bulk in 8 KiB chunks",
        scenario: "bulk8k",
        paths: &["relay_usage.mem_start_kib", "relay_usage.mem_peak_kib"],
        scale: 1.0 / 1024.0,
        decimals: 1,
    },
    Row {
        label: "relay memory MiB before / peak while a 4 GiB message streams (64 KiB chunks)",
        scenario: "bulk4g",
        paths: &["relay_usage.mem_start_kib", "relay_usage.mem_peak_kib"],
        scale: 1.0 / 1024.0,
        decimals: 1,
    },
    Row {
        label: "bulk MB/s, the 4 GiB message",
        scenario: "bulk4g",
        paths: &["results.mb_per_s"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "relay memory KiB per idle authenticated connection",
        scenario: "idle",
        paths: &["results.relay_bytes_per_conn"],
        scale: 1.0 / 1024.0,
        decimals: 2,
    },
    Row {
        label: "… with this many connections",
        scenario: "idle",
        paths: &["results.opened"],
        scale: 1.0,
        decimals: 0,
    },
    Row {
        label: "relay memory KiB per idle connection, as many as RLIMIT_NOFILE allows",
        scenario: "idle-max",
        paths: &["results.relay_bytes_per_conn"],
        scale: 1.0 / 1024.0,
        decimals: 2,
    },
    Row {
        label: "… with this many connections",
        scenario: "idle-max",
        paths: &["results.opened"],
        scale: 1.0,
        decimals: 0,
    },
];

const TARGETS: &[(&str, &str)] = &[
    ("ours", "msrp-relay"),
    ("fwd", "byte forwarder"),
    ("kam", "Kamailio msrp"),
];

fn cell(reports: &[Value], row: &Row, target: &str) -> (String, Option<f64>) {
    let tag = format!("{}/{target}", row.scenario);
    let all = runs(reports, &tag);
    if all.is_empty() {
        return ("–".into(), None);
    }
    let failed: Vec<&&Value> = all
        .iter()
        .filter(|r| r.get("ok").and_then(Value::as_bool) != Some(true))
        .collect();
    if failed.len() == all.len() {
        let why = failed[0]
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let why: String = why.chars().take(60).collect();
        return (format!("failed ({} runs): {why}", all.len()), None);
    }
    let values: Vec<Option<f64>> = row
        .paths
        .iter()
        .map(|p| median_of(reports, &tag, p).map(|v| v * row.scale))
        .collect();
    if values.iter().all(Option::is_none) {
        return ("–".into(), None);
    }
    let mut text = values
        .iter()
        .map(|v| match v {
            Some(v) => format!("{v:.*}", row.decimals),
            None => "–".into(),
        })
        .collect::<Vec<_>>()
        .join(" / ");
    if !failed.is_empty() {
        let _ = write!(text, " ({} of {} runs failed)", failed.len(), all.len());
    }
    let single = if values.len() == 1 { values[0] } else { None };
    (text, single)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

/// Latency the relay adds in a latency `scenario` (half of its peak rate, or a fixed rate):
/// ours minus the forwarder's, percentile by percentile (medians of the runs), when both ran
/// at the same rate (see src/bench/msgs.rs).
fn added_latency_row(reports: &[Value], scenario: &str) -> String {
    let rate = |t: &str| median_of(reports, &format!("{scenario}/{t}"), "params.rate");
    match (rate("ours"), rate("fwd")) {
        (Some(a), Some(b)) if a == b => {}
        _ => return String::new(),
    }
    let diffs: Option<Vec<String>> = LATENCY[..3]
        .iter()
        .map(|path| {
            let ours = median_of(reports, &format!("{scenario}/ours"), path)?;
            let fwd = median_of(reports, &format!("{scenario}/fwd"), path)?;
            Some(format!("{:.0}", ours - fwd))
        })
        .collect();
    match diffs {
        Some(d) => format!(
            "| … added by the relay: µs p50 / p90 / p99, ours − forwarder at the same rate | {} | – | – | – | – |\n",
            d.join(" / ")
        ),
        None => String::new(),
    }
}

/// The Markdown table: one row per metric, medians per target, and our ratio to each.
pub fn markdown(reports: &[Value]) -> String {
    let mut out = String::new();
    out.push_str("| metric (median of runs) |");
    for (_, name) in TARGETS {
        let _ = write!(out, " {name} |");
    }
    out.push_str(" ours ÷ forwarder | ours ÷ Kamailio |\n|---|");
    for _ in TARGETS {
        out.push_str("---:|");
    }
    out.push_str("---:|---:|\n");
    for row in ROWS {
        let cells: Vec<(String, Option<f64>)> =
            TARGETS.iter().map(|(t, _)| cell(reports, row, t)).collect();
        if cells.iter().all(|(t, _)| t == "–") {
            continue;
        }
        let _ = write!(out, "| {} |", row.label);
        for (text, _) in &cells {
            let _ = write!(out, " {text} |");
        }
        let _ = writeln!(
            out,
            " {} | {} |",
            ratio(cells[0].1, cells[1].1),
            ratio(cells[0].1, cells[2].1)
        );
        // Rate rows belong to latency scenarios; the row is there when ours and the
        // forwarder ran at the same rate.
        if row.paths == ["params.rate"] {
            out.push_str(&added_latency_row(reports, row.scenario));
        }
    }
    let loads: Vec<f64> = reports
        .iter()
        .flat_map(|r| ["loadavg_start", "loadavg_end"].map(|k| r.get(k).cloned()))
        .flatten()
        .filter_map(|v| v.as_str()?.split_whitespace().next()?.parse().ok())
        .collect();
    if let (Some(lo), Some(hi)) = (
        loads.iter().copied().reduce(f64::min),
        loads.iter().copied().reduce(f64::max),
    ) {
        let _ = writeln!(
            out,
            "\n1-minute load average during the runs: {lo:.2} to {hi:.2} (2 cores; includes the benchmark itself)."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_table() {
        let text = r#"{"tag":"msgs-yes/ours","ok":true,"results":{"msgs_per_s":100.0,"relay_cpu_us_per_msg":5.0}}
{"tag":"msgs-yes/ours","ok":true,"results":{"msgs_per_s":300.0,"relay_cpu_us_per_msg":7.0}}
{"tag":"msgs-yes/ours","ok":true,"results":{"msgs_per_s":200.0,"relay_cpu_us_per_msg":6.0}}
{"tag":"msgs-yes/kam","ok":true,"results":{"msgs_per_s":50.0,"relay_cpu_us_per_msg":12.0}}
{"tag":"msgs-yes/fwd","ok":false,"error":"lost"}
not json
{"tag":"bulk64k/ours","ok":true,"relay_usage":{"mem_start_kib":1024,"mem_peak_kib":2048},"results":{"mb_per_s":900.0}}
"#;
        let reports = read_reports(text);
        assert_eq!(reports.len(), 6);
        assert_eq!(
            median_of(&reports, "msgs-yes/ours", "results.msgs_per_s"),
            Some(200.0)
        );
        assert_eq!(median(vec![1.0, 2.0, 3.0, 4.0]), Some(2.5));
        let t = markdown(&reports);
        assert!(t.contains("| msgs/s, 100-byte SEND, Failure-Report yes (hop-by-hop 200s) | 200 | failed (1 runs): lost | 50 | – | 4.00 |"), "{t}");
        assert!(t.contains("| 1.0 / 2.0 |"), "{t}");
        assert!(!t.contains("Failure-Report no"), "{t}");
        assert!(!t.contains("added by the relay"), "{t}");
    }

    #[test]
    fn added_latency_only_at_the_same_rate() {
        let line = |tag: &str, rate: u32, p50: u32, p99: u32| {
            format!(
                r#"{{"tag":"{tag}","ok":true,"params":{{"rate":{rate}}},"results":{{"latency_us":{{"p50":{p50},"p90":{p50},"p99":{p99},"max":{p99}}}}}}}"#
            )
        };
        let same = [
            line("lat/ours", 30000, 90, 300),
            line("lat/fwd", 30000, 60, 120),
        ]
        .join("\n");
        let t = markdown(&read_reports(&same));
        assert!(
            t.contains("| … added by the relay: µs p50 / p90 / p99, ours − forwarder at the same rate | 30 / 30 / 180 |"),
            "{t}"
        );
        let other = [
            line("lat/ours", 30000, 90, 300),
            line("lat/fwd", 50000, 60, 120),
        ]
        .join("\n");
        assert!(!markdown(&read_reports(&other)).contains("added by the relay"));
        // The fixed-rate scenario gets its own row, from its own runs only.
        let fixed = [
            line("lat-fixed/ours", 20000, 70, 200),
            line("lat-fixed/fwd", 20000, 60, 150),
            line("lat/ours", 30000, 90, 300),
        ]
        .join("\n");
        let t = markdown(&read_reports(&fixed));
        let added: Vec<&str> = t
            .lines()
            .filter(|l| l.contains("added by the relay"))
            .collect();
        assert_eq!(
            added,
            ["| … added by the relay: µs p50 / p90 / p99, ours − forwarder at the same rate | 10 / 10 / 50 | – | – | – | – |"],
            "{t}"
        );
        assert!(
            t.contains("| … at this rate (msgs/s, the same for all) | 20000 | 20000 |"),
            "{t}"
        );
    }
}
