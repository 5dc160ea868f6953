//! `msrp-relay send`: AUTH to a relay, then send one message through it, in chunks, and
//! report the outcome (as text, or as the JSON of a probe service's send endpoint).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use msrp_proto::MsrpUri;
use serde::Serialize;
use tokio::io::AsyncRead;

use super::{
    at, parse_uri, random_own_uri, random_token, read_password, CommandError, ConnectArgs, Relay,
};
use crate::client::{SendOptions, SendOutcome};

/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_MIN: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// User name for the relay's Digest AUTH.
    #[arg(long)]
    pub user: String,
    /// File whose first line is the password.
    #[arg(long, value_name = "FILE")]
    pub password_file: PathBuf,
    /// Where the message goes after this client's relay: the URIs of the far relays, then
    /// the peer, in order (the line `listen` prints). Repeat the option or give several URIs,
    /// separated by spaces.
    #[arg(long, value_name = "URI", required = true, num_args = 1..)]
    pub to: Vec<String>,
    /// The message text.
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    pub content: Option<String>,
    /// Send this file's contents. Without --content or --file the message is read from
    /// stdin.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Content-Type (default text/plain, or application/octet-stream with --file).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Message-ID (default: random).
    #[arg(long, value_name = "ID")]
    pub message_id: Option<String>,
    /// Largest chunk: each chunk is a SEND of its own with its Byte-Range.
    #[arg(long, value_name = "BYTES", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(1..=16 * 1024 * 1024))]
    pub chunk_size: u64,
    /// Ask for a success REPORT (Success-Report: yes) and wait for it.
    #[arg(long)]
    pub success_report: bool,
    /// Failure-Report: yes (a 200 per chunk, awaited), partial or no (nothing awaited).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub failure_report: Option<FailureReportArg>,
    /// This endpoint's URI, the From-Path (default: msrps://<random>.invalid:2855/<random>;tcp).
    #[arg(long, value_name = "URI")]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailureReportArg {
    Yes,
    No,
    Partial,
}

impl FailureReportArg {
    fn as_str(self) -> &'static str {
        match self {
            FailureReportArg::Yes => "yes",
            FailureReportArg::No => "no",
            FailureReportArg::Partial => "partial",
        }
    }
}

/// The outcome, with exactly the fields of the probe service's send response (plus `error`).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct SendReport {
    success: bool,
    host: Option<String>,
    port: Option<u16>,
    status_code: Option<u16>,
    status_text: Option<String>,
    transaction_id: Option<String>,
    message_id: Option<String>,
    byte_range: Option<String>,
    /// Milliseconds from the first byte sent to the last 200.
    rtt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What to send.
enum Body {
    Bytes(Vec<u8>),
    File(tokio::fs::File, u64),
}

/// Everything checked before the network is touched.
struct Plan {
    relay: Relay,
    me: MsrpUri,
    to: Vec<MsrpUri>,
    password: String,
    message_id: String,
    content_type: String,
    body_source: BodySource,
}

enum BodySource {
    Text(Vec<u8>),
    File(PathBuf),
}

pub fn main(args: SendArgs) -> ExitCode {
    let json = args.connect.json;
    let mut report = SendReport {
        message_id: args.message_id.clone(),
        ..SendReport::default()
    };
    super::run("send", async {
        let result = send(&args, &mut report).await;
        if let Err(e) = &result {
            report.success = false;
            report.error = Some(format!("{}: {e}", e.kind()));
            if let Some((code, text)) = e.status() {
                report.status_code = Some(code);
                report.status_text = Some(text.to_owned());
            }
        }
        if json {
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("msrp-relay send: cannot format JSON: {e}"),
            }
        }
        result
    })
}

fn plan(args: &SendArgs) -> Result<Plan, CommandError> {
    let relay = Relay::from_args(&args.connect)?;
    let to = args
        .to
        .iter()
        .flat_map(|t| t.split_whitespace())
        .map(|t| parse_uri("--to", t))
        .collect::<Result<Vec<_>, _>>()?;
    if to.is_empty() {
        return Err(CommandError::Usage("--to names no URI".into()));
    }
    let me = match &args.from {
        Some(f) => parse_uri("--from", f)?,
        None => random_own_uri(relay.uri.scheme())?,
    };
    let message_id = match &args.message_id {
        Some(id) => {
            check_message_id(id)?;
            id.clone()
        }
        None => random_token(16),
    };
    let body_source = match (&args.content, &args.file) {
        (Some(text), _) => BodySource::Text(text.clone().into_bytes()),
        (None, Some(path)) => BodySource::File(path.clone()),
        (None, None) => {
            if std::io::stdin().is_terminal() {
                return Err(CommandError::Usage(
                    "nothing to send: give --content TEXT, --file PATH, or pipe the message on stdin"
                        .into(),
                ));
            }
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|source| CommandError::ReadFile {
                    what: "the message from",
                    path: PathBuf::from("stdin"),
                    source,
                })?;
            BodySource::Text(buf)
        }
    };
    let content_type = args.content_type.clone().unwrap_or_else(|| {
        match body_source {
            BodySource::File(_) => "application/octet-stream",
            BodySource::Text(_) => "text/plain",
        }
        .to_owned()
    });
    if content_type.is_empty() || !content_type.contains('/') || content_type.contains(['\r', '\n'])
    {
        return Err(CommandError::Usage(format!(
            "--content-type {content_type:?} is not a MIME type like text/plain"
        )));
    }
    let password = read_password(&args.password_file)?;
    Ok(Plan {
        relay,
        me,
        to,
        password,
        message_id,
        content_type,
        body_source,
    })
}

/// RFC 4975 §9: `ident = ALPHANUM 3*31ident-char`, `ident-char = ALPHANUM / "." / "-" / "+" /
/// "%" / "="`.
fn check_message_id(id: &str) -> Result<(), CommandError> {
    let ok = (4..=32).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+%=".contains(c));
    if ok {
        Ok(())
    } else {
        Err(CommandError::Usage(format!(
            "--message-id {id:?} must be 4 to 32 characters: letters, digits and . - + % = (starting with a letter or digit)"
        )))
    }
}

async fn send(args: &SendArgs, report: &mut SendReport) -> Result<(), CommandError> {
    let plan = plan(args)?;
    report.host = Some(plan.relay.host.clone());
    report.port = Some(plan.relay.port);
    report.message_id = Some(plan.message_id.clone());
    let timeout = plan.relay.timeout;

    let body = match &plan.body_source {
        BodySource::Text(b) => Body::Bytes(b.clone()),
        BodySource::File(path) => {
            let read_err = |source| CommandError::ReadFile {
                what: "file",
                path: path.clone(),
                source,
            };
            let file = tokio::fs::File::open(path).await.map_err(read_err)?;
            let len = file.metadata().await.map_err(read_err)?.len();
            Body::File(file, len)
        }
    };
    let (reader, total): (Box<dyn AsyncRead + Unpin + Send>, u64) = match body {
        Body::Bytes(b) => {
            let n = b.len() as u64;
            (Box::new(std::io::Cursor::new(b)), n)
        }
        Body::File(f, n) => (Box::new(f), n),
    };

    let (mut conn, _) = plan.relay.connect().await?;
    let grant = conn
        .auth(
            &plan.relay.uri,
            &plan.me,
            &args.user,
            &plan.password,
            None,
            timeout,
        )
        .await
        .map_err(at(format!("AUTH to {}", plan.relay.uri)))?;
    let to_path: Vec<MsrpUri> = grant.use_path.iter().chain(&plan.to).cloned().collect();

    let opts = SendOptions {
        message_id: &plan.message_id,
        content_type: &plan.content_type,
        success_report: args.success_report.then_some(true),
        failure_report: args.failure_report.map(FailureReportArg::as_str),
        ..SendOptions::default()
    };
    let bar = progress_bar(total);
    let mut progress = |n: u64| bar.set_position(n);
    let outcome = conn
        .send_message(
            &to_path,
            std::slice::from_ref(&plan.me),
            &opts,
            reader,
            total,
            usize::try_from(args.chunk_size).unwrap_or(usize::MAX),
            timeout,
            &mut progress,
        )
        .await;
    bar.finish_and_clear();
    let outcome = outcome.map_err(at("SEND"))?;
    fill(report, &outcome);

    let delivered = if args.success_report && outcome.report.is_none() {
        Some(
            conn.wait_report(&plan.message_id, total, timeout)
                .await
                .map_err(at("waiting for the success REPORT"))?,
        )
    } else {
        outcome.report.clone()
    };
    report.success = true;
    if !args.connect.json {
        let peer = plan.to.last().map(MsrpUri::as_str).unwrap_or("");
        let status = match &outcome.last_response {
            Some(_) => format!(
                "{} {}",
                report.status_code.unwrap_or(200),
                report.status_text.as_deref().unwrap_or("OK")
            ),
            None => "sent (no 200 expected with this Failure-Report)".to_owned(),
        };
        println!(
            "message {} ({total} bytes in {} chunk{}) to {peer}: {status} in {} ms",
            plan.message_id,
            outcome.chunks,
            if outcome.chunks == 1 { "" } else { "s" },
            outcome.elapsed.as_millis()
        );
        if let Some(r) = delivered {
            let comment = r
                .head
                .status()
                .map(|s| String::from_utf8_lossy(&s.comment).into_owned())
                .unwrap_or_default();
            println!("delivered: success REPORT 200 {comment}");
        }
    }
    Ok(())
}

fn fill(report: &mut SendReport, outcome: &SendOutcome) {
    report.transaction_id = Some(outcome.last_tid.to_string());
    report.byte_range = Some(outcome.byte_range.to_string());
    report.rtt = Some(u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX));
    if let Some(m) = &outcome.last_response {
        if let msrp_proto::StartLine::Response { code, comment, .. } = m.head.start_line() {
            report.status_code = Some(*code);
            report.status_text = Some(String::from_utf8_lossy(comment).into_owned());
        }
    }
}

/// A progress bar on stderr for large bodies when stderr is a terminal; hidden otherwise.
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if total < PROGRESS_MIN || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        for ok in ["abcd", "87652491", "a.b-c+d%e=f", &"x".repeat(32)] {
            assert!(check_message_id(ok).is_ok(), "{ok}");
        }
        for bad in ["abc", ".abc", "a/bcd", "ab cd", &"x".repeat(33), ""] {
            assert!(check_message_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_has_the_probe_service_fields() {
        let r = SendReport {
            success: true,
            host: Some("relay.example.com".into()),
            port: Some(2855),
            status_code: Some(200),
            status_text: Some("OK".into()),
            transaction_id: Some("abc123xyz".into()),
            message_id: Some("1234567890".into()),
            byte_range: Some("1-13/13".into()),
            rtt: Some(245),
            error: None,
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "success",
            "host",
            "port",
            "statusCode",
            "statusText",
            "transactionId",
            "messageId",
            "byteRange",
            "rtt",
        ];
        want.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, want);
        assert_eq!(v["byteRange"], "1-13/13");
    }
}
