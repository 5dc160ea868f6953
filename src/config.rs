//! Relay configuration: typed settings loaded in layers (built-in defaults < TOML file <
//! `MSRP_RELAY__SECTION__KEY` environment variables), then validated.
//!
//! Every section denies unknown keys so that a typo is reported (naming the key) instead of
//! silently falling back to a default. Defaults live in the `Default` impls below, which is the
//! "embedded defaults" layer: a key absent from the file and the environment takes its default.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "MSRP_RELAY";
/// Separator between the prefix, the section and the key in environment variable names.
pub const ENV_SEPARATOR: &str = "__";
/// The MSRP port registered with IANA (RFC 4975 §15.5); used by the default listener.
pub const DEFAULT_PORT: u16 = 2855;

/// Why the configuration could not be loaded or is invalid. Every message names the file or
/// the key at fault so an operator can fix it without reading the source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file named on the command line could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML file is syntactically wrong (the message carries line and column).
    #[error("configuration file {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// A key is unknown or has the wrong type (the config crate's message names the key).
    #[error("invalid configuration: {0}")]
    Deserialize(String),
    /// A value is out of range or inconsistent with another one.
    #[error("{message}")]
    Invalid {
        /// Dotted name of the offending key, e.g. `auth.expires_min`.
        key: &'static str,
        /// Full human-readable message; always mentions `key`.
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            message: message.into(),
        }
    }

    /// The dotted key a validation error is about, if it is a validation error.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The whole relay configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub relay: RelayConfig,
    pub listen: Vec<ListenerConfig>,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub dns: DnsConfig,
    pub admin: AdminConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            relay: RelayConfig::default(),
            listen: vec![ListenerConfig {
                transport: Transport::Tls,
                address: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, DEFAULT_PORT)),
            }],
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            dns: DnsConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

/// `[relay]`: identity of this relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// DNS name put in the relay's own MSRP URIs (Use-Path). RFC 4976 §4.2 wants an FQDN so
    /// that clients can check it against the TLS certificate; IP literals are rejected.
    pub hostname: String,
    /// How long in-flight transactions may finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// Threads that run connections; 0 means one per CPU core. Read at start only.
    pub worker_threads: usize,
}

/// The most `relay.worker_threads` may ask for.
pub const MAX_WORKER_THREADS: usize = 1024;

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            hostname: "localhost".to_owned(),
            shutdown_grace_secs: 10,
            worker_threads: 0,
        }
    }
}

/// Transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Plain TCP (`msrp:` URIs); credentials travel in clear text over it.
    Tcp,
    /// TLS (`msrps:` URIs); the normal transport for a relay (RFC 4976 §9).
    Tls,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// One `[[listen]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub transport: Transport,
    /// Socket address to bind, e.g. `[::]:2855` or `127.0.0.1:0`.
    pub address: SocketAddr,
}

/// `[tls]`: server identity and trust anchors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. Absent (with `private_key`) => self-signed at start.
    pub certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching `certificate`.
    pub private_key: Option<PathBuf>,
    /// PEM CA bundle: trust anchors for peer relays and for optional client certificates.
    /// Absent => the system trust store for outgoing connections and no client certificates.
    pub ca: Option<PathBuf>,
}

/// Where the TLS server identity comes from, as decided by the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsIdentitySource<'a> {
    /// No TLS listener: no server identity is needed.
    NotNeeded,
    /// Development mode: generate a self-signed certificate for `relay.hostname` at start.
    SelfSigned,
    /// Load the configured certificate chain and key.
    Files {
        certificate: &'a Path,
        private_key: &'a Path,
    },
}

/// `[auth]`: Digest authentication of clients (RFC 4976 §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Digest realm; defaults to `relay.hostname` (see [`Settings::realm`]).
    pub realm: Option<String>,
    /// htdigest file of users. Absent => development mode with one generated user.
    pub users_file: Option<PathBuf>,
    /// Accept AUTH on plain TCP listeners, where the Digest exchange can be observed.
    pub allow_insecure_tcp: bool,
    /// Smallest Expires (seconds) granted to a client; smaller requests are refused (423).
    pub expires_min: u64,
    /// Expires granted when the client does not ask for one.
    pub expires_default: u64,
    /// Largest Expires granted; larger requests are reduced to this.
    pub expires_max: u64,
    /// How long a Digest nonce stays valid.
    pub nonce_ttl_secs: u64,
    /// Failed AUTH attempts on one connection before it is closed.
    pub max_failures: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            realm: None,
            users_file: None,
            allow_insecure_tcp: false,
            expires_min: 60,
            expires_default: 1800,
            expires_max: 86400,
            nonce_ttl_secs: 300,
            max_failures: 3,
        }
    }
}

/// `[limits]`: resource bounds that protect the relay from slow or hostile peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Time to wait for a transaction response before answering 408 upstream.
    pub transaction_timeout_secs: u64,
    /// Time a new connection has to authenticate or be bound before it is dropped.
    pub probation_secs: u64,
    /// Largest total message (Byte-Range total) accepted, in bytes.
    pub max_message_size: u64,
    /// Largest header block (start line to blank line) of one request, in bytes.
    pub max_header_block: usize,
    /// Largest single header line, in bytes.
    pub max_header_line: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// Most URIs in To-Path plus From-Path.
    pub max_path_uris: usize,
    /// Most simultaneous connections (inbound plus outbound).
    pub max_connections: usize,
    /// Size of the pieces a forwarded body is cut into, in bytes.
    pub chunk_size: usize,
    /// Frames queued per outbound connection before the sender is back-pressured.
    pub write_queue_frames: usize,
    /// Idle time after which an unused outbound connection to a peer is closed.
    pub idle_outbound_secs: u64,
    /// Most outbound connections (to other relays and endpoints) open at once.
    pub max_outbound: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            transaction_timeout_secs: 30,
            probation_secs: 30,
            max_message_size: 4 * 1024 * 1024 * 1024,
            max_header_block: 16384,
            max_header_line: 8192,
            max_headers: 64,
            max_path_uris: 16,
            max_connections: 200_000,
            chunk_size: 65536,
            write_queue_frames: 64,
            idle_outbound_secs: 3600,
            max_outbound: 10_000,
        }
    }
}

impl LimitsConfig {
    pub fn transaction_timeout(&self) -> Duration {
        Duration::from_secs(self.transaction_timeout_secs)
    }
    pub fn probation(&self) -> Duration {
        Duration::from_secs(self.probation_secs)
    }
    pub fn idle_outbound(&self) -> Duration {
        Duration::from_secs(self.idle_outbound_secs)
    }
}

/// Bounds on `limits.chunk_size`: smaller pieces waste framing, larger ones hold the
/// connection (and memory) too long for other sessions.
/// The admin HTTP listener: health, readiness, metrics, and the optional probe API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub enabled: bool,
    pub address: SocketAddr,
    /// `POST /api/msrp/send` and `/api/msrp/connect`: off unless asked for, since they make
    /// outbound connections for whoever can reach the admin port.
    pub probe_api: bool,
    /// Bearer token required by the probe API when set.
    pub token: Option<String>,
    /// Hosts the probe API may connect to; empty means any.
    pub allowed_hosts: Vec<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            address: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 9855)),
            probe_api: false,
            token: None,
            allowed_hosts: Vec::new(),
        }
    }
}

/// Name resolution for next hops (RFC 4975 §6.2, RFC 4976 §8).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Names resolved without DNS, checked first (like /etc/hosts for next hops).
    pub static_hosts: Vec<StaticHost>,
}

/// One static name: `{ name = "relay-b.example.net", addresses = ["192.0.2.7"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticHost {
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

impl DnsConfig {
    /// The static addresses of `name` (case-insensitive), if any.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        let name = name.strip_suffix('.').unwrap_or(name);
        self.static_hosts
            .iter()
            .find(|h| {
                h.name
                    .strip_suffix('.')
                    .unwrap_or(&h.name)
                    .eq_ignore_ascii_case(name)
            })
            .map(|h| h.addresses.as_slice())
    }
}

pub const CHUNK_SIZE_MIN: usize = 1024;
pub const CHUNK_SIZE_MAX: usize = 16 * 1024 * 1024;

impl Settings {
    /// The built-in defaults (development: self-signed TLS on `[::]:2855`, generated user).
    pub fn defaults() -> Settings {
        Settings::default()
    }

    /// Loads defaults < `path` (if given) < `MSRP_RELAY__SECTION__KEY` environment variables,
    /// validates the result and checks that referenced files exist.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_layers(path, None)
    }

    /// Like [`Settings::load`], but the environment layer is taken from `env` (variable name to
    /// value) instead of the process environment, so tests need not mutate global state.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        Self::load_layers(path, Some(env.into_iter().collect()))
    }

    fn load_layers(
        path: Option<&Path>,
        env: Option<config::Map<String, String>>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            // Read the file ourselves: the error then names the path, and the format does not
            // depend on the file's extension.
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                path: path.to_owned(),
                source,
            })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .try_parsing(true)
                .source(env),
        );
        // Only the file source can fail to parse, so a build error is the file's syntax error.
        let merged = builder.build().map_err(|e| match path {
            Some(path) => ConfigError::Syntax {
                path: path.to_owned(),
                message: e.to_string(),
            },
            None => ConfigError::Deserialize(e.to_string()),
        })?;
        let settings: Settings = merged
            .try_deserialize()
            .map_err(|e| ConfigError::Deserialize(e.to_string()))?;
        settings.validate()?;
        settings.check_files()?;
        Ok(settings)
    }

    /// Parses TOML text over the defaults and validates it, without environment overrides and
    /// without touching the files it names. For tests and for checking example files.
    pub fn from_toml_str(text: &str) -> Result<Settings, ConfigError> {
        let merged = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::Deserialize(e.to_string()))?;
        let settings: Settings = merged
            .try_deserialize()
            .map_err(|e| ConfigError::Deserialize(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The Digest realm: `auth.realm`, or `relay.hostname` when unset.
    pub fn realm(&self) -> &str {
        self.auth.realm.as_deref().unwrap_or(&self.relay.hostname)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.relay.shutdown_grace_secs)
    }

    /// True when some listener speaks TLS (and so a server identity is needed).
    pub fn has_tls_listener(&self) -> bool {
        self.listen.iter().any(|l| l.transport == Transport::Tls)
    }

    /// Where the TLS server identity comes from. Call after [`Settings::validate`], which
    /// rejects a certificate without a key and vice versa.
    pub fn tls_identity(&self) -> TlsIdentitySource<'_> {
        match (&self.tls.certificate, &self.tls.private_key) {
            (Some(certificate), Some(private_key)) => TlsIdentitySource::Files {
                certificate,
                private_key,
            },
            _ if self.has_tls_listener() => TlsIdentitySource::SelfSigned,
            _ => TlsIdentitySource::NotNeeded,
        }
    }

    /// One-line description for logs and `check-config`.
    pub fn summary(&self) -> String {
        let listeners: Vec<String> = self
            .listen
            .iter()
            .map(|l| format!("{} {}", l.transport, l.address))
            .collect();
        let tls = match self.tls_identity() {
            TlsIdentitySource::NotNeeded => "no TLS".to_owned(),
            TlsIdentitySource::SelfSigned => "self-signed certificate (development)".to_owned(),
            TlsIdentitySource::Files { certificate, .. } => {
                format!("certificate {}", certificate.display())
            }
        };
        let users = match &self.auth.users_file {
            Some(p) => format!("users from {}", p.display()),
            None => "generated development user".to_owned(),
        };
        format!(
            "hostname {}, realm {}, listeners [{}], {}, {}",
            self.relay.hostname,
            self.realm(),
            listeners.join(", "),
            tls,
            users
        )
    }

    /// Checks ranges and consistency of values. Does not touch the file system.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_hostname("relay.hostname", &self.relay.hostname)?;
        if self.relay.worker_threads > MAX_WORKER_THREADS {
            return Err(ConfigError::invalid(
                "relay.worker_threads",
                format!(
                    "relay.worker_threads ({}) must be at most {MAX_WORKER_THREADS} (0: one per CPU core)",
                    self.relay.worker_threads
                ),
            ));
        }
        if let Some(realm) = &self.auth.realm {
            if realm.is_empty() || realm.contains([':', '"', '\n', '\r']) {
                return Err(ConfigError::invalid(
                    "auth.realm",
                    format!(
                        "auth.realm ({realm:?}) must be non-empty and contain no ':', '\"' or line breaks"
                    ),
                ));
            }
        }

        if self.listen.is_empty() {
            return Err(ConfigError::invalid(
                "listen",
                "listen: at least one [[listen]] entry is required",
            ));
        }
        let mut seen = HashSet::new();
        for (i, l) in self.listen.iter().enumerate() {
            if !seen.insert(l.address) {
                return Err(ConfigError::invalid(
                    "listen",
                    format!(
                        "listen[{i}].address ({}) is already used by another listener",
                        l.address
                    ),
                ));
            }
        }

        match (&self.tls.certificate, &self.tls.private_key) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "tls.private_key",
                    "tls.private_key must be set when tls.certificate is set",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "tls.certificate",
                    "tls.certificate must be set when tls.private_key is set",
                ))
            }
            _ => {}
        }

        let a = &self.auth;
        if a.expires_min < 1 {
            return Err(ConfigError::invalid(
                "auth.expires_min",
                "auth.expires_min must be at least 1",
            ));
        }
        if a.expires_min > a.expires_default {
            return Err(ConfigError::invalid(
                "auth.expires_min",
                format!(
                    "auth.expires_min ({}) must not exceed auth.expires_default ({})",
                    a.expires_min, a.expires_default
                ),
            ));
        }
        if a.expires_default > a.expires_max {
            return Err(ConfigError::invalid(
                "auth.expires_default",
                format!(
                    "auth.expires_default ({}) must not exceed auth.expires_max ({})",
                    a.expires_default, a.expires_max
                ),
            ));
        }
        if a.nonce_ttl_secs < 1 {
            return Err(ConfigError::invalid(
                "auth.nonce_ttl_secs",
                "auth.nonce_ttl_secs must be at least 1",
            ));
        }
        if a.max_failures < 1 {
            return Err(ConfigError::invalid(
                "auth.max_failures",
                "auth.max_failures must be at least 1",
            ));
        }

        let l = &self.limits;
        if l.transaction_timeout_secs < 1 {
            return Err(ConfigError::invalid(
                "limits.transaction_timeout_secs",
                "limits.transaction_timeout_secs must be at least 1",
            ));
        }
        if !(CHUNK_SIZE_MIN..=CHUNK_SIZE_MAX).contains(&l.chunk_size) {
            return Err(ConfigError::invalid(
                "limits.chunk_size",
                format!(
                    "limits.chunk_size ({}) must be between {CHUNK_SIZE_MIN} and {CHUNK_SIZE_MAX}",
                    l.chunk_size
                ),
            ));
        }
        if l.max_header_line > l.max_header_block {
            return Err(ConfigError::invalid(
                "limits.max_header_line",
                format!(
                    "limits.max_header_line ({}) must not exceed limits.max_header_block ({})",
                    l.max_header_line, l.max_header_block
                ),
            ));
        }
        // A value of 0 would make the relay refuse everything; catch it at start instead.
        for (key, value) in [
            ("limits.max_message_size", l.max_message_size),
            ("limits.max_header_line", l.max_header_line as u64),
            ("limits.max_headers", l.max_headers as u64),
            ("limits.max_connections", l.max_connections as u64),
            ("limits.write_queue_frames", l.write_queue_frames as u64),
        ] {
            if value < 1 {
                return Err(ConfigError::invalid(
                    key,
                    format!("{key} must be at least 1"),
                ));
            }
        }
        // To-Path always has at least the relay and one more hop.
        if l.max_path_uris < 2 {
            return Err(ConfigError::invalid(
                "limits.max_path_uris",
                format!(
                    "limits.max_path_uris ({}) must be at least 2",
                    l.max_path_uris
                ),
            ));
        }
        Ok(())
    }

    /// Checks that files the configuration depends on can be opened, so a wrong path fails at
    /// start (naming the key) rather than at the first client.
    fn check_files(&self) -> Result<(), ConfigError> {
        let files = [
            ("auth.users_file", &self.auth.users_file),
            ("tls.certificate", &self.tls.certificate),
            ("tls.private_key", &self.tls.private_key),
            ("tls.ca", &self.tls.ca),
        ];
        for (key, path) in files {
            if let Some(path) = path {
                if let Err(e) = std::fs::File::open(path) {
                    return Err(ConfigError::invalid(
                        key,
                        format!("{key} ({}) cannot be opened: {e}", path.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Accepts a DNS name (RFC 1123 labels: letters, digits, '-'; no leading/trailing '-';
/// at most 63 octets per label, 253 in total; an optional trailing dot). IP literals are refused
/// because RFC 4976 §4.2 requires the relay's URI to carry a name its certificate can match.
fn validate_hostname(key: &'static str, name: &str) -> Result<(), ConfigError> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return Err(ConfigError::invalid(
            key,
            format!("{key} ({name:?}) must be a DNS name, not an IP address (RFC 4976 §4.2)"),
        ));
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let bad = |why: &str| {
        Err(ConfigError::invalid(
            key,
            format!("{key} ({name:?}) is not a valid DNS name: {why}"),
        ))
    };
    if trimmed.is_empty() {
        return bad("it is empty");
    }
    if trimmed.len() > 253 {
        return bad("longer than 253 characters");
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return bad("empty label");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
    }
    // A name whose last label is all digits would be read as an IPv4 address by many resolvers.
    if trimmed
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("the last label is numeric");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex;

    /// Serialises the tests that read (or write) the process environment.
    static PROCESS_ENV: Mutex<()> = Mutex::new(());

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn invalid(text: &str) -> ConfigError {
        Settings::from_toml_str(text).unwrap_err()
    }

    /// Asserts a validation error about `key` whose message names the key.
    fn assert_invalid(text: &str, key: &str) {
        let err = invalid(text);
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains(key), "{err}");
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let s = Settings::defaults();
        s.validate().unwrap();
        assert_eq!(s.relay.hostname, "localhost");
        assert_eq!(s.relay.shutdown_grace_secs, 10);
        assert_eq!(
            s.listen,
            vec![ListenerConfig {
                transport: Transport::Tls,
                address: "[::]:2855".parse().unwrap()
            }]
        );
        assert_eq!(s.realm(), "localhost");
        assert_eq!(s.tls_identity(), TlsIdentitySource::SelfSigned);
        assert_eq!(s.auth.expires_min, 60);
        assert_eq!(s.auth.expires_default, 1800);
        assert_eq!(s.auth.expires_max, 86400);
        assert_eq!(s.auth.nonce_ttl_secs, 300);
        assert_eq!(s.auth.max_failures, 3);
        assert!(!s.auth.allow_insecure_tcp);
        assert_eq!(s.limits.max_message_size, 4294967296);
        assert_eq!(s.limits.chunk_size, 65536);
        // An empty file yields the defaults too.
        let empty = Settings::from_toml_str("").unwrap();
        assert_eq!(empty.listen, s.listen);
    }

    #[test]
    fn example_file_parses_and_validates() {
        let s = Settings::from_toml_str(include_str!("../config/msrp-relay.toml")).unwrap();
        assert_eq!(s.listen.len(), 1);
        assert_eq!(s.listen[0].transport, Transport::Tls);
        assert_eq!(s.listen[0].address.port(), DEFAULT_PORT);
        assert!(matches!(s.tls_identity(), TlsIdentitySource::Files { .. }));
        assert!(s.auth.users_file.is_some());
    }

    #[test]
    fn file_values_override_defaults() {
        let s = Settings::from_toml_str(
            r#"
            [relay]
            hostname = "relay.example.com"
            [[listen]]
            transport = "tcp"
            address = "127.0.0.1:0"
            [[listen]]
            transport = "tls"
            address = "[::1]:2856"
            [auth]
            realm = "example.com"
            allow_insecure_tcp = true
            [limits]
            chunk_size = 2048
            "#,
        )
        .unwrap();
        assert_eq!(s.relay.hostname, "relay.example.com");
        assert_eq!(
            s.relay.shutdown_grace_secs, 10,
            "untouched key keeps default"
        );
        assert_eq!(s.listen.len(), 2, "file listeners replace the default one");
        assert_eq!(s.listen[0].transport, Transport::Tcp);
        assert_eq!(s.realm(), "example.com");
        assert!(s.auth.allow_insecure_tcp);
        assert_eq!(s.limits.chunk_size, 2048);
    }

    #[test]
    fn realm_defaults_to_hostname() {
        let s = Settings::from_toml_str("[relay]\nhostname = \"relay.example.org\"").unwrap();
        assert_eq!(s.realm(), "relay.example.org");
    }

    #[test]
    fn unknown_keys_are_rejected_naming_them() {
        let err = invalid("[relay]\nhostnme = \"x.example\"");
        assert!(err.to_string().contains("hostnme"), "{err}");
        let err = invalid("[limits]\nchunk_sise = 4096");
        assert!(err.to_string().contains("chunk_sise"), "{err}");
        let err = invalid("[[listen]]\ntransport = \"tls\"\naddress = \"[::]:1\"\nport = 3");
        assert!(err.to_string().contains("port"), "{err}");
        let err = invalid("[relais]\nhostname = \"x.example\"");
        assert!(err.to_string().contains("relais"), "{err}");
    }

    #[test]
    fn wrong_types_are_rejected_naming_the_key() {
        let err = invalid("[auth]\nexpires_min = \"soon\"");
        assert!(err.to_string().contains("expires_min"), "{err}");
        let err = invalid("[[listen]]\ntransport = \"udp\"\naddress = \"[::]:1\"");
        assert!(err.to_string().contains("udp"), "{err}");
        let err = invalid("[[listen]]\ntransport = \"tcp\"\naddress = \"nowhere\"");
        assert!(err.to_string().contains("address"), "{err}");
    }

    #[test]
    fn expires_ordering_is_enforced() {
        let err = invalid("[auth]\nexpires_min = 900\nexpires_default = 600");
        assert_eq!(
            err.to_string(),
            "auth.expires_min (900) must not exceed auth.expires_default (600)"
        );
        assert_invalid(
            "[auth]\nexpires_default = 90000\nexpires_max = 86400",
            "auth.expires_default",
        );
        assert_invalid("[auth]\nexpires_min = 0", "auth.expires_min");
        // Equal values are fine.
        Settings::from_toml_str("[auth]\nexpires_min = 5\nexpires_default = 5\nexpires_max = 5")
            .unwrap();
    }

    #[test]
    fn listeners_are_checked() {
        assert_invalid("listen = []", "listen");
        assert_invalid(
            "[[listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
             [[listen]]\ntransport = \"tls\"\naddress = \"127.0.0.1:9\"",
            "listen",
        );
    }

    #[test]
    fn limits_are_checked() {
        assert_invalid("[limits]\nchunk_size = 1023", "limits.chunk_size");
        assert_invalid("[limits]\nchunk_size = 16777217", "limits.chunk_size");
        Settings::from_toml_str("[limits]\nchunk_size = 1024").unwrap();
        Settings::from_toml_str("[limits]\nchunk_size = 16777216").unwrap();
        assert_invalid(
            "[limits]\ntransaction_timeout_secs = 0",
            "limits.transaction_timeout_secs",
        );
        assert_invalid(
            "[limits]\nmax_header_line = 20000\nmax_header_block = 10000",
            "limits.max_header_line",
        );
        assert_invalid("[limits]\nmax_connections = 0", "limits.max_connections");
        assert_invalid("[limits]\nmax_path_uris = 1", "limits.max_path_uris");
        assert_invalid("[auth]\nmax_failures = 0", "auth.max_failures");
        assert_invalid("[auth]\nnonce_ttl_secs = 0", "auth.nonce_ttl_secs");
        assert_invalid("[relay]\nworker_threads = 1025", "relay.worker_threads");
        let s = Settings::from_toml_str("[relay]\nworker_threads = 1").unwrap();
        assert_eq!(s.relay.worker_threads, 1);
        assert_eq!(Settings::defaults().relay.worker_threads, 0);
    }

    #[test]
    fn hostname_must_be_a_dns_name() {
        for bad in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "",
            "relay_1.example.com",
            "-relay.example.com",
            "relay..example.com",
            "relay.example.com:2855",
            "10.0.0.256",
        ] {
            let text = format!("[relay]\nhostname = {bad:?}");
            assert_invalid(&text, "relay.hostname");
        }
        let err = invalid("[relay]\nhostname = \"192.0.2.1\"");
        assert!(err.to_string().contains("not an IP address"), "{err}");
        for good in [
            "localhost",
            "relay.example.com",
            "relay.example.com.",
            "r-1.example",
        ] {
            let text = format!("[relay]\nhostname = {good:?}");
            Settings::from_toml_str(&text).unwrap();
        }
    }

    #[test]
    fn tls_certificate_and_key_go_together() {
        assert_invalid("[tls]\ncertificate = \"/x/cert.pem\"", "tls.private_key");
        assert_invalid("[tls]\nprivate_key = \"/x/key.pem\"", "tls.certificate");
        let s = Settings::from_toml_str(
            "[tls]\ncertificate = \"/x/cert.pem\"\nprivate_key = \"/x/key.pem\"",
        )
        .unwrap();
        assert_eq!(
            s.tls_identity(),
            TlsIdentitySource::Files {
                certificate: Path::new("/x/cert.pem"),
                private_key: Path::new("/x/key.pem")
            }
        );
        let tcp_only =
            Settings::from_toml_str("[[listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:0\"")
                .unwrap();
        assert_eq!(tcp_only.tls_identity(), TlsIdentitySource::NotNeeded);
    }

    #[test]
    fn realm_must_be_usable_in_htdigest_and_digest() {
        assert_invalid("[auth]\nrealm = \"a:b\"", "auth.realm");
        assert_invalid("[auth]\nrealm = \"\"", "auth.realm");
    }

    #[test]
    fn load_reports_missing_file_by_path() {
        let err =
            Settings::load_with_env(Some(Path::new("/nonexistent/relay.toml")), []).unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }));
        assert!(err.to_string().contains("/nonexistent/relay.toml"), "{err}");
    }

    #[test]
    fn load_reports_syntax_error_with_path() {
        let f = toml_file("[relay\nhostname = 1");
        let err = Settings::load_with_env(Some(f.path()), []).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
        assert!(
            err.to_string().contains(&f.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn load_checks_that_users_file_exists() {
        let f = toml_file("[auth]\nusers_file = \"/nonexistent/users.htdigest\"");
        let err = Settings::load_with_env(Some(f.path()), []).unwrap_err();
        assert_eq!(err.key(), Some("auth.users_file"), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/users.htdigest"),
            "{err}"
        );

        let users = toml_file("alice:localhost:228077dd83232f11146688d20e4810da\n");
        let f = toml_file(&format!(
            "[auth]\nusers_file = {:?}",
            users.path().display().to_string()
        ));
        let s = Settings::load_with_env(Some(f.path()), []).unwrap();
        assert_eq!(s.auth.users_file.as_deref(), Some(users.path()));
    }

    #[test]
    fn environment_overrides_file_and_parses_types() {
        let f = toml_file("[relay]\nhostname = \"file.example.com\"\n[auth]\nexpires_max = 7200");
        let s = Settings::load_with_env(
            Some(f.path()),
            env(&[
                ("MSRP_RELAY__RELAY__HOSTNAME", "env.example.com"),
                ("MSRP_RELAY__AUTH__ALLOW_INSECURE_TCP", "true"),
                ("MSRP_RELAY__LIMITS__CHUNK_SIZE", "4096"),
                ("MSRP_RELAY__AUTH__MAX_FAILURES", "5"),
                ("UNRELATED", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(s.relay.hostname, "env.example.com");
        assert!(s.auth.allow_insecure_tcp);
        assert_eq!(s.limits.chunk_size, 4096);
        assert_eq!(s.auth.max_failures, 5);
        assert_eq!(
            s.auth.expires_max, 7200,
            "file value kept when env is silent"
        );
    }

    #[test]
    fn environment_typos_and_bad_values_name_the_key() {
        let err = Settings::load_with_env(None, env(&[("MSRP_RELAY__AUTH__EXPIRES_MAXX", "5")]))
            .unwrap_err();
        assert!(err.to_string().contains("expires_maxx"), "{err}");
        let err = Settings::load_with_env(None, env(&[("MSRP_RELAY__LIMITS__CHUNK_SIZE", "big")]))
            .unwrap_err();
        assert!(err.to_string().contains("chunk_size"), "{err}");
        let err = Settings::load_with_env(None, env(&[("MSRP_RELAY__LIMITS__CHUNK_SIZE", "100")]))
            .unwrap_err();
        assert_eq!(err.key(), Some("limits.chunk_size"));
    }

    #[test]
    fn process_environment_is_read_by_load() {
        let _guard = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
        let key = "MSRP_RELAY__RELAY__SHUTDOWN_GRACE_SECS";
        std::env::set_var(key, "42");
        let result = Settings::load(None);
        std::env::remove_var(key);
        assert_eq!(result.unwrap().relay.shutdown_grace_secs, 42);
    }
}
