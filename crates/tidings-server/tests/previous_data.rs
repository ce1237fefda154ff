//! A type that keeps `previous_data`: its update events carry the data before the change, live, in a replay and
//! to a webhook, without the fields a field rule hides from the subscriber; a type without the setting, and events
//! other than updates, carry none.

mod common;

use common::receiver::Receiver;
use common::{call, next_event, TestServer};
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_protocol::Event;
use tidings_server::config::{FieldRulesConfig, WebhookConfig};
use tidings_server::Config;

/// Orders keep their previous data, and only admins may read `totalAmount`; `stock` is a copy that keeps none.
/// A webhook receives the order events at `url`.
fn audited(url: String) -> impl FnOnce(&mut Config) {
    move |config: &mut Config| {
        let mut stock = config.resource_types[0].clone();
        stock.name = "stock".to_owned();
        stock.id_prefix = "STK".to_owned();
        config.resource_types.push(stock);
        let orders = &mut config.resource_types[0];
        orders.previous_data = true;
        orders
            .field_rules
            .insert("totalAmount".to_owned(), FieldRulesConfig { read: Some(vec![json!("role:admin")]), write: None });
        config.webhooks = vec![WebhookConfig {
            name: "audit".to_owned(),
            url,
            resource_type: "order".to_owned(),
            events: Vec::new(),
            query: None,
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
            secret_file: None,
            timeout_ms: 2_000,
            max_failures: 3,
            retry_base_ms: 20,
            retry_max_ms: 100,
            lease_ms: 15_000,
        }];
    }
}

async fn create(client: &Client, resource_type: &str, request_id: &str) -> String {
    let data = json!({ "productId": "P1", "quantity": 2, "totalAmount": 20 });
    let created = call(client, "create", request_id, json!({ "resourceType": resource_type, "data": data })).await;
    created["id"].as_str().expect("an id").to_owned()
}

fn previous(event: &Event) -> Option<Value> {
    event.previous_data.clone().map(Value::Object)
}

#[tokio::test]
async fn update_events_carry_the_data_before_as_the_subscriber_may_see_it() {
    let endpoint = Receiver::start().await;
    let server = TestServer::start_with(audited(endpoint.url.clone())).await;
    let (alice, mut pushes) = server.signed_in("alice").await;
    let (admin, mut admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    for (client, topic) in [(&alice, "order"), (&alice, "stock"), (&admin, "order")] {
        call(client, "subscribe", topic, json!({ "topic": topic })).await;
    }
    let order = create(&alice, "order", "c1").await;
    let patch = json!({ "resourceType": "order", "id": order, "patch": { "quantity": 5 } });
    call(&alice, "update", "u1", patch).await;

    let created = next_event(&mut pushes).await;
    assert_eq!((created.event_type.as_str(), previous(&created)), ("order_created", None), "only updates carry it");
    let updated = next_event(&mut pushes).await;
    assert_eq!(updated.event_type.as_str(), "order_updated");
    assert_eq!(previous(&updated), Some(json!({ "productId": "P1", "quantity": 2, "status": "pending" })));
    assert_eq!(updated.data["quantity"], 5);
    next_event(&mut admin_pushes).await;
    let seen_by_admin = next_event(&mut admin_pushes).await;
    assert_eq!(
        previous(&seen_by_admin),
        Some(json!({ "productId": "P1", "quantity": 2, "status": "pending", "totalAmount": 20 })),
        "an admin may read totalAmount, before as after"
    );

    // A type without the setting carries none.
    let stock = create(&alice, "stock", "c2").await;
    let patch = json!({ "resourceType": "stock", "id": stock, "patch": { "quantity": 3 } });
    call(&alice, "update", "u2", patch).await;
    next_event(&mut pushes).await;
    let plain = next_event(&mut pushes).await;
    assert_eq!((plain.event_type.as_str(), previous(&plain)), ("stock_updated", None));

    // A replay tells the update as it was told live.
    let (later, mut later_pushes) = server.signed_in("alice").await;
    call(&later, "subscribe", "again", json!({ "topic": "order", "since": 0 })).await;
    next_event(&mut later_pushes).await;
    let replayed = next_event(&mut later_pushes).await;
    assert_eq!(previous(&replayed), previous(&updated));

    // And the webhook, which reads as a server, gets the whole data before.
    endpoint.until(2, "the update", |received| received.len() >= 2).await;
    let delivered =
        endpoint.accepted().into_iter().map(|r| r.json()).find(|e| e["payload"]["eventType"] == "order_updated");
    let delivered = delivered.expect("the update was delivered");
    let before = &delivered["payload"]["previousData"];
    assert_eq!((before["quantity"].clone(), before["totalAmount"].clone()), (json!(2), json!(20)), "{delivered}");
}

/// A resource that comes into a subscriber's sight arrives without the data it had while hidden from them.
#[tokio::test]
async fn a_resource_that_comes_into_sight_brings_no_data_from_before() {
    let server = TestServer::start_with(|config: &mut Config| {
        let orders = &mut config.resource_types[0];
        orders.previous_data = true;
        // Paid orders are anyone's to read; the rest, their owner's and admins'.
        orders.permissions.read =
            vec![json!("owner"), json!("role:admin"), json!({ "field": "resource.data.status", "eq": "paid" })];
    })
    .await;
    let (alice, _pushes) = server.signed_in("alice").await;
    let (bob, mut bob_pushes) = server.signed_in("bob").await;
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    call(&bob, "subscribe", "s", json!({ "topic": "order" })).await;
    let order = create(&alice, "order", "c1").await;
    let paid = json!({ "resourceType": "order", "id": order, "patch": { "status": "paid", "quantity": 9 } });
    call(&admin, "update", "u1", paid).await;
    let seen = next_event(&mut bob_pushes).await;
    assert_eq!((seen.event_type.as_str(), seen.data["status"].clone()), ("order_updated", json!("paid")));
    assert_eq!(previous(&seen), None, "what the order was while Bob could not read it stays hidden: {seen:?}");
    // Once in sight, its updates carry what it was.
    let more = json!({ "resourceType": "order", "id": order, "patch": { "quantity": 10 } });
    call(&admin, "update", "u2", more).await;
    let seen = next_event(&mut bob_pushes).await;
    assert_eq!(previous(&seen).map(|p| p["quantity"].clone()), Some(json!(9)));
}
