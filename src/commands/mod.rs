//! The client commands `send`, `probe` and `listen`: an MSRP endpoint on the command line for
//! testing and monitoring a relay (built on [`crate::client`]).
//!
//! Exit codes, shared by the three commands:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the relay or the peer answered with an error (a non-200, a failure REPORT, a bad AUTH answer) |
//! | 2 | usage or configuration error (bad URI, unreadable password, CA or input file) |
//! | 3 | network or TLS failure (connection refused, timeout, handshake failure, connection lost) |

pub mod dangerous;
pub mod listen;
pub mod probe;
pub mod send;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use msrp_proto::{MsrpUri, Scheme};

use crate::client::{ClientError, Connection, TlsInfo};
use crate::tls::TlsError;

pub const EXIT_ANSWER: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NETWORK: u8 = 3;

/// The default MSRP port (RFC 4975 §15.3).
pub const DEFAULT_PORT: u16 = 2855;

/// How to reach the relay; shared by the three commands.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConnectArgs {
    /// The relay's URI as AUTH names it: msrps://HOST[:PORT];tcp for TLS, msrp://HOST[:PORT];tcp
    /// for plain TCP; no session-id; the port defaults to 2855 and ";tcp" may be left out.
    #[arg(long, value_name = "URI")]
    pub relay: String,
    /// Connect to HOST:PORT instead of the URI's host and port, keeping the URI's host for TLS
    /// (SNI, certificate check) and AUTH (like curl's --connect-to).
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// PEM file of CA certificates to verify the relay's certificate with (default: the
    /// system's trust store).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// DANGEROUS: accept any certificate from the relay, unverified (for labs only).
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,
    /// Longest wait for each step: the connection, the TLS handshake, each AUTH round trip,
    /// the next response, the REPORT (e.g. 15s, 500ms, 2m; a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Why a command failed. Each variant knows its exit code; the message says what failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {what} {}: {source}", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS set-up: {0}")]
    TlsSetup(#[from] TlsError),
    #[error("cannot resolve {name}: {source}")]
    Resolve {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{step}: {source}")]
    Client {
        step: String,
        #[source]
        source: ClientError,
    },
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_)
            | CommandError::ReadFile { .. }
            | CommandError::WriteFile { .. }
            | CommandError::TlsSetup(_) => EXIT_USAGE,
            CommandError::Resolve { .. } => EXIT_NETWORK,
            CommandError::Client { source, .. } => client_exit_code(source),
        }
    }

    /// What kind of failure this is, in words, for the message on stderr.
    pub fn kind(&self) -> &'static str {
        match self.exit_code() {
            EXIT_ANSWER => "error answer",
            EXIT_USAGE => "usage or configuration error",
            _ => "network or TLS failure",
        }
    }

    /// The status code when the relay or peer answered with one.
    pub fn status(&self) -> Option<(u16, &str)> {
        match self {
            CommandError::Client {
                source: ClientError::Status { code, phrase } | ClientError::Report { code, phrase },
                ..
            } => Some((*code, phrase.as_str())),
            _ => None,
        }
    }
}

/// 1 when the relay or the peer answered (badly), 3 when the network or TLS failed.
pub fn client_exit_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Io(_)
        | ClientError::Tls(_)
        | ClientError::Timeout(..)
        | ClientError::Closed => EXIT_NETWORK,
        ClientError::Protocol(_)
        | ClientError::Unexpected(_)
        | ClientError::Status { .. }
        | ClientError::Report { .. } => EXIT_ANSWER,
    }
}

/// A [`ClientError`] with the step it happened in.
pub(crate) fn at(step: impl Into<String>) -> impl FnOnce(ClientError) -> CommandError {
    let step = step.into();
    move |source| CommandError::Client { step, source }
}

/// Runs `fut` on a fresh single-threaded runtime and turns its outcome into an exit code,
/// printing a failure as `msrp-relay COMMAND: KIND: ERROR` on stderr.
pub fn run<F>(command: &str, fut: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), CommandError>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("msrp-relay {command}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msrp-relay {command}: {}: {e}", e.kind());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Parses `15s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 15s, 500ms or 2m"))?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    if d.is_zero() {
        return Err("the duration must be more than zero".into());
    }
    Ok(d)
}

/// Parses a URI given on the command line; `what` names the option in the error.
pub fn parse_uri(what: &str, text: &str) -> Result<MsrpUri, CommandError> {
    MsrpUri::parse(Bytes::from(text.to_owned())).map_err(|e| {
        CommandError::Usage(format!(
            "{what} {text:?} is not an MSRP URI ({e}); expected e.g. msrps://host.example.com:2855/session;tcp"
        ))
    })
}

/// The first line of a password file, without its line terminator; empty is an error.
pub fn read_password(path: &Path) -> Result<String, CommandError> {
    let text = std::fs::read_to_string(path).map_err(|source| CommandError::ReadFile {
        what: "password file",
        path: path.to_owned(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(CommandError::Usage(format!(
            "the password file {} is empty (its first line is the password)",
            path.display()
        )));
    }
    Ok(line.to_owned())
}

/// `n` random alphanumerics.
pub fn random_token(n: usize) -> String {
    use rand::Rng as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// A URI for this endpoint when none is given: `msrps://<random>.invalid:2855/<random>;tcp`
/// (the `.invalid` name cannot resolve, RFC 6761; a relay reaches its clients over their AUTH
/// connection, never by dialling them).
pub fn random_own_uri(scheme: Scheme) -> Result<MsrpUri, CommandError> {
    let host = format!("{}.invalid", random_token(10).to_ascii_lowercase());
    MsrpUri::build(
        scheme,
        &host,
        Some(DEFAULT_PORT),
        Some(&random_token(16)),
        "tcp",
    )
    .map_err(|e| CommandError::Usage(format!("cannot build a URI for this endpoint: {e}")))
}

/// A relay to connect to, from [`ConnectArgs`].
pub struct Relay {
    /// The URI as AUTH names it (the AUTH To-Path and digest-uri).
    pub uri: MsrpUri,
    /// The URI's host without IPv6 brackets: SNI and the certificate's expected name.
    pub host: String,
    /// The URI's port, or 2855.
    pub port: u16,
    /// Where to connect, when `--connect` overrides the URI's host and port.
    connect_to: Option<(String, u16)>,
    /// The TLS client configuration for `msrps:`; `None` for `msrp:`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Whether the certificate is verified (false with `--insecure`).
    pub verified: bool,
    pub timeout: Duration,
}

/// How a connection was set up.
pub struct Connected {
    pub addr: SocketAddr,
    pub tcp_connect: Duration,
    pub tls: Option<TlsInfo>,
}

impl Relay {
    pub fn from_args(args: &ConnectArgs) -> Result<Relay, CommandError> {
        // ";tcp" is the only transport, so a URI without it is completed rather than refused.
        let text = if args.relay.contains(';') {
            args.relay.clone()
        } else {
            format!("{};tcp", args.relay)
        };
        let uri = parse_uri("--relay", &text)?;
        if uri.session_id().is_some() {
            return Err(CommandError::Usage(format!(
                "--relay {:?} has a session-id; name the relay itself, e.g. msrps://{}:{};tcp",
                args.relay,
                uri.host(),
                uri.port().unwrap_or(DEFAULT_PORT)
            )));
        }
        let connect_to = args.connect.as_deref().map(parse_host_port).transpose()?;
        let (tls, verified) = match uri.scheme() {
            Scheme::Msrp => (None, true),
            Scheme::Msrps if args.insecure => (Some(dangerous::insecure_client_config()?), false),
            Scheme::Msrps => (
                Some(crate::tls::client_config(args.ca.as_deref(), None)?),
                true,
            ),
        };
        Ok(Relay {
            host: uri.host_unbracketed().to_owned(),
            port: uri.port().unwrap_or(DEFAULT_PORT),
            uri,
            connect_to,
            tls,
            verified,
            timeout: args.timeout,
        })
    }

    /// Connects (trying each address in turn) and, for `msrps:`, completes the TLS handshake;
    /// each attempt is bounded by the timeout.
    pub async fn connect(&self) -> Result<(Connection, Connected), CommandError> {
        let (host, port) = match &self.connect_to {
            Some((h, p)) => (h.as_str(), *p),
            None => (self.host.as_str(), self.port),
        };
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| CommandError::Resolve {
                    name: host.to_owned(),
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                })?
                .map_err(|source| CommandError::Resolve {
                    name: host.to_owned(),
                    source,
                })?
                .collect();
        let mut last = None;
        for addr in addrs {
            match self.connect_addr(addr).await {
                Ok(c) => return Ok(c),
                // Another address may answer; a TLS failure would be the same on all of them.
                Err(e @ ClientError::Io(_)) | Err(e @ ClientError::Timeout(..)) => {
                    last = Some(at(format!("connect to {addr}"))(e))
                }
                Err(e) => return Err(at(format!("TLS handshake with {addr}"))(e)),
            }
        }
        Err(last.unwrap_or_else(|| CommandError::Resolve {
            name: host.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        }))
    }

    async fn connect_addr(&self, addr: SocketAddr) -> Result<(Connection, Connected), ClientError> {
        let t = self.timeout;
        match &self.tls {
            None => {
                let started = Instant::now();
                let conn = tokio::time::timeout(t, Connection::connect_tcp(addr))
                    .await
                    .map_err(|_| ClientError::Timeout(t, "the TCP connection"))??;
                let tcp_connect = started.elapsed();
                Ok((
                    conn,
                    Connected {
                        addr,
                        tcp_connect,
                        tls: None,
                    },
                ))
            }
            Some(config) => {
                let (conn, info) = tokio::time::timeout(
                    t,
                    Connection::connect_tls_with_info(addr, &self.host, config.clone()),
                )
                .await
                .map_err(|_| ClientError::Timeout(t, "the TCP connection and TLS handshake"))??;
                Ok((
                    conn,
                    Connected {
                        addr,
                        tcp_connect: info.tcp_connect,
                        tls: Some(info),
                    },
                ))
            }
        }
    }
}

/// `HOST:PORT` or `[IPv6]:PORT`.
fn parse_host_port(s: &str) -> Result<(String, u16), CommandError> {
    let bad = || CommandError::Usage(format!("--connect {s:?} is not HOST:PORT"));
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Milliseconds with microsecond precision, for reports.
pub fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn host_port() {
        assert_eq!(
            parse_host_port("127.0.0.1:2855").unwrap(),
            ("127.0.0.1".into(), 2855)
        );
        assert_eq!(parse_host_port("[::1]:7").unwrap(), ("::1".into(), 7));
        assert_eq!(
            parse_host_port("relay.example.com:1").unwrap(),
            ("relay.example.com".into(), 1)
        );
        for bad in ["relay", ":1", "h:0", "h:70000", "h:x"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    fn args(relay: &str) -> ConnectArgs {
        ConnectArgs {
            relay: relay.into(),
            connect: None,
            ca: None,
            insecure: true,
            timeout: Duration::from_secs(1),
            json: false,
        }
    }

    #[test]
    fn relay_uris() {
        let r = Relay::from_args(&args("msrps://relay.example.com:2855;tcp")).unwrap();
        assert_eq!(r.uri.as_str(), "msrps://relay.example.com:2855;tcp");
        assert_eq!((r.host.as_str(), r.port), ("relay.example.com", 2855));
        assert!(r.tls.is_some() && !r.verified);

        let r = Relay::from_args(&args("msrp://relay.example.com")).unwrap();
        assert_eq!(
            r.uri.as_str(),
            "msrp://relay.example.com;tcp",
            "';tcp' added"
        );
        assert_eq!(r.port, DEFAULT_PORT);
        assert!(r.tls.is_none());

        let r = Relay::from_args(&args("msrps://[::1]:9;tcp")).unwrap();
        assert_eq!(r.host, "::1");

        for bad in [
            "http://relay.example.com;tcp",
            "relay.example.com",
            "msrps://relay.example.com:2855/abc;tcp",
            "msrps://:2855;tcp",
        ] {
            let e = Relay::from_args(&args(bad)).err().unwrap();
            assert_eq!(e.exit_code(), EXIT_USAGE, "{bad}: {e}");
        }
    }

    #[test]
    fn own_uri_is_valid_and_random() {
        let a = random_own_uri(Scheme::Msrps).unwrap();
        let b = random_own_uri(Scheme::Msrps).unwrap();
        assert!(a.as_str().starts_with("msrps://"));
        assert_eq!(a.session_id().map(str::len), Some(16));
        assert!(a.host().ends_with(".invalid"));
        assert_eq!(a.port(), Some(2855));
        assert_eq!(a.transport(), "tcp");
        assert_ne!(a.as_str(), b.as_str());
    }

    #[test]
    fn exit_codes() {
        let io = ClientError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(client_exit_code(&io), EXIT_NETWORK);
        assert_eq!(
            client_exit_code(&ClientError::Tls("bad certificate".into())),
            EXIT_NETWORK
        );
        assert_eq!(
            client_exit_code(&ClientError::Timeout(Duration::from_secs(1), "x")),
            EXIT_NETWORK
        );
        let status = ClientError::Status {
            code: 401,
            phrase: "Unauthorized".into(),
        };
        assert_eq!(client_exit_code(&status), EXIT_ANSWER);
        let e = at("AUTH")(status);
        assert_eq!(e.status(), Some((401, "Unauthorized")));
        assert_eq!(e.kind(), "error answer");
        assert_eq!(e.to_string(), "AUTH: 401 Unauthorized");
        assert_eq!(
            client_exit_code(&ClientError::Report {
                code: 481,
                phrase: String::new()
            }),
            EXIT_ANSWER
        );
        assert_eq!(CommandError::Usage("x".into()).exit_code(), EXIT_USAGE);
    }

    #[test]
    fn password_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "secret\r\nsecond\n").unwrap();
        assert_eq!(read_password(&p).unwrap(), "secret");
        std::fs::write(&p, "\n").unwrap();
        assert_eq!(read_password(&p).unwrap_err().exit_code(), EXIT_USAGE);
        let missing = dir.path().join("missing");
        let e = read_password(&missing).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_USAGE);
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
