//! `/metrics` during a small workload: the counters move by exactly what happened. This file is its own process,
//! so no other test's server adds to the process-wide counters.

mod common;

use common::{call, exchange, next_push, TestServer};
use serde_json::json;
use tidings_protocol::ServerMessage;

/// The value of one series in Prometheus text, 0 when absent. `series` leaves out the `node` label every
/// series carries.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(without_node)
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).map(str::to_owned))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A series line without its `node="..."` label (and without `{}` when that was its only label).
fn without_node(line: &str) -> String {
    let Some(start) = line.find("node=\"") else { return line.to_owned() };
    let end = line[start + 6..].find('"').map_or(line.len(), |e| start + 6 + e + 1);
    let end = if line[end..].starts_with(',') { end + 1 } else { end };
    let line = format!("{}{}", &line[..start], &line[end..]);
    line.replace(",}", "}").replace("{}", "")
}

#[tokio::test]
async fn the_counters_move_by_what_the_workload_did() {
    // `pulse`: a type whose creates are broadcast and stored nowhere, so that a create of it waits for the creates
    // queued before it (session/creates.rs).
    let server = TestServer::start_with(|config| {
        let mut pulse = config.resource_types[0].clone();
        pulse.name = "pulse".to_owned();
        pulse.id_prefix = "PLS".to_owned();
        pulse.ephemeral = true;
        // What an ephemeral type cannot have: nothing of it is stored to index or to notify about.
        pulse.notify_owner_on.clear();
        pulse.indexes.clear();
        config.resource_types.push(pulse);
    })
    .await;
    let scrape = || async { common::http(&server, "GET", "/metrics", None).await };
    let (status, before) = scrape().await;
    assert_eq!(status, 200);

    let (admin, mut pushes) = server.signed_in_as("root", &["admin"]).await;
    call(&admin, "subscribe", "s", json!({ "topic": "order" })).await;
    let (alice, _a) = server.signed_in("alice").await;
    for n in 0..3 {
        let data = json!({ "productId": "P", "quantity": 1, "totalAmount": 2 });
        call(&alice, "create", &format!("c{n}"), json!({ "resourceType": "order", "data": data })).await;
    }
    let (kind, _) =
        exchange(&alice, "create", "bad", json!({ "resourceType": "order", "data": { "quantity": 0 } })).await;
    assert_eq!(kind, "error");
    for _ in 0..3 {
        assert!(matches!(next_push(&mut pushes).await, ServerMessage::Event(_)));
    }
    let (_, after) = scrape().await;

    let delta = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(delta("tidings_connections_total"), 2.0);
    assert_eq!(value(&after, "tidings_connections_open"), 2.0);
    assert_eq!(value(&after, "tidings_sessions_authenticated"), 2.0);
    assert_eq!(delta(r#"tidings_messages_in_total{type="create"}"#), 4.0);
    assert_eq!(delta(r#"tidings_messages_in_total{type="auth"}"#), 2.0);
    assert_eq!(delta(r#"tidings_errors_total{code="INVALID_PARAMS"}"#), 1.0);
    assert_eq!(delta(r#"tidings_messages_out_total{type="create"}"#), 3.0);
    assert_eq!(delta("tidings_events_published_total"), 3.0);
    assert_eq!(delta("tidings_events_delivered_total"), 3.0);
    assert_eq!(delta(r#"tidings_request_duration_seconds_count{type="create"}"#), 4.0);
    assert!(after.contains("# TYPE tidings_request_duration_seconds histogram"), "{after}");
    // Three creates committed, and the invalid one never reached storage.
    assert_eq!(delta(r#"tidings_storage_duration_seconds_count{op="create"}"#), 3.0);
    assert_eq!(value(&after, "tidings_outbound_queue_depth"), 0.0, "every push was read");
    assert!(after.contains("tidings_outbound_queue_depth_max"), "{after}");
    assert_eq!(value(&after, "tidings_subscriptions"), 1.0);
    assert_eq!(value(&after, "tidings_broker_connected"), 1.0);
    // Every series names the node, so that a cluster's nodes can be told apart in one Prometheus.
    let node = format!("node=\"{}\"", server.addr);
    assert!(after.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).all(|l| l.contains(&node)), "{after}");
    // Each metric says what it means, and which build runs.
    assert!(after.contains("# HELP tidings_events_published_total Events released by the hub (counter)."), "{after}");
    assert!(after.contains("# HELP tidings_request_duration_seconds Time from receiving a request"), "{after}");
    let version = format!(r#"tidings_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION"));
    assert_eq!(value(&after, &version), 1.0, "{after}");
    let described = after.lines().filter(|l| l.starts_with("# HELP ")).count();
    let typed = after.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert!(described >= typed, "every metric shown has its help: {after}");

    // Creates sent without waiting, in one write, share commits: the session queues each create's write and
    // answers them all after.
    let mut carol = common::raw::open(server.addr).await;
    let envelope = |ty: &str, request_id: &str, payload: serde_json::Value| {
        json!({ "type": ty, "timestamp": 1, "requestId": request_id, "payload": payload }).to_string()
    };
    carol.send_text(&envelope("auth", "a", json!({ "token": server.token("carol") }))).await;
    while carol.next_json().await["requestId"] != "a" {}
    let data = json!({ "productId": "P", "quantity": 1, "totalAmount": 2 });
    let burst: Vec<String> = (0..40)
        .map(|n| envelope("create", &format!("b{n}"), json!({ "resourceType": "order", "data": data })))
        .collect();
    carol.send_texts(&burst).await;
    let mut answered = 0;
    while answered < burst.len() {
        let reply = carol.next_json().await;
        assert_eq!(reply["type"], "create", "{reply}");
        answered += 1;
    }
    let (_, later) = scrape().await;
    let commits =
        value(&later, "tidings_storage_batch_writes_count") - value(&after, "tidings_storage_batch_writes_count");
    let writes = value(&later, "tidings_storage_batch_writes_sum") - value(&after, "tidings_storage_batch_writes_sum");
    assert!(writes >= 40.0, "{writes} writes");
    assert!(commits <= 20.0, "40 pipelined creates took {commits} commits");

    // A create that waits for the one queued before it (of an ephemeral type) is timed once, as every request is.
    let pair = [
        envelope("create", "q1", json!({ "resourceType": "order", "data": data })),
        envelope("create", "q2", json!({ "resourceType": "pulse", "data": data })),
    ];
    carol.send_texts(&pair).await;
    for request_id in ["q1", "q2"] {
        let reply = carol.next_json().await;
        assert_eq!(
            (reply["type"].as_str(), reply["requestId"].as_str()),
            (Some("create"), Some(request_id)),
            "{reply}"
        );
    }
    let (_, last) = scrape().await;
    let timed = value(&last, r#"tidings_request_duration_seconds_count{type="create"}"#)
        - value(&later, r#"tidings_request_duration_seconds_count{type="create"}"#);
    assert_eq!(timed, 2.0, "two creates, timed {timed} times");
    // Only series that can move are shown: no message a server sends is counted as received, none a client sends
    // as sent, and a message that is no request has no duration.
    for absent in [
        r#"tidings_messages_in_total{type="event""#,
        r#"tidings_messages_out_total{type="auth""#,
        r#"tidings_request_duration_seconds_count{type="pong""#,
    ] {
        assert!(!last.lines().any(|line| without_node(line).starts_with(absent)), "{absent} in {last}");
    }
}
