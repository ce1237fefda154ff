//! One connection's notifications, over a real server: in `seq` order however their sends race, never twice
//! however long the connection lives, and none lost when a subscription starts while one is on its way.

mod common;

use std::time::Duration;

use common::{call, next_push, TestServer};
use serde_json::json;
use tidings_client::{Client, Pushes};
use tidings_protocol::{Notification, ServerMessage};
use tidings_server::storage::{NewNotification, Notifications, Recipients, Sqlite};

async fn next_notification(pushes: &mut Pushes) -> Notification {
    match next_push(pushes).await {
        ServerMessage::Notification(notification) => notification,
        other => panic!("expected a notification, got {other:?}"),
    }
}

/// Creates an order of `owner`'s and returns its id.
async fn order(owner: &Client, n: usize) -> String {
    let data = json!({ "productId": format!("P{n}"), "quantity": 1, "totalAmount": 5 });
    let created = call(owner, "create", &format!("o{n}"), json!({ "resourceType": "order", "data": data })).await;
    created["id"].as_str().expect("id").to_owned()
}

/// A server that lets one connection send as fast as a test needs.
async fn fast_server() -> TestServer {
    TestServer::start_with(|c| {
        c.limits.rate_per_second = 100_000;
        c.limits.rate_burst = 100_000;
    })
    .await
}

/// An admin changes the status of alice's orders 1,100 times, ten changes at once: each notifies her, and the
/// sends race. Her connection receives them in `seq` order; and when it then subscribes to `notifications` from
/// 0, the replay sends none of them again (before, the connection remembered only the latest 1,024).
#[tokio::test]
async fn a_long_lived_connection_gets_every_notification_once_in_order() {
    let server = fast_server().await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let mut orders = Vec::new();
    for n in 0..10 {
        orders.push(order(&alice, n).await);
    }
    const CHANGES: usize = 1_100;
    let mut lanes = Vec::new();
    for (lane, id) in orders.into_iter().enumerate() {
        let admin = admin.clone();
        lanes.push(tokio::spawn(async move {
            for n in 0..CHANGES / 10 {
                let status = ["paid", "shipped", "cancelled", "pending"][n % 4];
                let patch = json!({ "resourceType": "order", "id": id, "patch": { "status": status } });
                call(&admin, "update", &format!("u{lane}-{n}"), patch).await;
            }
        }));
    }
    for lane in lanes {
        lane.await.expect("an admin lane");
    }
    for expected in 1..=CHANGES as u64 {
        assert_eq!(next_notification(&mut pushes).await.seq.get(), expected, "in seq order, each once");
    }
    let reply = call(&alice, "subscribe", "n", json!({ "topic": "notifications", "since": 0 })).await;
    assert_eq!(reply["recovered"], json!(true), "{reply}");
    // The next notification is a new one, through the subscription: none of the 1,100 came again.
    let id = order(&alice, 99).await;
    call(&admin, "update", "last", json!({ "resourceType": "order", "id": id, "patch": { "status": "paid" } })).await;
    let next = next_notification(&mut pushes).await;
    assert_eq!(next.seq.get(), CHANGES as u64 + 1, "a replayed notification came again: {next:?}");
    assert_eq!(next.subscription_id.as_ref().map(|s| s.as_str()), Some("notifications"));
}

/// Notification 1 is stored by another node and its broker message is slow; notification 2 is stored here and
/// reaches the hub first. The hub holds 2 until 1 is read from storage, and a subscription that starts in that
/// moment, without `since`, receives both, in order (before, it took its start from storage's head, 2, and
/// dropped 1 as if a replay had sent it).
#[tokio::test]
async fn a_subscription_without_since_receives_the_notifications_on_their_way() {
    let server = fast_server().await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let id = order(&alice, 1).await;
    let other_node = Sqlite::open(&server.data_dir().join("tidings.db"), Duration::from_secs(60)).expect("storage");
    let first = NewNotification {
        id: "NTF-other-node".to_owned(),
        level: "info".to_owned(),
        title: "from another node".to_owned(),
        body: String::new(),
        data: serde_json::Map::new(),
    };
    let stored = other_node.notify(Recipients::Users(vec!["alice".to_owned()]), first).await.expect("stored");
    assert_eq!(stored[0].seq, 1);
    call(&admin, "update", "u", json!({ "resourceType": "order", "id": id, "patch": { "status": "paid" } })).await;
    let reply = call(&alice, "subscribe", "n", json!({ "topic": "notifications" })).await;
    assert!(reply.get("recovered").is_none(), "{reply}");
    let received = [next_notification(&mut pushes).await, next_notification(&mut pushes).await];
    assert_eq!(received.each_ref().map(|n| n.seq.get()), [1, 2]);
    assert!(received.iter().all(|n| n.subscription_id.is_some()), "both through the subscription: {received:?}");
}

/// Delivered notifications have a retention. Once they are pruned, a `notifications` subscription from before
/// them says `recovered: false`, as a resume of events does; one from the head still recovers.
#[tokio::test]
async fn a_resume_from_before_pruned_notifications_is_not_recovered() {
    let server = TestServer::start_with(|c| {
        c.notifications.retain_ms = 0;
        c.events.prune_interval_ms = 20;
        c.limits.rate_per_second = 100_000;
        c.limits.rate_burst = 100_000;
    })
    .await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let id = order(&alice, 1).await;
    for status in ["paid", "shipped"] {
        call(&admin, "update", status, json!({ "resourceType": "order", "id": id, "patch": { "status": status } }))
            .await;
        next_notification(&mut pushes).await;
    }
    // The round trip makes sure both were marked delivered (after their flush).
    alice.ping().await.expect("pong");
    let (other, _other_pushes) = server.signed_in("alice").await;
    for attempt in 0.. {
        let reply =
            call(&other, "subscribe", &format!("s{attempt}"), json!({ "topic": "notifications", "since": 0 })).await;
        if reply["recovered"] == json!(false) {
            assert_eq!(reply["seq"], json!(2));
            break;
        }
        assert!(attempt < 500, "the delivered notifications were never pruned");
        call(&other, "unsubscribe", &format!("u{attempt}"), json!({ "subscriptionId": "notifications" })).await;
    }
    call(&other, "unsubscribe", "u", json!({ "subscriptionId": "notifications" })).await;
    let reply = call(&other, "subscribe", "from-head", json!({ "topic": "notifications", "since": 2 })).await;
    assert_eq!(reply["recovered"], json!(true), "{reply}");
}
