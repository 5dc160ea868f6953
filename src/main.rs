//! msrp-relay entry point: parses the command line, sets up logging and dispatches.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error (as clap uses 2
//! for usage errors, so scripts can tell "fix your config" from "it crashed").

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use msrp_relay::cli::{self, Cli, Command};
use msrp_relay::config::{Settings, TlsIdentitySource};
use msrp_relay::credentials::UsersFile;
use msrp_relay::{logging, tls};

/// Exit code for configuration errors.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.effective_command() {
        Command::Serve => match load_settings(cli.config.as_deref()) {
            Ok(settings) => serve(settings),
            Err(code) => code,
        },
        Command::CheckConfig => {
            let Some(path) = cli.config.as_deref() else {
                <Cli as CommandFactory>::command()
                    .error(
                        clap::error::ErrorKind::MissingRequiredArgument,
                        "check-config requires --config <FILE>",
                    )
                    .exit()
            };
            check_config(path)
        }
        Command::HashPassword(args) => match cli::hash_password(&args) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("msrp-relay: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Loads the configuration, printing the error (which names the key) on failure.
fn load_settings(path: Option<&Path>) -> Result<Settings, ExitCode> {
    Settings::load(path).map_err(|e| {
        eprintln!("msrp-relay: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Validates the configuration and also parses the files it names (users, certificate, key,
/// CA), so that `check-config` catches everything that would stop `serve` at start.
fn check_config(path: &Path) -> ExitCode {
    let settings = match load_settings(Some(path)) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match check_referenced_files(&settings) {
        Ok(Some(users)) => {
            println!(
                "configuration OK: {} ({users} in realm {})",
                settings.summary(),
                settings.realm()
            );
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("configuration OK: {}", settings.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("msrp-relay: {e:#}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Returns the number of users in the relay's realm when a users file is configured.
fn check_referenced_files(settings: &Settings) -> anyhow::Result<Option<usize>> {
    let mut users_in_realm = None;
    if let Some(users_file) = &settings.auth.users_file {
        let users = UsersFile::load(users_file)?;
        let realm = settings.realm();
        let count = users.users_in_realm(realm);
        if count == 0 {
            anyhow::bail!(
                "auth.users_file ({}) has no user in realm {realm:?} (auth.realm, default \
                 relay.hostname); nobody could authenticate",
                users_file.display()
            );
        }
        users_in_realm = Some(count);
    }
    if let TlsIdentitySource::Files {
        certificate,
        private_key,
    } = settings.tls_identity()
    {
        let (chain, key) = tls::load_certified_key(certificate, private_key)?;
        tls::server_config(chain, key, settings.tls.ca.as_deref())?;
    }
    if let Some(ca) = &settings.tls.ca {
        tls::client_config(Some(ca), None)?;
    }
    Ok(users_in_realm)
}

/// Runs the relay. Placeholder until the relay core is wired in.
fn serve(settings: Settings) -> ExitCode {
    tracing::info!(config = %settings.summary(), "configuration loaded");
    eprintln!("msrp-relay: serving is not wired yet");
    ExitCode::FAILURE
}
