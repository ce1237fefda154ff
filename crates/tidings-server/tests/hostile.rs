//! Hostile clients against a real server: each attack gets the spec's error or close code, and the server goes
//! on serving everyone else. Cases already covered elsewhere (bad UTF-8, binary and fragmented frames, oversized
//! frames, rate floods, origins, expired tokens) live in session.rs, limits.rs and auth.rs; docs/security.md lists
//! every case with its outcome.

mod common;

use std::time::Duration;

use base64::Engine;
use common::footprint::Footprint;
use common::rest::send;
use common::{call, exchange, raw, TestServer};
use serde_json::{json, Value};

/// A fresh client signs in and gets a pong: the server still serves others.
async fn still_serving(server: &TestServer) {
    let (client, _pushes) = server.signed_in("bystander").await;
    let (kind, _) = exchange(&client, "ping", "alive", json!({})).await;
    assert_eq!(kind, "pong", "the server stopped serving others");
}

/// The error code of a reply, or the reply type when it is not an error.
async fn outcome(client: &tidings_client::Client, ty: &str, payload: Value) -> String {
    let (kind, reply) = exchange(client, ty, "h", payload).await;
    if kind == "error" {
        reply["code"].as_str().unwrap_or_default().to_owned()
    } else {
        kind
    }
}

#[tokio::test]
async fn deeply_nested_huge_and_out_of_range_json_is_refused_with_the_spec_errors() {
    let server = TestServer::start().await;
    let mut socket = raw::open(server.addr).await;
    // 30,000 levels fit under the 64 KiB message limit; the decoder's depth limit refuses them, without a stack
    // overflow.
    let nested = format!(
        r#"{{"type":"ping","timestamp":1,"requestId":"n","payload":{}{}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    socket.send_text(&nested).await;
    let reply: Value = serde_json::from_str(&socket.next_text().await.expect("a reply")).expect("json");
    assert_eq!(reply["payload"]["code"], "INVALID_MESSAGE", "{reply}");
    // 100,000 levels are 200 KB: past the default message limit, so refused by size before they are parsed.
    let nested = |depth: usize| {
        format!(
            r#"{{"type":"ping","timestamp":1,"requestId":"n","payload":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    socket.send_text(&nested(100_000)).await;
    let reply: Value = serde_json::from_str(&socket.next_text().await.expect("a reply")).expect("json");
    assert_eq!(reply["payload"]["code"], "PAYLOAD_TOO_LARGE", "{reply}");
    // A server whose operator raised the limit parses them, and the depth limit still refuses them.
    let roomy = TestServer::start_with(|c| c.limits.max_message_bytes = 512 * 1024).await;
    let mut socket = raw::open(roomy.addr).await;
    socket.send_text(&nested(100_000)).await;
    let reply: Value = serde_json::from_str(&socket.next_text().await.expect("a reply")).expect("json");
    assert_eq!(reply["payload"]["code"], "INVALID_MESSAGE", "{reply}");
    still_serving(&roomy).await;

    let (alice, _pushes) = server.signed_in("alice").await;
    let huge_string = "x".repeat(60_000);
    let data = json!({ "productId": huge_string, "quantity": 1, "totalAmount": 1 });
    assert_eq!(outcome(&alice, "create", json!({ "resourceType": "order", "data": data })).await, "INVALID_PARAMS");
    let huge_array: Vec<u32> = (0..10_000).collect();
    let data = json!({ "productId": "P", "quantity": huge_array, "totalAmount": 1 });
    assert_eq!(outcome(&alice, "create", json!({ "resourceType": "order", "data": data })).await, "INVALID_PARAMS");
    // Numbers beyond what JSON numbers in JavaScript hold exactly, and beyond f64.
    for quantity in ["18446744073709551616", "1e400", "-1", "1.5"] {
        let text = format!(
            r#"{{"type":"create","timestamp":1,"requestId":"q","payload":{{"resourceType":"order","data":{{"productId":"P","quantity":{quantity},"totalAmount":1}}}}}}"#
        );
        let reply = alice.request_text("q", text).await.expect("a reply");
        let reply: Value = serde_json::from_str(&tidings_protocol::encode(&reply)).expect("json");
        assert_eq!(reply["type"], "error", "quantity {quantity}: {reply}");
        assert!(
            ["INVALID_PARAMS", "INVALID_MESSAGE"].contains(&reply["payload"]["code"].as_str().unwrap_or("")),
            "{reply}"
        );
    }
    let text = r#"{"type":"ping","timestamp":1e400,"requestId":"t","payload":{}}"#.to_owned();
    let reply = alice.request_text("t", text).await.expect("a reply");
    assert!(matches!(reply.message, tidings_protocol::ServerMessage::Error(_)), "{reply:?}");
    still_serving(&server).await;
}

#[tokio::test]
async fn injection_and_odd_characters_in_ids_types_and_filters_find_nothing_and_break_nothing() {
    let server = TestServer::start().await;
    let (alice, _a) = server.signed_in("alice").await;
    let data = json!({ "productId": "P", "quantity": 1, "totalAmount": 1 });
    call(&alice, "create", "c", json!({ "resourceType": "order", "data": data })).await;
    let (mallory, _m) = server.signed_in("mallory").await;

    for id in ["ORD-1' OR '1'='1", "ORD-1\"; DROP TABLE resources; --", "../../../etc/passwd", "ORD-\u{202e}1", "%00"] {
        let code = outcome(&mallory, "read", json!({ "resourceType": "order", "id": id })).await;
        assert!(["NOT_FOUND", "INVALID_PARAMS"].contains(&code.as_str()), "read of {id:?}: {code}");
    }
    for id in ["ORD-\u{0}", "ORD-\n1", "ORD-\u{7}"] {
        let code = outcome(&mallory, "read", json!({ "resourceType": "order", "id": id })).await;
        assert_eq!(code, "INVALID_PARAMS", "a control character in {id:?}");
    }
    for resource_type in ["order' OR 1=1 --", "ord\u{0}er", "../order", "ORDER"] {
        let code = outcome(&mallory, "read", json!({ "resourceType": resource_type, "id": "ORD-1" })).await;
        assert!(["NOT_FOUND", "INVALID_PARAMS"].contains(&code.as_str()), "type {resource_type:?}: {code}");
    }
    // A filter value is a value, never SQL: mallory sees none of alice's orders however she phrases it.
    for value in ["' OR 1=1 --", "P' OR owner_id='alice", "%", "*"] {
        let list =
            call(&mallory, "read", "l", json!({ "resourceType": "order", "filter": { "productId": value } })).await;
        assert_eq!(list["items"], json!([]), "filter {value:?}");
    }
    // A NUL can be stored by no backend (PostgreSQL refuses it), so no value equals it: refused where it stands.
    let code = outcome(&mallory, "read", json!({ "resourceType": "order", "filter": { "productId": "P\u{0}" } })).await;
    assert_eq!(code, "INVALID_PARAMS", "a NUL in a filter value");
    let code = outcome(&mallory, "read", json!({ "resourceType": "order", "filter": { "owner_id) OR (1": 1 } })).await;
    assert_eq!(code, "INVALID_PARAMS", "a filter on a field the type does not declare");
    let code =
        outcome(&mallory, "read", json!({ "resourceType": "order", "orderBy": "createdAt; DROP TABLE events" })).await;
    assert_eq!(code, "INVALID_PARAMS");
    // Alice's order is still there, unharmed.
    let list = call(&alice, "read", "l", json!({ "resourceType": "order" })).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    still_serving(&server).await;
}

#[tokio::test]
async fn a_user_reaches_no_one_elses_resources_or_events_over_any_operation_or_http() {
    let server = TestServer::start().await;
    let (alice, _a) = server.signed_in("alice").await;
    let data = json!({ "productId": "P", "quantity": 1, "totalAmount": 1 });
    let order = call(&alice, "create", "c", json!({ "resourceType": "order", "data": data })).await;
    let id = order["id"].as_str().expect("id").to_owned();
    let (bob, mut bob_pushes) = server.signed_in("bob").await;

    assert_eq!(outcome(&bob, "read", json!({ "resourceType": "order", "id": id })).await, "NOT_FOUND");
    let patch = json!({ "resourceType": "order", "id": id, "patch": { "quantity": 9 } });
    assert_eq!(outcome(&bob, "update", patch).await, "NOT_FOUND");
    assert_eq!(outcome(&bob, "delete", json!({ "resourceType": "order", "id": id })).await, "NOT_FOUND");
    assert_eq!(outcome(&bob, "subscribe", json!({ "topic": format!("order:{id}") })).await, "NOT_FOUND");
    // Bob's subscription to the type sees only his own orders: alice's next change does not reach him.
    call(&bob, "subscribe", "s", json!({ "topic": "order" })).await;
    call(&alice, "update", "u", json!({ "resourceType": "order", "id": id, "patch": { "quantity": 2 } })).await;
    let mine = call(&bob, "create", "b", json!({ "resourceType": "order", "data": data })).await;
    let first = common::next_push(&mut bob_pushes).await;
    let tidings_protocol::ServerMessage::Event(event) = first else { panic!("an event, not {first:?}") };
    assert_eq!(
        event.id.map(|i| i.into_string()),
        mine["id"].as_str().map(str::to_owned),
        "bob's first event is his own"
    );

    let token = server.token("bob");
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/json")];
    let path = format!("/api/v1/resources/order/{id}");
    for (method, body) in [("GET", ""), ("PATCH", r#"{"quantity":9}"#), ("DELETE", "")] {
        let reply = send(server.addr, method, &path, &headers, body.as_bytes()).await;
        assert_eq!(reply.status, 404, "{method} of alice's order as bob: {}", reply.body);
    }
    let list = send(server.addr, "GET", "/api/v1/resources/order", &headers, b"").await;
    assert!(!list.body.contains(&id), "bob's list holds alice's order: {}", list.body);
    // After all that, alice's order is as she left it.
    let read = call(&alice, "read", "r", json!({ "resourceType": "order", "id": id })).await;
    assert_eq!(read["data"]["quantity"], 2);
}

#[tokio::test]
async fn forged_tokens_are_refused_with_their_reason() {
    let server = TestServer::start().await;
    let (client, _pushes) = server.connected().await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = engine.encode(json!({ "sub": "root", "roles": ["admin"], "exp": 4_102_444_800_u64 }).to_string());
    let none = format!("{}.{claims}.", engine.encode(r#"{"alg":"none","typ":"JWT"}"#));
    let genuine = server.token("alice");
    let mut parts: Vec<&str> = genuine.split('.').collect();
    parts[1] = &claims;
    let tampered = parts.join(".");
    let hs512 = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"not-the-server-secret-but-long-enough-0123456789");
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
        jsonwebtoken::encode(&header, &json!({ "sub": "root", "exp": 4_102_444_800_u64 }), &key).expect("encode")
    };
    for (token, reason) in
        [(none, "algorithm_not_allowed"), (tampered, "bad_signature"), (hs512, "algorithm_not_allowed")]
    {
        let (kind, reply) = exchange(&client, "auth", "a", json!({ "token": token })).await;
        assert_eq!(kind, "auth_failed", "{reply}");
        assert_eq!(reply["code"], "UNAUTHORIZED");
        assert_eq!(reply["details"]["reason"], reason, "{reply}");
    }
    still_serving(&server).await;
}

#[tokio::test]
async fn thousands_of_subscriptions_on_one_connection_stop_at_the_limit() {
    let server = TestServer::start_with(|c| {
        c.limits.max_subscriptions = 100;
        // This test is about the subscription limit, not the message rate.
        c.limits.rate_per_second = 1_000_000;
        c.limits.rate_burst = 1_000_000;
    })
    .await;
    let (alice, _pushes) = server.signed_in("alice").await;
    let data = json!({ "productId": "P", "quantity": 1, "totalAmount": 1 });
    let mut ids = Vec::new();
    for n in 0..101 {
        let order = call(&alice, "create", &format!("c{n}"), json!({ "resourceType": "order", "data": data })).await;
        ids.push(order["id"].as_str().expect("id").to_owned());
    }
    for (n, id) in ids.iter().enumerate().take(100) {
        call(&alice, "subscribe", &format!("s{n}"), json!({ "topic": format!("order:{id}") })).await;
    }
    // The 101st, and the thousands an attacker would send after it, are refused; the first 100 still work.
    for n in 0..1_000 {
        let topic = format!("order:{}", ids[100]);
        let code = outcome(&alice, "subscribe", json!({ "topic": topic })).await;
        assert_eq!(code, "LIMIT_EXCEEDED", "subscription attempt {n}");
    }
    // At the limit, the limit is checked first: an attacker learns nothing about which resources exist.
    assert_eq!(outcome(&alice, "subscribe", json!({ "topic": "order:ORD-NOPE" })).await, "LIMIT_EXCEEDED");
    call(&alice, "unsubscribe", "u", json!({ "subscriptionId": format!("order:{}", ids[0]) })).await;
    assert_eq!(outcome(&alice, "subscribe", json!({ "topic": "order:ORD-NOPE" })).await, "NOT_FOUND");
    still_serving(&server).await;
}

#[tokio::test]
async fn half_open_and_slowloris_connections_are_closed_by_the_server_and_hold_nothing() {
    let server = TestServer::start_with(|c| {
        c.heartbeat.ping_interval_ms = 200;
        c.heartbeat.idle_timeout_ms = 600;
        c.auth.auth_timeout_ms = 600;
    })
    .await;
    // Upgraded, then silent forever: no message, no pong, no close. The server gives up on it.
    let mut silent = raw::open(server.addr).await;
    let (_, code) = tokio::time::timeout(Duration::from_secs(10), silent.until_close()).await.expect("closed in time");
    assert!(matches!(code, Some(4500) | Some(4000)), "closed with {code:?}");
    // A slow upgrade request that never ends: the server must not wait for it forever.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await.expect("a partial request");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server held a never-ending request for 40 s");
    still_serving(&server).await;
}

/// One round of every attack that a connection can make, each checked for its outcome.
async fn attack_round(server: &TestServer, token: &str) {
    // A 100 MB frame header: refused before a byte of it is read.
    let mut socket = raw::open(server.addr).await;
    socket.send_header_only(raw::TEXT, 100_000_000).await;
    assert_eq!(socket.until_close().await.1, Some(1009), "a 100 MB frame header");
    // Fragments that add up past the hard bound (1 MiB).
    let mut socket = raw::open(server.addr).await;
    let chunk = vec![b'x'; 256 * 1024];
    socket.send_frame(raw::TEXT, false, &chunk).await;
    for _ in 0..4 {
        socket.send_frame(raw::CONTINUATION, false, &chunk).await;
    }
    assert_eq!(socket.until_close().await.1, Some(1009), "fragments past the bound");
    // Malformed UTF-8.
    let mut socket = raw::open(server.addr).await;
    socket.send_frame(raw::TEXT, true, b"{\"type\":\"ping\xff\xfe\"}").await;
    assert_eq!(socket.until_close().await.1, Some(1007), "malformed UTF-8");
    // JSON nested 30,000 deep, a binary frame, a ping flood, then a subscription flood past the limit, on one
    // authenticated connection that stays open through all of it.
    let mut socket = raw::open(server.addr).await;
    socket.send_text(r#"{"type":"connect","timestamp":1,"requestId":"c","payload":{"protocolVersion":"1.0"}}"#).await;
    assert!(socket.next_text().await.expect("a reply").contains("\"connect\""));
    socket
        .send_text(&format!(r#"{{"type":"auth","timestamp":1,"requestId":"a","payload":{{"token":"{token}"}}}}"#))
        .await;
    let reply = socket.next_text().await.expect("a reply");
    assert!(reply.contains("auth_success"), "{reply}");
    let nested = format!(r#"{{"type":"ping","timestamp":1,"payload":{}{}}}"#, "[".repeat(30_000), "]".repeat(30_000));
    socket.send_text(&nested).await;
    assert!(socket.next_text().await.expect("a reply").contains("INVALID_MESSAGE"), "deep nesting");
    socket.send_frame(raw::BINARY, true, &[0, 1, 2, 3]).await;
    assert!(socket.next_text().await.expect("a reply").contains("INVALID_MESSAGE"), "a binary frame");
    for _ in 0..500 {
        socket.send_frame(raw::PING, true, b"flood").await;
    }
    for n in 0..300 {
        let subscribe =
            format!(r#"{{"type":"subscribe","timestamp":1,"requestId":"s{n}","payload":{{"topic":"order:ORD-{n}"}}}}"#);
        socket.send_text(&subscribe).await;
    }
    let mut replies = 0;
    while replies < 300 {
        let frame = socket.next_frame().await.expect("the connection stays open");
        if frame.opcode == raw::TEXT {
            replies += 1;
        }
    }
    drop(socket);
    // Connections that upgrade and then vanish without a close frame.
    for _ in 0..10 {
        drop(raw::open(server.addr).await);
    }
    // Connections that upgrade and then say nothing, ever: the auth timeout closes them.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(raw::open(server.addr).await);
    }
    for mut socket in silent {
        assert_eq!(socket.until_close().await.1, Some(4500), "a silent connection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_repeated_leave_memory_descriptors_and_tasks_where_they_were() {
    let server = TestServer::start_with(|c| {
        c.limits.max_subscriptions = 50;
        c.auth.auth_timeout_ms = 500;
        c.limits.rate_per_second = 1_000_000;
        c.limits.rate_burst = 1_000_000;
    })
    .await;
    let token = server.token("mallory");
    // A first round warms what is allocated once (statement caches, the allocator's pools, buffers).
    attack_round(&server, &token).await;
    let baseline = Footprint::settled(Footprint::now()).await;
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        attack_round(&server, &token).await;
    }
    let after = Footprint::settled(baseline).await;
    eprintln!("footprint: before {baseline:?}, after {ROUNDS} rounds {after:?}");
    assert!(after.tasks <= baseline.tasks, "tasks grew: {baseline:?} -> {after:?}");
    assert!(after.fds <= baseline.fds, "descriptors grew: {baseline:?} -> {after:?}");
    // Each round sends about 1.3 MB of frames and opens 25 connections; a leak of any of it would pass 16 MiB
    // long before the tenth round.
    assert!(after.rss_kib <= baseline.rss_kib + 16 * 1024, "memory grew: {baseline:?} -> {after:?}");

    // A hundred slowloris requests hold a descriptor each until the header timeout closes them; the client ends
    // live in this process too, so they count until they are dropped.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
        stream.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await.expect("a partial request");
        slow.push(stream);
    }
    let during = Footprint::now();
    for stream in &mut slow {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a slowloris request outlived the header timeout");
    }
    // The server's task for a request ends a moment after its close reaches the client: wait for it, with the
    // client ends still held (they count a descriptor each in this process).
    let closed = Footprint::settled(Footprint { fds: baseline.fds + 100, ..baseline }).await;
    assert!(closed.fds <= baseline.fds + 100 && closed.tasks <= baseline.tasks, "server side kept: {closed:?}");
    drop(slow);
    let after_slow = Footprint::settled(baseline).await;
    eprintln!("footprint: 100 slowloris requests {during:?}, closed by the server {closed:?}, after {after_slow:?}");
    assert!(after_slow.fds <= baseline.fds && after_slow.tasks <= baseline.tasks, "{after_slow:?}");
    still_serving(&server).await;
}

/// WebSocket ping frames count against the connection's message budget: a flood of them is not answered pong for
/// pong (one socket drew 1.7 million in 4 s, a core's worth), and a connection that keeps on is closed with 1008.
#[tokio::test]
async fn a_flood_of_websocket_pings_is_throttled_and_then_closed() {
    let server = TestServer::start().await;
    let mut socket = raw::open(server.addr).await;
    for _ in 0..5_000 {
        socket.send_frame(raw::PING, true, b"x").await;
    }
    let mut pongs = 0;
    let close = loop {
        match socket.next_frame().await {
            Some(frame) if frame.opcode == raw::PONG => pongs += 1,
            Some(frame) if frame.opcode == raw::CLOSE => break frame.close_code(),
            Some(_) => {}
            None => break None,
        }
    };
    assert_eq!(close, Some(1008), "after {pongs} pongs");
    // The burst (100) and what the rate (50/s) refills meanwhile: far below one pong per ping.
    assert!(pongs <= 200, "{pongs} pongs for 5,000 pings");
    still_serving(&server).await;
}
