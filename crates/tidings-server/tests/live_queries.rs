//! Query subscriptions (protocol 1.1) on a real server: resources enter and leave a query's view as they change,
//! a reconnect with `since` replays exactly what the query missed, and a snapshot is exact as of its `seq`.
//!
//! "Nothing else arrived" is proven without waiting: after the changes that must not be delivered, one that must
//! is made, and it has to be the very next push (a subscription's events come in `seq` order).
//!
//! Every test runs twice, on SQLite and on PostgreSQL (`NAME::sqlite`, `NAME::postgres`).

mod common;

use common::{call, exchange, expect, next_event, on_both_backends, seen, TestServer};
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_protocol::LeaveReason;

on_both_backends!(
    an_order_enters_and_leaves_a_query_and_others_are_never_heard_of,
    resume_with_since_replays_exactly_what_the_query_missed,
    a_snapshot_is_what_matches_as_of_its_seq_and_live_changes_follow_it,
    one_query_is_one_subscription_id_and_bad_queries_are_refused_at_their_term,
);

fn pending() -> Value {
    json!({ "field": "data.status", "eq": "pending" })
}

async fn create(client: &Client, product: &str) -> String {
    let data = json!({ "productId": product, "quantity": 1, "totalAmount": 10.0 });
    let created =
        call(client, "create", &format!("c-{product}"), json!({ "resourceType": "order", "data": data })).await;
    created["id"].as_str().expect("an id").to_owned()
}

async fn patch(client: &Client, id: &str, patch: Value) {
    call(client, "update", "u", json!({ "resourceType": "order", "id": id, "patch": patch })).await;
}

async fn subscribe(client: &Client, payload: Value) -> Value {
    call(client, "subscribe", "s", payload).await
}

async fn an_order_enters_and_leaves_a_query_and_others_are_never_heard_of(server: TestServer) {
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let (watcher, mut pushes) = server.signed_in_as("olga", &["admin"]).await;
    let (alice, mut alice_pushes) = server.signed_in("alice").await;
    let (bob, _bob_pushes) = server.signed_in("bob").await;
    let reply = subscribe(&watcher, json!({ "topic": "order", "query": pending() })).await;
    let id = reply["subscriptionId"].as_str().expect("a subscription id").to_owned();
    assert!(id.starts_with("order?"), "a query's id names its type: {reply}");
    assert_eq!(reply["topic"], "order");
    let alices = subscribe(&alice, json!({ "topic": "order", "query": pending() })).await;
    assert_eq!(alices["subscriptionId"].as_str(), Some(id.as_str()), "one query, one id, whoever subscribes");

    // A new pending order enters: it is created matching.
    let order = create(&alice, "P-1").await;
    let created = next_event(&mut pushes).await;
    assert_eq!(seen(&created), expect("order_created", &order, None));
    assert_eq!(created.subscription_id.as_ref().map(|s| s.as_str()), Some(id.as_str()));
    assert_eq!(created.data["status"], "pending");
    // It leaves when an admin ships it, saying why, with the data that made it leave.
    patch(&admin, &order, json!({ "status": "shipped" })).await;
    let left = next_event(&mut pushes).await;
    assert_eq!(seen(&left), expect("order_left", &order, Some(LeaveReason::Unmatched)));
    assert_eq!((left.data["status"].as_str(), left.version.map(|v| v.get())), (Some("shipped"), Some(2)));
    // Changes of an order outside the query are never heard of.
    patch(&admin, &order, json!({ "quantity": 5 })).await;
    patch(&admin, &order, json!({ "status": "paid" })).await;
    // Back to pending: it enters, whole.
    patch(&admin, &order, json!({ "status": "pending" })).await;
    let entered = next_event(&mut pushes).await;
    assert_eq!(seen(&entered), expect("order_entered", &order, None));
    assert_eq!(
        (entered.data["quantity"].as_u64(), entered.data["productId"].as_str(), entered.version.map(|v| v.get())),
        (Some(5), Some("P-1"), Some(5)),
        "an enter carries the whole resource"
    );
    // A change within the query is an update; a deletion of a matching order is a leave.
    patch(&alice, &order, json!({ "quantity": 6 })).await;
    assert_eq!(seen(&next_event(&mut pushes).await), expect("order_updated", &order, None));
    let bobs = create(&bob, "P-bob").await;
    assert_eq!(seen(&next_event(&mut pushes).await), expect("order_created", &bobs, None));
    call(&alice, "delete", "d", json!({ "resourceType": "order", "id": order })).await;
    assert_eq!(seen(&next_event(&mut pushes).await), expect("order_left", &order, Some(LeaveReason::Deleted)));

    // Alice, who may read her own orders only, saw hers and nothing of Bob's.
    let hers: Vec<_> = [
        expect("order_created", &order, None),
        expect("order_left", &order, Some(LeaveReason::Unmatched)),
        expect("order_entered", &order, None),
        expect("order_updated", &order, None),
        expect("order_left", &order, Some(LeaveReason::Deleted)),
    ]
    .into();
    let mut got = Vec::new();
    for _ in 0..hers.len() {
        got.push(seen(&next_event(&mut alice_pushes).await));
    }
    assert_eq!(got, hers);
    let last = create(&alice, "P-2").await;
    assert_eq!(seen(&next_event(&mut alice_pushes).await), expect("order_created", &last, None));
}

async fn resume_with_since_replays_exactly_what_the_query_missed(server: TestServer) {
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let (alice, _alice_pushes) = server.signed_in("alice").await;
    let stays = create(&alice, "P-stays").await;
    let ships = create(&alice, "P-ships").await;
    let paid = create(&alice, "P-paid").await;
    patch(&admin, &paid, json!({ "status": "paid" })).await;
    let (watcher, pushes) = server.signed_in_as("olga", &["admin"]).await;
    let reply = subscribe(&watcher, json!({ "topic": "order", "query": pending() })).await;
    let since = reply["seq"].as_u64().expect("a seq");
    drop((watcher, pushes));

    // While the watcher is away: an order created pending, one shipped, changes outside the query, one that
    // comes back to pending, and a deletion.
    let born = create(&alice, "P-born").await;
    patch(&admin, &ships, json!({ "status": "shipped" })).await;
    patch(&admin, &paid, json!({ "quantity": 9 })).await;
    patch(&admin, &paid, json!({ "status": "pending" })).await;
    patch(&alice, &stays, json!({ "quantity": 2 })).await;
    call(&alice, "delete", "d", json!({ "resourceType": "order", "id": born })).await;

    let (watcher, mut pushes) = server.signed_in_as("olga", &["admin"]).await;
    let reply = subscribe(&watcher, json!({ "topic": "order", "query": pending(), "since": since })).await;
    assert_eq!(reply["recovered"], true, "{reply}");
    let expected = [
        expect("order_created", &born, None),
        expect("order_left", &ships, Some(LeaveReason::Unmatched)),
        expect("order_entered", &paid, None),
        expect("order_updated", &stays, None),
        expect("order_left", &born, Some(LeaveReason::Deleted)),
    ];
    let mut got = Vec::new();
    let mut last_seq = since;
    for _ in 0..expected.len() {
        let event = next_event(&mut pushes).await;
        let seq = event.seq.map(|s| s.get()).expect("a seq");
        assert!(seq > last_seq, "in seq order, each once");
        last_seq = seq;
        got.push(seen(&event));
    }
    assert_eq!(got, expected);
    // Then live, with nothing in between.
    let live = create(&alice, "P-live").await;
    let event = next_event(&mut pushes).await;
    assert_eq!(seen(&event), expect("order_created", &live, None));
    assert!(event.seq.map(|s| s.get()) > Some(last_seq));
}

async fn a_snapshot_is_what_matches_as_of_its_seq_and_live_changes_follow_it(server: TestServer) {
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;
    let (alice, _alice_pushes) = server.signed_in("alice").await;
    let mut matching = Vec::new();
    for n in 0..6 {
        let id = create(&alice, &format!("P-{n}")).await;
        if n % 3 == 0 {
            patch(&admin, &id, json!({ "status": "shipped" })).await;
        } else {
            matching.push(id);
        }
    }
    let (watcher, mut pushes) = server.signed_in_as("olga", &["admin"]).await;
    let reply = subscribe(&watcher, json!({ "topic": "order", "query": pending(), "snapshot": true })).await;
    let items: Vec<(u64, &str)> = reply["items"]
        .as_array()
        .expect("a snapshot")
        .iter()
        .map(|i| (i["createdAt"].as_u64().expect("createdAt"), i["id"].as_str().expect("id")))
        .collect();
    // By createdAt, ties by id (docs/protocol.md): two creates in one millisecond come in the order of their ids.
    let mut expected: Vec<(u64, &str)> = items.clone();
    expected.sort();
    assert_eq!(items, expected, "by createdAt, then id: {reply}");
    assert_eq!(items.len(), matching.len(), "each once: {reply}");
    let found: std::collections::BTreeSet<&str> = items.iter().map(|(_, id)| *id).collect();
    assert_eq!(found, matching.iter().map(String::as_str).collect(), "what matches: {reply}");
    assert!(reply["items"].as_array().into_iter().flatten().all(|i| i["data"]["status"] == "pending"));
    assert_eq!(reply["seq"].as_u64(), Some(8), "exact as of the last change: six creates and two ships");
    assert!(reply.get("nextCursor").is_none() || reply["nextCursor"].is_null());
    patch(&admin, &matching[0], json!({ "status": "shipped" })).await;
    let event = next_event(&mut pushes).await;
    assert_eq!(seen(&event), expect("order_left", &matching[0], Some(LeaveReason::Unmatched)));
    assert_eq!(event.seq.map(|s| s.get()), Some(9));

    // With `since` that is recovered, the replay comes instead of a snapshot; with one that is not, the snapshot.
    let resumed =
        subscribe(&admin, json!({ "topic": "order", "query": pending(), "snapshot": true, "since": 9 })).await;
    assert_eq!((resumed["recovered"].as_bool(), resumed.get("items")), (Some(true), None), "{resumed}");
    let (other, _other_pushes) = server.signed_in_as("ann", &["admin"]).await;
    let lost = subscribe(&other, json!({ "topic": "order", "query": pending(), "snapshot": true, "since": 99 })).await;
    assert_eq!(lost["recovered"], false);
    assert_eq!(lost["items"].as_array().map(Vec::len), Some(matching.len() - 1), "{lost}");
    // A plain type topic takes a snapshot too; a page that is full says where the rest is.
    let (more, _more_pushes) = server.signed_in("alice").await;
    // Two connections share the creates: one connection's burst allowance is 100 messages.
    for n in 0..100 {
        create(if n % 2 == 0 { &alice } else { &more }, &format!("Q-{n}")).await;
    }
    let whole = subscribe(&more, json!({ "topic": "order", "snapshot": true })).await;
    assert_eq!(whole["items"].as_array().map(Vec::len), Some(100));
    let cursor = whole["nextCursor"].as_str().expect("more than a page");
    let (kind, rest) =
        exchange(&more, "read", "r", json!({ "resourceType": "order", "cursor": cursor, "limit": 100 })).await;
    assert_eq!(kind, "read", "{rest}");
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(6), "106 orders, one page of 100 then the rest");
}

async fn one_query_is_one_subscription_id_and_bad_queries_are_refused_at_their_term(server: TestServer) {
    let (admin, mut pushes) = server.signed_in_as("root", &["admin"]).await;
    let query = json!({ "and": [{ "field": "data.status", "eq": "pending" }, { "field": "data.quantity", "gt": 1 }] });
    let same = json!({ "and": [{ "gt": 1, "field": "data.quantity" }, { "eq": "pending", "field": "data.status" }] });
    let first = subscribe(&admin, json!({ "topic": "order", "query": query })).await;
    let plain = subscribe(&admin, json!({ "topic": "order" })).await;
    assert_eq!(plain["subscriptionId"], "order", "a plain topic beside a query on the same type");
    let (kind, twice) = exchange(&admin, "subscribe", "s2", json!({ "topic": "order", "query": query })).await;
    assert_eq!((kind.as_str(), twice["code"].as_str()), ("error", Some("CONFLICT")), "{twice}");
    assert_eq!(twice["details"]["subscriptionId"], first["subscriptionId"]);
    let (alice, _alice_pushes) = server.signed_in("alice").await;
    let theirs = subscribe(&alice, json!({ "topic": "order", "query": same })).await;
    assert_eq!(theirs["subscriptionId"], first["subscriptionId"], "the same query, its terms in another order");

    // Both subscriptions deliver, each under its own id.
    let id = create(&alice, "P-1").await;
    patch(&alice, &id, json!({ "quantity": 3 })).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut pushes).await;
        ids.push((event.subscription_id.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(), seen(&event).0));
    }
    let query_id = first["subscriptionId"].as_str().expect("id").to_owned();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("order".to_owned(), "order_created".to_owned()),
            ("order".to_owned(), "order_updated".to_owned()),
            (query_id.clone(), "order_entered".to_owned()),
        ]
    );
    let gone = call(&admin, "unsubscribe", "x", json!({ "subscriptionId": query_id })).await;
    assert_eq!(gone["topic"], "order");

    for (payload, pointer) in [
        (json!({ "topic": "order", "query": { "field": "data.nope", "eq": 1 } }), "/payload/query/field"),
        (json!({ "topic": "order", "query": { "field": "data.quantity", "eq": "1" } }), "/payload/query/eq"),
        (json!({ "topic": format!("order:{id}"), "query": pending() }), "/payload/query"),
        (json!({ "topic": "notifications", "snapshot": true }), "/payload/snapshot"),
        (json!({ "topic": "nothing", "query": pending() }), "/payload/topic"),
    ] {
        let (kind, error) = exchange(&admin, "subscribe", "bad", payload.clone()).await;
        assert_eq!(kind, "error", "{payload}");
        let pointers: Vec<&str> =
            error["details"]["errors"].as_array().into_iter().flatten().filter_map(|e| e["pointer"].as_str()).collect();
        assert!(
            pointers.contains(&pointer) || error["code"] == "NOT_FOUND" && pointer == "/payload/topic",
            "{payload} -> {error}"
        );
    }
}
