//! Hostile clients over plain HTTP: the dev sign-in answers only this machine at a loopback host (not a page
//! whose name was rebound to 127.0.0.1), and a request body that never comes does not hold its socket.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `POST /auth/dev-token` with `host` as the Host header and returns the status code.
async fn dev_token_as(server: &TestServer, host: &str) -> u16 {
    let body = r#"{"userId":"mallory","roles":["admin"]}"#;
    let request = format!(
        "POST /auth/dev-token HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// An unconfigured server on loopback signs anyone in, for a developer at this machine; a page on another site
/// that rebinds its name to 127.0.0.1 sends its own name as Host, and must get no token.
#[tokio::test]
async fn the_dev_sign_in_refuses_a_foreign_host() {
    let server = TestServer::start_with(|c| c.auth.secret = None).await;
    let port = server.addr.port();
    assert_eq!(dev_token_as(&server, &format!("localhost:{port}")).await, 200);
    assert_eq!(dev_token_as(&server, &format!("127.0.0.1:{port}")).await, 200);
    assert_eq!(dev_token_as(&server, &format!("attacker.example:{port}")).await, 403);
    assert_eq!(dev_token_as(&server, "attacker.example").await, 403);
}

/// A POST whose body never arrives is answered 408 and closed within the body deadline, instead of holding its
/// socket for ever (fifty a second of those ran a server out of descriptors).
#[tokio::test]
async fn a_request_body_that_never_comes_is_cut_off() {
    let server = TestServer::start_with(|c| c.auth.secret = None).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /auth/dev-token HTTP/1.1\r\nHost: localhost:{}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        server.addr.port()
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let started = Instant::now();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "the socket was still open after 30 s");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(15), "cut off after {:?}", started.elapsed());
}

/// A bearer token is bounded as the WebSocket's `auth.token` is (8192 characters): a longer one, valid or not,
/// is refused before it is verified, instead of being parsed whatever its size.
#[tokio::test]
async fn an_oversized_bearer_token_is_refused_like_a_websocket_one() {
    let server = TestServer::start().await;
    let roles: Vec<String> = (0..4000).map(|n| format!("role-{n}")).collect();
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    let huge = server.token_for("alice", &roles, Duration::from_secs(600));
    assert!(huge.len() > 8192, "{}", huge.len());
    let bearer = format!("Bearer {huge}");
    let reply =
        common::rest::send(server.addr, "GET", "/api/v1/resources/order", &[("Authorization", &bearer)], b"").await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.json()["details"]["reason"], serde_json::json!("malformed"), "{reply:?}");
}

/// A user id with a control character (a newline that would forge a log line, an escape, NUL) gets no dev token.
#[tokio::test]
async fn the_dev_sign_in_refuses_control_characters_in_user_ids() {
    let server = TestServer::start_with(|c| c.auth.secret = None).await;
    for user in ["eve\nINFO tidings: admin signed in", "eve\u{1b}[2J", "eve\u{0}"] {
        let body = serde_json::json!({ "userId": user }).to_string();
        let host = format!("localhost:{}", server.addr.port());
        let headers = [("Content-Type", "application/json")];
        let reply = send_as(&server, "/auth/dev-token", &host, &headers, body.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{user:?}: {reply}");
    }
}

/// Sends a POST to `path` with `host` as the Host header, and returns the whole response.
async fn send_as(server: &TestServer, path: &str, host: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream.write_all(&bytes).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}
