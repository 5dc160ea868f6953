//! `msrp-relay probe`: connect to a relay, optionally AUTH, and report how long each step took
//! and what certificate the relay showed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use rustls_pki_types::CertificateDer;
use serde::Serialize;

use super::{at, millis, random_own_uri, read_password, CommandError, ConnectArgs, Relay};

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// AUTH as this user (with --password-file); without it the probe stops after TLS.
    #[arg(long, requires = "password_file")]
    pub user: Option<String>,
    /// File whose first line is the password.
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProbeReport {
    success: bool,
    relay: String,
    host: String,
    port: u16,
    /// The address connected to.
    address: Option<String>,
    tcp_connect_ms: Option<f64>,
    tls_handshake_ms: Option<f64>,
    tls_version: Option<String>,
    cipher_suite: Option<String>,
    /// Whether the certificate was verified (false with --insecure or without TLS).
    certificate_verified: bool,
    certificate: Option<CertificateReport>,
    auth_ms: Option<f64>,
    use_path: Option<Vec<String>>,
    expires: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct CertificateReport {
    subject: String,
    issuer: String,
    /// Subject alternative names: DNS names and IP addresses.
    names: Vec<String>,
    not_before: String,
    not_after: String,
    /// Whole days until notAfter (negative once expired).
    expires_in_days: i64,
}

pub fn main(args: ProbeArgs) -> ExitCode {
    let json = args.connect.json;
    let mut report = ProbeReport {
        relay: args.connect.relay.clone(),
        ..ProbeReport::default()
    };
    super::run("probe", async {
        let result = probe(&args, &mut report).await;
        if let Err(e) = &result {
            report.error = Some(format!("{}: {e}", e.kind()));
        }
        if json {
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("msrp-relay probe: cannot format JSON: {e}"),
            }
        } else {
            print_text(&report);
        }
        result
    })
}

async fn probe(args: &ProbeArgs, report: &mut ProbeReport) -> Result<(), CommandError> {
    let relay = Relay::from_args(&args.connect)?;
    let password = args
        .password_file
        .as_deref()
        .map(read_password)
        .transpose()?;
    report.relay = relay.uri.as_str().to_owned();
    report.host = relay.host.clone();
    report.port = relay.port;
    let (mut conn, connected) = relay.connect().await?;
    report.address = Some(connected.addr.to_string());
    report.tcp_connect_ms = Some(millis(connected.tcp_connect));
    if let Some(tls) = &connected.tls {
        report.tls_handshake_ms = Some(millis(tls.handshake));
        report.tls_version = tls.protocol.clone();
        report.cipher_suite = tls.cipher_suite.clone();
        report.certificate_verified = relay.verified;
        report.certificate = tls.peer_certificates.first().and_then(describe);
    }
    if let (Some(user), Some(password)) = (&args.user, &password) {
        let me = random_own_uri(relay.uri.scheme())?;
        let started = Instant::now();
        let grant = conn
            .auth(&relay.uri, &me, user, password, None, relay.timeout)
            .await
            .map_err(at(format!("AUTH to {}", relay.uri)))?;
        report.auth_ms = Some(millis(started.elapsed()));
        report.use_path = Some(
            grant
                .use_path
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
        );
        report.expires = grant.expires;
    }
    report.success = true;
    Ok(())
}

/// Subject, issuer, SANs and validity of a DER certificate; `None` if it does not parse.
fn describe(der: &CertificateDer<'_>) -> Option<CertificateReport> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => names.push((*n).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names.push(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        names.push(std::net::Ipv6Addr::from(a).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    let not_after = validity.not_after.timestamp();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some(CertificateReport {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: rfc3339(validity.not_before.timestamp()),
        not_after: rfc3339(not_after),
        expires_in_days: (not_after - now).div_euclid(86_400),
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (proleptic Gregorian calendar, UTC).
fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn print_text(r: &ProbeReport) {
    let mut out = format!("relay          {}\n", r.relay);
    if let Some(a) = &r.address {
        out.push_str(&format!("address        {a}\n"));
    }
    if let Some(ms) = r.tcp_connect_ms {
        out.push_str(&format!("tcp connect    {ms:.1} ms\n"));
    }
    if let Some(ms) = r.tls_handshake_ms {
        out.push_str(&format!(
            "tls handshake  {ms:.1} ms ({}, {})\n",
            r.tls_version.as_deref().unwrap_or("?"),
            r.cipher_suite.as_deref().unwrap_or("?")
        ));
    }
    if let Some(c) = &r.certificate {
        out.push_str(&format!(
            "certificate    {} ({})\n",
            c.subject,
            if r.certificate_verified {
                "verified"
            } else {
                "NOT verified: --insecure"
            }
        ));
        out.push_str(&format!("  names        {}\n", c.names.join(", ")));
        out.push_str(&format!("  issuer       {}\n", c.issuer));
        out.push_str(&format!(
            "  valid        {} to {} ({} days left)\n",
            c.not_before, c.not_after, c.expires_in_days
        ));
    }
    if let Some(ms) = r.auth_ms {
        out.push_str(&format!("auth           {ms:.1} ms\n"));
    }
    if let Some(p) = &r.use_path {
        out.push_str(&format!("use-path       {}\n", p.join(" ")));
    }
    if let Some(e) = r.expires {
        out.push_str(&format!("expires        {e} s\n"));
    }
    if r.success {
        out.push_str("result         OK\n");
    }
    print!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn describes_a_certificate() {
        let (chain, _) = crate::tls::self_signed("localhost").unwrap();
        let c = describe(&chain[0]).unwrap();
        assert_eq!(c.names, ["localhost", "127.0.0.1", "::1"]);
        assert!(c.subject.contains("localhost"), "{}", c.subject);
        assert!(c.expires_in_days > 300, "{}", c.expires_in_days);
    }
}
