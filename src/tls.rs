//! TLS set-up: loading PEM identities, generating a development certificate, and building
//! rustls server and client configurations on the `ring` provider.
//!
//! The provider is passed explicitly everywhere instead of relying on a process-wide default,
//! so the relay never depends on which crypto backend some other dependency installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain (leaf first) and its private key.
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Why TLS material could not be loaded or a configuration not built. File errors name the
/// file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificates from {}: {source}", path.display())]
    Certificates {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("no PEM certificate found in {}", path.display())]
    NoCertificates { path: PathBuf },
    #[error("cannot read private key from {}: {source}", path.display())]
    PrivateKey {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("no PEM private key found in {}", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("invalid CA certificate in {}: {source}", path.display())]
    CaCertificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("no usable root certificates in the system trust store ({details}); set tls.ca")]
    NoSystemRoots { details: String },
    #[error("cannot generate a self-signed certificate for {hostname}: {source}")]
    Generate {
        hostname: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot set up client certificate verification: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads all certificates of a PEM file, failing if there is none.
fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let cert_err = |source| TlsError::Certificates {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(cert_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(cert_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Loads a PEM certificate chain (leaf first) and the first private key of a PEM file
/// (PKCS#8, PKCS#1 or SEC1). Both may be the same file.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let chain = load_certificates(cert)?;
    let key = match PrivateKeyDer::from_pem_file(key) {
        Ok(k) => k,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::NoPrivateKey {
                path: key.to_owned(),
            })
        }
        Err(source) => {
            return Err(TlsError::PrivateKey {
                path: key.to_owned(),
                source,
            })
        }
    };
    Ok((chain, key))
}

/// Generates a self-signed certificate for development, valid for `hostname` (and for
/// 127.0.0.1 and ::1 when the hostname is `localhost`, so local tools can connect by address).
pub fn self_signed(hostname: &str) -> Result<Identity, TlsError> {
    let gen_err = |source| TlsError::Generate {
        hostname: hostname.to_owned(),
        source,
    };
    let mut names = vec![hostname.to_owned()];
    if hostname.eq_ignore_ascii_case("localhost") {
        names.push("127.0.0.1".to_owned());
        names.push("::1".to_owned());
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(gen_err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let key_pair = rcgen::KeyPair::generate().map_err(gen_err)?;
    let cert = params.self_signed(&key_pair).map_err(gen_err)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    Ok((vec![cert.der().clone()], key))
}

/// Reads a PEM CA bundle into a root store, failing on an empty file or an unusable
/// certificate (a silently ignored anchor would make verification fail later, far from cause).
fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certificates(path)? {
        roots.add(cert).map_err(|source| TlsError::CaCertificate {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

/// Server configuration for TLS listeners: TLS 1.2 and 1.3, no ALPN.
///
/// With `client_ca`, clients are asked for a certificate issued by one of its CAs but may
/// decline (RFC 4976 §9.2: a relay requests, but cannot require, client certificates; clients
/// authenticate with Digest AUTH). A presented certificate that does not verify still fails the
/// handshake.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(path) => {
            let roots = Arc::new(load_roots(path)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(builder.with_single_cert(chain, key)?))
}

/// Client configuration for connections to other relays and to clients' listeners.
///
/// Trust anchors come from `ca` when given, otherwise from the system trust store (an empty
/// store is an error: every outgoing TLS connection would fail). `client_identity` is
/// presented when a peer asks for a client certificate.
pub fn client_config(
    ca: Option<&Path>,
    client_identity: Option<Identity>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = match ca {
        Some(path) => load_roots(path)?,
        None => system_roots()?,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client_identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let details = if found.errors.is_empty() {
            "none found".to_owned()
        } else {
            found
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(TlsError::NoSystemRoots { details });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use rustls_pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    struct Pki {
        dir: tempfile::TempDir,
        ca: PathBuf,
        server_cert: PathBuf,
        server_key: PathBuf,
        client_cert: PathBuf,
        client_key: PathBuf,
    }

    /// A CA, a server leaf for "localhost" and a client leaf, written as PEM files.
    fn make_pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "msrp-relay test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let leaf = |name: &str, eku: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![eku];
            let cert = params.signed_by(&key, &*ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key_pem) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        let (client_pem, client_key_pem) =
            leaf("client.example.com", ExtendedKeyUsagePurpose::ClientAuth);

        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        // Server file holds the chain: leaf then CA.
        let server_cert = write("server.pem", &format!("{server_pem}{}", ca.pem()));
        let server_key = write("server.key", &server_key_pem);
        let client_cert = write("client.pem", &client_pem);
        let client_key = write("client.key", &client_key_pem);
        let ca = write("ca.pem", &ca.pem());
        Pki {
            dir,
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    /// Runs one TLS exchange over 127.0.0.1 and returns whether the server saw a client
    /// certificate.
    async fn handshake(
        server: Arc<rustls::ServerConfig>,
        client: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> Result<bool, std::io::Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let server_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = acceptor.accept(tcp).await?;
            let saw_client_cert = tls.get_ref().1.peer_certificates().is_some();
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await?;
            tls.write_all(&buf).await?;
            tls.shutdown().await?;
            Ok::<_, std::io::Error>(saw_client_cert)
        });
        let connector = tokio_rustls::TlsConnector::from(client);
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        let client_result = async {
            let tcp = TcpStream::connect(addr).await?;
            let mut tls = connector.connect(name, tcp).await?;
            tls.write_all(b"MSRP").await?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await?;
            assert_eq!(&buf, b"MSRP");
            Ok::<_, std::io::Error>(())
        }
        .await;
        let server_result = server_task.await.unwrap();
        client_result?;
        server_result
    }

    #[tokio::test]
    async fn handshake_with_ca_signed_certificates() {
        let pki = make_pki();
        let (chain, key) = load_certified_key(&pki.server_cert, &pki.server_key).unwrap();
        assert_eq!(chain.len(), 2, "leaf and CA");

        // No client CA configured: no client certificate requested.
        let server = server_config(chain.clone(), key.clone_key(), None).unwrap();
        let client = client_config(Some(&pki.ca), None).unwrap();
        assert!(!handshake(server, client, "localhost").await.unwrap());

        // Client CA configured, client without certificate: still accepted (requested only).
        let server = server_config(chain.clone(), key.clone_key(), Some(&pki.ca)).unwrap();
        let client = client_config(Some(&pki.ca), None).unwrap();
        assert!(!handshake(server.clone(), client, "localhost")
            .await
            .unwrap());

        // Client presenting a certificate: the server sees it.
        let identity = load_certified_key(&pki.client_cert, &pki.client_key).unwrap();
        let client = client_config(Some(&pki.ca), Some(identity)).unwrap();
        assert!(handshake(server, client, "localhost").await.unwrap());
    }

    #[tokio::test]
    async fn handshake_fails_for_wrong_name() {
        let pki = make_pki();
        let (chain, key) = load_certified_key(&pki.server_cert, &pki.server_key).unwrap();
        let server = server_config(chain, key, None).unwrap();
        let client = client_config(Some(&pki.ca), None).unwrap();
        assert!(handshake(server, client, "relay.example.com")
            .await
            .is_err());
    }

    #[tokio::test]
    async fn self_signed_certificate_works_when_trusted() {
        let (chain, key) = self_signed("localhost").unwrap();
        assert_eq!(chain.len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("self.pem");
        std::fs::write(&ca, pem_encode(&chain[0])).unwrap();
        let server = server_config(chain, key, None).unwrap();
        let client = client_config(Some(&ca), None).unwrap();
        assert!(!handshake(server, client, "localhost").await.unwrap());
    }

    fn pem_encode(cert: &CertificateDer<'_>) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    #[test]
    fn errors_name_the_file() {
        let pki = make_pki();
        let missing = pki.dir.path().join("missing.pem");
        let err = load_certified_key(&missing, &pki.server_key).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );

        let err = load_certified_key(&pki.server_cert, &missing).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );

        // A key file holding no key, and a certificate file holding no certificate.
        let err = load_certified_key(&pki.server_cert, &pki.ca).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
        assert!(
            err.to_string().contains(&pki.ca.display().to_string()),
            "{err}"
        );
        let err = load_certified_key(&pki.server_key, &pki.server_key).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificates { .. }), "{err}");

        let err = client_config(Some(&missing), None).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        let (chain, key) = load_certified_key(&pki.server_cert, &pki.server_key).unwrap();
        let err = server_config(chain, key, Some(&missing)).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let pki = make_pki();
        let (chain, _) = load_certified_key(&pki.server_cert, &pki.server_key).unwrap();
        let (_, other_key) = load_certified_key(&pki.client_cert, &pki.client_key).unwrap();
        assert!(server_config(chain, other_key, None).is_err());
    }
}
