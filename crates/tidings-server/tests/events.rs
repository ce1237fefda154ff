//! Subscriptions and events on a real server: live pushes, privacy, resume without loss, fan-out, slow readers.

mod common;

use std::time::Duration;

use common::{call, next_push, on_both_backends, raw, TestServer, PATIENCE};
use serde_json::{json, Value};
use tidings_client::{Client, Push, Pushes};
use tidings_protocol::{Event, ServerMessage};

// Storage backs the event log and the replay, so these run on SQLite and on PostgreSQL; the tests of the hub
// alone (fan-out, slow readers, re-checks) run on the default backend.
on_both_backends!(
    a_subscriber_receives_every_change_with_the_full_resource,
    a_user_never_receives_another_users_private_events,
    a_resource_topic_follows_one_resource_until_it_is_deleted,
    resume_with_since_replays_every_missed_event_once_then_goes_live,
);

async fn create(client: &Client, n: u64) -> String {
    let data = json!({ "productId": format!("P{n}"), "quantity": n, "totalAmount": 1.5 });
    let created = call(client, "create", &format!("c{n}"), json!({ "resourceType": "order", "data": data })).await;
    created["id"].as_str().expect("id").to_owned()
}

async fn subscribe(client: &Client, topic: &str, since: Option<u64>) -> Value {
    let mut payload = json!({ "topic": topic });
    if let Some(since) = since {
        payload["since"] = json!(since);
    }
    call(client, "subscribe", &format!("s-{topic}"), payload).await
}

async fn next_event(pushes: &mut Pushes) -> Event {
    match next_push(pushes).await {
        ServerMessage::Event(event) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn seq(event: &Event) -> u64 {
    event.seq.map(|s| s.get()).expect("a server event has a seq")
}

async fn a_subscriber_receives_every_change_with_the_full_resource(server: TestServer) {
    let (admin, mut admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let reply = subscribe(&admin, "order", None).await;
    assert_eq!(
        (reply["subscriptionId"].as_str(), reply["topic"].as_str(), reply["seq"].as_u64()),
        (Some("order"), Some("order"), Some(0))
    );
    assert!(reply.get("recovered").is_none(), "recovered only answers a since");

    let (alice, _alice_pushes) = server.signed_in("alice").await;
    let id = create(&alice, 2).await;
    let created = next_event(&mut admin_pushes).await;
    assert_eq!(created.event_type.as_str(), "order_created");
    assert_eq!(
        Value::Object(created.data.clone()),
        json!({ "productId": "P2", "quantity": 2, "totalAmount": 1.5, "status": "pending" })
    );
    assert_eq!(
        (created.id.as_ref().map(|i| i.as_str()), created.version.map(|v| v.get())),
        (Some(id.as_str()), Some(1))
    );
    assert_eq!(created.owner_id.as_ref().map(|o| o.as_str()), Some("alice"));
    assert_eq!(created.actor.as_ref().map(|a| a.id.as_str()), Some("alice"));
    assert_eq!(created.subscription_id.as_ref().map(|s| s.as_str()), Some("order"));
    assert_eq!(seq(&created), 1);

    call(&alice, "update", "u", json!({ "resourceType": "order", "id": id, "patch": { "quantity": 3 } })).await;
    let updated = next_event(&mut admin_pushes).await;
    assert_eq!(
        (updated.event_type.as_str(), seq(&updated), updated.data.get("quantity")),
        ("order_updated", 2, Some(&json!(3)))
    );
    assert_eq!(updated.changed, Some(vec!["quantity".to_owned()]), "an update names what it changed");
    assert_eq!(created.changed, None, "a creation changes no field of an earlier version");
    call(&alice, "delete", "d", json!({ "resourceType": "order", "id": id })).await;
    let deleted = next_event(&mut admin_pushes).await;
    assert_eq!(
        (deleted.event_type.as_str(), seq(&deleted), deleted.version.map(|v| v.get())),
        ("order_deleted", 3, Some(3))
    );
    assert_eq!(deleted.data.get("quantity"), Some(&json!(3)), "a deletion carries the last data");
    assert_eq!(deleted.changed, None);
}

async fn a_user_never_receives_another_users_private_events(server: TestServer) {
    let (bob, mut bob_pushes) = server.signed_in("bob").await;
    subscribe(&bob, "order", None).await;
    let (alice, _a) = server.signed_in("alice").await;
    let alices = create(&alice, 1).await;
    let bobs = create(&bob, 2).await;
    // Events of a topic arrive in order, so had alice's reached bob, it would come first.
    let event = next_event(&mut bob_pushes).await;
    assert_eq!(event.id.as_ref().map(|i| i.as_str()), Some(bobs.as_str()));
    assert_eq!(seq(&event), 2, "seq counts the type's changes; bob's view skips alice's");
    let refused = alice_topic_refused(&bob, &alices).await;
    assert_eq!(refused, "NOT_FOUND");
}

async fn alice_topic_refused(bob: &Client, alices: &str) -> String {
    let message = json!({ "type": "subscribe", "timestamp": 1, "requestId": "x", "payload": { "topic": format!("order:{alices}") } });
    let reply = bob.request_text("x", message.to_string()).await.expect("reply");
    match reply.message {
        ServerMessage::Error(error) => error.code.as_str().to_owned(),
        other => panic!("bob may not subscribe to alice's order: {other:?}"),
    }
}

async fn a_resource_topic_follows_one_resource_until_it_is_deleted(server: TestServer) {
    let (alice, mut pushes) = server.signed_in("alice").await;
    let id = create(&alice, 1).await;
    let other = create(&alice, 2).await;
    let reply = subscribe(&alice, &format!("order:{id}"), None).await;
    assert_eq!(reply["seq"], 1, "a resource topic's seq is the resource's version");
    call(&alice, "update", "u1", json!({ "resourceType": "order", "id": other, "patch": { "quantity": 5 } })).await;
    call(&alice, "update", "u2", json!({ "resourceType": "order", "id": id, "patch": { "quantity": 7 } })).await;
    let event = next_event(&mut pushes).await;
    assert_eq!((event.id.as_ref().map(|i| i.as_str()), seq(&event)), (Some(id.as_str()), 2));
    call(&alice, "delete", "d", json!({ "resourceType": "order", "id": id })).await;
    assert_eq!(next_event(&mut pushes).await.event_type.as_str(), "order_deleted");
    match next_push(&mut pushes).await {
        ServerMessage::Unsubscribe(ended) => {
            assert_eq!(ended.reason.map(|r| r.code.as_str().to_owned()).as_deref(), Some("NOT_FOUND"));
        }
        other => panic!("expected the end of the subscription, got {other:?}"),
    }
}

async fn resume_with_since_replays_every_missed_event_once_then_goes_live(server: TestServer) {
    let (admin, mut pushes) = server.signed_in_as("root", &["admin"]).await;
    subscribe(&admin, "order", None).await;
    let (alice, _a) = server.signed_in("alice").await;
    create(&alice, 1).await;
    let last_seen = seq(&next_event(&mut pushes).await);
    drop((admin, pushes));

    // While the admin is away, alice keeps changing orders.
    for n in 2..=6 {
        create(&alice, n).await;
    }
    let (admin, mut pushes) = server.signed_in_as("root", &["admin"]).await;
    // And she goes on while the admin resumes: the hand-over must lose and repeat nothing.
    let writer = {
        let alice = alice.clone();
        tokio::spawn(async move {
            for n in 7..=30 {
                create(&alice, n).await;
            }
        })
    };
    let reply = subscribe(&admin, "order", Some(last_seen)).await;
    assert_eq!(reply["recovered"], true);
    let mut seqs = Vec::new();
    while seqs.len() < 29 {
        seqs.push(seq(&next_event(&mut pushes).await));
    }
    writer.await.expect("writer");
    assert_eq!(seqs, (2..=30).collect::<Vec<u64>>(), "every missed and new event, in order, exactly once");
    assert!(pushes
        .next_within(Duration::from_millis(200))
        .await
        .is_none_or(|p| !matches!(p, Push::Message(ref e) if matches!(e.message, ServerMessage::Event(_)))));

    let (late, _l) = server.signed_in_as("late", &["admin"]).await;
    let future = subscribe(&late, "order", Some(10_000)).await;
    assert_eq!(future["recovered"], false, "a since beyond the log means another log");
}

#[tokio::test]
async fn a_thousand_subscribers_each_receive_every_event_in_order() {
    const SUBSCRIBERS: usize = 1_000;
    const EVENTS: u64 = 20;
    let server = TestServer::start_with(|c| c.limits.max_connections_per_user = SUBSCRIBERS + 10).await;
    let token = server.token_for("watcher", &["admin"], Duration::from_secs(600));
    let mut subscribers = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let (client, pushes, _) = Client::connect(&server.url).await.expect("connect");
        client.auth(&token).await.expect("auth");
        subscribe(&client, "order", None).await;
        subscribers.push((client, pushes));
    }
    let (alice, _a) = server.signed_in("alice").await;
    for n in 1..=EVENTS {
        create(&alice, n).await;
    }
    let checks = subscribers.into_iter().map(|(client, mut pushes)| {
        tokio::spawn(async move {
            let _client = client;
            let mut seqs = Vec::new();
            while seqs.len() < EVENTS as usize {
                seqs.push(seq(&next_event(&mut pushes).await));
            }
            seqs
        })
    });
    for check in checks {
        let seqs = check.await.expect("subscriber");
        assert_eq!(seqs, (1..=EVENTS).collect::<Vec<u64>>());
    }
}

#[tokio::test]
async fn a_slow_reader_is_cut_off_with_4001_while_the_others_keep_up() {
    let server = TestServer::start_with(|c| {
        c.limits.outbound_queue = 8;
        c.limits.max_message_bytes = 200_000;
        c.limits.rate_burst = 10_000;
        c.limits.rate_per_second = 10_000;
        // The slow reader's socket fills long before the last event: its session then waits on a write until the
        // reader reads at the end. This test is about the mailbox, so the write pace must not cut it off first
        // (on a busy machine the 300 creates took longer than the default 10 s, and the socket was reset).
        c.limits.write_timeout_ms = 120_000;
    })
    .await;
    let token = server.token_for("watcher", &["admin"], Duration::from_secs(600));
    let mut slow = raw::open(server.addr).await;
    for (n, message) in [
        json!({"type":"connect","timestamp":1,"requestId":"1","payload":{"protocolVersion":"1.0"}}),
        json!({"type":"auth","timestamp":1,"requestId":"2","payload":{"token":token}}),
        json!({"type":"subscribe","timestamp":1,"requestId":"3","payload":{"topic":"order"}}),
    ]
    .into_iter()
    .enumerate()
    {
        slow.send_text(&message.to_string()).await;
        let reply: Value = serde_json::from_str(&slow.next_text().await.expect("reply")).expect("json");
        assert_eq!(reply["requestId"], json!((n + 1).to_string()), "{reply}");
    }
    // From here on the slow reader reads nothing, until the end.
    let (fast, mut fast_pushes) = server.signed_in_as("fast", &["admin"]).await;
    subscribe(&fast, "order", None).await;
    let (alice, _a) = server.signed_in("alice").await;
    const EVENTS: u64 = 300;
    let note = "x".repeat(60_000);
    for n in 1..=EVENTS {
        let data = json!({ "productId": "P", "quantity": n, "totalAmount": 1, "note": note });
        call(&alice, "create", &format!("c{n}"), json!({ "resourceType": "order", "data": data })).await;
        // The fast subscriber keeps up with every event as it happens.
        assert_eq!(seq(&tokio::time::timeout(PATIENCE, next_event(&mut fast_pushes)).await.expect("in time")), n);
    }
    let (texts, code) = slow.until_close().await;
    assert_eq!(code, Some(4001));
    let last: Value = serde_json::from_str(texts.last().expect("disconnect")).expect("json");
    assert_eq!(last["payload"], json!({ "code": 4001, "reason": "slow consumer", "reconnect": true }));
    let events = texts.iter().filter(|t| t.contains(r#""type":"event""#)).count();
    assert!(events < EVENTS as usize, "the slow reader was dropped from the fan-out, not buffered ({events} events)");
}

#[tokio::test]
async fn a_reauthentication_ends_subscriptions_the_new_token_does_not_allow() {
    let server = TestServer::start_with(|c| {
        let mut ledger = tidings_server::config::default_types().remove(0);
        ledger.name = "ledger".to_owned();
        ledger.id_prefix = "LED".to_owned();
        ledger.permissions.read = vec![serde_json::json!("role:auditor")];
        c.resource_types.push(ledger);
    })
    .await;
    let (client, mut pushes) = server.connected().await;
    client.auth(&server.token_for("ann", &["auditor"], Duration::from_secs(600))).await.expect("auth");
    subscribe(&client, "ledger", None).await;
    subscribe(&client, "order", None).await;
    client.auth(&server.token_for("ann", &[], Duration::from_secs(600))).await.expect("refresh");
    match next_push(&mut pushes).await {
        ServerMessage::Unsubscribe(ended) => {
            assert_eq!(ended.subscription_id.as_str(), "ledger");
            assert_eq!(ended.reason.map(|r| r.code.as_str().to_owned()).as_deref(), Some("FORBIDDEN"));
        }
        other => panic!("expected the ledger subscription to end, got {other:?}"),
    }
    // The order subscription goes on.
    let id = create(&client, 1).await;
    assert_eq!(next_event(&mut pushes).await.id.map(|i| i.into_string()), Some(id));
}

#[tokio::test]
async fn subscribing_while_events_keep_coming_loses_none_after_the_replied_seq() {
    let server = TestServer::start().await;
    let (alice, _a) = server.signed_in("alice").await;
    let writer = {
        let alice = alice.clone();
        tokio::spawn(async move {
            for n in 1..=40 {
                create(&alice, n).await;
            }
        })
    };
    // Subscribe in the middle of the storm: every event after the seq the reply names must follow, in order.
    create(&alice, 100).await;
    let (admin, mut pushes) = server.signed_in_as("root", &["admin"]).await;
    let reply = subscribe(&admin, "order", None).await;
    let from = reply["seq"].as_u64().expect("seq");
    writer.await.expect("writer");
    let head = 41;
    let mut seqs = Vec::new();
    while seqs.last().copied().unwrap_or(from) < head {
        seqs.push(seq(&next_event(&mut pushes).await));
    }
    assert_eq!(
        seqs,
        (from + 1..=head).collect::<Vec<u64>>(),
        "no event between the reply's seq and the live ones is lost"
    );
}
