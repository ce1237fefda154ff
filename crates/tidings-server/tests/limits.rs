//! Limits over a real server: message size, rate, connections, and allowed Origins.

mod common;

use common::{raw, TestServer};
use serde_json::{json, Value};
use tidings_protocol::{ErrorCode, ServerMessage};

#[tokio::test]
async fn a_message_over_the_size_limit_gets_payload_too_large_and_the_connection_stays() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 1_000).await;
    let (client, _pushes) = server.signed_in("alice").await;
    let data = json!({ "note": "x".repeat(2_000) });
    let big = json!({"type":"create","timestamp":1,"requestId":"big","payload":{"resourceType":"order","data":data}});
    let reply = client.request_text("big", big.to_string()).await.expect("a reply with the requestId");
    let ServerMessage::Error(error) = reply.message else { panic!("expected an error: {reply:?}") };
    assert_eq!(error.code, ErrorCode::PayloadTooLarge);
    let details = error.details.expect("details");
    assert_eq!(details.get("maxBytes"), Some(&json!(1_000)));
    assert!(details.get("size").and_then(Value::as_u64).is_some_and(|s| s > 2_000));
    client.ping().await.expect("still usable");
}

#[tokio::test]
async fn a_frame_over_the_hard_bound_closes_with_1009_without_being_read() {
    let server = TestServer::start_with(|c| c.limits.hard_message_bytes = 100_000).await;
    let mut socket = raw::open(server.addr).await;
    // The header claims 100 MB; the server must refuse on the header alone.
    socket.send_header_only(raw::TEXT, 100 * 1024 * 1024).await;
    let (texts, code) = socket.until_close().await;
    assert_eq!(code, Some(1009));
    let notice: Value = serde_json::from_str(texts.last().expect("disconnect")).expect("json");
    assert_eq!(notice["payload"], json!({"code": 1009, "reason": "message too big", "reconnect": false}));
    // The server is still serving others.
    let (client, _pushes) = server.connected().await;
    client.ping().await.expect("others are served");
}

#[tokio::test]
async fn fragments_that_add_up_past_the_hard_bound_close_with_1009() {
    let server = TestServer::start_with(|c| {
        c.limits.max_message_bytes = 10_000;
        c.limits.hard_message_bytes = 10_000;
    })
    .await;
    let mut socket = raw::open(server.addr).await;
    let chunk = vec![b' '; 4_000];
    socket.send_frame(raw::TEXT, false, &chunk).await;
    socket.send_frame(raw::CONTINUATION, false, &chunk).await;
    socket.send_frame(raw::CONTINUATION, false, &chunk).await;
    let (_, code) = socket.until_close().await;
    assert_eq!(code, Some(1009));
}

#[tokio::test]
async fn messages_over_the_rate_get_rate_limited_and_abuse_is_closed_with_1008() {
    let server = TestServer::start_with(|c| {
        c.limits.rate_per_second = 1;
        c.limits.rate_burst = 3;
        c.limits.rate_abuse_after = 5;
    })
    .await;
    let mut socket = raw::open(server.addr).await;
    for n in 0..3 {
        socket.send_text(&format!(r#"{{"type":"ping","timestamp":1,"requestId":"p{n}","payload":{{}}}}"#)).await;
        let reply: Value = serde_json::from_str(&socket.next_text().await.expect("reply")).expect("json");
        assert_eq!(reply["type"], "pong", "within the burst: {reply}");
    }
    socket.send_text(r#"{"type":"ping","timestamp":1,"requestId":"over","payload":{}}"#).await;
    let reply: Value = serde_json::from_str(&socket.next_text().await.expect("reply")).expect("json");
    assert_eq!(reply["payload"]["code"], "RATE_LIMITED");
    assert_eq!(reply["requestId"], "over", "the requestId is echoed");
    let retry = reply["payload"]["details"]["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!((1..=1_000).contains(&retry), "retryAfterMs {retry}");

    // A client that goes on sending while limited is cut off.
    for _ in 0..10 {
        socket.send_text(r#"{"type":"ping","timestamp":1,"payload":{}}"#).await;
    }
    let (texts, code) = socket.until_close().await;
    assert_eq!(code, Some(1008));
    assert!(texts.last().is_some_and(|t| t.contains(r#""type":"disconnect""#)), "{texts:?}");
}

#[tokio::test]
async fn a_connection_over_the_server_limit_is_closed_with_4002() {
    let server = TestServer::start_with(|c| c.limits.max_connections = 1).await;
    let (first, _first_pushes) = server.connected().await;
    let mut socket = raw::open(server.addr).await;
    let (texts, code) = socket.until_close().await;
    assert_eq!(code, Some(4002));
    let notice: Value = serde_json::from_str(texts.last().expect("disconnect")).expect("json");
    assert_eq!(notice["payload"]["reconnect"], true);
    first.ping().await.expect("the first connection is unaffected");
}

#[tokio::test]
async fn origins_are_checked_before_the_upgrade() {
    let server = TestServer::start_with(|c| c.allowed_origins = vec!["https://app.example.com".into()]).await;
    let (status, _) = raw::upgrade(server.addr, &[("Origin", "https://evil.example")]).await;
    assert!(status.contains("403"), "{status}");
    let (status, _) = raw::upgrade(server.addr, &[("Origin", "https://app.example.com")]).await;
    assert!(status.contains("101"), "{status}");
    let (status, _) = raw::upgrade(server.addr, &[]).await;
    assert!(status.contains("101"), "clients without an Origin are not browsers: {status}");

    let same_host_only = TestServer::start().await;
    let own = format!("http://{}", same_host_only.addr);
    let (status, _) = raw::upgrade(same_host_only.addr, &[("Origin", &own)]).await;
    assert!(status.contains("101"), "{status}");
    let (status, _) = raw::upgrade(same_host_only.addr, &[("Origin", "http://localhost:1")]).await;
    assert!(status.contains("403"), "{status}");
}
