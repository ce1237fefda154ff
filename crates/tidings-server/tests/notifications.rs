//! Notifications on a real server: the built-in order status rule, delivery to every connection, the offline
//! backlog delivered once, the `notifications` subscription; and the event log's retention.

mod common;

use common::{call, next_push, on_both_backends, on_both_backends_with, rest, TestServer};
use serde_json::{json, Value};
use tidings_client::{Client, Pushes};
use tidings_protocol::{Notification, ServerMessage};

on_both_backends!(
    a_status_change_notifies_the_owner_on_every_connection,
    notifications_sent_while_offline_arrive_once_after_sign_in,
    a_notifications_subscription_resumes_by_seq_without_repeats,
);

const KEY: &str = "a-key-for-the-notification-tests";

fn with_a_key(config: &mut tidings_server::Config) {
    config.api_keys = vec![KEY.to_owned()];
}

on_both_backends_with!(crate::with_a_key; a_user_who_signed_in_just_before_a_restart_is_among_everyone_after_it);

/// A user who signs in and leaves just before the server stops still counts among everyone after the restart:
/// signing in only notes the user in memory, and a graceful stop writes down what it noted.
async fn a_user_who_signed_in_just_before_a_restart_is_among_everyone_after_it(server: TestServer) {
    drop(server.signed_in("ada").await);
    let server = server.restart_with(with_a_key).await;
    let body = json!({ "to": "*", "title": "Back online" }).to_string();
    let headers = [("X-Api-Key", KEY), ("Content-Type", "application/json")];
    let sent = rest::send(server.addr, "POST", "/api/v1/notifications", &headers, body.as_bytes()).await;
    assert_eq!((sent.status, sent.json()["recipients"].as_u64()), (202, Some(1)), "{}", sent.body);
    let (_ada, mut pushes) = server.signed_in("ada").await;
    assert_eq!(next_notification(&mut pushes).await.title.as_str(), "Back online");
}

async fn order_for(client: &Client) -> String {
    // A fresh requestId each time: a repeated one would replay the first create.
    let request_id = format!("c-{:x}", rand_id());
    let data = json!({ "productId": "P1", "quantity": 1, "totalAmount": 5 });
    call(client, "create", &request_id, json!({ "resourceType": "order", "data": data })).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn rand_id() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn set_status(admin: &Client, id: &str, status: &str) {
    call(
        admin,
        "update",
        &format!("s-{status}"),
        json!({ "resourceType": "order", "id": id, "patch": { "status": status } }),
    )
    .await;
}

async fn next_notification(pushes: &mut Pushes) -> Notification {
    loop {
        match next_push(pushes).await {
            ServerMessage::Notification(notification) => return notification,
            // Events of other subscriptions may come between; these tests look at notifications only.
            ServerMessage::Event(_) => continue,
            other => panic!("expected a notification, got {other:?}"),
        }
    }
}

async fn a_status_change_notifies_the_owner_on_every_connection(server: TestServer) {
    let (alice, mut phone) = server.signed_in("alice").await;
    let (_laptop, mut laptop) = server.signed_in("alice").await;
    let (admin, _a) = server.signed_in_as("root", &["admin"]).await;
    let id = order_for(&alice).await;
    set_status(&admin, &id, "paid").await;
    for pushes in [&mut phone, &mut laptop] {
        let notification = next_notification(pushes).await;
        assert_eq!(notification.title.as_str(), format!("order {id}: status is now paid"));
        assert_eq!(notification.body.as_str(), "Its status changed from pending to paid.");
        assert_eq!(
            Value::Object(notification.data),
            json!({ "resourceType": "order", "id": id, "field": "status", "from": "pending", "to": "paid" })
        );
        assert!(notification.subscription_id.is_none(), "a plain push");
        assert!(notification.id.as_str().starts_with("NTF-"));
    }
    // The owner changing something else is no news to the owner.
    call(&alice, "update", "q", json!({ "resourceType": "order", "id": id, "patch": { "quantity": 2 } })).await;
    set_status(&admin, &id, "shipped").await;
    assert_eq!(next_notification(&mut phone).await.data.get("to"), Some(&json!("shipped")));
}

async fn notifications_sent_while_offline_arrive_once_after_sign_in(server: TestServer) {
    let (admin, _a) = server.signed_in_as("root", &["admin"]).await;
    let id = {
        let (alice, _p) = server.signed_in("alice").await;
        order_for(&alice).await
    };
    set_status(&admin, &id, "paid").await;
    set_status(&admin, &id, "shipped").await;
    // The built-in rule has stored both notifications before the updates were answered.
    let (alice, mut pushes) = server.signed_in("alice").await;
    let first = next_notification(&mut pushes).await;
    let second = next_notification(&mut pushes).await;
    assert_eq!(
        (first.data.get("to"), second.data.get("to")),
        (Some(&json!("paid")), Some(&json!("shipped"))),
        "the backlog arrives in order"
    );
    assert!(second.seq.get() > first.seq.get());
    alice.ping().await.expect("pong");
    drop((alice, pushes));
    let (again, mut pushes) = server.signed_in("alice").await;
    again.ping().await.expect("pong");
    assert!(
        pushes.next_within(std::time::Duration::from_millis(300)).await.is_none(),
        "delivered notifications never come twice"
    );
}

async fn a_notifications_subscription_resumes_by_seq_without_repeats(server: TestServer) {
    let (alice, mut pushes) = server.signed_in("alice").await;
    let (admin, _a) = server.signed_in_as("root", &["admin"]).await;
    let id = order_for(&alice).await;
    set_status(&admin, &id, "paid").await;
    let plain = next_notification(&mut pushes).await;
    assert!(plain.subscription_id.is_none());

    let reply = call(&alice, "subscribe", "n", json!({ "topic": "notifications", "since": 0 })).await;
    assert_eq!((reply["subscriptionId"].as_str(), reply["recovered"].as_bool()), (Some("notifications"), Some(true)));
    // What this connection already got plainly is not replayed; what comes now carries the subscription.
    set_status(&admin, &id, "shipped").await;
    let subscribed = next_notification(&mut pushes).await;
    assert_eq!(subscribed.subscription_id.as_ref().map(|s| s.as_str()), Some("notifications"));
    assert_eq!(subscribed.data.get("to"), Some(&json!("shipped")));
    // A notification is marked delivered once its write is flushed, before the session answers anything else; this
    // round trip makes sure of it, or the next connection could still get it as pending at sign-in.
    alice.ping().await.expect("pong");

    // Another connection resuming from 0 gets the whole history, each once.
    let (other, mut other_pushes) = server.signed_in("alice").await;
    let reply = call(&other, "subscribe", "n", json!({ "topic": "notifications", "since": 0 })).await;
    assert_eq!(reply["seq"].as_u64(), Some(subscribed.seq.get()));
    let replayed: Vec<u64> = vec![
        next_notification(&mut other_pushes).await.seq.get(),
        next_notification(&mut other_pushes).await.seq.get(),
    ];
    assert_eq!(replayed, [plain.seq.get(), subscribed.seq.get()]);
}

#[tokio::test]
async fn events_past_their_retention_are_dropped_and_a_resume_says_so() {
    let server = TestServer::start_with(|c| {
        c.events.retain_count = 3;
        c.events.prune_interval_ms = 20;
    })
    .await;
    let (alice, _a) = server.signed_in("alice").await;
    for _ in 0..10 {
        order_for(&alice).await;
    }
    let (admin, mut pushes) = server.signed_in_as("root", &["admin"]).await;
    // The pruner runs on its own; wait until the log has dropped the old events.
    let mut attempts = 0;
    loop {
        let message = json!({ "type": "subscribe", "timestamp": 1, "requestId": format!("r{attempts}"), "payload": { "topic": "order", "since": 1 } });
        let reply = admin.request_text(&format!("r{attempts}"), message.to_string()).await.expect("reply");
        let ServerMessage::Subscribe(subscribed) = reply.message else { panic!("subscribe: {reply:?}") };
        if subscribed.recovered == Some(false) {
            break;
        }
        // Not yet pruned: leave and try again.
        call(&admin, "unsubscribe", &format!("u{attempts}"), json!({ "subscriptionId": "order" })).await;
        while pushes.next_within(std::time::Duration::from_millis(1)).await.is_some() {}
        attempts += 1;
        assert!(attempts < 500, "the log was never pruned");
    }
    call(&admin, "unsubscribe", "u", json!({ "subscriptionId": "order" })).await;
    while pushes.next_within(std::time::Duration::from_millis(50)).await.is_some() {}
    let reply = call(&admin, "subscribe", "s", json!({ "topic": "order", "since": 7 })).await;
    assert_eq!(reply["recovered"], true, "the newest three are kept");
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        match next_push(&mut pushes).await {
            ServerMessage::Event(event) => seqs.push(event.seq.map(|s| s.get()).unwrap_or_default()),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    assert_eq!(seqs, [8, 9, 10]);
}
