//! The session state machine over a real server: handshake, heartbeat, state errors and bad input.

mod common;

use std::time::Duration;

use common::{expect_disconnect, next_push, raw, TestServer, PATIENCE};
use serde_json::{json, Value};
use tidings_client::{Client, ClientError, Push};
use tidings_protocol::{ErrorCode, ServerMessage};

#[tokio::test]
async fn connect_reply_advertises_the_session_parameters() {
    let server = TestServer::start().await;
    let (_client, _pushes, connected) = Client::connect(&server.url).await.expect("connect");
    // The server answers with the highest 1.x it speaks, whatever 1.x the client said.
    assert_eq!(connected.protocol_version, "1.2");
    assert!(connected.session_id.starts_with("s-"), "{}", connected.session_id);
    assert_eq!(connected.heartbeat.ping_interval_ms, 25_000);
    assert_eq!(connected.heartbeat.idle_timeout_ms, 60_000);
    assert_eq!(connected.auth_timeout_ms, 10_000);
    assert_eq!(connected.limits.max_message_bytes, 65_536);
    assert_eq!(connected.limits.rate_limit.messages_per_second, 50);
    assert_eq!(connected.limits.rate_limit.burst, 100);
    assert_eq!(connected.limits.max_subscriptions, 100);
    let query = connected.limits.query.expect("a 1.1 server states the bounds of a query");
    assert_eq!((query.max_depth, query.max_terms, query.max_values, query.max_string_length), (8, 64, 100, 1024));
}

#[tokio::test]
async fn ping_gets_pong_with_the_request_id_in_every_state() {
    let server = TestServer::start().await;
    let (client, _pushes) = Client::open(&server.url).await.expect("open");
    let ping = r#"{"type":"ping","timestamp":1630423456,"requestId":"ping-in-open","payload":{}}"#;
    let reply = client.request_text("ping-in-open", ping.to_owned()).await.expect("pong in open");
    assert!(matches!(reply.message, ServerMessage::Pong(_)));
    assert_eq!(reply.request_id.map(|r| r.into_string()), Some("ping-in-open".to_owned()));

    let (client, _pushes) = server.connected().await;
    client.ping().await.expect("pong in connected");
    client.auth(&server.token("alice")).await.expect("auth");
    client.ping().await.expect("pong in authenticated");
}

#[tokio::test]
async fn messages_out_of_their_state_get_the_spec_errors() {
    let server = TestServer::start().await;
    let (client, _pushes) = Client::open(&server.url).await.expect("open");
    let read = json!({"type":"read","timestamp":1,"requestId":"r0","payload":{"resourceType":"order"}});
    let reply = client.request_text("r0", read.to_string()).await.expect("reply");
    let ServerMessage::Error(error) = reply.message else { panic!("read before connect: {reply:?}") };
    assert_eq!(error.code, ErrorCode::InvalidState);
    assert_eq!(error.details.as_ref().and_then(|d| d.get("state")), Some(&json!("open")));

    let (client, _pushes) = server.connected().await;
    let create = json!({"type":"create","timestamp":1,"requestId":"c1","payload":{"resourceType":"order","data":{}}});
    let reply = client.request_text("c1", create.to_string()).await.expect("reply");
    assert_eq!(error_code(&reply.message), Some(ErrorCode::Unauthorized));

    let connect = json!({"type":"connect","timestamp":1,"requestId":"c2","payload":{"protocolVersion":"1.0"}});
    let reply = client.request_text("c2", connect.to_string()).await.expect("reply");
    assert_eq!(error_code(&reply.message), Some(ErrorCode::InvalidState));

    // None of it broke the session: it still authenticates.
    client.auth(&server.token("alice")).await.expect("auth after the errors");
}

#[tokio::test]
async fn an_unsupported_version_is_refused_and_the_client_may_try_again() {
    let server = TestServer::start().await;
    let (client, _pushes) = Client::open(&server.url).await.expect("open");
    let connect = json!({"type":"connect","timestamp":1,"requestId":"v2","payload":{"protocolVersion":"2.0"}});
    let reply = client.request_text("v2", connect.to_string()).await.expect("reply");
    assert_eq!(error_code(&reply.message), Some(ErrorCode::UnsupportedVersion));
    let connect = json!({"type":"connect","timestamp":1,"requestId":"v1","payload":{"protocolVersion":"1.0"}});
    let reply = client.request_text("v1", connect.to_string()).await.expect("reply");
    assert!(matches!(reply.message, ServerMessage::Connect(_)), "{reply:?}");
}

#[tokio::test]
async fn bad_input_gets_its_error_and_the_connection_stays_usable() {
    let server = TestServer::start().await;
    let (client, mut pushes) = server.connected().await;
    let cases: [(&str, ErrorCode); 6] = [
        ("this is not json", ErrorCode::InvalidMessage),
        ("[1, 2, 3]", ErrorCode::InvalidMessage),
        (r#"{"type":"create","payload":{}}"#, ErrorCode::InvalidMessage),
        (r#"{"type":"teleport","timestamp":1,"payload":{}}"#, ErrorCode::UnsupportedType),
        (r#"{"type":"event","timestamp":1,"payload":{"eventType":"x","data":{}}}"#, ErrorCode::UnsupportedType),
        (r#"{"type":"auth","timestamp":1,"payload":{"token":""}}"#, ErrorCode::InvalidParams),
    ];
    for (text, code) in cases {
        client.send_text(text.to_owned()).expect("send");
        match next_push(&mut pushes).await {
            ServerMessage::Error(error) => assert_eq!(error.code, code, "for {text}: {error}"),
            other => panic!("for {text}: expected an error, got {other:?}"),
        }
    }
    client.ping().await.expect("still usable");

    // A request with a requestId gets its error as a reply, with every bad field listed.
    let bad = json!({"type":"auth","timestamp":1,"requestId":"a9","payload":{"token":5,"userId":""}});
    let reply = client.request_text("a9", bad.to_string()).await.expect("reply");
    let ServerMessage::Error(error) = reply.message else { panic!("expected an error") };
    let pointers: Vec<String> = error.field_errors().into_iter().map(|e| e.pointer).collect();
    assert_eq!(pointers, ["/payload/token", "/payload/userId"]);
}

#[tokio::test]
async fn a_binary_frame_is_refused_without_closing() {
    let server = TestServer::start().await;
    let mut socket = raw::open(server.addr).await;
    socket.send_frame(raw::BINARY, true, b"\x00\x01\x02").await;
    let reply: Value = serde_json::from_str(&socket.next_text().await.expect("a reply")).expect("json");
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["payload"]["code"], "INVALID_MESSAGE");
    socket.send_text(r#"{"type":"ping","timestamp":1,"requestId":"p","payload":{}}"#).await;
    let reply: Value = serde_json::from_str(&socket.next_text().await.expect("a pong")).expect("json");
    assert_eq!(reply["type"], "pong");
    assert_eq!(reply["requestId"], "p");
}

/// A client need not wait for a reply before its next message (docs/protocol.md, "Order"): `connect`, `auth` and a
/// request sent at once, even in the same write as the upgrade request (the socket is taken back from the HTTP
/// server with what it read past the request), are answered in order.
#[tokio::test]
async fn messages_sent_without_waiting_even_with_the_upgrade_request_are_answered_in_order() {
    let server = TestServer::start().await;
    let connect = json!({"type":"connect","timestamp":1,"requestId":"c","payload":{"protocolVersion":"1.0"}});
    let auth = json!({"type":"auth","timestamp":1,"requestId":"a","payload":{"token": server.token("alice")}});
    let ping = json!({"type":"ping","timestamp":1,"requestId":"p","payload":{}});
    let sent = [connect.to_string(), auth.to_string(), ping.to_string()];
    let (status, mut socket) = raw::upgrade_sending(server.addr, &sent).await;
    assert!(status.contains("101"), "upgraded: {status}");
    for (kind, request_id) in [("connect", "c"), ("auth_success", "a"), ("pong", "p")] {
        let reply = socket.next_json().await;
        assert_eq!((reply["type"].as_str(), reply["requestId"].as_str()), (Some(kind), Some(request_id)), "{reply}");
    }
}

#[tokio::test]
async fn a_fragmented_message_is_joined_and_answered() {
    let server = TestServer::start().await;
    let mut socket = raw::open(server.addr).await;
    let text = r#"{"type":"ping","timestamp":1,"requestId":"frag","payload":{}}"#;
    let (first, rest) = text.split_at(10);
    let (middle, last) = rest.split_at(20);
    socket.send_frame(raw::TEXT, false, first.as_bytes()).await;
    // A control frame may come between the fragments of a message.
    socket.send_frame(raw::PING, true, b"hi").await;
    socket.send_frame(raw::CONTINUATION, false, middle.as_bytes()).await;
    socket.send_frame(raw::CONTINUATION, true, last.as_bytes()).await;
    let frame = socket.next_frame().await.expect("pong frame");
    assert_eq!((frame.opcode, frame.payload.as_slice()), (0xA, b"hi".as_slice()));
    let reply: Value = serde_json::from_str(&socket.next_text().await.expect("a pong")).expect("json");
    assert_eq!(reply["requestId"], "frag");
}

#[tokio::test]
async fn a_client_disconnect_closes_with_1000() {
    let server = TestServer::start().await;
    let (client, mut pushes) = server.signed_in("alice").await;
    client.disconnect().expect("send disconnect");
    match pushes.next_within(PATIENCE).await {
        Some(Push::Closed { code, .. }) => assert_eq!(code, Some(1000)),
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(matches!(client.ping().await, Err(ClientError::Closed)));
}

#[tokio::test]
async fn the_server_pings_and_a_client_that_answers_stays_connected() {
    let server = TestServer::start_with(|c| {
        c.heartbeat.ping_interval_ms = 100;
        c.heartbeat.idle_timeout_ms = 350;
    })
    .await;
    let (_client, mut pushes) = server.connected().await;
    // tidings-client answers every server ping with pong; five pings span more than the idle timeout.
    for _ in 0..5 {
        match pushes.next_within(PATIENCE).await {
            Some(Push::Message(envelope)) => {
                assert!(matches!(envelope.message, ServerMessage::Ping(_)), "{envelope:?}");
                assert!(envelope.request_id.is_none());
            }
            other => panic!("expected a server ping, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_silent_client_is_closed_with_4000_after_the_idle_timeout() {
    let server = TestServer::start_with(|c| {
        c.heartbeat.ping_interval_ms = 100;
        c.heartbeat.idle_timeout_ms = 300;
    })
    .await;
    let mut socket = raw::open(server.addr).await;
    socket.send_text(r#"{"type":"connect","timestamp":1,"payload":{"protocolVersion":"1.0"}}"#).await;
    let (texts, code) = socket.until_close().await;
    assert_eq!(code, Some(4000));
    let last: Value = serde_json::from_str(texts.last().expect("disconnect before close")).expect("json");
    assert_eq!(last["type"], "disconnect");
    assert_eq!(last["payload"], json!({"code": 4000, "reason": "heartbeat timeout", "reconnect": true}));
    assert!(texts.iter().any(|t| t.contains(r#""type":"ping""#)), "the server pinged first: {texts:?}");
}

#[tokio::test]
async fn a_connection_that_does_not_authenticate_in_time_is_closed_with_4500() {
    let server = TestServer::start_with(|c| c.auth.auth_timeout_ms = 300).await;
    let (client, mut pushes) = server.connected().await;
    // Pings keep it alive but do not authenticate it.
    client.ping().await.expect("pong");
    let (notice, code) = expect_disconnect(&mut pushes).await;
    assert_eq!((notice.code, notice.reconnect, code), (4500, false, Some(4500)));
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let server = TestServer::start().await;
    let mut socket = raw::open(server.addr).await;
    socket.send_frame(raw::TEXT, true, b"{\"type\":\"ping\xff\"}").await;
    let (_, code) = socket.until_close().await;
    assert_eq!(code, Some(1007));
}

#[tokio::test]
async fn a_plain_websocket_library_gets_the_same_replies() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = TestServer::start().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&server.url).await.expect("connect");
    let token = server.token("alice");
    let script = [
        json!({"type":"connect","timestamp":1630423456,"requestId":"1","payload":{"protocolVersion":"1.0"}}),
        json!({"type":"auth","timestamp":1630423456,"payload":{"token":token,"userId":"alice"}}),
        json!({"type":"ping","timestamp":1630423456,"requestId":"3","payload":{}}),
    ];
    let mut types = Vec::new();
    for message in script {
        socket.send(Message::text(message.to_string())).await.expect("send");
        let reply = tokio::time::timeout(PATIENCE, socket.next()).await.expect("in time").expect("open").expect("ok");
        let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("json");
        types.push((reply["type"].as_str().unwrap_or_default().to_owned(), reply.get("requestId").cloned()));
    }
    assert_eq!(
        types,
        [
            ("connect".to_owned(), Some(json!("1"))),
            ("auth_success".to_owned(), None),
            ("pong".to_owned(), Some(json!("3")))
        ]
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
}

fn error_code(message: &ServerMessage) -> Option<ErrorCode> {
    match message {
        ServerMessage::Error(e) | ServerMessage::AuthFailed(e) => Some(e.code),
        _ => None,
    }
}

#[tokio::test]
async fn the_design_notes_flow_signs_in_without_connect_and_connect_forgives_its_version() {
    let server = TestServer::start().await;
    // Open the socket, send auth, then create: no connect, no reply to one.
    let (client, _pushes) = Client::open(&server.url).await.expect("open");
    let token = server.token("alice");
    let auth = format!(r#"{{"type":"auth","timestamp":1630423456,"requestId":"a1","payload":{{"token":"{token}"}}}}"#);
    let reply = client.request_text("a1", auth).await.expect("a reply to auth");
    assert!(matches!(reply.message, ServerMessage::AuthSuccess(_)), "{reply:?}");
    let create = r#"{"type":"create","timestamp":1630423457,"requestId":"c1","payload":{"resourceType":"order","data":{"productId":"P1","quantity":1,"totalAmount":5}}}"#;
    let reply = client.request_text("c1", create.to_owned()).await.expect("a reply to create");
    assert!(matches!(reply.message, ServerMessage::Create(_)), "{reply:?}");

    // connect without protocolVersion, or with a whole number for the major version.
    for payload in [r#"{}"#, r#"{"protocolVersion":1}"#, r#"{"protocolVersion":null}"#] {
        let (client, _pushes) = Client::open(&server.url).await.expect("open");
        let connect = format!(r#"{{"type":"connect","timestamp":1630423456,"requestId":"c","payload":{payload}}}"#);
        let reply = client.request_text("c", connect).await.expect("a reply to connect");
        let ServerMessage::Connect(connected) = reply.message else { panic!("{payload}: {reply:?}") };
        assert_eq!(connected.protocol_version, "1.2", "{payload}");
    }
    let (client, _pushes) = Client::open(&server.url).await.expect("open");
    let two = r#"{"type":"connect","timestamp":1630423456,"requestId":"c","payload":{"protocolVersion":2}}"#;
    let reply = client.request_text("c", two.to_owned()).await.expect("a reply to connect");
    assert!(
        matches!(reply.message, ServerMessage::Error(ref e) if e.code == ErrorCode::UnsupportedVersion),
        "{reply:?}"
    );
}
