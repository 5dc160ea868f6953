//! msrp-bench: load generator and benchmark for RFC 4976 relays (this one, Kamailio, …) on
//! loopback. See `msrp-bench --help` and bench/BENCHMARKS-relay.md.
//!
//! Exit codes: 0 the run passed its checks, 1 it failed (not everything delivered, a wrong
//! hash, an error response, a time limit), 2 usage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use msrp_proto::MsrpUri;
use serde_json::{json, Value};

// The load generator's modules live in src/bench/ and belong to this binary only, so the
// relay's library and binary neither carry nor rebuild them.
#[path = "../bench/mod.rs"]
mod bench;

use bench::conn::{tls_config, Target};
use bench::procstat::{self, Usage, Watch};
use bench::util::{parse_loopback_addr, parse_size};
use bench::{bulk, forwarder, idle, msgs, PathMode};

#[derive(Parser)]
#[command(
    name = "msrp-bench",
    version,
    about = "Load generator and benchmark for MSRP relays (RFC 4975/4976), loopback only",
    after_help = "Every run stops by itself (--count/--duration/--hold, and --max-time). \
                  Exit 0: passed; 1: failed (lost messages, wrong hash, errors); 2: usage."
)]
struct Cli {
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Worker threads of the load generator; 1 uses a single-threaded runtime.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// Abort the run (exit 1) when it takes longer than this many seconds in all.
    #[arg(long, global = true, default_value_t = 300)]
    max_time: u64,
    /// A label copied into the report (bench/run.sh uses `scenario/target`).
    #[arg(long, global = true)]
    tag: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Many small SENDs through the relay: msgs/s, delivery, latency.
    Msgs {
        #[command(flatten)]
        relay: RelayArgs,
        #[command(flatten)]
        msgs: MsgsArgs,
        /// To-Path: short = <receiver's Use-Path> <receiver>; full = the sender's Use-Path
        /// first too (both clients on this relay, RFC 7977 §8.3.2).
        #[arg(long, value_enum, default_value_t = PathArg::Short)]
        path: PathArg,
    },
    /// One large message per pair, in chunks: MB/s and an end-to-end hash check.
    Bulk {
        #[command(flatten)]
        relay: RelayArgs,
        #[command(flatten)]
        bulk: BulkArgs,
        #[arg(long, value_enum, default_value_t = PathArg::Short)]
        path: PathArg,
    },
    /// Open, AUTH and hold many idle connections: the relay's memory per connection.
    Idle {
        #[command(flatten)]
        relay: RelayArgs,
        /// Connections to open.
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        /// Seconds to hold them.
        #[arg(long, default_value_t = 5)]
        hold: u64,
        /// Connects and AUTHs in progress at once.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
    },
    /// The msgs traffic through a plain TCP byte forwarder instead of a relay.
    BaselineMsgs {
        #[command(flatten)]
        msgs: MsgsArgs,
        #[command(flatten)]
        fwd: ForwarderArgs,
    },
    /// The bulk traffic through a plain TCP byte forwarder instead of a relay.
    BaselineBulk {
        #[command(flatten)]
        bulk: BulkArgs,
        #[command(flatten)]
        fwd: ForwarderArgs,
    },
    /// Markdown table of medians from JSON report lines (bench/run.sh).
    Table {
        /// Files of JSON lines, as written by --json.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The median of one field over the passing runs with a tag (for scripts).
    Median {
        file: PathBuf,
        #[arg(long)]
        tag: String,
        /// Dotted path, e.g. results.msgs_per_s.
        #[arg(long)]
        field: String,
    },
    /// Run the byte forwarder alone (the baselines start it as a child process).
    Forwarder {
        #[arg(long, value_parser = parse_loopback_addr, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long, value_parser = parse_loopback_addr)]
        to: SocketAddr,
        /// Copy buffer per direction.
        #[arg(long, value_parser = parse_size_usize, default_value = "64KiB")]
        buffer: usize,
        /// Exit after this many seconds.
        #[arg(long, default_value_t = 600)]
        max_time: u64,
        /// Exit when standard input closes (how the baselines stop it).
        #[arg(long)]
        exit_on_stdin_eof: bool,
    },
}

#[derive(Args, Clone)]
struct RelayArgs {
    /// The relay's address (loopback only), e.g. 127.0.0.1:2855.
    #[arg(long, value_parser = parse_loopback_addr)]
    relay: SocketAddr,
    /// The relay's URI for AUTH (the To-Path), e.g. msrps://relay.example.com:2855;tcp.
    #[arg(long)]
    relay_uri: String,
    /// Use TLS.
    #[arg(long)]
    tls: bool,
    /// CA bundle (PEM) to verify the relay's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Accept any certificate (self-signed test relays).
    #[arg(long)]
    insecure: bool,
    /// TLS server name (SNI and verification); default: the host of --relay-uri.
    #[arg(long)]
    server_name: Option<String>,
    /// Digest user, for relays that challenge AUTH.
    #[arg(long)]
    user: Option<String>,
    /// Digest password (used with --user).
    #[arg(long, env = "MSRP_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The relay's process id: measure its CPU and memory (with its child processes).
    #[arg(long)]
    relay_pid: Option<u32>,
    /// Seconds allowed for each connect, TLS handshake and AUTH.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

#[derive(Args, Clone)]
struct MsgsArgs {
    /// Sender/receiver pairs (each a connection to the relay).
    #[arg(long, default_value_t = 1)]
    pairs: usize,
    /// Body bytes per SEND (at least 40).
    #[arg(long, value_parser = parse_size_usize, default_value = "100")]
    size: usize,
    /// Undelivered SENDs per sender at most.
    #[arg(long, default_value_t = 64)]
    window: u64,
    /// SENDs per sender (instead of --duration).
    #[arg(long)]
    count: Option<u64>,
    /// Seconds of sending when no --count is given.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Total SENDs per second over all senders, paced evenly (microsecond timer, the pairs
    /// interleaved); without it, as fast as the window allows.
    #[arg(long)]
    rate: Option<f64>,
    /// With --rate: a sender wakes at most once per this many microseconds and writes what
    /// is due (0: at every message's own time; more: fewer wakeups, small bursts).
    #[arg(long, default_value_t = 0)]
    tick_us: u64,
    /// Failure-Report of the SENDs: yes (hop-by-hop 200s) or no (no responses).
    #[arg(long, value_enum, default_value_t = FailureReportArg::Yes)]
    failure_report: FailureReportArg,
    /// Seconds to wait for the last deliveries once sending stops.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Also report latency per interval of this many milliseconds of send time
    /// (`latency_series`): when in the run a tail happened (0: no series).
    #[arg(long, default_value_t = 0)]
    series_ms: u64,
}

#[derive(Args, Clone)]
struct BulkArgs {
    /// Pairs, each sending one message.
    #[arg(long, default_value_t = 1)]
    pairs: usize,
    /// Message size (e.g. 1GiB).
    #[arg(long, value_parser = parse_size, default_value = "256MiB")]
    size: u64,
    /// Chunk size: each chunk is one SEND (e.g. 8KiB, 64KiB); 0 = the whole message in one.
    #[arg(long, value_parser = parse_size, default_value = "64KiB")]
    chunk: u64,
    #[arg(long, value_enum, default_value_t = FailureReportArg::Yes)]
    failure_report: FailureReportArg,
    /// Fail when nothing arrives for this many seconds.
    #[arg(long, default_value_t = 10)]
    stall: u64,
}

#[derive(Args, Clone)]
struct ForwarderArgs {
    /// Copy buffer per direction in the forwarder.
    #[arg(long, value_parser = parse_size_usize, default_value = "64KiB")]
    forwarder_buffer: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailureReportArg {
    Yes,
    No,
}

#[derive(Clone, Copy, ValueEnum)]
enum PathArg {
    Short,
    Full,
}

impl From<PathArg> for PathMode {
    fn from(p: PathArg) -> PathMode {
        match p {
            PathArg::Short => PathMode::Short,
            PathArg::Full => PathMode::Full,
        }
    }
}

fn parse_size_usize(s: &str) -> Result<usize, String> {
    parse_size(s).and_then(|n| usize::try_from(n).map_err(|_| format!("{s} is too large")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("msrp-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Cmd::Forwarder {
        listen,
        to,
        buffer,
        max_time,
        exit_on_stdin_eof,
    } = &cli.cmd
    {
        // The forwarder gets a runtime like the relay's (one worker per core).
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("msrp-bench: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        drop(runtime);
        return run_forwarder(rt, *listen, *to, *buffer, *max_time, *exit_on_stdin_eof);
    }
    if let Err(e) = validate(&cli.cmd) {
        eprintln!("msrp-bench: {e}");
        return ExitCode::from(2);
    }
    match &cli.cmd {
        Cmd::Table { files } => return table(files),
        Cmd::Median { file, tag, field } => return median(file, tag, field),
        _ => {}
    }
    let max_time = Duration::from_secs(cli.max_time);
    let json = cli.json;
    let tag = cli.tag.clone();
    let report = runtime.block_on(async {
        match tokio::time::timeout(max_time, run(cli)).await {
            Ok(r) => r,
            Err(_) => Err(anyhow!(
                "the run took longer than --max-time ({max_time:?})"
            )),
        }
    });
    // Tasks still blocked on sockets are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(100));
    let report = report.map(|mut r| {
        r["tag"] = json!(tag);
        r
    });
    match report {
        Ok(report) => {
            let ok = report.get("ok").and_then(Value::as_bool).unwrap_or(false);
            if json {
                print_out(&format!("{report}\n"));
            } else {
                print_text(&report);
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            if json {
                print_out(&format!(
                    "{}\n",
                    json!({"tag": tag, "ok": false, "error": format!("{e:#}")})
                ));
            }
            eprintln!("msrp-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Usage errors found before anything connects (exit 2).
fn validate(cmd: &Cmd) -> Result<(), String> {
    let msgs_args = |m: &MsgsArgs| {
        if m.size < msgs::MIN_SIZE {
            return Err(format!(
                "--size must be at least {} bytes (timestamp and sequence)",
                msgs::MIN_SIZE
            ));
        }
        if m.pairs == 0 {
            return Err("--pairs must be at least 1".into());
        }
        if m.count == Some(0) {
            return Err("--count must be at least 1".into());
        }
        if m.series_ms > 0 && m.count.is_none() {
            let points = (m.duration * 1e3 / m.series_ms as f64).ceil();
            if points > msgs::SERIES_MAX_POINTS as f64 {
                return Err(format!(
                    "--series-ms {} would make {points} intervals of --duration {}; at most {} (a longer interval)",
                    m.series_ms,
                    m.duration,
                    msgs::SERIES_MAX_POINTS
                ));
            }
        }
        Ok(())
    };
    let bulk_args = |b: &BulkArgs| {
        if b.size == 0 {
            return Err("--size must be at least 1 byte".to_owned());
        }
        if b.pairs == 0 {
            return Err("--pairs must be at least 1".into());
        }
        Ok(())
    };
    match cmd {
        Cmd::Msgs { msgs, .. } | Cmd::BaselineMsgs { msgs, .. } => msgs_args(msgs),
        Cmd::Bulk { bulk, .. } | Cmd::BaselineBulk { bulk, .. } => bulk_args(bulk),
        Cmd::Idle { conns, .. } if *conns == 0 => Err("--conns must be at least 1".into()),
        _ => Ok(()),
    }
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_out(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// `writeln!` into a String (infallible).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

fn read_files(files: &[PathBuf]) -> Result<Vec<Value>, ExitCode> {
    let mut reports = Vec::new();
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(text) => reports.extend(bench::table::read_reports(&text)),
            Err(e) => {
                eprintln!("msrp-bench: cannot read {}: {e}", f.display());
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(reports)
}

fn table(files: &[PathBuf]) -> ExitCode {
    match read_files(files) {
        Ok(reports) => {
            print_out(&bench::table::markdown(&reports));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn median(file: &std::path::Path, tag: &str, field: &str) -> ExitCode {
    let reports = match read_files(&[file.to_owned()]) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match bench::table::median_of(&reports, tag, field) {
        Some(v) => {
            print_out(&format!("{v}\n"));
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("msrp-bench: no passing run tagged {tag:?} with {field}");
            ExitCode::FAILURE
        }
    }
}

fn run_forwarder(
    rt: tokio::runtime::Runtime,
    listen: SocketAddr,
    to: SocketAddr,
    buffer: usize,
    max_time: u64,
    exit_on_stdin_eof: bool,
) -> ExitCode {
    if exit_on_stdin_eof {
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            std::process::exit(0);
        });
    }
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening {}", listener.local_addr()?);
        let _ = std::io::Write::flush(&mut std::io::stdout());
        tokio::select! {
            r = forwarder::serve(listener, to, buffer) => r,
            _ = tokio::time::sleep(Duration::from_secs(max_time)) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msrp-bench forwarder: {e}");
            ExitCode::FAILURE
        }
    }
}

fn target(args: &RelayArgs) -> anyhow::Result<Target> {
    let relay_uri: MsrpUri = args
        .relay_uri
        .parse()
        .map_err(|e| anyhow!("--relay-uri {:?}: {e}", args.relay_uri))?;
    let tls = if args.tls {
        let config = tls_config(args.ca.as_deref(), args.insecure)?;
        let name = args
            .server_name
            .clone()
            .unwrap_or_else(|| relay_uri.host_unbracketed().to_owned());
        let name = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|e| anyhow!("bad server name {name:?}: {e}"))?;
        Some((config, name))
    } else {
        if args.ca.is_some() || args.insecure || args.server_name.is_some() {
            bail!("--ca, --insecure and --server-name need --tls");
        }
        None
    };
    // A password alone (e.g. MSRP_BENCH_PASSWORD left in the environment) is not used.
    let credentials = match (&args.user, &args.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (Some(_), None) => bail!("--user needs --password (or MSRP_BENCH_PASSWORD)"),
        (None, _) => None,
    };
    Ok(Target {
        addr: args.relay,
        tls,
        relay_uri,
        credentials,
        timeout: Duration::from_secs(args.timeout.max(1)),
    })
}

/// What every report carries: load, the generator's own CPU, the relay's usage.
struct Frame {
    started: Instant,
    self_cpu: f64,
    load_start: String,
    watch: Option<Watch>,
}

impl Frame {
    fn start(pid: Option<u32>) -> anyhow::Result<Frame> {
        Ok(Frame {
            started: Instant::now(),
            self_cpu: procstat::self_cpu_s(),
            load_start: procstat::loadavg(),
            watch: pid.map(Watch::start).transpose()?,
        })
    }

    fn finish(self, mut report: Value) -> (Value, Option<Usage>) {
        let usage = self.watch.map(Watch::finish);
        report["wall_s"] = json!(self.started.elapsed().as_secs_f64());
        report["bench_cpu_s"] = json!(procstat::self_cpu_s() - self.self_cpu);
        report["loadavg_start"] = json!(self.load_start);
        report["loadavg_end"] = json!(procstat::loadavg());
        report["relay_usage"] = json!(usage);
        (report, usage)
    }
}

fn latency_json(h: &hdrhistogram::Histogram<u64>) -> Value {
    let us = |v: u64| v as f64 / 1000.0;
    json!({
        "p50": us(h.value_at_quantile(0.50)),
        "p90": us(h.value_at_quantile(0.90)),
        "p99": us(h.value_at_quantile(0.99)),
        "p999": us(h.value_at_quantile(0.999)),
        "max": us(h.max()),
        "mean": h.mean() / 1000.0,
        "samples": h.len(),
    })
}

fn msgs_options(a: &MsgsArgs) -> msgs::MsgsOptions {
    msgs::MsgsOptions {
        size: a.size,
        window: a.window.max(1),
        count: a.count,
        duration: Duration::from_secs_f64(a.duration.max(0.0)),
        rate: a.rate.filter(|r| *r > 0.0),
        tick: Duration::from_micros(a.tick_us),
        failure_report: matches!(a.failure_report, FailureReportArg::Yes),
        drain: Duration::from_secs_f64(a.drain.max(0.0)),
        series: (a.series_ms > 0).then(|| Duration::from_millis(a.series_ms)),
    }
}

/// `latency_series` of a report: per interval of send time, its start (ms from the run's
/// start), how many messages were sent in it, and their latency percentiles in µs.
fn series_json(s: &msgs::LatencySeries) -> Value {
    let us = |v: u64| v as f64 / 1000.0;
    let points: Vec<Value> = s
        .points
        .iter()
        .enumerate()
        .map(|(i, h)| {
            json!({
                "t_ms": (s.interval * i as u32).as_secs_f64() * 1e3,
                "samples": h.len(),
                "p50": us(h.value_at_quantile(0.50)),
                "p99": us(h.value_at_quantile(0.99)),
                "max": us(h.max()),
            })
        })
        .collect();
    json!({
        "interval_ms": s.interval.as_secs_f64() * 1e3,
        "precision": "1 significant digit",
        "outside": s.outside,
        "points": points,
    })
}

fn bulk_options(a: &BulkArgs, max_time: Duration) -> bulk::BulkOptions {
    bulk::BulkOptions {
        size: a.size,
        chunk: if a.chunk == 0 { a.size } else { a.chunk },
        failure_report: matches!(a.failure_report, FailureReportArg::Yes),
        timeout: max_time,
        stall: Duration::from_secs(a.stall.max(1)),
    }
}

async fn run_msgs(
    pairs: Vec<bench::PairSetup>,
    a: &MsgsArgs,
    frame: Frame,
    mut report: Value,
) -> anyhow::Result<Value> {
    let opts = msgs_options(a);
    let r = msgs::run(pairs, &opts).await?;
    let check = r.check(opts.failure_report);
    let secs = r.elapsed.as_secs_f64();
    report["ok"] = json!(check.is_ok());
    report["error"] = json!(check.err());
    report["results"] = json!({
        "sent": r.sent,
        "delivered": r.delivered,
        "acks": r.acks,
        "errors": r.errors,
        "elapsed_s": secs,
        "msgs_per_s": if secs > 0.0 { r.delivered as f64 / secs } else { 0.0 },
        "latency_us": latency_json(&r.latency),
        "schedule_lag_ms": opts.rate.map(|_| r.schedule_lag.as_secs_f64() * 1e3),
        "pacing_lag_us": opts.rate.map(|_| latency_json(&r.pacing_lag)),
        "pacing_timer": opts.rate.map(|_| if r.precise_pacing { "timerfd" } else { "tokio-1ms" }),
        "latency_series": r.series.as_ref().map(series_json),
    });
    let (mut report, usage) = frame.finish(report);
    if let Some(u) = usage {
        if r.delivered > 0 {
            report["results"]["relay_cpu_us_per_msg"] = json!(u.cpu_s * 1e6 / r.delivered as f64);
        }
    }
    Ok(report)
}

async fn run_bulk(
    pairs: Vec<bench::PairSetup>,
    a: &BulkArgs,
    max_time: Duration,
    frame: Frame,
    mut report: Value,
) -> anyhow::Result<Value> {
    let opts = bulk_options(a, max_time);
    let r = bulk::run(pairs, &opts).await?;
    let check = r.check(opts.failure_report);
    let secs = r.elapsed.as_secs_f64();
    report["ok"] = json!(check.is_ok());
    report["error"] = json!(check.err());
    report["results"] = json!({
        "bytes": r.bytes,
        "chunks_sent": r.chunks_sent,
        "pieces_received": r.pieces_received,
        "acks": r.acks,
        "errors": r.errors,
        "hash_ok": r.hash_ok,
        "elapsed_s": secs,
        "mb_per_s": if secs > 0.0 { r.bytes as f64 / secs / 1e6 } else { 0.0 },
    });
    let (mut report, usage) = frame.finish(report);
    if let Some(u) = usage {
        report["results"]["relay_cpu_s_per_gb"] = json!(u.cpu_s / (r.bytes as f64 / 1e9));
    }
    Ok(report)
}

async fn run(cli: Cli) -> anyhow::Result<Value> {
    let max_time = Duration::from_secs(cli.max_time);
    match &cli.cmd {
        Cmd::Msgs { relay, msgs, path } => {
            let t = target(relay)?;
            let pairs = bench::relay_pairs(&t, msgs.pairs.max(1), (*path).into()).await?;
            let report = json!({
                "mode": "msgs",
                "target": relay.relay.to_string(),
                "transport": if relay.tls { "tls" } else { "tcp" },
                "params": msgs_params(msgs, Some(*path)),
            });
            let frame = Frame::start(relay.relay_pid)?;
            run_msgs(pairs, msgs, frame, report).await
        }
        Cmd::BaselineMsgs { msgs, fwd } => {
            let receivers = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let child = forwarder::ForwarderProcess::spawn(
                receivers.local_addr()?,
                fwd.forwarder_buffer,
                max_time,
            )?;
            let pairs = bench::baseline_pairs(child.addr, &receivers, msgs.pairs.max(1)).await?;
            let mut params = msgs_params(msgs, None);
            params["forwarder_buffer"] = json!(fwd.forwarder_buffer);
            let report = json!({
                "mode": "baseline-msgs",
                "target": "forwarder",
                "transport": "tcp",
                "params": params,
            });
            let frame = Frame::start(Some(child.pid()))?;
            let r = run_msgs(pairs, msgs, frame, report).await;
            drop(child);
            r
        }
        Cmd::Bulk { relay, bulk, path } => {
            let t = target(relay)?;
            let pairs = bench::relay_pairs(&t, bulk.pairs.max(1), (*path).into()).await?;
            let report = json!({
                "mode": "bulk",
                "target": relay.relay.to_string(),
                "transport": if relay.tls { "tls" } else { "tcp" },
                "params": bulk_params(bulk),
            });
            let frame = Frame::start(relay.relay_pid)?;
            run_bulk(pairs, bulk, max_time, frame, report).await
        }
        Cmd::BaselineBulk { bulk, fwd } => {
            let receivers = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let child = forwarder::ForwarderProcess::spawn(
                receivers.local_addr()?,
                fwd.forwarder_buffer,
                max_time,
            )?;
            let pairs = bench::baseline_pairs(child.addr, &receivers, bulk.pairs.max(1)).await?;
            let mut params = bulk_params(bulk);
            params["forwarder_buffer"] = json!(fwd.forwarder_buffer);
            let report = json!({
                "mode": "baseline-bulk",
                "target": "forwarder",
                "transport": "tcp",
                "params": params,
            });
            let frame = Frame::start(Some(child.pid()))?;
            let r = run_bulk(pairs, bulk, max_time, frame, report).await;
            drop(child);
            r
        }
        Cmd::Idle {
            relay,
            conns,
            hold,
            concurrency,
        } => {
            let t = target(relay)?;
            let limit = procstat::raise_nofile();
            if (*conns as u64) + 64 > limit {
                bail!(
                    "--conns {conns} needs more file descriptors than RLIMIT_NOFILE allows ({limit}); \
                     at most {} here (the relay needs as many)",
                    limit.saturating_sub(64)
                );
            }
            let frame = Frame::start(relay.relay_pid)?;
            let before = relay.relay_pid.map(procstat::memory_kib);
            let mut at_open: Option<(usize, u64)> = None;
            let opts = idle::IdleOptions {
                conns: *conns,
                hold: Duration::from_secs(*hold),
                concurrency: *concurrency,
            };
            let r = idle::run(&t, &opts, |n| {
                if let Some(pid) = relay.relay_pid {
                    at_open = Some((n, procstat::memory_kib(pid)));
                }
            })
            .await
            .context("idle run")?;
            let ok = r.failed == 0 && r.opened == *conns && r.still_open == r.opened;
            let per_conn = match (before, at_open) {
                (Some(b), Some((n, m))) if n > 0 => {
                    Some((m.saturating_sub(b)) as f64 * 1024.0 / n as f64)
                }
                _ => None,
            };
            let report = json!({
                "mode": "idle",
                "target": relay.relay.to_string(),
                "transport": if relay.tls { "tls" } else { "tcp" },
                "params": {"conns": conns, "hold_s": hold, "concurrency": concurrency},
                "ok": ok,
                "error": if ok { None } else {
                    Some(format!("{} of {conns} opened, {} still open at the end, {} failed{}",
                        r.opened, r.still_open, r.failed,
                        r.first_error.as_deref().map(|e| format!(", first: {e}")).unwrap_or_default()))
                },
                "results": {
                    "opened": r.opened,
                    "still_open": r.still_open,
                    "failed": r.failed,
                    "setup_s": r.setup.as_secs_f64(),
                    "conns_per_s": r.opened as f64 / r.setup.as_secs_f64().max(1e-9),
                    "relay_mem_before_kib": before,
                    "relay_mem_open_kib": at_open.map(|(_, m)| m),
                    "relay_bytes_per_conn": per_conn,
                },
            });
            Ok(frame.finish(report).0)
        }
        Cmd::Forwarder { .. } | Cmd::Table { .. } | Cmd::Median { .. } => {
            bail!("handled in main")
        }
    }
}

fn msgs_params(a: &MsgsArgs, path: Option<PathArg>) -> Value {
    json!({
        "pairs": a.pairs,
        "size": a.size,
        "window": a.window,
        "count": a.count,
        "duration_s": if a.count.is_some() { None } else { Some(a.duration) },
        "rate": a.rate,
        "tick_us": a.rate.map(|_| a.tick_us),
        "series_ms": (a.series_ms > 0).then_some(a.series_ms),
        "failure_report": matches!(a.failure_report, FailureReportArg::Yes),
        "path": path.map(|p| match p { PathArg::Short => "short", PathArg::Full => "full" }),
    })
}

fn bulk_params(a: &BulkArgs) -> Value {
    json!({
        "pairs": a.pairs,
        "size": a.size,
        "chunk": if a.chunk == 0 { a.size } else { a.chunk },
        "failure_report": matches!(a.failure_report, FailureReportArg::Yes),
    })
}

fn print_text(r: &Value) {
    let mut out = String::new();
    let s = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.2}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    outln!(
        out,
        "{} -> {} ({}): {}",
        s(&r["mode"]),
        s(&r["target"]),
        s(&r["transport"]),
        if r["ok"].as_bool() == Some(true) {
            "OK".to_owned()
        } else {
            format!("FAILED: {}", s(&r["error"]))
        }
    );
    outln!(out, "  params: {}", r["params"]);
    if let Some(res) = r["results"].as_object() {
        for (k, v) in res {
            if let Some(obj) = v.as_object() {
                let parts: Vec<String> = obj.iter().map(|(k, v)| format!("{k}={}", s(v))).collect();
                outln!(out, "  {k}: {}", parts.join(" "));
            } else {
                outln!(out, "  {k}: {}", s(v));
            }
        }
    }
    if let Some(u) = r["relay_usage"].as_object() {
        outln!(
            out,
            "  relay pid {} ({} processes): cpu {} s, {} start/peak/end {}/{}/{} KiB, hwm {} KiB",
            s(&u["pid"]),
            s(&u["processes"]),
            s(&u["cpu_s"]),
            s(&u["memory_kind"]),
            s(&u["mem_start_kib"]),
            s(&u["mem_peak_kib"]),
            s(&u["mem_end_kib"]),
            s(&u["hwm_kib"]),
        );
    }
    outln!(
        out,
        "  wall {} s, generator cpu {} s, load {} -> {}",
        s(&r["wall_s"]),
        s(&r["bench_cpu_s"]),
        s(&r["loadavg_start"]),
        s(&r["loadavg_end"])
    );
    print_out(&out);
}
