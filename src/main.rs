//! msrp-relay entry point: parses the command line, sets up logging and dispatches.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error (as clap uses 2
//! for usage errors, so scripts can tell "fix your config" from "it crashed").

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use msrp_relay::cli::{self, Cli, Command};
use msrp_relay::config::{Settings, TlsIdentitySource};
use msrp_relay::credentials::UsersFile;
use msrp_relay::{logging, tls};

/// mimalloc: per-message allocations (heads, frames) and per-read buffers are its sweet spot,
/// and it returns memory to the OS more readily than glibc after connection storms. Called
/// through `alloc::RelayAlloc`, which avoids its slow aligned path (see there).
#[global_allocator]
static GLOBAL: msrp_relay::alloc::RelayAlloc = msrp_relay::alloc::RelayAlloc;

/// Exit code for configuration errors.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.effective_command() {
        Command::Serve => match load_settings(cli.config.as_deref()) {
            Ok(settings) => serve(settings, cli.config.clone()),
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
        Command::Send(args) => msrp_relay::commands::send::main(args),
        Command::Probe(args) => msrp_relay::commands::probe::main(args),
        Command::Listen(args) => msrp_relay::commands::listen::main(args),
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

/// Runs the relay until SIGTERM or SIGINT.
fn serve(settings: Settings, config_path: Option<PathBuf>) -> ExitCode {
    no_transparent_huge_pages();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // 0 keeps tokio's default: one worker per core (or TOKIO_WORKER_THREADS).
    if settings.relay.worker_threads > 0 {
        builder.worker_threads(settings.relay.worker_threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("msrp-relay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match run(settings, config_path).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                eprintln!("msrp-relay: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Transparent huge pages off for this process. mimalloc asks for them on its memory
/// (MADV_HUGEPAGE), so a page fault there zeroes 2 MiB at once, after compacting memory if
/// none is free: measured as one stall of 20-90 ms in most 3-second runs at 100k msgs/s,
/// and 4% of the relay's CPU at paced load (BENCHMARKS.md, "Fifth round").
/// The flag covers memory already mapped; pages that are huge stay so.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off (prctl PR_SET_THP_DISABLE); latency may show stalls");
    }
}

/// A random password for the development user: 20 alphanumerics.
fn dev_password() -> String {
    use rand::Rng as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

async fn run(settings: Settings, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use msrp_relay::relay::{Loaded, Relay};
    use tokio::signal::unix::{signal, SignalKind};
    // Handlers first: a SIGTERM that arrives while starting must still be a clean stop.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let realm = settings.realm().to_owned();
    let loaded = Loaded::load(settings, true)?;
    let users = match loaded.users {
        Some(users) => users,
        None => {
            let password = dev_password();
            // Printed once, on stderr, so a newcomer can AUTH right away.
            eprintln!(
                "msrp-relay: DEVELOPMENT SETUP: user \"dev\" with password \"{password}\" (realm \"{realm}\"); set auth.users_file for production"
            );
            UsersFile::single("dev", &realm, &password)
        }
    };
    if !loaded.development.is_empty() {
        tracing::warn!(
            "DEVELOPMENT SETUP, NOT FOR PRODUCTION: this relay runs with {}",
            loaded.development.join(" and ")
        );
    }
    let relay = Relay::bind(loaded.settings, users, loaded.tls)
        .await
        .context("cannot start the relay")?;
    let handle = relay.start();
    // systemd Type=notify: the listeners are bound (no-op outside systemd).
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
            _ = int.recv() => { tracing::info!("SIGINT received"); break; }
            _ = hup.recv() => reload(handle.shared(), config_path.as_deref()),
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let grace = handle.shared().settings().shutdown_grace();
    tracing::info!(
        "shutting down: no new connections, finishing messages in progress (grace {grace:?})"
    );
    handle.shutdown_gracefully(grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: reload the configuration file, the users file and the certificates. Established
/// connections are untouched; a reload that fails keeps everything as it was.
fn reload(shared: &msrp_relay::relay::Shared, config_path: Option<&Path>) {
    let mut states = vec![sd_notify::NotifyState::Reloading];
    if let Ok(now) = sd_notify::NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    let _ = sd_notify::notify(false, &states);
    let result = Settings::load(config_path)
        .map_err(anyhow::Error::from)
        .and_then(|s| msrp_relay::relay::Loaded::load(s, false));
    match result {
        Ok(loaded) => {
            shared.reload(loaded);
            tracing::info!("configuration reloaded");
        }
        Err(e) => tracing::error!("reload failed, keeping the running configuration: {e:#}"),
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}
