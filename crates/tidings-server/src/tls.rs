//! TLS termination for servers without a proxy in front: certificate and key from PEM files, reloaded on SIGHUP.

use std::path::Path;
use std::sync::{Arc, Once};

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tracing::{info, warn};

use crate::config::TlsConfig;

/// Reads the certificate chain and key into a server configuration that speaks HTTP/1.1 only: WebSocket
/// upgrades are an HTTP/1.1 affair, and ALPN must not lead a browser into HTTP/2 for them.
pub fn server_config(tls: &TlsConfig) -> anyhow::Result<ServerConfig> {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Fails only if another provider is already the default, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let certs = read_certificates(&tls.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| anyhow::anyhow!("cannot read the private key in {}: {e}", tls.key_file.display()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("the certificate and key do not work together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("cannot read the certificates in {}: {e}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

/// Reloads the certificate and key whenever the process receives SIGHUP; a bad pair keeps the old one.
pub fn reload_on_hangup(tls: TlsConfig, rustls: RustlsConfig) {
    // The handler is in place before this returns: a SIGHUP from then on reloads, never kills the process.
    #[cfg(unix)]
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return warn!("cannot listen for SIGHUP; TLS certificates will not be reloaded");
    };
    #[cfg(unix)]
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match server_config(&tls) {
                Ok(config) => {
                    rustls.reload_from_config(Arc::new(config));
                    info!("reloaded the TLS certificate from {}", tls.cert_file.display());
                }
                Err(error) => warn!("kept the old TLS certificate: {error:#}"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (tls, rustls);
}
