//! The authorization matrix: anonymous, user A, user B and an admin, against every operation on their own and
//! others' orders, over WebSocket, on each storage backend.

mod common;

use common::{exchange, on_both_backends, outcome, TestServer};
use serde_json::{json, Value};
use tidings_client::Client;

on_both_backends!(every_actor_gets_exactly_what_the_rules_allow);

async fn order(client: &Client) -> String {
    let data = json!({ "productId": "P", "quantity": 1, "totalAmount": 2 });
    let (_, created) =
        exchange(client, "create", &format!("c-{}", rand_suffix()), json!({ "resourceType": "order", "data": data }))
            .await;
    created["id"].as_str().expect("created").to_owned()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn every_actor_gets_exactly_what_the_rules_allow(server: TestServer) {
    let (anon, _n) = server.connected().await;
    let (alice, _a) = server.signed_in("alice").await;
    let (bob, _b) = server.signed_in("bob").await;
    let (admin, _c) = server.signed_in_as("root", &["admin"]).await;
    let actors: [(&str, &Client); 4] = [("anonymous", &anon), ("alice", &alice), ("bob", &bob), ("admin", &admin)];

    let create = json!({ "resourceType": "order", "data": { "productId": "P", "quantity": 1, "totalAmount": 2 } });
    let mut table = Vec::new();
    for (name, client) in actors {
        // Each actor's view of alice's order (a fresh one per actor, so deletes do not interfere).
        let alices = order(&alice).await;
        let read = json!({ "resourceType": "order", "id": alices });
        let change = json!({ "resourceType": "order", "id": alices, "patch": { "quantity": 5 } });
        let status = json!({ "resourceType": "order", "id": alices, "patch": { "status": "paid" } });
        let topic = json!({ "topic": format!("order:{alices}") });
        let remove = json!({ "resourceType": "order", "id": alices });
        let row = [
            outcome(client, "create", create.clone()).await,
            outcome(client, "read", read).await,
            outcome(client, "update", change).await,
            outcome(client, "update", status).await,
            outcome(client, "subscribe", topic).await,
            outcome(client, "delete", remove).await,
        ];
        table.push((name, row.to_vec()));
    }
    let expected = [
        ("anonymous", ["UNAUTHORIZED", "UNAUTHORIZED", "UNAUTHORIZED", "UNAUTHORIZED", "UNAUTHORIZED", "UNAUTHORIZED"]),
        // Alice owns the order: everything but the status, which is the admin's.
        ("alice", ["ok", "ok", "ok", "FORBIDDEN", "ok", "ok"]),
        // Bob learns nothing about alice's order: it does not exist for him.
        ("bob", ["ok", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"]),
        ("admin", ["ok", "ok", "ok", "ok", "ok", "ok"]),
    ];
    for ((name, got), (expected_name, want)) in table.iter().zip(expected) {
        assert_eq!(name, &expected_name);
        assert_eq!(
            got,
            &want.map(str::to_owned).to_vec(),
            "{name}: create, read, update, update status, subscribe, delete"
        );
    }

    // Lists: each user sees their own, the admin all, an anonymous connection nothing.
    let list = json!({ "resourceType": "order", "limit": 100 });
    let count = |payload: Value| payload["items"].as_array().map_or(0, Vec::len);
    let (_, alices) = exchange(&alice, "read", "l1", list.clone()).await;
    let (_, bobs) = exchange(&bob, "read", "l2", list.clone()).await;
    let (_, all) = exchange(&admin, "read", "l3", list.clone()).await;
    assert!(alices["items"].as_array().expect("items").iter().all(|o| o["ownerId"] == "alice"));
    assert!(bobs["items"].as_array().expect("items").iter().all(|o| o["ownerId"] == "bob"));
    assert_eq!(count(all.clone()), count(alices) + count(bobs.clone()) + 1, "the admin sees every order, its own too");
    assert_eq!(outcome(&anon, "read", list).await, "UNAUTHORIZED");
}
