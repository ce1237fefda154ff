//! TLS termination: a `wss://` client connects with a test certificate, and SIGHUP swaps the certificate.
//! This file is its own process, since it signals the process.

mod common;

use std::sync::Arc;

use common::{TestServer, PATIENCE};
use futures_util::{SinkExt, StreamExt};
use rcgen::{CertifiedKey, KeyPair};
use serde_json::{json, Value};
use tidings_server::config::TlsConfig;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate for 127.0.0.1, written to `dir` as PEM files.
fn certificate(dir: &std::path::Path) -> CertificateDer<'static> {
    let key = KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("self-signed");
    let CertifiedKey { cert, signing_key } = CertifiedKey { cert, signing_key: key };
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).expect("write key");
    cert.der().clone()
}

/// Opens a `wss://` connection trusting only `trusted`, sends `connect`, and returns the reply's type.
async fn connect_over_tls(server: &TestServer, trusted: &CertificateDer<'static>) -> Result<String, String> {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).map_err(|e| e.to_string())?;
    let config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| e.to_string())?;
    let url = format!("wss://{}/ws", server.addr);
    let (mut socket, _) = tokio_tungstenite::client_async(url, tls).await.map_err(|e| e.to_string())?;
    let connect =
        json!({ "type": "connect", "timestamp": 1, "requestId": "c", "payload": { "protocolVersion": "1.0" } });
    socket.send(Message::text(connect.to_string())).await.map_err(|e| e.to_string())?;
    let reply = tokio::time::timeout(PATIENCE, socket.next()).await.map_err(|e| e.to_string())?;
    let reply = reply.ok_or("closed")?.map_err(|e| e.to_string())?;
    let reply: Value = serde_json::from_str(reply.to_text().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    Ok(reply["type"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_wss_client_connects_and_sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let first = certificate(dir.path());
    let files = TlsConfig { cert_file: dir.path().join("cert.pem"), key_file: dir.path().join("key.pem") };
    let server = TestServer::start_with(|c| c.tls = Some(files)).await;

    assert_eq!(connect_over_tls(&server, &first).await, Ok("connect".to_owned()));
    let plain = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await;
    assert!(plain.is_err(), "plain ws:// is refused on a TLS port");

    // A new certificate on disk, and SIGHUP: new connections get it, and the old one is no longer offered.
    let second = certificate(dir.path());
    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()));
    let mut attempts = 0;
    while connect_over_tls(&server, &second).await.is_err() {
        attempts += 1;
        assert!(attempts < 100, "the new certificate was never served");
    }
    assert!(connect_over_tls(&server, &first).await.is_err(), "the old certificate is gone");
}
