//! Command line: `msrp-relay [--log-format text|json] [--config FILE] [COMMAND]`.
//!
//! `--config` is global so that both `msrp-relay --config FILE` (serve is the default
//! command, as a systemd unit would run it) and `msrp-relay check-config --config FILE` work.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::credentials::ha1_hex;
use crate::logging::LogFormat;

/// Realm used by `hash-password` when none is given; matches the default `relay.hostname`.
pub const DEFAULT_REALM: &str = "localhost";

#[derive(Debug, Parser)]
#[command(
    name = "msrp-relay",
    version,
    about = "MSRP relay (RFC 4975, RFC 4976)"
)]
pub struct Cli {
    /// Format of log lines on stderr.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Configuration file (TOML). Without it, built-in defaults and MSRP_RELAY__* variables
    /// are used.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the relay (the default when no command is given).
    Serve,
    /// Load and validate the configuration (requires --config), then exit.
    CheckConfig,
    /// Print an htdigest line `user:realm:HA1` for the users file.
    HashPassword(HashPasswordArgs),
    /// Client: AUTH to a relay and send one message through it (exit 0 ok, 1 error answer,
    /// 2 usage, 3 network or TLS).
    Send(crate::commands::send::SendArgs),
    /// Client: connect to a relay, optionally AUTH, report timings and the certificate.
    Probe(crate::commands::probe::ProbeArgs),
    /// Client: AUTH to a relay, print the To-Path that reaches this listener, receive messages.
    Listen(crate::commands::listen::ListenArgs),
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct HashPasswordArgs {
    /// User name.
    #[arg(long)]
    pub user: String,
    /// Digest realm; must equal the relay's auth.realm (default: relay.hostname).
    /// Defaults to "localhost".
    #[arg(long)]
    pub realm: Option<String>,
    /// Read the password from the first line of this file instead of the terminal or stdin.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

impl Cli {
    /// The command to run: `serve` when none was given.
    pub fn effective_command(&self) -> Command {
        self.command.clone().unwrap_or(Command::Serve)
    }
}

/// Builds the htdigest line for `args`, reading the password from `--password-file`, from
/// the terminal (without echo, asked twice), or from the first line of stdin when stdin is not
/// a terminal (for scripts). Notes go to stderr so stdout holds only the line.
pub fn hash_password(args: &HashPasswordArgs) -> anyhow::Result<String> {
    let realm = match &args.realm {
        Some(r) => r.clone(),
        None => {
            eprintln!(
                "note: no --realm given, using {DEFAULT_REALM:?}; it must match the relay's \
                 auth.realm (which defaults to relay.hostname)"
            );
            DEFAULT_REALM.to_owned()
        }
    };
    check_field("user", &args.user)?;
    check_field("realm", &realm)?;
    let password = match &args.password_file {
        Some(path) => read_password_file(path)?,
        None if std::io::stdin().is_terminal() => read_password_tty()?,
        None => first_line(std::io::stdin().lock()).context("cannot read password from stdin")?,
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(format!(
        "{}:{}:{}",
        args.user,
        realm,
        ha1_hex(&args.user, &realm, &password)
    ))
}

/// htdigest fields are separated by ':' and lines by newlines, so neither may appear in them.
fn check_field(what: &str, value: &str) -> anyhow::Result<()> {
    if value.is_empty() {
        bail!("the {what} is empty");
    }
    if value.contains([':', '\n', '\r']) {
        bail!("the {what} {value:?} must not contain ':' or line breaks");
    }
    Ok(())
}

fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open password file {}", path.display()))?;
    first_line(std::io::BufReader::new(file))
        .with_context(|| format!("cannot read password file {}", path.display()))
}

fn read_password_tty() -> anyhow::Result<String> {
    let first = rpassword::prompt_password("Password: ").context("cannot read password")?;
    let again = rpassword::prompt_password("Retype password: ").context("cannot read password")?;
    if first != again {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// The first line without its line terminator (`\n` or `\r\n`).
fn first_line(mut reader: impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn clap_definition_is_consistent() {
        <Cli as CommandFactory>::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default_and_config_is_global() {
        let cli = parse(&["msrp-relay", "--config", "/etc/r.toml"]);
        assert_eq!(cli.effective_command(), Command::Serve);
        assert_eq!(cli.config.as_deref(), Some(Path::new("/etc/r.toml")));
        assert_eq!(cli.log_format, LogFormat::Text);

        let cli = parse(&[
            "msrp-relay",
            "serve",
            "--config",
            "a.toml",
            "--log-format",
            "json",
        ]);
        assert_eq!(cli.effective_command(), Command::Serve);
        assert_eq!(cli.config.as_deref(), Some(Path::new("a.toml")));
        assert_eq!(cli.log_format, LogFormat::Json);

        let cli = parse(&["msrp-relay", "check-config", "--config", "b.toml"]);
        assert_eq!(cli.effective_command(), Command::CheckConfig);
        assert_eq!(cli.config.as_deref(), Some(Path::new("b.toml")));

        let cli = parse(&["msrp-relay"]);
        assert_eq!(cli.effective_command(), Command::Serve);
        assert!(cli.config.is_none());
    }

    #[test]
    fn hash_password_arguments() {
        let cli = parse(&["msrp-relay", "hash-password", "--user", "alice"]);
        assert_eq!(
            cli.effective_command(),
            Command::HashPassword(HashPasswordArgs {
                user: "alice".into(),
                realm: None,
                password_file: None
            })
        );
        assert!(Cli::try_parse_from(["msrp-relay", "hash-password"]).is_err());
        assert!(Cli::try_parse_from(["msrp-relay", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn hash_password_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "secret\r\nignored second line\n").unwrap();
        let line = hash_password(&HashPasswordArgs {
            user: "Alice".into(),
            realm: Some("intra.example.com".into()),
            password_file: Some(path.clone()),
        })
        .unwrap();
        assert_eq!(
            line,
            "Alice:intra.example.com:228077dd83232f11146688d20e4810da"
        );

        let line = hash_password(&HashPasswordArgs {
            user: "Alice".into(),
            realm: None,
            password_file: Some(path.clone()),
        })
        .unwrap();
        assert!(line.starts_with("Alice:localhost:"), "{line}");

        let bad_user = hash_password(&HashPasswordArgs {
            user: "a:b".into(),
            realm: None,
            password_file: Some(path),
        });
        assert!(bad_user.is_err());

        let missing = dir.path().join("missing");
        let err = hash_password(&HashPasswordArgs {
            user: "Alice".into(),
            realm: None,
            password_file: Some(missing.clone()),
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains(&missing.display().to_string()),
            "{err:#}"
        );

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(hash_password(&HashPasswordArgs {
            user: "Alice".into(),
            realm: None,
            password_file: Some(empty),
        })
        .is_err());
    }

    #[test]
    fn first_line_strips_terminators() {
        assert_eq!(first_line(&b"pw\n"[..]).unwrap(), "pw");
        assert_eq!(first_line(&b"pw\r\nmore"[..]).unwrap(), "pw");
        assert_eq!(first_line(&b"pw"[..]).unwrap(), "pw");
        assert_eq!(first_line(&b" pw "[..]).unwrap(), " pw ", "spaces are kept");
    }
}
