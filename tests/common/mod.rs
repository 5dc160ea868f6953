//! Test support: a test CA made with rcgen, relays started in-process on 127.0.0.1 with
//! ephemeral ports and real TLS, and clients that trust the test CA.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use msrp_proto::MsrpUri;
use msrp_relay::client::{AuthGrant, Connection};
use msrp_relay::config::{ListenerConfig, Settings, Transport};
use msrp_relay::credentials::UsersFile;
use msrp_relay::relay::{Relay, RelayHandle, TlsSetup};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

pub const T: Duration = Duration::from_secs(5);
pub const USER: &str = "Alice";
pub const PASSWORD: &str = "secret";

/// A CA and leaf certificates written as PEM files in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "msrp-relay test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, issuer.pem()).unwrap();
        Pki {
            dir,
            ca_pem,
            issuer,
        }
    }

    /// A leaf for `name` (a dNSName SAN), as (certificate chain path, key path).
    pub fn leaf(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        let cert_path = self.dir.path().join(format!("{name}.pem"));
        let key_path = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.issuer.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        msrp_relay::tls::client_config(Some(&self.ca_pem), None).unwrap()
    }
}

pub struct TestRelay {
    pub handle: RelayHandle,
    pub pki: Arc<Pki>,
    pub hostname: String,
}

/// Settings for a relay named `hostname` with a TLS and a TCP listener on 127.0.0.1:0.
pub fn settings(hostname: &str) -> Settings {
    let mut s = Settings::defaults();
    s.relay.hostname = hostname.to_owned();
    s.admin.address = "127.0.0.1:0".parse().unwrap();
    s.listen = vec![
        ListenerConfig {
            transport: Transport::Tls,
            address: "127.0.0.1:0".parse().unwrap(),
        },
        ListenerConfig {
            transport: Transport::Tcp,
            address: "127.0.0.1:0".parse().unwrap(),
        },
    ];
    s
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestRelay {
        Self::start_in(Arc::new(Pki::new()), "relay.example.com", tweak).await
    }

    /// A relay named `hostname` with a certificate from `pki`, requesting client
    /// certificates from that CA and presenting its own when it dials (mutual TLS).
    pub async fn start_in(
        pki: Arc<Pki>,
        hostname: &str,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestRelay {
        let hostname = hostname.to_owned();
        let mut s = settings(&hostname);
        s.tls.ca = Some(pki.ca_pem.clone());
        tweak(&mut s);
        let (cert, key) = pki.leaf(&hostname);
        let (chain, key) = msrp_relay::tls::load_certified_key(&cert, &key).unwrap();
        let tls = TlsSetup {
            server: Some(
                msrp_relay::tls::server_config(chain.clone(), key.clone_key(), s.tls.ca.as_deref())
                    .unwrap(),
            ),
            client: Some(
                msrp_relay::tls::client_config(s.tls.ca.as_deref(), Some((chain, key))).unwrap(),
            ),
        };
        let users = UsersFile::single(USER, s.realm(), PASSWORD);
        let relay = Relay::bind(s, users, tls).await.unwrap();
        TestRelay {
            handle: relay.start(),
            pki,
            hostname,
        }
    }

    pub fn tls_addr(&self) -> SocketAddr {
        self.handle.addr(Transport::Tls).unwrap()
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.handle.addr(Transport::Tcp).unwrap()
    }

    /// The URI an AUTH addresses this relay by (RFC 4976 §5.1: no port is fine).
    pub fn auth_uri(&self) -> MsrpUri {
        format!("msrps://{}@{};tcp", USER.to_lowercase(), self.hostname)
            .parse()
            .unwrap()
    }

    pub async fn connect(&self) -> Connection {
        Connection::connect_tls(self.tls_addr(), &self.hostname, self.pki.client_config())
            .await
            .unwrap()
    }

    pub async fn connect_tcp(&self) -> Connection {
        Connection::connect_tcp(self.tcp_addr()).await.unwrap()
    }

    /// A new TLS connection authenticated as `me`.
    pub async fn client(&self, me: &str) -> (Connection, AuthGrant, MsrpUri) {
        let mut c = self.connect().await;
        let me: MsrpUri = me.parse().unwrap();
        let grant = c
            .auth(&self.auth_uri(), &me, USER, PASSWORD, None, T)
            .await
            .unwrap();
        (c, grant, me)
    }
}

/// A URI from text.
pub fn uri(s: &str) -> MsrpUri {
    s.parse().unwrap()
}

pub const ALICE: &str = "msrps://alice.example.org:7965/bar;tcp";
pub const BOB: &str = "msrps://bob.example.net:8145/foo;tcp";

/// Alice and Bob, both clients of `relay`, and Alice's To-Path toward Bob
/// (`<A token> <B token> <bob>`, RFC 7977 §8.3.2).
pub async fn alice_and_bob(relay: &TestRelay) -> (Connection, Connection, Vec<MsrpUri>, MsrpUri) {
    let (alice, a, alice_uri) = relay.client(ALICE).await;
    let (bob, b, bob_uri) = relay.client(BOB).await;
    let to = vec![a.use_path[0].clone(), b.use_path[0].clone(), bob_uri];
    (alice, bob, to, alice_uri)
}
